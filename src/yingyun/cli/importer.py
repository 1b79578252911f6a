"""`yingyun import`: old archives and patients' CDs, through the ingest path of C-STORE."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from .context import opened_for, use_servers_blobs
from .options import DatabaseUrl, DataDir
from .output import echo_json, fail

FILE_FAILED = 2  # the exit status when a file could not be stored (1: refused, nothing imported)


def import_(
    ctx: typer.Context,
    paths: Annotated[list[str], typer.Argument(help="Folders, zip files, DICOMDIR files or single DICOM files.")],
    hospital: Annotated[str | None, typer.Option("--hospital", help="Needed when several hospitals exist.")] = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    as_json: Annotated[bool, typer.Option(
        "--json", help="Print the summary and every file's outcome as JSON.")] = False,
    blob_url: Annotated[str | None, typer.Option(
        "--blob-url", help="Where the server keeps blobs (default: where it last started with).")] = None,
) -> None:
    """Ingest DICOM files through the same durable, de-duplicating path as C-STORE.

    Exit status: 0 when every DICOM file found was stored (or already was),
    1 when a path does not exist (nothing is imported), 2 when a file failed.
    """
    from ..archive.importer import missing_paths, run_import, summary_text

    located = opened_for(ctx, data_dir, database_url)
    missing = missing_paths(paths)
    if missing:
        fail("no such file or folder: " + ", ".join(missing) + " (nothing imported)")
    rt = located.get()
    use_servers_blobs(rt, blob_url)  # the import lands where the server reads
    hospitals = rt.tenancy.hospitals()
    if hospital is None:
        if len(hospitals) != 1:
            fail(f"name the hospital with --hospital (there are {len(hospitals)})")
        hospital = next(iter(hospitals))
    elif hospital not in hospitals:
        fail(f"no hospital {hospital!r}")
    if not hospitals[hospital]["enabled"]:
        fail(f"hospital {hospital} is disabled: it takes no data (`yingyun admin hospital enable --id {hospital}`)")
    summary = run_import(rt.instances, spool_dir=rt.settings.spool_dir,
                         hospital_id=hospital, paths=paths, out=sys.stderr)
    if as_json:
        echo_json(summary)
    else:
        typer.echo(summary_text(summary))
    if summary["failed"]:
        raise typer.Exit(FILE_FAILED)
