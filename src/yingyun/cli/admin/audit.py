"""`yingyun admin audit`: who opened which cloud-film page, image or download."""

from __future__ import annotations

from typing import Annotated

import typer

from ...core.times import Zone
from ...settings import Settings
from ..context import runtime
from ..options import AsJson, Timezone, read_time
from ..output import emit


def audit(
    ctx: typer.Context,
    as_json: AsJson = False,
    study_uid: Annotated[str | None, typer.Option("--study-uid", help="Only this Study Instance UID.")] = None,
    link: Annotated[int | None, typer.Option("--link", help="Only this link (its id, as the audit shows it).")] = None,
    since: Annotated[str | None, typer.Option("--since", help="Only since TIME (as printed, or "
                                                                   "yyyy-MM-dd[ HH:mm:ss] in --timezone).")] = None,
    timezone: Timezone = Settings.timezone,
) -> None:
    """Who opened which cloud-film page, image or download, when and from where."""
    from ...cloud.patient.audit import query

    zone = Zone(timezone)
    since_ts = read_time(zone, since)
    with runtime(ctx).db.read() as conn:
        rows = query(conn, study_uid=study_uid, link_pk=link, since=since_ts, zone=zone)
    emit(rows, as_json, ["at", "access", "link", "linkKind", "hospitalId", "studyId", "studyUid", "client", "detail"])
