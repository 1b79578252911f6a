"""A final report POSTed back to the hospital's RIS (our decision over the vendor's contract, docs/api.md).

The body has the field names of `/ris/report/add` (§2.2), so a RIS that sends reports the vendor's way reads
ours with the same code, plus `studyUid` and `status` ("final"). It is signed as every vendor request is
(§1.1) with the hospital's RIS partner's appId and token, and carries an `eventId` header that is the same on
every retry of one delivery, so the RIS can drop a duplicate. The RIS answers with the vendor's envelope: an
HTTP 2xx with code 0 is delivered; anything else is retried.
"""

from __future__ import annotations

from typing import Any

import orjson

from .gateway_api import REPORT_FIELDS, STUDY_UID
from .signing import signed_headers

STATUS = "status"
FINAL = "final"
H_EVENT_ID = "eventId"
# The report fields a delivery carries, in the contract's order.
FIELDS = tuple(f.name for f in REPORT_FIELDS)


def body(report: dict[str, Any], *, study_uid: str) -> dict[str, Any]:
    """The delivery's JSON body: the report's /ris/report/add fields (absent ones as ""), the study's UID and
    the status."""
    out: dict[str, Any] = {name: report.get(name) or "" for name in FIELDS}
    out[STUDY_UID] = study_uid
    out[STATUS] = FINAL
    return out


def request(*, app_id: str, token: str, event_id: str, payload: dict[str, Any],
            now: float) -> tuple[bytes, dict[str, str]]:
    """Bytes and headers of one attempt: a fresh timestamp and signature each time, the same eventId."""
    headers = {"Content-Type": "application/json", H_EVENT_ID: event_id, **signed_headers(app_id, token, now=now)}
    return orjson.dumps(payload), headers


def accepted(status_code: int, content: bytes) -> tuple[bool, str]:
    """Whether the RIS's answer acknowledges the delivery (a 2xx with the envelope's code 0), and why not."""
    if not 200 <= status_code < 300:
        return False, f"HTTP {status_code}"
    try:
        answer = orjson.loads(content)
    except orjson.JSONDecodeError:
        return False, f"HTTP {status_code}, but the answer is not JSON"
    if not isinstance(answer, dict) or "code" not in answer:
        return False, f"HTTP {status_code}, but the answer has no code"
    code = answer.get("code")
    if code in (0, "0"):
        return True, ""
    message = str(answer.get("message", ""))[:200]
    return False, f"code {code}: {message}" if message else f"code {code}"
