"""Store-and-forward from the hospital gateway to the cloud (docs/sync.md).

`outbox.SyncEvents` puts a job in the shared job queue (kind "sync") in the
same transaction that accepts a record or an instance. `SyncWorker` reads
what a job references (a version row, a link row, a blob key) and forwards
due jobs in batches, settles them by the cloud's
per-item answer, and backs off exponentially with jitter while the cloud
is unreachable, for as long as it takes. A job is parked only when the
cloud refuses it for good: it answers `rejected`, or HTTP 413 to a request
of that job alone (on a 413 the batches shrink first). A large instance is
streamed from its blob, never read whole.
"""

from __future__ import annotations

import hashlib
import io
import logging
import random
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any, BinaryIO

import httpx
import orjson
from sqlalchemy import Connection, select

from ..archive.downlink import apply_down
from ..contract import sync as proto
from ..contract.envelope import ContractError
from ..core.crypto import Vault
from ..core.dicom import build_file_meta
from ..core.errors import YingyunError
from ..core.times import UTC, Zone
from ..core.worker import PeriodicWorker
from ..storage import blobjournal
from ..storage import schema as s
from ..storage.blobs import BlobStore
from ..storage.db import Database
from ..storage.queue import DELIVERED, PARKED, Job, Outcome, SqlJobQueue
from ..storage.schema import jobs
from ..web.multipart import new_boundary, related_length, related_type, write_related
from .outbox import (  # noqa: F401
    INSTANCE, KIND, SyncEvents, instance_hook, outbox_counts, outbox_report, resend_wanted)
# (SyncEvents, instance_hook: re-exported)

log = logging.getLogger("yingyun.sync")

MAX_BACKOFF_S = 600.0
# While the cloud is unreachable the worker sends nothing and only probes it, at
# most this far apart: the backlog starts moving within this long of its return.
LINK_PROBE_MAX_S = 15.0
BATCH_RECORDS = 64
BATCH_INSTANCES = 32
BATCH_BYTES = 16 * 2**20  # an instance larger than this goes alone, streamed from its blob
PART_FRAMING = 128  # bytes of multipart framing per instance at most (delimiter, Content-Type, Content-ID)
IN_FLIGHT = 4  # requests to the cloud at once
STREAM_CHUNK = 2**20
PARKED_SHOWN = 20  # parked items `admin sync --json` lists (all: `admin sync list --parked`)


_JITTER = random.Random()  # one generator for every caller that brings none


