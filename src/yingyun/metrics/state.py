"""The deployment's state as an operator watches it, read from the index at scrape time: the
durable queues (gateway sync, partner callbacks, any other kind) pending and parked, the sync
backlog and lag, the stability monitor's lag, what the store holds, free disk, backups' last
success and the scrub's progress.

Read at most every `ttl_s` (a scrape every few seconds from several Prometheus servers must
not scan the index as often), in one read transaction. When the index cannot be read the
figures are left out and `yingyun_state_up` says 0: the HTTP metrics still answer.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from ..archive.downlink import CHANNELS, KIND_FINAL, KIND_OUT
from ..archive.scrub import scrub_figures
from ..core.ttl import TtlCache
from ..settings import Settings
from ..storage.db import Database
from ..storage.queue import PARKED, PENDING
from ..storage.schema import (
    backup_runs,
    dicom_studies,
    report_downlink,
    heal_studies,
    hospitals,
    jobs,
    superseded_instances,
    sync_applied,
)

log = logging.getLogger("yingyun.metrics")
# gateway/outbox.KIND and cloud/callbacks/events.KIND (not imported: one role's metrics need not load the other)
SYNC_KIND, CALLBACK_KIND = "sync", "callback"


@dataclass
class Figures:
    at: float
    queues: list[tuple[str, str, str, int]] = field(default_factory=list)  # kind, partition, state, n
    oldest_pending: dict[tuple[str, str], float] = field(default_factory=dict)  # (kind, partition) -> started_at
    applied: dict[str, float] = field(default_factory=dict)  # gateway -> last event applied (cloud)
    unstable: int = 0
    oldest_unstable: float | None = None
    held: list[tuple[str, int, int]] = field(default_factory=list)  # hospital, instances, bytes
    superseded_bytes: int = 0
    backup_last: tuple[float, int] | None = None  # finished_at, ok
    integrity: dict[str, float] = field(default_factory=dict)  # archive/scrub.scrub_figures
    downlink: dict[str, int] = field(default_factory=dict)  # hospital -> final reports waiting for its gateway
    heal_states: dict[str, int] = field(default_factory=dict)  # heal_studies by state (gateway/heal.py)
    heal_attempts: int = 0
    heal_retrieved: int = 0


class StateCollector(Collector):
    def __init__(self, db: Database, settings: Settings, *, ttl_s: float = 5.0,
                 clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self.settings = settings
        self.clock = clock
        self._cache: TtlCache[None, Figures] = TtlCache(ttl_s)

    def _read(self, _: None) -> Figures:
        st = self.settings
        fig = Figures(at=self.clock())
        with self.db.read() as conn:
            j = jobs.c
            for kind, partition, state, n, oldest in conn.execute(
                    select(j.kind, j.partition, j.state, func.count(), func.min(j.started_at))
                    .where(j.state.in_([PENDING, PARKED])).group_by(j.kind, j.partition, j.state)):
                fig.queues.append((kind, partition or "", state, n))
                if state == PENDING:
                    fig.oldest_pending[(kind, partition or "")] = oldest
            d = dicom_studies.c
            if st.role in ("serve", "cloud"):
                a = sync_applied.c
                fig.applied = {str(row[0]): float(row[1]) for row in conn.execute(
                    select(a.gateway_id, func.max(a.applied_at)).group_by(a.gateway_id))}
                fig.unstable, fig.oldest_unstable = conn.execute(
                    select(func.count(), func.min(d.last_instance_at)).where(d.stable.is_(False))).one()
            # The studies' counters (kept with every instance written, in its transaction): a scan of the
            # studies, not of the instances, which are some 25 times as many.
            held = {h: (int(n or 0), int(b or 0)) for h, n, b in conn.execute(
                select(d.hospital_id, func.sum(d.n_images + d.n_sr + d.n_pdf + d.n_documents), func.sum(d.size_bytes))
                .group_by(d.hospital_id))}
            for (hospital,) in conn.execute(select(hospitals.c.id)):
                held.setdefault(hospital, (0, 0))
            fig.held = [(h, n, b) for h, (n, b) in sorted(held.items())]
            fig.superseded_bytes = conn.execute(
                select(func.coalesce(func.sum(superseded_instances.c.size), 0))).scalar_one()
            b = backup_runs.c
            last = conn.execute(select(b.finished_at, b.ok).order_by(b.pk.desc()).limit(1)).first()
            fig.backup_last = (last[0], last[1]) if last else None
            fig.integrity = scrub_figures(conn)
            if st.role in ("serve", "cloud"):
                r = report_downlink.c
                fig.downlink = {str(h): int(n) for h, n in conn.execute(
                    select(r.hospital_id, func.count()).where(r.acked_at.is_(None)).group_by(r.hospital_id))}
            if st.role in ("serve", "gateway"):
                h = heal_studies.c
                fig.heal_states = {str(state): int(n) for state, n in conn.execute(
                    select(h.state, func.count()).group_by(h.state))}
                attempts, retrieved = conn.execute(
                    select(func.coalesce(func.sum(h.attempts), 0), func.coalesce(func.sum(h.retrieved_total), 0))).one()
                fig.heal_attempts, fig.heal_retrieved = int(attempts), int(retrieved)
        return fig

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("yingyun_state_up", "1 when the index answered this scrape's state figures")
        try:
            fig = self._cache.get(None, self._read)
        except Exception:
            log.warning("metrics: the index could not be read", exc_info=True)
            up.add_metric([], 0)
            yield up
            yield from self._disk()
            return
        up.add_metric([], 1)
        yield up
        yield from self._queues(fig)
        yield from self._sync(fig)
        yield from self._stability(fig)
        yield from self._store(fig)
        yield from self._disk()
        yield from self._backups(fig)
        yield from self._deliveries(fig)
        yield from self._heal(fig)

    def _deliveries(self, fig: Figures) -> Iterator[Metric]:
        """Final reports on their way to the hospital's RIS (gateway/delivery.py), by channel; on a cloud, those
        waiting for their hospital's gateway to ask (archive/downlink.py)."""
        out = GaugeMetricFamily("yingyun_ris_deliveries", "Final reports to the hospital's RIS waiting (pending) or "
                                "given up after 24 h (parked), by channel (ris: HTTP; hl7: ORU^R01); channel \"\" "
                                "is a report not yet given its channels", labels=["channel", "state"])
        for channel in CHANNELS:
            for state in (PENDING, PARKED):
                out.add_metric([channel, state], sum(n for k, p, s, n in fig.queues
                                                     if k == KIND_OUT and p == channel and s == state))
        out.add_metric(["", PENDING], sum(n for k, _, s, n in fig.queues if k == KIND_FINAL and s == PENDING))
        yield out
        if self.settings.role in ("serve", "cloud"):
            down = GaugeMetricFamily("yingyun_report_downlink_waiting", "Final reports waiting for their hospital's "
                                     "gateway to take them (POST /sync/v1/down)", labels=["hospital"])
            for hospital, n in sorted(fig.downlink.items()):
                down.add_metric([hospital], n)
            yield down

    def _queues(self, fig: Figures) -> Iterator[Metric]:
        # The queues this role runs are always there (at 0), so that a dashboard and an alert see them from the start.
        kinds = dict.fromkeys([*self._own_queues(), *(kind for kind, _, _, _ in fig.queues)])
        queued = GaugeMetricFamily("yingyun_queue_jobs", "Durable jobs waiting (pending) or given up (parked), by "
                                   "queue (sync: to the cloud; callback: to partners)", labels=["queue", "state"])
        for kind in kinds:
            for state in (PENDING, PARKED):
                queued.add_metric([kind, state], sum(n for k, _, s, n in fig.queues if k == kind and s == state))
        yield queued
        by_partner = GaugeMetricFamily("yingyun_queue_partition_jobs", "The same, by partition (a callback's partner "
                                       "appId)", labels=["queue", "partition", "state"])
        for kind, partition, state, n in fig.queues:
            if partition:
                by_partner.add_metric([kind, partition, state], n)
        yield by_partner
        age = GaugeMetricFamily("yingyun_queue_oldest_pending_seconds", "Age of the oldest pending job's retry cycle "
                                "(0: none pending)", labels=["queue"])
        for kind in kinds:
            started = [t for (k, _), t in fig.oldest_pending.items() if k == kind]
            age.add_metric([kind], max(0.0, fig.at - min(started)) if started else 0.0)
        yield age

    def _own_queues(self) -> list[str]:
        role = self.settings.role
        return ([SYNC_KIND] if role == "gateway" else []) + ([CALLBACK_KIND] if role in ("serve", "cloud") else []) \
            + [KIND_OUT]  # final reports to the RIS: every role delivers them (gateway/delivery.py)

    def _sync(self, fig: Figures) -> Iterator[Metric]:
        st = self.settings
        if st.role == "gateway":
            backlog = GaugeMetricFamily("yingyun_sync_backlog", "Events of this gateway not yet accepted by the cloud",
                                        labels=["gateway"])
            lag = GaugeMetricFamily("yingyun_sync_lag_seconds", "How long the oldest event not yet accepted by the "
                                    "cloud has waited (0: none waiting)", labels=["gateway"])
            pending = sum(n for kind, _, state, n in fig.queues if kind == SYNC_KIND and state == PENDING)
            oldest = [t for (kind, _), t in fig.oldest_pending.items() if kind == SYNC_KIND]
            backlog.add_metric([st.gateway_id], pending)
            lag.add_metric([st.gateway_id], max(0.0, fig.at - min(oldest)) if oldest else 0.0)
            yield backlog
            yield lag
        if fig.applied:
            applied = GaugeMetricFamily("yingyun_sync_last_applied_timestamp_seconds",
                                        "When the cloud last applied an event of each gateway", labels=["gateway"])
            for gateway, at in sorted(fig.applied.items()):
                applied.add_metric([gateway], at)
            yield applied

    def _stability(self, fig: Figures) -> Iterator[Metric]:
        if self.settings.role not in ("serve", "cloud"):
            return
        yield GaugeMetricFamily("yingyun_stability_pending_studies", "Studies not yet stable", value=fig.unstable)
        due = (fig.oldest_unstable + self.settings.stable_seconds) if fig.oldest_unstable is not None else None
        yield GaugeMetricFamily("yingyun_stability_lag_seconds", "How far past due the oldest study not yet stable is "
                                "(the stability monitor's lag; 0: on time)",
                                value=max(0.0, fig.at - due) if due is not None else 0.0)

    def _store(self, fig: Figures) -> Iterator[Metric]:
        held = GaugeMetricFamily("yingyun_store_instances", "Instances held, by hospital", labels=["hospital"])
        size = GaugeMetricFamily("yingyun_store_bytes", "Bytes of the instances held, by hospital", labels=["hospital"])
        for hospital, n, nbytes in fig.held:
            held.add_metric([hospital], n)
            size.add_metric([hospital], nbytes)
        yield held
        yield size
        yield GaugeMetricFamily("yingyun_blob_store_bytes", "Bytes in the blob store: the instances held and the "
                                "versions they replaced", value=sum(b for _, _, b in fig.held) + fig.superseded_bytes)

    def _disk(self) -> Iterator[Metric]:
        st = self.settings
        free = GaugeMetricFamily("yingyun_disk_free_bytes", "Free space of the file system of a folder Yingyun "
                                 "writes (data dir; blobs when local)", labels=["path"])
        total = GaugeMetricFamily("yingyun_disk_size_bytes", "Size of that file system", labels=["path"])
        folders = [st.data_dir] + ([] if st.blob_location.startswith("s3://") else [Path(st.blob_location)])
        for folder in dict.fromkeys(Path(f).resolve() for f in folders):
            try:
                usage = shutil.disk_usage(folder)
            except OSError:
                continue
            free.add_metric([str(folder)], usage.free)
            total.add_metric([str(folder)], usage.total)
        yield free
        yield total
        yield GaugeMetricFamily("yingyun_disk_min_free_bytes", "Below this free space new instances are refused",
                                value=st.min_free_bytes)

    def _backups(self, fig: Figures) -> Iterator[Metric]:
        figures = fig.integrity
        yield GaugeMetricFamily("yingyun_backup_last_success_timestamp_seconds",
                                "When the last `yingyun backup` that succeeded finished (0: never)",
                                value=figures["backup_last_success_timestamp"])
        last_ok = GaugeMetricFamily("yingyun_backup_last_run_ok", "1 when the last backup run succeeded, 0 when it "
                                    "failed (absent: none ran)")
        if fig.backup_last is not None:
            last_ok.add_metric([], fig.backup_last[1])
        yield last_ok
        yield GaugeMetricFamily("yingyun_scrub_pass_progress_ratio", "How far the current scrub pass is through the "
                                "instances (0..1)", value=figures["scrub_pass_progress"])
        yield GaugeMetricFamily("yingyun_scrub_pass_checked_objects", "Objects read in the current scrub pass",
                                value=figures["scrub_checked_objects"])
        yield GaugeMetricFamily("yingyun_scrub_pass_checked_bytes", "Bytes read in the current scrub pass",
                                value=figures["scrub_checked_bytes"])
        yield GaugeMetricFamily("yingyun_scrub_damaged_objects", "Objects the last reading found missing or corrupt "
                                "(and not repaired since)", value=figures["scrub_damaged_objects"])
        yield CounterMetricFamily("yingyun_scrub_errors", "Missing and corrupt objects the scrub found",
                                  value=figures["scrub_errors_total"])
        yield CounterMetricFamily("yingyun_scrub_passes", "Scrub passes completed", value=figures["scrub_passes_total"])
        yield GaugeMetricFamily("yingyun_scrub_last_pass_timestamp_seconds", "When the last scrub pass completed "
                                "(0: never)", value=figures["scrub_last_pass_timestamp"])

    def _heal(self, fig: Figures) -> Iterator[Metric]:
        if self.settings.role not in ("serve", "gateway"):
            return
        yield CounterMetricFamily("yingyun_heal_attempts", "Attempts to retrieve from the hospital's PACS what "
                                  "reconciliation found missing (gateway/heal.py)", value=fig.heal_attempts)
        yield CounterMetricFamily("yingyun_heal_retrieved_instances", "Instances retrieved from PACS by healing",
                                  value=fig.heal_retrieved)
        studies = GaugeMetricFamily("yingyun_heal_studies", "Studies healing last left in each state (final: the "
                                    "PACS does not have what is missing, a final discrepancy)", labels=["state"])
        for state in ("healed", "final", "failed"):
            studies.add_metric([state], fig.heal_states.get(state, 0))
        yield studies
