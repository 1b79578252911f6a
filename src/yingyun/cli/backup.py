"""`yingyun backup --to DIR`, `yingyun backup verify DIR`, `yingyun restore --from DIR --data-dir NEW`.

The backup runs beside the server (storage/backup.py says why the copy is
consistent); each run is recorded in `backup_runs`, which /metrics reads.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy import insert

from ..storage import backup as store
from ..storage.db import Database
from ..storage.schema import backup_runs
from .context import opened_for, use_servers_blobs
from .options import AsJson, DatabaseUrl, DataDir
from .output import echo_json, fail

app = typer.Typer(invoke_without_command=True, no_args_is_help=False,
                  help="Back up the index, blobs and (if asked) keys while the server runs; verify a backup.")

KEYS_REMINDER = ("the keys are not in this backup: without them the identity data cannot be read. Keep the data "
                 "dir's key file (or YINGYUN_DATA_KEY/YINGYUN_HASH_KEY) backed up separately, or pass --include-keys")


@app.callback()
def backup(
    ctx: typer.Context,
    to: Annotated[Path | None, typer.Option("--to", help="Backup folder (a second backup into it copies only what "
                                                          "is new).")] = None,
    include_keys: Annotated[bool, typer.Option(
        "--include-keys", help="Copy the key file into the backup too (then guard the backup as the keys).")] = False,
    blob_url: Annotated[str | None, typer.Option(
        "--blob-url", help="Where the server keeps blobs (default: where it last started with).")] = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    as_json: AsJson = False,
) -> None:
    """Make a consistent, restorable copy of the deployment in --to while the server runs."""
    if ctx.invoked_subcommand is not None:
        return
    if to is None:
        fail("give the backup folder: yingyun backup --to DIR")
    from ..core.crypto import KEY_FILE_NAME, keys_in_environment

    rt = opened_for(ctx, data_dir, database_url).get()
    use_servers_blobs(rt, blob_url)
    key_file = rt.settings.data_dir / KEY_FILE_NAME
    if include_keys and (keys_in_environment() or not key_file.exists()):
        fail("--include-keys: the keys are in the environment, not a key file: back them up where they are set")
    started = time.time()
    try:
        result = store.backup(rt.db, rt.blobs, to.resolve(), key_file=key_file if include_keys else None)
    except (store.BackupError, OSError) as e:
        _record(rt.db, to, started, ok=False, error=str(e))
        fail(f"backup failed: {e}")
    _record(rt.db, to, started, ok=True, files=result.files, bytes_copied=result.bytes_copied)
    if as_json:
        echo_json(result.as_json())
    else:
        typer.echo(f"backed up into {result.folder}: {result.files} files, {result.copied} blobs copied "
                   f"({result.bytes_copied / 2**20:.1f} MiB) in {result.seconds:.1f} s")
    if not include_keys:
        typer.echo("note: " + KEYS_REMINDER, err=True)


def _record(db: Database, to: Path, started: float, *, ok: bool, files: int = 0, bytes_copied: int = 0,
            error: str | None = None) -> None:
    with db.write() as conn:
        conn.execute(insert(backup_runs).values(folder=str(to.resolve()), started_at=started, finished_at=time.time(),
                                                ok=int(ok), files=files, bytes_copied=bytes_copied, error=error))


@app.command("verify")
def verify(folder: Annotated[Path, typer.Argument(help="The backup folder.")], as_json: AsJson = False) -> None:
    """Re-read every file of a backup and compare it with the manifest's SHA-256 (exit 1 if any differs)."""
    try:
        result = store.verify(folder)
    except store.BackupError as e:
        fail(str(e))
    if as_json:
        echo_json(result.as_json())
    else:
        for rel in result.missing:
            typer.echo(f"missing: {rel}")
        for rel in result.corrupt:
            typer.echo(f"corrupt: {rel}")
        typer.echo(f"{result.checked} files checked: " + ("ok" if result.ok else
                   f"{len(result.missing)} missing, {len(result.corrupt)} corrupt"))
    if not result.ok:
        raise typer.Exit(1)


def restore(
    from_: Annotated[Path, typer.Option("--from", help="The backup folder.")],
    data_dir: Annotated[Path, typer.Option("--data-dir", help="The new data dir (must not exist, or be empty).")],
) -> None:
    """Verify a backup's every checksum, then make a new data dir from it (start a server on it after)."""
    try:
        checked = store.restore(from_, data_dir)
    except store.BackupError as e:
        fail(str(e))
    typer.echo(f"restored {checked.checked} verified files into {data_dir.resolve()}")
    if not (from_ / store.KEYS).exists():
        typer.echo("note: the backup has no keys: put the key file into the data dir (or set YINGYUN_DATA_KEY/"
                   "YINGYUN_HASH_KEY) before starting the server", err=True)
