"""What the staff API's handlers need, filled by the composition root (serve.py) and put on the app."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ...core.crypto import Vault
from ...core.ttl import TtlCache
from ...phonecodes import PhoneCodes
from ...storage.db import Database
from ...tenancy import Tenancy

if TYPE_CHECKING:
    from .edge import Caller


@dataclass(frozen=True)
class SessionPolicy:
    """How long a session lives and what a sign-in must prove (issue 14 item 2)."""

    idle_s: float = 30 * 60.0
    absolute_s: float = 12 * 3600.0
    allow_concurrent: bool = False  # --allow-concurrent-sessions: no single-device rule (20007)
    require_totp_for_operators: bool = False  # --require-totp-for-operators
    attempt_limit: int = 5  # wrong passwords (or codes) within attempt_window_s lock the account
    attempt_window_s: float = 15 * 60.0
    lock_s: float = 15 * 60.0
    # A session's last-seen time is written at most this often, so reads stay reads.
    touch_every_s: float = 30.0


@dataclass
class StaffContext:
    db: Database
    vault: Vault
    tenancy: Tenancy
    codes: PhoneCodes  # SMS sign-in codes (purpose "staff"), sent through the SMS sender
    policy: SessionPolicy = field(default_factory=SessionPolicy)
    public_url: str = ""
    clock: Callable[[], float] = time.time
    # Sessions resolved for the reading viewer's DICOMweb requests (hundreds a minute per reader), by the
    # session's key: a few seconds, bounded; sign-out in this process forgets its own (sessions.resolve_cached).
    resolved: TtlCache[str, Caller] = field(default_factory=lambda: TtlCache(5.0, max_entries=2048))
