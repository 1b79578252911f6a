"""/metrics of a real `yingyun serve` (issue 18, item 6): every figure an operator watches is
there, and moves as a PACS sends, a stranger is turned away, a backup runs; `--metrics-allow`
keeps it from other addresses."""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from ..support.dicom_data import StudySpec, make_study
from ..support.dicom_peers import echoscu, run_dcmtk
from ..support.net import free_port, wait_http
from .test_dicom_listeners import YINGYUN, registered, serve, stop

EVERY = [
    "yingyun_http_requests_total", "yingyun_dicom_associations_total", "yingyun_dicom_cstore_total",
    "yingyun_dicom_instances_stored_total", "yingyun_dicom_stored_bytes_total", "yingyun_dicom_cstore_seconds_count",
    "yingyun_queue_jobs", "yingyun_queue_oldest_pending_seconds", "yingyun_stability_pending_studies",
    "yingyun_stability_lag_seconds", "yingyun_store_instances", "yingyun_store_bytes", "yingyun_blob_store_bytes",
    "yingyun_disk_free_bytes", "yingyun_disk_size_bytes", "yingyun_disk_min_free_bytes",
    "yingyun_backup_last_success_timestamp_seconds", "yingyun_scrub_pass_progress_ratio",
    "yingyun_scrub_errors_total", "yingyun_scrub_passes_total", "yingyun_state_up",
]


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    r = httpx.get(url + "/metrics", timeout=10)
    assert r.status_code == 200, r.text
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(r.text) for s in family.samples}


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def names(samples: dict) -> set[str]:
    return {name for name, _ in samples}


def until(fn, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while True:
        got = fn()
        if got or time.monotonic() > deadline:
            return got
        time.sleep(0.3)


def test_every_metric_is_there_and_moves_in_a_run(tmp_path):
    data = registered(tmp_path / "d")
    http, dicom = free_port(), free_port()
    proc = serve(data, http, dicom, tmp_path / "serve.log", "--dicom-workers", "2", "--stable-seconds", "3600")
    url = f"http://127.0.0.1:{http}"
    try:
        wait_http(url)
        before = scrape(url)
        assert set(EVERY) <= names(before), sorted(set(EVERY) - names(before))
        assert value(before, "yingyun_state_up") == 1
        assert value(before, "yingyun_dicom_instances_stored_total") == 0
        assert value(before, "yingyun_disk_free_bytes", path=str(data.resolve())) > 0

        files = make_study(tmp_path / "study", StudySpec(), series=1, per_series=4)
        sent = run_dcmtk("storescu", "-aet", "PACS1", "-aec", "YINGYUN", "127.0.0.1", str(dicom), *map(str, files))
        assert sent.returncode == 0, sent.stderr
        assert echoscu(dicom, called="YINGYUN", calling="STRANGER").returncode != 0
        size = sum(f.stat().st_size for f in files)

        def moved():
            now = scrape(url)
            return now if value(now, "yingyun_dicom_instances_stored_total") == 4 and value(
                now, "yingyun_dicom_associations_total", outcome="rejected",
                reason="unknown calling AE title") == 1 and value(now, "yingyun_store_instances", hospital="h1") == 4 \
                else None
        after = until(moved)
        assert after, scrape(url)
        assert value(after, "yingyun_dicom_associations_total", outcome="accepted", reason="") >= 1
        assert value(after, "yingyun_dicom_cstore_total", status="success") == 4
        assert value(after, "yingyun_dicom_cstore_seconds_count") == 4
        assert value(after, "yingyun_dicom_cstore_seconds_sum") > 0
        # The data set's bytes as received (the file's less its preamble and meta), and as held.
        assert 0.5 * size < value(after, "yingyun_dicom_stored_bytes_total") <= size
        assert value(after, "yingyun_store_bytes", hospital="h1") > 0
        assert value(after, "yingyun_blob_store_bytes") >= value(after, "yingyun_store_bytes", hospital="h1")
        assert value(after, "yingyun_stability_pending_studies") == 1
        assert value(after, "yingyun_http_requests_total", route="/metrics", method="GET", status="200", code="") >= 1

        backed = subprocess.run([YINGYUN, "backup", "--to", str(tmp_path / "bk"), "--data-dir", str(data)],
                                capture_output=True, text=True, timeout=120)
        assert backed.returncode == 0, backed.stderr
        started = time.time()
        backup = until(lambda: value(scrape(url), "yingyun_backup_last_success_timestamp_seconds") > started - 120)
        assert backup
    finally:
        stop(proc)
    log = (tmp_path / "serve.log").read_text()
    assert "Zhang" not in log and "张" not in log


def test_metrics_allow_keeps_metrics_from_other_addresses(tmp_path):
    data = registered(tmp_path / "d")
    http, dicom = free_port(), free_port()
    proc = serve(data, http, dicom, tmp_path / "serve.log", "--dicom-workers", "1", "--metrics-allow", "10.9.0.0/16")
    url = f"http://127.0.0.1:{http}"
    try:
        wait_http(url)
        refused = httpx.get(url + "/metrics", timeout=10)
        assert refused.status_code == 403 and "--metrics-allow" in refused.text
        assert "yingyun_" not in refused.text
    finally:
        stop(proc)
    proc = serve(data, http, dicom, tmp_path / "serve.log", "--dicom-workers", "1", "--metrics-allow", "127.0.0.0/8")
    try:
        wait_http(url)
        assert re.search(r"^yingyun_state_up 1", httpx.get(url + "/metrics", timeout=10).text, re.M)
    finally:
        stop(proc)


def test_json_logs_carry_ids_and_the_access_log_redacts_tokens_and_query_values(tmp_path):
    data = registered(tmp_path / "d")
    http, dicom = free_port(), free_port()
    log = tmp_path / "serve.log"
    proc = serve(data, http, dicom, log, "--dicom-workers", "1", "--access-log", "--log-format", "json")
    url = f"http://127.0.0.1:{http}"
    try:
        wait_http(url)
        httpx.get(url + "/h5/s/AbCdEfGhIjKlMnOp1234", timeout=10)
        httpx.get(url + "/dicomweb/studies?PatientName=Zhang&PatientID=PID77", timeout=10)
        assert echoscu(dicom, called="YINGYUN", calling="PACS1").returncode == 0
    finally:
        stop(proc)
    text = Path(log).read_text()
    assert "AbCdEfGhIjKlMnOp1234" not in text and "Zhang" not in text and "PID77" not in text
    assert '/h5/s/…' in text and "PatientName=…&PatientID=…" in text
    assert re.search(r'"logger": "yingyun.access".*"request_id": "[0-9a-f]{16}"', text)
    lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    accepted = [r for r in lines if re.match(r"association [0-9a-f]{8} accepted", r["message"])]
    assert accepted and accepted[0]["association_id"] == accepted[0]["message"].split()[1]
