"""/metrics of final reports on their way to the RIS (metrics/state.py), on SQLite and PostgreSQL: pending and
parked deliveries by channel, and on a cloud the reports waiting for their hospital's gateway."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from yingyun.archive.downlink import KIND_FINAL, KIND_OUT
from yingyun.metrics.state import StateCollector
from yingyun.storage.queue import Outcome, SqlJobQueue
from yingyun.storage.schema import report_downlink

NOW = 1_800_000_000.0


def samples(collector: StateCollector) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    registry = CollectorRegistry()
    registry.register(collector)
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for family in registry.collect() for s in family.samples}


def test_deliveries_pending_and_parked_by_channel(runtime):
    got = samples(StateCollector(runtime.db, runtime.settings, clock=lambda: NOW))
    assert got[("yingyun_ris_deliveries", (("channel", "ris"), ("state", "pending")))] == 0  # there from the start
    assert got[("yingyun_queue_jobs", (("queue", KIND_OUT), ("state", "parked")))] == 0
    queue = SqlJobQueue(runtime.db)
    with runtime.db.write() as conn:
        for channel in ("ris", "ris", "hl7"):
            queue.enqueue(conn, kind=KIND_OUT, payload={"channel": channel}, partition=channel, now=NOW - 60)
        queue.enqueue(conn, kind=KIND_FINAL, payload={}, now=NOW)
        conn.execute(report_downlink.insert(), [
            {"event_id": f"e{i}", "hospital_id": "h1", "study_uid": "1.2.3", "version_pk": 1, "created_at": NOW,
             "offers": 0, "acked_at": NOW if i == 2 else None} for i in range(3)])
    (hl7,) = [j for j in queue.list(kind=KIND_OUT) if j.payload["channel"] == "hl7"]
    queue.settle([Outcome(hl7.pk, False, "AE", None)], now=NOW)
    got = samples(StateCollector(runtime.db, runtime.settings, clock=lambda: NOW))
    assert got[("yingyun_ris_deliveries", (("channel", "ris"), ("state", "pending")))] == 2
    assert got[("yingyun_ris_deliveries", (("channel", "hl7"), ("state", "parked")))] == 1
    assert got[("yingyun_ris_deliveries", (("channel", ""), ("state", "pending")))] == 1
    assert got[("yingyun_report_downlink_waiting", (("hospital", "h1"),))] == 2
