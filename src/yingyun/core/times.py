"""Instants as operators read and type them: ISO 8601 with the offset, in one configured zone.

The index keeps Unix seconds (UTC). Everything an operator sees is shown in the
configured zone (`Settings.timezone`, `--timezone`, `YINGYUN_TIMEZONE`) and
always carries its offset, so a printed time means the same instant wherever
it is pasted. What an operator types is either such a time (that instant,
whatever its offset) or a wall-clock time without one (read in the zone).

Printing truncates to the precision shown and parsing gives the first float at
or after the instant, both exactly (no float rounding), so that
`--since <a printed time>` keeps exactly the rows printed at or after it.
"""

from __future__ import annotations

import datetime as _dt
import math
from datetime import datetime, timedelta
from fractions import Fraction
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DEFAULT_TIMEZONE = "Asia/Shanghai"

_EPOCH = datetime(1970, 1, 1, tzinfo=_dt.UTC)  # the module's own UTC is a Zone, below
_MICROSECOND = timedelta(microseconds=1)


class Zone:
    """One IANA time zone, for showing and reading instants."""

    def __init__(self, name: str) -> None:
        try:
            self.tz = ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError) as e:
            raise ValueError(f"unknown time zone {name!r} (an IANA name such as Asia/Shanghai or UTC)") from e
        self.name = name

    def __repr__(self) -> str:
        return f"Zone({self.name!r})"

    def show(self, ts: float, *, milliseconds: bool = False) -> str:
        """ISO 8601 with the offset, e.g. 2026-12-01T09:30:00+08:00 (truncated, never rounded up)."""
        unit = 1000 if milliseconds else 1
        ticks = math.floor(Fraction(ts) * unit)  # the float's exact value, floored
        seconds, fraction = divmod(ticks, unit)
        moment = datetime.fromtimestamp(seconds, self.tz)
        if milliseconds:
            return moment.replace(microsecond=fraction * 1000).isoformat(timespec="milliseconds")
        return moment.isoformat(timespec="seconds")

    def show_optional(self, ts: float | None, *, milliseconds: bool = False) -> str | None:
        return None if ts is None else self.show(ts, milliseconds=milliseconds)

    def read(self, text: str) -> datetime:
        """An aware datetime from what an operator typed; without an offset it is a wall time in this zone."""
        try:
            moment = datetime.fromisoformat(text.strip())
        except ValueError:
            raise ValueError(f"not a time: {text!r} (use 2026-12-01, 2026-12-01 09:30:00, or a time as printed, "
                             f"e.g. 2026-12-01T09:30:00+08:00)") from None
        return moment.replace(tzinfo=self.tz) if moment.tzinfo is None else moment

    def parse(self, text: str) -> float:
        """Unix seconds of what an operator typed: the first float at or after that instant."""
        exact = Fraction((self.read(text) - _EPOCH) // _MICROSECOND, 1_000_000)
        value = float(exact)
        return math.nextafter(value, math.inf) if Fraction(value) < exact else value

    def wall(self, text: str) -> str:
        """What an operator typed, as a wall time in this zone: 'yyyy-MM-dd HH:mm:ss' (no offset)."""
        return self.read(text).astimezone(self.tz).strftime("%Y-%m-%d %H:%M:%S")

    def show_wall(self, wall: str | None) -> str | None:
        """A stored wall time of this zone ('yyyy-MM-dd HH:mm:ss'), shown with its offset."""
        if not wall:
            return wall
        return datetime.fromisoformat(wall).replace(tzinfo=self.tz).isoformat(timespec="seconds")


UTC = Zone("UTC")