def backoff(attempts: int, rng: random.Random = _JITTER) -> float:
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
        self._pool = ThreadPoolExecutor(max_workers=IN_FLIGHT + 2, thread_name_prefix="sync-send")
        self._worker = PeriodicWorker("sync-worker", self._pass, interval_s=idle_s, log=log)
        self._answered = threading.Condition()
        self._in_flight = 0
        self._link_lock = threading.Lock()
        self._link_failures = 0  # consecutive requests the cloud did not take (unreachable, 5xx, 401…)
        self._link_retry_at = 0.0  # time.monotonic() of the next probe while it is down
        # Bytes per instance request: lowered to what the cloud (or a proxy before it) accepts
        # when it answers HTTP 413, so the batches that follow fit.
        self.batch_bytes = BATCH_BYTES
        # time.monotonic() of the next outbox report to the cloud: every OUTBOX_REPORT_S, and at once
        # when the link comes back (the cloud learns the backlog before it drains) and when it has drained.
        self._report_at = 0.0
        self._sent_since_report = False
        # Final reports coming down (PATH_DOWN): asked every DOWN_POLL_S; the ids stored of the last answer are
        # acknowledged in the next request (kept in memory: a lost one is offered again and found held).
        self._down_at = 0.0
        self._down_ack: list[str] = []

    def start(self) -> SyncWorker:
        self._worker.start()
        return self

    def stop(self) -> None:
        self._worker.stop(timeout=30)
        self._pool.shutdown(wait=True)
        self.client.close()

    def _pass(self) -> float | None:
        """Keep up to IN_FLIGHT requests going: a new batch is claimed as soon as one is
        answered, so the cloud never waits for the gateway to settle and claim (claiming
        is safe to overlap: a record waits in the queue until the older ones of its study
        are settled, and leased jobs are not claimed twice). Idle for idle_s when there
        is nothing to send, or when a claim failed."""
        if not self._link_ready():
            return 0
        if time.monotonic() >= self._report_at:
            self._report_at = time.monotonic() + proto.OUTBOX_REPORT_S
            self.report_outbox()
        if time.monotonic() >= self._down_at:
            self._down_at = time.monotonic() + proto.DOWN_POLL_S
            self.pull_down()
        with self._answered:
            while self._in_flight >= IN_FLIGHT and not self._worker.stopping:
                self._answered.wait(0.5)
            free = IN_FLIGHT - self._in_flight
        if free <= 0:
            return 0
        tasks = self._claim(free)
        with self._answered:
            if tasks:
                self._sent_since_report = True
            elif self._sent_since_report and not self._in_flight:  # drained: say so now, not in 30 s
                self._sent_since_report, self._report_at = False, 0.0
            self._in_flight += len(tasks)  # may pass IN_FLIGHT by a batch: the next claim waits
        for task in tasks:
            self._pool.submit(self._run_task, task)
        return 0 if tasks else None

    def _link_ready(self) -> bool:
        """True when the cloud is taking requests, as far as we know; while it is not,
        waits for the next probe time and probes (one small signed request)."""
        with self._link_lock:
            failures, wait = self._link_failures, self._link_retry_at - time.monotonic()
        if not failures:
            return True
        if wait > 0:
            self._worker.wait(min(wait, 1.0))
            return False
        try:
            self._post(proto.PATH_HELLO, b"{}", "application/json")  # the link state follows the answer
        except httpx.HTTPError:
            pass
        return False  # settled on the next turn

    def report_outbox(self) -> bool:
        """Tell the cloud what waits here (its gauges show it per gateway); True when it took it.
        A report that does not arrive is simply replaced by the next one."""
        body = orjson.dumps(outbox_report(self.db, now=self.clock()))
        try:
            response = self._post(proto.PATH_OUTBOX, body, "application/json")
        except httpx.HTTPError:
            return False
        if response.status_code != 200:
            log.warning("the cloud did not take the outbox report: HTTP %d", response.status_code)
            return False
        try:
            wanted = proto.wanted_of(orjson.loads(response.content))
        except ValueError:
            log.warning("the cloud's answer to the outbox report is not one: ignored")
            return True
        queued = resend_wanted(self.db, self.blobs, self.queue, wanted)
        if wanted:
            log.info("the cloud asked for %d damaged objects again: %d queued", len(wanted), queued)
        return True

    def pull_down(self) -> int:
        """Ask the cloud for the final reports waiting for this gateway's hospital, store each durably (and queue
        it for the RIS), acknowledge them in the next request, until none wait; how many were new here."""
        stored = 0
        for _ in range(1000):  # a bound, far past any backlog's batches
            request: proto.DownRequest = {"ack": self._down_ack}
            try:
                response = self._post(proto.PATH_DOWN, orjson.dumps(request), "application/json")
            except httpx.HTTPError:
                return stored
            if response.status_code == 404:  # a cloud of before PATH_DOWN has nothing to send down
                self._down_ack = []
                return stored
            if response.status_code != 200:
                log.warning("the cloud did not answer the ask for reports: HTTP %d", response.status_code)
                return stored
            try:
                answer = proto.down_answer_of(orjson.loads(response.content))
            except ValueError:
                log.warning("the cloud's answer with reports is not one: ignored")
                return stored
            self._down_ack = []
            if not answer["reports"]:
                return stored
            for item in answer["reports"]:
                try:
                    with self.db.write() as conn:
                        if apply_down(conn, self.vault, gateway_id=self.gateway_id, hospital_id=answer["hospitalId"],
                                      item=item):
                            stored += 1
                except (ContractError, YingyunError, ValueError, KeyError, TypeError) as e:
                    # Not acknowledged: the cloud keeps offering it, and counts it as waiting.
                    log.warning("a report from the cloud could not be stored: %s", type(e).__name__)
                    continue
                self._down_ack.append(item["id"])
        return stored

    def _note_link(self, ok: bool) -> None:
        with self._link_lock:
            was_down = self._link_failures > 0
            if ok:
                self._link_failures = 0
            else:
                self._link_failures += 1
                self._link_retry_at = time.monotonic() + min(LINK_PROBE_MAX_S, backoff(self._link_failures))
        if ok and was_down:
            self._report_at = 0.0
            n = self.queue.hurry(kind=KIND, now=self.clock())
            log.info("the cloud is reachable again: %d waiting items due now", n)

    def _run_task(self, task: Callable[[], list[Outcome]]) -> None:
        try:
            self.queue.settle(task(), now=self.clock())
        except Exception:  # the leases run out and the jobs come round again
            log.exception("sync batch failed; retrying")
        finally:
            with self._answered:
                self._in_flight -= 1
                self._answered.notify()

    # -- one pass -------------------------------------------------------------

    def run_once(self) -> int:
        """Claim one round of work, send it and settle it (tests; the worker thread pipelines)."""
        tasks = self._claim(IN_FLIGHT)
        futures = [self._pool.submit(task) for task in tasks]
        outcomes = [o for f in futures for o in f.result()]
        self.queue.settle(outcomes, now=self.clock())
        return len(outcomes)

    def _claim(self, requests: int) -> list[Callable[[], list[Outcome]]]:
        """Due jobs for up to `requests` requests: one of records (in order), the rest instance batches."""
        batch = self.queue.claim(kind=KIND, now=self.clock(), limit=BATCH_RECORDS + requests * BATCH_INSTANCES,
                                 lease_s=120.0)
        records = [j for j in batch if j.payload["kind"] != INSTANCE]
        instances = [j for j in batch if j.payload["kind"] == INSTANCE]
        tasks: list[Callable[[], list[Outcome]]] = []
        if records:
            tasks.append(lambda: self._send_records(records))
        limit = self.batch_bytes
        while instances:
            chunk: list[Job] = []
            size = PART_FRAMING  # the closing delimiter
            while instances and len(chunk) < BATCH_INSTANCES and \
                    (not chunk or size + instances[0].payload["size"] + PART_FRAMING <= limit):
                job = instances.pop(0)
                chunk.append(job)
                size += job.payload["size"] + PART_FRAMING
            tasks.append(partial(self._send_instances, chunk))
        return tasks

    def _post(self, path: str, body: bytes | _Streamed, content_type: str) -> httpx.Response:
        """Every request to the cloud, which also tells the link state how it went. The body's
        digest is declared, so the cloud checks the signature before it reads the body."""
        content: bytes | Iterator[bytes]
        if isinstance(body, bytes):
            digest, content, extra = proto.body_digest(body), body, {}
        else:
            digest, content, extra = body.digest(), body.chunks(), {"Content-Length": str(body.length)}
        headers = {"Content-Type": content_type, **proto.signed_headers(self.gateway_id, self.gateway_key,
                                                                          digest=digest, now=time.time()), **extra}
        try:
            response = self.client.post(self.cloud_url + path, content=content, headers=headers)
        except httpx.HTTPError:
            self._note_link(False)
            raise
        self._note_link(not _link_problem(response.status_code))
        return response

    def _retry(self, jobs_: list[Job], error: str, *, now: bool = False) -> list[Outcome]:
        at = self.clock()
        return [Outcome(j.pk, False, error, at if now else at + backoff(j.attempts)) for j in jobs_]

    def _settle_by_answer(self, jobs_: list[Job], response: httpx.Response) -> list[Outcome]:
        if _link_problem(response.status_code):
            return self._retry(jobs_, f"cloud answered HTTP {response.status_code}")
        if response.status_code != 200:
            return self._retry(jobs_, f"cloud answered HTTP {response.status_code}: {response.text[:200]}")
        answer: proto.Results = response.json()
        results = {r["eventId"]: r for r in answer.get("results", [])}
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

    def _too_large(self, job: Job, response: httpx.Response, sent: int) -> Outcome:
        """A request of one item the cloud refused as too large: that is for good (until an
        operator raises the cloud's limit and replays it), so it is parked with the reason."""
        limit = _limit_of(response)
        said = f"at most {limit} bytes" if limit else "less (a proxy before it?)"
        log.warning("cloud refused sync job %d (%s) as too large: parked", job.pk, job.payload["kind"])
        return Outcome(job.pk, False, f"too large for the cloud: HTTP 413 for {sent} bytes; it takes {said}", None)

    def _send_records(self, jobs_: list[Job]) -> list[Outcome]:
        items: list[proto.Record] = []
        missing = []
        with self.db.read() as conn:
            for j in jobs_:
                item = self._record(conn, j)
                if item is None:
                    missing.append(j)
                else:
                    items.append(item)
        outcomes = [Outcome(j.pk, False, "the record no longer exists at the gateway", None) for j in missing]
        live = [j for j in jobs_ if j not in missing]
        if not items:
            return outcomes
        request: proto.RecordsRequest = {"records": items}
        body = orjson.dumps(request)
        try:
            response = self._post(proto.PATH_RECORDS, body, "application/json")
        except httpx.HTTPError as e:
            return outcomes + self._retry(live, f"cloud unreachable: {type(e).__name__}")
        if response.status_code == 413:
            if len(live) == 1:
                return outcomes + [self._too_large(live[0], response, len(body))]
            # Records of one study are claimed in order, one per study at a time, so
            # sending them one by one keeps the order.
            return outcomes + [o for j in live for o in self._send_records([j])]
        return outcomes + self._settle_by_answer(live, response)

    def _record(self, conn: Connection, job: Job) -> proto.Record | None:
        p = job.payload
        kind = p["kind"]
        body: dict[str, Any]
        if kind in (proto.STUDY, proto.DELETE):
            row = conn.execute(select(s.study_versions).where(s.study_versions.c.pk == p["versionPk"])).first()
            if row is None:
                return None
            body, at, source = orjson.loads(self.vault.decrypt_bytes(row.raw_enc)), row.received_at, row.source
        elif kind == proto.REPORT:
            row = conn.execute(select(s.report_versions).where(s.report_versions.c.pk == p["versionPk"])).first()
            if row is None:
                return None
            body, at, source = orjson.loads(self.vault.decrypt_bytes(row.raw_enc)), row.received_at, row.source
        elif kind == proto.RECONCILE:
            row = conn.execute(select(s.reconcile_logs).where(s.reconcile_logs.c.pk == p["logPk"])).first()
            if row is None:
                return None
            body, at, source = orjson.loads(self.vault.decrypt_bytes(row.raw_enc)), row.received_at, row.source
            kind = proto.RECONCILE if row.kind == "study" else proto.RECONCILE_RANGE
        elif kind == proto.LINK:
            row = conn.execute(select(s.links).where(s.links.c.pk == p["linkPk"])).first()
            if row is None:
                return None
            link: proto.LinkBody = {"tokenHash": row.token_hash, "studyId": row.study_id,
                                    "expiresAt": row.expires_at, "revokedAt": row.revoked_at}
            body, at, source = dict(link), row.created_at, row.created_by
        elif kind == proto.PURGE:
            row = conn.execute(select(s.purge_tombstones).where(s.purge_tombstones.c.pk == p["tombstonePk"])).first()
            if row is None:
                return None
            purge: proto.PurgeBody = {"studyId": row.study_id, "studyUid": row.study_uid, "reason": row.reason,
                                      "rule": row.rule}
            body, at, source = dict(purge), row.purged_at, "retention"
        elif kind == proto.HOLD:
            held: proto.HoldBody = {"studyUid": p["studyUid"], "reason": p["reason"], "held": p["held"]}
            body, at, source = dict(held), None, "hold"
        else:
            return None
        return {"eventId": job.event_id, "kind": kind, "receivedAt": at, "source": source, "body": body}

    def _send_instances(self, jobs_: list[Job]) -> list[Outcome]:
        """One request: instances that fit a batch are read into memory and sent as one
        body; a larger one (alone in its batch) is streamed from its blob, twice: once for
        the digest the signature needs before the body, once to send it."""
        parts: list[_Upload] = []
        gone = []
        for j in jobs_:
            headers = {"Content-Type": "application/dicom", "Content-ID": f"<{j.event_id}>"}
            try:
                parts.append(_Upload.of(self.blobs, j.payload["blobKey"], headers, j.payload["size"], BATCH_BYTES))
            except KeyError:
                gone.append(j)
        outcomes = [Outcome(j.pk, False, "the stored file is missing at the gateway", None) for j in gone]
        live = [j for j in jobs_ if j not in gone]
        if not live:
            return outcomes
        body = _Streamed(self.blobs, parts, new_boundary())
        try:
            response = self._post(proto.PATH_INSTANCES, body.whole() if body.in_memory else body,
                                  related_type(body.boundary, "application/dicom"))
        except httpx.HTTPError as e:
            return outcomes + self._retry(live, f"cloud unreachable: {type(e).__name__}")
        if response.status_code == 413:
            self.batch_bytes = min(self.batch_bytes, _limit_of(response) or body.length - 1)
            if len(live) == 1:
                return outcomes + [self._too_large(live[0], response, body.length)]
            return outcomes + self._retry(live, "the cloud wants smaller batches (HTTP 413)", now=True)
        return outcomes + self._settle_by_answer(live, response)


