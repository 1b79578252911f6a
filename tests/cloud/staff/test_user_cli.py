"""`yingyun admin user …` (issue 14 item 1): accounts with scoped roles, Argon2id passwords, TOTP, doctors as users."""

from __future__ import annotations

import json

import pyotp
from sqlalchemy import select
from typer.testing import CliRunner

from yingyun.cli.main import app
from yingyun.cloud.staff import accounts
from yingyun.storage import schema as s

from ...test_cli import Ran

PW = "a long enough password"


def user(settings, *args: str, stdin: str | None = None) -> Ran:
    res = CliRunner().invoke(app, ["admin", "user", *args, "--data-dir", str(settings.data_dir),
                                   "--database-url", settings.database_url], input=stdin)
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        raise res.exception
    return Ran(res.exit_code, res.stdout, res.stderr)


def world(runtime) -> None:
    runtime.tenancy.add_union(union_id="u1", name="联盟一")
    runtime.tenancy.add_hospital(hospital_id="h1", name="第一医院", union_id="u1")


def test_add_list_show_with_scoped_roles(settings, runtime) -> None:
    world(runtime)
    r = user(settings, "add", "--username", "li", "--name", "李管理", "--role", "admin:hospital:h1",
             "--role", "auditor:union:u1", "--phone", "13800138000", "--password-stdin", stdin=PW + "\n")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "user li added\n"
    assert user(settings, "add", "--username", "op", "--name", "运维", "--role", "operator", "--password-stdin",
                stdin=PW + "\n").returncode == 0
    shown = json.loads(user(settings, "show", "--username", "li", "--json").stdout)
    assert shown["roles"] == [{"role": "admin", "scope": "hospital:h1"}, {"role": "auditor", "scope": "union:u1"}]
    assert shown["phone"] == "138****8000" and shown["enabled"] is True and shown["totp"] is False
    listed = json.loads(user(settings, "list", "--json").stdout)
    assert [u["username"] for u in listed] == ["li", "op"]
    table = user(settings, "list").stdout
    assert "admin:hospital:h1 auditor:union:u1" in table and "operator" in table
    # Encrypted at rest, hashed with Argon2id: neither the phone nor the password is in the row.
    with runtime.db.read() as conn:
        row = conn.execute(select(s.users).where(s.users.c.username == "li")).one()
    assert b"13800138000" not in row.phone_enc and row.password_hash.startswith("$argon2id$")
    assert PW not in row.password_hash and accounts.verify_password(row.password_hash, PW)


def test_refusals_name_what_was_wrong(settings, runtime) -> None:
    world(runtime)
    user(settings, "add", "--username", "li", "--name", "李", "--role", "clinician:hospital:h1", "--password-stdin",
         stdin=PW + "\n")
    dup = user(settings, "add", "--username", "li", "--name", "李", "--role", "clinician:hospital:h1")
    assert dup.returncode == 1 and "20013" in dup.stderr and "already exists" in dup.stderr
    for role, words in [("operator:hospital:h1", "takes scope none"), ("admin", "needs a scope"),
                        ("radiologist:union:u1", "takes scope hospital:ID"), ("boss", "unknown role")]:
        bad = user(settings, "add", "--username", "x", "--name", "X", "--role", role)
        assert bad.returncode == 1 and words in bad.stderr, (role, bad.stderr)
    unknown = user(settings, "add", "--username", "x", "--name", "X", "--role", "admin:hospital:h9")
    assert "20016" in unknown.stderr and "h9" in unknown.stderr
    short = user(settings, "add", "--username", "x", "--name", "X", "--role", "clinician:hospital:h1",
                 "--password-stdin", stdin="short\n")
    assert short.returncode == 1 and "at least 10 characters" in short.stderr
    same = user(settings, "add", "--username", "abcdefghijkl", "--name", "X", "--role", "clinician:hospital:h1",
                "--password-stdin", stdin="ABCDEFGHIJKL\n")
    assert same.returncode == 1 and "may not be the username" in same.stderr
    for verb in ("show", "disable", "enable", "remove", "reset-password --password-stdin"):
        gone = user(settings, *verb.split(), "--username", "nobody", stdin=PW + "\n")
        assert gone.returncode == 1 and "20014" in gone.stderr, verb
    assert json.loads(user(settings, "list", "--json").stdout)[0]["username"] == "li"  # nothing half-written


