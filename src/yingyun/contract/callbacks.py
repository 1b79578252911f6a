"""The status callback the platform POSTs to a partner (contract §3.4).

Signed like any request (§1.1) with the partner's own appId and token; the
identity fields are encrypted with that token (§1.4); an `eventId` header is
the same on every retry of one event, so the partner can drop duplicates.
The partner answers `{"code": 0, ...}`; anything else is a failed delivery.
"""

from __future__ import annotations

from typing import Any

import orjson

from .identity import encrypt_field
from .signing import signed_headers

H_EVENT_ID = "eventId"

STATUS_STUDY = 0  # study information only
STATUS_REPORT = 1  # report received
STATUS_IMAGES = 2  # images received (stable)
STATUS_REPORT_AND_IMAGES = 3
# Added to a status-1 callback when a reading centre submits a report with a critical finding (危急值).
CRITICAL = "critical"


def status_of(*, has_report: bool, has_images: bool) -> int:
    if has_report and has_images:
        return STATUS_REPORT_AND_IMAGES
    if has_report:
        return STATUS_REPORT
    if has_images:
        return STATUS_IMAGES
    return STATUS_STUDY


def body(*, status: int, phone: str | None, id_card: str | None, token: str, patient_id: str, hospital_id: str,
         his_id: str | None, study_type: int, study_date: str, study_id: str, body_part: str | None,
         study_name: str | None, h5_url: str, h5_detail_url: str, report_id: str,
         critical: bool = False) -> dict[str, Any]:
    """The callback's JSON body; identity values are encrypted with the partner's token."""
    out: dict[str, Any] = {
        "status": status,
        "phoneNum": encrypt_field(phone, token) if phone else "",
        "idNum": encrypt_field(id_card, token) if id_card else "",
        "patientId": patient_id or "",
        "hospitalId": hospital_id,
        "hisId": his_id or "",
        "studyType": study_type,
        "studyDate": study_date or "",
        "studyId": study_id,
        "bodyPart": body_part or "",
        "studyName": study_name or "",
        "h5Url": h5_url,
        "h5DetailUrl": h5_detail_url,
        "reportId": report_id or "",
    }
    if critical:
        out[CRITICAL] = True
    return out


def request(*, app_id: str, token: str, event_id: str, payload: dict[str, Any],
            now: float) -> tuple[bytes, dict[str, str]]:
    """Bytes and headers of one delivery attempt (a fresh timestamp and signature each time)."""
    headers = {"Content-Type": "application/json", H_EVENT_ID: event_id, **signed_headers(app_id, token, now=now)}
    return orjson.dumps(payload), headers


def accepted(status_code: int, content: bytes) -> tuple[bool, str]:
    """Whether the partner's answer acknowledges the delivery, and why not."""
    if status_code != 200:
        return False, f"HTTP {status_code}"
    try:
        answer = orjson.loads(content)
    except orjson.JSONDecodeError:
        return False, "answer is not JSON"
    if not isinstance(answer, dict) or "code" not in answer:
        return False, "answer has no code"
    code = answer.get("code")
    if code in (0, "0"):
        return True, ""
    message = str(answer.get("message", ""))[:200]
    return False, f"code {code}: {message}" if message else f"code {code}"
