"""The receiver processes import only the receive path (no numpy, Pillow or
the HTTP app), stop when the serve process that started them is gone, and
/healthz says DICOM is up only while one of them serves."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import httpx

from yingyun.gateway.receiver import ReceiverPool, bind_listener
from yingyun.serve import create_app, readiness_of

from ..support.dicom_peers import echoscu
from ..support.net import free_port
from ..support.servers import ServerThread


def test_receive_path_needs_no_numpy_pillow_or_http_app() -> None:
    code = (
        "import sys\n"
        "from yingyun.gateway import receiver\n"
        "for m in receiver._UNNEEDED_MODULES: sys.modules.setdefault(m, None)\n"
        "from yingyun.gateway.receiver import build_receiver\n"
        "from yingyun.settings import Settings\n"
        "import yingyun.archive.instances, yingyun.gateway.scp, yingyun.dicomnet.server, yingyun.runtime\n"
        "import yingyun.core.logging\n"
        "bad = [m for m in ('fastapi', 'uvicorn', 'yingyun.serve') if m in sys.modules]\n"
        "assert not bad, bad\n"
        "print('ok')\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr


def test_settings_round_trip_without_serve(tmp_path) -> None:
    from yingyun.settings import Settings, parse_proxies

    s = Settings(data_dir=tmp_path, database_url="sqlite:///" + str(tmp_path / "y.db"),
                 trusted_proxies=parse_proxies(["10.0.0.0/8"]), blob_url="s3://films/prod")
    assert Settings.from_json(s.to_json()) == s


def _health(url: str) -> httpx.Response:
    return httpx.get(url + "/healthz", timeout=10)


def _until(predicate, timeout: float = 90.0):
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.02)
    return value


def test_healthz_is_200_only_while_a_receiver_serves_the_dicom_port(runtime, tenant):
    settings = runtime.settings
    settings.host, settings.dicom_port = "127.0.0.1", free_port()
    settings.dicom_workers = 1  # one receiver: killing it takes DICOM down
    runtime.tenancy.add_pacs(ae_title="PACS1", host="127.0.0.1", port=104, hospital_id="h1")
    listener = bind_listener(settings)
    web = ServerThread(create_app(runtime, receivers=readiness_of(settings))).start()
    pool = ReceiverPool(settings.to_json(), settings.dicom_workers, listener)
    try:
        r = _health(web.url)  # HTTP answers, but no receiver takes associations yet
        assert r.status_code == 503 and r.json()["status"] == "unavailable"
        assert r.json()["listeners"] == {"http": {"up": True}, "dicom": {
            "up": False, "port": settings.dicom_port, "receivers": 1, "receiversUp": 0}}
        pool.start()
        ok = _until(lambda: (h := _health(web.url)).status_code == 200 and h)
        assert ok.json()["listeners"]["dicom"] == {"up": True, "port": settings.dicom_port, "receivers": 1,
                                                   "receiversUp": 1}
        # healthy means an association is served now, with no wait
        assert echoscu(settings.dicom_port, called="YINGYUN", calling="PACS1").returncode == 0
        # a receiver that dies takes DICOM down with it until the pool has started another
        os.kill(pool.procs[0].pid, signal.SIGKILL)
        assert _until(lambda: _health(web.url).status_code == 503, timeout=30)
        _until(lambda: _health(web.url).status_code == 200)
        assert echoscu(settings.dicom_port, called="YINGYUN", calling="PACS1").returncode == 0
    finally:
        pool.stop()
        web.stop()
        listener.close()
