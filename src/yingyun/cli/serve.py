"""`yingyun serve | gateway | cloud`: run the platform, both roles or one of a split deployment.

Every option lands in the `Settings` the server runs with, which checks them
(`Settings.__post_init__`, in the options' words); their defaults are its own.
An option's value goes to the field of its name (`settings_of`): a new option
needs no wiring here beyond its parameter, unless its field is named otherwise
(`RENAMED`) or its value is converted (`CONVERTED`). Every option is a key of
the `--config` file as well (cli/config.py).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Annotated, Any

import typer

from ..settings import ENV_GATEWAY_KEY, Settings, parse_networks, parse_proxies
from .config import ConfigFile
from .context import location_settings
from .options import (
    MAX_INFLATED_MIB,
    AcceptAnyAe,
    AccessLog,
    AllowConcurrentSessions,
    AeTitle,
    BlobUrl,
    CallbackConcurrency,
    CallbackTimeout,
    CorsOrigin,
    DatabaseUrl,
    DataDir,
    DefaultHospital,
    DicomPort,
    DicomWorkers,
    HealAssociations,
    HealInterval,
    HealPerPacs,
    Host,
    Hl7Port,
    Hl7ReportTo,
    HttpPort,
    LogFormat,
    LogLevel,
    MaxAssociations,
    MaxExperts,
    MaxInflated,
    MetricsAllow,
    PublicUrl,
    PurgeDeletedDays,
    RateLimit,
    RequireTotpForOperators,
    RisReportUrl,
    ScrubInterval,
    ScrubRateMb,
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


# Options whose Settings field is named otherwise (the rest fill the field of their name).
RENAMED = {"workers": "http_workers", "verify": "verify_method", "rate_limit": "thirdparty_rate_per_minute",
           "max_experts": "consultation_max_experts", "callback_timeout": "callback_timeout_s",
           "callback_concurrency": "callback_per_partner", "scrub_interval": "scrub_interval_hours",
           "heal_interval": "heal_interval_minutes"}
# Options whose value is converted into their field.
CONVERTED: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "trusted_proxy": ("trusted_proxies", parse_proxies),
    "metrics_allow": ("metrics_allow",
                      lambda v: parse_networks(v, option="--metrics-allow", field="metrics_allow")),
    "cors_origin": ("cors_origins", lambda v: list(v or [])),
    "max_inflated_mib": ("max_inflated_bytes", lambda v: v * 2**20),
}
# Read by location_settings (the environment's, else the default), or not a setting at all.
NOT_FIELDS = frozenset({"data_dir", "database_url", "config"})
# What each command is, beside its options.
ROLES: dict[str, dict[str, Any]] = {"serve": {}, "gateway": {"role": "gateway"},
                                    "cloud": {"role": "cloud", "dicom_enabled": False}}


def field_of(name: str) -> str | None:
    """The Settings field option `name` fills (None: it is not one field)."""
    if name in NOT_FIELDS:
        return name if name != "config" else None
    if name in CONVERTED:
        return None
    return RENAMED.get(name, name)


def settings_of(command: str, params: Mapping[str, Any]) -> Settings:
    """The settings `yingyun <command>` runs with, given its options' values. An option left at None was not
    given (no default of its own): the field keeps the settings' default."""
    fields = dict(ROLES[command])
    for name, value in params.items():
        if name in CONVERTED:
            field, convert = CONVERTED[name]
            fields[field] = convert(value)
        elif name not in NOT_FIELDS and value is not None:
            fields[RENAMED.get(name, name)] = value
    return location_settings(params.get("data_dir"), params.get("database_url"), **fields)


def _run(ctx: typer.Context) -> None:
    from .. import serve  # at the call: the server's imports are not the admin commands' to pay

    assert ctx.info_name is not None
    serve.run(settings_of(ctx.info_name, ctx.params))


def serve(
    ctx: typer.Context,
    config: ConfigFile = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    host: Host = Settings.host,
    http_port: HttpPort = Settings.http_port,
    dicom_port: DicomPort = Settings.dicom_port,
    ae_title: AeTitle = Settings.ae_title,
    public_url: PublicUrl = None,
    stable_seconds: StableSeconds = Settings.stable_seconds,
    tls_cert: TlsCert = None,
    tls_key: TlsKey = None,
    trusted_proxy: TrustedProxy = None,
    demo: Annotated[bool, typer.Option("--demo", help="Seed a demo tenant on an empty data dir.")] = Settings.demo,
    accept_any_ae: AcceptAnyAe = Settings.accept_any_ae,
    default_hospital: DefaultHospital = None,
    workers: Workers = Settings.http_workers,
    dicom_workers: DicomWorkers = Settings.dicom_workers,
    max_associations: MaxAssociations = Settings.max_associations,
    blob_url: BlobUrl = None,
    timezone: Timezone = Settings.timezone,
    verify: Verify = Settings.verify_method,
    sms_sender: SmsSender = Settings.sms_sender,
    sms_url: SmsUrl = None,
    cors_origin: CorsOrigin = None,
    rate_limit: RateLimit = Settings.thirdparty_rate_per_minute,
    max_experts: MaxExperts = Settings.consultation_max_experts,
    callback_timeout: CallbackTimeout = Settings.callback_timeout_s,
    callback_concurrency: CallbackConcurrency = Settings.callback_per_partner,
    max_inflated_mib: MaxInflated = MAX_INFLATED_MIB,
    log_level: LogLevel = Settings.log_level,
    log_format: LogFormat = Settings.log_format,
    access_log: AccessLog = Settings.access_log,
    metrics_allow: MetricsAllow = None,
    purge_deleted_days: PurgeDeletedDays = Settings.purge_deleted_days,
    scrub_interval: ScrubInterval = Settings.scrub_interval_hours,
    scrub_rate_mb: ScrubRateMb = Settings.scrub_rate_mb,
    allow_concurrent_sessions: AllowConcurrentSessions = Settings.allow_concurrent_sessions,
    require_totp_for_operators: RequireTotpForOperators = Settings.require_totp_for_operators,
    hl7_port: Hl7Port = None,
    ris_report_url: RisReportUrl = None,
    hl7_report_to: Hl7ReportTo = None,
    heal_interval: HealInterval = Settings.heal_interval_minutes,
    heal_per_pacs: HealPerPacs = Settings.heal_per_pacs,
    heal_associations: HealAssociations = Settings.heal_associations,
) -> None:
    """Run the gateway and the cloud together over one database and one blob store."""
    _run(ctx)


