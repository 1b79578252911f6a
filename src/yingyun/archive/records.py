"""Writers for what the RIS sends: studies, reports, deletes, reconcile logs.

Each writer runs in one write transaction: the typed row, a version row
with the raw payload (encrypted) and the data-quality warnings commit
together or not at all. Upserts are keyed by hospital + id and keep every
version.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Connection, Row, and_, func, insert, select, update

from ..contract import gateway_api as g
from ..contract.params import Record
from ..core.crypto import Vault
from ..core.errors import Invalid, NotFound
from ..storage import schema as s
from ..storage.rawsql import Raw, insert_sql, update_sql
from ..storage.upsert import insert_ignore

STUDY_COLUMNS = g.STUDY_COLUMNS
REPORT_COLUMNS = g.REPORT_COLUMNS


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def _raw_values(record: Record, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    """The raw text of fields whose value did not parse: kept, never dropped."""
    out = {}
    for w in record.warnings:
        name = w.split(":", 1)[0]
        if w.endswith(("malformed (B)", "malformed (C)")) and name not in skip:
            out[name] = record.raw.get(name)
    return out


@dataclass
class StudyWrite:
    pk: int
    version: int
    action: str  # add | update | restore


def upsert_study(conn: Connection, vault: Vault, *, hospital_id: str, record: Record, source: str | None,
                 received_at: float | None = None) -> StudyWrite:
    now = received_at or time.time()
    v = record.values
    study_id = v[g.STUDY_ID]
    identity = {f: v[f] for f in g.IDENTITY_FIELDS if f in v}
    for f in g.IDENTITY_FIELDS:
        if f not in identity and f in record.raw and record.raw[f] not in (None, ""):
            identity[f] = record.raw[f]  # malformed but kept, encrypted like the rest
    columns = {col: v.get(name) for name, col in STUDY_COLUMNS.items()}
    details = {k: val for k,
               val in v.items() if k not in STUDY_COLUMNS and k not in g.IDENTITY_FIELDS and k != g.STUDY_ID}
    row_values = dict(
        columns,
        id_card_hash=vault.id_card_hash(identity.get(g.ID_CARD) if isinstance(identity.get(g.ID_CARD), str) else None),
        phone_hash=vault.phone_hash(identity.get(g.PHONE) if isinstance(identity.get(g.PHONE), str) else None),
        identity_enc=vault.encrypt(_dumps(identity)) if identity else None,
        details=_dumps(details),
        raw_values=_dumps(_raw_values(record, g.IDENTITY_FIELDS)),
        warnings=_dumps(record.warnings),
        updated_at=now,
    )
    key = {"hospital_id": hospital_id, "study_id": study_id}
    raw_enc = vault.encrypt(_dumps(record.raw))
    # Most studies arrive once: try the insert first, and look the row up only when
    # the study is already there. On PostgreSQL the new study's version row and its
    # link to DICOM that came first ride in the same statement: one round trip, not three.
    if conn.dialect.name == "postgresql":
        link_by = "uid" if columns["study_uid"] else "acc" if columns["access_number"] else "none"
        new_study = _INSERT_NEW_STUDY_PG[link_by]
        row = new_study.one(conn, dict(row_values, **key, version=1, deleted=False, created_at=now, source=source,
                                    raw_enc=raw_enc, received_at=now, link_uid=columns["study_uid"],
                                    link_acc=columns["access_number"]))
        if row is not None:
            return StudyWrite(row[0], 1, "add")
    else:
        row = _INSERT_STUDY.one(conn, dict(row_values, **key, version=1, deleted=False, created_at=now))
    if row is not None:
        write = StudyWrite(row[0], 1, "add")
    else:
        pk, version, deleted = _SELECT_STUDY.one(conn, key)
        write = StudyWrite(pk, version + 1, "restore" if deleted else "update")
        _UPDATE_STUDY.run(conn, dict(row_values, pk=pk, version=write.version, deleted=False, deleted_at=None))
    _INSERT_STUDY_VERSION.run(conn, {
        "study_pk": write.pk, "version": write.version, "action": write.action, "source": source,
        "raw_enc": raw_enc, "warnings": row_values["warnings"], "received_at": now,
    })
    if columns["study_uid"]:
        _LINK_BY_UID.run(conn, {"hospital_id": hospital_id, "pk": write.pk, "uid": columns["study_uid"]})
    elif columns["access_number"]:
        _LINK_BY_ACCESSION.run(conn, {"hospital_id": hospital_id, "pk": write.pk, "acc": columns["access_number"]})
    return write


_STUDY_VALUE_COLUMNS = list(STUDY_COLUMNS.values()) + [
    "id_card_hash", "phone_hash", "identity_enc", "details", "raw_values", "warnings", "updated_at"]
_SELECT_STUDY = Raw("SELECT pk, version, deleted FROM studies "
                    "WHERE hospital_id = :hospital_id AND study_id = :study_id {for_update}")
_INSERT_STUDY = insert_sql("studies",
                           ["hospital_id", "study_id", *_STUDY_VALUE_COLUMNS, "version", "deleted", "created_at"],
                           conflict=["hospital_id", "study_id"], returning="pk")
_UPDATE_STUDY = update_sql("studies", [*_STUDY_VALUE_COLUMNS, "version", "deleted", "deleted_at"], "pk = :pk")
_INSERT_STUDY_VERSION = insert_sql("study_versions",
                                   ["study_pk", "version", "action", "source", "raw_enc", "warnings", "received_at"])
_LINK_BY_UID = Raw("UPDATE dicom_studies SET ris_study_pk = :pk "
                   "WHERE hospital_id = :hospital_id AND ris_study_pk IS NULL AND study_uid = :uid")
_LINK_BY_ACCESSION = Raw("UPDATE dicom_studies SET ris_study_pk = :pk WHERE hospital_id = :hospital_id "
                         "AND ris_study_pk IS NULL AND accession_number = :acc")


def _new_study_pg(link: str) -> Raw:
    """_INSERT_STUDY, then (only if it inserted) the version row and the link, in one statement."""
    link_sql = {
        "uid": "study_uid = :link_uid",
        "acc": "accession_number = :link_acc",
    }.get(link)
    sql = (f"WITH s AS ({_INSERT_STUDY.sqlite}), "
           "v AS (INSERT INTO study_versions (study_pk, version, action, source, raw_enc, warnings, received_at) "
           "SELECT pk, 1, 'add', :source, :raw_enc, :warnings, :received_at FROM s)")
    if link_sql:
        sql += (", l AS (UPDATE dicom_studies SET ris_study_pk = (SELECT pk FROM s) WHERE hospital_id = :hospital_id "
                f"AND ris_study_pk IS NULL AND {link_sql} AND EXISTS (SELECT 1 FROM s))")
    return Raw(sql + " SELECT pk FROM s")


_INSERT_NEW_STUDY_PG = {link: _new_study_pg(link) for link in ("uid", "acc", "none")}


def upsert_report(conn: Connection, vault: Vault, *, hospital_id: str, record: Record, source: str | None,
                  received_at: float | None = None) -> tuple[int, int]:
    now = received_at or time.time()
    v = record.values
    number = v[g.REPORT_NUMBER]
    values = {col: v.get(name) for name, col in REPORT_COLUMNS.items()}
    values.update(study_id=v[g.STUDY_ID], raw_values=_dumps(_raw_values(record)), warnings=_dumps(record.warnings),
                  updated_at=now)
    r = s.reports
    key = and_(r.c.hospital_id == hospital_id, r.c.report_number == number)
    existing = conn.execute(select(r.c.pk, r.c.version).where(key).with_for_update()).first()
    pk = version = None
    if existing is None:
        pk = insert_ignore(conn, r,
                           dict(values, hospital_id=hospital_id, report_number=number, version=1, created_at=now),
                           keys=["hospital_id", "report_number"], returning=r.c.pk).scalar()
        version = 1
        if pk is None:
            existing = conn.execute(select(r.c.pk, r.c.version).where(key).with_for_update()).first()
    if existing is not None:
        pk, version = existing.pk, existing.version + 1
        conn.execute(update(r).where(r.c.pk == pk).values(**values, version=version))
    if pk is None or version is None:  # lost the insert, then the winner's row was gone: nothing to version
        raise RuntimeError("the report row vanished while it was being written")
    conn.execute(
        insert(s.report_versions).values(
            report_pk=pk, version=version, source=source, raw_enc=vault.encrypt(_dumps(record.raw)),
            warnings=_dumps(record.warnings), received_at=now,
        )
    )
    return pk, version


def delete_study(conn: Connection, vault: Vault, *, hospital_id: str, record: Record, source: str | None,
                 received_at: float | None = None) -> bool:
    """Soft delete (§2.5). Returns False when it was already deleted (idempotent)."""
    now = received_at or time.time()
    v = record.values
    st = s.studies
    row = conn.execute(
        select(st.c.pk, st.c.version, st.c.deleted, st.c.access_number, st.c.study_uid)
        .where(st.c.hospital_id == hospital_id, st.c.study_id == v[g.STUDY_ID]).with_for_update()
    ).first()
    if row is None:
        raise NotFound(f"no study with studyId {v['studyId']!r}", subject="study")
    known_uid = row.study_uid or conn.execute(
        select(s.dicom_studies.c.study_uid).where(s.dicom_studies.c.ris_study_pk == row.pk).limit(1)
    ).scalar()
    disagree = []
    if row.access_number and row.access_number != v[g.ACCESS_NUMBER]:
        disagree.append(g.ACCESS_NUMBER)
    if known_uid and known_uid != v[g.STUDY_UID]:
        disagree.append(g.STUDY_UID)
    if disagree:
        raise Invalid("does not match the stored study: " + ", ".join(disagree), subject="study")
    if row.deleted:
        return False
    conn.execute(update(st).where(st.c.pk == row.pk).values(deleted=True, deleted_at=now, version=row.version + 1,
                                                            updated_at=now))
    conn.execute(
        insert(s.study_versions).values(
            study_pk=row.pk, version=row.version + 1, action="delete", source=source,
            raw_enc=vault.encrypt(_dumps(record.raw)), warnings="[]", received_at=now,
        )
    )
    return True


def study_row(conn: Connection, *, hospital_id: str, study_id: str) -> Row[Any] | None:
    st = s.studies
    return conn.execute(select(st).where(st.c.hospital_id == hospital_id, st.c.study_id == study_id)).first()


def add_reconcile_log(conn: Connection, vault: Vault, *, hospital_id: str, kind: str, entries: list[Record],
                      raw: dict[str, Any], source: str | None, start_time: str | None = None,
                      end_time: str | None = None, received_at: float | None = None) -> int:
    now = received_at or time.time()
    log_pk: int = conn.execute(
        insert(s.reconcile_logs)
        .values(hospital_id=hospital_id, kind=kind, start_time=start_time, end_time=end_time, source=source,
                raw_enc=vault.encrypt(_dumps(raw)), received_at=now)
        .returning(s.reconcile_logs.c.pk)
    ).scalar_one()
    rows = [
        dict(
            log_pk=log_pk, hospital_id=hospital_id, study_id=e.values[g.STUDY_ID],
            access_number=e.values[g.ACCESS_NUMBER],
            study_uid=e.values[g.STUDY_UID], study_date=e.values[g.STUDY_DATE], logged_at=now,
            **{f"expected_{ours}": e.values[theirs] for theirs, ours in g.RECONCILE_COUNTS.items()},
        )
        for e in entries
    ]
    if rows:
        conn.execute(insert(s.reconcile_entries), rows)
    return log_pk


def count_reports(conn: Connection, *, hospital_id: str, study_id: str) -> int:
    r = s.reports
    return conn.execute(select(func.count()).where(r.c.hospital_id == hospital_id,
                                                   r.c.study_id == study_id)).scalar_one()
