"""The configuration file of the server commands (`--config`, TOML) and `yingyun config show`: a real
`yingyun serve` started from a file (and a flag and the environment over it), bad files refused with
the key named, the example `deploy/yingyun.toml` holding every option of every role."""

from __future__ import annotations

import json
import os
import re
import subprocess
import tomllib
from pathlib import Path

import httpx
import pytest
import typer.main
from typer.testing import CliRunner

from tests.support.net import free_port, wait_http
from tests.support.servers import YINGYUN
from yingyun.cli.config import SERVER_COMMANDS, options_of
from yingyun.cli.main import app

EXAMPLE = Path(__file__).resolve().parents[1] / "deploy" / "yingyun.toml"
WIDE = {"COLUMNS": "400", "TERMINAL_WIDTH": "400", "YINGYUN_CONFIG": None, "YINGYUN_HTTP_PORT": None}


def invoke(*args: str, env: dict[str, str | None] | None = None):
    return CliRunner().invoke(app, list(args), env={**WIDE, **(env or {})})


def show(path: Path, role: str = "serve", env: dict[str, str | None] | None = None) -> dict:
    res = invoke("config", "show", "--config", str(path), "--role", role, "--json", env=env)
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


def options(role: str) -> set[str]:
    return set(options_of(typer.main.get_command(app).commands[role]))


def test_serve_starts_from_a_config_file_and_a_flag_overrides_it(tmp_path):
    port, overridden = free_port(), free_port()
    config = tmp_path / "yingyun.toml"
    config.write_text(f'data-dir = "{tmp_path / "data"}"\nhost = "127.0.0.1"\nhttp-port = {overridden}\n'
                      f'dicom-port = {free_port()}\ndicom-workers = 1\nlog-format = "json"\n')
    log = tmp_path / "serve.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("YINGYUN_")}
    with open(log, "wb") as err:
        proc = subprocess.Popen([YINGYUN, "serve", "--config", str(config), "--http-port", str(port)],
                                stdout=subprocess.DEVNULL, stderr=err, env=env, start_new_session=True)
    try:
        wait_http(f"http://127.0.0.1:{port}")
        assert (tmp_path / "data" / "index.sqlite3").exists() or any((tmp_path / "data").iterdir())
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"http://127.0.0.1:{overridden}/healthz", timeout=2)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    # log-format = "json" from the file: every line the server wrote is one JSON object.
    lines = [line for line in log.read_text().splitlines() if line.strip()]
    assert lines and all(json.loads(line)["level"] for line in lines)
    assert any(f"HTTP on 127.0.0.1:{port}" in json.loads(line)["message"] for line in lines)


