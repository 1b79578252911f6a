"""`yingyun db upgrade | current | check`: the schema (only `db upgrade` and a server's start migrate)."""

from __future__ import annotations

import typer

from ..runtime import OpenRefused, Runtime, open_database, schema_problem
from ..settings import Settings
from .context import location_settings
from .options import DatabaseUrl, DataDir
from .output import fail

app = typer.Typer(no_args_is_help=True, help="The database schema (only `db upgrade` and a server's start migrate).")


def schema_revision(settings: Settings) -> tuple[str | None, str | None]:
    """The database's schema revision and what keeps this program from it (None: at its head)."""
    db = open_database(settings)
    try:
        return db.revision(), schema_problem(db)
    finally:
        db.dispose()


@app.command("upgrade")
def db_upgrade(data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """Migrate the schema to this program's revision (under a lock: safe beside servers starting).

    On a new deployment it makes what a server's first start would: the data dir
    (owner-only), the key file unless the keys are in the environment, the schema."""
    from ..core.crypto import KEY_FILE_NAME, keys_in_environment

    settings = location_settings(data_dir, database_url)
    try:
        before, _ = schema_revision(settings)
    except OpenRefused:
        before = None  # nothing there yet
    new_dir = not settings.data_dir.exists()
    key_file = settings.data_dir / KEY_FILE_NAME
    new_keys = not keys_in_environment() and not key_file.exists()
    rt = Runtime.open(settings, create_keys=True, migrate=True)
    try:
        after = rt.db.revision()
    finally:
        rt.close()
    if new_dir:
        typer.echo(f"made the data dir {settings.data_dir.resolve()}")
    if new_keys:
        typer.echo(f"made a new key file {key_file.resolve()}: back it up (without it the identity data is lost)")
    typer.echo(f"schema at revision {after}" + (f" (was {before or '(none)'})" if before != after else " (unchanged)"))


@app.command("current")
def db_current(data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """Print the schema revision the database is at ("(none)" if never migrated)."""
    revision, _ = schema_revision(location_settings(data_dir, database_url))
    typer.echo(revision or "(none)")


@app.command("check")
def db_check(data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """Exit 0 when the schema is at this program's revision; else name both and exit 1."""
    revision, problem = schema_revision(location_settings(data_dir, database_url))
    if problem is not None:
        fail(problem)
    typer.echo(f"schema at revision {revision}, as this program expects")
