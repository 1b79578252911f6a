"""SMS verification (`--verify sms`), the SMS senders, and `yingyun admin audit`."""

from __future__ import annotations

import json
import logging
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from yingyun.cli.main import app as cli
from yingyun.core.sms import HttpSender, LogSender, SmsError, mask_phone
from yingyun.storage import schema as s

from .filmdata import add_study
from .test_pages import client, csrf

SMS = {"verify_method": "sms", "sms_daily_limit": 3, "sms_resend_s": 0.0}


def send_code(c, base):
    page = c.get(base)
    return c.post(base + "/send-code", data={"csrf": csrf(page.text, "/send-code")})


def answer(c, base, code):
    page = c.get(base)
    return c.post(base + "/verify", data={"answer": code, "csrf": csrf(page.text)})


@pytest.mark.parametrize("film_options", [SMS])
def test_sms_code_flow(server, ris, runtime, tmp_path, sms):
    st = add_study(ris, runtime, tmp_path / "d", series_sizes=(1,))
    base = f"/h5/s/{st.token}"
    with client(server) as c:
        page = c.get(base)
        assert "6位验证码" in page.text and "138****8000" in page.text and "13812348000" not in page.text
        r = answer(c, base, "123456")
        assert r.status_code == 400 and "请先获取验证码" in r.text
        r = send_code(c, base)
        assert r.status_code == 200 and "验证码已发送" in r.text
        code = sms.last_code("13812348000")
        assert code and len(code) == 6 and code.isdigit()
        assert sms.sent[-1].ttl_s == 300
        wrong = f"{(int(code) + 1) % 10**6:06d}"
        r = answer(c, base, wrong)
        assert r.status_code == 400 and "验证码不正确" in r.text and 'data-code="20001"' in r.text
        r = answer(c, base, code)
        assert r.status_code == 303
        assert 'data-testid="conclusion"' in c.get(base).text
    # A used code does not work twice.
    with client(server) as c2:
        assert answer(c2, base, code).status_code == 400


@pytest.mark.parametrize("film_options", [SMS])
def test_sms_code_expires(server, ris, runtime, tmp_path, sms):
    st = add_study(ris, runtime, tmp_path / "d", series_sizes=(1,))
    base = f"/h5/s/{st.token}"
    with client(server) as c:
        send_code(c, base)
        code = sms.last_code()
        with runtime.db.write() as conn:
            conn.execute(s.phone_codes.update().values(expires_at=time.time() - 1))
        r = answer(c, base, code)
        assert r.status_code == 400 and "已过期" in r.text and 'data-code="20002"' in r.text
    with runtime.db.read() as conn:  # an expired code is not counted as a wrong guess
        assert conn.execute(select(s.link_guards.c.failures)).scalar() in (None, 0)


@pytest.mark.parametrize("film_options", [SMS])
def test_sms_daily_limit(server, ris, runtime, tmp_path, sms):
    st = add_study(ris, runtime, tmp_path / "d", series_sizes=(1,))
    base = f"/h5/s/{st.token}"
    with client(server) as c:
        for _ in range(3):
            assert send_code(c, base).status_code == 200
        r = send_code(c, base)
        assert r.status_code == 429 and "上限" in r.text and 'data-code="20003"' in r.text
    assert len(sms.sent) == 3


@pytest.mark.parametrize("film_options", [{"verify_method": "sms", "sms_resend_s": 60.0}])
def test_sms_resend_wait(server, ris, runtime, tmp_path, sms):
    st = add_study(ris, runtime, tmp_path / "d", series_sizes=(1,))
    base = f"/h5/s/{st.token}"
    with client(server) as c:
        assert send_code(c, base).status_code == 200
        r = send_code(c, base)
        assert r.status_code == 429 and "秒后再试" in r.text
    assert len(sms.sent) == 1


@pytest.mark.parametrize("film_options", [SMS])
def test_sms_falls_back_to_id_card_without_phone(server, ris, runtime, tmp_path, sms):
    st = add_study(ris, runtime, tmp_path / "d", phone=None, series_sizes=(1,))
    with client(server) as c:
        assert "身份证" in c.get(f"/h5/s/{st.token}").text
        assert answer(c, f"/h5/s/{st.token}", "002X").status_code == 303
    assert sms.sent == []