class CloudCopies:
    """The cloud's copies of this gateway's instances: the scrub's RepairSource on a gateway (archive/scrub.py).

    Asked over the sync link (PATH_BLOB, signed like every sync request); the
    cloud answers with the dataset, behind which the gateway's own file meta is
    rebuilt from its index row, so the copy is byte for byte what was received
    here (the scrub checks it against the recorded digest before writing it)."""

    def __init__(self, *, db: Database, cloud_url: str, gateway_id: str, gateway_key: str,
                 client: httpx.Client | None = None) -> None:
        self.db, self.cloud_url = db, cloud_url.rstrip("/")
        self.gateway_id, self.gateway_key = gateway_id, gateway_key
        self.client = client or httpx.Client(timeout=httpx.Timeout(60.0, connect=5.0))

    def open(self, key: str) -> BinaryIO | None:
        i = s.instances.c
        with self.db.read() as conn:
            row = conn.execute(select(i.sop_uid, i.sop_class_uid, i.transfer_syntax, i.source_ae)
                               .where(i.blob_key == key)).first()
        if row is None:
            return None
        body = orjson.dumps({"sopInstanceUid": row.sop_uid})
        headers = {"Content-Type": "application/json", **proto.signed_headers(self.gateway_id, self.gateway_key,
                                                                                body)}
        try:
            response = self.client.post(self.cloud_url + proto.PATH_BLOB, content=body, headers=headers)
        except httpx.HTTPError as e:
            log.warning("scrub repair: the cloud could not be asked (%s)", type(e).__name__)
            return None
        if response.status_code != 200:
            log.warning("scrub repair: the cloud has no copy (%d)", response.status_code)
            return None
        meta = build_file_meta(sop_class_uid=row.sop_class_uid, sop_instance_uid=row.sop_uid,
                               transfer_syntax_uid=row.transfer_syntax, source_ae=row.source_ae)
        return io.BytesIO(meta + response.content)


