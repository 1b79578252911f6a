"""Composition root of the HTTP processes: `serve` (gateway and cloud over one
database), `gateway` and `cloud`.

The collaborators a process shares (blob store, instance store, the
group-commit writer, the render cache) come from its Runtime (runtime.py);
the contexts the routers need are filled here from them (`patient_context`,
`hospital_api_context`, `dicomweb_context`, and in `create_app`). Background
work starts and stops in one place per kind of process: `ServeServices` in
the process `run` starts (the DICOM receivers, the stability sweep and
callback delivery, forwarding and the spool purge: one of each per
instance), and the app's lifespan in every process that serves HTTP (the
patient pages' audit writer and download pool). With `--workers` > 1 each
uvicorn worker is its own process, opening its own Runtime from the settings
passed through the environment (`app_from_env`).
"""

from __future__ import annotations

import functools
import logging
import os
import socket
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, Protocol

from fastapi import FastAPI
from prometheus_client import generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from sqlalchemy import Connection
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from . import __version__
from .archive import downlink
from .archive.events import Fanout, RecordEvents
from .archive.retention import Purger
from .archive.stability import StabilityMonitor
from .cloud import console, dicomweb, hospital_api, ingest, organisation, patient, reading, staff, stats, viewer
from .cloud import templates as report_templates
from .cloud import readingpage
from .cloud.callbacks.dispatcher import CallbackDispatcher
from .cloud.callbacks.events import CallbackEvents
from .cloud.console import openapi as console_openapi
from .cloud.dicomweb.auth import Authenticator
from .cloud.staff import edge as staff_edge
from .cloud.staff import sessions as staff_sessions
from .cloud.hospital_api.ratelimit import RateLimiter
from .cloud.patient.audit import AuditLog
from .core.logging import configure as configure_logging
from .core.sms import SmsSender, make_sender
from .core.times import Zone
from .gateway import api as gateway_api
from .gateway.context import GatewayContext
from .gateway.delivery import DeliveryConfig, ReportDelivery, parse_hl7_to
from .gateway.hl7 import mllp
from .gateway.hl7.intake import Hl7Intake
from .gateway.hl7.metrics import Hl7Metrics
from .gateway.hl7.senders import Hl7Senders
from .gateway.outbox import SyncEvents, outbox_report
from .gateway.receiver import PortInUse, Readiness, bind_listener
from .metrics.registry import register as register_metrics
from .phonecodes import CodePolicy, PhoneCodes
from .runtime import Runtime, release_startup_memory
from .settings import Settings
from .storage import deployment
from .storage.blobs import LocalFiles
from .storage.queue import SqlJobQueue
from .web.common import Metrics, RequestContext, SecurityHeaders, in_networks
from .web.docs import install_docs
from .web.protocol import BoundedHttpProtocol
from .web.vendor import install_vendor_error_handlers

log = logging.getLogger("yingyun.serve")
ENV_SETTINGS = "YINGYUN_SETTINGS_JSON"

API_DESCRIPTION = """
Yingyun (影云): the hospital gateway's signed RIS API (`/ris/*`), the internet-hospital
API (`/thirdparty/*`), DICOMweb (`/dicomweb`), the patient pages (`/h5/*`) and the
gateway sync protocol (`/sync/v1/*`).

Every `/ris/*` call is a `POST` with a JSON body and three headers: `appId`,
`timestamp` (ms since the epoch) and `signature` = hex HMAC-SHA256(token,
appId + timestamp). Answers are HTTP 200 with `{"code", "message", "data"}`.
"""


def patient_context(runtime: Runtime, *, sms: SmsSender | None = None) -> patient.PatientContext:
    st = runtime.settings
    sender = sms or make_sender(st.sms_sender, st.sms_url)
    return patient.PatientContext(settings=st, db=runtime.db, vault=runtime.vault, tenancy=runtime.tenancy,
                                  blobs=runtime.blobs, cache=runtime.render_cache, sms=sender,
                                  audit=AuditLog(runtime.db),
                                  codes=PhoneCodes(runtime.db, runtime.vault, sender, CodePolicy.from_settings(st)))


