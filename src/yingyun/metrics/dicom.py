"""/metrics of the DICOM receivers: their figures (metrics/receivers.py), summed over their files."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from ..dicomnet.status import Category
from .receivers import FIND_MODELS, LATENCY_BUCKETS, STORED, empty_figures, metrics_dir, read_figures


class ReceiverCollector(Collector):
    """The receivers' figures, summed over their files."""

    def __init__(self, run_dir: Path) -> None:
        self.folder = metrics_dir(run_dir)

    def collect(self) -> Iterator[Metric]:
        total = empty_figures()
        for path in sorted(self.folder.glob("receiver-*.json")):
            data = read_figures(path)
            if data is None:
                continue
            for family in ("associations", "stores", "finds"):
                for key, n in data.get(family, {}).items():
                    total[family][key] = total[family].get(key, 0) + n
            total["instances"] += data.get("instances", 0)
            total["bytes"] += data.get("bytes", 0)
            latency = data.get("latency", {})
            for i, n in enumerate(latency.get("buckets", [])[:len(LATENCY_BUCKETS) + 1]):
                total["latency"]["buckets"][i] += n
            total["latency"]["sum"] += latency.get("sum", 0.0)
            total["latency"]["count"] += latency.get("count", 0)
        associations = CounterMetricFamily("yingyun_dicom_associations", "DICOM associations by outcome "
                                           "(accepted, rejected) and the reason of a rejection",
                                           labels=["outcome", "reason"])
        associations.add_metric(["accepted", ""], total["associations"].get("accepted", 0))
        for key, n in sorted(total["associations"].items()):
            outcome, _, reason = key.partition("|")
            if reason:
                associations.add_metric([outcome, reason], n)
        yield associations
        stores = CounterMetricFamily("yingyun_dicom_cstore", "C-STORE requests answered, by status category",
                                     labels=["status"])
        for answer in Category:
            if answer in (*STORED, Category.FAILURE) or answer.value in total["stores"]:
                stores.add_metric([answer.value], total["stores"].get(answer.value, 0))
        yield stores
        finds = CounterMetricFamily("yingyun_dicom_cfind", "C-FIND requests answered, by information model "
                                    "(worklist: the modality worklist) and final status category",
                                    labels=["model", "status"])
        for model in FIND_MODELS.values():
            finds.add_metric([model, Category.SUCCESS.value], total["finds"].get(f"{model}|success", 0))
        for key, n in sorted(total["finds"].items()):
            model, _, answer = key.partition("|")
            if answer != Category.SUCCESS.value or model not in FIND_MODELS.values():
                finds.add_metric([model, answer], n)
        yield finds
        yield CounterMetricFamily("yingyun_dicom_instances_stored", "Instances stored over C-STORE",
                                  value=total["instances"])
        yield CounterMetricFamily("yingyun_dicom_stored_bytes", "Bytes of the instances stored over C-STORE",
                                  value=total["bytes"])
        latency = HistogramMetricFamily("yingyun_dicom_cstore_seconds",
                                        "C-STORE latency: from the data set in to the answer (stored and indexed)")
        cumulative, buckets = 0, []
        for bound, n in zip((*map(str, LATENCY_BUCKETS), "+Inf"), total["latency"]["buckets"], strict=True):
            cumulative += n
            buckets.append((bound, cumulative))
        latency.add_metric([], buckets, sum_value=total["latency"]["sum"])
        yield latency
