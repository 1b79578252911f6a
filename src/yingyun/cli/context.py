"""The runtime a command run beside the server works on, and where it is told to find it.

`yingyun admin` takes `--data-dir` and `--database-url` once, on the group
(`yingyun admin --data-dir D hospital list`), and, as operators' scripts have
always given them, after the verb of every command under it (`yingyun admin
hospital list --data-dir D`): `AdminGroup` repeats the group's two options on
each command, and one given there overrides the group's. The runtime is opened
on first use, so every option is read before: it never creates a data dir or
keys and never migrates; what it cannot use as it is, it refuses with the reason
(`runtime.OpenRefused`). It is closed when the command ends.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import typer
from typer.core import TyperGroup

from ..runtime import Runtime
from ..settings import Settings, resolve_data_dir, resolve_database_url

if TYPE_CHECKING:
    from ..archive.retention import RetentionEvents
    from ..cloud.organisation import Organisation

LOCATION = ("data_dir", "database_url")


def location_settings(data_dir: str | None, database_url: str | None, **fields: Any) -> Settings:
    """Settings with the data dir and database the options name (else the environment's, else the defaults)."""
    ddir = resolve_data_dir(data_dir)
    return Settings(data_dir=ddir, database_url=resolve_database_url(database_url, ddir), **fields)


class AdminRuntime:
    """The lazily opened runtime of one command (`ctx.obj` under `yingyun admin`)."""

    def __init__(self, data_dir: str | None = None, database_url: str | None = None) -> None:
        self.data_dir = data_dir
        self.database_url = database_url
        self._runtime: Runtime | None = None

    def get(self) -> Runtime:
        if self._runtime is None:
            self._runtime = Runtime.open(location_settings(self.data_dir, self.database_url),
                                         create_keys=False, migrate=False)
        return self._runtime

    def close(self) -> None:
        """Close what was opened (`import`'s instance store flushes its blob journal)."""
        if self._runtime is not None:
            self._runtime.close()
            self._runtime = None


def runtime(ctx: typer.Context) -> Runtime:
    """The runtime of the admin command running in `ctx`."""
    return ctx.ensure_object(AdminRuntime).get()


def use_servers_blobs(rt: Runtime, blob_url: str | None) -> None:
    """Point the runtime (before it opens its blob store) where the server keeps its blobs: the store it last
    started with unless `blob_url` names one; refused when `blob_url` names another."""
    from ..storage import deployment
    from .output import fail

    with rt.db.read() as conn:
        servers = deployment.fact(conn, deployment.BLOB_STORE)
    rt.settings.blob_url = blob_url or servers or ""
    if servers is not None and rt.settings.blob_location != servers:
        fail(f"the server keeps its blobs in {servers}, not {rt.settings.blob_location}: drop --blob-url or give that")


def retention_events(rt: Runtime) -> RetentionEvents | None:
    """On a gateway's data dir, what queues its purges and holds for the cloud (in their own transaction); else
    None. The role is the one its server last started with (storage/deployment.py)."""
    from ..gateway.outbox import SyncEvents
    from ..storage import deployment
    from ..storage.queue import SqlJobQueue

    with rt.db.read() as conn:
        role = deployment.fact(conn, deployment.ROLE)
    return SyncEvents(SqlJobQueue(rt.db)) if role == "gateway" else None


def opened_for(ctx: typer.Context, data_dir: str | None, database_url: str | None) -> AdminRuntime:
    """The lazy runtime of a command outside `admin` that names its location itself (`import`), closed when it ends."""
    located = AdminRuntime(data_dir, database_url)
    ctx.call_on_close(located.close)
    return located


class AdminGroup(TyperGroup):
    """`yingyun admin`: its --data-dir/--database-url are also taken after the verb of every command under it."""

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        location = [p for p in self.params if p.name in LOCATION]
        for command in _taking_options(self):
            for option in location:
                after = copy.copy(option)
                after.expose_value = False  # not the command's parameter: it tells the runtime where to look
                after.callback = _given_after_the_verb
                command.params.append(after)


def _taking_options(group: TyperGroup) -> Iterator[Any]:
    """The commands under `group` that take options: every verb, and a noun that runs by itself (`admin sync`)."""
    for command in group.commands.values():
        if isinstance(command, TyperGroup):
            if command.invoke_without_command:
                yield command
            yield from _taking_options(command)
        else:
            yield command


def _given_after_the_verb(ctx: Any, param: Any, value: str | None) -> None:  # (click's Context and Parameter)
    # Only a value typed here overrides the group's: from the environment, both have the same one.
    source = ctx.get_parameter_source(param.name)
    if source is not None and source.name == "COMMANDLINE":
        setattr(ctx.ensure_object(AdminRuntime), param.name, value)


def organisation(ctx: typer.Context) -> Organisation:
    """The organisation service over the admin command's runtime (the command line acts as the platform)."""
    from ..cloud.organisation import Organisation  # (imported by the commands that use it only)

    return Organisation(runtime(ctx).tenancy)


def replay_parked(ctx: typer.Context, *, kind: str, noun: str, pk: int | None, all_parked: bool) -> None:
    """`… replay --id ID | --all-parked` of a delivery queue (callbacks, RIS deliveries): parked jobs of `kind`
    due again, with a new retry cycle; `noun` names one in the refusals ("callback delivery")."""
    import time

    from ..storage.queue import PARKED, SqlJobQueue
    from .output import fail

    if (pk is None) == (not all_parked):
        fail("give --id ID or --all-parked")
    queue = SqlJobQueue(runtime(ctx).db)
    if pk is not None:
        job = queue.get(pk)
        if job is None or job.kind != kind:
            fail(f"no {noun} {pk}")
        if job.state != PARKED:
            fail(f"delivery {pk} is {job.state}, not parked")
    n = queue.replay(kind=kind, now=time.time(), pk=pk, all_parked=all_parked)
    typer.echo(f"{n} delivery(ies) queued again")