@pytest.mark.parametrize("film_options", [SMS])
def test_failed_send_records_nothing(server, ris, runtime, tmp_path, sms):
    st = add_study(ris, runtime, tmp_path / "d", series_sizes=(1,))
    sms.fail = True
    with client(server) as c:
        r = send_code(c, f"/h5/s/{st.token}")
        assert r.status_code == 502 and "短信发送失败" in r.text
    with runtime.db.read() as conn:
        assert conn.execute(select(s.phone_codes)).all() == []  # does not eat the daily allowance


def test_mask_phone():
    assert mask_phone("13812348000") == "138****8000"
    assert mask_phone("+86 138-1234-8000") == "138****8000"
    assert mask_phone("12") == "**"


def test_log_sender_logs_code_and_masked_phone_only(caplog):
    with caplog.at_level(logging.INFO, logger="yingyun.sms"):
        LogSender().send(phone="13812348000", code="654321", ttl_s=300)
    text = caplog.text
    assert "654321" in text and "138****8000" in text and "13812348000" not in text


class _Gateway(BaseHTTPRequestHandler):
    received: list = []
    status = 200

    def do_POST(self):  # noqa: N802
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append(json.loads(body))
        self.send_response(type(self).status)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_http_sender_posts_to_gateway():
    srv = HTTPServer(("127.0.0.1", 0), _Gateway)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        sender = HttpSender(f"http://127.0.0.1:{srv.server_port}/sms")
        sender.send(phone="138 1234 8000", code="123456", ttl_s=300)
        assert _Gateway.received[-1] == {"phone": "13812348000", "code": "123456", "purpose": "verify",
                                         "ttlSeconds": 300}
        _Gateway.status = 500
        with pytest.raises(SmsError):
            sender.send(phone="13812348000", code="123456", ttl_s=300)
        sender.close()
    finally:
        _Gateway.status = 200
        srv.shutdown()
        srv.server_close()


def test_admin_audit_cli(server, ris, runtime, tmp_path, film):
    st = add_study(ris, runtime, tmp_path / "d", series_sizes=(2,))
    other = add_study(ris, runtime, tmp_path / "d2", study_id="S2", series_sizes=(1,))
    with client(server) as c:
        page = c.get(f"/h5/s/{st.token}")
        c.post(f"/h5/s/{st.token}/verify", data={"answer": "8000", "csrf": csrf(page.text)})
        c.get(f"/h5/s/{st.token}")
        c.get(f"/h5/s/{other.token}")
    film.audit.flush()
    args = ["admin", "audit", "--json", "--data-dir", str(runtime.settings.data_dir),
            "--database-url", runtime.settings.database_url]
    runner = CliRunner()
    res = runner.invoke(cli, args + ["--study-uid", st.study_uid])
    assert res.exit_code == 0, res.output
    rows = json.loads(res.output)
    assert {r["studyUid"] for r in rows} == {st.study_uid}
    assert [r["access"] for r in rows] == ["view-verify", "verify-ok", "view-report"]
    assert all(r["client"] == "127.0.0.1" and r["linkKind"] == "qr" for r in rows)
    link = rows[0]["link"]
    res = runner.invoke(cli, args + ["--link", str(link)])
    assert {r["link"] for r in json.loads(res.output)} == {link}
    res = runner.invoke(cli, args + ["--since", "2999-01-01"])
    assert json.loads(res.output) == []
    res = runner.invoke(cli, args + ["--since", "yesterday"])
    assert res.exit_code != 0
    # Nothing identifying in the trail: no names, phone numbers or tokens.
    res = runner.invoke(cli, args)
    for secret in ("张三丰", "13812348000", st.token, other.token):
        assert secret not in res.output


@pytest.mark.parametrize("args, message", [
    (["--verify", "face"], "--verify is last4 or sms"),
    (["--sms-sender", "pigeon"], "--sms-sender is log or http"),
    (["--verify", "sms", "--sms-sender", "http"], "--sms-sender http needs --sms-url"),
])
def test_serve_refuses_bad_verification_options(tmp_path, args, message):
    res = CliRunner().invoke(cli, ["serve", "--data-dir", str(tmp_path), *args])
    assert res.exit_code == 1 and message in res.output
