"""The staff audit trail: every console and API action of a staff user, one row each (table `staff_audit`).

Beside the patient pages' audit (`access_audit`), which records who opened a
link. `detail` is a small JSON object of what the action changed (field
names, ids, counts): never a name, a phone or an ID number, since auditors of
other scopes and the logs may read it.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import orjson
from sqlalchemy import Connection, insert

from ...storage import schema as s


def record_action(conn: Connection, *, username: str, action: str, subject_kind: str, subject_id: str | None,
                  hospital_id: str | None = None, study_uid: str | None = None,
                  detail: Mapping[str, Any] | None = None, at: float | None = None) -> None:
    """Record one action of `username` (e.g. action "user.add", subject_kind "user", subject_id "li") in the
    caller's transaction, so the action and its record commit together or not at all."""
    conn.execute(insert(s.staff_audit).values(
        at=time.time() if at is None else at, username=username, action=action, subject_kind=subject_kind,
        subject_id=subject_id, hospital_id=hospital_id, study_uid=study_uid,
        detail=orjson.dumps(dict(detail)).decode() if detail else None))
