"""`yingyun admin link doctor`: a referring doctor's link to one study, made by an operator."""

from __future__ import annotations

import time
from typing import Annotated

import typer

from ...core.errors import Invalid
from ..context import runtime
from ..options import PublicUrl

app = typer.Typer(no_args_is_help=True, help="Links to a study's report and images.")


@app.command("doctor")
def link_doctor(
    ctx: typer.Context,
    study_uid: Annotated[str, typer.Option("--study-uid", help="The study's Study Instance UID.")],
    hours: Annotated[float | None, typer.Option(
        "--hours", help="How long the link lives (default: --doctor-link-lifetime, 24 h).")] = None,
    hospital: Annotated[str | None, typer.Option(
        "--hospital", help="The hospital, when several have a study of that UID.")] = None,
    public_url: PublicUrl = None,
) -> None:
    """Print a doctor's link (report, viewer and DICOM download; no verification asked), audited as a doctor's."""
    from ...archive import links as link_store
    from ...cloud.patient import links

    rt = runtime(ctx)
    if hours is not None and not 0 < hours <= 24 * 30:
        raise Invalid("--hours is more than 0 and at most 720 (30 days)", field="hours")
    lifetime = hours * 3600.0 if hours is not None else rt.settings.doctor_link_lifetime_s
    with rt.db.write() as conn:
        study = link_store.locate_study(conn, hospital_id=hospital, study_uid=study_uid)
        path = links.mint_partner_link(conn, rt.vault, hospital_id=study.hospital_id, study_id=study.study_id,
                                       doctor=True, now=time.time(), lifetime=lifetime, created_by="cli")
    typer.echo((public_url or rt.settings.public_url).rstrip("/") + path)
