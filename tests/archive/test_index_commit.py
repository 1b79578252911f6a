"""InstanceStore's group commit of index rows (`_IndexCommitter`): callers
share transactions under load, a failing write is its caller's alone, and a
failed transaction fails everyone in it, never hanging anybody."""

from __future__ import annotations

import threading
import time

import pytest

from yingyun.archive.instances import _IndexCommitter
from yingyun.storage.db import Database


@pytest.fixture
def db(tmp_path):
    d = Database(f"sqlite:///{tmp_path / 'c.db'}")
    with d.write() as conn:
        conn.exec_driver_sql("CREATE TABLE t (k INTEGER PRIMARY KEY)")
    yield d
    d.dispose()


def _rows(db: Database) -> set[int]:
    with db.read() as conn:
        return {r[0] for r in conn.exec_driver_sql("SELECT k FROM t")}


def test_concurrent_writes_share_commits_and_failures_stay_private(db, monkeypatch) -> None:
    committer = _IndexCommitter(db)
    transactions = []
    real_write = db.write

    def counting_write():
        transactions.append(1)
        return real_write()

    monkeypatch.setattr(db, "write", counting_write)
    n = 24
    barrier = threading.Barrier(n)
    outcomes: dict[int, object] = {}

    def insert(k: int):
        def fn(conn):
            time.sleep(0.005)  # keep the leader busy so others queue behind it
            if k == 7:
                conn.exec_driver_sql(f"INSERT INTO t VALUES ({k})")
                raise ValueError("refused")
            conn.exec_driver_sql(f"INSERT INTO t VALUES ({k})")
            return k

        barrier.wait()
        try:
            outcomes[k] = committer.run(fn)
        except ValueError as e:
            outcomes[k] = e

    threads = [threading.Thread(target=insert, args=(k,)) for k in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert isinstance(outcomes.pop(7), ValueError)
    assert outcomes == {k: k for k in range(n) if k != 7}
    assert _rows(db) == set(range(n)) - {7}  # the failed one's own insert rolled back
    assert len(transactions) < n, "queued writes should share transactions"


def test_a_failed_transaction_fails_all_of_it_and_nobody_hangs(db, monkeypatch) -> None:
    committer = _IndexCommitter(db)

    def broken_write():
        raise OSError("disk gone")

    monkeypatch.setattr(db, "write", broken_write)
    with pytest.raises(OSError):
        committer.run(lambda conn: None)
    monkeypatch.undo()
    assert committer.run(lambda conn: conn.exec_driver_sql("INSERT INTO t VALUES (1)") and "ok") == "ok"
    assert _rows(db) == {1}
