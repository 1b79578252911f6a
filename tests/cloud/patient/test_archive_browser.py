"""The patient archive (/h5/me) in real headless Chromium, on a phone held upright (390×844) and sideways
(844×390), touch: sign in with the SMS code, verify the real name, add a member, see both people's
studies from two hospitals, open one without re-verifying, share with a password and open the share in
another browser context, revoke it and see it refused, see the access entry; then the member limit,
the daily scan limit, a wrong ID checksum and an ID that does not match. Screenshots in test-artifacts/.
SQLite only: the archive's database logic runs on both back-ends in test_archive.py."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import insert, select

from yingyun.cloud.patient import archive
from yingyun.storage import schema as s
from yingyun.storage.db import default_sqlite_url

from ...support.partners import PartnerClient
from ..browser import PHONE as PHONE_CONTEXT
from ..browser import chromium, decode_qr
from .filmdata import add_study
from .test_archive import CHILD, ID_SELF, OTHER_PHONE, PHONE, register, with_check

VIEWPORTS = {"portrait": {"width": 390, "height": 844}, "landscape": {"width": 844, "height": 390}}


@pytest.fixture
def database_url(tmp_path):
    return default_sqlite_url(tmp_path / "data")


@pytest.fixture
def browser():
    with chromium() as b:
        yield b


def context(browser, orientation: str):
    return browser.new_context(**dict(PHONE_CONTEXT, viewport=VIEWPORTS[orientation]))


def no_horizontal_scroll(page) -> None:
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1"), "horizontal scrolling"


def shot(page, artifacts, orientation: str, name: str) -> None:
    page.screenshot(path=str(artifacts / f"archive-{orientation}-{name}.png"), full_page=False)


def sign_in(page, server, sms, phone: str = PHONE) -> None:
    page.goto(server.url + "/h5/me")
    page.fill("[data-testid=me-phone]", phone)
    page.click("[data-testid=send-code]")
    page.wait_for_selector("[data-testid=me-notice]")
    page.fill("[data-testid=me-code]", sms.last_code(phone))
    page.click("[data-testid=me-sign-in-submit]")


def add_member(page, server, name: str, id_card: str) -> None:
    page.goto(server.url + "/h5/me/members")
    page.fill("[data-testid=member-name]", name)
    page.fill("[data-testid=member-id-card]", id_card)
    page.select_option("[data-testid=member-relationship]", "child")
    page.click("[data-testid=member-add]")


@pytest.mark.parametrize("orientation", ["portrait", "landscape"])
def test_archive_path(server, ris, runtime, tmp_path, app_server, browser, artifacts, sms, film, orientation):
    runtime.tenancy.add_hospital(hospital_id="h2", name="第二医院", union_id="u1")
    _, token = runtime.tenancy.add_partner(app_id="ris-h2", hospitals=["h2"])
    h2 = PartnerClient(app_server.url, "ris-h2", token)
    try:
        mine = add_study(ris, runtime, tmp_path / "d", study_id="S1", phone=PHONE, id_card=ID_SELF,
                         series_sizes=(3,), qr=False)
        mine_h2 = register(h2, "T1", name="张三丰", phone=None, id_card=ID_SELF, date="2026-11-25 09:00:00")
        child = register(h2, "T2", name="张小明", phone=OTHER_PHONE, id_card=CHILD, date="2026-11-10 09:00:00")
        stranger = register(ris, "S9", name="李四", phone=OTHER_PHONE, id_card=with_check("32010219800101456"))
    finally:
        h2.close()
    ctx = context(browser, orientation)
    page = ctx.new_page()
    sign_in(page, server, sms)
    page.wait_for_selector("[data-testid=me-verify]")
    shot(page, artifacts, orientation, "verify")
    page.fill("[data-testid=me-name]", "张三丰")
    page.fill("[data-testid=me-id-card]", ID_SELF)
    page.click("[data-testid=me-verify-submit]")
    page.wait_for_selector("[data-testid=study-card]")
    add_member(page, server, "张小明", CHILD)
    page.wait_for_selector("[data-testid=member]")
    page.goto(server.url + "/h5/me/studies")
    uids = page.eval_on_selector_all("[data-testid=study-card]", "els => els.map(e => e.dataset.studyUid)")
    assert uids == [mine_h2, mine.study_uid, child] and stranger not in uids
    assert page.locator("[data-person=self] [data-testid=study-card]").count() == 2
    text = page.inner_text("main")
    assert "第一医院" in text and "第二医院" in text and "报告已出" in text and "报告未出" in text
    no_horizontal_scroll(page)
    shot(page, artifacts, orientation, "studies")

    # Open one: the report, without the phone digits.
    page.click(f"[data-study-uid='{mine.study_uid}'] [data-testid=study-open]")
    page.wait_for_selector("[data-testid=conclusion]")
    assert page.locator("input[name=answer]").count() == 0
    shot(page, artifacts, orientation, "opened")

    # Share it with a password; the link, the copy button and the QR code.
    page.goto(server.url + "/h5/me/studies")
    page.check(f"[data-study-uid='{mine.study_uid}'] [data-testid=share-pick]")
    page.select_option("[data-testid=share-hours]", "1")
    page.fill("[data-testid=share-password]", "pw1234")
    page.click("[data-testid=share-create]")
    page.wait_for_selector("[data-testid=share-result]")
    url = page.input_value("[data-testid=share-url]")
    assert url.startswith(server.url + "/h5/share/")
    assert decode_qr(page.locator("[data-testid=share-qr]").screenshot()) == url
    ctx.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.url)
    page.click("[data-testid=share-copy]")
    page.wait_for_function("() => document.querySelector('[data-testid=share-copy]').textContent === '已复制'")
    no_horizontal_scroll(page)
    shot(page, artifacts, orientation, "share")

    other = context(browser, orientation).new_page()
    other.goto(url)
    other.fill("input[name=answer]", "pw1234")
    other.click("button[type=submit]")
    other.wait_for_selector("[data-testid=conclusion]")

    # Revoke: the share is refused at once.
    page.goto(server.url + "/h5/me/shares")
    page.click("[data-testid=share-revoke]")
    page.wait_for_selector("[data-testid=me-shares]")
    assert page.locator("[data-testid=share]").count() == 0
    other.goto(url)
    assert other.locator("[data-testid=conclusion]").count() == 0 and "无效" in other.inner_text("body")

    # Who looked: the share's opening is in the list.
    film.audit.flush()
    page.goto(server.url + "/h5/me/studies")
    page.click(f"[data-study-uid='{mine.study_uid}'] [data-testid=study-access]")
    entries = page.locator("[data-testid=access-entry]").all_inner_texts()
    assert any("您分享的链接" in e and "查看了报告" in e for e in entries), entries
    assert any("您本人" in e for e in entries), entries
    shot(page, artifacts, orientation, "access")


@pytest.mark.parametrize("orientation", ["portrait", "landscape"])
def test_archive_limits(server, ris, runtime, tmp_path, browser, artifacts, sms, orientation):
    register(ris, "S1", name="张小明", phone=OTHER_PHONE, id_card=CHILD)
    card = add_study(ris, runtime, tmp_path / "d", study_id="S2", phone=OTHER_PHONE, id_card=None,
                     series_sizes=(), report=False)
    page = context(browser, orientation).new_page()
    sign_in(page, server, sms)
    page.wait_for_selector("[data-testid=me-verify]")

    add_member(page, server, "张小明", CHILD[:-1] + ("0" if CHILD[-1] != "0" else "1"))
    assert page.get_attribute("body", "data-code") == "50003"
    assert "身份证号格式不正确" in page.inner_text("[data-testid=me-error]")
    add_member(page, server, "王五", CHILD)
    assert page.get_attribute("body", "data-code") == "50006"
    assert "不匹配" in page.inner_text("[data-testid=me-error]")
    shot(page, artifacts, orientation, "mismatch")

    with runtime.db.read() as conn:
        account_pk = conn.execute(select(s.patient_accounts.c.pk)).scalar_one()
    with runtime.db.write() as conn:
        for i in range(archive.MAX_MEMBERS):
            archive.add_member(conn, runtime.vault, account_pk=account_pk, name=f"成员{i}",
                               id_card=with_check(f"1101052010010{i:03d}1"), relationship="other", now=time.time())
    add_member(page, server, "张小明", CHILD)
    assert page.get_attribute("body", "data-code") == "50001"
    assert "上限" in page.inner_text("[data-testid=me-error]")
    no_horizontal_scroll(page)
    shot(page, artifacts, orientation, "member-limit")

    with runtime.db.write() as conn:
        conn.execute(s.patient_members.delete())
        for _ in range(archive.MAX_SCANS_PER_DAY):
            conn.execute(insert(s.member_scans).values(account_pk=account_pk, at=time.time()))
    page.goto(server.url + "/h5/me/members")
    page.fill("[data-testid=scan-link]", card.qr_url)
    page.fill("[data-testid=scan-answer]", OTHER_PHONE[-4:])
    page.click("[data-testid=scan-add]")
    assert page.get_attribute("body", "data-code") == "50004"
    assert "扫码" in page.inner_text("[data-testid=me-error]")
    shot(page, artifacts, orientation, "scan-limit")
