"""The console in real headless Chromium (issue 14, Tests): sign in, charts drawn, every object created,
a duplicate refused in words, sign out; a hospital admin's scope; the lockout; the 20007 takeover; CSRF.

Screenshots go to test-artifacts/console-*.png.
"""

from __future__ import annotations

import contextlib
import time

import pytest

from sqlalchemy import select

from yingyun.contract.codes import Code
from yingyun.storage import schema as s

from ..browser import chromium
from ..staff.conftest import PASSWORD

DESKTOP = {"viewport": {"width": 1280, "height": 800}, "locale": "zh-CN",
           "extra_http_headers": {"Accept-Language": "zh-CN,zh;q=0.9"}}
TABLET = {"viewport": {"width": 820, "height": 1180}, "locale": "zh-CN", "has_touch": True,
          "extra_http_headers": {"Accept-Language": "zh-CN,zh;q=0.9"}}

# True when every chart of the dashboard has a canvas with pixels of more than one colour.
CHARTS_DRAWN = """
() => [...document.querySelectorAll('[data-testid=dashboard] .chart')].map(chart => {
  const canvas = chart.querySelector('canvas');
  if (!canvas || !canvas.width || !canvas.height) return false;
  const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
  const seen = new Set();
  for (let i = 0; i < data.length; i += 4 * 7) {
    if (data[i + 3]) seen.add((data[i] << 16) | (data[i + 1] << 8) | data[i + 2]);
    if (seen.size > 2) return true;
  }
  return false;
})
"""


@pytest.fixture
def browser():
    with chromium() as b:
        yield b


@contextlib.contextmanager
def opened(browser, url: str, device: dict = DESKTOP):
    context = browser.new_context(**device)
    page = context.new_page()
    page.set_default_timeout(20_000)
    page.goto(f"{url}/console/")
    try:
        yield page
    finally:
        context.close()


def sign_in(page, username: str, password: str = PASSWORD) -> None:
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")


def create(page, view: str, fields: dict[str, str]) -> None:
    page.click(f"[data-testid=nav-{view}]")
    page.wait_for_selector("[data-testid=rows]")
    page.click("[data-testid=create]")
    for name, value in fields.items():
        page.fill(f"[data-testid=form] input[name={name}]", value)
    page.click("[data-testid=form] button[type=submit]")


def row_ids(page) -> list[str]:
    return page.eval_on_selector_all("[data-testid=rows] tbody tr[data-id]", "rows => rows.map(r => r.dataset.id)")


def test_an_operator_signs_in_sees_charts_creates_everything_and_signs_out(staff_world, sent, browser,
                                                                           artifacts) -> None:
    with opened(browser, staff_world.url) as page:
        assert page.locator("html").get_attribute("lang") == "zh-CN"
        sign_in(page, "op")
        page.wait_for_selector("[data-testid=dashboard] [data-testid=chart-hospital] canvas")
        page.wait_for_function(f"({CHARTS_DRAWN})().every(Boolean)")
        assert page.text_content("[data-testid=totals] [data-measure=studies] .value") == "3"
        page.screenshot(path=str(artifacts / "console-dashboard.png"), full_page=True)

        create(page, "unions", {"id": "u9", "name": "第九联盟"})
        page.wait_for_selector("[data-testid=rows] tr[data-id=u9]")
        create(page, "hospitals", {"id": "h9", "name": "第九医院", "unionId": "u9"})
        page.wait_for_selector("[data-testid=rows] tr[data-id=h9]")
        create(page, "departments", {"hospitalId": "h9", "name": "放射科"})
        page.wait_for_selector("[data-testid=rows] tr:has-text('放射科')")
        create(page, "device-types", {"name": "螺旋CT", "modality": "CT"})
        page.wait_for_selector("[data-testid=rows] tr:has-text('螺旋CT')")
        device_type = page.get_attribute("[data-testid=rows] tr:has-text('螺旋CT')", "data-id")
        create(page, "devices", {"hospitalId": "h9", "name": "CT-1", "deviceTypeId": device_type, "modality": "CT",
                                 "aeTitle": "CT9", "host": "127.0.0.1"})
        page.wait_for_selector("[data-testid=rows] tr:has-text('CT-1')")
        create(page, "users", {"username": "h9admin", "name": "九院管理员", "password": "a long password 9",
                               "roles": "admin:hospital:h9"})
        page.wait_for_selector("[data-testid=rows] tr[data-id=h9admin]:has-text('admin:hospital:h9')")

        # A duplicate is refused in words, and nothing is added.
        create(page, "hospitals", {"id": "h10", "name": "第九医院", "unionId": "u9"})
        error = page.wait_for_selector("[data-testid=form-error]:visible")
        assert f"({int(Code.INSTITUTION_NAME_USED)})" in error.text_content()
        assert any("\u4e00" <= ch <= "\u9fff" for ch in error.text_content())  # words, in Chinese
        assert "h10" not in row_ids(page)
        page.screenshot(path=str(artifacts / "console-duplicate.png"), full_page=True)

        page.click("[data-testid=sign-out]")
        page.wait_for_selector("form.signin input[name=username]:visible")
        assert page.evaluate("() => fetch('/api/v1/session').then(r => r.json()).then(b => b.code)") \
            == Code.AUTH_EXPIRED


