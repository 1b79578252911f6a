"""`yingyun admin doctor add | list | remove`: who requests consultations and is invited to them."""

from __future__ import annotations

from typing import Annotated

import typer

from ...cloud.organisation import PLATFORM
from ...cloud.organisation.nouns import Query, save
from ..context import organisation
from ..errors import PartnersWordsGroup, advise_if_in_use
from ..options import AsJson, HospitalFilter
from ..output import emit

app = typer.Typer(cls=PartnersWordsGroup, no_args_is_help=True,
                  help="Doctors: request consultations and are invited as experts.")

DoctorId = Annotated[str, typer.Option("--id", help="Doctor id (as partners name the doctor).")]


@app.command("add")
def doctor_add(ctx: typer.Context, id: DoctorId,
               name: Annotated[str, typer.Option("--name", help="The doctor's name.")],
               hospital: Annotated[str, typer.Option("--hospital", help="The hospital the doctor works at.")],
               title: Annotated[str | None, typer.Option("--title", help="Title, e.g. 主任医师.")] = None,
               dept: Annotated[str | None, typer.Option("--dept", help="Department, e.g. 放射科.")] = None) -> None:
    """Add a doctor, or change an existing one."""
    created, _ = save(organisation(ctx).doctors, PLATFORM, id,
                      {"name": name, "hospitalId": hospital, "title": title, "dept": dept})
    typer.echo(f"doctor {id} {'added' if created else 'updated'}")


@app.command("list")
def doctor_list(ctx: typer.Context, as_json: AsJson = False, hospital: HospitalFilter = None) -> None:
    """Every doctor."""
    rows = organisation(ctx).doctors.list(PLATFORM, Query(limit=None, hospital_id=hospital)).items
    emit(rows, as_json, ["doctorId", "name", "hospitalId", "title", "dept"])


@app.command("remove")
def doctor_remove(ctx: typer.Context, id: DoctorId) -> None:
    """Remove a doctor no consultation names (else refused, naming them)."""
    with advise_if_in_use("a consultation's record keeps the doctors who took part"):
        organisation(ctx).doctors.remove(PLATFORM, id)
    typer.echo(f"doctor {id} removed")
