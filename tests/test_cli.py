"""The operator's CLI: its commands in-process (the console script's Typer app, through CliRunner),
and the console script itself against a running server, as outside scripts use it."""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import orjson
import pytest
from alembic.script import ScriptDirectory
from typer.testing import CliRunner

from yingyun.cli.main import app
from yingyun.contract.signing import signed_headers

YINGYUN = str(Path(sys.executable).parent / "yingyun")
STUDY = {"patientId": "P1", "patientName": "张三", "patientSex": "M", "studyId": "S1", "accessNumber": "A1",
         "modality": "CT"}


@dataclass
class Ran:
    returncode: int
    stdout: str
    stderr: str


def run(args: list[str], env: dict[str, str | None] | None = None) -> Ran:
    """A command of the console script, in-process; an exception it lets out is a bug (never an answer)."""
    res = CliRunner().invoke(app, args, env=env)
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        raise res.exception
    return Ran(res.exit_code, res.stdout, res.stderr)


def cli(settings, *args: str, check: bool = True) -> Ran:
    r = run(["admin", *args, "--data-dir", str(settings.data_dir), "--database-url", settings.database_url])
    if check:
        assert r.returncode == 0, r.stderr
    return r


def console(settings, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """`yingyun admin ...` as a separate process: the installed console script."""
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
    assert "union u1 added" in console(settings, "union", "add", "--id", "u1", "--name", "联盟").stdout
    assert "updated" in console(settings, "union", "add", "--id", "u1", "--name", "联盟二").stdout  # re-add updates
    console(settings, "hospital", "add", "--id", "h1", "--name", "一院", "--union", "u1")
    out = console(settings, "partner", "add", "--app-id", "ris1", "--hospital", "h1").stdout
    token = out.split("token: ")[1].split()[0]
    assert len(token) == 32
    assert eventually(lambda: post(app_server, "ris1", token)["code"] == 0)
    console(settings, "partner", "disable", "--app-id", "ris1")
    assert eventually(lambda: post(app_server, "ris1", token)["code"] == 20010)
    console(settings, "partner", "enable", "--app-id", "ris1")
    assert eventually(lambda: post(app_server, "ris1", token)["code"] == 0)
    new = console(settings, "partner", "rotate", "--app-id", "ris1").stdout.split("token: ")[1].split()[0]
    assert new != token
    assert eventually(lambda: post(app_server, "ris1", new)["code"] == 0)
    assert post(app_server, "ris1", token)["code"] == 0  # grace period
    console(settings, "partner", "rotate", "--app-id", "ris1", "--grace-hours", "0")
    assert eventually(lambda: post(app_server, "ris1", new)["code"] == 90002)
    # ris1 sent a study: its history names it, so it is disabled rather than removed
    refused = console(settings, "partner", "remove", "--app-id", "ris1", check=False)
    assert refused.returncode == 1 and re.match(r"error: partner ris1 has \d+ records it sent: nothing", refused.stderr)
    assert "yingyun admin partner disable --app-id ris1" in refused.stderr
    # a partner nothing refers to is removed, and the running server forgets it
    other = console(settings, "partner", "add", "--app-id", "ris2").stdout.split("token: ")[1].split()[0]
    assert eventually(lambda: post(app_server, "ris2", other)["code"] == 20008)  # granted no hospital
    console(settings, "partner", "remove", "--app-id", "ris2")
    assert eventually(lambda: post(app_server, "ris2", other)["code"] == 90001)


def test_list_and_remove_every_noun(runtime, settings):
    cli(settings, "union", "add", "--id", "u1", "--name", "U")
    cli(settings, "hospital", "add", "--id", "h1", "--name", "H", "--union", "u1")
    cli(settings, "partner", "add", "--app-id", "p1", "--token", "t" * 32, "--hospital", "h1", "--union", "u1",
        "--callback-url", "https://partner.example/cb", "--mini-app-id", "wx123", "--mini-path",
        "pages/r?id={reportId}")
    cli(settings, "pacs", "add", "--ae-title", "CT1", "--host", "127.0.0.1", "--port", "104", "--hospital", "h1")
    assert json.loads(cli(settings, "union", "list", "--json").stdout) == [{"id": "u1", "name": "U"}]
    assert json.loads(cli(settings, "hospital", "list", "--json").stdout) == [
        {"id": "h1", "name": "H", "unionId": "u1", "enabled": True}]
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


@pytest.mark.parametrize("command", [["serve"], ["cloud"]])
def test_cloud_side_options_reach_the_settings(tmp_path, monkeypatch, command):
    """`serve` and `cloud` take the same cloud-side options, and each lands in the Settings the server runs with."""
    import yingyun.serve

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
    assert (st.verify_method, st.sms_url, st.cors_origins) == ("sms", "http://127.0.0.1:9/sms",
                                                               ["https://viewer.example"])
    bad = CliRunner().invoke(app, [*command, "--data-dir", str(tmp_path), "--max-experts", "0"])
    assert bad.exit_code != 0 and "--max-experts" in bad.output and len(seen) == 1


def test_admin_consultation_honours_the_exported_expert_limit(runtime, settings, monkeypatch):
    from yingyun.cli.admin.consultation import max_experts

    assert max_experts(runtime) == 5
    monkeypatch.setenv("YINGYUN_MAX_EXPERTS", "2")
    assert max_experts(runtime) == 2


def test_version_is_the_package_version():
    from importlib.metadata import version

    import yingyun

    out = subprocess.run([YINGYUN, "--version"], capture_output=True, text=True, check=True, timeout=60).stdout
    assert out == f"yingyun {yingyun.__version__}\n"
    assert yingyun.__version__ == version("yingyun")  # pyproject.toml and the package say the same


def test_every_command_and_option_has_a_help_line():
    import typer.main

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
        "id   name             unionId  enabled",
        "h1   第一人民医院     u1       True",
        "h10  协和             u1       True",
        "h2   Second Hospital  u1       True",
    ]