def staff_context(runtime: Runtime, *, codes: PhoneCodes) -> staff.StaffContext:
    """`codes`: the patient pages' own (one store of SMS codes per process; purposes keep them apart)."""
    st = runtime.settings
    return staff.StaffContext(db=runtime.db, vault=runtime.vault, tenancy=runtime.tenancy, codes=codes,
                              policy=staff.SessionPolicy(allow_concurrent=st.allow_concurrent_sessions,
                                                         require_totp_for_operators=st.require_totp_for_operators),
                              public_url=st.public_url)


def hospital_api_context(runtime: Runtime, *, config: hospital_api.HospitalApiConfig | None = None,
                         clock: Callable[[], float] = time.time) -> hospital_api.HospitalApiContext:
    config = config or hospital_api.HospitalApiConfig.from_settings(runtime.settings)
    queue = SqlJobQueue(runtime.db)
    return hospital_api.HospitalApiContext(
        settings=runtime.settings, db=runtime.db, vault=runtime.vault, tenancy=runtime.tenancy, writer=runtime.writer,
        limiter=RateLimiter(runtime.db, default_limit=config.rate_per_minute, clock=clock),
        queue=queue, events=CallbackEvents(queue, clock=clock), config=config, clock=clock,
    )


def callback_dispatcher(hctx: hospital_api.HospitalApiContext) -> CallbackDispatcher:
    """The status-callback delivery worker (one per process that delivers)."""
    return CallbackDispatcher(db=hctx.db, vault=hctx.vault, tenancy=hctx.tenancy, queue=hctx.queue,
                              public_url=hctx.settings.public_url,
                              link_lifetime_s=hctx.settings.partner_link_lifetime_s,
                              config=hctx.config.delivery, clock=hctx.clock)


def dicomweb_context(runtime: Runtime, *, audit: AuditLog | None = None,
                     sessions: dicomweb.StaffSessions | None = None,
                     gate: dicomweb.StudyGate | None = None) -> dicomweb.DicomwebContext:
    """`sessions`: staff sessions DICOMweb accepts (the reading viewer's cookie); `gate`: who of them may view
    a study (default: the study's hospital is in the caller's scope)."""
    st = runtime.settings
    tokens = dicomweb.TokenRegistry(runtime.db, refresh_s=st.tenancy_refresh_s)
    auth = Authenticator(runtime.tenancy, tokens, window_s=st.signature_window_s, sessions=sessions)
    return dicomweb.DicomwebContext(db=runtime.db, tenancy=runtime.tenancy, blobs=runtime.blobs,
                                    cache=runtime.render_cache, store=runtime.instances, auth=auth,
                                    tokens=tokens, trusted_proxies=list(st.trusted_proxies), spool_dir=st.spool_dir,
                                    max_stow_bytes=st.max_upload_bytes, audit=audit,
                                    gate=gate or dicomweb.HospitalScopeGate())


class DicomwebStaffSessions:
    """cloud/staff's sessions as DICOMweb's `StaffSessions` (dicomweb imports no other domain): the session's
    user as a DICOMweb caller whose hospitals are those its study-reading roles reach."""

    cookie = staff_edge.SESSION_COOKIE

    def __init__(self, ctx: staff.StaffContext) -> None:
        self.ctx = ctx

    def resolve(self, token: str) -> dicomweb.Caller:
        user = staff_sessions.resolve_cached(self.ctx, token)
        return dicomweb.Caller(name=f"user:{user.username}", hospitals=user.hospital_ids(staff_edge.CLINICIAN),
                               session=True, user=user)


def record_events(runtime: Runtime, hctx: hospital_api.HospitalApiContext | None) -> Fanout:
    """Who hears of the gateway side's records (RIS API, HL7): the partners' callbacks where this process
    is the cloud too, else forwarding to the cloud."""
    return Fanout(hctx.events if hctx is not None else SyncEvents(SqlJobQueue(runtime.db)))


def hl7_listener(runtime: Runtime, events: RecordEvents, metrics: Metrics) -> mllp.MllpServer:
    """The HL7 v2 listener on --hl7-port, writing through the runtime's group-committed writer."""
    st = runtime.settings
    assert st.hl7_port is not None
    intake = Hl7Intake(vault=runtime.vault, tenancy=runtime.tenancy,
                       senders=Hl7Senders(runtime.db, refresh_s=st.tenancy_refresh_s), writer=runtime.writer,
                       events=events, metrics=Hl7Metrics(metrics.registry))
    return mllp.MllpServer(intake, host=st.host, port=st.hl7_port)


