"""OUR gateway -> cloud protocol (docs/sync.md): paths, headers, signing, message bodies.

Not the vendor's: the vendor's contract ends at the gateway's /ris API and
the cloud's /thirdparty API. Requests are signed over the body with the
gateway's key, so a record cannot be altered or replayed under another id.
The bodies both sides exchange are the TypedDicts below: the gateway
builds them, the cloud checks them (`records_of`).
"""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Any, Literal, NotRequired, TypedDict, get_args

PATH_RECORDS = "/sync/v1/records"
PATH_INSTANCES = "/sync/v1/instances"
PATH_HELLO = "/sync/v1/hello"
PATH_OUTBOX = "/sync/v1/outbox"  # the gateway's report of its own backlog (its outbox is in its database)
# The cloud's copy of one of the gateway's own hospital's instances, for the scrub's repair: a signed
# POST (the body {"sopInstanceUid": ...} is what the signature covers, so a request cannot be replayed
# for another instance) answered with the dataset's bytes (no file meta: each side builds its own).
PATH_BLOB = "/sync/v1/blob"
# Final reports written at the cloud, for the gateway's hospital: the gateway cannot be called (it is behind the
# hospital's firewall), so it asks, acknowledging by id what it stored of the previous answer (DownRequest).
PATH_DOWN = "/sync/v1/down"
DOWN_LIMIT = 32  # reports in one answer at most
DOWN_POLL_S = 2.0  # how often a gateway asks while the link is up

H_GATEWAY = "X-Yingyun-Gateway"
H_TIMESTAMP = "X-Yingyun-Timestamp"
H_SIGNATURE = "X-Yingyun-Signature"
# The SHA-256 (hex) of the body, declared before it: the cloud checks the
# signature before it reads a streamed body, then the body against it.
H_CONTENT_SHA256 = "X-Yingyun-Content-SHA256"
H_EVENT_IDS = "X-Yingyun-Event-Ids"
WINDOW_SECONDS = 300

# Record kinds carried by PATH_RECORDS.
RecordKind = Literal["study", "report", "delete", "reconcile", "reconcile-range", "link", "purge", "hold"]
STUDY: RecordKind = "study"
REPORT: RecordKind = "report"
DELETE: RecordKind = "delete"
RECONCILE: RecordKind = "reconcile"
RECONCILE_RANGE: RecordKind = "reconcile-range"
LINK: RecordKind = "link"
PURGE: RecordKind = "purge"  # a study the gateway's retention purged (archive/retention.py)
HOLD: RecordKind = "hold"  # a legal hold added or lifted at the gateway
RECORD_KINDS: tuple[RecordKind, ...] = get_args(RecordKind)

# Per-item outcomes in the answer.
ItemStatus = Literal["applied", "duplicate", "rejected"]
APPLIED: ItemStatus = "applied"
DUPLICATE: ItemStatus = "duplicate"
REJECTED: ItemStatus = "rejected"


class Record(TypedDict):
    """One record of PATH_RECORDS: the hospital's JSON as the gateway accepted it."""

    eventId: str
    kind: RecordKind
    receivedAt: float | None
    source: str | None
    body: dict[str, Any]


class RecordsRequest(TypedDict):
    records: list[Record]


class LinkBody(TypedDict):
    """The body of a `link` record: the token's hash, never the token."""

    tokenHash: str
    studyId: str
    expiresAt: float | None
    revokedAt: float | None


class PurgeBody(TypedDict):
    """The body of a `purge` record: which study the gateway purged and by what rule (its tombstone)."""

    studyId: str | None  # None: images with no RIS record
    studyUid: str | None
    reason: str  # retention
    rule: str  # "inpatient-years=30"


class HoldBody(TypedDict):
    """The body of a `hold` record: a legal hold added (held) or lifted at the gateway."""

    studyUid: str
    reason: str
    held: bool


class ItemResult(TypedDict):
    """The cloud's answer for one record or instance (an instance's eventId is its part's Content-ID)."""

    eventId: str
    status: ItemStatus
    error: NotRequired[str]  # why it was rejected


class Results(TypedDict):
    results: list[ItemResult]


class Refusal(TypedDict):
    """A whole request refused (HTTP 4xx/5xx)."""

    error: str
    results: NotRequired[list[ItemResult]]  # what was settled before a 503
    limitBytes: NotRequired[int]  # with a 413: the largest body the cloud takes


class OutboxReport(TypedDict):
    """PATH_OUTBOX: the gateway's outbox as it stands, sent every OUTBOX_REPORT_S while the link is up."""

    pendingRecords: int
    pendingInstances: int
    pendingBytes: int
    parked: int
    oldestPendingSeconds: float  # 0 when nothing is pending
    lastSuccessAt: float | None  # Unix seconds of the gateway's last delivered job


class OutboxAnswer(TypedDict):
    """The cloud's answer to PATH_OUTBOX: the instances of the gateway's hospital whose copy at the cloud its
    scrub found missing or corrupt (at most WANTED_LIMIT), for the gateway to send again while its spool still
    holds them; the cloud puts a copy back under its key when it hashes to the digest recorded at ingest."""

    gatewayId: str
    wanted: NotRequired[list[str]]  # SOP Instance UIDs


class DownRequest(TypedDict):
    """PATH_DOWN: the ids of the previous answer's reports that the gateway now holds durably."""

    ack: list[str]


