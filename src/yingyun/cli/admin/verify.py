"""`yingyun admin verify`: re-read the stored objects now and list the missing and corrupt ones."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ...core.times import Zone
from ...settings import Settings
from ..context import runtime, use_servers_blobs
from ..options import AsJson, Timezone, read_time
from ..output import echo_json, fail


def verify(
    ctx: typer.Context,
    as_json: AsJson = False,
    since: Annotated[str | None, typer.Option("--since", help="Only instances received since TIME "
                                                                   "(yyyy-MM-dd[ HH:mm:ss] in --timezone).")] = None,
    repair_from: Annotated[Path | None, typer.Option(
        "--repair-from", help="A backup folder (`yingyun backup --to`) to repair damaged objects from.")] = None,
    repair_from_cloud: Annotated[str | None, typer.Option(
        "--repair-from-cloud", help="On a gateway: the cloud's URL, to re-fetch damaged objects from "
                                    "(with --gateway-id and YINGYUN_GATEWAY_KEY).")] = None,
    gateway_id: Annotated[str, typer.Option("--gateway-id", help="This gateway's id at the cloud.")] = "",
    gateway_key: Annotated[str, typer.Option("--gateway-key", envvar="YINGYUN_GATEWAY_KEY", show_default=False,
                                             help="This gateway's key at the cloud.")] = "",
    rate_mb: Annotated[float, typer.Option("--rate-mb", min=0, help="MB/s of reading at most (0: no limit).")] = 0,
    timezone: Timezone = Settings.timezone,
) -> None:
    """Read every stored instance and compare it with the digest recorded at ingest.

    Exit status 1 when an object is missing or corrupt and could not be repaired."""
    from ...archive.scrub import BackupCopies, RepairSource, Scrubber

    if repair_from is not None and not (repair_from / "manifest.json").is_file():
        fail(f"no backup at {repair_from} (no manifest.json)")
    since_ts = read_time(Zone(timezone), since)
    rt = runtime(ctx)
    use_servers_blobs(rt, None)
    repair: RepairSource | None = BackupCopies(repair_from) if repair_from is not None else None
    if repair_from_cloud:
        from ...gateway.sync import CloudCopies

        if repair is not None or not gateway_id or not gateway_key:
            fail("--repair-from-cloud takes --gateway-id and a key (YINGYUN_GATEWAY_KEY), not --repair-from")
        repair = CloudCopies(db=rt.db, cloud_url=repair_from_cloud, gateway_id=gateway_id, gateway_key=gateway_key)
    scrubber = Scrubber(rt.db, rt.blobs, rate_bytes=rate_mb * 1e6, repair=repair)
    report = scrubber.check_all(since=since_ts)
    if as_json:
        echo_json(report.as_json())
    else:
        for f in report.findings:
            typer.echo(f"{f.problem}{' (repaired)' if f.repaired else ''}: {f.hospital_id} {f.study_uid} {f.key}")
        typer.echo(f"{report.checked} objects ({report.bytes / 2**20:.1f} MiB) read: "
                   f"{len(report.findings)} damaged, {sum(f.repaired for f in report.findings)} repaired")
    if any(not f.repaired for f in report.findings):
        raise typer.Exit(1)