def _invoke(settings, *args: str, exit_code: int = 0):
    """An admin command's stdout, or the whole result when it is expected to fail."""
    r = cli(settings, *args, check=False)
    assert r.returncode == exit_code, r.stderr
    return r.stdout if exit_code == 0 else r


def _instant(text: str):
    from datetime import datetime

    return datetime.fromisoformat(text)


# 2026-12-01 23:59:59 in Shanghai, then moments around it (one a hair before a millisecond boundary, which
# rounding would print as the next millisecond), and one the next Shanghai day.
AUDIT_AT = [1796140799.0, 1796140799.1234, 1796140799.1239996, 1796140799.124, 1796140800.5, 1796144400.0]


def test_a_printed_audit_time_pasted_into_since_gives_exactly_the_rows_it_says(runtime, settings, monkeypatch):
    from sqlalchemy import insert

    from yingyun.storage import schema as s

    monkeypatch.delenv("YINGYUN_TIMEZONE", raising=False)
    with runtime.db.write() as conn:
        conn.execute(insert(s.access_audit), [{"at": at, "access": "view-report", "link_pk": 7, "link_kind": "qr",
                                                   "hospital_id": "h1", "study_id": "S1"} for at in AUDIT_AT])
    rows = json.loads(_invoke(settings, "audit", "--json"))  # the default zone: Asia/Shanghai
    assert [r["at"] for r in rows] == ["2026-12-01T23:59:59.000+08:00", "2026-12-01T23:59:59.123+08:00",
                                       "2026-12-01T23:59:59.123+08:00", "2026-12-01T23:59:59.124+08:00",
                                       "2026-12-02T00:00:00.500+08:00", "2026-12-02T01:00:00.000+08:00"]
    utc = json.loads(_invoke(settings, "audit", "--json", "--timezone", "UTC"))
    assert [_instant(r["at"]) for r in utc] == [_instant(r["at"]) for r in rows]
    assert utc[0]["at"] == "2026-12-01T15:59:59.000+00:00"
    for printed in {r["at"] for r in rows}:
        expected = [r["at"] for r in rows if _instant(r["at"]) >= _instant(printed)]
        assert [r["at"] for r in json.loads(_invoke(settings, "audit", "--json", "--since", printed))] == expected
        # the same instant pasted into a command shown in another zone selects the same rows
        assert [_instant(r["at"]) for r in json.loads(_invoke(settings, "audit", "--json", "--timezone", "UTC",
                                                               "--since", printed))] == [_instant(e) for e in expected]
    # a time without an offset is read in the configured zone (option or YINGYUN_TIMEZONE)
    assert len(json.loads(_invoke(settings, "audit", "--json", "--since", "2026-12-02 00:00:00"))) == 2
    assert len(json.loads(_invoke(settings, "audit", "--json", "--since", "2026-12-02 00:00:00",
                                  "--timezone", "UTC"))) == 0
    monkeypatch.setenv("YINGYUN_TIMEZONE", "UTC")
    assert json.loads(_invoke(settings, "audit", "--json"))[0]["at"] == "2026-12-01T15:59:59.000+00:00"
    # the table shows the same times as the JSON
    assert "2026-12-01T15:59:59.000+00:00" in _invoke(settings, "audit")


