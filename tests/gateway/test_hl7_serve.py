"""`yingyun serve --hl7-port` as a process: the listener starts with it, takes a registered sender's
orders as the JSON API's studies, and counts them on /metrics."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import httpx
from hl7.client import MLLPClient

from ..support.net import free_port
from ..support.servers import YINGYUN, ServeProcess
from .test_hl7 import FACILITY, acked, orm


def admin(data_dir: Path, *args: str) -> str:
    return subprocess.run([YINGYUN, "admin", *args, "--data-dir", str(data_dir)], check=True, capture_output=True,
                          text=True, timeout=60).stdout


def test_serve_with_hl7_port_accepts_orders_and_counts_them(tmp_path) -> None:
    data = tmp_path / "data"
    subprocess.run([YINGYUN, "db", "upgrade", "--data-dir", str(data)], check=True, capture_output=True, timeout=60)
    admin(data, "hospital", "add", "--id", "h1", "--name", "一院")
    admin(data, "hl7-sender", "add", "--facility", FACILITY, "--host", "127.0.0.1", "--hospital", "h1")
    port = free_port()
    with ServeProcess(data, "--hl7-port", str(port)) as serve, MLLPClient("127.0.0.1", port) as client:
        ack = acked(client.send_message(orm("P1")))
        assert ack["MSA"][1:3] == ["AA", "P1"], ack
        studies = json.loads(admin(data, "studies", "--json"))
        assert [(st["studyId"], st["patientName"]) for st in studies] == [("ST1001", "张三")]
        metrics = httpx.get(serve.url + "/metrics").text
        assert 'yingyun_hl7_messages_total{ack="AA",type="ORM^O01"} 1.0' in metrics

