"""`yingyun admin department|device-type|device` and the nouns that moved onto the organisation service:
the same service the API runs, so the same rules and the same words, in-process (CliRunner)."""

from __future__ import annotations

import json

from ...test_cli import cli


def test_departments_device_types_and_devices_from_the_command_line(runtime, settings) -> None:
    cli(settings, "hospital", "add", "--id", "h1", "--name", "一院")
    assert cli(settings, "department", "add", "--hospital", "h1", "--name", "放射科", "--id", "rad").stdout == (
        "department rad added\n")
    assert cli(settings, "department", "add", "--hospital", "h1", "--name", "影像科", "--id", "rad").stdout == (
        "department rad updated\n")
    cli(settings, "device-type", "add", "--id", "ct", "--name", "GE Revolution CT", "--modality", "CT")
    out = cli(settings, "device", "add", "--hospital", "h1", "--name", "CT-1", "--type", "ct", "--department", "rad",
              "--ae-title", "CT1", "--host", "127.0.0.1", "--id", "ct1").stdout
    assert out == "device ct1 added\n"
    assert json.loads(cli(settings, "device", "list", "--json", "--hospital", "h1").stdout) == [{
        "id": "ct1", "hospitalId": "h1", "name": "CT-1", "deviceTypeId": "ct", "modality": "CT",
        "departmentId": "rad", "aeTitle": "CT1", "host": "127.0.0.1", "port": 104, "enabled": True}]
    # The device's AE title is a PACS peer the DICOM port accepts; it goes with the device, not by itself.
    assert json.loads(cli(settings, "pacs", "list", "--json").stdout)[0] == {
        "aeTitle": "CT1", "host": "127.0.0.1", "port": 104, "hospitalId": "h1", "deviceId": "ct1", "retrieve": "move"}
    assert runtime.tenancy.pacs()["CT1"].hospital_id == "h1"
    refused = cli(settings, "pacs", "remove", "--ae-title", "CT1", check=False)
    assert refused.returncode == 1 and "PACS CT1 has 1 device (ct1): nothing was changed" in refused.stderr
    cli(settings, "device", "disable", "--id", "ct1")
    assert json.loads(cli(settings, "pacs", "list", "--json").stdout) == []
    cli(settings, "device", "enable", "--id", "ct1")
    assert [p["aeTitle"] for p in json.loads(cli(settings, "pacs", "list", "--json").stdout)] == ["CT1"]

    # What still holds something is refused, naming it; once nothing does, it goes.
    for noun, key, held_by in (("device-type", "ct", "1 device (ct1)"), ("department", "rad", "1 device (ct1)"),
                               ("hospital", "h1", "1 department (rad) and 1 device (ct1)")):
        r = cli(settings, noun, "remove", "--id", key, check=False)
        assert r.returncode == 1 and held_by in r.stderr, r.stderr
    cli(settings, "device", "remove", "--id", "ct1")
    assert json.loads(cli(settings, "pacs", "list", "--json").stdout) == []
    cli(settings, "device-type", "remove", "--id", "ct")
    cli(settings, "department", "remove", "--id", "rad")
    cli(settings, "hospital", "remove", "--id", "h1")
    for noun in ("device", "device-type", "department", "hospital"):
        assert cli(settings, noun, "list").stdout == "(none)\n"


def test_the_command_line_refuses_what_the_api_refuses(runtime, settings) -> None:
    cli(settings, "union", "add", "--id", "u1", "--name", "联盟一")
    cli(settings, "hospital", "add", "--id", "h1", "--name", "一院", "--union", "u1")
    cli(settings, "department", "add", "--hospital", "h1", "--name", "放射科")
    for args, words in [
        (("hospital", "add", "--id", "h2", "--name", "一院"), "hospital 'h1' is already named '一院'"),
        (("union", "add", "--id", "u2", "--name", "联盟一"), "union 'u1' is already named '联盟一'"),
        (("department", "add", "--hospital", "h1", "--name", "放射科"), "hospital h1 already has a department"),
        (("department", "add", "--hospital", "h9", "--name", "超声科"), "no hospital 'h9'"),
        (("device", "add", "--hospital", "h1", "--name", "CT-1", "--type", "nope"), "no device type 'nope'"),
        (("device-type", "add", "--name", "X", "--modality", "c-t"), "modality is 1-16 of A-Z 0-9 _"),
    ]:
        r = cli(settings, *args, check=False)
        assert r.returncode == 1 and words in r.stderr, (args, r.stderr)
    assert json.loads(cli(settings, "hospital", "list", "--json").stdout) == [
        {"id": "h1", "name": "一院", "unionId": "u1", "enabled": True}]


def test_the_moved_commands_say_what_they_always_said(runtime, settings) -> None:
    assert cli(settings, "union", "add", "--id", "u1", "--name", "U").stdout == "union u1 added\n"
    assert cli(settings, "union", "add", "--id", "u1", "--name", "U2").stdout == "union u1 updated\n"
    assert cli(settings, "hospital", "add", "--id", "h1", "--name", "H", "--union", "u1").stdout == (
        "hospital h1 added\n")
    assert cli(settings, "hospital", "disable", "--id", "h1").stdout == "hospital h1 disabled\n"
    assert cli(settings, "pacs", "add", "--ae-title", "P1", "--host", "h", "--port", "104", "--hospital", "h1"
               ).stdout == "PACS P1 added\n"
    added = cli(settings, "gateway", "add", "--id", "g1", "--hospital", "h1")
    assert added.stdout.startswith("gateway g1 added\nkey: ") and "shown once" in added.stderr
    assert cli(settings, "gateway", "add", "--id", "g1", "--hospital", "h1").stdout == "gateway g1 updated\n"
    added = cli(settings, "partner", "add", "--app-id", "p1", "--hospital", "h1")
    assert added.stdout.startswith("partner p1 added\ntoken: ")
    assert cli(settings, "partner", "add", "--app-id", "p1", "--token", "t" * 32).stdout == "partner p1 updated\n"
    assert runtime.tenancy.partner("p1").tokens == ("t" * 32,)
    assert cli(settings, "doctor", "add", "--id", "d1", "--name", "王", "--hospital", "h1").stdout == (
        "doctor d1 added\n")
    r = cli(settings, "doctor", "remove", "--id", "d9", check=False)
    assert r.returncode == 1 and r.stderr.startswith("error: 20028 医生不存在")