def test_a_printed_reconcile_time_pasted_into_since_gives_exactly_the_rows_it_says(runtime, settings, ris):
    from sqlalchemy import update

    from yingyun.storage import schema as s

    for n, received_at in enumerate((1796140798.6, 1796140799.2, 1796140799.9, 1796144400.0)):
        body = {"studyId": f"S{n}", "accessNumber": f"A{n}", "patientName": "张三", "studyUid": f"1.2.3.{n}",
                "studyDate": "2026-12-01 09:30:00", "reportCnt": 0,
                "pdfCnt": 0, "seriesCnt": 1, "imageCnt": 2}
        assert ris.post("/ris/reconcilelog", body)["code"] == 0
        with runtime.db.write() as conn:
            conn.execute(update(s.reconcile_logs).where(s.reconcile_logs.c.pk == n + 1).values(received_at=received_at))
    rows = json.loads(_invoke(settings, "reconcile", "--json", "--timezone", "Asia/Shanghai"))
    assert sorted(r["loggedAt"] for r in rows) == ["2026-12-01T23:59:58+08:00", "2026-12-01T23:59:59+08:00",
                                                   "2026-12-01T23:59:59+08:00", "2026-12-02T01:00:00+08:00"]
    for printed in {r["loggedAt"] for r in rows}:
        expected = sorted(r["studyId"] for r in rows if _instant(r["loggedAt"]) >= _instant(printed))
        got = json.loads(_invoke(settings, "reconcile", "--json", "--timezone", "Asia/Shanghai", "--since", printed))
        assert sorted(r["studyId"] for r in got) == expected
    utc = json.loads(_invoke(settings, "reconcile", "--json", "--timezone", "UTC"))
    assert {r["loggedAt"] for r in utc} == {"2026-12-01T15:59:58+00:00", "2026-12-01T15:59:59+00:00",
                                            "2026-12-01T17:00:00+00:00"}


def test_a_bad_time_or_zone_is_a_clear_error(runtime, settings):
    common = ["--data-dir", str(settings.data_dir), "--database-url", settings.database_url]
    res = CliRunner().invoke(app, ["admin", "audit", "--since", "last tuesday", *common])
    assert res.exit_code == 1 and "not a time: 'last tuesday'" in res.stderr
    res = CliRunner().invoke(app, ["admin", "reconcile", "--timezone", "Asia/Beijing", *common])
    words = " ".join(res.stderr.replace("│", " ").split())  # the message as Typer's error box wraps it
    assert res.exit_code == 2 and "'--timezone'" in words and "unknown time zone 'Asia/Beijing'" in words


def test_every_json_time_the_admin_commands_print_carries_its_offset(runtime, settings, monkeypatch):
    from yingyun.cloud.callbacks.events import KIND as CALLBACK
    from yingyun.gateway.sync import KIND as SYNC
    from yingyun.storage.queue import SqlJobQueue

    monkeypatch.delenv("YINGYUN_TIMEZONE", raising=False)
    cli(settings, "hospital", "add", "--id", "h1", "--name", "H")
    cli(settings, "token", "add", "--name", "viewer", "--hospital", "h1")
    cli(settings, "token", "add", "--name", "gone", "--all-hospitals")
    cli(settings, "token", "revoke", "--name", "gone")
    queue = SqlJobQueue(runtime.db)
    with runtime.db.write() as conn:
        queue.enqueue(conn, kind=CALLBACK, payload={"appId": "p1", "studyId": "S1", "status": 2}, now=1796140799.0)
        queue.enqueue(conn, kind=SYNC, payload={"kind": "study"}, now=1796140799.0)
    shown = {
        "token": [(r, ("createdAt", "revokedAt")) for r in json.loads(_invoke(settings, "token", "list", "--json"))],
        "callbacks": [(r,
                       ("createdAt", "nextAttemptAt")) for r in json.loads(_invoke(settings, "callbacks", "--json"))],
        "sync": [(r, ("createdAt",)) for r in json.loads(_invoke(settings, "sync", "list", "--json"))],
    }
    assert {k: len(v) for k, v in shown.items()} == {"token": 2, "callbacks": 1, "sync": 1}
    times = [r[f] for rows in shown.values() for r, fields in rows for f in fields if r[f] is not None]
    assert len(times) == 6 and all(_instant(t).utcoffset() is not None and t.endswith("+08:00") for t in times)
    assert shown["callbacks"][0][0]["createdAt"] == shown["sync"][0][0]["createdAt"] == "2026-12-01T23:59:59+08:00"


