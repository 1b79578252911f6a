"""The state /metrics reads from the index (metrics/state.py), on SQLite and PostgreSQL: queues per
partner, the gateway's backlog and lag, backups' last success, the scrub's progress."""

from __future__ import annotations

import dataclasses

from prometheus_client import CollectorRegistry

from yingyun.metrics.state import StateCollector
from yingyun.storage.queue import SqlJobQueue
from yingyun.storage.schema import backup_runs, scrub_state

NOW = 1_800_000_000.0


def samples(collector: StateCollector) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    registry = CollectorRegistry()
    registry.register(collector)
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for family in registry.collect() for s in family.samples}


def test_queues_backups_and_the_scrub(runtime):
    queue = SqlJobQueue(runtime.db)
    with runtime.db.write() as conn:
        for _ in range(3):
            queue.enqueue(conn, kind="callback", payload={}, partition="app1", now=NOW - 40)
        queue.enqueue(conn, kind="callback", payload={}, partition="app2", now=NOW - 10)
        conn.execute(backup_runs.insert(), [
            {"folder": "/b", "started_at": NOW - 99, "finished_at": NOW - 90, "ok": 1, "files": 3, "bytes_copied": 9},
            {"folder": "/b", "started_at": NOW - 9, "finished_at": NOW - 5, "ok": 0, "files": 0, "bytes_copied": 0,
             "error": "disk full"}])
        conn.execute(scrub_state.insert(), {"id": 1, "pass_started_at": NOW - 60, "last_pk": 0, "checked": 7,
                                            "checked_bytes": 700, "errors": 2, "passes": 4, "last_pass_at": NOW - 600})
    queue.park_stale(kind="callback", partition="app2", started_before=NOW, error="gone", now=NOW)
    got = samples(StateCollector(runtime.db, runtime.settings, clock=lambda: NOW))
    assert got[("yingyun_state_up", ())] == 1
    assert got[("yingyun_queue_jobs", (("queue", "callback"), ("state", "pending")))] == 3
    assert got[("yingyun_queue_jobs", (("queue", "callback"), ("state", "parked")))] == 1
    by_partner = (("partition", "app1"), ("queue", "callback"), ("state", "pending"))
    assert got[("yingyun_queue_partition_jobs", by_partner)] == 3
    assert got[("yingyun_queue_oldest_pending_seconds", (("queue", "callback"),))] == 40
    assert got[("yingyun_backup_last_success_timestamp_seconds", ())] == NOW - 90
    assert got[("yingyun_backup_last_run_ok", ())] == 0
    assert got[("yingyun_scrub_pass_checked_objects", ())] == 7
    assert got[("yingyun_scrub_damaged_objects", ())] == 0
    assert got[("yingyun_scrub_errors_total", ())] == 2
    assert got[("yingyun_scrub_passes_total", ())] == 4


def test_a_gateways_sync_backlog_and_lag(runtime):
    settings = dataclasses.replace(runtime.settings, role="gateway", gateway_id="gw1", cloud_url="http://c")
    queue = SqlJobQueue(runtime.db)
    with runtime.db.write() as conn:
        queue.enqueue(conn, kind="sync", payload={}, now=NOW - 30)
        queue.enqueue(conn, kind="sync", payload={}, now=NOW - 5)
    got = samples(StateCollector(runtime.db, settings, clock=lambda: NOW))
    assert got[("yingyun_sync_backlog", (("gateway", "gw1"),))] == 2
    assert got[("yingyun_sync_lag_seconds", (("gateway", "gw1"),))] == 30
    assert ("yingyun_stability_lag_seconds", ()) not in got  # the cloud's monitor, not a gateway's


def test_an_index_that_cannot_be_read_leaves_the_figures_out(runtime):
    with runtime.db.write() as conn:
        conn.exec_driver_sql("DROP TABLE backup_runs")  # an index the figures cannot be read from
    got = samples(StateCollector(runtime.db, runtime.settings, clock=lambda: NOW))
    assert got[("yingyun_state_up", ())] == 0
    assert any(name == "yingyun_disk_free_bytes" for name, _ in got)
