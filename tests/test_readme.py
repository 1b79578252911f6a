"""A newcomer's first steps, run as written: `yingyun serve --demo`, its banner, the README's snippets.

The shell and Python blocks are taken from README.md and the banner as they are and run in bash and
the venv's Python against a live server on a port that is not 8080, so neither can rot; the one edit
the README asks of the reader (putting the token in) is the only substitution. Then the QR link they
print is opened and verified with the last four digits of the study's phone number, as a patient would.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from yingyun.demo import demo_banner
from yingyun.settings import Settings

from .support.net import free_port

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
BANNER_END = "======================================================"


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """`yingyun serve --demo` on free ports: (HTTP port, banner text, environment)."""
    port = free_port()
    env = dict(os.environ, YINGYUN_DATA_DIR=str(tmp_path_factory.mktemp("demo") / "yingyun-data"),
               YINGYUN_HTTP_PORT=str(port), YINGYUN_DICOM_PORT=str(free_port()), PATH=f"{BIN}:{os.environ['PATH']}")
    env.pop("YINGYUN_TIMEZONE", None)
    proc = subprocess.Popen([str(BIN / "yingyun"), "serve", "--demo", "--host", "127.0.0.1", "--dicom-workers", "1"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        lines: list[str] = []
        deadline = time.time() + 60
        while time.time() < deadline and not (lines and lines[-1].startswith(BANNER_END) and len(lines) > 5):
            lines.append(proc.stdout.readline())
        deadline = time.time() + 60
        while not _healthy(port):
            assert time.time() < deadline and proc.poll() is None, "".join(lines)
            time.sleep(0.2)
        yield port, "".join(lines), env
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        proc.stdout.close()


def _healthy(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def _bash(script: str, env: dict) -> list[str]:
    out = subprocess.run(["bash", "-euo", "pipefail", "-c", script], env=env, capture_output=True, text=True,
                         timeout=60, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    return out.stdout.splitlines()


def _open_as_the_patient(url: str, last4: str) -> str:
    """The QR link in a browser-like client: the verification page, the answer, then the study page."""
    with httpx.Client(follow_redirects=True, timeout=30) as client:
        page = client.get(url)
        assert page.status_code == 200 and 'name="answer"' in page.text
        token = re.search(r'name="csrf" value="([0-9a-f]+)"', page.text).group(1)
        wrong = client.post(url + "/verify", data={"answer": "0000", "csrf": token})
        assert wrong.status_code == 400  # the page really checks the answer
        token = re.search(r'name="csrf" value="([0-9a-f]+)"', wrong.text).group(1)
        done = client.post(url + "/verify", data={"answer": last4, "csrf": token})
        assert done.status_code == 200 and 'name="answer"' not in done.text
        return done.text


def test_the_banners_request_registers_a_study_whose_qr_link_opens_with_the_phones_last_four_digits(demo):
    port, banner, env = demo
    token = banner.split("partner token : ")[1].split()[0]
    assert len(token) == 32
    script = banner[banner.index("APP="):banner.index("\n2. ")]
    added, reported, qr_url = _bash(script, env)
    assert json.loads(added) == json.loads(reported) == {"code": 0, "message": "成功"}
    assert qr_url.startswith(f"http://127.0.0.1:{port}/h5/s/")
    study = _open_as_the_patient(qr_url, "8000")  # 13800138000, the banner's study
    assert "胸部CT平扫未见明显异常。" in study  # its report
    assert "last four digits of the study's phone number (8000 here)" in banner
    assert "yingyun admin pacs add --ae-title PACS1" in banner and "--accept-any-ae" in banner


def _readme_block(lang: str, after: str) -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index(after):]
    return re.search(rf"```{lang}\n(.*?)```", section, re.S).group(1)


def test_the_readme_snippets_run_as_pasted(demo):
    port, banner, env = demo
    token = banner.split("partner token : ")[1].split()[0]
    shell = _readme_block("bash", "## Signing a request")
    python = _readme_block("python", "## Signing a request")
    assert "8080/" not in shell + python  # the port comes from the variables
    shell = shell.replace("<the 32-character token>", token)  # the one edit the README asks for
    # pasted one after the other: curl prints no newline of its own
    script = f"{shell}\necho\n{BIN / 'python'} - <<'README_PYTHON'\n{python}README_PYTHON\n"
    added, qr_url = _bash(script, env)
    assert json.loads(added) == {"code": 0, "message": "成功"}
    assert qr_url.startswith(f"http://127.0.0.1:{port}/h5/s/")
    study = _open_as_the_patient(qr_url, "5678")  # the README's phoneNum 13912345678
    assert "张*" in study


def _settings(tmp_path, **kw) -> Settings:
    return Settings(data_dir=tmp_path, database_url="sqlite://", http_port=8765, **kw)


CREDS = {"unionId": "u", "hospitalId": "demo-hospital", "appId": "demo-partner", "token": "t" * 32}


def test_the_banner_warns_when_no_phone_can_open_the_qr_codes(tmp_path):
    everywhere = demo_banner(CREDS, _settings(tmp_path))  # listening on 0.0.0.0, public URL 127.0.0.1
    assert "QR codes point at http://127.0.0.1:8765/h5/s/…, which only this machine can open" in everywhere
    assert re.search(r"\n  --public-url http://\S+:8765\n", everywhere)
    assert "BASE=http://127.0.0.1:8765" in everywhere  # the shell on this machine still uses loopback
    public = demo_banner(CREDS, _settings(tmp_path, public_url="https://film.example"))
    assert "QR codes point at https://film.example/h5/s/… (set with --public-url)." in public
    assert "only this machine" not in public
    local = demo_banner(CREDS, _settings(tmp_path, host="127.0.0.1"))
    assert "only this machine" not in local
    sms = demo_banner(CREDS, _settings(tmp_path, verify_method="sms"))
    assert "asks for a code sent by SMS" in sms and "8000 here" not in sms
