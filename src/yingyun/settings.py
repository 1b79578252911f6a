"""Settings, built once by the CLI and passed down (no import-time config)."""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from .core.dicom import DEFAULT_MAX_INFLATED
from .core.errors import Invalid
from .core.times import DEFAULT_TIMEZONE, Zone
from .storage.db import default_sqlite_url, normalise_url

ENV_DATA_DIR = "YINGYUN_DATA_DIR"
ENV_DATABASE_URL = "YINGYUN_DATABASE_URL"
ENV_HTTP_PORT = "YINGYUN_HTTP_PORT"
ENV_DICOM_PORT = "YINGYUN_DICOM_PORT"
ENV_MAX_EXPERTS = "YINGYUN_MAX_EXPERTS"  # read by serve/cloud and by `admin consultation`
ENV_RATE_LIMIT = "YINGYUN_RATE_LIMIT"
ENV_TIMEZONE = "YINGYUN_TIMEZONE"  # read by serve/gateway/cloud and by the admin commands that show or read times
ENV_GATEWAY_KEY = "YINGYUN_GATEWAY_KEY"  # read by `yingyun gateway`
ENV_CONFIG = "YINGYUN_CONFIG"  # the TOML file of serve/gateway/cloud and `config show`
ENV_LOG_LEVEL = "YINGYUN_LOG_LEVEL"
ENV_LOG_FORMAT = "YINGYUN_LOG_FORMAT"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
LOG_FORMATS = ("text", "json")
DEFAULT_DATA_DIR = "./yingyun-data"


