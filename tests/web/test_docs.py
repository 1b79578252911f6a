"""/docs works offline, and the OpenAPI document describes the /ris/* bodies (issue 12 item 17)."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import httpx
import pytest

from yingyun.contract import gateway_api as g
from yingyun.storage.db import default_sqlite_url

from ..cloud.browser import chromium


@pytest.fixture
def database_url(tmp_path):
    return default_sqlite_url(tmp_path / "data")  # the document does not depend on the database


def resolve(doc: dict, schema: dict) -> dict:
    while "$ref" in schema:
        schema = doc["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


TABLES = {g.PATH_STUDY_ADD: g.STUDY_FIELDS, g.PATH_REPORT_ADD: g.REPORT_FIELDS, g.PATH_STUDY_QR: g.QR_FIELDS,
          g.PATH_STUDY_DELETE: g.DELETE_FIELDS, g.PATH_RECONCILE: g.RECONCILE_FIELDS,
          g.PATH_RECONCILE_RANGE: g.RANGE_FIELDS}


def test_openapi_has_the_ris_bodies_envelopes_and_signature(app_server):
    doc = httpx.get(app_server.url + "/openapi.json").json()
    schemes = doc["components"]["securitySchemes"]
    # (The staff API's cookie and CSRF header are there too: tests/cloud/console/test_openapi.py.)
    assert {k: (v["type"], v["in"], v["name"]) for k, v in schemes.items() if k not in ("staffSession", "csrfToken")
            } == {"appId": ("apiKey", "header", "appId"), "timestamp": ("apiKey", "header", "timestamp"),
                  "signature": ("apiKey", "header", "signature")}
    for path, table in TABLES.items():
        op = doc["paths"][path]["post"]
        assert op["security"] == [{"appId": [], "timestamp": [], "signature": []}], path
        body = resolve(doc, op["requestBody"]["content"]["application/json"]["schema"])
        assert set(body["properties"]) >= {f.name for f in table}, path
        required = [f.name for f in table if f.cls == "A"] + (["studyList"] if path == g.PATH_RECONCILE_RANGE else [])
        assert sorted(body["required"]) == sorted(required), path
        answer = resolve(doc, op["responses"]["200"]["content"]["application/json"]["schema"])
        assert {"code", "message"} <= set(answer["properties"]), path
    study = resolve(doc, doc["paths"][g.PATH_STUDY_ADD]["post"]["requestBody"]["content"]["application/json"]["schema"])
    (count, null) = study["properties"]["imageCnt"]["anyOf"]  # a B field: may be absent
    assert count == {"type": "integer", "minimum": 0, "maximum": 2**31 - 1} and null == {"type": "null"}
    assert "男" in study["properties"]["patientSex"]["description"]
    assert "(B)" in study["properties"]["idCardNum"]["description"]
    assert "passportNum" in study["properties"]["idCardNum"]["description"]  # its group
    rng = resolve(doc,
                  doc["paths"][g.PATH_RECONCILE_RANGE]["post"]["requestBody"]["content"]["application/json"]["schema"])
    item = resolve(doc, rng["properties"]["studyList"]["items"])
    assert set(item["required"]) == {f.name for f in g.STUDY_LOG_FIELDS}
    qr = resolve(doc,
                 doc["paths"][g.PATH_STUDY_QR]["post"]["responses"]["200"]["content"]["application/json"]["schema"])
    data = resolve(doc, next(s for s in qr["properties"]["data"]["anyOf"] if "$ref" in s))
    assert set(data["properties"]) == {"qrImage", "qrUrl"}


def test_docs_page_and_assets_come_from_the_server(app_server):
    page = httpx.get(app_server.url + "/docs")
    assert page.status_code == 200
    urls = re.findall(r"""(?:src|href|url)\s*[=:]\s*['"]([^'"]+)['"]""", page.text)
    assert urls and all(u.startswith("/") for u in urls), urls  # nothing from another origin
    for u in urls:
        r = httpx.get(app_server.url + u)
        assert r.status_code == 200 and len(r.content) > 100, u
    assert httpx.get(app_server.url + "/redoc").status_code == 404  # FastAPI's CDN page is not served


def test_docs_render_in_chromium_without_internet(app_server):
    outside: list[str] = []

    def only_loopback(route):
        host = urlsplit(route.request.url).hostname
        if host in ("127.0.0.1", "localhost"):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    with chromium() as browser:
        page = browser.new_page()
        page.route("**/*", only_loopback)
        page.goto(app_server.url + "/docs")
        page.wait_for_selector(".opblock-summary-path", timeout=30000)
        paths = page.locator(".opblock-summary-path").all_inner_texts()
        assert {p.replace("\u200b", "") for p in paths} >= set(TABLES)
        # open study/add: its body schema is there, field by field
        page.locator(".opblock-summary-path", has_text="/ris/study/add").first.click()
        page.get_by_text("Schema", exact=True).first.click()
        page.wait_for_selector("text=patientSex", timeout=10000)
        assert page.locator(".btn.authorize").count() == 1  # the signature headers' form
    assert outside == []
