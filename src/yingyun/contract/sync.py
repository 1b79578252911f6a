"""OUR gateway -> cloud protocol (docs/sync.md): paths, headers, signing.

Not the vendor's: the vendor's contract ends at the gateway's /ris API and
the cloud's /thirdparty API. Requests are signed over the body with the
gateway's key, so a record cannot be altered or replayed under another id.
"""

from __future__ import annotations

import hashlib
import hmac
import time

PATH_RECORDS = "/sync/v1/records"
PATH_INSTANCES = "/sync/v1/instances"
PATH_HELLO = "/sync/v1/hello"

H_GATEWAY = "X-Yingyun-Gateway"
H_TIMESTAMP = "X-Yingyun-Timestamp"
H_SIGNATURE = "X-Yingyun-Signature"
H_EVENT_IDS = "X-Yingyun-Event-Ids"
WINDOW_SECONDS = 300

# Record kinds carried by PATH_RECORDS.
STUDY, REPORT, DELETE, RECONCILE, RECONCILE_RANGE, LINK = "study", "report", "delete", "reconcile", "reconcile-range", "link"
RECORD_KINDS = (STUDY, REPORT, DELETE, RECONCILE, RECONCILE_RANGE, LINK)

# Per-record outcomes in the answer.
APPLIED, DUPLICATE, REJECTED = "applied", "duplicate", "rejected"


def body_signature(key: str, gateway_id: str, timestamp: str, body: bytes) -> str:
    message = f"{gateway_id}\n{timestamp}\n{hashlib.sha256(body).hexdigest()}".encode()
    return hmac.new(key.encode(), message, hashlib.sha256).hexdigest()


def signed_headers(gateway_id: str, key: str, body: bytes, *, now: float | None = None) -> dict[str, str]:
    ts = str(int((time.time() if now is None else now) * 1000))
    return {H_GATEWAY: gateway_id, H_TIMESTAMP: ts, H_SIGNATURE: body_signature(key, gateway_id, ts, body)}


def verify(*, key: str, gateway_id: str, timestamp: str | None, signature: str | None, body: bytes,
           now: float | None = None, window_s: float = WINDOW_SECONDS) -> str | None:
    """None when valid, else what is wrong."""
    if not timestamp or not timestamp.isdigit():
        return "timestamp missing or malformed"
    if abs(int(timestamp) / 1000 - (time.time() if now is None else now)) > window_s:
        return "timestamp out of window"
    if not signature:
        return "signature missing"
    expected = body_signature(key, gateway_id, timestamp, body)
    return None if hmac.compare_digest(expected, signature.strip().lower()) else "signature does not match"