def test_a_bad_file_stops_the_start_naming_the_key(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('http-port = "8080"\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("YINGYUN_")} | {"COLUMNS": "400"}
    ran = subprocess.run([YINGYUN, "serve", "--config", str(bad), "--data-dir", str(tmp_path / "d")],
                         capture_output=True, text=True, env=env, timeout=60)
    assert ran.returncode == 2
    assert "key 'http-port' takes a whole number, not '8080'" in ran.stderr
    assert not (tmp_path / "d").exists()  # refused before anything was created


@pytest.mark.parametrize(("text", "words"), [
    ("htp-port = 80\n", "unknown key 'htp-port' (did you mean 'http-port'?)"),
    ('cloud-url = "https://c"\n', "key 'cloud-url' is not a setting of `yingyun serve` (it is of gateway)"),
    ("demo = 1\n", "key 'demo' takes true or false, not 1"),
    ('trusted-proxy = "10.0.0.0/8"\n', "key 'trusted-proxy' takes a list of strings"),
    ("max-associations = 0\n", "key 'max-associations'"),
    ('timezone = "Mars/Olympus"\n', "key 'timezone': unknown time zone 'Mars/Olympus'"),
    ('log-format = "xml"\n', "key 'log-format': 'xml' is not one of text, json"),
    ("http-port = \n", "is not TOML"),
])
def test_refused_with_the_key_named(tmp_path, text, words):
    path = tmp_path / "y.toml"
    path.write_text(text)
    res = invoke("serve", "--config", str(path))
    assert res.exit_code == 2
    assert words in re.sub(r"\s*│\s*", " ", res.output), res.output


def test_a_missing_file_is_refused(tmp_path):
    res = invoke("serve", "--config", str(tmp_path / "none.toml"))
    assert res.exit_code == 2 and "cannot read" in res.output


def test_config_show_says_where_each_value_came_from_and_masks_secrets(tmp_path):
    path = tmp_path / "gw.toml"
    path.write_text(f'data-dir = "{tmp_path}"\ngateway-id = "gw1"\n'
                    'gateway-key = "k-very-secret"\npublic-url = "https://film.example"\nhttp-port = 8081\n'
                    'database-url = "postgresql+psycopg://yy:pw-secret@db/yy"\n'
                    'cloud-url = "https://gw:cloud-secret@cloud.example/"\n')
    shown = show(path, "gateway", env={"YINGYUN_HTTP_PORT": "9001"})
    assert shown["http-port"] == {"value": 9001, "source": "env", "from": "YINGYUN_HTTP_PORT"}
    assert shown["cloud-url"] == {"value": "https://gw:***@cloud.example/", "source": "file", "from": str(path)}
    assert shown["spool-days"] == {"value": 7.0, "source": "default", "from": None}
    assert shown["gateway-key"]["value"] == "********"
    assert "pw-secret" not in shown["database-url"]["value"] and "db/yy" in shown["database-url"]["value"]
    text = invoke("config", "show", "--config", str(path), "--role", "gateway").stdout
    assert "k-very-secret" not in text and "pw-secret" not in text and "cloud-secret" not in text
    assert re.search(r"^gateway-id\s+= \"gw1\"  # file ", text, re.M)


def example_keys() -> dict[str, object]:
    """The keys the example shows (commented out, `# key = value`), with their values."""
    keys: dict[str, object] = {}
    for line in EXAMPLE.read_text().splitlines():
        m = re.fullmatch(r"# ([a-z][a-z0-9-]*) = (.+)", line)
        if m:
            keys.update(tomllib.loads(f"{m[1]} = {m[2]}"))
    return keys


def test_the_example_file_parses_and_lists_every_option():
    assert tomllib.loads(EXAMPLE.read_text()) == {}  # as shipped: everything commented, the defaults rule
    keys = example_keys()
    every = set().union(*(options(role) for role in SERVER_COMMANDS))
    assert set(keys) == every, f"missing: {sorted(every - set(keys))}, unknown: {sorted(set(keys) - every)}"


@pytest.mark.parametrize("role", SERVER_COMMANDS)
def test_the_example_values_are_accepted_by_each_role(tmp_path, role):
    keys = {k: v for k, v in example_keys().items() if k in options(role)}
    keys["data-dir"] = str(tmp_path)
    path = tmp_path / "y.toml"
    path.write_text("".join(f"{k} = {json.dumps(v)}\n" for k, v in keys.items()))
    shown = show(path, role)
    assert {k for k, v in shown.items() if v["source"] == "file"} == set(keys)


def test_log_level_from_the_environment_over_the_file(tmp_path):
    port = free_port()
    config = tmp_path / "yingyun.toml"
    config.write_text(f'data-dir = "{tmp_path / "data"}"\nhost = "127.0.0.1"\nhttp-port = {port}\n'
                      f'dicom-port = {free_port()}\ndicom-workers = 1\nlog-level = "DEBUG"\n')
    log = tmp_path / "serve.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("YINGYUN_")} | {"YINGYUN_LOG_LEVEL": "WARNING"}
    with open(log, "wb") as err:
        proc = subprocess.Popen([YINGYUN, "serve", "--config", str(config)], stdout=subprocess.DEVNULL, stderr=err,
                                env=env, start_new_session=True)
    try:
        wait_http(f"http://127.0.0.1:{port}")
        httpx.get(f"http://127.0.0.1:{port}/nowhere", timeout=5)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    text = log.read_text()
    assert " INFO " not in text and " DEBUG " not in text, text[-2000:]
