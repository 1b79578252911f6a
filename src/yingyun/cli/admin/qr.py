"""`yingyun admin qr revoke`: retire an exam card's QR code (a lost or misprinted card)."""

from __future__ import annotations

from typing import Annotated

import typer

from ...core.errors import NotFound
from ..context import runtime

app = typer.Typer(no_args_is_help=True, help="The exam cards' QR codes.")


@app.command("revoke")
def qr_revoke(
    ctx: typer.Context,
    study_id: Annotated[str, typer.Option("--study-id", help="The study's studyId, as the RIS sent it.")],
    hospital: Annotated[str | None, typer.Option(
        "--hospital", help="The hospital, when several have a study of that id.")] = None,
) -> None:
    """Revoke the study's QR code at once: the old code says to scan the new one, and
    getStudyQR hands out a new code from now on (reprint the card)."""
    from ...archive import links

    with runtime(ctx).db.write() as conn:
        study = links.locate_study(conn, hospital_id=hospital, study_id=study_id)
        if not links.revoke_qr(conn, hospital_id=study.hospital_id, study_id=study.study_id):
            raise NotFound(f"study {study_id!r} in hospital {study.hospital_id} has no live QR code", subject="link")
    typer.echo(f"QR code of study {study_id} (hospital {study.hospital_id}) revoked; getStudyQR now returns a new one")