def stats_context(runtime: Runtime) -> stats.StatsContext:
    st = runtime.settings
    zone = Zone(st.timezone)
    # serve: the gateway side's outbox is in this database, read directly (a cloud has its gateways' reports).
    local = functools.partial(outbox_report, runtime.db) if st.role == "serve" else None
    return stats.StatsContext(db=runtime.db, zone=zone,
                              stats=stats.StatsService(runtime.db, zone=zone, data_dir=st.data_dir,
                                                       local_outbox=local))


def reading_context(runtime: Runtime, hctx: hospital_api.HospitalApiContext) -> reading.ReadingContext:
    """Remote reading: a final report's status callbacks go through the partners' outbox (`hctx.events`)."""
    return reading.ReadingContext(db=runtime.db, vault=runtime.vault, tenancy=runtime.tenancy,
                                  zone=Zone(runtime.settings.timezone), events=hctx.events, callbacks=hctx.events,
                                  report_published=_report_down, template_for=report_templates.template_for)


def _report_down(conn: Connection, study_uid: str) -> None:
    """A report signed in the cloud goes back to its hospital's RIS (directly, or through its gateway)."""
    downlink.queue_report_down(conn, study_uid=study_uid)


def readingpage_context(runtime: Runtime) -> readingpage.ReadingPageContext:
    """The reading page and the report PDF; its gate (who may read a study) is the caller's scope until the
    reading routes' rule is handed in here."""
    return readingpage.ReadingPageContext(db=runtime.db, vault=runtime.vault, tenancy=runtime.tenancy,
                                          public_url=runtime.settings.public_url)