def test_a_hospital_admin_sees_only_their_hospital(staff_world, sent, browser, artifacts) -> None:
    with opened(browser, staff_world.url, TABLET) as page:
        sign_in(page, "h1admin")
        page.wait_for_function(f"({CHARTS_DRAWN})().every(Boolean)")
        assert page.text_content("[data-testid=totals] [data-measure=studies] .value") == "2"  # h1's, not h2's
        page.screenshot(path=str(artifacts / "console-hospital-admin-tablet.png"), full_page=True)
        page.click("[data-testid=nav-hospitals]")
        page.wait_for_selector("[data-testid=rows] tr[data-id]")
        assert row_ids(page) == ["h1"]
        page.click("[data-testid=nav-users]")
        page.wait_for_selector("[data-testid=rows] tr[data-id]")
        assert "op" not in row_ids(page) and "h1admin" in row_ids(page)


def test_five_wrong_passwords_lock_the_account_in_words(staff_world, browser, artifacts) -> None:
    with opened(browser, staff_world.url) as page:
        for n in range(5):
            sign_in(page, "u1admin", "not the password")
            # Four are told the password is wrong; the fifth locks the account (and may say so).
            expected = [Code.AUTH_FAILED] if n < 4 else [Code.AUTH_FAILED, Code.ATTEMPT_LIMIT]
            page.wait_for_selector(", ".join(f"[data-testid=sign-in-error]:has-text('({int(c)})')" for c in expected))
            page.evaluate("() => { document.querySelector('[data-testid=sign-in-error]').textContent = ''; }")
        sign_in(page, "u1admin")  # the right password, too late
        error = page.wait_for_selector(f"[data-testid=sign-in-error]:has-text('({int(Code.ATTEMPT_LIMIT)})')")
        assert error.is_visible()
        page.screenshot(path=str(artifacts / "console-locked.png"))
        assert page.is_hidden("[data-testid=dashboard]")


def test_signing_in_elsewhere_ends_the_first_browser_with_20007(staff_world, browser, artifacts) -> None:
    with opened(browser, staff_world.url) as first, opened(browser, staff_world.url) as second:
        sign_in(first, "op")
        first.wait_for_selector("[data-testid=dashboard]")
        sign_in(second, "op")
        second.wait_for_selector("[data-testid=dashboard]")
        first.click("[data-testid=nav-unions]")
        error = first.wait_for_selector(f"[data-testid=sign-in-error]:has-text('({int(Code.LOGGED_IN_ELSEWHERE)})')")
        assert error.is_visible() and first.is_visible("form.signin input[name=username]")
        first.screenshot(path=str(artifacts / "console-taken-over.png"))
        second.click("[data-testid=nav-unions]")
        second.wait_for_selector("[data-testid=rows] tr[data-id=u1]")


def test_a_state_change_without_the_csrf_header_is_refused(staff_world, browser) -> None:
    with opened(browser, staff_world.url) as page:
        sign_in(page, "op")
        page.wait_for_selector("[data-testid=dashboard]")
        # The page's own cookie, without the header a page of another site could not send.
        code = page.evaluate("""() => fetch('/api/v1/unions', {method: 'POST',
            headers: {'Content-Type': 'application/json'}, body: JSON.stringify({id: 'u7', name: '七'})})
            .then(r => r.json()).then(b => b.code)""")
        assert code == Code.NO_PERMISSION
        page.click("[data-testid=nav-unions]")
        page.wait_for_selector("[data-testid=rows] tr[data-id=u1]")
        assert "u7" not in row_ids(page)


