"""The `/api/v1` part of the OpenAPI document (issue 14 item 6): the envelope, the session cookie and the CSRF header.

FastAPI cannot see either credential (the edge reads the cookie and the
header by hand, cloud/staff/edge.py), nor the envelope every answer comes in
(web/vendor.py), so they are written into the document here: the security
schemes `staffSession` (the HttpOnly cookie `POST /api/v1/session` sets) and
`csrfToken` (the `X-CSRF-Token` header, `data.csrfToken` of the session
answer), required by every operation — the header on state-changing ones —
except the two that open a session; and each answer as `ApiEnvelope`.
"""

from __future__ import annotations

from typing import Any

from ..staff.edge import CSRF_HEADER, SESSION_COOKIE, UNSAFE_METHODS

PREFIX = "/api/v1/"
# The operations that open a session: no session (nor its CSRF token) before them.
OPEN = {("post", "/api/v1/session"), ("post", "/api/v1/session/sms-code")}
SESSION, CSRF = "staffSession", "csrfToken"

SCHEMES: dict[str, dict[str, Any]] = {
    SESSION: {"type": "apiKey", "in": "cookie", "name": SESSION_COOKIE,
              "description": "The staff session: HttpOnly, SameSite=Strict cookie set by POST /api/v1/session "
                             "(20005 when missing, idle 30 minutes or older than 12 hours; 20007 once a "
                             "sign-in elsewhere ended it)."},
    CSRF: {"type": "apiKey", "in": "header", "name": CSRF_HEADER,
           "description": "data.csrfToken of the session answer, sent back on every POST, PUT, PATCH and DELETE "
                          "(20008 when missing or not the session's)."},
}
SCHEMAS: dict[str, dict[str, Any]] = {
    "ApiEnvelope": {
        "type": "object", "required": ["code", "message"],
        "description": "Every /api/v1 answer, with HTTP 200: code 0 and data, or the vendor code of the refusal "
                       "and a message that names the problem.",
        "properties": {"code": {"type": "integer", "example": 0}, "message": {"type": "string", "example": "成功"},
                       "data": {"description": "The operation's result (absent on a refusal)."}},
    },
    "ApiList": {
        "type": "object", "required": ["items", "total"],
        "description": "A list's data: one page of items (limit, offset) and how many match in all.",
        "properties": {"items": {"type": "array", "items": {"type": "object"}}, "total": {"type": "integer"}},
    },
    "StatsFigures": {
        "type": "object",
        "properties": {name: {"type": "integer"} for name in
                       ("studies", "studiesWithImages", "instances", "bytes", "reports", "patientVisits")},
    },
    "StatsDay": {
        "allOf": [{"$ref": "#/components/schemas/StatsFigures"}, {
            "type": "object",
            "properties": {"date": {"type": "string", "format": "date"}, "hospitalId": {"type": "string"},
                           "byModality": {"type": "object",
                                          "additionalProperties": {"$ref": "#/components/schemas/StatsFigures"}}}}],
    },
    "Stats": {
        "type": "object",
        "properties": {
            "from": {"type": "string", "format": "date"}, "to": {"type": "string", "format": "date"},
            "timezone": {"type": "string", "example": "Asia/Shanghai"},
            "days": {"type": "array", "items": {"$ref": "#/components/schemas/StatsDay"}},
            "gauges": {"type": "object", "properties": {
                "gateways": {"type": "array", "items": {"type": "object", "properties": {
                    "gatewayId": {"type": "string"}, "hospitalId": {"type": "string"},
                    "lastSuccessAt": {"type": ["string", "null"]},
                    "secondsSinceLastSuccess": {"type": ["number", "null"]}}}},
                "callbacks": {"type": "array", "items": {"type": "object", "properties": {
                    "partnerId": {"type": "string"}, "pending": {"type": "integer"}, "parked": {"type": "integer"}}}},
                "discrepancies": {"type": "array", "items": {"type": "object", "properties": {
                    "hospitalId": {"type": "string"}, "open": {"type": "integer"}}}},
                "disk": {"type": "object", "properties": {"freeBytes": {"type": "integer"},
                                                          "totalBytes": {"type": "integer"}}}}},
        },
    },
}
# The data schema of the operations that have one beyond "an object".
DATA = {("get", "/api/v1/stats"): "Stats", ("get", "/api/v1/audit"): "ApiList",
        ("get", "/api/v1/discrepancies"): "ApiList"}


def components() -> dict[str, dict[str, Any]]:
    return {"schemas": SCHEMAS, "securitySchemes": SCHEMES}


def document_api(document: dict[str, Any]) -> None:
    """Give every /api/v1 operation of `document` its security requirement and its envelope."""
    for path, operations in document.get("paths", {}).items():
        if not path.startswith(PREFIX):
            continue
        for method, op in operations.items():
            if (method, path) in OPEN:
                op["security"] = []
            elif method.upper() in UNSAFE_METHODS:
                op["security"] = [{SESSION: [], CSRF: []}]
            else:
                op["security"] = [{SESSION: []}]
            envelope: dict[str, Any] = {"$ref": "#/components/schemas/ApiEnvelope"}
            data = DATA.get((method, path)) or ("ApiList" if method == "get" and "{" not in path
                                                and path.rstrip("/") != "/api/v1/session" else None)
            if data:
                envelope = {"allOf": [envelope, {"type": "object", "properties": {
                    "data": {"$ref": f"#/components/schemas/{data}"}}}]}
            op.setdefault("responses", {})["200"] = {
                "description": "The envelope (HTTP 200 whatever the outcome)",
                "content": {"application/json": {"schema": envelope}}}
