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
    def from_settings(cls, settings: Settings) -> HospitalApiConfig:
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