class _Upload:
    """One part of an instance request: its headers and its content, or where to read it."""

    def __init__(self, key: str, headers: dict[str, str], size: int, data: bytes | None) -> None:
        self.key, self.headers, self.size, self.data = key, headers, size, data

    @classmethod
    def of(cls, blobs: BlobStore, key: str, headers: dict[str, str], size: int, inline: int) -> _Upload:
        """Read whole when its `size` is no larger than `inline`; BlobNotFound (a KeyError) when missing."""
        if size > inline:
            return cls(key, headers, blobs.size(key), None)
        with blobs.open(key) as f:
            data = f.read()
        return cls(key, headers, len(data), data)


class _Streamed:
    """A multipart body of instances, produced piece by piece (web/multipart.py)."""

    def __init__(self, blobs: BlobStore, parts: list[_Upload], boundary: str) -> None:
        self.blobs, self.parts, self.boundary = blobs, parts, boundary
        self.length = related_length([(p.headers, p.size) for p in parts], boundary)
        self.in_memory = all(p.data is not None for p in parts)

    def chunks(self) -> Iterator[bytes]:
        return write_related(((p.headers, [p.data] if p.data is not None else self._read(p)) for p in self.parts),
                             self.boundary)

    def _read(self, part: _Upload) -> Iterator[bytes]:
        with self.blobs.open(part.key) as f:
            while chunk := f.read(STREAM_CHUNK):
                yield chunk

    def whole(self) -> bytes:
        return b"".join(self.chunks())

    def digest(self) -> str:
        h = hashlib.sha256()
        for chunk in self.chunks():
            h.update(chunk)
        return h.hexdigest()


