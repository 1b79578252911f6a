"""/metrics of storage commitment (gateway/commitment.py), read from its table at scrape time.

The requests are rows of the index, written by whichever receiver took them and
settled by the association or the serve process's sender, so the index is the one
place that knows them all (a receiver's in-memory counts would each see a part).
Counted per instance, as a PACS asks: requested, and of those reported, committed
and failed; and the requests by state (pending, reported, undeliverable).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from ..core.ttl import TtlCache
from ..storage.db import Database
from ..storage.schema import storage_commitments

log = logging.getLogger("yingyun.metrics")

STATES = ("pending", "reported", "undeliverable")  # gateway/commitment.py (not imported: metrics sit below it)

Figures = dict[str, tuple[int, int, int, int]]  # state -> requests, instances requested, committed, failed


class CommitmentCollector(Collector):
    def __init__(self, db: Database, *, ttl_s: float = 5.0) -> None:
        self.db = db
        self._cache: TtlCache[None, Figures] = TtlCache(ttl_s)

    def _read(self, _: None) -> Figures:
        c = storage_commitments.c
        with self.db.read() as conn:
            return {str(state): (int(n), int(req or 0), int(ok or 0), int(bad or 0))
                    for state, n, req, ok, bad in conn.execute(
                        select(c.state, func.count(), func.sum(c.n_requested), func.sum(c.n_committed),
                               func.sum(c.n_failed)).group_by(c.state))}

    def collect(self) -> Iterator[Metric]:
        try:
            fig = self._cache.get(None, self._read)
        except Exception:
            log.warning("metrics: storage commitments could not be read", exc_info=True)
            return
        zero = (0, 0, 0, 0)
        requests = GaugeMetricFamily("yingyun_storage_commitments", "Storage commitment requests by state "
                                     "(pending: the result not yet answered by the requester)", labels=["state"])
        for state in STATES:
            requests.add_metric([state], fig.get(state, zero)[0])
        yield requests
        instances = CounterMetricFamily("yingyun_storage_commitment_instances", "Instances asked to be committed "
                                        "(requested), and of the results answered, committed and failed",
                                        labels=["outcome"])
        instances.add_metric(["requested"], sum(f[1] for f in fig.values()))
        instances.add_metric(["committed"], fig.get("reported", zero)[2])
        instances.add_metric(["failed"], fig.get("reported", zero)[3])
        yield instances
