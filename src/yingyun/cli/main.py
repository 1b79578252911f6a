"""`yingyun`: serve the platform, and administer it (noun, then verb).

Option names here are an interface that operators' scripts depend on.
"""

from __future__ import annotations

import json
import sys
import unicodedata
from typing import Annotated, NoReturn, Optional

import typer

from .. import __version__
from ..core.times import DEFAULT_TIMEZONE, Zone
from ..runtime import OpenRefused, Runtime, open_database, schema_problem
from ..settings import Settings, parse_proxies, resolve_data_dir, resolve_database_url
from ..tenancy import InUse, Invalid, NotFound
from .options import (  # split.py reads them from this module too
    MAX_INFLATED_MIB,
    AcceptAnyAe,
    AeTitle,
    AsJson,
    BlobUrl,
    CallbackConcurrency,
    CallbackTimeout,
    CorsOrigin,
    DatabaseUrl,
    DataDir,
    DefaultHospital,
    DicomPort,
    DicomWorkers,
    Host,
    HttpPort,
    MaxExperts,
    MaxAssociations,
    MaxInflated,
    PublicUrl,
    RateLimit,
    SmsSender,
    SmsUrl,
    StableSeconds,
    Timezone,
    TlsCert,
    TlsKey,
    TrustedProxy,
    Verify,
    Workers,
)

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False, help="Yingyun (影云) medical-imaging cloud.")
admin = typer.Typer(no_args_is_help=True, help="Administer tenants, peers and data (works while serve runs).")
app.add_typer(admin, name="admin")
# The runtimes this command opened: closed when it ends (the import's flushes its blob journal).
_opened_runtimes: list[Runtime] = []


def close_runtimes() -> None:
    while _opened_runtimes:
        _opened_runtimes.pop().close()


@admin.callback()
def _admin(ctx: typer.Context) -> None:
    ctx.call_on_close(close_runtimes)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"yingyun {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: Annotated[bool, typer.Option("--version", callback=_print_version, is_eager=True,
                                                help="Print the version and exit.")] = False) -> None:
    """Yingyun (影云) medical-imaging cloud."""


def cloud_options(*, verify: str, sms_sender: str, sms_url: str | None, cors_origin: list[str] | None, rate_limit: int,
                  max_experts: int, callback_timeout: float, callback_concurrency: int) -> dict:
    """Settings fields of the cloud-side options, checked."""
    if verify not in ("last4", "sms"):
        fail("--verify is last4 or sms")
    if sms_sender not in ("log", "http"):
        fail("--sms-sender is log or http")
    if sms_sender == "http" and not sms_url:
        fail("--sms-sender http needs --sms-url")
    if rate_limit < 0 or max_experts < 1 or callback_concurrency < 1 or callback_timeout <= 0:
        fail("--rate-limit >= 0, --max-experts >= 1, --callback-concurrency >= 1, --callback-timeout > 0")
    return dict(verify_method=verify, sms_sender=sms_sender, sms_url=sms_url, cors_origins=list(cors_origin or []),
                thirdparty_rate_per_minute=rate_limit, consultation_max_experts=max_experts,
                callback_timeout_s=callback_timeout, callback_per_partner=callback_concurrency)


def admin_settings(data_dir: str | None, database_url: str | None) -> Settings:
    ddir = resolve_data_dir(data_dir)
    return Settings(data_dir=ddir, database_url=resolve_database_url(database_url, ddir))


def open_runtime(data_dir: str | None, database_url: str | None) -> Runtime:
    """The runtime of a command run beside the server: it never creates a data dir
    or keys and never migrates; what it cannot use as it is, it refuses with the
    reason. Closed when the command ends."""
    return _opened(admin_settings(data_dir, database_url), create=False)


def _opened(settings: Settings, *, create: bool) -> Runtime:
    try:
        rt = Runtime.open(settings, create_keys=create, migrate=create)
    except OpenRefused as e:
        fail(str(e))
    _opened_runtimes.append(rt)
    return rt


