"""yingyun.phonecodes: one-time SMS codes per phone and purpose, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import select

from yingyun import phonecodes
from yingyun.contract.codes import Code
from yingyun.core.errors import Invalid, Unavailable
from yingyun.core.sms import FakeSender
from yingyun.phonecodes import CodeExpired, CodePolicy, DailyLimit, PhoneCodes, PhoneLocked, TooSoon, WrongCode
from yingyun.storage import schema as s

PHONE = "13812348000"


class Clock:
    def __init__(self, t: float = 1_800_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def sms() -> FakeSender:
    return FakeSender()


@pytest.fixture
def codes(runtime, sms, clock) -> PhoneCodes:
    return PhoneCodes(runtime.db, runtime.vault, sms, CodePolicy(daily_limit=3, resend_s=0.0), clock=clock)


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 10**6:06d}"


def test_a_sent_code_signs_in_once(codes, sms):
    codes.send(phone="+86 138-1234-8000", purpose="archive")
    code = sms.last_code(PHONE)
    assert code is not None and len(code) == 6 and code.isdigit() and sms.sent[-1].ttl_s == 300
    codes.check(phone=PHONE, purpose="archive", code=code)
    with pytest.raises(WrongCode) as e:  # used up
        codes.check(phone=PHONE, purpose="archive", code=code)
    assert e.value.code == Code.WRONG_VERIFICATION_CODE


def test_a_code_opens_only_its_purpose_and_phone(codes, sms):
    codes.send(phone=PHONE, purpose="archive")
    code = sms.last_code()
    with pytest.raises(WrongCode):
        codes.check(phone=PHONE, purpose="staff", code=code)
    with pytest.raises(WrongCode):
        codes.check(phone="13900001111", purpose="archive", code=code)
    codes.check(phone=PHONE, purpose="archive", code=code)


def test_wrong_code_20001_counts_down_then_locks_20004_for_15_minutes(codes, sms, clock):
    codes.send(phone=PHONE, purpose="archive")
    code = sms.last_code()
    for remaining in (4, 3, 2, 1):
        with pytest.raises(WrongCode) as e:
            codes.check(phone=PHONE, purpose="archive", code=wrong(code))
        assert e.value.code == Code.WRONG_VERIFICATION_CODE and e.value.remaining == remaining
    with pytest.raises(PhoneLocked) as locked:
        codes.check(phone=PHONE, purpose="archive", code=wrong(code))
    assert locked.value.code == Code.ATTEMPT_LIMIT and locked.value.retry_after == 900
    # Locked: even the right code, and sending a new one, are refused — from any process (the lock is a row).
    with pytest.raises(PhoneLocked):
        codes.check(phone=PHONE, purpose="archive", code=code)
    with pytest.raises(PhoneLocked):
        codes.send(phone=PHONE, purpose="archive")
    assert codes.locked_until(phone=PHONE, purpose="archive") == clock.t + 900
    # Another purpose of the same phone is not locked.
    codes.send(phone=PHONE, purpose="staff")
    clock.t += 901
    assert codes.locked_until(phone=PHONE, purpose="archive") is None
    codes.send(phone=PHONE, purpose="archive")
    codes.check(phone=PHONE, purpose="archive", code=sms.last_code())


def test_a_success_resets_the_count(codes, sms):
    for _ in range(2):
        codes.send(phone=PHONE, purpose="archive")
        code = sms.last_code()
        for _ in range(4):
            with pytest.raises(WrongCode):
                codes.check(phone=PHONE, purpose="archive", code=wrong(code))
        codes.check(phone=PHONE, purpose="archive", code=code)


def test_expired_code_20002_is_not_a_wrong_guess(codes, sms, clock, runtime):
    codes.send(phone=PHONE, purpose="archive")
    code = sms.last_code()
    clock.t += 301
    for _ in range(6):
        with pytest.raises(CodeExpired) as e:
            codes.check(phone=PHONE, purpose="archive", code=code)
        assert e.value.code == Code.VERIFICATION_CODE_EXPIRED
    with runtime.db.read() as conn:
        assert conn.execute(select(s.phone_guards.c.failures)).scalar_one() == 0


def test_daily_limit_20003_resets_at_local_midnight(codes, sms, clock):
    clock.t = 1_800_000_000.0 - (1_800_000_000.0 + 8 * 3600) % 86400 + 3600  # 01:00 in Shanghai
    for _ in range(3):
        codes.send(phone=PHONE, purpose="archive")
    with pytest.raises(DailyLimit) as e:
        codes.send(phone=PHONE, purpose="archive")
    assert e.value.code == Code.DAILY_CODE_LIMIT and len(sms.sent) == 3
    codes.send(phone="13900001111", purpose="archive")  # another phone has its own allowance
    clock.t += 23 * 3600  # 00:00 the next day
    codes.send(phone=PHONE, purpose="archive")


def test_resend_wait(runtime, sms, clock):
    codes = PhoneCodes(runtime.db, runtime.vault, sms, CodePolicy(resend_s=60.0), clock=clock)
    codes.send(phone=PHONE, purpose="archive")
    clock.t += 10
    with pytest.raises(TooSoon) as e:
        codes.send(phone=PHONE, purpose="archive")
    assert e.value.retry_after == 50
    clock.t += 50
    codes.send(phone=PHONE, purpose="archive")


def test_a_failed_send_records_nothing(codes, sms, runtime):
    sms.fail = True
    for _ in range(5):
        with pytest.raises(Unavailable):
            codes.send(phone=PHONE, purpose="archive")
    with runtime.db.read() as conn:
        assert conn.execute(select(s.phone_codes)).all() == []
    sms.fail = False
    codes.send(phone=PHONE, purpose="archive")  # the daily allowance is untouched


def test_no_phone_number_is_refused(codes):
    with pytest.raises(Invalid) as e:
        codes.send(phone="12", purpose="archive")
    assert e.value.field == "phone"


def test_nothing_identifying_is_stored(codes, sms, runtime):
    codes.send(phone=PHONE, purpose="archive")
    code = sms.last_code()
    with runtime.db.read() as conn:
        rows = [*conn.execute(select(s.phone_codes)).all(), *conn.execute(select(s.phone_guards)).all()]
    text = repr(rows)
    assert PHONE not in text and code not in text


def test_concurrent_wrong_guesses_all_count(runtime, sms, clock):
    # Ten guesses at once from ten "browsers" cannot slip past the five-attempt lock.
    codes = PhoneCodes(runtime.db, runtime.vault, sms, CodePolicy(resend_s=0.0), clock=clock)
    codes.send(phone=PHONE, purpose="archive")
    code = sms.last_code()
    outcomes: list[str] = []

    def guess() -> None:
        try:
            codes.check(phone=PHONE, purpose="archive", code=wrong(code))
        except phonecodes.WrongCode:
            outcomes.append("wrong")
        except phonecodes.PhoneLocked:
            outcomes.append("locked")

    threads = [threading.Thread(target=guess) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes.count("wrong") == 4 and outcomes.count("locked") == 6
