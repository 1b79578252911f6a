"""The session API (issue 14 item 2): every code of signing in, the session's life, CSRF, the single device."""

from __future__ import annotations

import pyotp
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


def code(client, method: str = "GET", path: str = "/api/v1/session") -> int:
    return client.request(method, path).json()["code"]


def sign_in_code(world, username: str, password: str = PASSWORD, client=None, **extra) -> int:
    c = client or world.client()
    return c.post("/api/v1/session", json={"username": username, "password": password, **extra}).json()["code"]


def test_five_failures_in_15_minutes_lock_the_account_for_every_client(staff_world) -> None:
    w = staff_world
    assert [sign_in_code(w, "h1admin", "wrong password!") for _ in range(4)] == [Code.AUTH_FAILED] * 4
    fifth = w.client().post("/api/v1/session", json={"username": "h1admin", "password": "wrong again!!"}).json()
    assert fifth["code"] == Code.ATTEMPT_LIMIT and "locked for 15 more minute(s)" in fifth["message"]
    # Locked for everyone, even with the right password from another client; other users are not.
    assert sign_in_code(w, "h1admin") == Code.ATTEMPT_LIMIT
    assert sign_in_code(w, "u1admin") == 0
    w.clock.advance(14 * 60)
    assert sign_in_code(w, "h1admin") == Code.ATTEMPT_LIMIT
    w.clock.advance(61)
    assert sign_in_code(w, "h1admin") == 0


def test_failures_further_apart_than_15_minutes_do_not_lock(staff_world) -> None:
    w = staff_world
    for _ in range(3):
        assert sign_in_code(w, "h1admin", "wrong password!") == Code.AUTH_FAILED
    w.clock.advance(15 * 60 + 1)
    for _ in range(4):
        assert sign_in_code(w, "h1admin", "wrong password!") == Code.AUTH_FAILED
    assert sign_in_code(w, "h1admin") == 0
    # A success starts the count again.
    for _ in range(4):
        assert sign_in_code(w, "h1admin", "wrong password!") == Code.AUTH_FAILED
    assert sign_in_code(w, "h1admin") == 0


def test_a_disabled_user_cannot_sign_in_and_its_sessions_end(staff_world) -> None:
    from yingyun.cloud.staff import accounts

    w = staff_world
    c, _ = w.sign_in("reader")
    with w.runtime.db.write() as conn:
        accounts.set_enabled(conn, username="reader", enabled=False)
    assert code(c) == Code.USER_DISABLED
    assert sign_in_code(w, "reader") == Code.USER_DISABLED
    assert sign_in_code(w, "reader", "not the password") == Code.AUTH_FAILED  # tells nothing without the password
    with w.runtime.db.write() as conn:
        accounts.set_enabled(conn, username="reader", enabled=True)
    assert sign_in_code(w, "reader") == 0


def test_a_session_idle_30_minutes_or_older_than_12_hours_is_20005(staff_world) -> None:
    w = staff_world
    c, _ = w.sign_in("op")
    w.clock.advance(29 * 60)
    assert code(c) == 0
    w.clock.advance(29 * 60)  # idle is counted from the last request
    assert code(c) == 0
    w.clock.advance(31 * 60)
    body = c.get("/api/v1/session").json()
    assert body["code"] == Code.AUTH_EXPIRED and "idle" in body["message"]

    c, _ = w.sign_in("op")
    for _ in range(35):  # busy all day: 11 hours 40 minutes in steps of 20 minutes
        w.clock.advance(20 * 60)
        assert code(c) == 0
    w.clock.advance(21 * 60)
    body = c.get("/api/v1/session").json()
    assert body["code"] == Code.AUTH_EXPIRED and "older than 12 hours" in body["message"]


def test_signing_in_elsewhere_ends_the_older_session_with_20007(staff_world) -> None:
    w = staff_world
    first, _ = w.sign_in("u1admin")
    second, _ = w.sign_in("u1admin")
    assert code(second) == 0
    body = first.get("/api/v1/session").json()
    assert body["code"] == Code.LOGGED_IN_ELSEWHERE
    assert code(w.sign_in("h1admin")[0]) == 0 and code(second) == 0  # other users' sessions are their own


def test_allow_concurrent_sessions_keeps_both(staff_world, runtime) -> None:
    from yingyun.serve import staff_context

    runtime.settings.allow_concurrent_sessions = True
    staff_world.app.state.staff.policy = staff_context(runtime, codes=staff_world.app.state.staff.codes).policy
    first, _ = staff_world.sign_in("u1admin")
    second, _ = staff_world.sign_in("u1admin")
    assert code(first) == 0 and code(second) == 0


def test_state_changing_requests_need_the_sessions_csrf_token(staff_world) -> None:
    w = staff_world
    c, body = w.sign_in("op")
    token = c.headers.pop(CSRF_HEADER)
    refused = c.delete("/api/v1/session").json()
    assert refused["code"] == Code.NO_PERMISSION and "X-CSRF-Token" in refused["message"]
    assert c.delete("/api/v1/session", headers={CSRF_HEADER: "0" * len(token)}).json()["code"] == Code.NO_PERMISSION
    other, _ = w.sign_in("u1admin")  # another session's token is not this one's
    assert c.delete("/api/v1/session", headers={CSRF_HEADER: other.headers[CSRF_HEADER]}).json()["code"] \
        == Code.NO_PERMISSION
    assert code(c) == 0  # still signed in: nothing was done
    r = c.delete("/api/v1/session", headers={CSRF_HEADER: token})
    assert r.json() == {"code": 0, "message": "成功"}
    assert f'{SESSION_COOKIE}=""' in r.headers["set-cookie"] and "Max-Age=0" in r.headers["set-cookie"]
    c.cookies.clear()
    assert code(c) == Code.AUTH_EXPIRED