def create_app(runtime: Runtime, *, film: patient.PatientContext | None = None,
               hospital: hospital_api.HospitalApiContext | None = None, owns_runtime: bool = False,
               receivers: Readiness | None = None, metrics: Metrics | None = None) -> FastAPI:
    """The HTTP app of the configured role: the gateway's (RIS API), the
    cloud's (partners' API, patient pages, DICOMweb, gateways' uploads), or
    both over one database for `serve`. `owns_runtime`: the app's shutdown
    closes the runtime (an HTTP worker process, which opened it for the app).
    `receivers`: the DICOM receivers of this instance, which `/healthz` waits for. `metrics`: the
    process's registry when background services count on it too (the HL7 listener)."""
    settings = runtime.settings
    gateway_side = settings.role in ("serve", "gateway")
    cloud_side = settings.role in ("serve", "cloud")
    metrics = metrics or Metrics()
    register_metrics(metrics.registry, db=runtime.db, settings=settings)
    pctx = (film or patient_context(runtime)) if cloud_side else None
    # The internet-hospital API; its callback outbox subscribes to record events.
    hctx = (hospital or hospital_api_context(runtime)) if cloud_side else None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if pctx is not None:
            pctx.start()
        yield
        if pctx is not None:
            pctx.stop()
        if owns_runtime:
            runtime.close()

    app = FastAPI(title="Yingyun", version=__version__, description=API_DESCRIPTION, lifespan=lifespan,
                  docs_url=None, redoc_url=None)
    documented = [gateway_api.openapi_components()] if gateway_side else []
    if cloud_side:
        documented.append(console_openapi.components())
    install_docs(app, components={kind: {k: v for part in documented for k, v in part.get(kind, {}).items()}
                                  for kind in ("schemas", "securitySchemes")},
                 edits=[console_openapi.document_api] if cloud_side else [])
    app.state.runtime = runtime
    install_vendor_error_handlers(app)
    if gateway_side:
        gctx = GatewayContext(settings=settings, db=runtime.db, vault=runtime.vault, tenancy=runtime.tenancy,
                              writer=runtime.writer, events=record_events(runtime, hctx))
        app.state.gateway = gctx
        app.include_router(gateway_api.router)
    if pctx is not None and hctx is not None:
        app.state.hospital_api = hctx
        app.include_router(hospital_api.router)
        patient.install(app, pctx)
        sctx = staff_context(runtime, codes=pctx.codes)
        staff.install(app, sctx)
        organisation.install(app, organisation.Organisation(runtime.tenancy))
        dicomweb.install(app, dicomweb_context(runtime, audit=pctx.audit, sessions=DicomwebStaffSessions(sctx)))
        stats.install(app, stats_context(runtime))
        report_templates.install(app, report_templates.TemplatesContext(db=runtime.db))
        console.install(app, timezone=runtime.settings.timezone)
        reading.install(app, reading_context(runtime, hctx))
        viewer.install(app, viewer.find_build())
        readingpage.install(app, readingpage_context(runtime))
    if settings.role == "cloud" and hctx is not None:
        app.state.ingest = ingest.IngestContext(
            tenancy=runtime.tenancy, vault=runtime.vault, writer=runtime.writer, store=runtime.instances,
            events=Fanout(hctx.events), max_instance_bytes=settings.max_upload_bytes, spool_dir=settings.spool_dir,
            purger=Purger(runtime.db, runtime.blobs, clear_render_cache=lambda: runtime.render_cache.clear()))
        app.include_router(ingest.router)

    @app.get("/healthz", tags=["Operations"], summary="200 once every listener accepts (HTTP, DICOM), else 503")
    def healthz() -> JSONResponse:
        with runtime.db.read() as conn:
            conn.exec_driver_sql("SELECT 1")
        listeners: dict[str, dict[str, Any]] = {"http": {"up": True}}
        if receivers is not None:
            serving = receivers.serving()
            listeners["dicom"] = {"up": serving > 0, "port": settings.dicom_port, "receivers": receivers.count,
                                  "receiversUp": serving}
        up = all(listener["up"] for listener in listeners.values())
        return JSONResponse({"status": "ok" if up else "unavailable", "version": __version__, "role": settings.role,
                             "listeners": listeners}, status_code=200 if up else 503)

    @app.get("/metrics", tags=["Operations"], summary="Prometheus metrics (403 outside --metrics-allow)")
    def prometheus(request: Request) -> Response:
        if settings.metrics_allow and not in_networks(request.state.client_ip, settings.metrics_allow):
            return PlainTextResponse("/metrics is not served to this address (--metrics-allow)\n", status_code=403)
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    if cloud_side:
        app.add_middleware(dicomweb.DicomwebCors, origins=settings.cors_origins)
    app.add_middleware(SecurityHeaders, prefix=patient.PREFIX, headers=patient.SECURITY_HEADERS)
    if cloud_side:
        app.add_middleware(SecurityHeaders, prefix=viewer.PREFIX + "/", headers=viewer.SECURITY_HEADERS)
    app.add_middleware(RequestContext, metrics=metrics, trusted_proxies=settings.trusted_proxies,
                       access_log=settings.access_log)
    return app


def app_from_env() -> FastAPI:
    """uvicorn factory for worker processes (of `run`, which started the receivers)."""
    settings = Settings.from_json(os.environ[ENV_SETTINGS])
    configure_logging(settings.log_level, settings.log_format)
    runtime = Runtime.open(settings, create_keys=False, migrate=False)
    app = create_app(runtime, owns_runtime=True, receivers=readiness_of(settings))
    release_startup_memory()
    return app


def readiness_of(settings: Settings) -> Readiness | None:
    return Readiness(settings.run_dir, settings.dicom_workers) if settings.dicom_enabled else None


class _Service(Protocol):
    def stop(self) -> None: ...


