"""Patient-facing link tokens (contract §2.3).

A token is 32 random bytes, base64url (43 characters). Only its SHA-256 is
searchable: the token has 256 bits of entropy, so an unkeyed hash is safe
and lets the cloud verify a token minted by a gateway without sharing a
key. Tokens are kept encrypted too, so a reprint shows the same code.
"""

from __future__ import annotations

import base64
import hashlib
import io
import re
import secrets

import segno

TOKEN_RE = re.compile(r"[A-Za-z0-9_-]{43}")


def mint_token() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def is_token(value: str) -> bool:
    return bool(TOKEN_RE.fullmatch(value))


def qr_png(url: str, *, scale: int = 6) -> bytes:
    buf = io.BytesIO()
    segno.make(url, error="m", micro=False).save(buf, kind="png", scale=scale, border=4)
    return buf.getvalue()


def study_url(public_url: str, token: str) -> str:
    return f"{public_url.rstrip('/')}/h5/s/{token}"
