"""`yingyun admin user add | list | show | disable | enable | remove | reset-password`: staff accounts.

A refusal is said with the code the `/api/v1` API answers for it
(`20013 用户已存在: user 'li' already exists`). Passwords are read from
stdin with `--password-stdin` (one line), else asked twice without echo on
a terminal; they are never printed, nor accepted on the command line (where
`ps` and the shell's history would keep them). What these commands change
is recorded in the staff audit trail as done by `cli:<the OS user>`.
"""

from __future__ import annotations

import getpass
import sys
from typing import Annotated, Any

import typer

from ...cloud.staff import accounts
from ...cloud.staff.audit import record_action
from ..context import runtime
from ..errors import PartnersWordsGroup, advise_if_in_use
from ..options import AsJson
from ..output import echo_json, emit, fail

app = typer.Typer(cls=PartnersWordsGroup, no_args_is_help=True,
                  help="Staff users: operators, admins, radiologists, reviewers, clinicians, auditors.")

Username = Annotated[str, typer.Option("--username", help="The user's sign-in name.")]
PasswordStdin = Annotated[bool, typer.Option("--password-stdin", help="Read the password from stdin (one line).")]


def _actor() -> str:
    # A username never holds ':', so the CLI's actor cannot be mistaken for a user.
    return f"cli:{getpass.getuser()}"


def _password(from_stdin: bool) -> str | None:
    if from_stdin:
        line = sys.stdin.readline().rstrip("\r\n")
        if not line:
            fail("--password-stdin: stdin gave no password")
        return line
    if sys.stdin.isatty():
        value: str = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
        return value
    return None


@app.command("add")
def user_add(ctx: typer.Context, username: Username,
             name: Annotated[str, typer.Option("--name", help="The name shown to others.")],
             role: Annotated[list[str], typer.Option(
                 "--role", help="ROLE[:SCOPE] (repeat): operator | admin:union:ID | admin:hospital:ID | "
                                "radiologist:hospital:ID | reviewer:hospital:ID | clinician:hospital:ID | "
                                "auditor:union:ID | auditor:hospital:ID.")],
             phone: Annotated[str | None, typer.Option("--phone", help="Bound phone (SMS sign-in).")] = None,
             password_stdin: PasswordStdin = False,
             totp: Annotated[bool, typer.Option(
                 "--totp", help="Enrol a TOTP second factor: its provisioning URI is printed once.")] = False) -> None:
    """Add a user (refused when the username exists)."""
    roles = [accounts.parse_role(r) for r in role]
    password = _password(password_stdin)
    rt = runtime(ctx)
    with rt.db.write() as conn:
        uri = accounts.add_user(conn, vault=rt.vault, username=username, name=name, roles=roles, phone=phone,
                                password=password, totp=totp)
        record_action(conn, username=_actor(), action="user.add", subject_kind="user", subject_id=username,
                      detail={"roles": [r.as_json() for r in roles], "totp": totp})
    typer.echo(f"user {username} added")
    if password is None:
        typer.echo(f"(no password yet: `yingyun admin user reset-password --username {username}`)", err=True)
    _show_totp(uri)


def _show_totp(uri: str | None) -> None:
    if uri:
        typer.echo(f"totp: {uri}")
        typer.echo("(shown once: scan it into the authenticator app now)", err=True)


def _row(user: dict[str, Any]) -> dict[str, Any]:
    roles = [r["role"] + (f":{r['scope']}" if r["scope"] else "") for r in user["roles"]]
    return {**user, "roles": " ".join(roles)}


@app.command("list")
def user_list(ctx: typer.Context, as_json: AsJson = False) -> None:
    """Every user with its roles (never a password; phones masked)."""
    rt = runtime(ctx)
    with rt.db.read() as conn:
        users = accounts.list_users(conn, vault=rt.vault)
    if as_json:
        echo_json(users)
        return
    emit([_row(u) for u in users], False, ["username", "name", "roles", "enabled", "totp", "locked"])


@app.command("show")
def user_show(ctx: typer.Context, username: Username, as_json: AsJson = False) -> None:
    """One user."""
    rt = runtime(ctx)
    with rt.db.read() as conn:
        user = accounts.get_user(conn, vault=rt.vault, username=username)
    if as_json:
        echo_json(user)
        return
    for key, value in _row(user).items():
        typer.echo(f"{key}: {value if value is not None else '-'}")


@app.command("disable")
def user_disable(ctx: typer.Context, username: Username) -> None:
    """Stop a user signing in; its sessions end at once. Nothing is deleted."""
    _set_enabled(ctx, username, False)


@app.command("enable")
def user_enable(ctx: typer.Context, username: Username) -> None:
    """Let a disabled user sign in again."""
    _set_enabled(ctx, username, True)


def _set_enabled(ctx: typer.Context, username: str, enabled: bool) -> None:
    verb = "enable" if enabled else "disable"
    rt = runtime(ctx)
    with rt.db.write() as conn:
        accounts.set_enabled(conn, username=username, enabled=enabled)
        record_action(conn, username=_actor(), action=f"user.{verb}", subject_kind="user", subject_id=username)
    typer.echo(f"user {username} {verb}d")


@app.command("remove")
def user_remove(ctx: typer.Context, username: Username) -> None:
    """Remove a user and its roles (refused for a doctor a consultation names: disable it instead)."""
    rt = runtime(ctx)
    with advise_if_in_use(f"disable it instead (`yingyun admin user disable --username {username}`)"), \
            rt.db.write() as conn:
        accounts.remove_user(conn, username=username)
        record_action(conn, username=_actor(), action="user.remove", subject_kind="user", subject_id=username)
    typer.echo(f"user {username} removed")


@app.command("reset-password")
def user_reset_password(ctx: typer.Context, username: Username, password_stdin: PasswordStdin = False,
                        totp: Annotated[bool, typer.Option(
                            "--totp", help="Also enrol a new TOTP second factor: its provisioning URI is printed "
                                           "once.")] = False) -> None:
    """Set a new password: the lockout is lifted and the user's sessions end."""
    password = _password(password_stdin)
    if password is None:
        fail("no password given: use --password-stdin, or run it on a terminal")
    rt = runtime(ctx)
    with rt.db.write() as conn:
        accounts.reset_password(conn, username=username, password=password)
        uri = accounts.enrol_totp(conn, vault=rt.vault, username=username) if totp else None
        record_action(conn, username=_actor(), action="user.reset-password", subject_kind="user",
                      subject_id=username, detail={"totp": totp})
    typer.echo(f"password of user {username} set")
    _show_totp(uri)
