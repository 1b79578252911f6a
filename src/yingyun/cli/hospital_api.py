"""`yingyun admin doctor|consultation|callbacks|ratelimit`: the internet-hospital side, for operators.

Registered on the `admin` group by cli.main (`register(admin)`).
"""

from __future__ import annotations

import json
import os
import time
from typing import Annotated, NoReturn, Optional

import typer

from ..core.errors import YingyunError
from ..core.times import DEFAULT_TIMEZONE, Zone
from .errors import describe, exit_code
from .options import AsJson, DatabaseUrl, DataDir, Timezone

DoctorId = Annotated[str, typer.Option("--id", help="Doctor id (as partners name the doctor).")]
ConsultationId = Annotated[str, typer.Option("--id", help="Consultation id (consultationId).")]
HospitalFilter = Annotated[Optional[str], typer.Option("--hospital", help="Only this hospital's.")]
AppIdOpt = Annotated[str, typer.Option("--app-id", help="The partner's appId.")]
Purpose = Annotated[Optional[str], typer.Option("--purpose", help="What the experts are asked.")]
MeetingUrl = Annotated[Optional[str], typer.Option("--meeting-url", help="Where the consultation meets online.")]


def _rt(data_dir, database_url):
    from .main import open_runtime

    return open_runtime(data_dir, database_url)


def _fail(e: YingyunError | str) -> NoReturn:
    from .main import fail

    if isinstance(e, YingyunError):
        fail(describe(e, vendor=True), exit_code(e))
    fail(e)


def _emit(rows: list[dict], as_json: bool, columns: list[str]) -> None:
    from .main import emit

    emit(rows, as_json, columns)


OPERATOR = "operator"


def _operator():
    from ..cloud.consultations.service import Actor

    return Actor(OPERATOR, None)


def _max_experts(rt) -> int:
    """The limit `serve --max-experts` applies, when the operator exported it as YINGYUN_MAX_EXPERTS."""
    from ..settings import ENV_MAX_EXPERTS

    value = os.environ.get(ENV_MAX_EXPERTS, "")
    return int(value) if value.isdigit() and int(value) > 0 else rt.settings.consultation_max_experts


# -- doctors -------------------------------------------------------------------------

doctor = typer.Typer(no_args_is_help=True, help="Doctors: request consultations and are invited as experts.")


