"""How callbacks are delivered (timeouts, concurrency, backoff)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DeliveryConfig:
    timeout_s: float = 10.0
    per_partner: int = 8
    workers: int = 32
    retry_base_s: float = 10.0
    retry_max_s: float = 3600.0
    horizon_s: float = 24 * 3600.0  # retried at least this long, then parked
    poll_s: float = 0.2
    rest_max_s: float = 300.0
    keep_delivered_s: float = 14 * 86400.0  # delivered jobs are kept this long (`admin callbacks` shows them)
