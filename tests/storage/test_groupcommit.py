"""GroupCommit (the RIS and partner API writers), on SQLite and PostgreSQL: batches share a
transaction, a failing write (ours or the database's refusal) fails alone and leaves
nothing behind, and the writer carries on."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from yingyun.storage.groupcommit import GroupCommit


@pytest.fixture
def db(runtime):
    with runtime.db.write() as conn:
        conn.execute(text("CREATE TABLE gc_t (k INTEGER PRIMARY KEY)"))
    return runtime.db


def _rows(db) -> set[int]:
    with db.read() as conn:
        return {r[0] for r in conn.execute(text("SELECT k FROM gc_t"))}


def test_batch_shares_a_transaction_and_a_failure_stays_private(db, monkeypatch) -> None:
    gc = GroupCommit(db, writers=2)
    transactions = []
    real_write = db.write
    monkeypatch.setattr(db, "write", lambda: (transactions.append(1), real_write())[1])
    gate = threading.Event()
    # Hold the writers so everything below queues into one batch each.
    blockers = [gc.submit(lambda conn: gate.wait(10), key=key) for key in ("a", "b")]

    def fn(k: int):
        def write(conn):
            conn.execute(text(f"INSERT INTO gc_t VALUES ({k})"))
            if k % 10 == 7:
                raise ValueError(f"refused {k}")
            return k
        return write

    futures = {k: gc.submit(fn(k), key="a" if k % 2 else "b") for k in range(40)}
    gate.set()
    for b in blockers:
        b.result(10)
    for k, fut in futures.items():
        if k % 10 == 7:
            with pytest.raises(ValueError, match=f"refused {k}"):
                fut.result(10)
        else:
            assert fut.result(10) == k
    assert _rows(db) == {k for k in range(40) if k % 10 != 7}
    assert len(transactions) < 20, "queued writes should share transactions"
    gc.close()


def test_a_database_refusal_is_its_callers_and_the_writer_carries_on(db) -> None:
    gc = GroupCommit(db)
    futures = [gc.submit(lambda conn, k=k: conn.execute(text(f"INSERT INTO gc_t VALUES ({k})"))) for k in range(3)]
    for f in futures:
        f.result(10)
    bad = gc.submit(lambda conn: conn.execute(text("INSERT INTO gc_t VALUES (1)")))  # duplicate: refused
    with pytest.raises(IntegrityError):
        bad.result(10)
    assert gc.run(lambda conn: conn.execute(text("SELECT count(*) FROM gc_t")).scalar()) == 3
    gc.close()
