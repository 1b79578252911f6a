"""Final reports delivered to the hospital's RIS: a signed POST, and HL7 ORU^R01 where configured.

Runs where the hospital's RIS can be reached: on a gateway (reports that came down the sync link), in `serve`
(no hop), and on a cloud for a hospital without a gateway. `archive.downlink.queue_final` leaves one job of kind
KIND_FINAL per final report; each pass turns those into one KIND_OUT job per configured channel (the RIS URL:
the hospital's own from `ris_endpoints`, else --ris-report-url; HL7: --hl7-report-to), in one transaction, and
sends the due ones. A delivery is retried with exponential backoff (retry_base_s doubling to retry_max_s, with
jitter) and parked once it has failed for horizon_s (24 h) since its retry cycle began; `yingyun admin
ris-deliveries replay` puts it back. The RIS request is the vendor's (contract/ris_report.py), signed under the
hospital's RIS partner: the partner that registered the study, else the one partner granted that hospital alone.
Deliveries of one study on one channel go in order (an amendment never overtakes the report it amends).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import Connection, func, select, update

from ..archive.downlink import CHANNELS, HL7, KIND_FINAL, KIND_OUT, RIS, out_order_key, report_fields
from ..contract import ris_report
from ..contract.gateway_api import STUDY_ID, STUDY_UID
from ..core.crypto import Vault
from ..core.errors import Invalid, NotFound
from ..core.logging import quoted
from ..core.worker import PeriodicWorker
from ..storage import schema as s
from ..storage.db import Database
from ..storage.queue import DELIVERED, PARKED, PENDING, Job, Outcome, SqlJobQueue, enqueue
from ..tenancy import Partner, Tenancy
from .hl7 import oru

log = logging.getLogger("yingyun.delivery")

MAX_ANSWER_BYTES = 64 * 1024


@dataclass(frozen=True)
class DeliveryConfig:
    ris_url: str = ""  # --ris-report-url: every hospital's, unless it has its own (ris_endpoints)
    hl7_to: tuple[str, int] | None = None  # --hl7-report-to
    timeout_s: float = 10.0
    retry_base_s: float = 2.0
    retry_max_s: float = 600.0
    horizon_s: float = 24 * 3600.0
    poll_s: float = 0.2
    workers: int = 4


def parse_hl7_to(value: str) -> tuple[str, int] | None:
    """HOST:PORT of --hl7-report-to (None when empty); ValueError naming the form."""
    if not value:
        return None
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError("--hl7-report-to takes HOST:PORT")
    return host.strip("[]"), int(port)


@dataclass
class _Prepared:
    job: Job
    send: Callable[[], tuple[bool, str]] | None = None
    skip: Outcome | None = None


class ReportDelivery:
    """Fans out and sends final reports; `clock` is injectable for the 24-hour horizon's tests."""

    def __init__(self, *, db: Database, vault: Vault, tenancy: Tenancy, config: DeliveryConfig = DeliveryConfig(),
                 facility: str = "", clock: Callable[[], float] = time.time, http: httpx.Client | None = None,
                 rng: random.Random | None = None) -> None:
        self.db, self.vault, self.tenancy, self.config = db, vault, tenancy, config
        self.facility = facility  # MSH-4 of the ORU messages (the gateway's hospital)
        self.clock = clock
        self.queue = SqlJobQueue(db)
        self.http = http or httpx.Client(timeout=httpx.Timeout(config.timeout_s), follow_redirects=False)
        self._rng = rng or random.Random()
        self._pool = ThreadPoolExecutor(config.workers, thread_name_prefix="report-send")
        self._worker = PeriodicWorker("report-delivery", self._pass, interval_s=config.poll_s, log=log)
        self.delivered = 0

    def start(self) -> ReportDelivery:
        self._worker.start()
        return self

    def stop(self) -> None:
        self._worker.stop(timeout=self.config.timeout_s + 10)
        self._pool.shutdown(wait=True)
        self.http.close()

    def _pass(self) -> float | None:
        return 0 if self.run_once() else None

    def run_once(self) -> int:
        """Fan out what became final, send what is due and settle it; how many jobs were handled."""
        fanned = self.fan_out()
        now = self.clock()
        jobs = self.queue.claim(kind=KIND_OUT, now=now, limit=self.config.workers * 4,
                                lease_s=self.config.timeout_s * 4 + 30)
        if not jobs:
            return fanned
        prepared = self._prepare(jobs)
        outcomes = [p.skip for p in prepared if p.skip is not None]
        sending = [p for p in prepared if p.send is not None]
        results = list(self._pool.map(lambda p: self._attempt(p), sending))
        now = self.clock()
        for p, (ok, error) in zip(sending, results, strict=True):
            outcomes.append(self._outcome(p.job, ok, error, now))
        self.queue.settle(outcomes, now=now)
        self.delivered += sum(1 for o in outcomes if o.ok)
        return fanned + len(jobs)

    # -- fan out -----------------------------------------------------------------------------------------

    def channels_for(self, conn: Connection, hospital_id: str) -> list[str]:
        out = []
        if self.ris_url(conn, hospital_id):
            out.append(RIS)
        if self.config.hl7_to is not None:
            out.append(HL7)
        return out

    def ris_url(self, conn: Connection, hospital_id: str) -> str:
        own = conn.execute(select(s.ris_endpoints.c.report_url)
                           .where(s.ris_endpoints.c.hospital_id == hospital_id)).scalar()
        return str(own or self.config.ris_url)

    def fan_out(self) -> int:
        """One KIND_OUT job per channel for each final report, and the KIND_FINAL job done, in one transaction
        (a crash leaves either both or neither)."""
        now = self.clock()
        finals = self.queue.claim(kind=KIND_FINAL, now=now, limit=64, lease_s=60)
        if not finals:
            return 0
        j = s.jobs
        with self.db.write() as conn:
            for job in finals:
                p = job.payload
                channels = self.channels_for(conn, p["hospitalId"])
                if not channels:
                    log.warning("a final report of hospital %s has nowhere to go: no --ris-report-url, "
                                "no --hl7-report-to", quoted(p["hospitalId"]))
                for channel in channels:
                    enqueue(conn, kind=KIND_OUT, partition=channel, now=now,
                            payload={"channel": channel, "hospitalId": p["hospitalId"], "versionPk": p["versionPk"],
                                     "studyUid": p["studyUid"]},
                            order_key=out_order_key(channel, p["hospitalId"], p["studyUid"]))
            conn.execute(update(j).where(j.c.pk.in_([f.pk for f in finals]))
                         .values(state=DELIVERED, lease_until=None, finished_at=now, updated_at=now))
        return len(finals)

    # -- one attempt ---------------------------------------------------------------------------------------

    def _prepare(self, jobs: list[Job]) -> list[_Prepared]:
        out = []
        with self.db.read() as conn:
            for job in jobs:
                p = job.payload
                report = report_fields(conn, self.vault, int(p["versionPk"]))
                if report is None:
                    out.append(_Prepared(job, skip=Outcome(job.pk, False, "the report no longer exists", None)))
                    continue
                try:
                    if p["channel"] == RIS:
                        out.append(_Prepared(job, send=self._ris_request(conn, job, report)))
                    else:
                        out.append(_Prepared(job, send=self._hl7_request(conn, job, report)))
                except _NotDeliverable as e:
                    out.append(_Prepared(job, send=_failing(str(e))))  # retried: the configuration may change
        return out

    def _ris_request(self, conn: Connection, job: Job, report: dict[str, Any]) -> Callable[[], tuple[bool, str]]:
        p = job.payload
        url = self.ris_url(conn, p["hospitalId"])
        if not url:
            raise _NotDeliverable("no RIS URL for this hospital any more (--ris-report-url)")
        partner = self.ris_partner(conn, p["hospitalId"], report.get(STUDY_ID))
        payload = ris_report.body(report, study_uid=p["studyUid"])

        def send() -> tuple[bool, str]:
            content, headers = ris_report.request(app_id=partner.app_id, token=partner.token, event_id=job.event_id,
                                                  payload=payload, now=time.time())
            with self.http.stream("POST", url, content=content, headers=headers) as r:
                data = b""
                for chunk in r.iter_bytes():
                    data += chunk
                    if len(data) > MAX_ANSWER_BYTES:
                        break
                return ris_report.accepted(r.status_code, data[:MAX_ANSWER_BYTES])

        return send

    def ris_partner(self, conn: Connection, hospital_id: str, study_id: Any) -> Partner:
        """The partner the RIS signs its own requests with: the one that registered the study, else the one
        enabled partner granted this hospital alone."""
        g, st, v = s.partner_grants.c, s.studies.c, s.study_versions.c
        app_ids = [str(a) for a in conn.execute(select(g.app_id).where(g.kind == "hospital", g.target_id == hospital_id)
                                                .order_by(g.app_id)).scalars()]
        candidates = [pt for pt in (self.tenancy.partner(a) for a in app_ids)
                      if pt is not None and pt.enabled and pt.tokens and pt.hospitals == {hospital_id}
                      and not pt.unions]
        if study_id:
            source = conn.execute(select(v.source).select_from(s.study_versions.join(s.studies, st.pk == v.study_pk))
                                  .where(st.hospital_id == hospital_id, st.study_id == str(study_id))
                                  .order_by(v.pk.desc()).limit(1)).scalar()
            for pt in candidates:
                if pt.app_id == source:
                    return pt
        if len(candidates) == 1:
            return candidates[0]
        raise _NotDeliverable(f"hospital {hospital_id} has {'no' if not candidates else 'more than one'} RIS partner "
                              "(an enabled partner granted that hospital alone) to sign with")

    def _hl7_request(self, conn: Connection, job: Job, report: dict[str, Any]) -> Callable[[], tuple[bool, str]]:
        to = self.config.hl7_to
        if to is None:
            raise _NotDeliverable("HL7 is not configured any more (--hl7-report-to)")
        p = job.payload
        st = s.studies.c
        row = conn.execute(select(st.patient_id, st.patient_name, st.patient_sex)
                           .where(st.hospital_id == p["hospitalId"], st.study_id == str(report.get(STUDY_ID, "")))
                           ).first()
        patient = oru.Patient() if row is None else oru.Patient(row.patient_id or "", row.patient_name or "",
                                                                row.patient_sex or "")
        control_id = job.event_id[:20]
        message = oru.oru_r01(report, study_uid=p["studyUid"], control_id=control_id, patient=patient,
                              sending_facility=self.facility or p["hospitalId"])
        return lambda: oru.send(message, host=to[0], port=to[1], control_id=control_id,
                                timeout_s=self.config.timeout_s)

    def _attempt(self, p: _Prepared) -> tuple[bool, str]:
        assert p.send is not None
        try:
            return p.send()
        except httpx.TimeoutException:
            return False, f"timed out after {self.config.timeout_s:g} s"
        except httpx.HTTPError as e:
            return False, f"{type(e).__name__}: {str(e)[:200]}"
        except Exception as e:  # noqa: BLE001 - a delivery must never kill the worker
            log.exception("report delivery %d failed unexpectedly", p.job.pk)
            return False, f"internal: {type(e).__name__}"

    def _outcome(self, job: Job, ok: bool, error: str, now: float) -> Outcome:
        if ok:
            return Outcome(job.pk, True)
        channel = job.payload.get("channel")
        if now - job.started_at >= self.config.horizon_s:
            log.warning("report delivery %d (%s) parked after %d attempts: %s", job.pk, channel, job.attempts,
                        quoted(error))
            return Outcome(job.pk, False, error, None)
        delay = min(self.config.retry_base_s * 2 ** max(job.attempts - 1, 0), self.config.retry_max_s)
        return Outcome(job.pk, False, error, now + delay * (0.9 + self._rng.random() * 0.2))


