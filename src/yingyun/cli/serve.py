"""`yingyun serve | gateway | cloud`: run the platform, both roles or one of a split deployment.

Every option lands in the `Settings` the server runs with, which checks them
(`Settings.__post_init__`, in the options' words); their defaults are its own.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from ..settings import ENV_GATEWAY_KEY, Settings, parse_proxies
from .context import location_settings
from .options import (
    MAX_INFLATED_MIB,
    AcceptAnyAe,
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
    Host,
    HttpPort,
    MaxAssociations,
    MaxExperts,
    MaxInflated,
    PublicUrl,
    RateLimit,
    RequireTotpForOperators,
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


def _run(*, data_dir: str | None, database_url: str | None, trusted_proxy: list[str] | None, max_inflated_mib: int,
         cors_origin: list[str] | None = None, **fields: Any) -> None:
    from .. import serve  # at the call: the server's imports are not the admin commands' to pay

    serve.run(location_settings(data_dir, database_url, trusted_proxies=parse_proxies(trusted_proxy),
                                max_inflated_bytes=max_inflated_mib * 2**20, cors_origins=list(cors_origin or []),
                                **fields))


def serve(
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
    allow_concurrent_sessions: AllowConcurrentSessions = Settings.allow_concurrent_sessions,
    require_totp_for_operators: RequireTotpForOperators = Settings.require_totp_for_operators,
) -> None:
    """Run the gateway and the cloud together over one database and one blob store."""
    _run(data_dir=data_dir, database_url=database_url, trusted_proxy=trusted_proxy, max_inflated_mib=max_inflated_mib,
         cors_origin=cors_origin, host=host, http_port=http_port, dicom_port=dicom_port, ae_title=ae_title,
         public_url=public_url or "", stable_seconds=stable_seconds, tls_cert=tls_cert, tls_key=tls_key, demo=demo,
         accept_any_ae=accept_any_ae, default_hospital=default_hospital, http_workers=workers,
         dicom_workers=dicom_workers, max_associations=max_associations, blob_url=blob_url or "", timezone=timezone,
         verify_method=verify, sms_sender=sms_sender, sms_url=sms_url, thirdparty_rate_per_minute=rate_limit,
         consultation_max_experts=max_experts, callback_timeout_s=callback_timeout,
         callback_per_partner=callback_concurrency, allow_concurrent_sessions=allow_concurrent_sessions,
         require_totp_for_operators=require_totp_for_operators)


def gateway(
    cloud_url: Annotated[str, typer.Option("--cloud-url", help="The cloud's base URL.")],
    gateway_id: Annotated[str, typer.Option("--gateway-id", help="This gateway's id on the cloud "
                                                                  "(`yingyun admin gateway add` there).")],
    gateway_key: Annotated[str, typer.Option("--gateway-key", envvar=ENV_GATEWAY_KEY,
                                             help="The key the cloud issued for this gateway.")],
    public_url: Annotated[str, typer.Option("--public-url", help="The cloud's public base (QR codes).")],
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
) -> None:
    """Run the hospital side only: RIS API, DICOM receiver, spool, forwarding to the cloud."""
    _run(data_dir=data_dir, database_url=database_url, trusted_proxy=trusted_proxy, max_inflated_mib=max_inflated_mib,
         role="gateway", cloud_url=cloud_url, gateway_id=gateway_id, gateway_key=gateway_key, public_url=public_url,
         host=host, http_port=http_port, dicom_port=dicom_port, ae_title=ae_title, tls_cert=tls_cert, tls_key=tls_key,
         accept_any_ae=accept_any_ae, default_hospital=default_hospital, dicom_workers=dicom_workers,
         max_associations=max_associations, spool_days=spool_days, timezone=timezone)


def cloud(
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
    allow_concurrent_sessions: AllowConcurrentSessions = Settings.allow_concurrent_sessions,
    require_totp_for_operators: RequireTotpForOperators = Settings.require_totp_for_operators,
) -> None:
    """Run the cloud side only: gateways' uploads, partners' API, patient pages, DICOMweb."""
    _run(data_dir=data_dir, database_url=database_url, trusted_proxy=trusted_proxy, max_inflated_mib=max_inflated_mib,
         cors_origin=cors_origin, role="cloud", dicom_enabled=False, blob_url=blob_url or "",
         stable_seconds=stable_seconds, host=host, http_port=http_port, public_url=public_url or "",
         tls_cert=tls_cert, tls_key=tls_key, http_workers=workers, timezone=timezone, verify_method=verify,
         sms_sender=sms_sender, sms_url=sms_url, thirdparty_rate_per_minute=rate_limit,
         consultation_max_experts=max_experts, callback_timeout_s=callback_timeout,
         callback_per_partner=callback_concurrency, allow_concurrent_sessions=allow_concurrent_sessions,
         require_totp_for_operators=require_totp_for_operators)
