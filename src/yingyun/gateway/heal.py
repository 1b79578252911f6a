"""Reconciliation that heals: what the hospital's log says was sent but never arrived is fetched from its PACS.

For each study the reconciliation finds short of images (`missing` or
`mismatch` with more images expected than received, archive/reconcile.py),
the gateway asks the hospital's PACS (a registered PACS of that hospital that
is not one of its modalities) with C-FIND at the series and then the image
level which instances it holds, and retrieves those absent here:

* `move` (the default): C-MOVE with the gateway's own AE title as the
  destination. The PACS sends them with C-STORE to the gateway's DICOM port,
  through the receiver like any other image (durable, indexed, synced to the
  cloud, counted), so the PACS must know the gateway's AE title, host and
  port, and the PACS itself must be registered (`yingyun admin pacs add`)
  from the host it sends from.
* `get` (`yingyun admin pacs add --retrieve get`): C-GET; the instances come
  back on the same association and are written through the same
  `InstanceStore.store` as a C-STORE. For PACS that cannot reach the gateway.

Only absent SOP Instance UIDs are asked for (a whole series at the series
level, else UID lists at the image level), and the store path keeps one copy
of each instance, so nothing is duplicated. The outcome is kept per study in
`heal_studies`: `healed` when the discrepancy is gone; `final` when the PACS
answered but does not have everything (the UIDs it listed and could not
deliver are named, those it does not list are counted), tried again only
when a newer log about the study arrives or an operator asks
(`yingyun admin reconcile heal --study-id`); `failed` when the PACS could not
be asked (refused, unreachable, the retrieve refused), retried with back-off.

`HealWorker` runs a pass every `--heal-interval`: at most `per_pacs`
studies of each PACS per pass, one association to a PACS at a time, and at
most `associations` PACS at once. Logs name PACS and counts, never the
patient's data or the hospital's study ids.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import orjson
from pydicom.dataset import Dataset
from sqlalchemy import Connection, insert, select, update

from ..archive.instances import InstanceStore
from ..archive.reconcile import Shortfall, heal_record, shortfalls
from ..core.errors import Invalid, NotFound
from ..core.worker import PeriodicWorker
from ..dicomnet.status import Category, category
from ..dicomnet.uids import STORAGE_SYNTAXES
from ..storage import schema as s
from ..storage.db import Database
from ..storage.upsert import upsert
from ..tenancy import Pacs, Tenancy

log = logging.getLogger("yingyun.heal")

RETRIEVE_MODES = ("move", "get")
STUDY_ROOT_FIND = "1.2.840.10008.5.1.4.1.2.2.1"
STUDY_ROOT_MOVE = "1.2.840.10008.5.1.4.1.2.2.2"
STUDY_ROOT_GET = "1.2.840.10008.5.1.4.1.2.2.3"
# UIDs per image-level retrieve: a UID list stays well under an element's 64 KiB.
_UIDS_PER_REQUEST = 200
# A failed attempt is tried again after interval x 2^(attempts-1), at most this long.
_MAX_BACKOFF_S = 6 * 3600.0
# Explicit VR little endian first: what a PACS that converts is asked for.
_PROPOSED_SYNTAXES = sorted(STORAGE_SYNTAXES, key=lambda ts: (ts != "1.2.840.10008.1.2.1", ts != "1.2.840.10008.1.2",
                                                              ts))

# Those asked for when the PACS does not name an instance's SOP class.
_COMMON_SYNTAXES = ["1.2.840.10008.1.2.1", "1.2.840.10008.1.2", "1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.70",
                    "1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.91", "1.2.840.10008.1.2.5"]
# A-ASSOCIATE-RQ carries at most 128 presentation contexts; one is the C-GET's.
_MAX_STORAGE_CONTEXTS = 127


class HealFailed(Exception):
    """The PACS could not be asked or refused the retrieve: retried later (the text names no patient data)."""


def set_retrieve(conn: Connection, *, ae_title: str, retrieve: str) -> None:
    """How the gateway retrieves from the PACS `ae_title` (`move` or `get`); the caller holds the write lock."""
    if retrieve not in RETRIEVE_MODES:
        raise Invalid("--retrieve is move or get", subject="pacs", field="retrieve")
    upsert(conn, s.heal_peers, {"ae_title": ae_title}, {"retrieve": retrieve})


def retrieve_modes(conn: Connection) -> dict[str, str]:
    return {r.ae_title: r.retrieve for r in conn.execute(select(s.heal_peers))}


def forget_peer(conn: Connection, *, ae_title: str) -> None:
    conn.execute(s.heal_peers.delete().where(s.heal_peers.c.ae_title == ae_title))


@dataclass
class _Found:
    """What the PACS listed of a study: SOP Instance UID -> (series UID, SOP Class UID)."""

    instances: dict[str, tuple[str, str]] = field(default_factory=dict)
    series: dict[str, int] = field(default_factory=dict)  # series -> instances listed


@dataclass
class _Retrieved:
    status: int = 0
    refused: bool = False
    stored: int = 0  # C-GET: instances written here


class Healer:
    """Heals one study at a time; thread-safe (each heal opens its own associations)."""

    def __init__(self, *, db: Database, tenancy: Tenancy, store: InstanceStore, ae_title: str,
                 interval_s: float = 600.0, timeout_s: float = 30.0) -> None:
        self.db = db
        self.tenancy = tenancy
        self.store = store
        self.ae_title = ae_title
        self.interval_s = interval_s
        self.timeout_s = timeout_s

    # -- which studies, from which PACS ---------------------------------------

    def peers(self, hospital_id: str) -> list[Pacs]:
        """The hospital's PACS to ask, by AE title: its registered peers that are not modalities (devices)."""
        with self.db.read() as conn:
            devices = set(conn.execute(select(s.devices.c.ae_title).where(s.devices.c.ae_title.is_not(None)))
                          .scalars())
        return sorted((p for p in self.tenancy.pacs().values() if p.hospital_id == hospital_id
                       and p.ae_title not in devices), key=lambda p: p.ae_title)

    def due(self, now: float | None = None) -> list[Shortfall]:
        """The studies to heal now: short of images, and not final for the same log entry nor waiting to retry."""
        now = time.time() if now is None else now
        with self.db.read() as conn:
            found = shortfalls(conn)
            done = {(r.hospital_id, r.study_id): r for r in conn.execute(select(s.heal_studies))}
        out = []
        for short in found:
            row = done.get((short.hospital_id, short.study_id))
            if row is not None and row.log_pk == short.entry_pk:
                if row.state == "final" or (row.state == "failed" and row.next_at > now):
                    continue
            out.append(short)
        return out

    # -- one study -------------------------------------------------------------

    def heal(self, *, hospital_id: str, study_id: str) -> dict[str, Any]:
        """Heal one listed study now, whatever its state; its record (archive.reconcile.heal_record) after."""
        with self.db.read() as conn:
            found = shortfalls(conn, hospital_id=hospital_id, study_id=study_id)
            listed = conn.execute(select(s.reconcile_entries.c.pk).where(
                s.reconcile_entries.c.hospital_id == hospital_id,
                s.reconcile_entries.c.study_id == study_id).limit(1)).first()
        if not found:
            if listed is None:
                raise NotFound("no reconciliation log lists this study", subject="study", field="studyId")
            return self._record(hospital_id, study_id) or {
                "hospitalId": hospital_id, "studyId": study_id, "state": "complete", "final": False,
                "detail": "nothing is missing"}
        return self.heal_shortfall(found[0])

    def heal_shortfall(self, short: Shortfall) -> dict[str, Any]:
        started = time.time()
        hospital = self.tenancy.hospitals().get(short.hospital_id)
        peers = self.peers(short.hospital_id)
        if hospital is None or not hospital["enabled"]:
            return self._failed(short, None, "the hospital is disabled", started)
        if not peers:
            return self._failed(short, None, "no PACS is registered for the hospital", started)
        with self.db.read() as conn:
            modes = retrieve_modes(conn)
        error = ""
        for peer in peers:
            mode = modes.get(peer.ae_title, "move")
            try:
                return self._heal_from(short, peer, mode, started)
            except HealFailed as exc:
                error = f"{peer.ae_title}: {exc}"
                log.warning("heal: PACS %s could not be asked (%s)", peer.ae_title, exc)
        return self._failed(short, peers[-1], error, started, mode=modes.get(peers[-1].ae_title, "move"))

    def _heal_from(self, short: Shortfall, peer: Pacs, mode: str, started: float) -> dict[str, Any]:
        study_uid = short.study_uid
        if not study_uid:
            study_uid = self._study_uid_by_accession(peer, short.access_number)
        found = self._find(peer, study_uid) if study_uid else _Found()
        held = self._held(short.hospital_id, study_uid) if study_uid else set()
        absent = {uid: where for uid, where in found.instances.items() if uid not in held}
        retrieved = _Retrieved()
        if absent:
            retrieved = self._retrieve(peer, mode, short.hospital_id, study_uid, found, absent)
        after = self._held(short.hospital_id, study_uid) if study_uid else set()
        got = sorted(uid for uid in absent if uid in after)
        missing = sorted(uid for uid in absent if uid not in after)
        if retrieved.refused and not got:
            raise HealFailed(f"{'C-GET' if mode == 'get' else 'C-MOVE'} refused with status 0x{retrieved.status:04X}")
        with self.db.read() as conn:
            still = shortfalls(conn, hospital_id=short.hospital_id, study_id=short.study_id)
        if not still:
            state, unlisted = "healed", 0
            detail = f"retrieved {len(got)} instance(s) from {peer.ae_title}"
        else:
            state = "final"
            unlisted = max(0, still[0].expected_images - still[0].received_images - len(missing))
            parts = []
            if not found.instances:
                parts.append("the PACS does not have the study")
            if missing:
                parts.append(f"the PACS listed {len(missing)} instance(s) it could not deliver")
            if unlisted:
                parts.append(f"{unlisted} expected image(s) are not listed by the PACS")
            detail = "final: " + ("; ".join(parts) or "the PACS has no more of the study")
        log.info("heal: PACS %s (%s) listed %d, %d absent here, retrieved %d, %s", peer.ae_title, mode,
                 len(found.instances), len(absent), len(got), state)
        return self._write(short, study_uid, peer, mode, state, listed=len(found.instances), asked=len(absent),
                           retrieved=len(got), missing=missing, unlisted=unlisted, detail=detail, started=started)

    # -- the DICOM side (pynetdicom, the well-kept SCU) --------------------------

    def _ae(self) -> Any:
        from pynetdicom import AE

        ae = AE(ae_title=self.ae_title)
        ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = self.timeout_s
        ae.maximum_pdu_size = 0  # no limit: the PACS sends as much per PDU as it likes
        return ae

    def _associate(self, ae: Any, peer: Pacs, **kwargs: Any) -> Any:
        # Tried first on our own: pynetdicom leaves its socket unclosed when the connection is refused.
        try:
            socket.create_connection((peer.host, peer.port), timeout=self.timeout_s).close()
        except OSError as exc:
            raise HealFailed(f"unreachable ({type(exc).__name__})") from None
        assoc = ae.associate(peer.host, peer.port, ae_title=peer.ae_title, **kwargs)
        if not assoc.is_established:
            why = "rejected" if assoc.is_rejected else "aborted" if assoc.is_aborted else "unreachable"
            raise HealFailed(f"association {why}")
        return assoc

    def _find(self, peer: Pacs, study_uid: str) -> _Found:
        ae = self._ae()
        ae.add_requested_context(STUDY_ROOT_FIND)
        assoc = self._associate(ae, peer)
        found = _Found()
        try:
            series_q = Dataset()
            series_q.QueryRetrieveLevel = "SERIES"
            series_q.StudyInstanceUID = study_uid
            series_q.SeriesInstanceUID = ""
            for answer in _c_find(assoc, series_q):
                if answer.get("SeriesInstanceUID"):
                    found.series[str(answer.SeriesInstanceUID)] = 0
            for series_uid in list(found.series):
                image_q = Dataset()
                image_q.QueryRetrieveLevel = "IMAGE"
                image_q.StudyInstanceUID = study_uid
                image_q.SeriesInstanceUID = series_uid
                image_q.SOPInstanceUID = ""
                image_q.SOPClassUID = ""
                for answer in _c_find(assoc, image_q):
                    uid = str(answer.get("SOPInstanceUID") or "")
                    if uid:
                        found.instances[uid] = (series_uid, str(answer.get("SOPClassUID") or ""))
                        found.series[series_uid] += 1
        finally:
            _release(assoc)
        return found

    def _study_uid_by_accession(self, peer: Pacs, accession: str) -> str:
        if not accession:
            return ""
        ae = self._ae()
        ae.add_requested_context(STUDY_ROOT_FIND)
        assoc = self._associate(ae, peer)
        try:
            q = Dataset()
            q.QueryRetrieveLevel = "STUDY"
            q.AccessionNumber = accession
            q.StudyInstanceUID = ""
            uids = {str(a.StudyInstanceUID) for a in _c_find(assoc, q) if a.get("StudyInstanceUID")}
        finally:
            _release(assoc)
        return uids.pop() if len(uids) == 1 else ""

    def _held(self, hospital_id: str, study_uid: str) -> set[str]:
        i = s.instances
        with self.db.read() as conn:
            return set(conn.execute(select(i.c.sop_uid).where(i.c.hospital_id == hospital_id,
                                                              i.c.study_uid == study_uid)).scalars())

    def _requests(self, study_uid: str, found: _Found, absent: dict[str, tuple[str, str]]) -> Iterator[Dataset]:
        by_series: dict[str, list[str]] = defaultdict(list)
        for uid, (series_uid, _) in absent.items():
            by_series[series_uid].append(uid)
        for series_uid, uids in sorted(by_series.items()):
            if len(uids) == found.series.get(series_uid):
                q = Dataset()
                q.QueryRetrieveLevel = "SERIES"
                q.StudyInstanceUID = study_uid
                q.SeriesInstanceUID = series_uid
                yield q
                continue
            uids.sort()
            for start in range(0, len(uids), _UIDS_PER_REQUEST):
                q = Dataset()
                q.QueryRetrieveLevel = "IMAGE"
                q.StudyInstanceUID = study_uid
                q.SeriesInstanceUID = series_uid
                q.SOPInstanceUID = uids[start:start + _UIDS_PER_REQUEST]
                yield q

    def _retrieve(self, peer: Pacs, mode: str, hospital_id: str, study_uid: str, found: _Found,
                  absent: dict[str, tuple[str, str]]) -> _Retrieved:
        from pynetdicom import build_role, evt

        ae = self._ae()
        out = _Retrieved()
        kwargs: dict[str, Any] = {}
        if mode == "get":
            ae.add_requested_context(STUDY_ROOT_GET)
            classes = sorted({sop_class for _, sop_class in absent.values() if sop_class})[:_MAX_STORAGE_CONTEXTS]
            for sop_class in classes:
                ae.add_requested_context(sop_class, _PROPOSED_SYNTAXES)
            if any(not sop_class for _, sop_class in absent.values()):
                # The PACS does not say which SOP classes (SOPClassUID is an optional key): the common ones.
                from pynetdicom import StoragePresentationContexts

                for cx in StoragePresentationContexts:
                    if len(classes) >= _MAX_STORAGE_CONTEXTS:
                        break
                    if cx.abstract_syntax not in classes:
                        classes.append(str(cx.abstract_syntax))
                        ae.add_requested_context(cx.abstract_syntax, _COMMON_SYNTAXES)
            lock = threading.Lock()

            def on_store(event: Any) -> int:
                req = event.request
                result = self.store.store(hospital_id=hospital_id, data=req.DataSet.getvalue(),
                                          transfer_syntax_uid=str(event.context.transfer_syntax),
                                          sop_class_uid=str(req.AffectedSOPClassUID),
                                          sop_instance_uid=str(req.AffectedSOPInstanceUID), source_ae=peer.ae_title)
                if category(result.status) in (Category.SUCCESS, Category.WARNING):
                    with lock:
                        out.stored += 1
                return result.status

            kwargs = {"ext_neg": [build_role(c, scp_role=True) for c in classes],
                      "evt_handlers": [(evt.EVT_C_STORE, on_store)]}
        else:
            ae.add_requested_context(STUDY_ROOT_MOVE)
        assoc = self._associate(ae, peer, **kwargs)
        try:
            for q in self._requests(study_uid, found, absent):
                if mode == "get":
                    responses = assoc.send_c_get(q, STUDY_ROOT_GET)
                else:
                    responses = assoc.send_c_move(q, self.ae_title, STUDY_ROOT_MOVE)
                status = _final_status(responses)
                if status is None:
                    raise HealFailed("the association ended during the retrieve")
                out.status = status
                if category(status) == Category.FAILURE:
                    out.refused = True
        finally:
            _release(assoc)
        return out

    # -- the record --------------------------------------------------------------

    def _record(self, hospital_id: str, study_id: str) -> dict[str, Any] | None:
        h = s.heal_studies
        with self.db.read() as conn:
            row = conn.execute(select(h).where(h.c.hospital_id == hospital_id, h.c.study_id == study_id)).first()
        return heal_record(row) if row is not None else None

    def _failed(self, short: Shortfall, peer: Pacs | None, detail: str, started: float, *,
                mode: str | None = None) -> dict[str, Any]:
        return self._write(short, short.study_uid, peer, mode, "failed", listed=0, asked=0, retrieved=0,
                           missing=[], unlisted=0, detail=detail, started=started)

    def _write(self, short: Shortfall, study_uid: str, peer: Pacs | None, mode: str | None, state: str, *,
               listed: int, asked: int, retrieved: int, missing: list[str], unlisted: int, detail: str,
               started: float) -> dict[str, Any]:
        h = s.heal_studies
        key = (h.c.hospital_id == short.hospital_id, h.c.study_id == short.study_id)
        with self.db.write() as conn:
            row = conn.execute(select(h.c.attempts, h.c.retrieved_total, h.c.log_pk).where(*key)).first()
            attempts = 1 if row is None else row.attempts + 1
            failures = attempts if row is None or row.log_pk == short.entry_pk else 1
            backoff = min(_MAX_BACKOFF_S, self.interval_s * 2 ** max(0, failures - 1))
            values = {"study_uid": study_uid or None, "log_pk": short.entry_pk,
                      "pacs_ae": peer.ae_title if peer else None, "retrieve": mode, "state": state,
                      "attempts": attempts, "expected": short.expected_images, "listed": listed, "asked": asked,
                      "retrieved": retrieved, "retrieved_total": (row.retrieved_total if row else 0) + retrieved,
                      "missing_uids": orjson.dumps(missing).decode(), "unlisted": unlisted, "detail": detail[:500],
                      "attempted_at": started, "next_at": started + (backoff if state == "failed" else 0.0)}
            if row is None:
                conn.execute(insert(h).values(hospital_id=short.hospital_id, study_id=short.study_id, **values))
            else:
                conn.execute(update(h).where(*key).values(**values))
            fresh = conn.execute(select(h).where(*key)).one()
        return heal_record(fresh)

    # -- a pass ------------------------------------------------------------------

    def run_pass(self, *, per_pacs: int, associations: int) -> int:
        """Heal what is due: at most `per_pacs` studies of each PACS, one at a time per PACS, `associations`
        PACS at once. The number of studies attempted."""
        by_pacs: dict[str, list[Shortfall]] = defaultdict(list)
        for short in self.due():
            peers = self.peers(short.hospital_id)
            by_pacs[peers[0].ae_title if peers else ""].append(short)
        batches = [shorts[:per_pacs] for shorts in by_pacs.values()]
        if not batches:
            return 0

        def heal_all(shorts: Iterable[Shortfall]) -> int:
            done = 0
            for short in shorts:
                try:
                    self.heal_shortfall(short)
                except Exception:
                    log.exception("heal of one study failed")
                done += 1
            return done

        with ThreadPoolExecutor(max_workers=max(1, associations), thread_name_prefix="heal") as pool:
            return sum(pool.map(heal_all, batches))


