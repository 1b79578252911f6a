"""Log lines a caller cannot forge (issue 12 item 7)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import httpx
import orjson

from yingyun.contract.signing import signed_headers
from yingyun.runtime import Runtime
from yingyun.settings import Settings
from yingyun.storage.db import default_sqlite_url

from ..support.servers import ServeProcess

# A value that would end the line, forge a WARNING line, recolour the terminal and close the quotes.
FORGED = 'S1\n2026-01-01 00:00:00,000 WARNING yingyun.ris [-] FORGED\r\x1b[31m" admin=1 \u2028FORGED2'
LINE_START = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2},\d{3} (DEBUG|INFO|WARNING|ERROR|CRITICAL) [\w.]+ \[")


def test_quoted_escapes_controls_quotes_and_backslashes():
    from yingyun.core.logging import one_line, quoted

    assert quoted("S001") == '"S001"'
    assert quoted("胸部CT") == '"胸部CT"'
    assert quoted('a"b\\c') == '"a\\"b\\\\c"'
    assert quoted("a\nb\rc\td") == '"a\\nb\\rc\\td"'
    assert quoted("\x1b[31mred\x7f\x85") == '"\\x1b[31mred\\x7f\\x85"'
    assert quoted("x\u2028y\u202ez") == '"x\\u2028y\\u202ez"'
    assert quoted(42) == '"42"'
    out = quoted(FORGED)
    assert out.count('"') - out.count('\\"') == 2  # one quoted token
    assert not re.search(r"[\x00-\x1f\x7f-\x9f\u2028]", out)
    assert one_line("a\nb") == "a\\nb" and one_line('keeps "quotes"') == 'keeps "quotes"'


def test_every_configured_message_stays_on_one_line():
    code = ("import logging; from yingyun.core.logging import configure; configure(); "
            "logging.getLogger('yingyun.t').warning('value %s', " + repr(FORGED) + ")")
    err = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60).stderr
    lines = err.splitlines()
    assert len(lines) == 1 and LINE_START.match(lines[0]) and "FORGED" in lines[0], err
    assert "\x1b" not in err


def test_ris_values_cannot_forge_server_log_lines(tmp_path: Path):
    data = tmp_path / "data"
    rt = Runtime.open(Settings(data_dir=data, database_url=default_sqlite_url(data)), create_keys=True, migrate=True)
    rt.tenancy.add_hospital(hospital_id="h1", name="一院")
    _, token = rt.tenancy.add_partner(app_id="ris1", hospitals=["h1"])
    rt.close()
    study = {"patientId": "P", "patientName": "张三", "patientSex": "M", "studyId": FORGED, "accessNumber": "A1",
             "modality": "CT"}
    report = {"reportNumber": FORGED, "studyId": FORGED, "accessNumber": "A1", "imageDescription": "所见",
              "conclusion": "结论"}
    with ServeProcess(data) as server:
        for path, body in (("/ris/study/add", study), ("/ris/report/add", report)):
            r = httpx.post(server.url + path, content=orjson.dumps(body), headers=signed_headers("ris1", token),
                           timeout=30)
            assert r.json()["code"] == 0
    text = server.log.read_bytes().decode("utf-8")
    lines = text.splitlines()
    assert any("studyId=" in ln and "FORGED" in ln for ln in lines) and any("reportNumber=" in ln for ln in lines)
    for ln in lines:
        assert LINE_START.match(ln), f"a line the server did not start: {ln!r}"
    assert "\x1b" not in text and "\u2028" not in text and "\r" not in text
    forged = [ln for ln in lines if "FORGED" in ln]
    assert all(re.search(r'(studyId|reportNumber)="S1\\n2026', ln) for ln in forged), forged
