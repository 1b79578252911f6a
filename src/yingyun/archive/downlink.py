"""A final report on its way back to the hospital (issue 15 item 7, docs/sync.md "Reports down").

`queue_report_down` is called in the transaction that made a study's report final (the reading core's sign-off,
after `archive.accept.accept_report`). It reads the study's current report from the `reports` table and queues
it for the hospital's RIS, in that same transaction, so a report is queued exactly when it is final:

* the hospital has a gateway registered here, on a cloud (a split deployment): a `report_downlink` row, which
  the gateway asks for over the sync link (`POST /sync/v1/down`, cloud/ingest), stores (`apply_down`) and
  acknowledges;
* otherwise (`serve`, or a cloud's hospital without a gateway): a delivery job here at once (`queue_final`).

Every report in the `reports` table is a final one: the vendor's `/ris/report/add` is sent after review, and the
reading core writes a report there only when it is signed off. An amended report is a new version of its row,
and so a new delivery.

`queue_final` writes one job of kind `KIND_FINAL`; the delivery worker of the process (gateway/delivery.py),
which knows the channels configured (the RIS URL, HL7), turns it into one job of kind `KIND_OUT` per channel,
each retried on its own.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import orjson
from sqlalchemy import Connection, and_, func, or_, select

from ..contract import gateway_api as g
from ..contract import sync as proto
from ..contract.params import parse
from ..core.crypto import Vault
from ..core.errors import NotFound
from ..storage import schema as s
from ..storage.deployment import ROLE, fact
from ..storage.queue import enqueue
from ..storage.upsert import insert_ignore
from .accept import accept_report
from .events import NoEvents

KIND_FINAL = "report-final"  # a final report to be fanned out to this side's channels
KIND_OUT = "report-out"  # one delivery of it on one channel (the job's partition)
RIS, HL7 = "ris", "hl7"
CHANNELS = (RIS, HL7)
SOURCE_CLOUD = "cloud"  # the source of a report that came down (report_versions.source at the gateway)


def queue_report_down(conn: Connection, *, study_uid: str) -> None:
    """Queue the study's current final report for its hospital's RIS (see the module's docstring); NotFound
    when the study has no report."""
    hospital_id, version_pk = current_report(conn, study_uid=study_uid)
    gateway = conn.execute(select(s.gateways.c.id).where(s.gateways.c.hospital_id == hospital_id).limit(1)).first()
    # `serve` answers no gateway's ask (only a cloud serves /sync/v1/*): there the report goes out directly.
    if gateway is None or fact(conn, ROLE) == "serve":
        queue_final(conn, hospital_id=hospital_id, version_pk=version_pk, study_uid=study_uid)
        return
    conn.execute(s.report_downlink.insert().values(
        event_id=uuid.uuid4().hex, hospital_id=hospital_id, study_uid=study_uid, version_pk=version_pk,
        created_at=time.time(), offers=0))


def current_report(conn: Connection, *, study_uid: str) -> tuple[str, int]:
    """(hospital id, report_versions.pk) of the newest report of the study with this Study Instance UID (its RIS
    record named by the UID, or linked to the DICOM study of that UID)."""
    st, ds, r, v = s.studies.c, s.dicom_studies.c, s.reports.c, s.report_versions.c
    keys = {(row.hospital_id, row.study_id) for row in conn.execute(
        select(st.hospital_id, st.study_id).where(st.study_uid == study_uid))}
    keys |= {(row.hospital_id, row.study_id) for row in conn.execute(
        select(st.hospital_id, st.study_id).select_from(s.dicom_studies.join(s.studies, st.pk == ds.ris_study_pk))
        .where(ds.study_uid == study_uid))}
    if not keys:
        raise NotFound(f"no study {study_uid}", subject="study")
    report = conn.execute(
        select(r.pk, r.hospital_id).where(or_(*[and_(r.hospital_id == h, r.study_id == i) for h, i in keys]))
        .order_by(r.updated_at.desc(), r.pk.desc()).limit(1)).first()
    if report is None:
        raise NotFound(f"study {study_uid} has no report", subject="report")
    version_pk = conn.execute(select(func.max(v.pk)).where(v.report_pk == report.pk)).scalar_one()
    return str(report.hospital_id), int(version_pk)


def queue_final(conn: Connection, *, hospital_id: str, version_pk: int, study_uid: str) -> str:
    """A final report for this side's delivery worker, in the caller's transaction; its event id. The reports of
    one study go out in order."""
    return enqueue(conn, kind=KIND_FINAL, payload={"hospitalId": hospital_id, "versionPk": version_pk,
                                                   "studyUid": study_uid},
                   order_key=f"{KIND_FINAL}/{hospital_id}/{study_uid}")


def out_order_key(channel: str, hospital_id: str, study_uid: str) -> str:
    return f"{KIND_OUT}/{channel}/{hospital_id}/{study_uid}"


def report_fields(conn: Connection, vault: Vault, version_pk: int) -> dict[str, Any] | None:
    """The /ris/report/add fields of a report version as it was accepted (None: gone)."""
    raw = conn.execute(select(s.report_versions.c.raw_enc).where(s.report_versions.c.pk == version_pk)).scalar()
    if raw is None:
        return None
    body = orjson.loads(vault.decrypt_bytes(raw))
    return body if isinstance(body, dict) else None


# -- the cloud's end of the down link (cloud/ingest answers POST /sync/v1/down with these) -------------------

def offer_down(conn: Connection, vault: Vault, *, hospital_id: str, ack: list[str], now: float,
               limit: int = proto.DOWN_LIMIT) -> list[proto.DownReport]:
    """Settle what the gateway acknowledged (ids of its own hospital only), then the oldest reports still
    waiting for it. A report stays offered, with the same id, until it is acknowledged."""
    d = s.report_downlink
    if ack:
        conn.execute(d.update().where(d.c.hospital_id == hospital_id, d.c.event_id.in_(ack), d.c.acked_at.is_(None))
                     .values(acked_at=now))
    rows = conn.execute(select(d.c.pk, d.c.event_id, d.c.study_uid, d.c.version_pk, d.c.created_at)
                        .where(d.c.hospital_id == hospital_id, d.c.acked_at.is_(None))
                        .order_by(d.c.pk).limit(limit)).all()
    out: list[proto.DownReport] = []
    for row in rows:
        fields = report_fields(conn, vault, row.version_pk)
        if fields is None:  # the report was purged with its study: nothing to deliver any more
            conn.execute(d.update().where(d.c.pk == row.pk).values(acked_at=now))
            continue
        received = conn.execute(select(s.report_versions.c.received_at)
                                .where(s.report_versions.c.pk == row.version_pk)).scalar_one()
        out.append({"id": row.event_id, "studyUid": row.study_uid, "receivedAt": float(received), "body": fields})
    if rows:
        conn.execute(d.update().where(d.c.pk.in_([r.pk for r in rows]), d.c.acked_at.is_(None))
                     .values(offered_at=now, offers=d.c.offers + 1))
    return out


def downlink_counts(conn: Connection) -> dict[str, int]:
    """Reports waiting for their gateway, by hospital (the cloud's side of the down link)."""
    d = s.report_downlink.c
    return {str(h): int(n) for h, n in conn.execute(
        select(d.hospital_id, func.count()).where(d.acked_at.is_(None)).group_by(d.hospital_id))}


# -- the gateway's end ----------------------------------------------------------------------------------------

def apply_down(conn: Connection, vault: Vault, *, gateway_id: str, hospital_id: str,
               item: proto.DownReport) -> bool:
    """Store a report that came down and queue it for the RIS, once per id (False: held already, it only needs
    acknowledging again). It is accepted as the RIS's own reports are (the same row, a new version) but with no
    events: it must not travel back up as a new record."""
    mark = {"event_id": item["id"], "gateway_id": gateway_id, "kind": "report-down", "applied_at": time.time()}
    if insert_ignore(conn, s.sync_applied, mark, keys=["event_id"]).rowcount == 0:
        return False
    record = parse(g.REPORT_FIELDS, item["body"])
    pk, _ = accept_report(conn, vault=vault, hospital_id=hospital_id, record=record, source=SOURCE_CLOUD,
                          events=NoEvents(), received_at=float(item["receivedAt"]))
    version_pk = conn.execute(select(func.max(s.report_versions.c.pk))
                              .where(s.report_versions.c.report_pk == pk)).scalar_one()
    queue_final(conn, hospital_id=hospital_id, version_pk=int(version_pk), study_uid=item["studyUid"])
    return True
