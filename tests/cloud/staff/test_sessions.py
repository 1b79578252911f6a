"""The session API (issue 14 item 2): every code of signing in, the session's life, CSRF, the single device."""

from __future__ import annotations

import pytest

from yingyun.contract.codes import Code
from yingyun.cloud.staff.edge import CSRF_HEADER, SESSION_COOKIE

from .conftest import PASSWORD


def test_sign_in_answers_the_session_and_sets_a_strict_http_only_cookie(staff_world) -> None:
    c = staff_world.client()
    r = c.post("/api/v1/session", json={"username": "u1admin", "password": PASSWORD})
    assert r.status_code == 200
    body = r.json()
    assert body["code"] == 0
    assert body["data"]["user"] == {"username": "u1admin", "name": "联盟管理员",
                                    "roles": [{"role": "admin", "scope": "union:u1"}]}
    assert len(body["data"]["csrfToken"]) >= 32
    cookie = r.headers["set-cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=") and "HttpOnly" in cookie and "SameSite=strict" in cookie
    # Over plain HTTP to a server whose public URL is https://film.example.test: not marked Secure here.
    assert "Secure" not in cookie
    assert r.headers["cache-control"] == "no-store"
    again = c.get("/api/v1/session").json()
    assert again == {"code": 0, "message": "成功", "data": body["data"]}


@pytest.mark.parametrize("username,password", [("u1admin", "wrong password!"), ("nobody", PASSWORD)])
def test_a_wrong_username_or_password_reads_the_same(staff_world, username, password) -> None:
    body = staff_world.client().post("/api/v1/session", json={"username": username, "password": password}).json()
    assert body["code"] == Code.AUTH_FAILED
    assert body["message"] == "账号认证失败: wrong username or password"
    assert "data" not in body


def test_missing_and_malformed_fields(staff_world) -> None:
    c = staff_world.client()
    assert c.post("/api/v1/session", json={"username": "op"}).json()["code"] == Code.REQUIRED_EMPTY
    assert c.post("/api/v1/session", json={"username": "op", "password": 5}).json()["code"] == Code.INVALID_FORMAT
    assert c.post("/api/v1/session", content=b"{nope", headers={"content-type": "application/json"}
                  ).json()["code"] == Code.INVALID_FORMAT
    assert c.post("/api/v1/session", json=["op"]).json()["code"] == Code.INVALID_FORMAT


def test_no_session_is_20005(staff_world) -> None:
    c = staff_world.client()
    assert c.get("/api/v1/session").json()["code"] == Code.AUTH_EXPIRED
    c.cookies.set(SESSION_COOKIE, "made-up")
    assert c.get("/api/v1/session").json()["code"] == Code.AUTH_EXPIRED
