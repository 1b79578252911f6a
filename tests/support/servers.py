"""The real app over real HTTP: uvicorn in a thread on a free port, or `yingyun serve` as a process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import uvicorn

from .net import free_port, wait_http

YINGYUN = str(Path(sys.executable).parent / "yingyun")


class ServerThread:
    def __init__(self, app, *, port: int | None = None, **options) -> None:
        self.port = port or free_port()
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", access_log=False,
                                lifespan="on", **options)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ServerThread:
        # Started, not healthy: /healthz is 503 while a listener the app reports on is down.
        self.thread.start()
        deadline = time.time() + 20
        while time.time() < deadline:
            if self.server.started:
                return self
            if not self.thread.is_alive():
                break
            time.sleep(0.05)
        raise RuntimeError("server did not start")

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        # uvicorn only logs a failed shutdown: the app's lifespan must stop what it started.
        lifespan = getattr(self.server, "lifespan", None)
        assert not getattr(lifespan, "shutdown_failed", False), "the app's shutdown failed (see its log)"


class ServeProcess:
    """`yingyun serve` as its own process on loopback, its log in a file."""

    def __init__(self, data_dir: Path, *args: str, port: int | None = None) -> None:
        self.port = port or free_port()
        self.log = data_dir.parent / f"serve-{self.port}.log"
        self.args = [YINGYUN, "serve", "--data-dir", str(data_dir), "--host", "127.0.0.1",
                     "--http-port", str(self.port), "--dicom-port", str(free_port()), "--dicom-workers", "1", *args]
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> ServeProcess:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(self.args, stdout=subprocess.DEVNULL, stderr=log, start_new_session=True)
        try:
            wait_http(self.url)
        except RuntimeError:
            self.__exit__()
            raise RuntimeError("yingyun serve did not start: " + self.log.read_text(errors="replace")[-3000:]) from None
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.proc is not None
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=30)