@dataclass
class Settings:
    data_dir: Path
    database_url: str
    host: str = "0.0.0.0"
    http_port: int = 8080
    dicom_port: int = 11112
    ae_title: str = "YINGYUN"
    public_url: str = ""
    stable_seconds: float = 60.0
    tls_cert: str | None = None
    tls_key: str | None = None
    trusted_proxies: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = field(default_factory=list)
    demo: bool = False
    signature_window_s: float = 300.0
    token_grace_s: float = 24 * 3600.0
    timezone: str = DEFAULT_TIMEZONE  # IANA zone of hospital-local times, pages and operators' output
    accept_any_ae: bool = False
    default_hospital: str | None = None
    http_workers: int = 1
    dicom_workers: int = 2  # receiver processes sharing the DICOM port
    dicom_enabled: bool = True
    # One limit for the instance, shared by every receiver process (--max-associations).
    max_associations: int = 16
    # Slow peers (no sign-in needed to connect): the whole A-ASSOCIATE-RQ must arrive
    # within dicom_artim_s of the connection, and each PDU within dicom_pdu_timeout_s
    # plus its length at dicom_min_rate bytes/s.
    dicom_artim_s: float = 10.0
    dicom_pdu_timeout_s: float = 30.0
    dicom_min_rate: int = 16 * 1024
    # HL7 v2 over MLLP (gateway/hl7/): the port it listens on; None: no listener.
    hl7_port: int | None = None
    # Refuse new instances when free space falls below this (bytes).
    min_free_bytes: int = 512 * 2**20
    # The most a deflated dataset may inflate to, at ingest and when served
    # (core/dicom.py, "Deflated datasets").
    max_inflated_bytes: int = DEFAULT_MAX_INFLATED
    tenancy_refresh_s: float = 2.0
    # Split deployment: "serve" runs both roles over one database; "gateway"
    # forwards to the cloud at cloud_url; "cloud" receives from gateways.
    role: str = "serve"
    cloud_url: str = ""
    gateway_id: str = ""
    gateway_key: str = ""
    # Where blobs live: a local folder (default: data_dir/blobs) or s3://bucket/prefix.
    blob_url: str = ""
    spool_days: float = 7.0
    # -- cloud film (patient pages) --
    verify_method: str = "last4"  # last4 | sms
    sms_sender: str = "log"  # log | http
    sms_url: str | None = None
    partner_link_lifetime_s: float = 7 * 86400.0
    doctor_link_lifetime_s: float = 24 * 3600.0
    session_lifetime_s: float = 2 * 3600.0
    verify_attempt_limit: int = 5
    verify_lock_s: float = 15 * 60.0  # doubles on each repeated lock
    sms_code_lifetime_s: float = 5 * 60.0
    sms_daily_limit: int = 10
    sms_resend_s: float = 60.0
    render_cache_bytes: int = 2 * 1024**3
    # -- staff accounts (cloud/staff) --
    allow_concurrent_sessions: bool = False  # else a new sign-in ends the user's other sessions (20007)
    require_totp_for_operators: bool = False
    # -- internet-hospital API --
    thirdparty_rate_per_minute: int = 600  # default per-partner limit (`admin ratelimit set` overrides); 0: none
    consultation_max_experts: int = 5  # experts one consultation may invite (40011 beyond)
    callback_timeout_s: float = 10.0
    callback_per_partner: int = 8  # callback requests in flight to one partner
    # -- DICOMweb --
    cors_origins: list[str] = field(default_factory=list)  # origins allowed to call /dicomweb ('*': any)
    # The largest DICOM upload over HTTP: a STOW-RS request, a gateway's batch of instances.
    max_upload_bytes: int = 4 * 2**30
    # -- operations --
    log_level: str = "INFO"
    log_format: str = "text"  # text | json (one JSON object a line)
    access_log: bool = False  # a line per HTTP request (tokens and query values redacted)
    # Who may read /metrics (empty: anyone who reaches the port).
    metrics_allow: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = field(default_factory=list)
    # -- retention and storage verification (archive/retention.py, archive/scrub.py) --
    purge_deleted_days: float = 30.0  # a soft-deleted study is purged this long after its delete (0: never)
    scrub_interval_hours: float = 7 * 24.0  # a scrub pass starts this long after the last one ended (0: none)
    scrub_rate_mb: float = 20.0  # MB/s the scrub reads at most: its share of the disk
    # -- final reports back to the hospital (gateway/delivery.py) --
    ris_report_url: str = ""  # every hospital's RIS, unless it has its own (`admin hospital ris-report-url`)
    hl7_report_to: str = ""  # HOST:PORT of the HL7 engine that takes ORU^R01 ("": none)
    # -- reconciliation that heals (gateway/heal.py) --
    heal_interval_minutes: float = 10.0  # a heal pass this often (0: none; `admin reconcile heal` still works)
    heal_per_pacs: int = 20  # studies healed per PACS in one pass
    heal_associations: int = 2  # PACS asked at once (each one association at a time)

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir)
        self.database_url = normalise_url(self.database_url)
        if not self.public_url:
            scheme = "https" if self.tls_cert else "http"
            host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
            self.public_url = f"{scheme}://{host}:{self.http_port}"
        self.public_url = self.public_url.rstrip("/")
        Zone(self.timezone)  # an unknown zone fails here, at start, with its name
        # The one check of what the command line takes; the words are the options' (they are what operators type).
        if bool(self.tls_cert) != bool(self.tls_key):
            raise Invalid("--tls-cert and --tls-key go together", field="tls_key" if self.tls_cert else "tls_cert")
        if self.verify_method not in ("last4", "sms"):
            raise Invalid("--verify is last4 or sms", field="verify_method")
        if self.sms_sender not in ("log", "http"):
            raise Invalid("--sms-sender is log or http", field="sms_sender")
        if self.sms_sender == "http" and not self.sms_url:
            raise Invalid("--sms-sender http needs --sms-url", field="sms_url")
        if self.log_level not in LOG_LEVELS:
            raise Invalid(f"--log-level is one of {', '.join(LOG_LEVELS)}", field="log_level")
        if self.log_format not in LOG_FORMATS:
            raise Invalid("--log-format is text or json", field="log_format")
        if self.max_inflated_bytes < 2**20:
            raise Invalid("--max-inflated-mib must be at least 1", field="max_inflated_bytes")
        if self.hl7_port is not None and not 0 < self.hl7_port < 65536:
            raise Invalid("--hl7-port must be 1-65535", field="hl7_port")
        if self.max_associations < 1:
            raise Invalid("--max-associations must be at least 1", field="max_associations")
        if self.thirdparty_rate_per_minute < 0 or self.consultation_max_experts < 1 or self.callback_per_partner < 1 \
                or self.callback_timeout_s <= 0:
            raise Invalid("--rate-limit >= 0, --max-experts >= 1, --callback-concurrency >= 1, --callback-timeout > 0")
        if self.ris_report_url and not self.ris_report_url.startswith(("http://", "https://")):
            raise Invalid("--ris-report-url is an http:// or https:// URL", field="ris_report_url")
        if self.hl7_report_to and not (
                re.fullmatch(r"(\[[0-9A-Fa-f:.]+\]|[^:\s]+):\d{1,5}", self.hl7_report_to)
                and 0 < int(self.hl7_report_to.rpartition(":")[2]) < 65536):
            raise Invalid("--hl7-report-to takes HOST:PORT (port 1-65535)", field="hl7_report_to")
        if self.purge_deleted_days < 0 or self.scrub_interval_hours < 0 or self.scrub_rate_mb <= 0:
            raise Invalid("--purge-deleted-days >= 0, --scrub-interval >= 0, --scrub-rate-mb > 0")
        if self.heal_interval_minutes < 0 or self.heal_per_pacs < 1 or self.heal_associations < 1:
            raise Invalid("--heal-interval >= 0, --heal-per-pacs >= 1, --heal-associations >= 1")

    @property
    def blob_dir(self) -> Path:
        return self.data_dir / "blobs"

    @property
    def reserved_associations(self) -> int:
        """Of max_associations, the slots only registered PACS hosts may take (4 of 16)."""
        return self.max_associations // 4

    @property
    def run_dir(self) -> Path:
        """State of the running processes (association slots, receivers serving), kept in locks."""
        return self.data_dir / "run"

    @property
    def spool_dir(self) -> Path:
        """Temporary files of instances on their way in: C-STORE data sets, HTTP parts too large for memory,
        zip members."""
        return self.data_dir / "spool-tmp"

    @property
    def blob_location(self) -> str:
        """Where the blobs are: s3://bucket/prefix, or a local folder's absolute path."""
        if self.blob_url.startswith("s3://"):
            return self.blob_url.rstrip("/")
        folder = self.blob_url[7:] if self.blob_url.startswith("file://") else self.blob_url
        return str(Path(folder or self.blob_dir).resolve())

    def to_json(self) -> str:
        """For the processes a server starts (receivers, HTTP workers): see `from_json`."""
        data = dataclasses.asdict(self)
        data["data_dir"] = str(self.data_dir)
        data["trusted_proxies"] = [str(n) for n in self.trusted_proxies]
        data["metrics_allow"] = [str(n) for n in self.metrics_allow]
        return json.dumps(data)

    @classmethod
    def from_json(cls, text: str) -> Settings:
        data = json.loads(text)
        data["trusted_proxies"] = parse_proxies(data.get("trusted_proxies"))
        data["metrics_allow"] = parse_networks(data.get("metrics_allow"), option="--metrics-allow",
                                               field="metrics_allow")
        data["data_dir"] = Path(data["data_dir"])
        return cls(**data)


def resolve_data_dir(data_dir: str | None) -> Path:
    return Path(data_dir or os.environ.get(ENV_DATA_DIR) or DEFAULT_DATA_DIR)


def resolve_database_url(database_url: str | None, data_dir: Path) -> str:
    return normalise_url(database_url or os.environ.get(ENV_DATABASE_URL) or default_sqlite_url(data_dir))


def parse_proxies(values: list[str] | None) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    return parse_networks(values, option="--trusted-proxy", field="trusted_proxies")


def parse_networks(values: list[str] | None, *, option: str,
                   field: str) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """The networks an option lists (CIDRs), refused in `option`'s words when one is not a network."""
    return [_network(v, option, field) for v in values or []]


def _network(text: str, option: str, field: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError as e:
        raise Invalid(f"{option} takes a CIDR such as 10.0.0.0/8, not {text!r}", field=field) from e
