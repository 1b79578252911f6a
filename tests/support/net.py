from __future__ import annotations

import socket
import subprocess
import time

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float = 60) -> None:
    """Until `url`/healthz answers 200 (a server process starting): every listener it
    started accepts, its DICOM port included."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not start")


def wait_pacs_known(port: int, *, calling: str, called: str = "YINGYUN", timeout: float = 60) -> None:
    """Until a C-ECHO from `calling` is accepted: a PACS added while the server runs
    reaches its receivers with their next tenancy refresh (the port itself is up once
    /healthz answers 200)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if subprocess.run(["/usr/bin/echoscu", "-aet", calling, "-aec", called, "127.0.0.1", str(port)],
                          capture_output=True, timeout=30).returncode == 0:
            return
        time.sleep(0.2)
    raise RuntimeError(f"the DICOM receivers on port {port} did not accept {calling}")