def test_a_partners_token_is_shown_once_with_a_copy_button_and_a_partner_is_disabled(staff_world, browser,
                                                                                      artifacts) -> None:
    device = dict(DESKTOP, permissions=["clipboard-read", "clipboard-write"])
    with opened(browser, staff_world.url, device) as page:
        sign_in(page, "op")
        page.wait_for_selector("[data-testid=dashboard]")
        create(page, "partners", {"appId": "his-9", "hospitals": "h1 h2"})
        secret = page.wait_for_selector("[data-testid=secret]").text_content()
        assert len(secret) >= 16
        page.click("[data-testid=copy]")
        page.wait_for_selector("[data-testid=copy]:has-text('已复制')")
        assert page.evaluate("() => navigator.clipboard.readText()") == secret
        page.screenshot(path=str(artifacts / "console-partner-token.png"))
        page.wait_for_selector("[data-testid=rows] tr[data-id=his-9]:has-text('h1 h2')")
        assert secret not in page.text_content("[data-testid=rows]")  # in the list: never
        page.click("[data-testid=rows] tr[data-id=his-9] [data-action=disable]")
        page.wait_for_selector("[data-testid=rows] tr[data-id=his-9] [data-action=enable]")
        page.reload()
        page.wait_for_selector("[data-testid=rows] tr[data-id=his-9]")
        assert page.query_selector("[data-testid=secret]") is None  # shown once: not after a reload
    with staff_world.runtime.db.read() as conn:
        p = s.partners
        assert conn.execute(select(p.c.enabled).where(p.c.app_id == "his-9")).scalar_one() is False


def test_the_dashboard_warns_when_a_gateways_backlog_grows(staff_world, sent, browser, artifacts) -> None:
    """Two reports of gw1's outbox (tests/e2e/test_split.py sends them over a real sync link): the backlog grew
    from 1 to 5 with 2 parked, so the dashboard says so in words; gw2's, shrinking and small, raises nothing."""
    from yingyun.cloud.ingest.api import keep_outbox_report

    rt = staff_world.runtime
    rt.tenancy.add_gateway(gateway_id="gw1", hospital_id="h1", key="g" * 40)
    rt.tenancy.add_gateway(gateway_id="gw2", hospital_id="h2", key="g" * 40)

    def report(gateway_id: str, records: int, instances: int, parked: int = 0) -> None:
        with rt.db.write() as conn:
            keep_outbox_report(conn, gateway_id=gateway_id, at=time.time(), report={
                "pendingRecords": records, "pendingInstances": instances, "pendingBytes": 1024 * instances,
                "parked": parked, "oldestPendingSeconds": 60.0, "lastSuccessAt": None})

    report("gw1", 1, 0)
    report("gw1", 1, 4, parked=2)
    report("gw2", 3, 3)
    report("gw2", 0, 2)
    with opened(browser, staff_world.url) as page:
        sign_in(page, "op")
        page.wait_for_selector("[data-testid=gauge-gateways] td:has-text('gw1')")
        growing = page.text_content("[data-testid=warnings] [data-testid=warn-backlog]")
        assert "gw1" in growing and "1 → 5" in growing and "增长" in growing
        assert "gw1" in page.text_content("[data-testid=warnings] [data-testid=warn-backlog-parked]")
        assert page.locator("[data-testid=warnings] [data-testid=warn-backlog]").count() == 1  # not gw2's
        row = page.locator("[data-testid=gauge-gateways] tr:has-text('gw1') td").all_text_contents()
        assert row[3:5] == ["5", "2"]  # waiting, parked
        page.screenshot(path=str(artifacts / "console-backlog-warning.png"), full_page=True)


def test_the_discrepancies_page_lists_what_the_scrub_could_not_repair(staff_world, browser, tmp_path) -> None:
    from pydicom.uid import ExplicitVRLittleEndian

    from yingyun.archive.scrub import Scrubber

    from ...support.dicom_peers import dataset_bytes, make_instance

    rt = staff_world.runtime
    make_instance(tmp_path / "a.dcm")
    rt.instances.store(hospital_id="h1", data=dataset_bytes(tmp_path / "a.dcm"),
                       transfer_syntax_uid=ExplicitVRLittleEndian)
    with rt.db.read() as conn:
        key = conn.execute(select(s.instances.c.blob_key)).scalar_one()
    rt.blobs.put(key, b"not what was received")
    Scrubber(rt.db, rt.blobs, rate_bytes=0).check_all()
    with opened(browser, staff_world.url) as page:
        sign_in(page, "op")
        page.click("[data-testid=nav-discrepancies]")
        page.wait_for_selector("[data-testid=damaged-objects] tbody tr")
        text = page.text_content("[data-testid=damaged-objects] tbody")
        assert key in text and "corrupt" in text and "h1" in text
