"""Reading turnaround (issue 15 item 8): per reading centre and per doctor, how many studies were read and
how long they waited, from the images being stable to the first submitted report and to the first final one.

A study counts in the period its report was first submitted in. Its waits are minutes from
`dicom_studies.stable_at` to `first_submitted_at` and to `first_final_at` (while not final yet it has no
wait to final); a study whose images changed after its report was submitted (stable again later) has no
wait either way, since it did not wait that long. Medians and 90th percentiles interpolate between the two
nearest waits (as `statistics.quantiles(..., method="inclusive")`, numpy's default): the median of 10, 20,
30, 40 minutes is 25, its p90 37. `returned` and `amended` add up the times the reports were sent back by
a reviewer and amended after final.

`figures` turns rows into the answer and holds every rule above; the query that reads the rows is beside
it, so the rules can be tested on rows made by hand.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, column, func, select, table

from ...storage import schema as s
from ...storage.db import Database
from ...storage.rawsql import Raw


@dataclass(frozen=True)
class Read:
    """One study read: its centre and doctor, its stable time, its first submitted and final times, counts."""

    centre_id: str
    doctor_id: str | None
    doctor_name: str | None
    stable_at: float | None
    first_submitted_at: float
    first_final_at: float | None
    returned_count: int = 0
    amended_count: int = 0


def quantile(ordered: Sequence[float], q: float) -> float | None:
    """The `q` quantile (0..1) of values sorted ascending, interpolated (module docstring); None for none."""
    if not ordered:
        return None
    pos = q * (len(ordered) - 1)
    low = math.floor(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def _minutes(start: float | None, end: float | None) -> float | None:
    if start is None or end is None or end < start:
        return None
    return (end - start) / 60.0


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


@dataclass
class _Group:
    studies: int = 0
    final: int = 0
    returned: int = 0
    amended: int = 0
    to_submitted: list[float] = field(default_factory=list)
    to_final: list[float] = field(default_factory=list)

    def add(self, r: Read) -> None:
        self.studies += 1
        self.final += r.first_final_at is not None
        self.returned += r.returned_count
        self.amended += r.amended_count
        if (m := _minutes(r.stable_at, r.first_submitted_at)) is not None:
            self.to_submitted.append(m)
            if (m := _minutes(r.stable_at, r.first_final_at)) is not None:
                self.to_final.append(m)

    def json(self) -> dict[str, Any]:
        return {"studiesRead": self.studies, "final": self.final, "toSubmitted": _waits(self.to_submitted),
                "toFinal": _waits(self.to_final), "returned": self.returned, "amended": self.amended}


def _waits(minutes: list[float]) -> dict[str, float | None]:
    ordered = sorted(minutes)
    return {"medianMinutes": _rounded(quantile(ordered, 0.5)), "p90Minutes": _rounded(quantile(ordered, 0.9))}


def figures(rows: Iterable[Read]) -> dict[str, list[dict[str, Any]]]:
    """`{"centres": [{"centreId", <figures>}], "doctors": [{"centreId", "doctorId", "doctorName", <figures>}]}`,
    each sorted by its ids; <figures> are `studiesRead`, `final` (how many of them are final), `toSubmitted`
    and `toFinal` (`medianMinutes`, `p90Minutes`, to a tenth, null with no wait), `returned`, `amended`."""
    doctors: dict[tuple[str, str], _Group] = {}
    names: dict[tuple[str, str], str | None] = {}
    for r in rows:
        key = (r.centre_id, r.doctor_id or "")
        doctors.setdefault(key, _Group()).add(r)
        names[key] = r.doctor_name or names.get(key)
    return _answer(doctors, names)


def _answer(doctors: dict[tuple[str, str], _Group], names: dict[tuple[str, str], str | None]
            ) -> dict[str, list[dict[str, Any]]]:
    """The answer of the doctors' groups, each centre's the sum of its doctors'."""
    centres: dict[str, _Group] = {}
    for (c, _), g in doctors.items():
        mine = centres.setdefault(c, _Group())
        mine.studies += g.studies
        mine.final += g.final
        mine.returned += g.returned
        mine.amended += g.amended
        mine.to_submitted += g.to_submitted
        mine.to_final += g.to_final
    return {"centres": [{"centreId": c, **g.json()} for c, g in sorted(centres.items())],
            "doctors": [{"centreId": c, "doctorId": d or None, "doctorName": names[(c, d)], **g.json()}
                        for (c, d), g in sorted(doctors.items())]}