def test_disable_enable_remove_reset_password(settings, runtime) -> None:
    world(runtime)
    user(settings, "add", "--username", "li", "--name", "李", "--role", "clinician:hospital:h1", "--password-stdin",
         stdin=PW + "\n")
    assert user(settings, "disable", "--username", "li").stdout == "user li disabled\n"
    assert json.loads(user(settings, "show", "--username", "li", "--json").stdout)["enabled"] is False
    assert user(settings, "enable", "--username", "li").stdout == "user li enabled\n"
    r = user(settings, "reset-password", "--username", "li", "--password-stdin", stdin="another good one\n")
    assert r.returncode == 0, r.stderr
    with runtime.db.read() as conn:
        stored = conn.execute(select(s.users.c.password_hash)).scalar_one()
    assert accounts.verify_password(stored, "another good one") and not accounts.verify_password(stored, PW)
    assert user(settings, "remove", "--username", "li").stdout == "user li removed\n"
    assert json.loads(user(settings, "list", "--json").stdout) == []
    with runtime.db.read() as conn:
        actions = conn.execute(select(s.staff_audit.c.action, s.staff_audit.c.username)
                               .order_by(s.staff_audit.c.pk)).all()
    assert [a for a, _ in actions] == ["user.add", "user.disable", "user.enable", "user.reset-password",
                                       "user.remove"]
    assert all(who.startswith("cli:") for _, who in actions)


def test_totp_provisioning_uri_is_printed_once(settings, runtime) -> None:
    world(runtime)
    r = user(settings, "add", "--username", "op", "--name", "运维", "--role", "operator", "--totp",
             "--password-stdin", stdin=PW + "\n")
    uri = r.stdout.splitlines()[1].removeprefix("totp: ")
    assert uri.startswith("otpauth://totp/Yingyun:op?secret=")
    assert pyotp.parse_uri(uri).now().isdigit()
    assert "shown once" in r.stderr
    assert json.loads(user(settings, "show", "--username", "op", "--json").stdout)["totp"] is True
    assert "secret" not in user(settings, "show", "--username", "op", "--json").stdout


def test_doctors_are_users_with_a_doctor_profile(settings, runtime) -> None:
    from ...test_cli import cli

    world(runtime)
    assert "doctor d1 added" in cli(settings, "doctor", "add", "--id", "d1", "--name", "王医生", "--hospital", "h1",
                                    "--dept", "放射科").stdout
    shown = json.loads(user(settings, "show", "--username", "d1", "--json").stdout)
    assert shown["name"] == "王医生" and shown["roles"] == [{"role": "clinician", "scope": "hospital:h1"}]
    assert shown["doctor"] == {"doctorId": "d1", "hospitalId": "h1", "title": None, "dept": "放射科"}
    assert shown["hasPassword"] is False
    # The existing command keeps working, and removing the user takes its doctor profile with it.
    assert json.loads(cli(settings, "doctor", "list", "--json").stdout)[0]["doctorId"] == "d1"
    assert user(settings, "remove", "--username", "d1").returncode == 0
    assert json.loads(cli(settings, "doctor", "list", "--json").stdout) == []


def test_reset_password_with_totp_enrols_a_new_second_factor(settings, runtime) -> None:
    world(runtime)
    user(settings, "add", "--username", "op", "--name", "运维", "--role", "operator", "--password-stdin",
         stdin=PW + "\n")
    assert json.loads(user(settings, "show", "--username", "op", "--json").stdout)["totp"] is False
    r = user(settings, "reset-password", "--username", "op", "--totp", "--password-stdin", stdin=PW + "\n")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[1].startswith("totp: otpauth://totp/Yingyun:op?secret=")
    assert json.loads(user(settings, "show", "--username", "op", "--json").stdout)["totp"] is True
