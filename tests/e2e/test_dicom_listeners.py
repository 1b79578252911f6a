"""`yingyun serve`'s DICOM port as a PACS and an orchestrator see it (issue 12, items 2, 8, 22).

Real processes over loopback: health means an association is served;
`--max-associations` is one limit for the instance however many receiver
processes share it, and it survives receivers being killed; a second
instance on the same DICOM port refuses to start instead of taking a share
of the PACS's associations.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from ..support.dicom_data import StudySpec, make_study
from ..support.dicom_peers import RELEASE_RQ, RawPeer, associate_rq, decode_rj, echoscu, run_dcmtk
from ..support.net import free_port, wait_http

YINGYUN = str(Path(sys.executable).parent / "yingyun")


def admin(data_dir: Path, *args: str) -> None:
    subprocess.run([YINGYUN, "admin", *args, "--data-dir", str(data_dir)], check=True, capture_output=True,
                   timeout=60)


def registered(data_dir: Path) -> Path:
    """A new data dir, prepared as an operator does before the first start, with a PACS."""
    subprocess.run([YINGYUN, "db", "upgrade", "--data-dir", str(data_dir)], check=True, capture_output=True, timeout=60)
    admin(data_dir, "hospital", "add", "--id", "h1", "--name", "一院")
    admin(data_dir, "pacs", "add", "--ae-title", "PACS1", "--host", "127.0.0.1", "--port", "104", "--hospital", "h1")
    return data_dir


def serve(data_dir: Path, http: int, dicom: int, log: Path, *extra: str) -> subprocess.Popen:
    with open(log, "ab") as err:  # the child keeps its own copy of the descriptor
        return subprocess.Popen([YINGYUN, "serve", "--data-dir", str(data_dir), "--host", "127.0.0.1",
                                 "--http-port", str(http), "--dicom-port", str(dicom), *extra],
                                stdout=subprocess.DEVNULL, stderr=err, start_new_session=True)


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def children(pid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                        out.append(int(entry))
            except (OSError, IndexError, ValueError):
                pass
    return out


def test_healthy_means_the_dicom_port_serves_associations(tmp_path):
    data = registered(tmp_path / "d")
    http, dicom = free_port(), free_port()
    proc = serve(data, http, dicom, tmp_path / "serve.log", "--dicom-workers", "2")
    try:
        url = f"http://127.0.0.1:{http}"
        deadline = time.monotonic() + 90
        while True:  # what an orchestrator does: wait for health, then send at once
            assert time.monotonic() < deadline and proc.poll() is None, "never healthy"
            try:
                r = httpx.get(url + "/healthz", timeout=2)
                if r.status_code == 200:
                    break
                assert r.status_code == 503 and r.json()["listeners"]["dicom"]["up"] is False
            except httpx.TransportError:
                pass
            time.sleep(0.02)
        rc = echoscu(dicom, called="YINGYUN", calling="PACS1")
        assert rc.returncode == 0, rc.stdout + rc.stderr
        assert r.json()["listeners"]["http"] == {"up": True}
        assert r.json()["listeners"]["dicom"]["up"] is True and r.json()["listeners"]["dicom"]["port"] == dicom
    finally:
        stop(proc)


def receivers_up(url: str, n: int) -> None:
    deadline = time.monotonic() + 90
    while httpx.get(url + "/healthz", timeout=10).json()["listeners"]["dicom"]["receiversUp"] < n:
        assert time.monotonic() < deadline, f"{n} receivers never served"
        time.sleep(0.1)


def _associate(port: int) -> RawPeer | int:
    """An associated peer, or the A-ASSOCIATE-RJ (result, source, reason) as one int."""
    peer = RawPeer(port)
    peer.send(associate_rq(called="YINGYUN", calling="PACS1"))
    pdu_type, raw = peer.recv_pdu()
    if pdu_type == 0x02:
        return peer
    peer.close()
    assert pdu_type == 0x03, raw
    rj = decode_rj(raw)
    return rj.result * 0x10000 + rj.source * 0x100 + rj.reason_diagnostic


def test_max_associations_is_one_limit_for_the_instance_and_survives_killed_receivers(tmp_path):
    data = registered(tmp_path / "d")
    http, dicom = free_port(), free_port()
    proc = serve(data, http, dicom, tmp_path / "serve.log", "--dicom-workers", "2", "--max-associations", "3")
    url = f"http://127.0.0.1:{http}"
    held: list[RawPeer] = []
    try:
        wait_http(url)
        receivers_up(url, 2)  # the limit is shared by both

        def fill() -> None:
            for _ in range(3):
                peer = _associate(dicom)
                assert isinstance(peer, RawPeer), f"refused with {peer:#x} below the limit"
                held.append(peer)
            # over the limit, whichever receiver takes the connection: transient, local limit exceeded
            for _ in range(4):
                assert _associate(dicom) == 0x020302

        fill()
        receivers = children(proc.pid)
        assert len(receivers) == 2
        for pid in receivers:  # no clean-up runs in them
            os.kill(pid, signal.SIGKILL)
        for peer in held:
            peer.expect_eof()
            peer.close()
        held.clear()
        receivers_up(url, 2)
        fill()  # the dead receivers' slots came back: three again, and no more
        for peer in held:
            peer.send(RELEASE_RQ)
            assert peer.recv_pdu()[0] == 0x06
    finally:
        for peer in held:
            peer.close()
        stop(proc)


def test_a_second_instance_on_the_same_dicom_port_fails_to_start(tmp_path):
    first_dir, second_dir = registered(tmp_path / "first"), registered(tmp_path / "second")
    dicom = free_port()
    first = serve(first_dir, free_port(), dicom, tmp_path / "first.log", "--dicom-workers", "2")
    first_url = f"http://127.0.0.1:{first.args[first.args.index('--http-port') + 1]}"
    second = None
    try:
        wait_http(first_url)
        second = subprocess.Popen([YINGYUN, "serve", "--data-dir", str(second_dir), "--host", "127.0.0.1",
                                   "--http-port", str(free_port()), "--dicom-port", str(dicom)],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                  start_new_session=True)
        _, err = second.communicate(timeout=60)
        assert second.returncode != 0
        assert f"DICOM port {dicom} is in use" in err
        # every image reaches the instance that owns the port
        files = make_study(tmp_path / "in", StudySpec(), series=1, per_series=10)
        r = run_dcmtk("storescu", "-aet", "PACS1", "-aec", "YINGYUN", "127.0.0.1", str(dicom), *map(str, files),
                      timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr
        stored = subprocess.run([YINGYUN, "admin", "studies", "--json", "--data-dir", str(first_dir)],
                                check=True, capture_output=True, text=True, timeout=60).stdout
        assert '"images": 10' in stored
    finally:
        if second is not None and second.poll() is None:
            stop(second)
        stop(first)