def _limit_of(response: httpx.Response) -> int | None:
    """The limit a 413 from the cloud names (a proxy's says nothing)."""
    try:
        limit = response.json().get("limitBytes")
    except ValueError:
        return None
    return limit if isinstance(limit, int) and limit > 0 else None


def _link_problem(status: int) -> bool:
    """An answer that says the cloud, not this batch, is the problem."""
    return status >= 500 or status in (401, 408, 429)


def sync_status(db: Database, *, now: float | None = None, zone: Zone = UTC) -> dict[str, Any]:
    """What `yingyun admin sync --json` prints (times shown in `zone`)."""
    now = time.time() if now is None else now
    j = jobs
    with db.read() as conn:
        records, instances, size, oldest, parked, last_ok = outbox_counts(conn)
        recent = conn.execute(select(j.c.pk, j.c.payload, j.c.last_error, j.c.finished_at)
                              .where(j.c.kind == KIND, j.c.state == PARKED)
                              .order_by(j.c.finished_at.desc(), j.c.pk.desc()).limit(PARKED_SHOWN)).all()
        last_err = conn.execute(select(j.c.last_error).where(j.c.kind == KIND, j.c.last_error.is_not(None))
                                .order_by(j.c.updated_at.desc()).limit(1)).scalar()
    return {
        "pending": {"records": records, "instances": instances, "bytes": size},
        "parked": parked,
        "parkedItems": [_parked_item(pk, orjson.loads(payload), error, at, zone) for pk, payload, error, at in recent],
        "oldestPendingSeconds": round(now - oldest, 3) if oldest is not None else 0,
        "lastSuccessAt": zone.show(last_ok) if last_ok else None,
        "lastError": last_err,
    }