# The reading core's table (storage/schema/reading.py, branch `reading`), named here by the columns the
# seam pins, until both branches are merged and this reads `schema.reading_reports` itself.
_reports = table("reading_reports", *(column(c) for c in (
    "hospital_id", "study_uid", "centre_id", "report_doctor_id", "first_submitted_at",
    "first_final_at", "returned_count", "amended_count")))


_WAITS = ("SELECT r.centre_id, r.report_doctor_id, r.first_submitted_at - d.stable_at, r.first_final_at - d.stable_at"
          " FROM reading_reports r JOIN dicom_studies d ON d.hospital_id = r.hospital_id AND d.study_uid = r.study_uid"
          " WHERE r.first_submitted_at >= :since AND r.first_submitted_at < :until AND d.stable_at IS NOT NULL")


def read_turnaround(conn: Connection, *, since: float, until: float,
                    centres: frozenset[str] | None) -> dict[str, list[dict[str, Any]]]:
    """The figures of the studies first submitted in [since, until) at `centres` (None: every centre).

    Counts are summed by the database; only the waits (two numbers a study, computed there) come back
    row by row, since medians do not add up: over 30 busy days that is the request's cost. Both queries
    are answered from indexes alone (storage/schema/templates.py declares them)."""
    if centres is not None and not centres:
        return figures(())
    r = _reports.c
    where = [r.first_submitted_at >= since, r.first_submitted_at < until]
    if centres is not None:
        where.append(r.centre_id.in_(sorted(centres)))
    groups: dict[tuple[str, str], _Group] = {}
    for centre, doctor, studies, final, returned, amended in conn.execute(
            select(r.centre_id, r.report_doctor_id, func.count(), func.count(r.first_final_at),
                   func.sum(r.returned_count), func.sum(r.amended_count))
            .select_from(_reports).where(*where).group_by(r.centre_id, r.report_doctor_id)):
        g = groups.setdefault((centre, doctor or ""), _Group())  # a doctor id None and "" are one (nobody named)
        g.studies += studies
        g.final += final
        g.returned += int(returned or 0)
        g.amended += int(amended or 0)
    # A doctor's name is the user's (the reports keep the name they were signed with, outside the index read).
    ids = sorted({d for _, d in groups if d})
    users = dict(conn.execute(select(s.users.c.username, s.users.c.name).where(s.users.c.username.in_(ids))).all()
                 ) if ids else {}
    names: dict[tuple[str, str], str | None] = {key: users.get(key[1]) for key in groups}
    # Row by row, through the driver's cursor: SQLAlchemy's result rows cost more than the query (storage.rawsql).
    params: dict[str, Any] = {"since": since, "until": until}
    sql = _WAITS
    if centres is not None:
        params |= {f"c{i}": c for i, c in enumerate(sorted(centres))}
        sql += " AND r.centre_id IN (" + ", ".join(f":c{i}" for i in range(len(centres))) + ")"
    cur = Raw(sql).execute(conn, params)
    try:
        waits = cur.fetchall()
    finally:
        cur.close()
    for centre, doctor, to_submitted, to_final in waits:
        g = groups[(centre, doctor or "")]
        if to_submitted is not None and to_submitted >= 0:
            g.to_submitted.append(to_submitted / 60.0)
            if to_final is not None:
                g.to_final.append(to_final / 60.0)
    return _answer(groups, names)


class Turnaround:
    """`read_turnaround` behind a short memory: the same period and scope asked again within `ttl_s` is
    answered from the last reading (a console refreshing its dashboard), so the figures are at most that
    old; the reading itself is the cost of a first request (bench/turnaround.py prints both)."""

    def __init__(self, db: Database, *, clock: Callable[[], float] = time.time, ttl_s: float = 60.0,
                 kept: int = 64) -> None:
        self.db = db
        self.clock = clock
        self.ttl_s = ttl_s
        self.kept = kept
        self._lock = threading.Lock()
        self._memo: dict[tuple[float, float, tuple[str, ...] | None], tuple[float, dict[str, Any]]] = {}

    def figures(self, *, since: float, until: float, centres: frozenset[str] | None) -> dict[str, Any]:
        key = (since, until, None if centres is None else tuple(sorted(centres)))
        now = self.clock()
        with self._lock:
            hit = self._memo.get(key)
        if hit is not None and now - hit[0] < self.ttl_s:
            return hit[1]
        with self.db.read() as conn:
            answer = read_turnaround(conn, since=since, until=until, centres=centres)
        with self._lock:
            if len(self._memo) >= self.kept:
                self._memo.clear()
            self._memo[key] = (now, answer)
        return answer
