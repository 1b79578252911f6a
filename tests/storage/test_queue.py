"""The durable job queue on SQLite and PostgreSQL: outbox, order, caps, leases, no double claims."""

from __future__ import annotations

import threading

from yingyun.storage.queue import Outcome, SqlJobQueue


def put(q: SqlJobQueue, db, n: int, *, partition: str | None = None, order_key: str | None = None, now: float = 0.0,
        kind: str = "t") -> None:
    with db.write() as conn:
        for i in range(n):
            q.enqueue(conn, kind=kind, payload={"i": i, "p": partition}, partition=partition, order_key=order_key,
                      now=now)


def test_outbox_order_caps_and_leases(runtime):
    db = runtime.db
    q = SqlJobQueue(db)
    # A job exists only if its transaction committed.
    try:
        with db.write() as conn:
            q.enqueue(conn, kind="t", payload={"x": 1}, now=0.0)
            raise RuntimeError("rolled back")
    except RuntimeError:
        pass
    assert q.list(kind="t") == []

    put(q, db, 3, partition="a", order_key="a/1")
    put(q, db, 5, partition="b")
    # Same order key: one at a time, oldest first; per-partition caps count what the caller holds.
    got = q.claim(kind="t", now=1.0, limit=10, lease_s=30, per_partition=2, busy={"b": 1})
    assert [(j.partition, j.payload["i"]) for j in got] == [("a", 0), ("b", 0)]
    assert all(j.attempts == 1 for j in got)
    # Leased jobs are not handed out again; excluded partitions are skipped.
    assert q.claim(kind="t", now=2.0, limit=10, lease_s=30, exclude={"b"}) == []
    more = q.claim(kind="t", now=2.0, limit=10, lease_s=30)
    assert sorted(j.payload["i"] for j in more) == [1, 2, 3, 4]  # b's rest; a/1 still waits for its head
    # A failed head keeps the line (with its retry time); once delivered, the next one goes.
    a0 = got[0]
    q.settle([Outcome(a0.pk, False, "HTTP 500", retry_at=100.0)], now=3.0)
    assert q.claim(kind="t", now=50.0, limit=10, lease_s=30, exclude={"b"}) == []
    again = q.claim(kind="t", now=100.0, limit=10, lease_s=30, exclude={"b"})
    assert [j.pk for j in again] == [a0.pk] and again[0].attempts == 2 and again[0].event_id == a0.event_id
    q.settle([Outcome(a0.pk, True)], now=101.0)
    nxt = q.claim(kind="t", now=101.0, limit=10, lease_s=30, exclude={"b"})
    assert [j.payload["i"] for j in nxt] == [1]
    # A lease that runs out (the claimer died) makes the job claimable again: at least once.
    assert q.claim(kind="t", now=120.0, limit=10, lease_s=30, exclude={"b"}) == []
    assert [j.pk for j in q.claim(kind="t", now=132.0, limit=10, lease_s=30, exclude={"b"})] == [nxt[0].pk]
    # Parking frees the line; replay puts it back as a new cycle with the same event id.
    q.settle([Outcome(nxt[0].pk, False, "gave up", retry_at=None)], now=133.0)
    assert [j.payload["i"] for j in q.claim(kind="t", now=133.0, limit=10, lease_s=30, exclude={"b"})] == [2]
    assert q.counts(kind="t")["parked"] == 1
    assert q.replay(kind="t", now=200.0, all_parked=True) == 1
    replayed = q.get(nxt[0].pk)
    assert replayed is not None and replayed.state == "pending" and replayed.started_at == 200.0
    assert [j.state for j in q.list(kind="t", failed=True)] == ["pending"]


def test_concurrent_claimers_never_share_a_job(runtime):
    db = runtime.db
    q = SqlJobQueue(db)
    put(q, db, 300, kind="c")
    seen: list[int] = []
    lock = threading.Lock()

    def worker() -> None:
        while True:
            jobs = q.claim(kind="c", now=1.0, limit=7, lease_s=600)
            if not jobs:
                return
            with lock:
                seen.extend(j.pk for j in jobs)
            q.settle([Outcome(j.pk, True) for j in jobs], now=1.0)

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(seen) == 300 and len(set(seen)) == 300
    assert q.counts(kind="c") == {"pending": 0, "delivered": 300, "parked": 0}
    # Delivered jobs are purged after their retention; nothing else is.
    assert q.purge(kind="c", finished_before=1.0) == 0
    assert q.purge(kind="c", finished_before=2.0) == 300
