"""The DICOM receiver process(es) of `serve` / `gateway`.

Each receiver is its own process (so ingest uses a core of its own rather
than sharing one interpreter lock with the HTTP server); several may share
the DICOM port with SO_REUSEPORT, the kernel spreading associations over
them.
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
import threading
import time

from ..archive.instances import InstanceStore
from ..runtime import Runtime
from ..settings import Settings
from ..storage.blobs import LocalBlobStore
from .scp import GatewayDicomService
from .upperlayer import UpperLayerServer

log = logging.getLogger("yingyun.dicom")


def build_receiver(runtime: Runtime, *, port: int | None = None, reuse_port: bool = False) -> tuple[UpperLayerServer, InstanceStore]:
    settings = runtime.settings
    blobs = LocalBlobStore(settings.blob_dir)
    store = InstanceStore(runtime.db, blobs, min_free_bytes=settings.min_free_bytes)
    service = GatewayDicomService(db=runtime.db, tenancy=runtime.tenancy, store=store,
                                  accept_any_ae=settings.accept_any_ae, default_hospital=settings.default_hospital)
    server = UpperLayerServer(service, ae_title=settings.ae_title, host=settings.host,
                              port=settings.dicom_port if port is None else port, max_associations=16,
                              reuse_port=reuse_port, spool_dir=str(settings.data_dir / "spool-tmp"))
    return server, store


def receiver_main(settings_json: str) -> None:
    from ..core.logging import configure
    from ..serve import settings_from_json

    configure()
    settings = settings_from_json(settings_json)
    runtime = Runtime.open(settings, migrate=False)
    server, store = build_receiver(runtime, reuse_port=True)
    stop = threading.Event()

    def on_term(*_):  # type: ignore[no-untyped-def]
        stop.set()
        server.shutdown()

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    try:
        server.serve_forever()
    finally:
        store.close()
        runtime.close()


class ReceiverPool:
    """Starts the receiver processes and restarts any that dies."""

    def __init__(self, settings_json: str, count: int) -> None:
        self.settings_json = settings_json
        self.count = count
        self.ctx = multiprocessing.get_context("spawn")
        self.procs: list = []
        self._stop = threading.Event()
        self._watch = threading.Thread(target=self._watchdog, name="receiver-watchdog", daemon=True)

    def start(self) -> "ReceiverPool":
        self.procs = [self._spawn() for _ in range(self.count)]
        self._watch.start()
        return self

    def _spawn(self):
        p = self.ctx.Process(target=receiver_main, args=(self.settings_json,), name="yingyun-dicom", daemon=True)
        p.start()
        return p

    def _watchdog(self) -> None:
        while not self._stop.wait(1.0):
            for i, p in enumerate(self.procs):
                if not p.is_alive() and not self._stop.is_set():
                    log.error("DICOM receiver exited (code %s); restarting", p.exitcode)
                    time.sleep(0.5)
                    self.procs[i] = self._spawn()

    def stop(self) -> None:
        self._stop.set()
        for p in self.procs:
            if p.is_alive():
                p.terminate()
        for p in self.procs:
            p.join(timeout=10)
            if p.is_alive():
                p.kill()
