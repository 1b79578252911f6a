from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from yingyun.dicomnet.server import UpperLayerServer

from ..support.dicom_peers import SCP_AE_TITLE, RecordingProvider


@pytest.fixture
def make_ul_server() -> Any:
    """Start UpperLayerServers on a free loopback port; shut all down afterwards."""
    servers: list[UpperLayerServer] = []

    def factory(provider: Any = None, **kwargs: Any) -> tuple[UpperLayerServer, RecordingProvider]:
        provider = provider or RecordingProvider()
        kwargs.setdefault("ae_title", SCP_AE_TITLE)
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
def ul_server(make_ul_server: Callable[..., Any]) -> tuple[UpperLayerServer, RecordingProvider]:
    return make_ul_server()
