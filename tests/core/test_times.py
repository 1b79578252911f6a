"""Instants shown and read by operators (core/times.py): offsets always, one zone, exact round trips."""

from __future__ import annotations

import math
from datetime import datetime
from fractions import Fraction

import pytest

from yingyun.core.times import UTC, Zone

SHANGHAI = Zone("Asia/Shanghai")
T = datetime.fromisoformat("2026-12-01T09:30:00+08:00").timestamp()


def test_shown_in_the_zone_with_its_offset():
    assert SHANGHAI.show(T) == "2026-12-01T09:30:00+08:00"
    assert UTC.show(T) == "2026-12-01T01:30:00+00:00"
    assert Zone("Europe/Berlin").show(T) == "2026-12-01T02:30:00+01:00"
    assert SHANGHAI.show(T + 0.25, milliseconds=True) == "2026-12-01T09:30:00.250+08:00"


def test_a_time_with_an_offset_is_that_instant_whatever_the_zone():
    for zone in (SHANGHAI, UTC, Zone("America/New_York")):
        assert zone.parse("2026-12-01T09:30:00+08:00") == T
        assert zone.parse("2026-12-01T01:30:00Z") == T
        assert zone.parse("2026-12-01 01:30:00+00:00") == T


def test_a_time_without_an_offset_is_read_in_the_zone():
    assert SHANGHAI.parse("2026-12-01 09:30:00") == T
    assert UTC.parse("2026-12-01 01:30:00") == T
    assert SHANGHAI.parse("2026-12-01") == datetime.fromisoformat("2026-12-01T00:00:00+08:00").timestamp()


@pytest.mark.parametrize("fraction", ["0.1234", "0.1239996", "0.9999999", "0.0000001", "0.5"])
def test_showing_truncates_and_reading_back_never_passes_the_instant(fraction):
    """A printed time is at or before the instant, and reading it back gives a float at or before it too,
    so `--since <printed>` keeps that row (the old rounding printed 0.1239996 as .124 and lost it)."""
    ts = T + float(fraction)
    for ms in (False, True):
        printed = SHANGHAI.show(ts, milliseconds=ms)
        back = SHANGHAI.parse(printed)
        assert back <= ts
        assert SHANGHAI.show(back, milliseconds=ms) == printed  # the printed instant itself round-trips
        unit = Fraction(1, 1000) if ms else Fraction(1)
        assert Fraction(ts) - Fraction(back) < unit  # and nothing a whole unit earlier is let in


def test_reading_gives_the_first_float_at_or_after_the_instant():
    exact = Fraction(int(T) * 1000 + 123, 1000)  # 09:30:00.123, which no float is exactly
    value = SHANGHAI.parse("2026-12-01T09:30:00.123+08:00")
    assert Fraction(value) >= exact > Fraction(math.nextafter(value, -math.inf))


def test_wall_times_of_the_zone():
    assert SHANGHAI.wall("2026-12-02 09:00:00") == "2026-12-02 09:00:00"
    assert SHANGHAI.wall("2026-12-02T01:00:00Z") == "2026-12-02 09:00:00"
    assert SHANGHAI.show_wall("2026-12-02 09:00:00") == "2026-12-02T09:00:00+08:00"
    assert SHANGHAI.show_wall(None) is None


def test_bad_input_names_the_problem():
    with pytest.raises(ValueError, match="not a time: 'yesterday'"):
        SHANGHAI.parse("yesterday")
    with pytest.raises(ValueError, match="unknown time zone 'Mars/Olympus'"):
        Zone("Mars/Olympus")
