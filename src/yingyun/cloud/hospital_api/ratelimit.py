"""Per-partner request limits on /thirdparty/* (code 90003), shared by every cloud process.

Fixed windows (default 60 s) counted in the database, so all processes share
one budget. To keep the hot path off the write lock, a process takes
permits from the shared counter in small leases (a twentieth of the limit,
at least one) and spends them locally; a process can hold at most one lease
it has not used up, so across P processes the count is exact to within
P leases, and it is never exceeded (unused permits of a lease are simply
lost when the window ends).

The limit is per partner: `partner_rate_limits` overrides the default set
by configuration (`yingyun admin ratelimit set --app-id ID --per-minute N`).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from ...core.ttl import TtlCache
from ...storage.db import Database
from ...storage.schema import rate_limits, rate_windows
from ...storage.upsert import insert_ignore


class RateLimiter:
    def __init__(self, db: Database, *, default_limit: int, window_s: float = 60.0,
                 clock: Callable[[], float] = time.time, refresh_s: float = 2.0) -> None:
        self.db = db
        self.default_limit = default_limit
        self.window_s = window_s
        self.clock = clock
        self._local: dict[str, tuple[float, int]] = {}  # app_id -> (window, permits left)
        self._limits: TtlCache[None, dict[str, int]] = TtlCache(refresh_s)  # the overrides, all of them
        self._lock = threading.Lock()

    def limit_of(self, app_id: str) -> int:
        return self._limits.get(None, self._read_limits).get(app_id, self.default_limit)

    def _read_limits(self, _: None) -> dict[str, int]:
        with self.db.read() as conn:
            return {r.app_id: r.per_window for r in conn.execute(select(rate_limits))}

    def allow(self, app_id: str) -> bool:
        """Spend one permit of `app_id`'s current window; False when the window's budget is used up."""
        limit = self.limit_of(app_id)
        if limit <= 0:
            return True
        window = math.floor(self.clock() / self.window_s) * self.window_s
        with self._lock:
            w, left = self._local.get(app_id, (window, 0))
            if w == window and left > 0:
                self._local[app_id] = (window, left - 1)
                return True
        granted = self._lease(app_id, window, limit)
        if granted <= 0:
            return False
        with self._lock:
            w, left = self._local.get(app_id, (window, 0))
            left = left if w == window else 0
            self._local[app_id] = (window, left + granted - 1)
        return True

    def _lease(self, app_id: str, window: float, limit: int) -> int:
        chunk = max(1, limit // 20)
        w = rate_windows
        key = (w.c.app_id == app_id, w.c.window_start == window)
        with self.db.write() as conn:
            created = insert_ignore(conn, w, {"app_id": app_id, "window_start": window, "used": 0}).rowcount
            if created:
                # Old windows are of no use: drop this partner's.
                conn.execute(delete(w).where(w.c.app_id == app_id, w.c.window_start < window))
            used: int = conn.execute(select(w.c.used).where(*key).with_for_update()).scalar_one()
            take = max(0, min(chunk, limit - used))
            if take:
                conn.execute(update(w).where(*key).values(used=w.c.used + take))
            return take

def set_limit(conn: Connection, *, app_id: str, per_window: int, now: float) -> None:
    conn.execute(delete(rate_limits).where(rate_limits.c.app_id == app_id))
    conn.execute(insert(rate_limits).values(app_id=app_id, per_window=per_window, updated_at=now))


def remove_limit(conn: Connection, *, app_id: str) -> bool:
    return conn.execute(delete(rate_limits).where(rate_limits.c.app_id == app_id)).rowcount > 0


def list_limits(conn: Connection) -> list[dict[str, Any]]:
    return [{"appId": r.app_id, "perMinute": r.per_window}
            for r in conn.execute(select(rate_limits).order_by(rate_limits.c.app_id))]