def gateway(
    ctx: typer.Context,
    cloud_url: Annotated[str, typer.Option("--cloud-url", help="The cloud's base URL.")],
    gateway_id: Annotated[str, typer.Option("--gateway-id", help="This gateway's id on the cloud "
                                                                  "(`yingyun admin gateway add` there).")],
    gateway_key: Annotated[str, typer.Option("--gateway-key", envvar=ENV_GATEWAY_KEY,
                                             help="The key the cloud issued for this gateway.")],
    public_url: Annotated[str, typer.Option("--public-url", help="The cloud's public base (QR codes).")],
    config: ConfigFile = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    host: Host = Settings.host,
    http_port: HttpPort = Settings.http_port,
    dicom_port: DicomPort = Settings.dicom_port,
    ae_title: AeTitle = Settings.ae_title,
    tls_cert: TlsCert = None,
    tls_key: TlsKey = None,
    trusted_proxy: TrustedProxy = None,
    accept_any_ae: AcceptAnyAe = Settings.accept_any_ae,
    default_hospital: DefaultHospital = None,
    dicom_workers: DicomWorkers = Settings.dicom_workers,
    max_associations: MaxAssociations = Settings.max_associations,
    spool_days: Annotated[float, typer.Option(
        "--spool-days", help="Keep forwarded instances this long.")] = Settings.spool_days,
    max_inflated_mib: MaxInflated = MAX_INFLATED_MIB,
    timezone: Timezone = Settings.timezone,
    log_level: LogLevel = Settings.log_level,
    log_format: LogFormat = Settings.log_format,
    access_log: AccessLog = Settings.access_log,
    metrics_allow: MetricsAllow = None,
    purge_deleted_days: PurgeDeletedDays = Settings.purge_deleted_days,
    scrub_interval: ScrubInterval = Settings.scrub_interval_hours,
    scrub_rate_mb: ScrubRateMb = Settings.scrub_rate_mb,
    hl7_port: Hl7Port = None,
    ris_report_url: RisReportUrl = None,
    hl7_report_to: Hl7ReportTo = None,
    heal_interval: HealInterval = Settings.heal_interval_minutes,
    heal_per_pacs: HealPerPacs = Settings.heal_per_pacs,
    heal_associations: HealAssociations = Settings.heal_associations,
) -> None:
    """Run the hospital side only: RIS API, DICOM receiver, HL7 listener, spool, forwarding to the cloud."""
    _run(ctx)


def cloud(
    ctx: typer.Context,
    config: ConfigFile = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    blob_url: BlobUrl = None,
    stable_seconds: StableSeconds = Settings.stable_seconds,
    host: Host = Settings.host,
    http_port: HttpPort = Settings.http_port,
    public_url: PublicUrl = None,
    tls_cert: TlsCert = None,
    tls_key: TlsKey = None,
    trusted_proxy: TrustedProxy = None,
    workers: Workers = Settings.http_workers,
    timezone: Timezone = Settings.timezone,
    verify: Verify = Settings.verify_method,
    sms_sender: SmsSender = Settings.sms_sender,
    sms_url: SmsUrl = None,
    cors_origin: CorsOrigin = None,
    rate_limit: RateLimit = Settings.thirdparty_rate_per_minute,
    max_experts: MaxExperts = Settings.consultation_max_experts,
    callback_timeout: CallbackTimeout = Settings.callback_timeout_s,
    callback_concurrency: CallbackConcurrency = Settings.callback_per_partner,
    max_inflated_mib: MaxInflated = MAX_INFLATED_MIB,
    log_level: LogLevel = Settings.log_level,
    log_format: LogFormat = Settings.log_format,
    access_log: AccessLog = Settings.access_log,
    metrics_allow: MetricsAllow = None,
    purge_deleted_days: PurgeDeletedDays = Settings.purge_deleted_days,
    scrub_interval: ScrubInterval = Settings.scrub_interval_hours,
    scrub_rate_mb: ScrubRateMb = Settings.scrub_rate_mb,
    allow_concurrent_sessions: AllowConcurrentSessions = Settings.allow_concurrent_sessions,
    require_totp_for_operators: RequireTotpForOperators = Settings.require_totp_for_operators,
    ris_report_url: RisReportUrl = None,
    hl7_report_to: Hl7ReportTo = None,
) -> None:
    """Run the cloud side only: gateways' uploads, partners' API, patient pages, DICOMweb."""
    _run(ctx)
