"""The options several commands share, declared once with their help line.

Option names are an interface that operators' scripts depend on. A default
that `Settings` also has is taken from it (the commands write `= Settings.x`),
so the command line and the settings cannot disagree.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from ..core.errors import Invalid
from ..core.times import Zone
from ..settings import (
    ENV_DATA_DIR,
    ENV_DATABASE_URL,
    ENV_DICOM_PORT,
    ENV_HTTP_PORT,
    ENV_LOG_FORMAT,
    ENV_LOG_LEVEL,
    ENV_MAX_EXPERTS,
    ENV_RATE_LIMIT,
    ENV_TIMEZONE,
    LOG_FORMATS,
    LOG_LEVELS,
    Settings,
)

DataDir = Annotated[str | None, typer.Option("--data-dir", envvar=ENV_DATA_DIR, help="Data directory.")]
DatabaseUrl = Annotated[
    str | None,
    typer.Option("--database-url", envvar=ENV_DATABASE_URL,
                 help="postgresql+psycopg://… (default: SQLite in the data dir)."),
]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON.")]
HospitalFilter = Annotated[str | None, typer.Option("--hospital", help="Only this hospital's.")]


def _zone_name(name: str) -> str:
    try:
        Zone(name)
    except ValueError as e:
        raise typer.BadParameter(str(e)) from None
    return name


Timezone = Annotated[str, typer.Option(
    "--timezone", envvar=ENV_TIMEZONE, callback=_zone_name,
    help="IANA time zone of the times shown and read (a time typed with an offset means that instant).")]


def read_time(zone: Zone, text: str | None) -> float | None:
    """Unix seconds of a time option such as --since (None when not given); refused, saying why,
    when it is not a time."""
    if text is None:
        return None
    try:
        return zone.parse(text)
    except ValueError as e:
        raise Invalid(str(e)) from e


# Options of the server commands, shared by `serve`, `gateway` and `cloud`.
Host = Annotated[str, typer.Option("--host", help="Address to listen on (0.0.0.0: every interface).")]
HttpPort = Annotated[int, typer.Option("--http-port", envvar=ENV_HTTP_PORT,
                                       help="HTTP port: RIS API, patient pages, partners' API, DICOMweb.")]
DicomPort = Annotated[int, typer.Option("--dicom-port", envvar=ENV_DICOM_PORT,
                                        help="DICOM port (C-ECHO, C-STORE, C-FIND).")]
AeTitle = Annotated[str, typer.Option("--ae-title", help="Yingyun's AE title: what a PACS calls.")]
PublicUrl = Annotated[str | None, typer.Option(
    "--public-url", help="Base URL patients' phones reach, encoded in the QR codes (default http://127.0.0.1:PORT, "
                         "which only this machine can open).")]
StableSeconds = Annotated[float, typer.Option("--stable-seconds",
                                              help="A study with no new instance for this long becomes stable.")]
TlsCert = Annotated[str | None, typer.Option("--tls-cert",
                                             help="PEM certificate (chain): serve HTTPS; with --tls-key.")]
TlsKey = Annotated[str | None, typer.Option("--tls-key", help="PEM private key of --tls-cert.")]
TrustedProxy = Annotated[list[str] | None, typer.Option(
    "--trusted-proxy", help="CIDR of a reverse proxy whose X-Forwarded-For counts (repeat).")]
AcceptAnyAe = Annotated[bool, typer.Option(
    "--accept-any-ae", help="Accept DICOM from any calling AE title (trials; see --default-hospital).")]
DefaultHospital = Annotated[str | None, typer.Option(
    "--default-hospital", help="Hospital that --accept-any-ae files images under (needed when several exist).")]
Workers = Annotated[int, typer.Option("--workers", help="HTTP worker processes.")]
DicomWorkers = Annotated[int, typer.Option("--dicom-workers", help="DICOM receiver processes sharing the port.")]
MaxAssociations = Annotated[int, typer.Option("--max-associations", min=1,
                                              help="DICOM associations at once, shared by every receiver process.")]
Hl7Port = Annotated[int | None, typer.Option(
    "--hl7-port", help="Listen for HL7 v2 over MLLP on this port (senders: `yingyun admin hl7-sender add`); "
                       "off when not given.")]
RisReportUrl = Annotated[str | None, typer.Option(
    "--ris-report-url", help="POST final reports (signed, /ris/report/add fields) to the hospital's RIS here; "
                             "a hospital's own URL comes first (`yingyun admin hospital ris-report-url`).")]
Hl7ReportTo = Annotated[str | None, typer.Option(
    "--hl7-report-to", help="HOST:PORT: final reports also go there as HL7 ORU^R01 over MLLP.")]
# Reconciliation that heals (gateway/heal.py), shared by `serve` and `gateway`.
HealInterval = Annotated[float, typer.Option(
    "--heal-interval", help="Minutes between passes that retrieve what reconciliation finds missing from the "
                            "hospital's PACS (C-FIND, then C-MOVE or C-GET; 0: none).")]
HealPerPacs = Annotated[int, typer.Option("--heal-per-pacs", min=1, help="Studies healed per PACS in one pass.")]
HealAssociations = Annotated[int, typer.Option(
    "--heal-associations", min=1, help="PACS a heal pass asks at once (one association each).")]
BlobUrl = Annotated[str | None, typer.Option("--blob-url", help="s3://bucket/prefix (AWS_* env) or a folder.")]

# Options of the cloud side, shared by `serve` and `cloud`.
Verify = Annotated[str, typer.Option("--verify", help="How patients prove who they are on the QR link: last4 | sms.")]
SmsSender = Annotated[str, typer.Option("--sms-sender", help="How SMS codes go out: log (server log, trials) | http.")]
SmsUrl = Annotated[str | None, typer.Option("--sms-url", help="SMS gateway URL for --sms-sender http.")]
CorsOrigin = Annotated[list[str] | None, typer.Option(
    "--cors-origin", help="Origin allowed to call /dicomweb (repeat; '*' any).")]
RateLimit = Annotated[int, typer.Option("--rate-limit", envvar=ENV_RATE_LIMIT,
                                        help="Requests per minute per partner on /thirdparty (code 90003 beyond; "
                                             "`admin ratelimit set` overrides per partner; 0: unlimited).")]
MaxExperts = Annotated[int, typer.Option("--max-experts", envvar=ENV_MAX_EXPERTS,
                                         help="Experts one consultation may invite (40011 beyond).")]
CallbackTimeout = Annotated[float, typer.Option("--callback-timeout",
                                                help="Seconds a partner has to answer a callback.")]
CallbackConcurrency = Annotated[int, typer.Option("--callback-concurrency",
                                                  help="Callback requests in flight to one partner.")]
AllowConcurrentSessions = Annotated[bool, typer.Option(
    "--allow-concurrent-sessions",
    help="Let a staff user stay signed in on several devices (else a new sign-in ends the older session: 20007).")]
RequireTotpForOperators = Annotated[bool, typer.Option(
    "--require-totp-for-operators", help="Operators sign in with a TOTP second factor or not at all.")]
# Shared by `serve`, `gateway` and `cloud`: every role ingests and serves instances.
MaxInflated = Annotated[int, typer.Option("--max-inflated-mib", min=1,
                                          help="MiB a deflated dataset may inflate to (larger: refused 0xA700).")]
MAX_INFLATED_MIB = Settings.max_inflated_bytes // 2**20

def one_of(*choices: str) -> Any:
    """A callback refusing a value that is not one of `choices`, naming them."""
    def check(value: str) -> str:
        if value not in choices:
            raise typer.BadParameter(f"{value!r} is not one of {', '.join(choices)}")
        return value
    return check


# Operations, shared by `serve`, `gateway` and `cloud`.
LogLevel = Annotated[str, typer.Option("--log-level", envvar=ENV_LOG_LEVEL, callback=one_of(*LOG_LEVELS),
                                       help="Least severity logged.")]
LogFormat = Annotated[str, typer.Option("--log-format", envvar=ENV_LOG_FORMAT, callback=one_of(*LOG_FORMATS),
                                        help="text, or json: one object a line, with the request or association id.")]
AccessLog = Annotated[bool, typer.Option("--access-log", help="Log every HTTP request (tokens and query values "
                                                              "redacted).")]
MetricsAllow = Annotated[list[str] | None, typer.Option(
    "--metrics-allow", help="CIDR allowed to read /metrics (repeat; default: anyone who reaches the port).")]

# Retention and storage verification, shared by `serve`, `gateway` and `cloud`: each side purges and scrubs
# what it holds.
PurgeDeletedDays = Annotated[float, typer.Option(
    "--purge-deleted-days", help="Purge a study (blobs, index rows, links; a tombstone stays) this many days after "
                                 "the RIS deleted it; legal holds are never purged (0: keep deleted studies).")]
ScrubInterval = Annotated[float, typer.Option(
    "--scrub-interval", help="Hours from the end of one scrub pass (every blob re-read and checked against its "
                             "digest) to the start of the next (0: no background scrub).")]
ScrubRateMb = Annotated[float, typer.Option("--scrub-rate-mb", help="MB/s the scrub reads at most.")]
