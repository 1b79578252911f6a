"""What a DICOM receiver counts: associations accepted and rejected (by reason), C-STORE answers,
instances and bytes stored, C-STORE latency, C-FIND answers by information model (the worklist's too).

The receivers are processes of their own (gateway/receiver.py), so each counts in memory
(`ReceiverMetrics`, the association observer of its server) and writes its figures to
`run/metrics/receiver-<n>.json` (at most once a second, atomically); /metrics sums the
files (metrics/dicom.py). A receiver restarted takes up its file's figures, so the
counters do not fall back. Nothing here imports prometheus_client: a receiver loads
only what it needs.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from pathlib import Path
from typing import Any

from ..core.worker import PeriodicWorker
from ..dicomnet.status import Category, category
from ..dicomnet.uids import MODALITY_WORKLIST_FIND, PATIENT_ROOT_FIND, STUDY_ROOT_FIND

log = logging.getLogger("yingyun.metrics")

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
STORED = (Category.SUCCESS, Category.WARNING)
# The C-FIND information models, by the label they are counted under.
FIND_MODELS = {MODALITY_WORKLIST_FIND: "worklist", STUDY_ROOT_FIND: "study", PATIENT_ROOT_FIND: "patient"}


def metrics_dir(run_dir: Path) -> Path:
    return run_dir / "metrics"


def empty_figures() -> dict[str, Any]:
    return {"associations": {}, "stores": {}, "finds": {}, "instances": 0, "bytes": 0,
            "latency": {"buckets": [0] * (len(LATENCY_BUCKETS) + 1), "sum": 0.0, "count": 0}}


class ReceiverMetrics:
    """The association observer of one receiver process (dicomnet.association.AssociationObserver)."""

    def __init__(self, run_dir: Path, index: int, *, interval_s: float = 1.0) -> None:
        self.path = metrics_dir(run_dir) / f"receiver-{index}.json"
        self._lock = threading.Lock()
        self._data = read_figures(self.path) or empty_figures()
        self._changed = False
        self._writer = PeriodicWorker("receiver-metrics", self._write, interval_s=interval_s, log=log)

    def start(self) -> ReceiverMetrics:
        self._writer.start()
        return self

    def stop(self) -> None:
        self._writer.stop()
        self._write()

    def association(self, outcome: str, reason: str) -> None:
        key = outcome if not reason else f"{outcome}|{reason}"
        with self._lock:
            self._data["associations"][key] = self._data["associations"].get(key, 0) + 1
            self._changed = True

    def stored(self, status: int, seconds: float, size: int) -> None:
        answer = category(status)
        with self._lock:
            d = self._data
            d["stores"][answer.value] = d["stores"].get(answer.value, 0) + 1
            if answer in STORED:
                d["instances"] += 1
                d["bytes"] += size
            latency = d["latency"]
            latency["buckets"][next((i for i, b in enumerate(LATENCY_BUCKETS) if seconds <= b),
                                    len(LATENCY_BUCKETS))] += 1
            latency["sum"] += seconds
            latency["count"] += 1
            self._changed = True

    def queried(self, sop_class: str, status: int) -> None:
        key = f"{FIND_MODELS.get(sop_class, 'other')}|{category(status).value}"
        with self._lock:
            finds = self._data.setdefault("finds", {})
            finds[key] = finds.get(key, 0) + 1
            self._changed = True

    def _write(self) -> None:
        with self._lock:
            if not self._changed:
                return None
            text = json.dumps(self._data)
            self._changed = False
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(text)
        os.replace(tmp, self.path)
        return None


def read_figures(path: Path) -> dict[str, Any] | None:
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data