@pytest.mark.parametrize("command", [["serve"], ["cloud"],
                                     ["gateway", "--cloud-url", "http://127.0.0.1:9", "--gateway-id", "gw",
                                      "--gateway-key", "k" * 32, "--public-url", "https://film.example"]])
def test_the_servers_take_the_zone_from_the_option_or_the_environment(tmp_path, monkeypatch, command):
    import yingyun.serve

    seen = []
    monkeypatch.setattr(yingyun.serve, "run", seen.append)
    monkeypatch.delenv("YINGYUN_TIMEZONE", raising=False)
    base = [*command, "--data-dir", str(tmp_path)]
    assert CliRunner().invoke(app, base).exit_code == 0
    assert CliRunner().invoke(app, [*base, "--timezone", "Europe/Berlin"]).exit_code == 0
    monkeypatch.setenv("YINGYUN_TIMEZONE", "UTC")
    assert CliRunner().invoke(app, base).exit_code == 0
    assert [s.timezone for s in seen] == ["Asia/Shanghai", "Europe/Berlin", "UTC"]
    assert CliRunner().invoke(app, [*base, "--timezone", "Nowhere/Special"]).exit_code == 2 and len(seen) == 3


GATEWAY = ["gateway", "--cloud-url", "http://127.0.0.1:9", "--gateway-id", "gw", "--gateway-key", "k" * 32,
           "--public-url", "https://film.example"]


@pytest.mark.parametrize("command, fields", [
    (["serve"], {}),
    (["cloud"], {"role": "cloud", "dicom_enabled": False}),
    (GATEWAY, {"role": "gateway", "cloud_url": "http://127.0.0.1:9", "gateway_id": "gw", "gateway_key": "k" * 32,
               "public_url": "https://film.example"}),
], ids=["serve", "cloud", "gateway"])
def test_a_server_given_no_options_runs_with_the_settings_defaults(tmp_path, monkeypatch, command, fields):
    """The command line's defaults are the Settings' (`--dicom-workers` was 2 there and 1 in Settings)."""
    import yingyun.serve
    from yingyun.settings import Settings
    from yingyun.storage.db import default_sqlite_url

    seen = []
    monkeypatch.setattr(yingyun.serve, "run", seen.append)
    for name in [k for k in os.environ if k.startswith("YINGYUN_")]:
        monkeypatch.delenv(name)
    assert run([*command, "--data-dir", str(tmp_path)]).returncode == 0
    assert seen == [Settings(data_dir=tmp_path, database_url=default_sqlite_url(tmp_path), **fields)]


@pytest.mark.parametrize("command", [["serve"], ["cloud"], GATEWAY], ids=lambda c: c[0])
@pytest.mark.parametrize("args, message", [
    (["--tls-cert", "cert.pem"], "error: --tls-cert and --tls-key go together\n"),
    (["--tls-key", "key.pem"], "error: --tls-cert and --tls-key go together\n"),
    (["--trusted-proxy", "10.0.0.0/8", "--trusted-proxy", "the-lb"],
     "error: --trusted-proxy takes a CIDR such as 10.0.0.0/8, not 'the-lb'\n"),
], ids=["certificate-alone", "key-alone", "proxy-not-a-cidr"])
def test_every_server_checks_its_options_alike(tmp_path, monkeypatch, command, args, message):
    """One check for the three commands (`gateway` took a certificate without its key; a proxy that is no
    CIDR was a traceback)."""
    import yingyun.serve

    seen = []
    monkeypatch.setattr(yingyun.serve, "run", seen.append)
    r = run([*command, "--data-dir", str(tmp_path), *args])
    assert (r.returncode, r.stderr, seen) == (1, message, [])


