"""`yingyun admin qr revoke` (the old code says to scan the new one; getStudyQR reissues) and
`yingyun admin link doctor` (a referring doctor's link printed by an operator), on both databases."""

from __future__ import annotations

import time

from sqlalchemy import select
from typer.testing import CliRunner

from yingyun.cli.main import app as cli
from yingyun.storage import schema as s

from ...support.partners import PartnerClient
from .filmdata import add_study
from .test_pages import client


def admin(runtime, *args: str):
    return CliRunner().invoke(cli, ["admin", *args, "--data-dir", str(runtime.settings.data_dir),
                                    "--database-url", runtime.settings.database_url])


def test_qr_revoke_and_reissue(server, ris, runtime, tmp_path, app_server):
    runtime.tenancy.add_hospital(hospital_id="h2", name="第二医院", union_id="u1")
    _, token = runtime.tenancy.add_partner(app_id="ris-h2", hospitals=["h2"])
    st = add_study(ris, runtime, tmp_path / "d", series_sizes=(1,))
    with client(server) as c:
        assert c.get(f"/h5/s/{st.token}").status_code == 200
        res = admin(runtime, "qr", "revoke", "--study-id", st.study_id)
        assert res.exit_code == 0, res.output
        assert "revoked" in res.output and "getStudyQR" in res.output
        old = c.get(f"/h5/s/{st.token}")
        assert old.status_code == 404 and 'data-state="replaced"' in old.text and "请扫描新的" in old.text
        again = ris.post("/ris/getStudyQR", {"studyId": st.study_id})
        assert again["code"] == 0
        new_token = again["data"]["qrUrl"].rsplit("/", 1)[1]
        assert new_token != st.token
        assert "身份验证" in c.get(f"/h5/s/{new_token}").text  # the new code opens (and asks as always)
        assert c.get(f"/h5/s/{st.token}").status_code == 404  # the old one stays withdrawn
        assert ris.post("/ris/getStudyQR", {"studyId": st.study_id})["data"]["qrUrl"].endswith(new_token)
    # Nothing live to revoke / no such study / one of several hospitals.
    assert admin(runtime, "qr", "revoke", "--study-id", "NOPE").exit_code == 1
    h2 = PartnerClient(app_server.url, "ris-h2", token)
    try:
        add_study(h2, runtime, tmp_path / "d2", series_sizes=(), report=False, qr=False)
    finally:
        h2.close()
    res = admin(runtime, "qr", "revoke", "--study-id", st.study_id)
    assert res.exit_code == 1 and "several hospitals (h1, h2)" in res.output and "--hospital" in res.output
    res = admin(runtime, "qr", "revoke", "--study-id", st.study_id, "--hospital", "h1")
    assert res.exit_code == 0, res.output
    res = admin(runtime, "qr", "revoke", "--study-id", st.study_id, "--hospital", "h2")
    assert res.exit_code == 1 and "no live QR code" in res.output


def test_link_doctor_prints_a_working_url(server, ris, runtime, tmp_path, film):
    st = add_study(ris, runtime, tmp_path / "d", series_sizes=(1,))
    before = time.time()
    res = admin(runtime, "link", "doctor", "--study-uid", st.study_uid, "--hours", "2", "--public-url", server.url)
    assert res.exit_code == 0, res.output
    url = res.output.strip()
    assert url.startswith(server.url + "/h5/d/")
    with client(server) as c:
        page = c.get(url[len(server.url):])
        assert page.status_code == 200 and 'data-testid="conclusion"' in page.text  # no verification for a doctor
    with runtime.db.read() as conn:
        row = conn.execute(select(s.links).where(s.links.c.kind == "doctor")).one()
    assert before + 7200 - 5 <= row.expires_at <= time.time() + 7200 and row.created_by == "cli"
    res = admin(runtime, "link", "doctor", "--study-uid", st.study_uid)
    assert res.exit_code == 0 and res.output.strip().startswith("http://127.0.0.1:8080/h5/d/")  # serve's default
    assert admin(runtime, "link", "doctor", "--study-uid", "9.9.9").exit_code == 1
    res = admin(runtime, "link", "doctor", "--study-uid", st.study_uid, "--hours", "0")
    assert res.exit_code == 1 and "--hours" in res.output