@doctor.command("add")
def doctor_add(id: DoctorId, name: Annotated[str, typer.Option("--name", help="The doctor's name.")],
               hospital: Annotated[str, typer.Option("--hospital", help="The hospital the doctor works at.")],
               title: Annotated[Optional[str], typer.Option("--title", help="Title, e.g. 主任医师.")] = None,
               dept: Annotated[Optional[str], typer.Option("--dept", help="Department, e.g. 放射科.")] = None,
               data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """Add a doctor, or change an existing one."""
    from ..cloud.consultations import service

    rt = _rt(data_dir, database_url)
    try:
        with rt.db.write() as conn:
            created = service.add_doctor(conn, doctor_id=id, name=name, hospital_id=hospital, title=title, dept=dept,
                                         update_existing=True)
    except YingyunError as e:
        _fail(e)
    typer.echo(f"doctor {id} {'added' if created else 'updated'}")


@doctor.command("list")
def doctor_list(as_json: AsJson = False, hospital: HospitalFilter = None,
                data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """Every doctor."""
    from ..cloud.consultations import service

    rt = _rt(data_dir, database_url)
    with rt.db.read() as conn:
        rows = service.list_doctors(conn, hospitals=[hospital] if hospital else None)
    _emit(rows, as_json, ["doctorId", "name", "hospitalId", "title", "dept"])


@doctor.command("remove")
def doctor_remove(id: DoctorId, data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """Remove a doctor no consultation names (else refused, naming them)."""
    from ..cloud.consultations import service
    from ..tenancy import InUse

    rt = _rt(data_dir, database_url)
    try:
        with rt.db.write() as conn:
            service.remove_doctor(conn, doctor_id=id)
    except InUse as e:
        _fail(f"{e}: nothing was changed; a consultation's record keeps the doctors who took part")
    except YingyunError as e:
        _fail(e)
    typer.echo(f"doctor {id} removed")


# -- consultations ---------------------------------------------------------------------

consultation = typer.Typer(no_args_is_help=True, help="Remote consultations (会诊): requested -> scheduled -> "
                                                      "in_progress -> concluded, or cancelled.")


def _shown(c: dict, zone: Zone) -> dict:
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
        _fail(f"--at takes yyyy-MM-dd HH:mm:ss in {zone.name}, or a time with its offset (2026-12-01T09:30:00+08:00)")


@consultation.command("add")
def consultation_add(
    hospital: Annotated[str, typer.Option("--hospital", help="The hospital of the studies.")],
    study: Annotated[list[str], typer.Option("--study", help="studyId (repeat for several of the patient's studies).")],
    expert: Annotated[Optional[list[str]], typer.Option("--expert", help="Invited expert doctor id (repeatable).")] = None,
    requester: Annotated[Optional[str], typer.Option("--requester", help="Requesting doctor id.")] = None,
    purpose: Purpose = None,
    at: Annotated[Optional[str], typer.Option("--at", help="Schedules it: yyyy-MM-dd HH:mm:ss in --timezone, "
                                                             "or a time with its offset.")] = None,
    meeting_url: MeetingUrl = None,
    timezone: Timezone = DEFAULT_TIMEZONE,
    data_dir: DataDir = None, database_url: DatabaseUrl = None,
) -> None:
    """Request a consultation about one patient's studies."""
    from ..cloud.consultations import service

    rt = _rt(data_dir, database_url)
    try:
        with rt.db.write() as conn:
            cid = service.create(conn, actor=_operator(), studies=[(hospital, s) for s in dict.fromkeys(study)],
                                 expert_ids=list(dict.fromkeys(expert or [])), requesting_doctor_id=requester,
                                 purpose=purpose, scheduled_at=_check_at(at, Zone(timezone)), meeting_url=meeting_url,
                                 max_experts=_max_experts(rt))
    except YingyunError as e:
        _fail(e)
    typer.echo(f"consultation {cid} added")


@consultation.command("list")
def consultation_list(as_json: AsJson = False, hospital: HospitalFilter = None,
                      status: Annotated[Optional[str], typer.Option(
                          "--status", help="Only this state: requested, scheduled, in_progress, concluded, cancelled.")] = None,
                      timezone: Timezone = DEFAULT_TIMEZONE, data_dir: DataDir = None,
                      database_url: DatabaseUrl = None) -> None:
    """Consultations, newest first."""
    from ..cloud.consultations import service

    rt = _rt(data_dir, database_url)
    try:
        with rt.db.read() as conn:
            rows = service.list_consultations(conn, actor=_operator(), hospital_id=hospital, status=status)
    except YingyunError as e:
        _fail(e)
    rows = [_shown(r, Zone(timezone)) for r in rows]
    if as_json:
        typer.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    flat = [dict(r, studies=" ".join(s["studyId"] for s in r["studies"]),
                 experts=" ".join(x["doctorId"] for x in r["experts"])) for r in rows]
    _emit(flat, False, ["consultationId", "hospitalId", "status", "scheduledAt", "studies", "experts"])


@consultation.command("show")
def consultation_show(id: ConsultationId, timezone: Timezone = DEFAULT_TIMEZONE, data_dir: DataDir = None,
                      database_url: DatabaseUrl = None) -> None:
    """One consultation, as JSON."""
    from ..cloud.consultations import service

    rt = _rt(data_dir, database_url)
    try:
        with rt.db.read() as conn:
            row = service.get(conn, actor=_operator(), consultation_id=id)
    except YingyunError as e:
        _fail(e)
    typer.echo(json.dumps(_shown(row, Zone(timezone)), ensure_ascii=False, indent=2))


@consultation.command("update")
def consultation_update(
    id: ConsultationId,
    expert: Annotated[Optional[list[str]], typer.Option("--expert", help="Replaces the invited experts.")] = None,
    purpose: Purpose = None,
    at: Annotated[Optional[str], typer.Option("--at", help="(Re)schedules it: yyyy-MM-dd HH:mm:ss in --timezone, "
                                                             "or a time with its offset.")] = None,
    meeting_url: MeetingUrl = None,
    timezone: Timezone = DEFAULT_TIMEZONE,
    data_dir: DataDir = None, database_url: DatabaseUrl = None,
) -> None:
    """Change a consultation that has not started."""
    from ..cloud.consultations import service

    rt = _rt(data_dir, database_url)
    try:
        with rt.db.write() as conn:
            service.update_consultation(conn, actor=_operator(), consultation_id=id,
                                        expert_ids=list(dict.fromkeys(expert)) if expert else None, purpose=purpose,
                                        scheduled_at=_check_at(at, Zone(timezone)), meeting_url=meeting_url,
                                        max_experts=_max_experts(rt))
    except YingyunError as e:
        _fail(e)
    typer.echo(f"consultation {id} updated")


def _transition(verb: str):
    def command(id: ConsultationId, data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
        from ..cloud.consultations import service

        rt = _rt(data_dir, database_url)
        try:
            with rt.db.write() as conn:
                getattr(service, verb)(conn, actor=_operator(), consultation_id=id)
        except YingyunError as e:
            _fail(e)
        typer.echo(f"consultation {id} {'started' if verb == 'start' else 'cancelled'}")

    command.__doc__ = {"start": "The consultation begins: no more edits or cancelling.",
                       "cancel": "Cancel a consultation that has not started."}[verb]
    return command


consultation.command("start")(_transition("start"))
consultation.command("cancel")(_transition("cancel"))


@consultation.command("conclude")
def consultation_conclude(id: ConsultationId,
                          doctor_id: Annotated[str, typer.Option("--doctor", help="The invited expert concluding.")],
                          text: Annotated[str, typer.Option("--text", help="The experts' conclusion.")],
                          data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """Record the experts' conclusion; it cannot change afterwards."""
    from ..cloud.consultations import service

    rt = _rt(data_dir, database_url)
    try:
        with rt.db.write() as conn:
            service.conclude(conn, actor=_operator(), consultation_id=id, doctor_id=doctor_id, conclusion=text)
    except YingyunError as e:
        _fail(e)
    typer.echo(f"consultation {id} concluded (the conclusion is now locked)")


# -- callbacks ------------------------------------------------------------------------------

callbacks = typer.Typer(help="Status callbacks to partners: what was delivered, what is failing, replay parked ones.")


def delivery_rows(rt, *, failed: bool, zone: Zone) -> list[dict]:
    from ..cloud.callbacks.events import KIND
    from ..storage.queue import PENDING, SqlJobQueue

    out = []
    for j in SqlJobQueue(rt.db).list(kind=KIND, failed=failed):
        p = j.payload
        out.append({
            "id": j.pk, "eventId": j.event_id, "appId": p.get("appId"), "hospitalId": p.get("hospitalId"),
            "studyId": p.get("studyId"), "status": p.get("status"), "state": j.state, "attempts": j.attempts,
            "lastError": j.last_error, "nextAttemptAt": zone.show(j.next_attempt_at) if j.state == PENDING else None,
            "createdAt": zone.show(j.created_at),
        })
    return out


@callbacks.callback(invoke_without_command=True)
def callbacks_list(ctx: typer.Context, as_json: AsJson = False,
                   failed: Annotated[bool, typer.Option("--failed", help="Only parked ones and pending ones whose "
                                                                         "last attempt failed.")] = False,
                   timezone: Timezone = DEFAULT_TIMEZONE, data_dir: DataDir = None,
                   database_url: DatabaseUrl = None) -> None:
    """One object per delivery: id, eventId, appId, studyId, status, state, attempts, lastError, nextAttemptAt."""
    if ctx.invoked_subcommand is not None:
        return
    rows = delivery_rows(_rt(data_dir, database_url), failed=failed, zone=Zone(timezone))
    _emit(rows, as_json, ["id", "appId", "studyId", "status", "state", "attempts", "nextAttemptAt", "lastError"])


@callbacks.command("replay")
def callbacks_replay(id: Annotated[Optional[int], typer.Option("--id", help="One parked delivery.")] = None,
                     all_parked: Annotated[bool, typer.Option("--all-parked", help="Every parked delivery.")] = False,
                     data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """Send parked deliveries again (same eventId; a new retry cycle)."""
    from ..cloud.callbacks.events import KIND
    from ..storage.queue import PARKED, SqlJobQueue

    if (id is None) == (not all_parked):
        _fail("give --id ID or --all-parked")
    rt = _rt(data_dir, database_url)
    queue = SqlJobQueue(rt.db)
    if id is not None:
        job = queue.get(id)
        if job is None or job.kind != KIND:
            _fail(f"no callback delivery {id}")
        if job.state != PARKED:
            _fail(f"delivery {id} is {job.state}, not parked")
    n = queue.replay(kind=KIND, now=time.time(), pk=id, all_parked=all_parked)
    typer.echo(f"{n} delivery(ies) queued again")


# -- rate limits ---------------------------------------------------------------------------

ratelimit = typer.Typer(no_args_is_help=True, help="Per-partner request limits on /thirdparty/* (code 90003).")


@ratelimit.command("set")
def ratelimit_set(app_id: AppIdOpt,
                  per_minute: Annotated[int, typer.Option("--per-minute", help="Requests per minute; 0: unlimited.")],
                  data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """Give one partner a limit of its own (instead of serve's --rate-limit)."""
    from ..cloud.hospital_api.ratelimit import set_limit

    if per_minute < 0:
        _fail("--per-minute must be >= 0")
    rt = _rt(data_dir, database_url)
    if rt.tenancy.partner(app_id) is None:
        _fail(f"no partner {app_id!r}")
    with rt.db.write() as conn:
        set_limit(conn, app_id=app_id, per_window=per_minute, now=time.time())
    typer.echo(f"partner {app_id}: {per_minute or 'unlimited'} requests per minute")


@ratelimit.command("list")
def ratelimit_list(as_json: AsJson = False, data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """Partners with a limit of their own."""
    from ..cloud.hospital_api.ratelimit import list_limits

    rt = _rt(data_dir, database_url)
    with rt.db.read() as conn:
        _emit(list_limits(conn), as_json, ["appId", "perMinute"])


@ratelimit.command("remove")
def ratelimit_remove(app_id: AppIdOpt, data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """Put a partner back on the default limit."""
    from ..cloud.hospital_api.ratelimit import remove_limit

    rt = _rt(data_dir, database_url)
    with rt.db.write() as conn:
        if not remove_limit(conn, app_id=app_id):
            _fail(f"partner {app_id!r} has no limit of its own")
    typer.echo(f"partner {app_id}: back to the default limit")


def register(admin: typer.Typer) -> None:
    admin.add_typer(doctor, name="doctor")
    admin.add_typer(consultation, name="consultation")
    admin.add_typer(callbacks, name="callbacks")
    admin.add_typer(ratelimit, name="ratelimit")