def test_admin_takes_the_data_dir_before_or_after_the_verb(runtime, settings, tmp_path):
    runtime.tenancy.add_hospital(hospital_id="h1", name="H")
    here = ["--data-dir", str(settings.data_dir), "--database-url", settings.database_url]
    elsewhere = ["--data-dir", str(tmp_path / "nowhere"), "--database-url", "sqlite:///" + str(tmp_path / "no.db")]
    listed = '[\n  {\n    "id": "h1",\n    "name": "H",\n    "unionId": null,\n    "enabled": true\n  }\n]\n'
    assert run(["admin", *here, "hospital", "list", "--json"]).stdout == listed  # once, on the group
    assert run(["admin", "hospital", "list", "--json", *here]).stdout == listed  # after the verb, as scripts have it
    assert run(["admin", *elsewhere, "hospital", "list", "--json", *here]).stdout == listed  # the verb's wins
    refused = run(["admin", *here, "hospital", "list", *elsewhere])
    assert refused.returncode == 1 and f"no data dir at {tmp_path / 'nowhere'}" in refused.stderr
    # from the environment, the group's given value is not overridden
    env = {"YINGYUN_DATA_DIR": str(tmp_path / "nowhere"), "YINGYUN_DATABASE_URL": "sqlite:///" + str(tmp_path / "x")}
    assert run(["admin", *here, "hospital", "list", "--json"], env=env).stdout == listed
    assert run(["admin", "hospital", "list", "--json"], env={"YINGYUN_DATA_DIR": str(settings.data_dir),
                                                             "YINGYUN_DATABASE_URL": settings.database_url}
               ).stdout == listed
    # a noun that runs by itself takes them too, before and after its own subcommands
    assert json.loads(run(["admin", "sync", "--json", *here]).stdout)["parked"] == 0
    assert run(["admin", *here, "sync", "list", "--json"]).stdout == "[]\n"
    assert run(["admin", "sync", *here, "list", "--json"]).stdout == "[]\n"


def _c_store(port: int, path) -> int:
    """One C-STORE as PACS1 with pynetdicom; the status the receiver answered."""
    from pydicom import dcmread
    from pynetdicom import AE

    ds = dcmread(path)
    ae = AE(ae_title="PACS1")
    ae.add_requested_context(ds.SOPClassUID, ds.file_meta.TransferSyntaxUID)
    assoc = ae.associate("127.0.0.1", port, ae_title="YINGYUN")
    assert assoc.is_established
    try:
        return int(assoc.send_c_store(ds).Status)
    finally:
        assoc.release()


