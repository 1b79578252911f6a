"""Authentication of partner requests by signature (contract §1.1)."""

from __future__ import annotations

import time

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from ..contract import signing
from ..contract.codes import Code
from ..contract.envelope import ContractError
from ..tenancy import Partner, Tenancy


# The signature headers as OpenAPI security schemes, and the requirement of a
# signed operation (all three headers together), for the /docs "Authorize" form.
SIGNATURE_SCHEMES = {
    signing.H_APP_ID: {"type": "apiKey", "in": "header", "name": signing.H_APP_ID,
                       "description": "the partner id the operator issued"},
    signing.H_TIMESTAMP: {"type": "apiKey", "in": "header", "name": signing.H_TIMESTAMP,
                          "description": "now, in milliseconds since the Unix epoch (within ±300 s)"},
    signing.H_SIGNATURE: {"type": "apiKey", "in": "header", "name": signing.H_SIGNATURE,
                          "description": "lowercase hex HMAC-SHA256(key = token, message = appId + timestamp)"},
}
SIGNED: dict[str, list[str]] = {name: [] for name in SIGNATURE_SCHEMES}


async def authenticate(request: Request, tenancy: Tenancy, *, window_s: float) -> Partner:
    """The calling partner, checked before the body is read."""
    headers = request.headers
    app_id = headers.get(signing.H_APP_ID)
    if app_id is None or not app_id.strip():
        raise ContractError(Code.INVALID_TOKEN, "appId header missing")
    app_id = app_id.strip()
    hit, partner = tenancy.cached_partner(app_id)
    if not hit:
        partner = await run_in_threadpool(tenancy.partner, app_id)
    if partner is None:
        raise ContractError(Code.INVALID_TOKEN, "unknown appId")
    signing.verify(
        app_id=app_id,
        timestamp=headers.get(signing.H_TIMESTAMP),
        signature=headers.get(signing.H_SIGNATURE),
        tokens=partner.tokens,
        now=time.time(),
        window_s=window_s,
    )
    if not partner.enabled:
        raise ContractError(Code.USER_DISABLED, f"partner {app_id} is disabled")
    return partner
