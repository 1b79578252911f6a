"""The DICOM receiver process(es) of `serve` / `gateway`.

Each receiver is its own process (so ingest uses a core of its own rather
than sharing one interpreter lock with the HTTP server); several may share
the DICOM port with SO_REUSEPORT, the kernel spreading associations over
them.

A receiver is a fresh interpreter (`python -c …receiver…`, its settings on
stdin) that imports only the receive path: not the HTTP application (its
parent's `__main__`, which multiprocessing's spawn would re-import), and
not numpy or Pillow, which pydicom pulls in for pixel data a receiver never
decodes. That keeps each receiver near 60 MB instead of 120 MB. A receiver
whose parent dies stops too.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..runtime import Runtime
    from .upperlayer import UpperLayerServer

log = logging.getLogger("yingyun.dicom")

# Modules the receive path must not load: pydicom imports them when present,
# for pixel data and for downloading its test files, and each costs memory in
# every receiver (received bytes are stored as they are).
_UNNEEDED_MODULES = ("numpy", "PIL", "requests")
# Datasets larger than this are spooled to a file while they arrive, so 16
# associations each receiving a huge multi-frame object cost at most
# 16 x 16 MiB of memory per receiver (the upper layer's default is 64 MiB).
_SPOOL_THRESHOLD = 16 * 2**20


def build_receiver(runtime: Runtime, *, port: int | None = None, reuse_port: bool = False) -> UpperLayerServer:
    """The DICOM listener over the runtime's instance store (which the runtime closes)."""
    from .scp import GatewayDicomService
    from .upperlayer import UpperLayerServer

    settings = runtime.settings
    service = GatewayDicomService(db=runtime.db, tenancy=runtime.tenancy, store=runtime.instances,
                                  accept_any_ae=settings.accept_any_ae, default_hospital=settings.default_hospital)
    return UpperLayerServer(service, ae_title=settings.ae_title, host=settings.host,
                            port=settings.dicom_port if port is None else port, max_associations=16,
                            reuse_port=reuse_port, spool_dir=str(settings.spool_dir),
                            spool_threshold=_SPOOL_THRESHOLD)


def clear_spool(spool_dir: Path) -> int:
    """Delete the data sets receivers were spooling when they died; only while no receiver runs.

    Only the receivers' files (`yy-spool-*`): an import or an HTTP upload
    running beside the server spools into the same folder."""
    try:
        entries = list(os.scandir(spool_dir))
    except FileNotFoundError:
        return 0
    removed = 0
    for entry in entries:
        if entry.name.startswith("yy-spool-") and entry.is_file(follow_symlinks=False):
            os.unlink(entry.path)
            removed += 1
    return removed


def receiver_main(settings_json: str, parent_pid: int | None = None) -> None:
    from ..core.logging import configure
    from ..runtime import Runtime, release_startup_memory
    from ..settings import Settings

    configure()
    runtime = Runtime.open(Settings.from_json(settings_json), create_keys=False, migrate=False)
    server = build_receiver(runtime, reuse_port=True)

    def on_term(*_):  # type: ignore[no-untyped-def]
        server.shutdown()

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    if parent_pid is not None:
        threading.Thread(target=_exit_with_parent, args=(parent_pid, server), name="parent-watch", daemon=True).start()
    release_startup_memory()
    try:
        server.serve_forever()
    finally:
        runtime.close()


def _exit_with_parent(parent_pid: int, server: UpperLayerServer) -> None:
    while os.getppid() == parent_pid:
        time.sleep(1.0)
    log.error("the serve process is gone; DICOM receiver stopping")
    server.shutdown()


def _child() -> None:
    """Entry point of a receiver process: settings JSON on stdin."""
    from ..storage.datadir import owner_only_umask

    owner_only_umask()
    for name in _UNNEEDED_MODULES:
        sys.modules.setdefault(name, None)  # type: ignore[arg-type]  # makes `import numpy` fail fast
    settings_json = sys.stdin.read()
    sys.stdin.close()
    receiver_main(settings_json, parent_pid=os.getppid())


_CHILD_CODE = "from yingyun.gateway.receiver import _child; _child()"


class ReceiverPool:
    """Starts the receiver processes and restarts any that dies."""

    def __init__(self, settings_json: str, count: int) -> None:
        self.settings_json = settings_json
        self.count = count
        self.procs: list[subprocess.Popen] = []
        self._stop = threading.Event()
        self._watch = threading.Thread(target=self._watchdog, name="receiver-watchdog", daemon=True)

    def start(self) -> "ReceiverPool":
        self.procs = [self._spawn() for _ in range(self.count)]
        self._watch.start()
        return self

    def _spawn(self) -> subprocess.Popen:
        p = subprocess.Popen([sys.executable, "-c", _CHILD_CODE], stdin=subprocess.PIPE, close_fds=True)
        assert p.stdin is not None
        p.stdin.write(self.settings_json.encode())
        p.stdin.close()
        return p

    def _watchdog(self) -> None:
        while not self._stop.wait(1.0):
            for i, p in enumerate(self.procs):
                if p.poll() is not None and not self._stop.is_set():
                    log.error("DICOM receiver exited (code %s); restarting", p.returncode)
                    time.sleep(0.5)
                    self.procs[i] = self._spawn()

    def stop(self) -> None:
        self._stop.set()
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
        for p in self.procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