class ServeServices:
    """The background work of the process `run` starts, one of each per instance
    (never one per HTTP worker): the DICOM receiver processes; on the cloud side
    the stability sweep and the status-callback delivery it feeds; on a gateway
    the forwarding to the cloud and the spool purge. Started and stopped here only."""

    def __init__(self, runtime: Runtime, *, listener: socket.socket | None = None) -> None:
        self.runtime = runtime
        self.listener = listener  # the DICOM port, bound by `run` before anything else
        settings = runtime.settings
        # Shared with the app when this process serves HTTP itself (--workers 1).
        self.hospital = hospital_api_context(runtime) if settings.role in ("serve", "cloud") else None
        # The registry of this process's /metrics (when it serves HTTP itself), counted on by the HL7 listener.
        self.metrics = Metrics()
        self._running: list[_Service] = []
        self._marker = settings.data_dir / ".running"

    def start(self) -> ServeServices:
        runtime, settings = self.runtime, self.runtime.settings
        if settings.dicom_enabled:
            from .gateway.receiver import ReceiverPool, clear_spool

            # After an unclean stop (the marker is still there), temp files are
            # writes a crash cut short: no receiver runs yet, so remove them all.
            # Walking the store costs time, so a clean stop skips it.
            blobs = runtime.blobs
            if self._marker.exists() and isinstance(blobs, LocalFiles):
                removed = blobs.cleanup_temp_files(older_than_seconds=0)
                log.info("unclean stop before: removed %d unfinished blob writes", removed)
            self._marker.touch()
            # A receiver that died (and was restarted) may have left a spooled data set; none runs now.
            clear_spool(settings.spool_dir)
            assert self.listener is not None, "run binds the DICOM port"
            self._running.append(ReceiverPool(settings.to_json(), settings.dicom_workers, self.listener).start())
            log.info("DICOM: AE title %s on port %d (%d receiver process(es), %d associations at once)",
                     settings.ae_title, settings.dicom_port, settings.dicom_workers, settings.max_associations)
            from .gateway.commitment import CommitmentSender

            # Storage commitment results the requester's association could not carry (gateway/commitment.py).
            self._running.append(CommitmentSender(db=runtime.db, tenancy=runtime.tenancy, blobs=runtime.blobs,
                                                  ae_title=settings.ae_title).start())
        if settings.hl7_port is not None and settings.role in ("serve", "gateway"):
            try:
                listener = hl7_listener(runtime, record_events(runtime, self.hospital), self.metrics).start()
            except mllp.PortInUse as exc:
                self.stop()
                raise SystemExit(f"error: {exc}") from None
            self._running.append(listener)
            log.info("HL7: MLLP on port %d", listener.port)
        if self.hospital is not None:
            # Status callbacks: "images received" when a study turns stable.
            self._running.append(StabilityMonitor(runtime.db, stable_seconds=settings.stable_seconds,
                                                  on_stable=self.hospital.events.on_stable).start())
            self._running.append(callback_dispatcher(self.hospital).start())
        if settings.role == "gateway":
            from .gateway.sync import SpoolPurger, SyncWorker

            self._running.append(SyncWorker(db=runtime.db, vault=runtime.vault, blobs=runtime.blobs,
                                            queue=SqlJobQueue(runtime.db), cloud_url=settings.cloud_url,
                                            gateway_id=settings.gateway_id, gateway_key=settings.gateway_key).start())
            self._running.append(SpoolPurger(db=runtime.db, blobs=runtime.blobs,
                                             spool_days=settings.spool_days).start())
            log.info("gateway %s forwarding to %s", settings.gateway_id, settings.cloud_url)
        self._running.extend(retention_services(runtime))
        self._running.append(report_delivery(runtime).start())
        self._running.extend(heal_services(runtime))
        return self

    def stop(self) -> None:
        while self._running:
            self._running.pop().stop()
        if self.runtime.settings.dicom_enabled:
            self._marker.unlink(missing_ok=True)


def report_delivery(runtime: Runtime) -> ReportDelivery:
    """Final reports to the hospital's RIS (gateway/delivery.py): in `serve` and on a gateway, and on a cloud for
    its hospitals without a gateway (archive/downlink.py). The reading core's `report_published` is
    `archive.downlink.queue_report_down`."""
    settings = runtime.settings
    config = DeliveryConfig(ris_url=settings.ris_report_url, hl7_to=parse_hl7_to(settings.hl7_report_to))
    return ReportDelivery(db=runtime.db, vault=runtime.vault, tenancy=runtime.tenancy, config=config,
                          facility=settings.default_hospital or "")


