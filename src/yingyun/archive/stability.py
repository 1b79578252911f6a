"""Stable studies: no new instance for `stable_seconds`.

The state lives in the index (dicom_studies.stable, stable_at,
stable_generation), so it survives restarts; a sweep marks studies stable
and returns them for whoever reacts (status callbacks, sync). More images
after that make the study unstable again (InstanceStore clears the flag),
and the next sweep makes it stable once more, with a new generation.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from sqlalchemy import Connection, select, update

from ..core.worker import PeriodicWorker
from ..storage import schema as s
from ..storage.db import Database

log = logging.getLogger("yingyun.stability")


def sweep(conn: Connection, *, stable_seconds: float, now: float | None = None) -> list[tuple[str, str, int]]:
    """Mark quiet studies stable; returns (hospital_id, study_uid, generation) of each."""
    d = s.dicom_studies
    now = time.time() if now is None else now
    cutoff = now - stable_seconds
    rows = conn.execute(
        select(d.c.pk, d.c.hospital_id, d.c.study_uid, d.c.stable_generation)
        .where(d.c.stable.is_(False), d.c.last_instance_at <= cutoff)
        .with_for_update(skip_locked=True)
    ).all()
    out = []
    for row in rows:
        res = conn.execute(
            update(d).where(d.c.pk == row.pk, d.c.stable.is_(False), d.c.last_instance_at <= cutoff)
            .values(stable=True, stable_at=now, stable_generation=row.stable_generation + 1)
        )
        if res.rowcount:
            out.append((row.hospital_id, row.study_uid, row.stable_generation + 1))
    return out


class StabilityMonitor:
    """A background sweep every `interval` seconds."""

    def __init__(self, db: Database, *, stable_seconds: float, interval: float = 1.0,
                 on_stable: Callable[[Connection, str, str, int], None] | None = None) -> None:
        self.db = db
        self.stable_seconds = stable_seconds
        self.interval = min(interval, max(stable_seconds / 4, 0.05))
        self.on_stable = on_stable
        self._worker = PeriodicWorker("stability", self._sweep, interval_s=self.interval, log=log, first_wait=True)

    def start(self) -> StabilityMonitor:
        self._worker.start()
        return self

    def stop(self) -> None:
        self._worker.stop()

    def run_once(self) -> int:
        with self.db.write() as conn:
            stable = sweep(conn, stable_seconds=self.stable_seconds)
            if self.on_stable is not None:
                for hospital_id, study_uid, generation in stable:
                    self.on_stable(conn, hospital_id, study_uid, generation)
        for hospital_id, study_uid, generation in stable:
            log.info("study stable hospital=%s studyUid=%s generation=%d", hospital_id, study_uid, generation)
        return len(stable)

    def _sweep(self) -> None:
        self.run_once()
