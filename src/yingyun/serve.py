"""Composition root of `yingyun serve`: gateway and cloud over one database.

The HTTP app is built by `create_app(runtime)`; uvicorn workers rebuild it
from the settings passed through the environment (`app_from_env`), since
each worker is its own process.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from prometheus_client import generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from starlette.responses import Response

from . import __version__
from .archive.stability import StabilityMonitor
from .cloud import dicomweb, patient
from .cloud import hospital_api, ingest
from .archive.instances import InstanceStore
from .core.logging import configure as configure_logging
from .gateway import api as gateway_api
from .gateway.context import Fanout, GatewayContext
from .gateway.outbox import SyncEvents
from .runtime import Runtime, release_startup_memory
from .settings import Settings, parse_proxies
from .storage.groupcommit import GroupCommit
from .storage.queue import SqlJobQueue
from .web.common import Metrics, RequestContext, SecurityHeaders, install_vendor_error_handlers
from .web.docs import install_docs
from .web.protocol import BoundedHttpProtocol

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


def create_app(runtime: Runtime, *, film: patient.PatientContext | None = None,
               hospital: hospital_api.HospitalApiContext | None = None) -> FastAPI:
    """The HTTP app of the configured role: the gateway's (RIS API), the
    cloud's (partners' API, patient pages, DICOMweb, gateways' uploads), or
    both over one database for `serve`."""
    settings = runtime.settings
    gateway_side = settings.role in ("serve", "gateway")
    cloud_side = settings.role in ("serve", "cloud")
    metrics = Metrics()

    # One writer per process: under load it takes everything queued into one
    # transaction. Measured on PostgreSQL (bench/ris_api.py, 16 connections): 4
    # writers gave 762 req/s, p99 53 ms; one gives 1,079 req/s, p99 27 ms.
    writer = GroupCommit(runtime.db, name="ris-writer")
    pctx = (film or patient.PatientContext.build(runtime)) if cloud_side else None
    # The internet-hospital API; its callback outbox subscribes to record events.
    hctx = (hospital or hospital_api.HospitalApiContext.build(runtime)) if cloud_side else None
    ingest_store = None
    if settings.role == "cloud":
        ingest_store = InstanceStore(runtime.db, runtime.blobs, min_free_bytes=settings.min_free_bytes,
                                     max_inflated=settings.max_inflated_bytes)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if pctx is not None:
            pctx.start()
        yield
        writer.close()
        if pctx is not None:
            pctx.stop()
        if hctx is not None and hospital is None:
            hctx.close()
        if ingest_store is not None:
            ingest_store.close()

    app = FastAPI(title="Yingyun", version=__version__, description=API_DESCRIPTION, lifespan=lifespan,
                  docs_url=None, redoc_url=None)
    install_docs(app, components=gateway_api.openapi_components() if gateway_side else {})
    app.state.runtime = runtime
    install_vendor_error_handlers(app)
    if gateway_side:
        subscriber = hctx.events if hctx is not None else SyncEvents(SqlJobQueue(runtime.db))
        gctx = GatewayContext(settings=settings, db=runtime.db, vault=runtime.vault, tenancy=runtime.tenancy,
                              writer=writer, events=Fanout(subscriber))
        app.include_router(gateway_api.router(gctx))
    if cloud_side:
        app.state.film = pctx
        app.include_router(hospital_api.router(hctx))  # before the film's /h5/{kind}/{token}: it has /h5/consultations/…
        app.include_router(patient.router(pctx))
        app.include_router(dicomweb.router(dicomweb.DicomwebContext.build(runtime, cache=pctx.cache, blobs=pctx.blobs,
                                                                          store=ingest_store)))
    if ingest_store is not None:
        app.include_router(ingest.router(ingest.IngestContext(
            tenancy=runtime.tenancy, vault=runtime.vault, writer=writer, store=ingest_store, events=Fanout(hctx.events),
            max_instance_bytes=settings.max_upload_bytes, spool_dir=settings.spool_dir)))

    @app.get("/healthz", tags=["Operations"], summary="Ready when it answers 200")
    def healthz() -> dict:
        with runtime.db.read() as conn:
            conn.exec_driver_sql("SELECT 1")
        return {"status": "ok", "version": __version__, "role": settings.role}

    @app.get("/metrics", tags=["Operations"], summary="Prometheus metrics")
    def prometheus() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    if cloud_side:
        app.add_middleware(dicomweb.DicomwebCors, origins=settings.cors_origins)
    app.add_middleware(SecurityHeaders, prefix=patient.PREFIX, headers=patient.SECURITY_HEADERS)
    app.add_middleware(RequestContext, metrics=metrics, trusted_proxies=settings.trusted_proxies)
    return app


def settings_to_env(settings: Settings) -> str:
    data = dataclasses.asdict(settings)
    data["data_dir"] = str(settings.data_dir)
    data["trusted_proxies"] = [str(n) for n in settings.trusted_proxies]
    return json.dumps(data)


def settings_from_env() -> Settings:
    return settings_from_json(os.environ[ENV_SETTINGS])


def settings_from_json(text: str) -> Settings:
    data = json.loads(text)
    data["trusted_proxies"] = parse_proxies(data.get("trusted_proxies"))
    data["data_dir"] = Path(data["data_dir"])
    return Settings(**data)


def app_from_env() -> FastAPI:
    """uvicorn factory for worker processes."""
    configure_logging()
    app = create_app(Runtime.open(settings_from_env(), migrate=False))
    release_startup_memory()
    return app


def run(settings: Settings) -> None:
    import uvicorn

    configure_logging()
    runtime = Runtime.open(settings)
    if settings.demo:
        from .demo import seed_demo

        seed_demo(runtime)
    log.info("Yingyun %s: HTTP on %s:%d, public URL %s, database %s", __version__, settings.host, settings.http_port,
             settings.public_url, runtime.db.dialect)
    # BoundedHttpProtocol: uvicorn's httptools protocol with header limits, stall timeouts and an idle cap.
    common = dict(host=settings.host, port=settings.http_port, log_level="warning", access_log=False,
                  ssl_certfile=settings.tls_cert, ssl_keyfile=settings.tls_key, timeout_keep_alive=30,
                  proxy_headers=False, server_header=False, timeout_graceful_shutdown=10, http=BoundedHttpProtocol)
    receivers = None
    if settings.dicom_enabled:
        from .gateway.receiver import ReceiverPool
        from .storage.blobs import LocalBlobStore

        # After an unclean stop (the marker is still there), temp files are
        # writes a crash cut short: no receiver runs yet, so remove them all.
        # Walking the store costs time, so a clean stop skips it.
        marker = settings.data_dir / ".running"
        if marker.exists():
            removed = LocalBlobStore(settings.blob_dir).cleanup_temp_files(older_than_seconds=0)
            log.info("unclean stop before: removed %d unfinished blob writes", removed)
        marker.touch()

        receivers = ReceiverPool(settings_to_env(settings), settings.dicom_workers).start()
        log.info("DICOM: AE title %s on port %d (%d receiver process(es))", settings.ae_title, settings.dicom_port,
                 settings.dicom_workers)
    monitor = callbacks = hctx = sync_worker = purger = None
    if settings.role in ("serve", "cloud"):
        # Status callbacks: "images received" when a study turns stable; one delivery worker per process.
        hctx = hospital_api.HospitalApiContext.build(runtime)
        monitor = StabilityMonitor(runtime.db, stable_seconds=settings.stable_seconds,
                                   on_stable=hctx.events.on_stable).start()
        callbacks = hctx.dispatcher().start()
    if settings.role == "gateway":
        from .gateway.sync import SpoolPurger, SyncWorker

        sync_worker = SyncWorker(db=runtime.db, vault=runtime.vault, blobs=runtime.blobs, queue=SqlJobQueue(runtime.db),
                                 cloud_url=settings.cloud_url, gateway_id=settings.gateway_id,
                                 gateway_key=settings.gateway_key).start()
        purger = SpoolPurger(db=runtime.db, blobs=runtime.blobs, spool_days=settings.spool_days).start()
        log.info("gateway %s forwarding to %s", settings.gateway_id, settings.cloud_url)
    release_startup_memory()
    try:
        if settings.http_workers > 1:
            os.environ[ENV_SETTINGS] = settings_to_env(settings)
            uvicorn.run("yingyun.serve:app_from_env", factory=True, workers=settings.http_workers, **common)
        else:
            uvicorn.run(create_app(runtime, hospital=hctx), **common)
    finally:
        for service in (monitor, callbacks, sync_worker, purger):
            if service is not None:
                service.stop()
        if hctx is not None:
            hctx.close()
        if receivers is not None:
            receivers.stop()
            (settings.data_dir / ".running").unlink(missing_ok=True)
        runtime.close()
