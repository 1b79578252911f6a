from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Callable

import pytest

# tests/support holds generic helpers shared across test packages.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from support.dicom_peers import RecordingProvider  # noqa: E402

from yingyun.gateway.upperlayer import UpperLayerServer  # noqa: E402

AE_TITLE = "YINGYUN"


@pytest.fixture
def make_server() -> Any:
    """Start UpperLayerServers on a free loopback port; shut all down afterwards."""
    servers: list[UpperLayerServer] = []

    def factory(provider: Any = None, **kwargs: Any) -> tuple[UpperLayerServer, RecordingProvider]:
        provider = provider or RecordingProvider()
        kwargs.setdefault("ae_title", AE_TITLE)
        kwargs.setdefault("host", "127.0.0.1")
        kwargs.setdefault("port", 0)
        server = UpperLayerServer(provider, **kwargs)
        server.start()
        servers.append(server)
        return server, provider

    yield factory
    for server in servers:
        server.shutdown()


@pytest.fixture
def server(make_server: Callable[..., Any]) -> tuple[UpperLayerServer, RecordingProvider]:
    return make_server()
