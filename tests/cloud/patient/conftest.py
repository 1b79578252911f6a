from __future__ import annotations

import pytest

from yingyun.serve import patient_context
from yingyun.core.sms import FakeSender
from yingyun.settings import Settings

from ...support.net import free_port
from ...support.servers import ServerThread


@pytest.fixture
def film_port() -> int:
    return free_port()


@pytest.fixture
def film_options() -> dict:
    """Settings overrides for one test module or test (override this fixture)."""
    return {}


@pytest.fixture
def settings(tmp_path, database_url, film_port, film_options) -> Settings:
    # The public URL is the test server's own address, so the QR code's URL opens as it is.
    return Settings(data_dir=tmp_path / "data", database_url=database_url, public_url=f"http://127.0.0.1:{film_port}",
                    **film_options)


@pytest.fixture
def sms() -> FakeSender:
    return FakeSender()


@pytest.fixture
def film(runtime, sms):
    ctx = patient_context(runtime, sms=sms)
    yield ctx
    ctx.stop()


@pytest.fixture
def server(runtime, film, film_port):
    from yingyun.serve import create_app

    s = ServerThread(create_app(runtime, film=film), port=film_port)
    # As `yingyun serve` runs uvicorn: X-Forwarded-For counts only through --trusted-proxy.
    s.server.config.proxy_headers = False
    s.start()
    yield s
    s.stop()
