"""The configuration file of `yingyun serve | gateway | cloud` (`--config FILE`, TOML), and `yingyun config show`.

A key is an option's name without its dashes (`http-port = 8080` is `--http-port 8080`; a
repeatable option takes a list), so the file, the flags and the docs use one vocabulary and
every option a command gains has its key at once. The file's values become the command's
defaults (click's `default_map`), so a flag and an environment variable still override
them. A key the command does not take, or a value its option would refuse, stops the start
with the key named: a typo in a file that runs a hospital's service must not pass unseen.
"""

from __future__ import annotations

import difflib
import json
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit, urlunsplit

import typer
from sqlalchemy.engine import make_url

from ..settings import ENV_CONFIG
from .options import one_of
from .output import echo_json

CONFIG_OPTION = "--config"
# Shown as this, never in full: what opens a gateway's upload channel or a database.
SECRET_KEYS = frozenset({"gateway-key"})
MASK = "********"
SERVER_COMMANDS = ("serve", "gateway", "cloud")


def key_of(param: Any) -> str:  # (click's Parameter, which typer vendors and does not export)
    """The file's key of an option: its long name without the dashes."""
    longs: list[str] = [opt for opt in param.opts if opt.startswith("--")]
    return (longs[0] if longs else str(param.opts[0])).lstrip("-")


def options_of(command: Any) -> dict[str, Any]:  # (click's Command and Parameters, as above)
    """The options a file may set for `command`, by key (every option but --config and --help)."""
    return {key_of(p): p for p in command.params
            if p.param_type_name == "option" and p.expose_value and p.name not in ("config", "help")}


def read_file(path: str) -> dict[str, Any]:
    """The TOML table of `path`, refused with the reason (not found, not TOML: where)."""
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except OSError as e:
        raise typer.BadParameter(f"cannot read {path}: {e.strerror}") from None
    except tomllib.TOMLDecodeError as e:
        raise typer.BadParameter(f"{path} is not TOML: {e}") from None


def _refuse_type(param: Any, key: str, value: Any) -> None:
    """TOML values are typed: `http-port = "80"` or `demo = 1` is a mistake to say, not a value to coerce."""
    if param.multiple:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise typer.BadParameter(f"key {key!r} takes a list of strings, such as [\"a\", \"b\"]")
        return
    kind = _kind(param)
    ok = {bool: isinstance(value, bool),
          int: isinstance(value, int) and not isinstance(value, bool),
          float: isinstance(value, (int, float)) and not isinstance(value, bool)}.get(kind, isinstance(value, str))
    if not ok:
        words = {bool: "true or false", int: "a whole number", float: "a number"}.get(kind, "a string")
        raise typer.BadParameter(f"key {key!r} takes {words}, not {value!r}")


def _kind(param: Any) -> type:
    """The Python type an option holds (`str | None` is str)."""
    annotation = param.type_descriptor.annotation
    for kind in (bool, int, float):
        if annotation is kind or kind in getattr(annotation, "__args__", ()):
            return kind
    return str


def file_defaults(ctx: typer.Context, path: str) -> dict[str, Any]:
    """The defaults `path` gives the command of `ctx`, by parameter name; refused, the key named, when a key is
    not the command's or its value is not one its option takes."""
    table = read_file(path)
    options = options_of(ctx.command)
    defaults: dict[str, Any] = {}
    for key, value in table.items():
        param = options.get(key)
        if param is None:
            raise typer.BadParameter(f"{path}: {_unknown(ctx, key, options)}")
        try:
            _refuse_type(param, key, value)
            param.process_value(ctx, value)  # its range, its choices, its callback (--timezone's zone)
        except typer.BadParameter as e:
            words = e.message if e.message.startswith("key ") else f"key {key!r}: {e.message}"
            raise typer.BadParameter(f"{path}: {words}") from None
        defaults[param.name] = value
    return defaults


def _unknown(ctx: typer.Context, key: str, options: dict[str, Any]) -> str:
    others = _other_commands_taking(ctx, key)
    if others:
        return f"key {key!r} is not a setting of `yingyun {ctx.info_name}` (it is of {', '.join(others)})"
    close = difflib.get_close_matches(key, list(options), n=1)
    return f"unknown key {key!r}" + (f" (did you mean {close[0]!r}?)" if close else "")


