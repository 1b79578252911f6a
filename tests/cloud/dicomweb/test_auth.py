"""Credentials, statuses, CORS and the token commands."""

from __future__ import annotations

import json
import time

import httpx
from typer.testing import CliRunner

from yingyun.cli.main import app
from yingyun.contract.signing import signed_headers

from .conftest import VIEWER_ORIGIN


def test_no_or_bad_credentials_are_401(archive):
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic dXNlcjpwYXNz"},
                    {"Authorization": "Bearer"}, {"appId": "nobody", "timestamp": "1", "signature": "x"}):
        r = httpx.get(archive.dw + "/studies", headers=headers)
        assert r.status_code == 401, headers
        assert r.headers["WWW-Authenticate"].startswith("Bearer")
        assert r.json()["detail"]


def test_partner_signature(archive):
    ok = signed_headers("ris-h1", archive.partners["ris-h1"])
    assert httpx.get(archive.dw + "/studies", headers=ok).status_code == 200
    assert httpx.get(archive.dw + "/studies", headers={k.lower(): v for k, v in ok.items()}).status_code == 200
    wrong = dict(ok, signature="0" * 64)
    assert httpx.get(archive.dw + "/studies", headers=wrong).status_code == 401
    old = signed_headers("ris-h1", archive.partners["ris-h1"], now=time.time() - 3600)
    r = httpx.get(archive.dw + "/studies", headers=old)
    assert r.status_code == 401 and "window" in r.json()["detail"]
    r = httpx.get(archive.dw + "/studies", headers=signed_headers("off", archive.partners["off"]))
    assert r.status_code == 403 and "disabled" in r.json()["detail"]


def test_cors_for_a_viewer_elsewhere(archive):
    pre = httpx.options(archive.dw + "/studies", headers={
        "Origin": VIEWER_ORIGIN, "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "authorization,accept"})
    assert pre.status_code == 200
    assert pre.headers["access-control-allow-origin"] == VIEWER_ORIGIN
    assert "authorization" in pre.headers["access-control-allow-headers"].lower()
    r = httpx.get(archive.dw + "/studies", headers={"Origin": VIEWER_ORIGIN, **archive.bearer("ops-all")})
    assert r.headers["access-control-allow-origin"] == VIEWER_ORIGIN
    assert "Warning" in r.headers["access-control-expose-headers"]
    other = httpx.options(archive.dw + "/studies", headers={"Origin": "http://evil.example",
                                                           "Access-Control-Request-Method": "GET"})
    assert other.status_code == 400 and "access-control-allow-origin" not in other.headers
    # only /dicomweb is opened to other origins
    r = httpx.get(archive.url + "/healthz", headers={"Origin": VIEWER_ORIGIN})
    assert "access-control-allow-origin" not in r.headers


def test_token_commands_and_revocation(archive):
    runner = CliRunner()
    st = archive.runtime.settings
    common = ["--data-dir", str(st.data_dir), "--database-url", st.database_url]
    res = runner.invoke(app, ["admin", "token", "add", "--name", "cli-tool", "--hospital", "h2", *common])
    assert res.exit_code == 0, res.output
    token = res.stdout.split("token: ", 1)[1].split()[0]
    assert token.startswith("yyw_") and len(token) == 4 + 43
    r = httpx.get(archive.dw + "/studies", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200 and {x["00100020"]["Value"][0] for x in r.json()} == {"PID3"}
    res = runner.invoke(app, ["admin", "token", "add", "--name", "cli-tool", "--all-hospitals", *common])
    assert res.exit_code == 1 and "revoke it first" in res.output
    res = runner.invoke(app, ["admin", "token", "add", "--name", "x", *common])
    assert res.exit_code == 1
    res = runner.invoke(app, ["admin", "token", "add", "--name", "x", "--hospital", "h404", *common])
    assert res.exit_code == 1 and "h404" in res.output
    res = runner.invoke(app, ["admin", "token", "list", "--json", *common])
    rows = {r["name"]: r for r in json.loads(res.stdout)}
    assert rows["cli-tool"]["hospitals"] == ["h2"] and rows["ops-all"]["allHospitals"] is True
    assert token not in res.stdout and all("hash" not in k.lower() for k in rows["cli-tool"])
    res = runner.invoke(app, ["admin", "token", "revoke", "--name", "cli-tool", *common])
    assert res.exit_code == 0
    deadline = time.time() + 10
    while time.time() < deadline:  # the running server sees it within its refresh interval
        if httpx.get(archive.dw + "/studies", headers={"Authorization": f"Bearer {token}"}).status_code == 401:
            break
        time.sleep(0.2)
    else:
        raise AssertionError("revoked token still accepted")
    res = runner.invoke(app, ["admin", "token", "revoke", "--name", "cli-tool", *common])
    assert res.exit_code == 1
    res = runner.invoke(app, ["admin", "token", "add", "--name", "cli-tool", "--all-hospitals", *common])
    assert res.exit_code == 0  # the name is free again once revoked
    res = runner.invoke(app, ["admin", "token", "list", *common])
    assert "cli-tool" in res.stdout
