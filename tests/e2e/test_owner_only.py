"""The data dir is readable by its owner only, whatever the umask (issue 12 item 9).

A real `yingyun serve` and admin commands run under a permissive umask; after
RIS records, C-STOREs (journaled small instances and a fsynced larger one) and
a rendered image, the data dir, every folder in it and every file (the
database with its WAL and shared memory, the key file, the blobs, the render
cache, the spool) carry no permission for group or others. A data dir left
0644/0755 by an older version is made owner-only by the next start.
"""

from __future__ import annotations

import os
import re
import signal
import stat
import subprocess
import sys
from pathlib import Path

import httpx
import orjson
import pytest

from yingyun.contract.signing import signed_headers

from ..support.dicom_data import StudySpec, make, uid
from ..support.net import free_port, wait_http, wait_pacs_known

YINGYUN = str(Path(sys.executable).parent / "yingyun")
TOKEN = "t" * 32


def modes(root: Path) -> dict[str, int]:
    out = {".": stat.S_IMODE(root.stat().st_mode)}
    for p in root.rglob("*"):
        if not p.is_symlink():
            out[p.relative_to(root).as_posix()] = stat.S_IMODE(p.stat().st_mode)
    return out


def readable_by_others(root: Path) -> dict[str, str]:
    return {name: oct(mode) for name, mode in modes(root).items() if mode & 0o077}


class Serve:
    def __init__(self, data: Path, log: Path, umask: int) -> None:
        self.http, self.dicom = free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.http}"
        with open(log, "a") as err:  # the child keeps its own copy of the descriptor
            self.proc = subprocess.Popen(
                [YINGYUN, "serve", "--data-dir", str(data), "--host", "127.0.0.1", "--http-port", str(self.http),
                 "--dicom-port", str(self.dicom), "--dicom-workers", "1", "--public-url", self.url],
                stdout=subprocess.DEVNULL, stderr=err, start_new_session=True,
                preexec_fn=lambda: os.umask(umask))
        wait_http(self.url)

    def stop(self) -> None:
        os.killpg(self.proc.pid, signal.SIGTERM)
        self.proc.wait(timeout=30)


@pytest.mark.parametrize("umask", [0o022, 0o000], ids=["umask-022", "umask-000"])
def test_everything_under_the_data_dir_is_owner_only(tmp_path, umask, monkeypatch):
    for name in [k for k in os.environ if k.startswith("YINGYUN_")]:
        monkeypatch.delenv(name)
    data = tmp_path / "data"

    def admin(*args: str) -> str:
        done = subprocess.run([YINGYUN, "admin", *args, "--data-dir", str(data)], capture_output=True, text=True,
                              timeout=60, preexec_fn=lambda: os.umask(umask))
        assert done.returncode == 0, done.stderr
        return done.stdout

    server = Serve(data, tmp_path / "serve.log", umask)
    try:
        admin("hospital", "add", "--id", "h1", "--name", "一院")
        admin("partner", "add", "--app-id", "ris1", "--token", TOKEN, "--hospital", "h1")
        admin("pacs", "add", "--ae-title", "PACS1", "--host", "127.0.0.1", "--port", "104", "--hospital", "h1")
        bearer = re.search(r"token: (\S+)", admin("token", "add", "--name", "ops", "--all-hospitals")).group(1)
        spec = StudySpec(accession="A9")
        series_uid = uid()
        files = [make(tmp_path / "pacs" / f"{i}.dcm", spec, series_uid=series_uid, number=i + 1) for i in range(2)]
        files.append(make(tmp_path / "pacs" / "big.dcm", spec, series_uid=series_uid, number=3, rows=320, cols=320))
        wait_pacs_known(server.dicom, calling="PACS1")
        sent = subprocess.run(["/usr/bin/storescu", "-aet", "PACS1", "-aec", "YINGYUN", "127.0.0.1", str(server.dicom),
                               *map(str, files)], capture_output=True, text=True, timeout=120)
        assert sent.returncode == 0, sent.stderr
        study = {"patientId": "P9", "patientName": "张三丰", "patientSex": "M", "studyId": "S9", "accessNumber": "A9",
                 "modality": "CT", "studyUid": spec.study_uid, "phoneNum": "13800138000"}
        with httpx.Client(base_url=server.url, timeout=30) as c:
            assert c.post("/ris/study/add", content=orjson.dumps(study),
                          headers=signed_headers("ris1", TOKEN)).json()["code"] == 0
            import pydicom

            sop = str(pydicom.dcmread(files[2], stop_before_pixels=True).SOPInstanceUID)
            rendered = c.get(f"/dicomweb/studies/{spec.study_uid}/series/{series_uid}/instances/{sop}/rendered",
                             headers={"Authorization": f"Bearer {bearer}", "Accept": "image/jpeg"})
            assert rendered.status_code == 200
        present = modes(data)
        for wanted in ("yingyun.db", "yingyun.db-wal", "yingyun.db-shm", "yingyun-keys.json"):
            assert wanted in present, sorted(present)
        assert any(n.startswith("blobs/") and n.endswith(".dcm") for n in present), sorted(present)
        assert any(n.startswith("render-cache/") and n.endswith(".jpg") for n in present), sorted(present)
        assert readable_by_others(data) == {}
        assert present["."] == 0o700
    finally:
        server.stop()

    # An older version's data dir: 0644 files in 0755 folders. The next start fixes it.
    for p in [data, *data.rglob("*")]:
        os.chmod(p, 0o755 if p.is_dir() else 0o644)
    (data / ".owner-only").unlink()
    server = Serve(data, tmp_path / "serve.log", umask)
    try:
        assert readable_by_others(data) == {}
    finally:
        server.stop()
    assert "Traceback" not in (tmp_path / "serve.log").read_text(errors="replace")