def _failing(why: str) -> Callable[[], tuple[bool, str]]:
    return lambda: (False, why)


class _NotDeliverable(Exception):
    """Nothing to send to (or sign with) right now: an attempt that failed, retried like any other."""


# -- a hospital's own RIS URL (`yingyun admin hospital ris-report-url`) ------------------------------------------

def set_ris_url(db: Database, *, hospital_id: str, url: str | None) -> None:
    """The URL this hospital's final reports are POSTed to, over --ris-report-url (None: back to that)."""
    if url is not None and (not url.startswith(("http://", "https://")) or len(url) > 2000):
        raise Invalid("the RIS report URL is an http:// or https:// URL", field="url")
    e = s.ris_endpoints
    with db.write() as conn:
        if conn.execute(select(s.hospitals.c.id).where(s.hospitals.c.id == hospital_id)).first() is None:
            raise NotFound(f"no hospital {hospital_id!r}", subject="hospital")
        conn.execute(e.delete().where(e.c.hospital_id == hospital_id))
        if url is not None:
            conn.execute(e.insert().values(hospital_id=hospital_id, report_url=url, updated_at=time.time()))


def ris_urls(db: Database) -> dict[str, str]:
    e = s.ris_endpoints.c
    with db.read() as conn:
        return {str(h): str(u) for h, u in conn.execute(select(e.hospital_id, e.report_url).order_by(e.hospital_id))}