def fail(message: str, code: int = 1) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def emit(rows: list[dict], as_json: bool, columns: list[str]) -> None:
    """Rows as JSON, or as a table whose columns line up on a terminal (CJK characters are two columns wide)."""
    if as_json:
        typer.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    if not rows:
        typer.echo("(none)")
        return
    table = [columns] + [[_cell(r.get(c)) for c in columns] for r in rows]
    widths = [max(display_width(line[i]) for line in table) for i in range(len(columns))]
    for line in table:
        typer.echo("  ".join(text + " " * (width - display_width(text)) for text, width in zip(line, widths, strict=True)).rstrip())


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return ",".join(map(str, value))
    return str(value)


def display_width(text: str) -> int:
    """Terminal columns of a text: wide and full-width characters take two, combining marks none."""
    return sum(0 if unicodedata.combining(ch) else 2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


@app.command()
def serve(
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    host: Host = "0.0.0.0",
    http_port: HttpPort = 8080,
    dicom_port: DicomPort = 11112,
    ae_title: AeTitle = "YINGYUN",
    public_url: PublicUrl = None,
    stable_seconds: StableSeconds = 60.0,
    tls_cert: TlsCert = None,
    tls_key: TlsKey = None,
    trusted_proxy: TrustedProxy = None,
    demo: Annotated[bool, typer.Option("--demo", help="Seed a demo tenant on an empty data dir.")] = False,
    accept_any_ae: AcceptAnyAe = False,
    default_hospital: DefaultHospital = None,
    workers: Workers = 1,
    dicom_workers: DicomWorkers = 2,
    max_associations: MaxAssociations = Settings.max_associations,
    blob_url: BlobUrl = None,
    timezone: Timezone = DEFAULT_TIMEZONE,
    verify: Verify = Settings.verify_method,
    sms_sender: SmsSender = Settings.sms_sender,
    sms_url: SmsUrl = None,
    cors_origin: CorsOrigin = None,
    rate_limit: RateLimit = Settings.thirdparty_rate_per_minute,
    max_experts: MaxExperts = Settings.consultation_max_experts,
    callback_timeout: CallbackTimeout = Settings.callback_timeout_s,
    callback_concurrency: CallbackConcurrency = Settings.callback_per_partner,
    max_inflated_mib: MaxInflated = MAX_INFLATED_MIB,
) -> None:
    """Run the gateway and the cloud together over one database and one blob store."""
    from ..serve import run

    if bool(tls_cert) != bool(tls_key):
        fail("--tls-cert and --tls-key go together")
    cloud = cloud_options(verify=verify, sms_sender=sms_sender, sms_url=sms_url, cors_origin=cors_origin,
                          rate_limit=rate_limit, max_experts=max_experts, callback_timeout=callback_timeout,
                          callback_concurrency=callback_concurrency)
    ddir = resolve_data_dir(data_dir)
    settings = Settings(
        data_dir=ddir, database_url=resolve_database_url(database_url, ddir), host=host, http_port=http_port,
        dicom_port=dicom_port, ae_title=ae_title, public_url=public_url or "", stable_seconds=stable_seconds,
        tls_cert=tls_cert, tls_key=tls_key, trusted_proxies=parse_proxies(trusted_proxy), demo=demo,
        accept_any_ae=accept_any_ae, default_hospital=default_hospital, http_workers=workers,
        dicom_workers=dicom_workers, max_associations=max_associations, blob_url=blob_url or "", max_inflated_bytes=max_inflated_mib * 2**20,
        timezone=timezone, **cloud,
    )
    run(settings)


# -- unions ------------------------------------------------------------------

union = typer.Typer(no_args_is_help=True, help="Medical unions (医联体): groups of hospitals a partner may be granted.")
admin.add_typer(union, name="union")

UnionId = Annotated[str, typer.Option("--id", help="Union id: 1-64 of A-Z a-z 0-9 . _ -")]
HospitalId = Annotated[str, typer.Option("--id", help="Hospital id: 1-64 of A-Z a-z 0-9 . _ - (names its archive folders).")]
AppId = Annotated[str, typer.Option("--app-id", help="The partner's appId (its `appId` header).")]
PacsAe = Annotated[str, typer.Option("--ae-title", help="The PACS's calling AE title.")]


@union.command("add")
def union_add(id: UnionId, name: Annotated[str, typer.Option("--name", help="Display name.")],
              data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """Add a union, or rename an existing one."""
    rt = open_runtime(data_dir, database_url)
    try:
        created = rt.tenancy.add_union(union_id=id, name=name)
    except (Invalid, NotFound) as e:
        fail(str(e))
    typer.echo(f"union {id} {'added' if created else 'updated'}")


@union.command("list")
def union_list(as_json: AsJson = False, data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """Every union."""
    emit(open_runtime(data_dir, database_url).tenancy.list_unions(), as_json, ["id", "name"])


@union.command("remove")
def union_remove(id: UnionId, data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """Remove a union no hospital belongs to and no partner is granted (else refused, naming them)."""
    try:
        open_runtime(data_dir, database_url).tenancy.remove_union(union_id=id)
    except NotFound as e:
        fail(str(e))
    except InUse as e:
        fail(f"{e}: nothing was changed; move its hospitals to another union "
             f"(`yingyun admin hospital add --id ID --name NAME --union OTHER`) and change those partners' grants first")
    typer.echo(f"union {id} removed")


# -- hospitals ---------------------------------------------------------------

hospital = typer.Typer(no_args_is_help=True, help="Hospitals: every study, image and report belongs to one.")
admin.add_typer(hospital, name="hospital")


@hospital.command("add")
def hospital_add(id: HospitalId, name: Annotated[str, typer.Option("--name", help="Display name (patients see it).")],
                 union: Annotated[Optional[str], typer.Option("--union", help="The union it belongs to.")] = None,
                 data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """Add a hospital, or change an existing one's name or union."""
    try:
        created = open_runtime(data_dir, database_url).tenancy.add_hospital(hospital_id=id, name=name, union_id=union)
    except (Invalid, NotFound) as e:
        fail(str(e))
    typer.echo(f"hospital {id} {'added' if created else 'updated'}")


@hospital.command("list")
def hospital_list(as_json: AsJson = False, data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """Every hospital."""
    emit(open_runtime(data_dir, database_url).tenancy.list_hospitals(), as_json, ["id", "name", "unionId", "enabled"])


@hospital.command("remove")
def hospital_remove(id: HospitalId, data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """Remove a hospital that holds nothing (else refused, naming what holds it: disable it instead)."""
    try:
        open_runtime(data_dir, database_url).tenancy.remove_hospital(hospital_id=id)
    except NotFound as e:
        fail(str(e))
    except InUse as e:
        fail(f"{e}: nothing was changed; disable it instead (`yingyun admin hospital disable --id {id}`)")
    typer.echo(f"hospital {id} removed")


@hospital.command("disable")
def hospital_disable(id: HospitalId, data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """Stop taking its data (RIS calls 20010, C-STORE and STOW refused); its patient pages say so. Nothing is deleted."""
    try:
        open_runtime(data_dir, database_url).tenancy.set_hospital_enabled(hospital_id=id, enabled=False)
    except NotFound as e:
        fail(str(e))
    typer.echo(f"hospital {id} disabled")


@hospital.command("enable")
def hospital_enable(id: HospitalId, data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """Take a disabled hospital's data again and open its patient pages."""
    try:
        open_runtime(data_dir, database_url).tenancy.set_hospital_enabled(hospital_id=id, enabled=True)
    except NotFound as e:
        fail(str(e))
    typer.echo(f"hospital {id} enabled")


# -- partners ----------------------------------------------------------------

partner = typer.Typer(no_args_is_help=True, help="Partners (appId + token): RIS integrations and internet hospitals.")
admin.add_typer(partner, name="partner")


@partner.command("add")
def partner_add(
    app_id: AppId,
    token: Annotated[Optional[str], typer.Option("--token", help="Exactly 32 ASCII characters; generated if omitted.")] = None,
    hospital: Annotated[Optional[list[str]], typer.Option(
        "--hospital", help="A hospital it may see (repeat); a RIS integration has exactly one, which owns what it sends.")] = None,
    union: Annotated[Optional[list[str]], typer.Option("--union", help="A union whose hospitals it may see (repeat).")] = None,
    callback_url: Annotated[Optional[str], typer.Option("--callback-url", help="Where status callbacks are POSTed.")] = None,
    mini_app_id: Annotated[Optional[str], typer.Option("--mini-app-id", help="Its mini-program's app id (uniAppId).")] = None,
    mini_path: Annotated[Optional[str], typer.Option("--mini-path", help="May use {reportId} {studyId} {hospitalId}.")] = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Add a partner (its token is printed once), or change an existing one."""
    rt = open_runtime(data_dir, database_url)
    try:
        created, issued = rt.tenancy.add_partner(app_id=app_id, token=token, hospitals=hospital or [], unions=union or [],
                                                 callback_url=callback_url, mini_app_id=mini_app_id, mini_path=mini_path)
    except (Invalid, NotFound) as e:
        fail(str(e))
    typer.echo(f"partner {app_id} {'added' if created else 'updated'}")
    if issued:
        typer.echo(f"token: {issued}")
        typer.echo("(shown once: store it now)", err=True)


@partner.command("list")
def partner_list(as_json: AsJson = False, data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """Every partner with its grants (never its tokens)."""
    emit(open_runtime(data_dir, database_url).tenancy.list_partners(), as_json,
         ["appId", "enabled", "hospitals", "unions", "callbackUrl", "liveTokens"])


@partner.command("remove")
def partner_remove(app_id: AppId, data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """Remove a partner, its grants and tokens, if nothing refers to it (else refused: disable it instead)."""
    try:
        open_runtime(data_dir, database_url).tenancy.remove_partner(app_id=app_id)
    except NotFound as e:
        fail(str(e))
    except InUse as e:
        fail(f"{e}: nothing was changed; disable it instead (`yingyun admin partner disable --app-id {app_id}`)")
    typer.echo(f"partner {app_id} removed")


@partner.command("disable")
def partner_disable(app_id: AppId, data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """Refuse the partner's calls (code 20010) until enabled again; nothing is deleted."""
    try:
        open_runtime(data_dir, database_url).tenancy.set_partner_enabled(app_id=app_id, enabled=False)
    except NotFound as e:
        fail(str(e))
    typer.echo(f"partner {app_id} disabled")


@partner.command("enable")
def partner_enable(app_id: AppId, data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """Accept a disabled partner's calls again."""
    try:
        open_runtime(data_dir, database_url).tenancy.set_partner_enabled(app_id=app_id, enabled=True)
    except NotFound as e:
        fail(str(e))
    typer.echo(f"partner {app_id} enabled")


@partner.command("rotate")
def partner_rotate(
    app_id: AppId,
    grace_hours: Annotated[float, typer.Option("--grace-hours", help="How long the old token keeps working.")] = 24.0,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Issue a new token (printed once); the old one keeps working for the grace period."""
    try:
        token = open_runtime(data_dir, database_url).tenancy.rotate_partner(app_id=app_id, grace_s=grace_hours * 3600)
    except NotFound as e:
        fail(str(e))
    typer.echo(f"token: {token}")
    typer.echo(f"(shown once; the previous token keeps working for {grace_hours:g} h)", err=True)


# -- PACS peers --------------------------------------------------------------

pacs = typer.Typer(no_args_is_help=True, help="PACS peers allowed to send DICOM (calling AE title + host).")
admin.add_typer(pacs, name="pacs")


@pacs.command("add")
def pacs_add(ae_title: PacsAe,
             host: Annotated[str, typer.Option("--host", help="Its host name or IP address (associations from elsewhere "
                                                               "are rejected).")],
             port: Annotated[int, typer.Option("--port", help="Its DICOM port.")],
             hospital: Annotated[str, typer.Option("--hospital", help="The hospital its images are filed under.")],
             data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """Let a PACS send images (C-STORE) and query (C-FIND), or change an existing one."""
    try:
        created = open_runtime(data_dir, database_url).tenancy.add_pacs(ae_title=ae_title, host=host, port=port, hospital_id=hospital)
    except (Invalid, NotFound) as e:
        fail(str(e))
    typer.echo(f"PACS {ae_title} {'added' if created else 'updated'}")


@pacs.command("list")
def pacs_list(as_json: AsJson = False, data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """Every registered PACS."""
    emit(open_runtime(data_dir, database_url).tenancy.list_pacs(), as_json, ["aeTitle", "host", "port", "hospitalId"])


@pacs.command("remove")
def pacs_remove(ae_title: PacsAe, data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """Stop accepting a PACS; what it sent stays."""
    try:
        open_runtime(data_dir, database_url).tenancy.remove_pacs(ae_title=ae_title)
    except NotFound as e:
        fail(str(e))
    typer.echo(f"PACS {ae_title} removed")


# -- DICOMweb bearer tokens ---------------------------------------------------

token_app = typer.Typer(no_args_is_help=True, help="Bearer tokens for DICOMweb tools (viewers, AI pipelines).")
admin.add_typer(token_app, name="token")

TokenName = Annotated[str, typer.Option("--name", help="The token's name (who or what uses it).")]


@token_app.command("add")
def token_add(
    name: TokenName,
    hospital: Annotated[Optional[list[str]], typer.Option("--hospital", help="A hospital the token may see (repeat).")] = None,
    all_hospitals: Annotated[bool, typer.Option("--all-hospitals", help="The token may see every hospital.")] = False,
    data_dir: DataDir = None, database_url: DatabaseUrl = None,
) -> None:
    """Issue a bearer token (printed once)."""
    from ..cloud.dicomweb import TokenError, TokenRegistry

    try:
        token = TokenRegistry(open_runtime(data_dir, database_url).db).add(
            name=name, hospitals=hospital or [], all_hospitals=all_hospitals)
    except TokenError as e:
        fail(str(e))
    typer.echo(f"token: {token}")
    typer.echo("(shown once: store it now; send it as 'Authorization: Bearer <token>')", err=True)


@token_app.command("list")
def token_list(as_json: AsJson = False, timezone: Timezone = DEFAULT_TIMEZONE, data_dir: DataDir = None,
               database_url: DatabaseUrl = None) -> None:
    """Every token, live or revoked (never the token itself)."""
    from ..cloud.dicomweb import TokenRegistry

    rows = shown(TokenRegistry(open_runtime(data_dir, database_url).db).list(), Zone(timezone), "createdAt", "revokedAt")
    if as_json:
        typer.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    emit([dict(r, hospitals="*" if r["allHospitals"] else ",".join(r["hospitals"])) for r in rows], False,
         ["name", "hospitals", "live"])


@token_app.command("revoke")
def token_revoke(name: TokenName, data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """Revoke a live token at once."""
    from ..cloud.dicomweb import TokenError, TokenRegistry

    try:
        TokenRegistry(open_runtime(data_dir, database_url).db).revoke(name=name)
    except TokenError as e:
        fail(str(e))
    typer.echo(f"token {name} revoked")


# -- studies -----------------------------------------------------------------


@admin.command("studies")
def studies(as_json: AsJson = False,
            hospital: Annotated[Optional[str], typer.Option("--hospital", help="Only this hospital's.")] = None,
            data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """Every study, RIS-known or DICOM-only, with what actually arrived."""
    from ..archive.listing import list_studies

    rt = open_runtime(data_dir, database_url)
    with rt.db.read() as conn:
        rows = list_studies(conn, hospital_id=hospital)
    if as_json:
        typer.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    flat = [dict(r, received=" ".join(f"{k}={v}" for k, v in r["received"].items()), warnings=len(r["warnings"])) for r in rows]
    emit(flat, False, ["hospitalId", "studyId", "accessNumber", "status", "deleted", "warnings", "received"])


@admin.command("reconcile")
def reconcile(
    as_json: AsJson = False,
    since: Annotated[Optional[str], typer.Option("--since", help="Only logs received since TIME (as printed, or "
                                                                   "yyyy-MM-dd[ HH:mm:ss] in --timezone).")] = None,
    hospital: Annotated[Optional[str], typer.Option("--hospital", help="Only this hospital's.")] = None,
    timezone: Timezone = DEFAULT_TIMEZONE,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Open discrepancies between the hospital's reconciliation logs and what arrived."""
    from ..archive.reconcile import discrepancies

    zone = Zone(timezone)
    since_ts = read_time(zone, since)
    rt = open_runtime(data_dir, database_url)
    with rt.db.read() as conn:
        rows = discrepancies(conn, since=since_ts, hospital_id=hospital, zone=zone)
    if as_json:
        typer.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    flat = [dict(r, expected=" ".join(f"{k}={v}" for k, v in r["expected"].items()),
                 received=" ".join(f"{k}={v}" for k, v in r["received"].items())) for r in rows]
    emit(flat, False, ["kind", "hospitalId", "studyId", "accessNumber", "expected", "received", "loggedAt"])


@admin.command("audit")
def audit(
    as_json: AsJson = False,
    study_uid: Annotated[Optional[str], typer.Option("--study-uid", help="Only this Study Instance UID.")] = None,
    link: Annotated[Optional[int], typer.Option("--link", help="Only this link (its id, as the audit shows it).")] = None,
    since: Annotated[Optional[str], typer.Option("--since", help="Only since TIME (as printed, or "
                                                                   "yyyy-MM-dd[ HH:mm:ss] in --timezone).")] = None,
    timezone: Timezone = DEFAULT_TIMEZONE,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Who opened which cloud-film page, image or download, when and from where."""
    from ..cloud.patient.audit import query

    zone = Zone(timezone)
    since_ts = read_time(zone, since)
    rt = open_runtime(data_dir, database_url)
    try:
        with rt.db.read() as conn:
            rows = query(conn, study_uid=study_uid, link_pk=link, since=since_ts, zone=zone)
    finally:
        rt.close()
    emit(rows, as_json, ["at", "access", "link", "linkKind", "hospitalId", "studyId", "studyUid", "client", "detail"])


def read_time(zone: Zone, text: str | None) -> float | None:
    """Unix seconds of a time option (None when not given); a clear error when it is not a time."""
    if text is None:
        return None
    try:
        return zone.parse(text)
    except ValueError as e:
        fail(str(e))


def shown(rows: list[dict], zone: Zone, *fields: str) -> list[dict]:
    """The rows with their Unix-seconds `fields` shown in `zone` (ISO 8601 with the offset)."""
    return [dict(r, **{f: zone.show_optional(r[f]) for f in fields if f in r}) for r in rows]


@app.command("import")
def import_(
    ctx: typer.Context,
    paths: Annotated[list[str], typer.Argument(help="Folders, zip files, DICOMDIR files or single DICOM files.")],
    hospital: Annotated[Optional[str], typer.Option("--hospital", help="Needed when several hospitals exist.")] = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary and every file's outcome as JSON.")] = False,
    blob_url: Annotated[Optional[str], typer.Option(
        "--blob-url", help="Where the server keeps blobs (default: where it last started with).")] = None,
) -> None:
    """Ingest DICOM files through the same durable, de-duplicating path as C-STORE.

    Exit status: 0 when every DICOM file found was stored (or already was),
    1 when a path does not exist (nothing is imported), 2 when a file failed.
    """
    from ..archive.importer import missing_paths, run_import, summary_text
    from ..storage import deployment

    ctx.call_on_close(close_runtimes)
    missing = missing_paths(paths)
    if missing:
        fail("no such file or folder: " + ", ".join(missing) + " (nothing imported)")
    rt = open_runtime(data_dir, database_url)
    with rt.db.read() as conn:
        servers = deployment.fact(conn, deployment.BLOB_STORE)
    # Set before the runtime opens its blob store: the import lands where the server reads.
    rt.settings.blob_url = blob_url or servers or ""
    if servers is not None and rt.settings.blob_location != servers:
        fail(f"the server keeps its blobs in {servers}, not {rt.settings.blob_location}: drop --blob-url or give that")
    hospitals = rt.tenancy.hospitals()
    if hospital is None:
        if len(hospitals) != 1:
            fail("name the hospital with --hospital (there are %d)" % len(hospitals))
        hospital = next(iter(hospitals))
    elif hospital not in hospitals:
        fail(f"no hospital {hospital!r}")
    if not hospitals[hospital]["enabled"]:
        fail(f"hospital {hospital} is disabled: it takes no data (`yingyun admin hospital enable --id {hospital}`)")
    summary = run_import(rt.instances, spool_dir=rt.settings.spool_dir,
                         hospital_id=hospital, paths=paths, out=sys.stderr)
    if as_json:
        typer.echo(json.dumps(summary, ensure_ascii=False, indent=2))
    else:
        typer.echo(summary_text(summary))
    if summary["failed"]:
        raise typer.Exit(2)


# -- the schema -----------------------------------------------------------------

db_app = typer.Typer(no_args_is_help=True, help="The database schema (only `db upgrade` and a server's start migrate).")
app.add_typer(db_app, name="db")


def schema_revision(settings: Settings) -> tuple[str | None, str | None]:
    """The database's schema revision and what keeps this program from it (None: at its head)."""
    db = open_database(settings)
    try:
        return db.revision(), schema_problem(db)
    finally:
        db.dispose()


@db_app.command("upgrade")
def db_upgrade(ctx: typer.Context, data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """Migrate the schema to this program's revision (under a lock: safe beside servers starting).

    On a new deployment it makes what a server's first start would: the data dir
    (owner-only), the key file unless the keys are in the environment, the schema."""
    from ..core.crypto import KEY_FILE_NAME, keys_in_environment

    ctx.call_on_close(close_runtimes)
    settings = admin_settings(data_dir, database_url)
    try:
        before, _ = schema_revision(settings)
    except OpenRefused:
        before = None  # nothing there yet
    new_dir = not settings.data_dir.exists()
    key_file = settings.data_dir / KEY_FILE_NAME
    new_keys = not keys_in_environment() and not key_file.exists()
    after = _opened(settings, create=True).db.revision()
    if new_dir:
        typer.echo(f"made the data dir {settings.data_dir.resolve()}")
    if new_keys:
        typer.echo(f"made a new key file {key_file.resolve()}: back it up (without it the identity data is lost)")
    typer.echo(f"schema at revision {after}" + (f" (was {before or '(none)'})" if before != after else " (unchanged)"))


def existing_schema(data_dir: str | None, database_url: str | None) -> tuple[str | None, str | None]:
    """`schema_revision` of a database that must exist (else the command fails, saying why)."""
    try:
        return schema_revision(admin_settings(data_dir, database_url))
    except OpenRefused as e:
        fail(str(e))


@db_app.command("current")
def db_current(data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """Print the schema revision the database is at ("(none)" if never migrated)."""
    revision, _ = existing_schema(data_dir, database_url)
    typer.echo(revision or "(none)")


@db_app.command("check")
def db_check(data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """Exit 0 when the schema is at this program's revision; else name both and exit 1."""
    revision, problem = existing_schema(data_dir, database_url)
    if problem is not None:
        fail(problem)
    typer.echo(f"schema at revision {revision}, as this program expects")


# -- internet hospital: doctors, consultations, callbacks, rate limits (cli/hospital_api.py) --
from .hospital_api import register as _register_hospital_api  # noqa: E402

_register_hospital_api(admin)


from . import split  # noqa: E402 - the split-deployment commands use the helpers above

split.register(app, admin, sys.modules[__name__])


def main() -> None:
    from ..storage.datadir import owner_only_umask

    owner_only_umask()  # whatever this command (or a library under it) creates is the owner's only
    app(prog_name="yingyun")


if __name__ == "__main__":
    sys.exit(main())