class DownReport(TypedDict):
    """One final report coming down: its id (the same on every offer until acknowledged), the study it is
    for, when the cloud accepted it, and its /ris/report/add fields as accepted."""

    id: str
    studyUid: str
    receivedAt: float
    body: dict[str, Any]


class DownAnswer(TypedDict):
    hospitalId: str
    reports: list[DownReport]


def down_request_of(payload: object) -> list[str]:
    """The acknowledged ids of a PATH_DOWN body; ValueError when it is not one."""
    ack = payload.get("ack", []) if isinstance(payload, dict) else None
    if not isinstance(ack, list) or not all(isinstance(i, str) and 0 < len(i) <= 64 for i in ack) \
            or len(ack) > 10 * DOWN_LIMIT:
        raise ValueError('expected {"ack": [id, ...]}')
    return ack


def down_answer_of(payload: object) -> DownAnswer:
    """A PATH_DOWN answer checked; ValueError naming what is wrong."""
    if not isinstance(payload, dict) or not isinstance(payload.get("hospitalId"), str):
        raise ValueError("expected a JSON object with hospitalId")
    reports = payload.get("reports")
    if not isinstance(reports, list):
        raise ValueError("reports must be a list")
    for r in reports:
        if not (isinstance(r, dict) and isinstance(r.get("id"), str) and isinstance(r.get("studyUid"), str)
                and isinstance(r.get("body"), dict) and isinstance(r.get("receivedAt"), int | float)):
            raise ValueError("each report has id, studyUid, receivedAt and body")
    return {"hospitalId": payload["hospitalId"], "reports": reports}


WANTED_LIMIT = 100
OUTBOX_REPORT_S = 30.0
_REPORT_COUNTS = ("pendingRecords", "pendingInstances", "pendingBytes", "parked")


def outbox_report_of(payload: object) -> OutboxReport:
    """A PATH_OUTBOX body (parsed JSON) checked; ValueError naming what is wrong."""
    if not isinstance(payload, dict):
        raise ValueError("expected a JSON object")
    for name in _REPORT_COUNTS:
        value = payload.get(name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{name} must be a count (an integer >= 0)")
    oldest, last = payload.get("oldestPendingSeconds"), payload.get("lastSuccessAt")
    if isinstance(oldest, bool) or not isinstance(oldest, int | float) or oldest < 0:
        raise ValueError("oldestPendingSeconds must be a number >= 0")
    if last is not None and (isinstance(last, bool) or not isinstance(last, int | float)):
        raise ValueError("lastSuccessAt must be Unix seconds or null")
    return {"pendingRecords": payload["pendingRecords"], "pendingInstances": payload["pendingInstances"],
            "pendingBytes": payload["pendingBytes"], "parked": payload["parked"],
            "oldestPendingSeconds": float(oldest), "lastSuccessAt": None if last is None else float(last)}


def wanted_of(payload: object) -> list[str]:
    """The SOP Instance UIDs a PATH_OUTBOX answer asks for (none from a cloud of before `wanted`);
    ValueError when the answer is not one."""
    if not isinstance(payload, dict):
        raise ValueError("expected a JSON object")
    wanted = payload.get("wanted", [])
    if not isinstance(wanted, list) or not all(isinstance(u, str) and 0 < len(u) <= 64 for u in wanted):
        raise ValueError("wanted must be a list of SOP Instance UIDs")
    return wanted[:WANTED_LIMIT]


def records_of(payload: object) -> list[Record]:
    """The records of a PATH_RECORDS body (parsed JSON); ValueError if it is not one.
    A record's kind and body are checked when it is applied, one by one."""
    items = payload.get("records") if isinstance(payload, dict) else None
    if not isinstance(items, list) or not all(isinstance(i, dict) and isinstance(i.get("eventId"), str)
                                              and "kind" in i for i in items):
        raise ValueError('expected {"records": [{eventId, kind, body, ...}]}')
    return items


def body_digest(body: bytes | bytearray) -> str:
    return hashlib.sha256(body).hexdigest()


def body_signature(key: str, gateway_id: str, timestamp: str, digest: str) -> str:
    """The signature of a body whose SHA-256 hex digest is `digest`."""
    message = f"{gateway_id}\n{timestamp}\n{digest}".encode()
    return hmac.new(key.encode(), message, hashlib.sha256).hexdigest()


def signed_headers(gateway_id: str, key: str, body: bytes | None = None, *, digest: str | None = None,
                   now: float | None = None) -> dict[str, str]:
    """Headers signing a body, given whole or by its digest (then declared in H_CONTENT_SHA256)."""
    ts = str(int((time.time() if now is None else now) * 1000))
    headers = {H_GATEWAY: gateway_id, H_TIMESTAMP: ts}
    if digest is None:
        digest = body_digest(body or b"")
    else:
        headers[H_CONTENT_SHA256] = digest
    headers[H_SIGNATURE] = body_signature(key, gateway_id, ts, digest)
    return headers


def verify(*, key: str, gateway_id: str, timestamp: str | None, signature: str | None, digest: str,
           now: float | None = None, window_s: float = WINDOW_SECONDS) -> str | None:
    """None when the signature of a body with this SHA-256 hex digest is valid, else what is wrong."""
    if not timestamp or not timestamp.isdigit():
        return "timestamp missing or malformed"
    if abs(int(timestamp) / 1000 - (time.time() if now is None else now)) > window_s:
        return "timestamp out of window"
    if not signature:
        return "signature missing"
    expected = body_signature(key, gateway_id, timestamp, digest)
    return None if hmac.compare_digest(expected, signature.strip().lower()) else "signature does not match"