def _c_find(assoc: Any, query: Dataset) -> Iterator[Dataset]:
    for status, identifier in assoc.send_c_find(query, STUDY_ROOT_FIND):
        if not status or "Status" not in status:
            raise HealFailed("the association ended during C-FIND")
        code = int(status.Status)
        if category(code) == Category.PENDING and identifier is not None:
            yield identifier
        elif category(code) == Category.FAILURE:
            raise HealFailed(f"C-FIND refused with status 0x{code:04X}")


def _final_status(responses: Iterable[tuple[Dataset, Dataset | None]]) -> int | None:
    final = None
    for status, _ in responses:
        if not status or "Status" not in status:
            return None
        code = int(status.Status)
        if category(code) != Category.PENDING:
            final = code
    return final


def _release(assoc: Any) -> None:
    if assoc.is_established:
        assoc.release()


class HealWorker:
    """A heal pass every `interval_s` (`--heal-interval`), in the serve or gateway process."""

    def __init__(self, healer: Healer, *, interval_s: float, per_pacs: int, associations: int) -> None:
        self.healer = healer
        self.per_pacs = per_pacs
        self.associations = associations
        self._worker = PeriodicWorker("heal", self._step, interval_s=interval_s, log=log, first_wait=True)

    def _step(self) -> float | None:
        attempted = self.healer.run_pass(per_pacs=self.per_pacs, associations=self.associations)
        if attempted:
            log.info("heal pass: %d stud(ies) attempted", attempted)
        return None

    def start(self) -> HealWorker:
        self._worker.start()
        return self

    def stop(self) -> None:
        self._worker.stop()