# -- what `yingyun admin ris-deliveries` and /metrics show ----------------------------------------------------

def delivery_rows(db: Database, *, show: Callable[[float], str],
                  states: list[str] | None = None) -> list[dict[str, Any]]:
    """One row per delivery: no patient identifier (the study's UID and the hospital say which)."""
    out = []
    for j in SqlJobQueue(db).list(kind=KIND_OUT, states=states):
        p = j.payload
        out.append({"id": j.pk, "eventId": j.event_id, "channel": p.get("channel"), "hospitalId": p.get("hospitalId"),
                    STUDY_UID: p.get("studyUid"), "state": j.state, "attempts": j.attempts, "lastError": j.last_error,
                    "nextAttemptAt": show(j.next_attempt_at) if j.state == PENDING else None,
                    "createdAt": show(j.created_at), "finishedAt": show(j.finished_at) if j.finished_at else None})
    return out


def delivery_counts(conn: Connection) -> dict[tuple[str, str], int]:
    """(channel, state) -> deliveries, every channel and state present (0 when none); final reports not yet
    fanned out count as pending on no channel."""
    j = s.jobs.c
    out = {(c, st): 0 for c in CHANNELS for st in (PENDING, PARKED, DELIVERED)}
    for channel, state, n in conn.execute(select(j.partition, j.state, func.count()).where(j.kind == KIND_OUT)
                                          .group_by(j.partition, j.state)):
        out[(str(channel), str(state))] = int(n)
    return out


def pending_finals(conn: Connection) -> int:
    j = s.jobs.c
    return int(conn.execute(select(func.count()).where(j.kind == KIND_FINAL, j.state == PENDING)).scalar_one())
