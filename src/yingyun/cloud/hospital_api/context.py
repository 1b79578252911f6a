"""What the internet-hospital API needs, handed over by the composition root."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ...core.crypto import Vault
from ...settings import Settings
from ...storage.db import Database
from ...storage.groupcommit import GroupCommit
from ...storage.queue import SqlJobQueue
from ...tenancy import Tenancy
from ..callbacks.config import DeliveryConfig
from ..callbacks.events import CallbackEvents
from .ratelimit import RateLimiter


@dataclass(frozen=True)
class HospitalApiConfig:
    rate_per_minute: int = 600  # per partner, all cloud processes together; 0: unlimited
    max_experts: int = 5  # experts one consultation may invite (40011 beyond)
    delivery: DeliveryConfig = field(default_factory=DeliveryConfig)

    @classmethod
    def from_settings(cls, settings: Settings) -> "HospitalApiConfig":
        return cls(
            rate_per_minute=settings.thirdparty_rate_per_minute,
            max_experts=settings.consultation_max_experts,
            delivery=DeliveryConfig(timeout_s=settings.callback_timeout_s, per_partner=settings.callback_per_partner),
        )


@dataclass
class HospitalApiContext:
    settings: Settings
    db: Database
    vault: Vault
    tenancy: Tenancy
    writer: GroupCommit
    limiter: RateLimiter
    queue: SqlJobQueue
    events: CallbackEvents
    config: HospitalApiConfig
    clock: Callable[[], float] = time.time

    @classmethod
    def build(cls, runtime, *, config: HospitalApiConfig | None = None,
              clock: Callable[[], float] = time.time) -> "HospitalApiContext":
        config = config or HospitalApiConfig.from_settings(runtime.settings)
        queue = SqlJobQueue(runtime.db)
        return cls(
            settings=runtime.settings, db=runtime.db, vault=runtime.vault, tenancy=runtime.tenancy,
            writer=GroupCommit(runtime.db, name="thirdparty-writer"),
            limiter=RateLimiter(runtime.db, default_limit=config.rate_per_minute, clock=clock),
            queue=queue, events=CallbackEvents(queue, clock=clock), config=config, clock=clock,
        )

    def dispatcher(self, **kw):  # -> CallbackDispatcher
        """The callback delivery worker (started by `serve`, one per process that delivers)."""
        from ..callbacks.dispatcher import CallbackDispatcher

        return CallbackDispatcher(db=self.db, vault=self.vault, tenancy=self.tenancy, queue=self.queue,
                                  public_url=self.settings.public_url,
                                  link_lifetime_s=self.settings.partner_link_lifetime_s,
                                  config=self.config.delivery, clock=self.clock, **kw)

    def close(self) -> None:
        self.writer.close()