def test_a_signed_out_session_cookie_is_dead(staff_world) -> None:
    w = staff_world
    c, _ = w.sign_in("op")
    cookie = c.cookies[SESSION_COOKIE]
    assert c.delete("/api/v1/session").json()["code"] == 0
    replay = w.client()
    replay.cookies.set(SESSION_COOKIE, cookie)
    assert code(replay) == Code.AUTH_EXPIRED


def test_the_cookie_is_secure_when_the_public_url_is_https(staff_world) -> None:
    w = staff_world
    w.app.state.staff.public_url = w.url.replace("http://", "https://")
    r = w.client().post("/api/v1/session", json={"username": "op", "password": PASSWORD})
    assert "Secure" in r.headers["set-cookie"]


def _totp_user(world, username: str, roles: list[str]) -> pyotp.TOTP:
    from yingyun.cloud.staff import accounts

    with world.runtime.db.write() as conn:
        uri = accounts.add_user(conn, vault=world.runtime.vault, username=username, name="双因素",
                                roles=[accounts.parse_role(r) for r in roles], password=PASSWORD, totp=True)
    assert uri is not None
    return pyotp.parse_uri(uri)


def test_a_totp_user_signs_in_with_the_one_time_password(staff_world) -> None:
    w = staff_world
    totp = _totp_user(w, "op2", ["operator"])
    missing = w.client().post("/api/v1/session", json={"username": "op2", "password": PASSWORD}).json()
    assert missing["code"] == Code.AUTH_FAILED and "otp" in missing["message"]
    assert sign_in_code(w, "op2", otp="000000" if totp.now() != "000000" else "111111") == Code.AUTH_FAILED
    assert sign_in_code(w, "op2", otp=totp.now()) == 0
    assert sign_in_code(w, "op2", "wrong password!", otp=totp.now()) == Code.AUTH_FAILED


def test_require_totp_for_operators(staff_world, runtime) -> None:
    from yingyun.serve import staff_context

    w = staff_world
    runtime.settings.require_totp_for_operators = True
    w.app.state.staff.policy = staff_context(runtime, codes=w.app.state.staff.codes).policy
    refused = w.client().post("/api/v1/session", json={"username": "op", "password": PASSWORD}).json()
    assert refused["code"] == Code.AUTH_FAILED and "two factors" in refused["message"]
    assert sign_in_code(w, "u1admin") == 0  # an admin is not an operator
    totp = _totp_user(w, "op2", ["operator"])
    assert sign_in_code(w, "op2", otp=totp.now()) == 0


def test_sign_ins_are_audited_without_secrets(staff_world) -> None:
    from sqlalchemy import select

    from yingyun.storage import schema as s

    w = staff_world
    sign_in_code(w, "op", "wrong password!")
    sign_in_code(w, "nobody-at-all", "wrong password!")
    c, _ = w.sign_in("op")
    c.delete("/api/v1/session")
    with w.runtime.db.read() as conn:
        rows = conn.execute(select(s.staff_audit).order_by(s.staff_audit.c.pk)).all()
    assert [(r.username, r.action) for r in rows] == [("op", "session.refused"), ("op", "session.open"),
                                                      ("op", "session.close")]
    assert all(PASSWORD not in (r.detail or "") and "wrong" not in (r.detail or "") for r in rows)


def test_the_api_family_answers_unknown_paths_and_methods_in_the_envelope(staff_world) -> None:
    c = staff_world.client()
    r = c.get("/api/v1/no-such-thing")
    assert r.status_code == 200 and r.json()["code"] == Code.INVALID_FORMAT
    assert "no such endpoint" in r.json()["message"]
    r = c.put("/api/v1/session")
    assert r.status_code == 200 and r.json()["code"] == Code.INVALID_FORMAT


def test_the_api_family_maps_refusals_once() -> None:
    from yingyun.core import errors
    from yingyun.web.vendor import API, vendor_code

    assert vendor_code(errors.Invalid("x"), API) == Code.INVALID_FORMAT
    assert vendor_code(errors.NotFound("x", subject="user"), API) == Code.USER_NOT_FOUND
    assert vendor_code(errors.Conflict("x", subject="user"), API) == Code.USER_EXISTS
    assert vendor_code(errors.NotFound("x", subject="department"), API) == Code.DEPARTMENT_NOT_FOUND
    assert vendor_code(errors.NotFound("x", subject="device"), API) == Code.DEVICE_NOT_FOUND
    assert vendor_code(errors.NotFound("x", subject="device type"), API) == Code.DEVICE_TYPE_NOT_FOUND
    assert vendor_code(errors.NotFound("x", subject="study"), API) == Code.STUDY_NOT_FOUND


def test_a_hash_of_older_argon2_parameters_is_renewed_at_sign_in(staff_world) -> None:
    from argon2 import PasswordHasher
    from sqlalchemy import select, update

    from yingyun.cloud.staff import accounts
    from yingyun.storage import schema as s

    w = staff_world
    old = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash(PASSWORD)
    with w.runtime.db.write() as conn:
        conn.execute(update(s.users).where(s.users.c.username == "reader").values(password_hash=old))
    assert sign_in_code(w, "reader") == 0
    with w.runtime.db.read() as conn:
        renewed = conn.execute(select(s.users.c.password_hash).where(s.users.c.username == "reader")).scalar_one()
    assert renewed != old and accounts.rehashed(renewed, PASSWORD) is None
    assert accounts.verify_password(renewed, PASSWORD)
