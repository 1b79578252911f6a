from __future__ import annotations

import subprocess

import pytest

from yingyun.gateway.receiver import build_receiver


@pytest.fixture
def pacs(runtime, tenant):
    """A registered PACS (calling AE title + loopback host) for hospital h1."""
    runtime.tenancy.add_pacs(ae_title="PACS1", host="127.0.0.1", port=104, hospital_id="h1")
    return "PACS1"


@pytest.fixture
def receiver(runtime, pacs):
    server = build_receiver(runtime, port=0)
    server.start()
    yield server
    server.shutdown()


def storescu(port: int, *paths, calling: str = "PACS1", called: str = "YINGYUN",
             extra=()) -> subprocess.CompletedProcess:
    cmd = ["/usr/bin/storescu", "-aet", calling, "-aec", called, *extra, "127.0.0.1", str(port), *map(str, paths)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120,
                          env={"TCP_NODELAY": "1", "PATH": "/usr/bin:/bin"})
