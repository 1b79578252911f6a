"""The OpenAPI document covers /api/v1 (issue 14 item 6): the envelope, the cookie and CSRF schemes, the queries."""

from __future__ import annotations

import httpx
import pytest

from yingyun.cloud.staff.edge import CSRF_HEADER, SESSION_COOKIE
from yingyun.storage.db import default_sqlite_url

UNSAFE = {"post", "put", "patch", "delete"}


@pytest.fixture
def database_url(tmp_path):
    return default_sqlite_url(tmp_path / "data")  # the document does not depend on the database


@pytest.fixture
def document(app_server) -> dict:
    return httpx.get(f"{app_server.url}/openapi.json").json()


def test_the_session_cookie_and_csrf_header_are_security_schemes(document) -> None:
    schemes = document["components"]["securitySchemes"]
    assert schemes["staffSession"] == {**schemes["staffSession"], "type": "apiKey", "in": "cookie",
                                       "name": SESSION_COOKIE}
    assert schemes["csrfToken"] == {**schemes["csrfToken"], "type": "apiKey", "in": "header", "name": CSRF_HEADER}
    assert "appId" in schemes  # the RIS signature's schemes are still there


def test_every_api_operation_names_its_credentials_and_envelope(document) -> None:
    operations = [(method, path, op) for path, ops in document["paths"].items() if path.startswith("/api/v1/")
                  for method, op in ops.items()]
    paths = {path for _, path, _ in operations}
    assert {"/api/v1/session", "/api/v1/stats", "/api/v1/audit", "/api/v1/discrepancies", "/api/v1/unions",
            "/api/v1/hospitals/{key}", "/api/v1/device-types", "/api/v1/partners/{key}/rotate"} <= paths
    for method, path, op in operations:
        if (method, path) in {("post", "/api/v1/session"), ("post", "/api/v1/session/sms-code")}:
            assert op["security"] == []
        elif method in UNSAFE:
            assert op["security"] == [{"staffSession": [], "csrfToken": []}], (method, path)
        else:
            assert op["security"] == [{"staffSession": []}], (method, path)
        schema = op["responses"]["200"]["content"]["application/json"]["schema"]
        assert "ApiEnvelope" in str(schema), (method, path)
    stats = document["paths"]["/api/v1/stats"]["get"]
    assert {(p["name"], p["required"]) for p in stats["parameters"]} >= {("from", True), ("to", True),
                                                                          ("hospitalId", False), ("unionId", False)}
    assert "Stats" in str(stats["responses"]["200"])
    assert {p["name"] for p in document["paths"]["/api/v1/audit"]["get"]["parameters"]} >= {
        "from", "to", "kind", "studyUid", "username", "limit", "offset"}
    assert document["components"]["schemas"]["StatsDay"]


def test_docs_page_is_served_without_a_cdn(app_server) -> None:
    page = httpx.get(f"{app_server.url}/docs").text
    assert "/docs/assets/swagger-ui-bundle.js" in page and "cdn" not in page.lower()
    assert httpx.get(f"{app_server.url}/docs/assets/swagger-ui-bundle.js").status_code == 200
