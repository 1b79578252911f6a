"""`yingyun admin consultation add | list | show | update | start | cancel | conclude`, as the operator."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer

from ...core.times import Zone
from ...runtime import Runtime
from ...settings import ENV_MAX_EXPERTS, Settings
from ..context import runtime
from ..errors import PartnersWordsGroup
from ..options import AsJson, HospitalFilter, Timezone
from ..output import echo_json, emit, fail

if TYPE_CHECKING:
    from ...cloud.consultations.service import Actor

app = typer.Typer(cls=PartnersWordsGroup, no_args_is_help=True,
                  help="Remote consultations (会诊): requested -> scheduled -> "
                                             "in_progress -> concluded, or cancelled.")

ConsultationId = Annotated[str, typer.Option("--id", help="Consultation id (consultationId).")]
Purpose = Annotated[str | None, typer.Option("--purpose", help="What the experts are asked.")]
MeetingUrl = Annotated[str | None, typer.Option("--meeting-url", help="Where the consultation meets online.")]

OPERATOR = "operator"


def operator() -> Actor:
    from ...cloud.consultations.service import Actor

    return Actor(OPERATOR, None)


def max_experts(rt: Runtime) -> int:
    """The limit `serve --max-experts` applies, when the operator exported it as YINGYUN_MAX_EXPERTS."""
    value = os.environ.get(ENV_MAX_EXPERTS, "")
    return int(value) if value.isdigit() and int(value) > 0 else rt.settings.consultation_max_experts


def _shown(c: dict[str, Any], zone: Zone) -> dict[str, Any]:
    """A consultation with its times in `zone`, each with the offset (scheduledAt is a wall time of that zone)."""
    return dict(c, scheduledAt=zone.show_wall(c["scheduledAt"]), createdAt=zone.show(c["createdAt"]),
                updatedAt=zone.show(c["updatedAt"]))


def _check_at(at: str | None, zone: Zone) -> str | None:
    """--at as the wall time of the hospital's zone that the consultation API stores."""
    if at is None:
        return None
    try:
        return zone.wall(at)
    except ValueError:
        fail(f"--at takes yyyy-MM-dd HH:mm:ss in {zone.name}, or a time with its offset (2026-12-01T09:30:00+08:00)")


@app.command("add")
def consultation_add(
    ctx: typer.Context,
    hospital: Annotated[str, typer.Option("--hospital", help="The hospital of the studies.")],
    study: Annotated[list[str], typer.Option("--study", help="studyId (repeat for several of the patient's studies).")],
    expert: Annotated[list[str] | None, typer.Option("--expert", help="Invited expert doctor id (repeatable).")] = None,
    requester: Annotated[str | None, typer.Option("--requester", help="Requesting doctor id.")] = None,
    purpose: Purpose = None,
    at: Annotated[str | None, typer.Option("--at", help="Schedules it: yyyy-MM-dd HH:mm:ss in --timezone, "
                                                             "or a time with its offset.")] = None,
    meeting_url: MeetingUrl = None,
    timezone: Timezone = Settings.timezone,
) -> None:
    """Request a consultation about one patient's studies."""
    from ...cloud.consultations import service

    rt = runtime(ctx)
    with rt.db.write() as conn:
        cid = service.create(conn, actor=operator(), studies=[(hospital, s) for s in dict.fromkeys(study)],
                             expert_ids=list(dict.fromkeys(expert or [])), requesting_doctor_id=requester,
                             purpose=purpose, scheduled_at=_check_at(at, Zone(timezone)), meeting_url=meeting_url,
                             max_experts=max_experts(rt))
    typer.echo(f"consultation {cid} added")


@app.command("list")
def consultation_list(ctx: typer.Context, as_json: AsJson = False, hospital: HospitalFilter = None,
                      status: Annotated[str | None, typer.Option(
                          "--status",
                          help="Only this state: requested, scheduled, in_progress, concluded, cancelled.")] = None,
                      timezone: Timezone = Settings.timezone) -> None:
    """Consultations, newest first."""
    from ...cloud.consultations import service

    with runtime(ctx).db.read() as conn:
        rows = service.list_consultations(conn, actor=operator(), hospital_id=hospital, status=status)
    rows = [_shown(r, Zone(timezone)) for r in rows]
    if as_json:
        echo_json(rows)
        return
    flat = [dict(r, studies=" ".join(s["studyId"] for s in r["studies"]),
                 experts=" ".join(x["doctorId"] for x in r["experts"])) for r in rows]
    emit(flat, False, ["consultationId", "hospitalId", "status", "scheduledAt", "studies", "experts"])


@app.command("show")
def consultation_show(ctx: typer.Context, id: ConsultationId, timezone: Timezone = Settings.timezone) -> None:
    """One consultation, as JSON."""
    from ...cloud.consultations import service

    with runtime(ctx).db.read() as conn:
        row = service.get(conn, actor=operator(), consultation_id=id)
    echo_json(_shown(row, Zone(timezone)))


@app.command("update")
def consultation_update(
    ctx: typer.Context,
    id: ConsultationId,
    expert: Annotated[list[str] | None, typer.Option("--expert", help="Replaces the invited experts.")] = None,
    purpose: Purpose = None,
    at: Annotated[str | None, typer.Option("--at", help="(Re)schedules it: yyyy-MM-dd HH:mm:ss in --timezone, "
                                                             "or a time with its offset.")] = None,
    meeting_url: MeetingUrl = None,
    timezone: Timezone = Settings.timezone,
) -> None:
    """Change a consultation that has not started."""
    from ...cloud.consultations import service

    rt = runtime(ctx)
    with rt.db.write() as conn:
        service.update_consultation(conn, actor=operator(), consultation_id=id,
                                    expert_ids=list(dict.fromkeys(expert)) if expert else None, purpose=purpose,
                                    scheduled_at=_check_at(at, Zone(timezone)), meeting_url=meeting_url,
                                    max_experts=max_experts(rt))
    typer.echo(f"consultation {id} updated")


@app.command("start")
def consultation_start(ctx: typer.Context, id: ConsultationId) -> None:
    """The consultation begins: no more edits or cancelling."""
    _transition(ctx, id, "start")
    typer.echo(f"consultation {id} started")


@app.command("cancel")
def consultation_cancel(ctx: typer.Context, id: ConsultationId) -> None:
    """Cancel a consultation that has not started."""
    _transition(ctx, id, "cancel")
    typer.echo(f"consultation {id} cancelled")


def _transition(ctx: typer.Context, consultation_id: str, verb: Literal["start", "cancel"]) -> None:
    from ...cloud.consultations import service

    move = service.start if verb == "start" else service.cancel
    with runtime(ctx).db.write() as conn:
        move(conn, actor=operator(), consultation_id=consultation_id)


@app.command("conclude")
def consultation_conclude(ctx: typer.Context, id: ConsultationId,
                          doctor_id: Annotated[str, typer.Option("--doctor", help="The invited expert concluding.")],
                          text: Annotated[str, typer.Option("--text", help="The experts' conclusion.")]) -> None:
    """Record the experts' conclusion; it cannot change afterwards."""
    from ...cloud.consultations import service

    with runtime(ctx).db.write() as conn:
        service.conclude(conn, actor=operator(), consultation_id=id, doctor_id=doctor_id, conclusion=text)
    typer.echo(f"consultation {id} concluded (the conclusion is now locked)")