def test_a_hospital_with_data_is_disabled_not_removed(runtime, settings, app_server, ris, tmp_path):
    from yingyun.gateway.receiver import build_receiver

    from .support.dicom_data import StudySpec, make, uid

    _invoke(settings, "pacs", "add", "--ae-title", "PACS1", "--host", "127.0.0.1", "--port", "104", "--hospital", "h1")
    server = build_receiver(runtime, port=0)
    server.start()
    try:
        spec = StudySpec(accession="A1")
        assert ris.post("/ris/study/add", dict(STUDY, studyUid=spec.study_uid, phoneNum="13812348000"))["code"] == 0
        assert eventually(lambda: _c_store(server.port, make(tmp_path / "a.dcm", spec, series_uid=uid())) == 0)
        qr_url = ris.post("/ris/getStudyQR", {"studyId": "S1"})["data"]["qrUrl"]
        page = qr_url.replace(settings.public_url, app_server.url)
        assert httpx.get(page).status_code == 200

        # remove refuses, says what holds the hospital and what to do, and changes nothing
        before = {noun: _invoke(settings, noun, "list", "--json") for noun in ("union", "hospital", "partner", "pacs")}
        refused = console(settings, "hospital", "remove", "--id", "h1", check=False)
        assert refused.returncode == 1
        assert refused.stderr == (
            "error: hospital h1 has 1 study, 1 DICOM instance, 1 partner grant (ris-h1) and 1 PACS (PACS1): nothing "
            "was changed; disable it instead (`yingyun admin hospital disable --id h1`)\n")
        refused = _invoke(settings, "union", "remove", "--id", "u1", exit_code=1)
        assert refused.stderr.startswith("error: union u1 has 1 hospital (h1): nothing")
        refused = _invoke(settings, "partner", "remove", "--app-id", "ris-h1", exit_code=1)
        assert refused.stderr.startswith("error: partner ris-h1 has 1 record it sent")
        assert {noun: _invoke(settings, noun, "list", "--json") for noun in before} == before
        assert ris.post("/ris/study/add", dict(STUDY, studyId="S2"))["code"] == 0

        # disabled: the partner gets 20010 naming the hospital, C-STORE is refused, the patient page says so
        assert console(settings, "hospital", "disable", "--id", "h1").stdout == "hospital h1 disabled\n"
        assert json.loads(_invoke(settings, "hospital", "list", "--json"))[0]["enabled"] is False
        # (polled with a call that writes nothing: the running server sees the change within its cache's 2 s)
        assert eventually(lambda: ris.post("/ris/getStudyQR", {"studyId": "S1"})["code"] == 20010)
        answer = ris.post("/ris/study/add", dict(STUDY, studyId="S3"))
        assert answer == {"code": 20010, "message": "用户已禁用: hospital h1 is disabled: it takes no data"}
        assert _c_store(server.port, make(tmp_path / "b.dcm", spec, series_uid=uid())) == 0x0124
        suspended = httpx.get(page)
        assert suspended.status_code == 403 and "暂停服务" in suspended.text
        assert 'data-state="suspended"' in suspended.text
        with runtime.db.read() as conn:
            from sqlalchemy import func, select

            from yingyun.storage import schema as s

            held = [conn.execute(select(func.count()).select_from(t).where(t.c.hospital_id == "h1")).scalar_one()
                    for t in (s.studies, s.instances)]
        assert held == [2, 1]  # nothing deleted, nothing more taken

        # enabled again: everything as before
        _invoke(settings, "hospital", "enable", "--id", "h1")
        assert eventually(lambda: ris.post("/ris/study/add", dict(STUDY, studyId="S3"))["code"] == 0)
        assert _c_store(server.port, make(tmp_path / "c.dcm", spec, series_uid=uid())) == 0
        assert httpx.get(page).status_code == 200
    finally:
        server.shutdown()


def test_remove_goes_through_once_nothing_holds_it(runtime, settings):
    _invoke(settings, "union", "add", "--id", "u1", "--name", "U")
    _invoke(settings, "hospital", "add", "--id", "h2", "--name", "二院", "--union", "u1")
    _invoke(settings, "pacs", "add", "--ae-title", "CT9", "--host", "127.0.0.1", "--port", "104", "--hospital", "h2")
    _invoke(settings, "doctor", "add", "--id", "d1", "--name", "王医生", "--hospital", "h2")
    _invoke(settings, "gateway", "add", "--id", "gw2", "--hospital", "h2")
    _invoke(settings, "token", "add", "--name", "viewer", "--hospital", "h2")
    _invoke(settings, "partner", "add", "--app-id", "ih", "--token", "i" * 32, "--union", "u1")
    refused = cli(settings, "hospital", "remove", "--id", "h2", check=False)
    assert refused.returncode == 1 and refused.stderr.startswith(
        "error: hospital h2 has 1 PACS (CT9), 1 gateway (gw2), 1 doctor (d1) and 1 DICOMweb token (viewer): ")
    refused = _invoke(settings, "union", "remove", "--id", "u1", exit_code=1)
    assert refused.stderr.startswith("error: union u1 has 1 hospital (h2) and 1 partner grant (ih): ")
    for args in (["pacs", "remove", "--ae-title", "CT9"], ["doctor", "remove", "--id", "d1"],
                 ["gateway", "remove", "--id", "gw2"], ["token", "revoke", "--name", "viewer"],
                 ["hospital", "remove", "--id", "h2"], ["partner", "remove", "--app-id", "ih"],
                 ["union", "remove", "--id", "u1"]):
        _invoke(settings, *args)
    assert json.loads(_invoke(settings, "hospital", "list", "--json")) == []
    assert json.loads(_invoke(settings, "union", "list", "--json")) == []


