"""The storage report a month is billed on (`yingyun admin usage`): per hospital, what was
registered and received in the month, and what was held at its end.

* studies: RIS studies registered in the month (and not deleted since);
* visits: patient visits among them: one per visit number the RIS gave (inpatientNum, else
  clinicNum, else healthScreenNum, else hisNum) for one patient, and one per study that
  names none. Per-visit (人次) contracts count these;
* instances / bytes added: instances received in the month (as the index holds them now);
* instances / bytes held: instances received before the month's end and still held — for a
  month past, what has been purged or replaced since is no longer counted.

Month boundaries are wall time in the operator's zone (`--timezone`). Only ids and counts
leave here: the visit numbers are read to be counted, never returned.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, func, select

from ..core.errors import Invalid
from ..core.times import Zone
from ..storage.schema import hospitals, instances, studies

VISIT_NUMBERS = ("inpatientNum", "clinicNum", "healthScreenNum", "hisNum")
_MONTH = re.compile(r"(\d{4})-(\d{2})")


def month_bounds(month: str, zone: Zone) -> tuple[float, float]:
    """Unix seconds of the month's first instant and of the next month's, in `zone`."""
    m = _MONTH.fullmatch(month.strip())
    if m is None or not 1 <= int(m[2]) <= 12:
        raise Invalid(f"--month takes yyyy-MM, such as 2026-11, not {month!r}", field="month")
    year, number = int(m[1]), int(m[2])
    start = datetime(year, number, 1, tzinfo=zone.tz)
    end = datetime(year + number // 12, number % 12 + 1, 1, tzinfo=zone.tz)
    return start.timestamp(), end.timestamp()


def usage(conn: Connection, month: str, zone: Zone, *, hospital_ids: set[str] | None = None) -> list[dict[str, Any]]:
    """One row per hospital (every hospital, or those of `hospital_ids`), ordered by id."""
    start, end = month_bounds(month, zone)
    rows: dict[str, dict[str, Any]] = {}
    for (hospital,) in conn.execute(select(hospitals.c.id).order_by(hospitals.c.id)):
        if hospital_ids is None or hospital in hospital_ids:
            rows[hospital] = {"hospitalId": hospital, "month": month, "studies": 0, "visits": 0,
                              "instancesAdded": 0, "bytesAdded": 0, "instancesHeld": 0, "bytesHeld": 0}
    s = studies.c
    visits: dict[str, set[tuple[str, ...]]] = defaultdict(set)
    for hospital, pk, patient, details in conn.execute(
            select(s.hospital_id, s.pk, s.patient_id, s.details)
            .where(s.created_at >= start, s.created_at < end, s.deleted.is_(False))):
        if hospital not in rows:
            continue
        rows[hospital]["studies"] += 1
        visits[hospital].add(_visit(pk, patient, details))
    for hospital, seen in visits.items():
        rows[hospital]["visits"] = len(seen)
    i = instances.c
    for key, cond in (("Added", and_(i.received_at >= start, i.received_at < end)), ("Held", i.received_at < end)):
        for hospital, n, size in conn.execute(
                select(i.hospital_id, func.count(), func.coalesce(func.sum(i.size), 0)).where(cond)
                .group_by(i.hospital_id)):
            if hospital in rows:
                rows[hospital][f"instances{key}"] = int(n)
                rows[hospital][f"bytes{key}"] = int(size)
    return list(rows.values())


def _visit(pk: int, patient: str | None, details: str | None) -> tuple[str, ...]:
    """What makes one visit: the patient and the first visit number the RIS gave; else the study itself."""
    try:
        fields = json.loads(details or "{}")
    except ValueError:
        fields = {}
    for name in VISIT_NUMBERS:
        number = fields.get(name)
        if number not in (None, ""):
            return (patient or "", name, str(number))
    return ("study", str(pk))
