"""The scrub's repair from the other side in a split deployment (issue 18 item 5).

A gateway and a cloud as two real processes over loopback: a corrupt byte
and a deleted file on the gateway are found by `admin verify` and fetched
back from the cloud over the sync link; the same damage on the cloud is
found, flagged, asked of the gateway and sent again from its spool.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from sqlalchemy import create_engine, select

from yingyun.storage import schema as s

from ..support.dicom_data import StudySpec, make_study
from ..support.net import free_port, wait_http
from .test_split import KEY, YINGYUN, Proc, admin, prepare, storescu, until


def _keys(data_dir: Path) -> list[str]:
    engine = create_engine(f"sqlite:///{data_dir / 'yingyun.db'}")
    try:
        with engine.connect() as c:
            return list(c.execute(select(s.instances.c.blob_key).order_by(s.instances.c.pk)).scalars())
    finally:
        engine.dispose()


def _damage(data_dir: Path, keys: list[str]) -> dict[str, bytes]:
    """Flip a byte of the first object and delete the second; what they held."""
    blobs = data_dir / "blobs"
    good = {k: (blobs / k).read_bytes() for k in keys[:2]}
    data = bytearray(good[keys[0]])
    data[len(data) // 2] ^= 0x01
    (blobs / keys[0]).write_bytes(bytes(data))
    (blobs / keys[1]).unlink()
    return good


def _verify(data_dir: Path, *args: str) -> tuple[int, dict]:
    done = subprocess.run([YINGYUN, "admin", "--data-dir", str(data_dir), "verify", "--json", *args],
                          capture_output=True, text=True, timeout=120, env={**os.environ, "YINGYUN_GATEWAY_KEY": KEY})
    assert done.stdout, done.stderr
    return done.returncode, json.loads(done.stdout)


def test_damage_on_the_gateway_is_fetched_back_from_the_cloud(tmp_path):
    cloud_dir, gw_dir = tmp_path / "cloud", tmp_path / "gateway"
    prepare(cloud_dir)
    prepare(gw_dir)
    admin(cloud_dir, "hospital", "add", "--id", "h1", "--name", "一院")
    admin(cloud_dir, "gateway", "add", "--id", "gw1", "--hospital", "h1", "--key", KEY)
    admin(gw_dir, "hospital", "add", "--id", "h1", "--name", "一院")
    admin(gw_dir, "pacs", "add", "--ae-title", "PACS1", "--host", "127.0.0.1", "--port", "104", "--hospital", "h1")
    cloud_port, gw_port, dicom_port = free_port(), free_port(), free_port()
    cloud_url = f"http://127.0.0.1:{cloud_port}"
    cloud = Proc([YINGYUN, "cloud", "--data-dir", str(cloud_dir), "--host", "127.0.0.1", "--http-port",
                  str(cloud_port)], tmp_path / "cloud.log").start()

    def gateway_proc() -> Proc:
        return Proc([YINGYUN, "gateway", "--data-dir", str(gw_dir), "--host", "127.0.0.1", "--http-port",
                     str(gw_port), "--dicom-port", str(dicom_port), "--cloud-url", cloud_url, "--gateway-id", "gw1",
                     "--gateway-key", KEY, "--public-url", "https://film.example.test", "--dicom-workers", "1"],
                    tmp_path / "gw.log")

    gateway = gateway_proc().start()
    try:
        wait_http(cloud_url)
        wait_http(f"http://127.0.0.1:{gw_port}")
        assert storescu(dicom_port, make_study(tmp_path / "d", StudySpec(accession="AS1"), series=1,
                                               per_series=3)) == 0
        until(lambda: len(_keys(cloud_dir)) == 3, what="the forward")

        gw_keys = _keys(gw_dir)
        good = _damage(gw_dir, gw_keys)
        code, report = _verify(gw_dir, "--repair-from-cloud", cloud_url, "--gateway-id", "gw1")
        assert code == 0, report
        assert [(f["blobKey"], f["repaired"]) for f in report["corrupt"]] == [(gw_keys[0], True)]
        assert [(f["blobKey"], f["repaired"]) for f in report["missing"]] == [(gw_keys[1], True)]
        assert {k: (gw_dir / "blobs" / k).read_bytes() for k in gw_keys[:2]} == good  # what was received

        # a wrong key repairs nothing: the cloud refuses to hand out the copy
        _damage(gw_dir, gw_keys)
        code, report = _verify(gw_dir, "--repair-from-cloud", cloud_url, "--gateway-id", "gw1",
                               "--gateway-key", "x" * 40)
        assert code == 1 and not any(f["repaired"] for f in report["corrupt"] + report["missing"])
        code, report = _verify(gw_dir, "--repair-from-cloud", cloud_url, "--gateway-id", "gw1")
        assert code == 0, report  # mended again, with the right key

        # the same damage on the cloud is found and flagged; the gateway is asked for both in the answer to
        # its next outbox report (at once after a restart) and sends them again from its spool
        cloud_keys = _keys(cloud_dir)
        good = _damage(cloud_dir, cloud_keys)
        code, report = _verify(cloud_dir)
        assert code == 1
        assert [f["blobKey"] for f in report["corrupt"]] == [cloud_keys[0]]
        assert [f["blobKey"] for f in report["missing"]] == [cloud_keys[1]]
        gateway.kill()
        gateway = gateway_proc().start()
        until(lambda: all((cloud_dir / "blobs" / k).is_file() and (cloud_dir / "blobs" / k).read_bytes() == v
                          for k, v in good.items()), what="the cloud's copies mended from the gateway's spool")
        code, report = _verify(cloud_dir)
        assert code == 0 and not report["corrupt"] and not report["missing"], report
        assert _keys(cloud_dir) == cloud_keys  # mended under their keys: no new versions
    finally:
        gateway.kill()
        cloud.kill()
