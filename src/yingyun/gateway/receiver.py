"""The DICOM receiver process(es) of `serve` / `gateway`.

Each receiver is its own process (so ingest uses a core of its own rather
than sharing one interpreter lock with the HTTP server). The serve process
binds the DICOM port itself, without SO_REUSEPORT, and hands the listening
socket to its receivers, which take connections from its one accept queue:
only the receivers of one instance share its port, and a second instance on
the same port fails to start ("DICOM port N is in use") instead of getting
a share of a PACS's associations. The limit on associations is one for the
instance (`--max-associations`), kept in the data dir's `run/dicom-slots`
(dicomnet/slots.py), so it holds however many receivers there are and
whichever of them dies.

A receiver tells that it is serving by holding a lock on
`run/dicom-receiver-{i}` (`Readiness`): `/healthz` reports DICOM up only
while one does, and the kernel drops the lock with the process.

A receiver is a fresh interpreter (`python -c …receiver…`, its settings on
stdin, the listening socket's descriptor and its index as arguments) that
imports only the receive path: not the HTTP application (its
parent's `__main__`, which multiprocessing's spawn would re-import), and
not numpy or Pillow, which pydicom pulls in for pixel data a receiver never
decodes. That keeps each receiver near 60 MB instead of 120 MB. A receiver
whose parent dies stops too.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..dicomnet.association import AssociationObserver
    from ..dicomnet.server import UpperLayerServer
    from ..runtime import Runtime
    from ..settings import Settings

log = logging.getLogger("yingyun.dicom")

# Modules the receive path must not load: pydicom imports them when present,
# for pixel data and for downloading its test files, and each costs memory in
# every receiver (received bytes are stored as they are).
_UNNEEDED_MODULES = ("numpy", "PIL", "requests")
# Datasets larger than this are spooled to a file while they arrive, so 16
# associations each receiving a huge multi-frame object cost at most
# 16 x 16 MiB of memory per receiver (the upper layer's default is 64 MiB).
_SPOOL_THRESHOLD = 16 * 2**20


def build_receiver(runtime: Runtime, *, port: int | None = None, sock: socket.socket | None = None,
                   observer: AssociationObserver | None = None) -> UpperLayerServer:
    """The receiver's server over the runtime's instance store (which the runtime closes),
    listening on ``sock`` (serve's listening socket) or bound to ``port``."""
    from ..dicomnet.server import UpperLayerServer
    from ..dicomnet.slots import AssociationSlots
    from .scp import GatewayDicomService

    settings = runtime.settings
    service = GatewayDicomService(db=runtime.db, tenancy=runtime.tenancy, store=runtime.instances,
                                  accept_any_ae=settings.accept_any_ae, default_hospital=settings.default_hospital)
    slots = AssociationSlots(settings.max_associations, reserved=settings.reserved_associations,
                             folder=settings.run_dir / "dicom-slots")
    return UpperLayerServer(service, ae_title=settings.ae_title, host=settings.host,
                            port=settings.dicom_port if port is None else port, sock=sock,
                            slots=slots, trusted_peer=service.is_registered_host,
                            acse_timeout=settings.dicom_artim_s, pdu_timeout=settings.dicom_pdu_timeout_s,
                            min_rate=settings.dicom_min_rate, spool_dir=str(settings.spool_dir),
                            spool_threshold=_SPOOL_THRESHOLD, observer=observer)


class PortInUse(Exception):
    pass


# A restart right after a crash may find the old receivers still letting go of the
# port (they notice their parent is gone within a second): waited for this long.
_BIND_PATIENCE_S = 3.0


def bind_listener(settings: Settings) -> socket.socket:
    """The instance's DICOM listening socket, bound by the serve process for its receivers.

    Without SO_REUSEPORT: a second instance on the port gets PortInUse,
    never a share of its connections."""
    family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
    deadline = time.monotonic() + _BIND_PATIENCE_S
    while True:
        try:
            return socket.create_server((settings.host, settings.dicom_port), family=family, backlog=128)
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise
            if time.monotonic() >= deadline:
                raise PortInUse(f"DICOM port {settings.dicom_port} is in use") from exc
        time.sleep(0.1)


class Readiness:
    """Which receivers are serving: receiver i holds an exclusive flock on
    ``folder/dicom-receiver-{i}`` from the moment its server polls the
    listening socket until its process ends (the kernel drops the lock
    however it ends). A flock belongs to an open file description, so the
    probe is right from any process, this one included."""

    def __init__(self, folder: Path, count: int) -> None:
        self.folder = folder
        self.count = count

    def _path(self, index: int) -> str:
        return os.path.join(self.folder, f"dicom-receiver-{index}")

    def announce(self, index: int) -> None:
        """In receiver ``index``, once it serves: held until the process ends."""
        os.makedirs(self.folder, mode=0o700, exist_ok=True)
        fd = os.open(self._path(index), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)  # waits out a probe holding it this instant

    def serving(self) -> int:
        """How many receivers are serving now."""
        up = 0
        for index in range(self.count):
            try:
                fd = os.open(self._path(index), os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                up += 1
            finally:
                os.close(fd)
        return up


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


def receiver_main(settings_json: str, listener_fd: int, index: int, parent_pid: int | None = None) -> None:
    from ..core.logging import configure
    from ..runtime import Runtime, release_startup_memory
    from ..settings import Settings

    settings = Settings.from_json(settings_json)
    configure(settings.log_level, settings.log_format)
    from ..metrics.receivers import ReceiverMetrics

    runtime = Runtime.open(settings, create_keys=False, migrate=False)
    metrics = ReceiverMetrics(settings.run_dir, index).start()
    server = build_receiver(runtime, sock=socket.socket(fileno=listener_fd), observer=metrics)

    def on_term(*_):  # type: ignore[no-untyped-def]
        server.shutdown()

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    if parent_pid is not None:
        threading.Thread(target=_exit_with_parent, args=(parent_pid, server), name="parent-watch", daemon=True).start()
    release_startup_memory()
    # Connections queue on the listening socket until serve_forever() takes them, a moment from now.
    Readiness(settings.run_dir, settings.dicom_workers).announce(index)
    try:
        server.serve_forever()
    finally:
        metrics.stop()
        runtime.close()


def _exit_with_parent(parent_pid: int, server: UpperLayerServer) -> None:
    while os.getppid() == parent_pid:
        time.sleep(1.0)
    log.error("the serve process is gone; DICOM receiver stopping")
    server.shutdown()


def _child() -> None:
    """Entry point of a receiver process: settings JSON on stdin; argv: listening fd, index."""
    from ..storage.datadir import owner_only_umask

    owner_only_umask()
    for name in _UNNEEDED_MODULES:
        sys.modules.setdefault(name, None)  # type: ignore[arg-type]  # makes `import numpy` fail fast
    settings_json = sys.stdin.read()
    sys.stdin.close()
    receiver_main(settings_json, int(sys.argv[1]), int(sys.argv[2]), parent_pid=os.getppid())


_CHILD_CODE = "from yingyun.gateway.receiver import _child; _child()"


class ReceiverPool:
    """Starts the receiver processes on the listening socket and restarts any that dies."""

    def __init__(self, settings_json: str, count: int, listener: socket.socket) -> None:
        self.settings_json = settings_json
        self.count = count
        self.listener = listener
        self.procs: list[subprocess.Popen[bytes]] = []
        self._stop = threading.Event()
        self._watch = threading.Thread(target=self._watchdog, name="receiver-watchdog", daemon=True)

    def start(self) -> ReceiverPool:
        self.procs = [self._spawn(i) for i in range(self.count)]
        self._watch.start()
        return self

    def _spawn(self, index: int) -> subprocess.Popen[bytes]:
        fd = self.listener.fileno()
        p = subprocess.Popen([sys.executable, "-c", _CHILD_CODE, str(fd), str(index)], stdin=subprocess.PIPE,
                             close_fds=True, pass_fds=(fd,))
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
                    self.procs[i] = self._spawn(i)

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