def test_import_refuses_a_disabled_hospital(runtime, settings, tmp_path):
    runtime.tenancy.add_hospital(hospital_id="h1", name="H")
    runtime.tenancy.set_hospital_enabled(hospital_id="h1", enabled=False)
    res = CliRunner().invoke(app, ["import", str(tmp_path), "--data-dir", str(settings.data_dir),
                                   "--database-url", settings.database_url])
    assert res.exit_code == 1 and "hospital h1 is disabled" in res.stderr


# -- admin commands create nothing and migrate nothing (issue 12 item 21) -------------------


def yingyun(*args: str, cwd: Path | None = None, **env: str) -> Ran:
    """A command with no YINGYUN_* variable but those given, run from `cwd`."""
    clean: dict[str, str | None] = {k: None for k in os.environ if k.startswith("YINGYUN_")}
    with contextlib.chdir(cwd or Path.cwd()):
        return run(list(args), env={**clean, **env})


def downgrade(database_url: str, revision: str) -> None:
    """The schema as an older version left it (its migrations run backwards)."""
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import create_engine
    from sqlalchemy.pool import NullPool

    from yingyun.storage.db import MIGRATIONS_DIR

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    engine = create_engine(database_url, poolclass=NullPool)
    try:
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, revision)
    finally:
        engine.dispose()


def migrations() -> ScriptDirectory:
    from alembic.config import Config

    from yingyun.storage.db import MIGRATIONS_DIR

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return ScriptDirectory.from_config(cfg)


def head_revision() -> str:
    """This program's newest migration, read from the migrations themselves."""
    return migrations().get_current_head()


def previous_revision() -> str:
    """The one before it: the schema an older version left."""
    return migrations().get_revision(head_revision()).down_revision


def revision_of(database_url: str) -> str | None:
    from sqlalchemy import create_engine, text

    engine = create_engine(database_url)
    try:
        with engine.connect() as c:
            return c.execute(text("SELECT version_num FROM alembic_version")).scalar()
    finally:
        engine.dispose()


ADMIN_COMMANDS = [
    ["admin", "hospital", "list"],
    ["admin", "partner", "add", "--app-id", "p1", "--hospital", "h1"],
    ["admin", "sync", "--json"],
    ["admin", "callbacks", "--json"],
    ["import", "--hospital", "h1", "."],  # a path that exists: the data dir is what is refused
]


@pytest.mark.parametrize("command", ADMIN_COMMANDS, ids=lambda c: " ".join(c[:3]))
def test_admin_commands_never_make_a_data_dir(tmp_path, command):
    mistyped = tmp_path / "yingyun-dta"
    r = yingyun(*command, "--data-dir", str(mistyped))
    assert r.returncode != 0 and f"no data dir at {mistyped}" in r.stderr, r.stderr  # (a traceback raises in run)
    assert not mistyped.exists()
    # from another folder, with nothing named: the default ./yingyun-data is not made either
    r = yingyun(*command, cwd=tmp_path)
    assert r.returncode != 0 and "no data dir at" in r.stderr
    assert list(tmp_path.iterdir()) == []


def test_admin_commands_never_make_keys(runtime, settings, tmp_path):
    key_file = settings.data_dir / "yingyun-keys.json"
    key_file.rename(tmp_path / "kept.json")
    r = yingyun("admin", "partner", "add", "--app-id", "p1", "--hospital", "h1", "--data-dir", str(settings.data_dir),
                "--database-url", settings.database_url)
    assert r.returncode != 0 and "no key file" in r.stderr and "YINGYUN_DATA_KEY" in r.stderr
    assert not key_file.exists()
    # on a database elsewhere too (a shell without the keys, in a folder with no key file)
    r = yingyun("admin", "hospital", "list", "--database-url", settings.database_url, cwd=tmp_path)
    assert r.returncode != 0 and "YINGYUN_DATA_KEY" in r.stderr
    assert not (tmp_path / "yingyun-data").exists()


