"""/metrics: what an operator watches, in one Prometheus registry per app.

The shape (kept by every domain that adds to it):

* names are `yingyun_<domain>_<what>[_<unit>]`, counters end in `_total`, units are
  seconds and bytes; labels are ids (gateway, hospital, partner appId, queue kind, state,
  reason), never a patient's anything;
* the HTTP counters are `web.common.Metrics`'; every other domain exposes a prometheus
  `Collector` and adds it in `metrics/registry.register` (one line), which
  `serve.create_app` calls with the app's registry. A collector reads what its domain
  already keeps (tables, the receivers' files) at scrape time: nothing to keep in step
  across processes.

This package's `__init__` imports nothing, so that a DICOM receiver can load
`metrics.receivers` alone.
"""
