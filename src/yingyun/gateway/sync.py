"""Store-and-forward from the hospital gateway to the cloud (docs/sync.md).

`outbox.SyncEvents` puts a job in the shared job queue (kind "sync") in the
same transaction that accepts a record or an instance. `SyncWorker` reads
what a job references (a version row, a link row, a blob key) and forwards
due jobs in batches, settles them by the cloud's
per-item answer, and backs off exponentially with jitter while the cloud
is unreachable, for as long as it takes. A job is parked only when the
cloud refuses it.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import httpx
import orjson
from sqlalchemy import Connection, func, select

from ..contract import sync as proto
from ..core.crypto import Vault
from ..storage import schema as s
from ..storage.blobs import BlobStore
from ..storage.db import Database
from ..storage.queue import DELIVERED, PARKED, PENDING, Job, Outcome, SqlJobQueue, jobs
from .outbox import KIND, SyncEvents, instance_hook  # noqa: F401 - re-exported
from ..web.multipart import build_related

log = logging.getLogger("yingyun.sync")

MAX_BACKOFF_S = 600.0
BATCH_RECORDS = 64
BATCH_INSTANCES = 32
BATCH_BYTES = 16 * 2**20


def backoff(attempts: int, rng: random.Random = random.Random()) -> float:
    """Seconds to wait before the next attempt: 1 s doubling to 10 min, with jitter."""
    base = min(MAX_BACKOFF_S, 2.0 ** max(0, attempts - 1))
    return base * (0.5 + rng.random() / 2)


class SyncWorker:
    """Forwards the outbox to the cloud. `clock` is injectable for tests of long outages."""

    def __init__(self, *, db: Database, vault: Vault, blobs: BlobStore, queue: SqlJobQueue, cloud_url: str,
                 gateway_id: str, gateway_key: str, clock: Callable[[], float] = time.time,
                 client: httpx.Client | None = None, idle_s: float = 0.2) -> None:
        self.db, self.vault, self.blobs, self.queue = db, vault, blobs, queue
        self.cloud_url = cloud_url.rstrip("/")
        self.gateway_id, self.gateway_key = gateway_id, gateway_key
        self.clock = clock
        self.client = client or httpx.Client(timeout=httpx.Timeout(60.0, connect=5.0))
        self.idle_s = idle_s
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="sync-send")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sync-worker", daemon=True)

    def start(self) -> "SyncWorker":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        self._pool.shutdown(wait=True)
        self.client.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                worked = self.run_once()
            except Exception:
                log.exception("sync pass failed; retrying")
                worked = 0
            if not worked:
                self._stop.wait(self.idle_s)

    # -- one pass -------------------------------------------------------------

    def run_once(self) -> int:
        now = self.clock()
        batch = self.queue.claim(kind=KIND, now=now, limit=BATCH_RECORDS + 4 * BATCH_INSTANCES, lease_s=120.0)
        if not batch:
            return 0
        records = [j for j in batch if j.payload["kind"] != "instance"]
        instances = [j for j in batch if j.payload["kind"] == "instance"]
        outcomes: list[Outcome] = []
        chunks = []
        while instances:
            chunk, size = [], 0
            while instances and len(chunk) < BATCH_INSTANCES and (not chunk or size + instances[0].payload["size"] <= BATCH_BYTES):
                job = instances.pop(0)
                chunk.append(job)
                size += job.payload["size"]
            chunks.append(chunk)
        # Records go in order on this thread; instance batches go side by side,
        # so the link's round trips and the cloud's fsyncs overlap.
        pending_chunks = [self._pool.submit(self._send_instances, c) for c in chunks]
        if records:
            outcomes += self._send_records(records)
        for f in pending_chunks:
            outcomes += f.result()
        self.queue.settle(outcomes, now=self.clock())
        return len(batch)

    def _post(self, path: str, body: bytes, content_type: str, extra: dict | None = None) -> httpx.Response:
        headers = {"Content-Type": content_type, **proto.signed_headers(self.gateway_id, self.gateway_key, body,
                                                                          now=time.time()), **(extra or {})}
        return self.client.post(self.cloud_url + path, content=body, headers=headers)

    def _retry(self, jobs_: list[Job], error: str) -> list[Outcome]:
        now = self.clock()
        return [Outcome(j.pk, False, error, now + backoff(j.attempts)) for j in jobs_]

    def _settle_by_answer(self, jobs_: list[Job], response: httpx.Response) -> list[Outcome]:
        if response.status_code >= 500 or response.status_code in (401, 408, 413, 429):
            return self._retry(jobs_, f"cloud answered HTTP {response.status_code}")
        if response.status_code != 200:
            return self._retry(jobs_, f"cloud answered HTTP {response.status_code}: {response.text[:200]}")
        results = {r["eventId"]: r for r in response.json().get("results", [])}
        out = []
        for j in jobs_:
            r = results.get(j.event_id)
            if r is None:
                out.extend(self._retry([j], "no answer for this item"))
            elif r["status"] in (proto.APPLIED, proto.DUPLICATE):
                out.append(Outcome(j.pk, True))
            else:
                log.warning("cloud refused sync job %d (%s): parked", j.pk, j.payload["kind"])
                out.append(Outcome(j.pk, False, r.get("error", "refused by the cloud"), None))
        return out

    def _send_records(self, jobs_: list[Job]) -> list[Outcome]:
        items, missing = [], []
        with self.db.read() as conn:
            for j in jobs_:
                item = self._record(conn, j)
                (items if item is not None else missing).append(item or j)
        outcomes = [Outcome(j.pk, False, "the record no longer exists at the gateway", None) for j in missing]
        if not items:
            return outcomes
        body = orjson.dumps({"records": items})
        try:
            response = self._post(proto.PATH_RECORDS, body, "application/json")
        except httpx.HTTPError as e:
            return outcomes + self._retry([j for j in jobs_ if j not in missing], f"cloud unreachable: {type(e).__name__}")
        return outcomes + self._settle_by_answer([j for j in jobs_ if j not in missing], response)

    def _record(self, conn: Connection, job: Job) -> dict | None:
        p = job.payload
        kind = p["kind"]
        if kind in ("study", "delete"):
            row = conn.execute(select(s.study_versions).where(s.study_versions.c.pk == p["versionPk"])).first()
            if row is None:
                return None
            body, at, source = orjson.loads(self.vault.decrypt_bytes(row.raw_enc)), row.received_at, row.source
        elif kind == "report":
            row = conn.execute(select(s.report_versions).where(s.report_versions.c.pk == p["versionPk"])).first()
            if row is None:
                return None
            body, at, source = orjson.loads(self.vault.decrypt_bytes(row.raw_enc)), row.received_at, row.source
        elif kind == "reconcile":
            row = conn.execute(select(s.reconcile_logs).where(s.reconcile_logs.c.pk == p["logPk"])).first()
            if row is None:
                return None
            body, at, source = orjson.loads(self.vault.decrypt_bytes(row.raw_enc)), row.received_at, row.source
            kind = "reconcile" if row.kind == "study" else "reconcile-range"
        elif kind == "link":
            row = conn.execute(select(s.links).where(s.links.c.pk == p["linkPk"])).first()
            if row is None:
                return None
            body = {"tokenHash": row.token_hash, "studyId": row.study_id, "expiresAt": row.expires_at,
                    "revokedAt": row.revoked_at}
            at, source = row.created_at, row.created_by
        else:
            return None
        return {"eventId": job.event_id, "kind": kind, "receivedAt": at, "source": source, "body": body}

    def _send_instances(self, jobs_: list[Job]) -> list[Outcome]:
        parts, gone = [], []
        for j in jobs_:
            try:
                with self.blobs.open(j.payload["blobKey"]) as f:
                    parts.append(({"Content-ID": f"<{j.event_id}>"}, f.read()))
            except KeyError:
                gone.append(j)
        outcomes = [Outcome(j.pk, False, "the stored file is missing at the gateway", None) for j in gone]
        live = [j for j in jobs_ if j not in gone]
        if not live:
            return outcomes
        content_type, body = build_related(parts)
        try:
            response = self._post(proto.PATH_INSTANCES, body, content_type)
        except httpx.HTTPError as e:
            return outcomes + self._retry(live, f"cloud unreachable: {type(e).__name__}")
        return outcomes + self._settle_by_answer(live, response)


def sync_status(db: Database, *, now: float | None = None) -> dict:
    """What `yingyun admin sync --json` prints."""
    now = time.time() if now is None else now
    j = jobs
    with db.read() as conn:
        pending = conn.execute(select(j.c.payload, j.c.created_at).where(j.c.kind == KIND, j.c.state == PENDING)).all()
        parked = conn.execute(select(func.count()).where(j.c.kind == KIND, j.c.state == PARKED)).scalar_one()
        last_ok = conn.execute(select(func.max(j.c.finished_at)).where(j.c.kind == KIND, j.c.state == DELIVERED)).scalar()
        last_err = conn.execute(select(j.c.last_error).where(j.c.kind == KIND, j.c.last_error.is_not(None))
                                .order_by(j.c.updated_at.desc()).limit(1)).scalar()
    records = instances = size = 0
    oldest = None
    for payload, created in pending:
        p = orjson.loads(payload)
        if p["kind"] == "instance":
            instances += 1
            size += int(p.get("size", 0))
        else:
            records += 1
        oldest = created if oldest is None else min(oldest, created)
    return {
        "pending": {"records": records, "instances": instances, "bytes": size},
        "parked": parked,
        "oldestPendingSeconds": round(now - oldest, 3) if oldest is not None else 0,
        "lastSuccessAt": _iso(last_ok) if last_ok else None,
        "lastError": last_err,
    }


def _iso(ts: float) -> str:
    from datetime import datetime, timezone

    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def purge_spool(*, db: Database, blobs: BlobStore, spool_days: float, now: float | None = None,
                batch: int = 500) -> int:
    """Free the space of instances forwarded more than `spool_days` ago.

    Only delivered jobs are considered, so an instance the cloud has not
    acknowledged is never removed. The delivered job rows go too: their
    history has served its purpose. Returns how many files were freed.
    """
    now = time.time() if now is None else now
    cutoff = now - spool_days * 86400
    freed = 0
    while True:
        with db.read() as conn:
            rows = conn.execute(
                select(jobs.c.pk, jobs.c.payload)
                .where(jobs.c.kind == KIND, jobs.c.state == DELIVERED, jobs.c.finished_at < cutoff)
                .order_by(jobs.c.pk).limit(batch)
            ).all()
        if not rows:
            return freed
        for _pk, payload in rows:
            p = orjson.loads(payload)
            if p.get("kind") == "instance":
                blobs.delete(p["blobKey"])
                freed += 1
        with db.write() as conn:
            conn.execute(jobs.delete().where(jobs.c.pk.in_([r.pk for r in rows])))
        if len(rows) < batch:
            return freed


class SpoolPurger:
    """Runs purge_spool every hour."""

    def __init__(self, *, db: Database, blobs: BlobStore, spool_days: float, interval_s: float = 3600.0) -> None:
        self.db, self.blobs, self.spool_days, self.interval_s = db, blobs, spool_days, interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="spool-purger", daemon=True)

    def start(self) -> "SpoolPurger":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                freed = purge_spool(db=self.db, blobs=self.blobs, spool_days=self.spool_days)
                if freed:
                    log.info("spool: freed %d forwarded instances older than %g days", freed, self.spool_days)
            except Exception:
                log.exception("spool purge failed; retrying later")
