"""The operator's CLI, as outside scripts use it, against a running server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import orjson
import pytest

from yingyun.contract.signing import signed_headers

YINGYUN = str(Path(sys.executable).parent / "yingyun")
STUDY = {"patientId": "P1", "patientName": "张三", "patientSex": "M", "studyId": "S1", "accessNumber": "A1", "modality": "CT"}


def cli(settings, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run([YINGYUN, "admin", *args, "--data-dir", str(settings.data_dir), "--database-url",
                           settings.database_url], capture_output=True, text=True, check=check, timeout=60)


def post(server, app_id, token, body=STUDY) -> dict:
    r = httpx.post(server.url + "/ris/study/add", content=orjson.dumps(body), headers=signed_headers(app_id, token))
    return r.json()


def eventually(fn, timeout=5.0):
    deadline = time.time() + timeout
    while True:
        value = fn()
        if value or time.time() > deadline:
            return value
        time.sleep(0.1)


def test_admin_changes_reach_the_running_server(runtime, settings, app_server):
    assert "union u1 added" in cli(settings, "union", "add", "--id", "u1", "--name", "联盟").stdout
    assert "updated" in cli(settings, "union", "add", "--id", "u1", "--name", "联盟二").stdout  # re-add updates
    cli(settings, "hospital", "add", "--id", "h1", "--name", "一院", "--union", "u1")
    out = cli(settings, "partner", "add", "--app-id", "ris1", "--hospital", "h1").stdout
    token = out.split("token: ")[1].split()[0]
    assert len(token) == 32
    assert eventually(lambda: post(app_server, "ris1", token)["code"] == 0)
    cli(settings, "partner", "disable", "--app-id", "ris1")
    assert eventually(lambda: post(app_server, "ris1", token)["code"] == 20010)
    cli(settings, "partner", "enable", "--app-id", "ris1")
    assert eventually(lambda: post(app_server, "ris1", token)["code"] == 0)
    new = cli(settings, "partner", "rotate", "--app-id", "ris1").stdout.split("token: ")[1].split()[0]
    assert new != token
    assert eventually(lambda: post(app_server, "ris1", new)["code"] == 0)
    assert post(app_server, "ris1", token)["code"] == 0  # grace period
    cli(settings, "partner", "rotate", "--app-id", "ris1", "--grace-hours", "0")
    assert eventually(lambda: post(app_server, "ris1", new)["code"] == 90002)
    cli(settings, "partner", "remove", "--app-id", "ris1")
    assert eventually(lambda: post(app_server, "ris1", new)["code"] == 90001)


def test_list_and_remove_every_noun(runtime, settings):
    cli(settings, "union", "add", "--id", "u1", "--name", "U")
    cli(settings, "hospital", "add", "--id", "h1", "--name", "H", "--union", "u1")
    cli(settings, "partner", "add", "--app-id", "p1", "--token", "t" * 32, "--hospital", "h1", "--union", "u1",
        "--callback-url", "https://partner.example/cb", "--mini-app-id", "wx123", "--mini-path", "pages/r?id={reportId}")
    cli(settings, "pacs", "add", "--ae-title", "CT1", "--host", "127.0.0.1", "--port", "104", "--hospital", "h1")
    assert json.loads(cli(settings, "union", "list", "--json").stdout) == [{"id": "u1", "name": "U"}]
    assert json.loads(cli(settings, "hospital", "list", "--json").stdout) == [{"id": "h1", "name": "H", "unionId": "u1"}]
    (p,) = json.loads(cli(settings, "partner", "list", "--json").stdout)
    assert p["appId"] == "p1" and p["hospitals"] == ["h1"] and p["unions"] == ["u1"] and p["miniAppId"] == "wx123"
    assert "t" * 32 not in cli(settings, "partner", "list", "--json").stdout  # tokens are never listed
    assert json.loads(cli(settings, "pacs", "list", "--json").stdout)[0]["aeTitle"] == "CT1"
    for noun, key, value in (("pacs", "--ae-title", "CT1"), ("partner", "--app-id", "p1"), ("hospital", "--id", "h1"),
                             ("union", "--id", "u1")):
        cli(settings, noun, "remove", key, value)
        assert json.loads(cli(settings, noun, "list", "--json").stdout) == []
    bad = cli(settings, "union", "remove", "--id", "nope", check=False)
    assert bad.returncode != 0 and "no union" in bad.stderr


@pytest.mark.parametrize("token", ["short", "x" * 33])
def test_tokens_must_be_32_characters(runtime, settings, token):
    cli(settings, "hospital", "add", "--id", "h1", "--name", "H")
    r = cli(settings, "partner", "add", "--app-id", "p1", "--token", token, "--hospital", "h1", check=False)
    assert r.returncode != 0 and "32" in r.stderr


def test_admin_studies_json_shape(runtime, settings, ris):
    assert ris.post("/ris/study/add", dict(STUDY, studyDate="bad"))["code"] == 0
    (row,) = json.loads(cli(settings, "studies", "--json").stdout)
    assert set(row) == {"hospitalId", "studyId", "accessNumber", "studyUid", "patientId", "patientName", "status",
                        "deleted", "warnings", "received"}
    assert set(row["received"]) == {"series", "images", "sr", "pdf", "reports"}
    assert "studyDate: malformed (B)" in row["warnings"] and row["deleted"] is False


def test_serve_demo_first_start_prints_credentials(tmp_path):
    from tests.support.net import free_port

    port = free_port()
    env = dict(os.environ, YINGYUN_DATA_DIR=str(tmp_path / "d"), YINGYUN_HTTP_PORT=str(port),
               YINGYUN_DICOM_PORT=str(free_port()))
    proc = subprocess.Popen([YINGYUN, "serve", "--demo", "--host", "127.0.0.1", "--dicom-workers", "1"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        lines = []
        deadline = time.time() + 60
        while time.time() < deadline:
            line = proc.stdout.readline()
            lines.append(line)
            if "======================================================" in line and len(lines) > 5:
                break
        text = "".join(lines)
        token = text.split("partner token : ")[1].split()[0]
        assert eventually(lambda: _health(port), timeout=30)
        # the printed curl example works as printed
        script = text.split("(paste into a shell; the signature is valid for 300 s):")[1].split("curl -s")[0]
        curl = "curl -s" + text.split("curl -s")[1].split("curl -s")[0]
        out = subprocess.run(["bash", "-c", script + curl], capture_output=True, text=True, timeout=30).stdout
        assert json.loads(out) == {"code": 0, "message": "成功"}
        assert len(token) == 32
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _health(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.mark.parametrize("command", [["serve"], ["cloud"]])
def test_cloud_side_options_reach_the_settings(tmp_path, monkeypatch, command):
    """`serve` and `cloud` take the same cloud-side options, and each lands in the Settings the server runs with."""
    from typer.testing import CliRunner

    import yingyun.serve
    from yingyun.cli.main import app

    seen = []
    monkeypatch.setattr(yingyun.serve, "run", seen.append)
    monkeypatch.delenv("YINGYUN_MAX_EXPERTS", raising=False)
    args = [*command, "--data-dir", str(tmp_path), "--rate-limit", "42", "--max-experts", "2",
            "--callback-timeout", "3.5", "--callback-concurrency", "16", "--verify", "sms", "--sms-sender", "http",
            "--sms-url", "http://127.0.0.1:9/sms", "--cors-origin", "https://viewer.example"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    (st,) = seen
    assert (st.thirdparty_rate_per_minute, st.consultation_max_experts, st.callback_timeout_s,
            st.callback_per_partner) == (42, 2, 3.5, 16)
    assert (st.verify_method, st.sms_url, st.cors_origins) == ("sms", "http://127.0.0.1:9/sms", ["https://viewer.example"])
    bad = CliRunner().invoke(app, [*command, "--data-dir", str(tmp_path), "--max-experts", "0"])
    assert bad.exit_code != 0 and "--max-experts" in bad.output and len(seen) == 1


def test_admin_consultation_honours_the_exported_expert_limit(runtime, settings, monkeypatch):
    from yingyun.cli.hospital_api import _max_experts

    assert _max_experts(runtime) == 5
    monkeypatch.setenv("YINGYUN_MAX_EXPERTS", "2")
    assert _max_experts(runtime) == 2


def test_version_is_the_package_version():
    from importlib.metadata import version

    import yingyun

    out = subprocess.run([YINGYUN, "--version"], capture_output=True, text=True, check=True, timeout=60).stdout
    assert out == f"yingyun {yingyun.__version__}\n"
    assert yingyun.__version__ == version("yingyun")  # pyproject.toml and the package say the same


def test_every_command_and_option_has_a_help_line():
    import typer.main

    from yingyun.cli.main import app

    seen, bare = [], []

    def walk(command, path: str) -> None:
        seen.append(path)
        if not (command.help or command.short_help or "").strip():
            bare.append(path)
        for param in command.params:
            if not (getattr(param, "help", None) or "").strip():
                bare.append(f"{path} {'/'.join(param.opts)}")
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, f"{path} {name}")

    walk(typer.main.get_command(app), "yingyun")
    assert {"yingyun serve", "yingyun admin hospital remove", "yingyun admin sync replay",
            "yingyun admin consultation start"} <= set(seen)
    assert bare == []


def test_tables_line_up_with_chinese_names(runtime, settings):
    cli(settings, "union", "add", "--id", "u1", "--name", "华东医联体")
    cli(settings, "hospital", "add", "--id", "h1", "--name", "第一人民医院", "--union", "u1")
    cli(settings, "hospital", "add", "--id", "h2", "--name", "Second Hospital", "--union", "u1")
    cli(settings, "hospital", "add", "--id", "h10", "--name", "协和", "--union", "u1")
    assert cli(settings, "hospital", "list").stdout.splitlines() == [
        "id   name             unionId",
        "h1   第一人民医院     u1",
        "h10  协和             u1",
        "h2   Second Hospital  u1",
    ]
