"""The index database's own guarantees, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading

from yingyun.storage.rawsql import Raw

_NAME = Raw("SELECT name FROM hospitals WHERE id = :h")


def test_read_one_sees_every_commit_at_once(runtime):
    """The per-thread reader (SQLite) must never hold a snapshot across calls."""
    db = runtime.db
    assert db.read_one(_NAME, {"h": "h9"}) is None
    runtime.tenancy.add_hospital(hospital_id="h9", name="九院")
    assert db.read_one(_NAME, {"h": "h9"}) == ("九院",)
    runtime.tenancy.add_hospital(hospital_id="h9", name="第九医院")  # re-add updates
    assert db.read_one(_NAME, {"h": "h9"}) == ("第九医院",)
    seen = []
    t = threading.Thread(target=lambda: seen.append(db.read_one(_NAME, {"h": "h9"})))
    t.start()
    t.join()
    assert seen == [("第九医院",)]
