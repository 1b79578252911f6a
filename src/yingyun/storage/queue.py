"""A durable job queue in the index database (SQL table `jobs`).

Guarantees:

* `enqueue(conn, ...)` writes the job in the caller's transaction, so a job
  exists if and only if the record that caused it committed (an outbox).
* A job is delivered at least once: `claim` leases it for `lease_s`; if the
  claimer dies before `settle`, the lease runs out and the job is claimed
  again. Each job has an `event_id` that never changes, so receivers can
  drop duplicates.
* Jobs with the same `order_key` run one at a time, oldest first: a job is
  not claimable while an older pending job with its key exists (one that is
  waiting for its retry included). Parked jobs no longer hold the line.
* `claim` never hands one job to two claimers: on PostgreSQL the rows are
  taken with ``SELECT ... FOR UPDATE SKIP LOCKED`` (concurrent claimers skip
  each other's rows instead of waiting); on SQLite under the database's
  write lock.
* A claimer can cap how many jobs of one `partition` (say, one partner) it
  holds and exclude partitions, so one slow destination never takes every
  slot.

States: ``pending`` (waiting, leased or due), ``delivered``, ``parked``
(given up on until an operator replays it).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import orjson
from sqlalchemy import Connection, and_, bindparam, exists, func, or_, select, update
from sqlalchemy.orm import aliased

from .db import Database
from .schema import jobs

PENDING, DELIVERED, PARKED = "pending", "delivered", "parked"
STATES = (PENDING, DELIVERED, PARKED)


@dataclass(frozen=True)
class Job:
    pk: int
    event_id: str
    kind: str
    partition: str | None
    order_key: str | None
    payload: dict[str, Any]
    state: str
    attempts: int
    next_attempt_at: float
    lease_until: float | None
    last_error: str | None
    started_at: float
    created_at: float
    updated_at: float
    finished_at: float | None


@dataclass(frozen=True)
class Outcome:
    """How one attempt ended: `ok`, or failed with a retry time (None: park it)."""

    pk: int
    ok: bool
    error: str | None = None
    retry_at: float | None = None


class JobQueue(Protocol):
    def enqueue(self, conn: Connection, *, kind: str, payload: Mapping[str, Any], partition: str | None = None,
                order_key: str | None = None, now: float | None = None) -> str: ...

    def claim(self, *, kind: str, now: float, limit: int, lease_s: float,
              per_partition: int | None = None, busy: Mapping[str, int] | None = None,
              exclude: Iterable[str] = ()) -> list[Job]: ...

    def settle(self, outcomes: Iterable[Outcome], *, now: float) -> None: ...

    def release(self, pks: Iterable[int], *, now: float) -> None: ...

    def hurry(self, *, kind: str, now: float) -> int: ...

    def park_stale(self, *, kind: str, partition: str, started_before: float, error: str, now: float) -> int: ...

    def replay(self, *, kind: str, now: float, pk: int | None = None, all_parked: bool = False) -> int: ...

    def list(self, *, kind: str, states: Iterable[str] | None = None, failed: bool = False,
             limit: int | None = None) -> list[Job]: ...


def _row_to_job(r: Any) -> Job:  # a jobs row, from SQLAlchemy or the raw cursor
    return Job(pk=r.pk, event_id=r.event_id, kind=r.kind, partition=r.partition, order_key=r.order_key,
               payload=orjson.loads(r.payload), state=r.state, attempts=r.attempts, next_attempt_at=r.next_attempt_at,
               lease_until=r.lease_until, last_error=r.last_error, started_at=r.started_at, created_at=r.created_at,
               updated_at=r.updated_at, finished_at=r.finished_at)


_INSERT = jobs.insert()


def enqueue(conn: Connection, *, kind: str, payload: Mapping[str, Any], partition: str | None = None,
            order_key: str | None = None, now: float | None = None) -> str:
    """`SqlJobQueue.enqueue` for a caller that holds only the transaction (a job is a row in it)."""
    now = time.time() if now is None else now
    event_id = uuid.uuid4().hex
    conn.execute(_INSERT, {"event_id": event_id, "kind": kind, "partition": partition, "order_key": order_key,
                           "payload": orjson.dumps(dict(payload)).decode(), "state": PENDING, "attempts": 0,
                           "next_attempt_at": now, "lease_until": None, "last_error": None, "started_at": now,
                           "created_at": now, "updated_at": now, "finished_at": None})
    return event_id


class SqlJobQueue:
    """JobQueue over the `jobs` table (SQLite or PostgreSQL)."""

    def __init__(self, db: Database, *, scan: int = 500) -> None:
        self.db = db
        self.scan = scan

    def enqueue(self, conn: Connection, *, kind: str, payload: Mapping[str, Any], partition: str | None = None,
                order_key: str | None = None, now: float | None = None) -> str:
        """Add a job in the caller's transaction; returns its event id."""
        return enqueue(conn, kind=kind, payload=payload, partition=partition, order_key=order_key, now=now)

    def claim(self, *, kind: str, now: float, limit: int, lease_s: float,
              per_partition: int | None = None, busy: Mapping[str, int] | None = None,
              exclude: Iterable[str] = ()) -> list[Job]:
        """Lease up to `limit` due jobs of `kind`, at most `per_partition` per partition
        (counting `busy`, the ones the caller already holds), none of `exclude`."""
        if limit <= 0:
            return []
        excluded = set(exclude)
        held = dict(busy or {})
        j = jobs
        k = aliased(jobs)
        free = or_(j.c.lease_until.is_(None), j.c.lease_until <= now)
        older_pending = exists().where(k.c.order_key == j.c.order_key, k.c.state == PENDING, k.c.pk < j.c.pk)
        candidates = (
            select(j.c.pk, j.c.partition)
            .where(j.c.kind == kind, j.c.state == PENDING, j.c.next_attempt_at <= now, free, ~older_pending)
            .order_by(j.c.next_attempt_at, j.c.pk)
            .limit(self.scan)
        )
        # Most polls find nothing due: look first without the write lock,
        # which the ingest paths need far more than an idle poller does.
        with self.db.read() as conn:
            if conn.execute(candidates.with_only_columns(j.c.pk).limit(1)).first() is None:
                return []
        with self.db.write() as conn:
            chosen: list[int] = []
            for pk, part in conn.execute(candidates):
                if part is not None:
                    if part in excluded:
                        continue
                    if per_partition is not None and held.get(part, 0) >= per_partition:
                        continue
                    held[part] = held.get(part, 0) + 1
                chosen.append(pk)
                if len(chosen) >= limit:
                    break
            if not chosen:
                return []
            locked = [r.pk for r in conn.execute(
                select(j.c.pk).where(j.c.pk.in_(chosen), j.c.state == PENDING, free)
                .with_for_update(skip_locked=True)
            )]
            if not locked:
                return []
            conn.execute(update(j).where(j.c.pk.in_(locked))
                         .values(lease_until=now + lease_s, attempts=j.c.attempts + 1, updated_at=now))
            rows = conn.execute(select(j).where(j.c.pk.in_(locked)).order_by(j.c.pk)).all()
        return [_row_to_job(r) for r in rows]

    def settle(self, outcomes: Iterable[Outcome], *, now: float) -> None:
        """Record how attempts ended, in one transaction."""
        outcomes = list(outcomes)
        if not outcomes:
            return
        j = jobs
        done = [{"b_pk": o.pk} for o in outcomes if o.ok]
        retry = [{"b_pk": o.pk, "b_err": (o.error or "")[:500], "b_at": o.retry_at}
                 for o in outcomes if not o.ok and o.retry_at is not None]
        park = [{"b_pk": o.pk, "b_err": (o.error or "")[:500]} for o in outcomes if not o.ok and o.retry_at is None]
        with self.db.write() as conn:
            if done:
                conn.execute(update(j).where(j.c.pk == bindparam("b_pk"))
                             .values(state=DELIVERED, lease_until=None, finished_at=now, updated_at=now), done)
            if retry:
                conn.execute(update(j).where(j.c.pk == bindparam("b_pk"))
                             .values(state=PENDING, lease_until=None, next_attempt_at=bindparam("b_at"),
                                     last_error=bindparam("b_err"), updated_at=now), retry)
            if park:
                conn.execute(update(j).where(j.c.pk == bindparam("b_pk"))
                             .values(state=PARKED, lease_until=None, last_error=bindparam("b_err"), finished_at=now,
                                     updated_at=now), park)

    def release(self, pks: Iterable[int], *, now: float) -> None:
        """Give back leased jobs that were not attempted after all (the claim's attempt is not counted)."""
        pks = list(pks)
        if not pks:
            return
        j = jobs
        with self.db.write() as conn:
            conn.execute(update(j).where(j.c.pk.in_(pks), j.c.state == PENDING)
                         .values(lease_until=None, attempts=j.c.attempts - 1, updated_at=now))

    def hurry(self, *, kind: str, now: float) -> int:
        """Make every pending job of `kind` that waits for a retry due now (the peer they
        failed on is back: waiting out each job's backoff would only delay the backlog)."""
        j = jobs
        with self.db.write() as conn:
            return conn.execute(update(j).where(j.c.kind == kind, j.c.state == PENDING, j.c.next_attempt_at > now)
                                .values(next_attempt_at=now, updated_at=now)).rowcount

    def park_stale(self, *, kind: str, partition: str, started_before: float, error: str, now: float) -> int:
        """Park a partition's unleased pending jobs whose retry cycle began before `started_before`."""
        j = jobs
        with self.db.write() as conn:
            res = conn.execute(
                update(j).where(j.c.kind == kind, j.c.partition == partition, j.c.state == PENDING,
                                j.c.started_at <= started_before,
                                or_(j.c.lease_until.is_(None), j.c.lease_until <= now))
                .values(state=PARKED, last_error=error[:500], finished_at=now, updated_at=now)
            )
            return res.rowcount

    def purge(self, *, kind: str, finished_before: float) -> int:
        """Delete delivered jobs finished before the given time (parked ones stay for the operator)."""
        j = jobs
        with self.db.write() as conn:
            return conn.execute(j.delete().where(j.c.kind == kind, j.c.state == DELIVERED,
                                                 j.c.finished_at < finished_before)).rowcount

    def replay(self, *, kind: str, now: float, pk: int | None = None, all_parked: bool = False) -> int:
        """Put parked jobs back in line, as new retry cycles (same event ids)."""
        if (pk is None) == (not all_parked):
            raise ValueError("replay one job (pk) or all parked ones, not both")
        j = jobs
        cond = and_(j.c.kind == kind, j.c.state == PARKED)
        if pk is not None:
            cond = and_(cond, j.c.pk == pk)
        with self.db.write() as conn:
            res = conn.execute(update(j).where(cond).values(
                state=PENDING, next_attempt_at=now, lease_until=None, started_at=now, finished_at=None, updated_at=now))
            return res.rowcount

    def get(self, pk: int) -> Job | None:
        with self.db.read() as conn:
            r = conn.execute(select(jobs).where(jobs.c.pk == pk)).first()
        return None if r is None else _row_to_job(r)

    def list(self, *, kind: str, states: Iterable[str] | None = None, failed: bool = False,
             limit: int | None = None) -> list[Job]:
        """Jobs oldest first; `failed`: parked ones and pending ones whose last attempt failed."""
        j = jobs
        q = select(j).where(j.c.kind == kind)
        if states:
            q = q.where(j.c.state.in_(list(states)))
        if failed:
            q = q.where(or_(j.c.state == PARKED, and_(j.c.state == PENDING, j.c.last_error.is_not(None))))
        q = q.order_by(j.c.pk)
        if limit:
            q = q.limit(limit)
        with self.db.read() as conn:
            return [_row_to_job(r) for r in conn.execute(q)]

    def counts(self, *, kind: str) -> dict[str, int]:
        j = jobs
        with self.db.read() as conn:
            rows = conn.execute(select(j.c.state, func.count()).where(j.c.kind == kind).group_by(j.c.state)).all()
        out = dict.fromkeys(STATES, 0)
        out.update(dict(rows))
        return out
