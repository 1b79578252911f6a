"""`yingyun admin usage --month yyyy-MM`: the figures per-visit and per-GB contracts are billed on."""

from __future__ import annotations

from typing import Annotated

import typer

from ...archive.usage import usage as usage_of
from ...core.times import Zone
from ...settings import Settings
from ..context import runtime
from ..options import AsJson, HospitalFilter, Timezone
from ..output import emit

COLUMNS = ["hospitalId", "month", "studies", "visits", "instancesAdded", "bytesAdded", "instancesHeld", "bytesHeld"]


def usage(
    ctx: typer.Context,
    month: Annotated[str, typer.Option("--month", help="The month, yyyy-MM (its days in --timezone).")],
    hospital: HospitalFilter = None,
    as_json: AsJson = False,
    timezone: Timezone = Settings.timezone,
) -> None:
    """Per hospital: studies and patient visits registered in the month, instances and bytes added in it and held
    at its end."""
    with runtime(ctx).db.read() as conn:
        rows = usage_of(conn, month, Zone(timezone), hospital_ids={hospital} if hospital else None)
    emit(rows, as_json, COLUMNS)