def retention_services(runtime: Runtime) -> list[_Service]:
    """The purge of soft-deleted studies and the scrub, on every side over what it holds (archive/retention.py,
    archive/scrub.py)."""
    from .archive.retention import DeletedPurgeWorker
    from .archive.scrub import Scrubber, ScrubWorker
    from .gateway.outbox import unforwarded

    settings = runtime.settings
    running: list[_Service] = []
    if settings.purge_deleted_days > 0:
        purger = Purger(runtime.db, runtime.blobs, clear_render_cache=lambda: runtime.render_cache.clear(),
                        unforwarded=unforwarded if settings.role == "gateway" else None)
        running.append(DeletedPurgeWorker(purger, days=settings.purge_deleted_days).start())
    if settings.scrub_interval_hours > 0:
        # A gateway frees what the cloud has acknowledged after --spool-days: not damage.
        spooled = (lambda: time.time() - settings.spool_days * 86400) if settings.role == "gateway" else None
        repair = None
        if settings.role == "gateway":
            from .gateway.sync import CloudCopies

            repair = CloudCopies(db=runtime.db, cloud_url=settings.cloud_url, gateway_id=settings.gateway_id,
                                 gateway_key=settings.gateway_key)
        scrubber = Scrubber(runtime.db, runtime.blobs, rate_bytes=settings.scrub_rate_mb * 1e6,
                            spooled_before=spooled, repair=repair)
        running.append(ScrubWorker(scrubber, interval_s=settings.scrub_interval_hours * 3600).start())
    return running


def heal_services(runtime: Runtime) -> list[_Service]:
    """Reconciliation that heals (gateway/heal.py), on the hospital side: what the logs say is missing is
    retrieved from the hospital's PACS every --heal-interval."""
    settings = runtime.settings
    if settings.role not in ("serve", "gateway") or settings.heal_interval_minutes <= 0:
        return []
    from .gateway.heal import Healer, HealWorker

    interval_s = settings.heal_interval_minutes * 60
    healer = Healer(db=runtime.db, tenancy=runtime.tenancy, store=runtime.instances, ae_title=settings.ae_title,
                    interval_s=interval_s)
    return [HealWorker(healer, interval_s=interval_s, per_pacs=settings.heal_per_pacs,
                       associations=settings.heal_associations).start()]


def run(settings: Settings) -> None:
    import uvicorn

    configure_logging(settings.log_level, settings.log_format)
    listener = None
    if settings.dicom_enabled:
        # Bound here, before anything else starts, and handed to the receivers: a
        # second instance on this port must fail, not share the PACS's associations.
        try:
            listener = bind_listener(settings)
        except PortInUse as exc:
            raise SystemExit(f"error: {exc} (by another Yingyun or DICOM server)") from None
    runtime = Runtime.open(settings, create_keys=True, migrate=True)
    previous = deployment.record(runtime.db, deployment.BLOB_STORE, settings.blob_location)
    deployment.record(runtime.db, deployment.ROLE, settings.role)  # for the admin commands (gateway/outbox.py)
    if previous not in (None, settings.blob_location):
        log.warning("the blob store changed since the last start (was %s): blobs stored there are not read", previous)
    if settings.demo:
        from .demo import seed_demo

        seed_demo(runtime)
    log.info("Yingyun %s: HTTP on %s:%d, public URL %s, database %s", __version__, settings.host, settings.http_port,
             settings.public_url, runtime.db.dialect)
    # BoundedHttpProtocol: uvicorn's httptools protocol with header limits, stall timeouts and an idle cap.
    common: dict[str, Any] = {
        "host": settings.host, "port": settings.http_port, "log_level": "warning", "access_log": False,
        "ssl_certfile": settings.tls_cert, "ssl_keyfile": settings.tls_key, "timeout_keep_alive": 30,
        "proxy_headers": False, "server_header": False, "timeout_graceful_shutdown": 10,
        "http": BoundedHttpProtocol}
    services = ServeServices(runtime, listener=listener).start()
    release_startup_memory()
    try:
        if settings.http_workers > 1:
            os.environ[ENV_SETTINGS] = settings.to_json()
            uvicorn.run("yingyun.serve:app_from_env", factory=True, workers=settings.http_workers, **common)
        else:
            uvicorn.run(create_app(runtime, hospital=services.hospital, receivers=readiness_of(settings),
                                   metrics=services.metrics), **common)
    finally:
        services.stop()
        if listener is not None:
            listener.close()
        runtime.close()
