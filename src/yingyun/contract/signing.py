"""Request signatures (contract §1.1).

`signature = HMAC-SHA256(key=token, message=appId + timestamp)`, lowercase hex
(base64 of the same digest accepted), within a replay window around server
time. There is no nonce: the window is the replay defence.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Iterable, Mapping

from .codes import Code
from .envelope import ContractError

H_APP_ID = "appId"
H_TIMESTAMP = "timestamp"
H_SIGNATURE = "signature"
DEFAULT_WINDOW_SECONDS = 300
TOKEN_LENGTH = 32


def sign(app_id: str, token: str, timestamp_ms: int | str) -> str:
    message = f"{app_id}{timestamp_ms}".encode()
    return hmac.new(token.encode(), message, hashlib.sha256).hexdigest()


def signed_headers(app_id: str, token: str, *, now: float | None = None) -> dict[str, str]:
    ts = str(int((time.time() if now is None else now) * 1000))
    return {H_APP_ID: app_id, H_TIMESTAMP: ts, H_SIGNATURE: sign(app_id, token, ts)}


def validate_token(token: str) -> None:
    """A token doubles as the AES-256 key (§1.4): exactly 32 ASCII characters."""
    if len(token) != TOKEN_LENGTH or not token.isascii() or not token.isprintable():
        raise ValueError(f"a partner token must be exactly {TOKEN_LENGTH} printable ASCII characters")


def _decode_signature(value: str) -> bytes | None:
    value = value.strip()
    if len(value) == 64:
        try:
            return bytes.fromhex(value)
        except ValueError:
            return None
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        try:
            raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
        except (binascii.Error, ValueError):
            return None
    return raw if len(raw) == 32 else None


def header(headers: Mapping[str, str], name: str) -> str | None:
    """Case-insensitive header lookup for plain dicts (Starlette's headers already are)."""
    value = headers.get(name)
    if value is None:
        lowered = name.lower()
        for key, candidate in headers.items():
            if key.lower() == lowered:
                return candidate
    return value


def parse_timestamp(raw: str | None, *, now: float, window_s: float) -> int:
    if raw is None or not raw.strip():
        raise ContractError(Code.INVALID_SIGNATURE, "timestamp header missing")
    raw = raw.strip()
    if not raw.isdigit() or len(raw) > 16:
        raise ContractError(Code.INVALID_SIGNATURE, "timestamp must be milliseconds since the epoch, decimal")
    ts = int(raw)
    if abs(ts / 1000.0 - now) > window_s:
        raise ContractError(
            Code.INVALID_SIGNATURE,
            f"timestamp out of window: more than {int(window_s)} s from server time",
        )
    return ts


def verify(
    *,
    app_id: str,
    timestamp: str | None,
    signature: str | None,
    tokens: Iterable[str],
    now: float | None = None,
    window_s: float = DEFAULT_WINDOW_SECONDS,
) -> None:
    """Check a request's signature against any of the partner's live tokens.

    Several tokens are live during a rotation's grace period. Raises
    ContractError(90002) naming what is wrong.
    """
    parse_timestamp(timestamp, now=time.time() if now is None else now, window_s=window_s)
    if signature is None or not signature.strip():
        raise ContractError(Code.INVALID_SIGNATURE, "signature header missing")
    given = _decode_signature(signature)
    if given is None:
        raise ContractError(Code.INVALID_SIGNATURE, "signature is not a hex or base64 HMAC-SHA256 digest")
    message = f"{app_id}{(timestamp or '').strip()}".encode()  # parse_timestamp refused a missing one
    matched = False
    for token in tokens:
        expected = hmac.new(token.encode(), message, hashlib.sha256).digest()
        # Compare against every token, so timing says nothing about which one.
        matched |= hmac.compare_digest(expected, given)
    if not matched:
        raise ContractError(Code.INVALID_SIGNATURE, "signature does not match")
