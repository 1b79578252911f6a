"""The patient's consultation page (contract §3.2 `h5Url`): `/h5/consultations/{token}`.

The token names one patient (by the keyed hashes of their identity, never
in clear) as one partner sees them: the consultations listed are those that
touch a study of a hospital granted to that partner when the link was made.
The link expires like the partner's study links (7 days by default).
"""

from __future__ import annotations

import html
import time
from datetime import datetime
from zoneinfo import ZoneInfo

import orjson
from sqlalchemy import Connection, insert, select

from ...core.links import is_token, mint_token, token_hash
from ...storage.schema import consultation_links
from ..hospital_api.patients import Patient
from . import service

PATH = "/h5/consultations/{token}"

STATUS_ZH = {
    "requested": "已申请", "scheduled": "已安排", "in_progress": "进行中", "concluded": "已完成", "cancelled": "已取消",
}


def mint(conn: Connection, *, app_id: str, patient: Patient, hospitals: set[str], now: float, lifetime: float) -> str:
    token = mint_token()
    conn.execute(insert(consultation_links).values(
        token_hash=token_hash(token), app_id=app_id, id_card_hash=patient.id_card_hash, phone_hash=patient.phone_hash,
        patient_name=patient.name, hospitals=orjson.dumps(sorted(hospitals)).decode(), created_at=now,
        expires_at=now + lifetime))
    return PATH.format(token=token)


def resolve(conn: Connection, token: str, *, now: float) -> tuple[str, list[dict] | None]:
    """("ok", consultations) | ("unknown", None) | ("expired", None)."""
    if not is_token(token):
        return "unknown", None
    row = conn.execute(select(consultation_links).where(consultation_links.c.token_hash == token_hash(token))).first()
    if row is None:
        return "unknown", None
    if now >= row.expires_at:
        return "expired", None
    return "ok", service.for_patient(conn, id_card_hash=row.id_card_hash, phone_hash=row.phone_hash,
                                     patient_name=row.patient_name, hospitals=orjson.loads(row.hospitals))


def render(state: str, items: list[dict] | None, *, hospitals: dict[str, dict], tz: str) -> tuple[int, str]:
    e = html.escape
    if state == "unknown":
        return 404, _page("链接无效", "<p class='msg'>此链接无效，请从医院应用重新打开。<br>This link is not valid.</p>")
    if state == "expired":
        return 410, _page("链接已过期", "<p class='msg'>分享链接已过期，请从医院应用重新打开。<br>This link has expired.</p>")
    if not items:
        return 200, _page("我的会诊", "<p class='msg'>暂无会诊记录。<br>No consultations yet.</p>")
    cards = []
    for c in items:
        experts = "、".join(e(x["name"] or x["doctorId"]) for x in c["experts"]) or "—"
        hospital = hospitals.get(c["hospitalId"], {}).get("name", c["hospitalId"])
        when = e(c["scheduledAt"]) if c["scheduledAt"] else "待定"
        created = datetime.fromtimestamp(c["createdAt"], ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M")
        parts = [
            f"<div class='head'><span class='hosp'>{e(hospital)}</span>"
            f"<span class='st st-{e(c['status'])}'>{STATUS_ZH.get(c['status'], e(c['status']))}</span></div>",
            f"<dl><dt>会诊时间</dt><dd>{when}</dd><dt>会诊专家</dt><dd>{experts}</dd>",
            f"<dt>申请时间</dt><dd>{created}</dd>",
        ]
        if c["purpose"]:
            parts.append(f"<dt>会诊目的</dt><dd>{e(c['purpose'])}</dd>")
        if c["meetingUrl"] and c["status"] in ("scheduled", "in_progress"):
            parts.append(f"<dt>视频会议</dt><dd><a href='{e(c['meetingUrl'])}' rel='noopener noreferrer'>进入会议</a></dd>")
        parts.append("</dl>")
        if c["status"] == "concluded" and c["conclusion"]:
            parts.append(f"<div class='concl'><h3>会诊结论</h3><p>{e(c['conclusion'])}</p></div>")
        cards.append("<section class='card'>" + "".join(parts) + "</section>")
    return 200, _page("我的会诊", "".join(cards))


def _page(title: str, body: str) -> str:
    return f"""<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1"><meta name="referrer" content="no-referrer">
<title>{html.escape(title)}</title><style>
body{{font-family:-apple-system,"PingFang SC","Microsoft YaHei",sans-serif;margin:0;background:#f4f6f8;color:#1f2d3d}}
h1{{font-size:18px;margin:0;padding:14px 16px;background:#1677ff;color:#fff}}
.card{{background:#fff;margin:12px;border-radius:8px;padding:12px 14px;box-shadow:0 1px 2px rgba(0,0,0,.06)}}
.head{{display:flex;justify-content:space-between;font-weight:600;margin-bottom:6px}}
.st{{font-size:13px;padding:1px 8px;border-radius:10px;background:#eef}} .st-concluded{{background:#e6f7e6}}
.st-cancelled{{background:#eee;color:#888}} dl{{display:grid;grid-template-columns:5em 1fr;gap:4px 8px;margin:0;font-size:14px}}
dt{{color:#888}} dd{{margin:0;word-break:break-all}} .concl h3{{font-size:14px;margin:10px 0 4px}}
.concl p{{white-space:pre-wrap;margin:0;font-size:14px}} .msg{{margin:40px 16px;text-align:center;color:#666}}
</style></head><body><h1>{html.escape(title)}</h1>{body}</body></html>"""


def now() -> float:
    return time.time()