def test_keys_that_do_not_match_the_database_are_refused(runtime, settings):
    runtime.tenancy.add_hospital(hospital_id="h1", name="H")
    other = {"YINGYUN_DATA_KEY": os.urandom(32).hex(), "YINGYUN_HASH_KEY": os.urandom(32).hex()}
    r = yingyun("admin", "partner", "add", "--app-id", "p1", "--hospital", "h1", "--data-dir", str(settings.data_dir),
                "--database-url", settings.database_url, **other)
    assert r.returncode != 0
    assert "the keys here (YINGYUN_DATA_KEY/YINGYUN_HASH_KEY) do not match the database" in r.stderr
    assert runtime.tenancy.list_partners() == []  # nothing written under the wrong keys
    # The same pair the server has, given in the environment, is accepted.
    from yingyun.core.crypto import load_keys

    keys = load_keys(settings.data_dir)
    same = {"YINGYUN_DATA_KEY": keys.data_key.hex(), "YINGYUN_HASH_KEY": keys.hash_key.hex()}
    r = yingyun("admin", "partner", "add", "--app-id", "p1", "--hospital", "h1", "--database-url",
                settings.database_url, "--data-dir", str(settings.data_dir), **same)
    assert r.returncode == 0, r.stderr


def test_admin_commands_never_migrate(runtime, settings):
    head, older = head_revision(), previous_revision()
    downgrade(settings.database_url, older)
    r = cli(settings, "hospital", "list", check=False)
    assert r.returncode != 0
    assert f"schema at revision {older}, this program expects {head}" in r.stderr and "yingyun db upgrade" in r.stderr
    assert revision_of(settings.database_url) == older
    # a database newer than this program: refused, never touched
    from sqlalchemy import create_engine, text

    engine = create_engine(settings.database_url)
    with engine.begin() as c:
        c.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    engine.dispose()
    for command in (["admin", "hospital", "list"], ["db", "upgrade"]):
        r = yingyun(*command, "--data-dir", str(settings.data_dir), "--database-url", settings.database_url)
        assert r.returncode != 0 and f"schema at revision 9999, this program expects {head}" in r.stderr, r.stderr
        assert "newer than this program" in r.stderr
    assert revision_of(settings.database_url) == "9999"


def test_db_upgrade_current_check(tmp_path):
    from yingyun.storage.db import default_sqlite_url

    head, data = head_revision(), tmp_path / "data"
    opts = ["--data-dir", str(data)]
    r = yingyun("db", "check", *opts)
    assert r.returncode != 0 and "no data dir at" in r.stderr and not data.exists()
    r = yingyun("db", "upgrade", *opts)
    assert r.returncode == 0, r.stderr
    assert f"schema at revision {head} (was (none))" in r.stdout and "made a new key file" in r.stdout
    assert (data / "yingyun-keys.json").exists()
    assert yingyun("db", "current", *opts).stdout.strip() == head
    ok = yingyun("db", "check", *opts)
    assert ok.returncode == 0 and head in ok.stdout
    assert yingyun("admin", "hospital", "add", "--id", "h1", "--name", "H", *opts).returncode == 0

    older = previous_revision()
    downgrade(default_sqlite_url(data), older)
    assert yingyun("db", "current", *opts).stdout.strip() == older
    behind = yingyun("db", "check", *opts)
    assert behind.returncode == 1 and f"schema at revision {older}, this program expects {head}" in behind.stderr
    again = yingyun("db", "upgrade", *opts)
    assert again.returncode == 0 and f"schema at revision {head} (was {older})" in again.stdout
    assert "made" not in again.stdout  # the data dir and keys were there
    assert yingyun("db", "check", *opts).returncode == 0
    assert json.loads(yingyun("admin", "hospital", "list", "--json", *opts).stdout) == [
        {"id": "h1", "name": "H", "unionId": None, "enabled": True}]


def test_a_command_closes_what_it_opened(runtime, settings, tmp_path):
    """`yingyun import` ends with its instance store closed: every file flushed, the blob journal empty."""
    from sqlalchemy import create_engine, func, select

    from yingyun.storage import schema as s

    from .support.dicom_data import StudySpec, make_study

    runtime.tenancy.add_hospital(hospital_id="h1", name="H")
    folder = tmp_path / "cd"
    make_study(folder, StudySpec(), series=1, per_series=30)  # small instances: journaled, flushed after
    r = yingyun("import", "--json", "--hospital", "h1", str(folder), "--data-dir", str(settings.data_dir),
                "--database-url", settings.database_url)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["stored"] == 30
    engine = create_engine(settings.database_url)
    try:
        with engine.connect() as c:
            assert c.execute(select(func.count()).select_from(s.blob_journal)).scalar() == 0
    finally:
        engine.dispose()