def _parked_item(pk: int, payload: dict[str, Any], error: str | None, at: float | None, zone: Zone) -> dict[str, Any]:
    """A parked job as `admin sync --json` shows it: what it is and why the cloud refused it."""
    item = {"id": pk, "kind": payload["kind"], "error": error, "parkedAt": zone.show(at) if at else None}
    if payload["kind"] == INSTANCE:
        item["bytes"] = payload.get("size")
    return item


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
        keys = []
        for _pk, payload in rows:
            p = orjson.loads(payload)
            if p.get("kind") == INSTANCE:
                keys.append(p["blobKey"])
        with db.write() as conn:
            blobjournal.forget(conn, keys)  # a file long flushed has no row left; this is for one that failed to
        for key in keys:
            blobs.delete(key)
            freed += 1
        with db.write() as conn:
            conn.execute(jobs.delete().where(jobs.c.pk.in_([r.pk for r in rows])))
        if len(rows) < batch:
            return freed


class SpoolPurger:
    """Runs purge_spool every hour."""

    def __init__(self, *, db: Database, blobs: BlobStore, spool_days: float, interval_s: float = 3600.0) -> None:
        self.db, self.blobs, self.spool_days = db, blobs, spool_days
        self._worker = PeriodicWorker("spool-purger", self._purge, interval_s=interval_s, log=log, first_wait=True)

    def start(self) -> SpoolPurger:
        self._worker.start()
        return self

    def stop(self) -> None:
        self._worker.stop()

    def _purge(self) -> None:
        freed = purge_spool(db=self.db, blobs=self.blobs, spool_days=self.spool_days)
        if freed:
            log.info("spool: freed %d forwarded instances older than %g days", freed, self.spool_days)