def _other_commands_taking(ctx: typer.Context, key: str) -> list[str]:
    found = []
    for name in SERVER_COMMANDS:
        command = _command(ctx, name)
        if name != ctx.info_name and command is not None and key in options_of(command):
            found.append(name)
    return found


def _command(ctx: typer.Context, name: str) -> Any:
    """The command `yingyun <name>` (None when the root has none: a command run by itself, in a test)."""
    root: Any = ctx.find_root().command
    return root.get_command(ctx, name) if hasattr(root, "get_command") else None


def apply_config(ctx: typer.Context, value: str | None) -> str | None:
    """--config's callback (eager: it runs before the other options are read): the file's values become defaults."""
    if value and not ctx.resilient_parsing:
        ctx.default_map = {**(ctx.default_map or {}), **file_defaults(ctx, value)}
    return value


ConfigFile = Annotated[str | None, typer.Option(
    CONFIG_OPTION, envvar=ENV_CONFIG, is_eager=True, callback=apply_config,
    help="TOML file of settings (a key per option, as deploy/yingyun.toml); flags and environment override it.")]


@dataclass(frozen=True)
class Effective:
    """One setting as the command would run with it, and where that came from."""

    key: str
    value: Any
    source: str  # flag | env | file | default
    origin: str | None  # the environment variable or the file, when it came from one

    def shown(self) -> Any:
        if self.value is None or self.value == "":
            return self.value
        if self.key in SECRET_KEYS:
            return MASK
        if self.key == "database-url":
            return make_url(str(self.value)).render_as_string(hide_password=True)
        if isinstance(self.value, str) and "://" in self.value:
            return _without_password(self.value)  # an SMS gateway's or the cloud's URL may carry credentials
        return self.value


def _without_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{host}"))


def effective(ctx: typer.Context, role: str, config: str | None) -> list[Effective]:
    """What `yingyun <role> --config <config>` would run with, option by option (its checks applied: a bad
    file is refused here as at the start)."""
    from .serve import settings_of  # (serve's option table; the import is the show command's only)

    command = _command(ctx, role)
    args = [CONFIG_OPTION, config] if config else []
    with command.make_context(role, args, parent=ctx.find_root()) as sub:
        settings = settings_of(role, sub.params)
        rows = []
        for key, param in options_of(command).items():
            assert param.name is not None
            source = sub.get_parameter_source(param.name)
            kind = {"COMMANDLINE": "flag", "ENVIRONMENT": "env", "DEFAULT_MAP": "file"}.get(
                source.name if source else "", "default")
            origin = {"env": _envvar(param), "file": config}.get(kind)
            rows.append(Effective(key, _value(settings, param.name, sub.params[param.name]), kind, origin))
    return rows


def _envvar(param: Any) -> str | None:
    names = param.envvar
    if isinstance(names, (list, tuple)):
        return str(names[0]) if names else None
    return str(names) if names else None


def _value(settings: Any, name: str, given: Any) -> Any:
    """The value the server runs with: the settings' where the option is one field of them (the data dir and
    database resolved, the public URL derived), else the option's."""
    from .serve import field_of

    field = field_of(name)
    if field is not None and hasattr(settings, field):
        value = getattr(settings, field)
        return str(value) if isinstance(value, Path) else value
    return list(given) if isinstance(given, tuple) else given


app = typer.Typer(help="The configuration of the server commands.", no_args_is_help=True)


@app.command("show")
def show(
    ctx: typer.Context,
    config: Annotated[str | None, typer.Option(CONFIG_OPTION, envvar=ENV_CONFIG,
                                               help="The TOML file the server would start with.")] = None,
    role: Annotated[str, typer.Option("--role", callback=one_of(*SERVER_COMMANDS),
                                      help="Whose settings: serve | gateway | cloud.")] = "serve",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """The effective settings of `yingyun <role>`: every key, its value (secrets masked), and where it came from."""
    rows = effective(ctx, role, config)
    if as_json:
        echo_json({r.key: {"value": r.shown(), "source": r.source, "from": r.origin} for r in rows})
        return
    width = max(len(r.key) for r in rows)
    typer.echo(f"# yingyun {role}: effective settings (flag > environment > file > default)")
    for r in rows:
        shown = r.shown()
        value = "(none)" if shown is None else json.dumps(shown, ensure_ascii=False)
        where = r.source + (f" {r.origin}" if r.origin else "")
        typer.echo(f"{r.key.ljust(width)} = {value}  # {where}")
