"""Delivering status callbacks: at least once, in order per study, never blocking anyone.

One background thread claims due callback jobs from the durable queue and
hands them to a pool of sender threads; outcomes are written back in
batches. What keeps one partner from hurting the others or the ingest:

* ingest only writes a queue row (in its own transaction); sending happens
  here, on other threads and connections;
* each partner has at most `per_partner` requests in flight, each bounded by
  `timeout_s`, and the queue hands out no more than that per partner;
* a partner whose endpoint fails is rested (1 s, doubling to 5 min) while
  the others carry on; its jobs wait in the queue.

A failed job is retried with exponential backoff (base doubling, capped),
and parked once a failure happens `horizon_s` (>= 24 h) after its retry
cycle began; an operator replays parked jobs (`yingyun admin callbacks
replay`). Every attempt of one job carries the same `eventId` header, a
fresh timestamp and signature, the partner's current token, and links
minted (or reused) for the partner at sending time.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx
import orjson

from ...contract import callbacks as cb
from ...contract import hospital_api as hc
from ...core.crypto import Vault
from ...core.logging import quoted
from ...core.worker import PeriodicWorker
from ...storage import schema as s
from ...storage.db import Database
from ...storage.queue import Job, Outcome, SqlJobQueue
from ...tenancy import Tenancy
from ..hospital_api import patients
from .config import DeliveryConfig
from .events import KIND

log = logging.getLogger("yingyun.callbacks")

MAX_ANSWER_BYTES = 64 * 1024


@dataclass
class _Prepared:
    job: Job
    url: str | None = None
    body: dict[str, Any] | None = None
    token: str | None = None
    skip: Outcome | None = None


class CallbackDispatcher:
    """Claims due callbacks in batches and sends them, `per_partner` at a time per partner.

    Each partner has a local backlog of claimed jobs (up to `PREFETCH` times
    its concurrency) and at most `per_partner` sender chains: a chain sends a
    job, then takes the partner's next one, and stops when the backlog is
    empty or a send fails. Sender threads are only ever busy with a request
    in flight, so a slow partner holds `per_partner` threads at most.
    """

    PREFETCH = 4

    def __init__(self, *, db: Database, vault: Vault, tenancy: Tenancy, queue: SqlJobQueue, public_url: str,
                 link_lifetime_s: float, config: DeliveryConfig = DeliveryConfig(),
                 clock: Callable[[], float] = time.time, http: httpx.Client | None = None) -> None:
        self.db = db
        self.vault = vault
        self.tenancy = tenancy
        self.queue = queue
        self.public_url = public_url
        self.link_lifetime_s = link_lifetime_s
        self.config = config
        self.clock = clock
        self.http = http or httpx.Client(timeout=httpx.Timeout(config.timeout_s), follow_redirects=False,
                                         limits=httpx.Limits(max_connections=config.workers * 2,
                                                             max_keepalive_connections=config.workers))
        self._pool = ThreadPoolExecutor(config.workers, thread_name_prefix="callback-send")
        self._lock = threading.Lock()
        self._held: dict[str, int] = {}  # claimed, not yet settled or released
        self._backlog: dict[str, deque[_Prepared]] = {}
        self._active: dict[str, int] = {}  # sender chains running
        self._done: list[tuple[Job, bool, str]] = []
        self._rest_until: dict[str, float] = {}
        self._failures: dict[str, int] = {}
        self._worker = PeriodicWorker("callbacks", self._pass, interval_s=config.poll_s, log=log)
        self._next_purge = 0.0  # time.monotonic() of the next purge of delivered jobs
        self.delivered = 0

    # -- life cycle --------------------------------------------------------------

    def start(self) -> CallbackDispatcher:
        self._worker.start()
        return self

    def stop(self) -> None:
        self._worker.stop(timeout=self.config.timeout_s + 10)
        with self._lock:
            leftover = [p.job.pk for q in self._backlog.values() for p in q]
            for q in self._backlog.values():
                q.clear()
        self._pool.shutdown(wait=True, cancel_futures=False)
        self._settle()
        self.queue.release(leftover, now=self.clock())
        self.http.close()

    def wake(self) -> None:
        self._worker.wake()

    def _pass(self) -> float | None:
        """One round: settle what was answered, claim and send what is due; idle for poll_s when neither."""
        if time.monotonic() >= self._next_purge:
            self._next_purge = time.monotonic() + 600
            purged = self.queue.purge(kind=KIND, finished_before=self.clock() - self.config.keep_delivered_s)
            if purged:
                log.info("purged %d delivered callbacks", purged)
        with self._lock:
            waiting, active = len(self._done), sum(self._active.values())
        if 0 < waiting < self.config.per_partner and active:
            time.sleep(0.002)  # let a few more answers arrive: one transaction settles them all
        settled = self._settle()
        claimed = self._round()
        return 0 if claimed or settled else None

    def drain(self, *, timeout: float = 30.0) -> None:
        """Run rounds until nothing is due or in flight (tests and benchmarks; not with start())."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            settled = self._settle()
            claimed = self._round()
            with self._lock:
                busy = sum(self._held.values())
            if not claimed and not settled and not busy:
                return
            if not claimed and not settled:
                self._worker.wait(0.005)
        raise TimeoutError("callbacks still in flight")

    # -- one round ---------------------------------------------------------------

    def _round(self) -> int:
        now = self.clock()
        resting = {app for app, until in self._rest_until.items() if until > now}
        with self._lock:
            held = {k: v for k, v in self._held.items() if v}
        room = self.config.workers * self.PREFETCH - sum(held.values())
        if room <= 0:
            return 0
        lease = self.config.timeout_s * (self.PREFETCH + 2) + 30
        jobs = self.queue.claim(kind=KIND, now=now, limit=room, lease_s=lease,
                                per_partition=self.config.per_partner * self.PREFETCH, busy=held, exclude=resting)
        if not jobs:
            return 0
        prepared = self._prepare(jobs, now)
        skipped = [p.skip for p in prepared if p.skip is not None]
        if skipped:
            self.queue.settle(skipped, now=now)
        apps = set()
        with self._lock:
            for p in prepared:
                if p.skip is None:
                    app = p.job.partition or ""
                    self._held[app] = self._held.get(app, 0) + 1
                    self._backlog.setdefault(app, deque()).append(p)
                    apps.add(app)
        for app in apps:
            self._pump(app)
        return len(jobs)

    def _pump(self, app: str) -> None:
        """Start sender chains for `app` up to its concurrency."""
        with self._lock:
            backlog = self._backlog.get(app)
            while backlog and self._active.get(app, 0) < self.config.per_partner:
                p = backlog.popleft()
                self._active[app] = self._active.get(app, 0) + 1
                self._pool.submit(self._chain, app, p)

    def _chain(self, app: str, first: _Prepared) -> None:
        p: _Prepared | None = first
        while p is not None:
            ok, error = self._send(p)
            with self._lock:
                self._done.append((p.job, ok, error))
                backlog = self._backlog.get(app)
                if ok and backlog and not self._worker.stopping:
                    p = backlog.popleft()
                else:
                    self._active[app] -= 1
                    p = None
            self._worker.wake()

    def _prepare(self, jobs: list[Job], now: float) -> list[_Prepared]:
        """Bodies of the batch's requests: a few queries for the whole batch, links minted
        (or reused) in one transaction."""
        st = s.studies
        with self.db.write() as conn:
            pks = sorted({int(j.payload["studyPk"]) for j in jobs})
            rows = {r.pk: r for r in conn.execute(
                patients.enriched(st.c.pk.in_(pks), extra=(st.c.deleted, st.c.identity_enc)))}
            views = {pk: patients.view_of(r) for pk, r in rows.items() if not r.deleted}
            by_app: dict[str, list[patients.StudyView]] = {}
            for job in jobs:
                v = views.get(int(job.payload["studyPk"]))
                if v is not None:
                    by_app.setdefault(job.payload["appId"], []).append(v)
            links: dict[tuple[str, str, str], str] = {}
            for app_id, vs in by_app.items():
                found = patients.reusable_links(conn, self.vault, app_id=app_id, doctor=False, studies=vs, now=now,
                                                lifetime=self.link_lifetime_s)
                missing = sorted({(v.hospital_id, v.study_id) for v in vs} - set(found))
                found.update(patients.mint_links(conn, self.vault, app_id=app_id, doctor=False, keys=missing, now=now,
                                                 lifetime=self.link_lifetime_s))
                links.update({(app_id, *k): path for k, path in found.items()})
        out = []
        identities: dict[int, dict[str, Any]] = {}
        for job in jobs:
            p = job.payload
            app_id = p["appId"]
            partner = self.tenancy.partner(app_id)
            if partner is None or not partner.enabled or not partner.callback_url or not partner.tokens:
                why = "partner removed" if partner is None else "partner disabled" if not partner.enabled else \
                    "partner has no callback URL"
                out.append(_Prepared(job, skip=Outcome(job.pk, False, why, None)))
                continue
            row = rows.get(int(p["studyPk"]))
            view = views.get(int(p["studyPk"]))
            if row is None or view is None or view.study_id != p["studyId"]:
                # Deleted by the hospital: nothing about it goes out any more.
                out.append(_Prepared(job, skip=Outcome(job.pk, True, None)))
                continue
            if row.pk not in identities:
                plain = self.vault.decrypt(row.identity_enc) if row.identity_enc is not None else None
                identities[row.pk] = orjson.loads(plain) if plain else {}
            identity = identities[row.pk]
            h5, detail = patients.urls(self.public_url, links[(app_id, view.hospital_id, view.study_id)])
            phone = identity.get(hc.RIS_PHONE)
            id_card = identity.get(hc.RIS_ID_CARD)
            body = cb.body(
                status=int(p["status"]), phone=phone if isinstance(phone, str) else None,
                id_card=id_card if isinstance(id_card, str) else None, token=partner.token,
                patient_id=view.patient_id or "", hospital_id=view.hospital_id, his_id=view.his_id,
                study_type=view.study_type, study_date=view.study_date, study_id=view.study_id,
                body_part=view.body_part, study_name=view.study_name, h5_url=h5, h5_detail_url=detail,
                report_id=p.get("reportId", ""), critical=bool(p.get("critical")),
            )
            out.append(_Prepared(job, url=partner.callback_url, body=body, token=partner.token))
        return out

    def _send(self, p: _Prepared) -> tuple[bool, str]:
        job = p.job
        try:
            content, headers = cb.request(app_id=job.partition or "", token=p.token or "", event_id=job.event_id,
                                          payload=p.body or {}, now=time.time())
            with self.http.stream("POST", p.url or "", content=content, headers=headers) as r:
                data = b""
                for chunk in r.iter_bytes():
                    data += chunk
                    if len(data) > MAX_ANSWER_BYTES:
                        break
                return cb.accepted(r.status_code, data[:MAX_ANSWER_BYTES])
        except httpx.TimeoutException:
            return False, f"timed out after {self.config.timeout_s:g} s"
        except httpx.HTTPError as e:
            return False, f"{type(e).__name__}: {str(e)[:200]}"
        except Exception as e:  # noqa: BLE001 - a delivery must never kill the worker
            log.exception("callback %s failed unexpectedly", job.event_id)
            return False, f"internal: {type(e).__name__}"

    def _settle(self) -> int:
        with self._lock:
            done, self._done = self._done, []
        if not done:
            return 0
        now = self.clock()
        outcomes = []
        failed_apps: dict[str, str] = {}
        for job, ok, error in done:
            app = job.partition or ""
            if ok:
                outcomes.append(Outcome(job.pk, True))
                self._failures.pop(app, None)
                self._rest_until.pop(app, None)
                continue
            if now - job.started_at >= self.config.horizon_s:
                outcomes.append(Outcome(job.pk, False, error, None))
                log.warning("callback %s to %s parked after %d attempts: %s", job.event_id, app, job.attempts,
                            quoted(error))
            else:
                delay = min(self.config.retry_base_s * 2 ** max(job.attempts - 1, 0), self.config.retry_max_s)
                outcomes.append(Outcome(job.pk, False, error, now + delay * random.uniform(0.9, 1.1)))
            failed_apps[app] = error
        released: list[int] = []
        with self._lock:
            for job, _, _ in done:
                app = job.partition or ""
                self._held[app] = max(0, self._held.get(app, 0) - 1)
            for app in failed_apps:
                # The partner is failing: give its waiting jobs back until its rest is over.
                backlog = self._backlog.get(app)
                while backlog:
                    released.append(backlog.popleft().job.pk)
                    self._held[app] = max(0, self._held.get(app, 0) - 1)
        self.queue.settle(outcomes, now=now)
        self.queue.release(released, now=now)
        for app, error in failed_apps.items():
            n = self._failures.get(app, 0) + 1
            self._failures[app] = n
            self._rest_until[app] = now + min(2 ** (n - 1), self.config.rest_max_s)
            parked = self.queue.park_stale(kind=KIND, partition=app, started_before=now - self.config.horizon_s,
                                           error=f"partner failing for {self.config.horizon_s / 3600:g} h: {error}",
                                           now=now)
            if parked:
                log.warning("parked %d callbacks of %s: failing for too long", parked, app)
        self.delivered += sum(1 for o in outcomes if o.ok)
        return len(done)
