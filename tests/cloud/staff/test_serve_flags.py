"""The two server flags of the staff sessions, on `yingyun serve` as operators start it, and the admin commands'
users signing in over HTTP; the server log never carries a password."""

from __future__ import annotations

import subprocess

import httpx
import pyotp

from yingyun.contract.codes import Code

from ...support.servers import YINGYUN, ServeProcess

PW = "a long enough password"


def admin(data, *args: str, stdin: str = PW + "\n") -> subprocess.CompletedProcess:
    return subprocess.run([YINGYUN, "admin", *args, "--data-dir", str(data)], input=stdin, capture_output=True,
                          text=True, check=True, timeout=60)


def sign_in(url: str, **body: str) -> tuple[httpx.Client, int]:
    c = httpx.Client(base_url=url, timeout=30)
    return c, c.post("/api/v1/session", json=body).json()["code"]


def test_serve_with_allow_concurrent_sessions_and_require_totp_for_operators(tmp_path) -> None:
    data = tmp_path / "data"
    subprocess.run([YINGYUN, "db", "upgrade", "--data-dir", str(data)], check=True, capture_output=True, timeout=120)
    admin(data, "hospital", "add", "--id", "h1", "--name", "第一医院", stdin="")
    admin(data, "user", "add", "--username", "li", "--name", "李", "--role", "admin:hospital:h1", "--password-stdin")
    admin(data, "user", "add", "--username", "op", "--name", "运维", "--role", "operator", "--password-stdin")
    uri = admin(data, "user", "add", "--username", "op2", "--name", "运维二", "--role", "operator", "--totp",
                "--password-stdin").stdout.splitlines()[1].removeprefix("totp: ")
    with ServeProcess(data, "--allow-concurrent-sessions", "--require-totp-for-operators") as server:
        first, c1 = sign_in(server.url, username="li", password=PW)
        second, c2 = sign_in(server.url, username="li", password=PW)
        assert (c1, c2) == (0, 0)
        assert first.get("/api/v1/session").json()["code"] == 0  # both stay signed in
        third, c3 = sign_in(server.url, username="op", password=PW)
        assert c3 == Code.AUTH_FAILED  # an operator without a second factor
        fourth, c4 = sign_in(server.url, username="op2", password=PW, otp=pyotp.parse_uri(uri).now())
        assert c4 == 0
        for c in (first, second, third, fourth):
            c.close()
    assert PW not in server.log.read_text(errors="replace")


def test_serve_by_default_keeps_one_session_per_user(tmp_path) -> None:
    data = tmp_path / "data"
    subprocess.run([YINGYUN, "db", "upgrade", "--data-dir", str(data)], check=True, capture_output=True, timeout=120)
    admin(data, "user", "add", "--username", "op", "--name", "运维", "--role", "operator", "--password-stdin")
    with ServeProcess(data) as server:
        first, c1 = sign_in(server.url, username="op", password=PW)
        second, c2 = sign_in(server.url, username="op", password=PW)
        assert (c1, c2) == (0, 0)
        assert first.get("/api/v1/session").json()["code"] == Code.LOGGED_IN_ELSEWHERE
        first.close()
        second.close()
