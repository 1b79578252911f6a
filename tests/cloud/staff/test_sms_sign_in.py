"""Signing in by phone + SMS code (issue 14 item 2): 20011, 20001, 20002, 20003, 20004 and the session it opens."""

from __future__ import annotations

from yingyun.contract.codes import Code

from .conftest import READER_PHONE


def send(world, phone: str = READER_PHONE, client=None) -> dict:
    return (client or world.client()).post("/api/v1/session/sms-code", json={"phone": phone}).json()


def sign_in(world, code: str | None, phone: str = READER_PHONE, client=None) -> dict:
    return (client or world.client()).post("/api/v1/session", json={"phone": phone, "smsCode": code}).json()


def last_code(world) -> str:
    code = world.app.state.staff.codes.sms.last_code(READER_PHONE)
    assert code is not None
    return code


def test_a_code_sent_to_the_bound_phone_opens_a_session(staff_world) -> None:
    w = staff_world
    assert send(w) == {"code": 0, "message": "成功"}
    c = w.client()
    body = sign_in(w, last_code(w), client=c)
    assert body["code"] == 0 and body["data"]["user"]["username"] == "reader"
    assert c.get("/api/v1/session").json()["data"]["user"]["roles"] == [{"role": "clinician", "scope": "hospital:h2"}]
    # A code is good once.
    assert sign_in(w, last_code(w))["code"] == Code.WRONG_VERIFICATION_CODE


def test_a_phone_bound_to_nobody_is_20011(staff_world) -> None:
    assert send(staff_world, "13700137000")["code"] == Code.NO_BOUND_PHONE
    assert sign_in(staff_world, "123456", "13700137000")["code"] == Code.NO_BOUND_PHONE
    assert staff_world.app.state.staff.codes.sms.sent == []
    assert send(staff_world, "no digits")["code"] == Code.INVALID_FORMAT
    assert sign_in(staff_world, None)["code"] == Code.REQUIRED_EMPTY


def test_wrong_expired_and_locked_codes(staff_world) -> None:
    w = staff_world
    send(w)
    right = last_code(w)
    wrong = "000000" if right != "000000" else "111111"
    assert sign_in(w, wrong)["code"] == Code.WRONG_VERIFICATION_CODE
    w.clock.advance(6 * 60)
    assert sign_in(w, right)["code"] == Code.VERIFICATION_CODE_EXPIRED
    send(w)
    right = last_code(w)
    wrong = "000000" if right != "000000" else "111111"
    codes = [sign_in(w, wrong)["code"] for _ in range(4)]
    assert codes == [Code.WRONG_VERIFICATION_CODE] * 3 + [Code.ATTEMPT_LIMIT]  # 5 wrong in all (one before)
    assert sign_in(w, right)["code"] == Code.ATTEMPT_LIMIT  # locked, even with the right code
    assert send(w)["code"] == Code.ATTEMPT_LIMIT


def test_the_daily_sms_limit_is_20003(staff_world) -> None:
    w = staff_world
    limit = w.app.state.staff.codes.policy.daily_limit
    for _ in range(limit):
        assert send(w)["code"] == 0
        w.clock.advance(61)  # past the resend interval
    assert send(w)["code"] == Code.DAILY_CODE_LIMIT


def test_a_disabled_user_gets_no_code(staff_world) -> None:
    from yingyun.cloud.staff import accounts

    with staff_world.runtime.db.write() as conn:
        accounts.set_enabled(conn, username="reader", enabled=False)
    assert send(staff_world)["code"] == Code.USER_DISABLED
    assert staff_world.app.state.staff.codes.sms.sent == []
