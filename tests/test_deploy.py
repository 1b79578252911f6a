"""What `deploy/` ships (issue 18, items 2 and 6): the systemd units pass `systemd-analyze verify`
and run the role they are named for from the config file, hardened; the Grafana dashboard
charts only metrics a server serves."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import httpx

from tests.support.servers import YINGYUN

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
UNITS = {"yingyun.service": "serve", "yingyun-gateway.service": "gateway", "yingyun-cloud.service": "cloud"}
HARDENING = ["NoNewPrivileges=yes", "ProtectSystem=strict", "ProtectHome=yes", "PrivateTmp=yes",
             "StateDirectory=yingyun", "User=yingyun", "CapabilityBoundingSet=", "UMask=0077"]


def test_the_units_pass_systemd_analyze_verify(tmp_path):
    # The installed path is /opt/yingyun/bin/yingyun; verify checks that ExecStart exists, so point it at ours.
    for name in UNITS:
        text = (DEPLOY / "systemd" / name).read_text().replace("/opt/yingyun/bin/yingyun", YINGYUN)
        (tmp_path / name).write_text(text)
    ran = subprocess.run(["systemd-analyze", "verify", "--man=no", *(str(tmp_path / n) for n in UNITS)],
                         capture_output=True, text=True, timeout=60)
    # An unknown or misspelt key is only a warning (exit 0): none may be printed about our units.
    ours = [line for line in (ran.stdout + ran.stderr).splitlines() if any(n in line for n in UNITS)]
    assert ran.returncode == 0 and not ours, ran.stdout + ran.stderr


def test_each_unit_runs_its_role_from_the_config_file_hardened():
    for name, role in UNITS.items():
        text = (DEPLOY / "systemd" / name).read_text()
        start = rf"^ExecStart=/opt/yingyun/bin/yingyun {role} --config /etc/yingyun/yingyun\.toml$"
        assert re.search(start, text, re.M), name
        for line in HARDENING:
            assert re.search(rf"^{re.escape(line)}$", text, re.M), f"{name}: {line}"


def test_the_logrotate_file_rotates_the_units_log_folder():
    text = (DEPLOY / "logrotate" / "yingyun").read_text()
    assert "/var/log/yingyun/*.log {" in text and "copytruncate" in text
    for name in UNITS:
        assert f"/var/log/yingyun/{name.removesuffix('.service')}.log" in (DEPLOY / "systemd" / name).read_text()


def test_the_dashboard_charts_only_metrics_the_server_serves(app_server):
    served = set()
    for line in httpx.get(app_server.url + "/metrics").text.splitlines():
        if line.startswith("# TYPE "):
            name, kind = line.split()[2:4]
            served |= {name} | ({f"{name}_bucket", f"{name}_sum", f"{name}_count"} if kind == "histogram" else set())
            served |= {f"{name}_total"} if kind == "counter" else set()
    # Metrics of the roles this test's app does not run (a gateway's, the cloud's per-gateway figures).
    served |= {"yingyun_sync_backlog", "yingyun_sync_lag_seconds", "yingyun_sync_last_applied_timestamp_seconds"}
    dashboard = json.loads((DEPLOY / "grafana" / "yingyun-dashboard.json").read_text())
    used = {name for panel in dashboard["panels"] for target in panel["targets"]
            for name in re.findall(r"\b(yingyun_[a-z_]+)", target["expr"])}
    assert len(used) >= 20
    assert used <= served, sorted(used - served)
