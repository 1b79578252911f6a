"""The patient's consultation page (contract §3.2 `h5Url`): /h5/consultations/{token}.

What it lists is `cloud/consultations/pages.resolve`'s; here it is shown in
the film pages' templates and words."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from ...consultations import pages as consultation_links
from .access import H5Route, PatientCtx
from .render import page, translator

# link state -> (title key, words key, HTTP status)
REFUSED = {"unknown": ("invalid_title", "consult_invalid", 404), "expired": ("expired_title", "consult_expired", 410)}
STATUSES = ("requested", "scheduled", "in_progress", "concluded", "cancelled")
MEETING_STATUSES = ("scheduled", "in_progress")
EXPERT_SEPARATOR = "、"

router = APIRouter(route_class=H5Route)


@router.get(consultation_links.PATH)
def consultation_page(request: Request, ctx: PatientCtx, token: str) -> Response:
    t = translator(request)
    with ctx.db.read() as conn:
        state, items = consultation_links.resolve(conn, token, now=time.time())
    if state in REFUSED or items is None:
        title, text, status = REFUSED.get(state, REFUSED["unknown"])
        return page(ctx, "message.html", t, status, title=t(title), text=t(text), state=state, code=None)
    hospitals = ctx.tenancy.hospitals()
    return page(ctx, "consultations.html", t, items=[_card(c, hospitals, t) for c in items])


def _card(c: dict[str, Any], hospitals: dict[str, dict[str, Any]], t: Any) -> dict[str, Any]:
    status = c["status"]
    return {
        "status": status,
        "status_text": t(f"consult_{status}") if status in STATUSES else status,
        "hospital": hospitals.get(c["hospitalId"], {}).get("name", c["hospitalId"]),
        "scheduled_at": c["scheduledAt"],
        "created_at": c["createdAt"],
        "experts": EXPERT_SEPARATOR.join(x["name"] or x["doctorId"] for x in c["experts"]),
        "purpose": c["purpose"],
        "meeting_url": c["meetingUrl"] if status in MEETING_STATUSES else None,
        "conclusion": c["conclusion"] if status == "concluded" else None,
    }
