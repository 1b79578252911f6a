"""`yingyun admin device-type add | list | remove | disable | enable`: the platform's catalogue of device types."""

from __future__ import annotations

from typing import Annotated

import typer

from ...cloud.organisation import PLATFORM
from ...cloud.organisation.nouns import ALL, save
from ..context import organisation
from ..errors import advise_if_in_use
from ..options import AsJson
from ..output import emit

app = typer.Typer(no_args_is_help=True, help="Device types (设备类型), e.g. 'GE Revolution CT'; names are unique.")

DeviceTypeId = Annotated[str, typer.Option("--id", help="Device type id.")]


@app.command("add")
def device_type_add(
    ctx: typer.Context,
    name: Annotated[str, typer.Option("--name", help="Its name.")],
    modality: Annotated[str | None, typer.Option(
        "--modality", help="The DICOM modality its devices are (CT, MR, DX…), unless a device says otherwise.")] = None,
    id: Annotated[str | None, typer.Option("--id", help="Its id (generated if omitted; given: changes it).")] = None,
) -> None:
    """Add a device type, or change an existing one."""
    created, item = save(organisation(ctx).device_types, PLATFORM, id, {"name": name, "modality": modality})
    typer.echo(f"device type {item['id']} {'added' if created else 'updated'}")


@app.command("list")
def device_type_list(ctx: typer.Context, as_json: AsJson = False) -> None:
    """Every device type."""
    emit(organisation(ctx).device_types.list(PLATFORM, ALL).items, as_json, ["id", "name", "modality", "enabled"])


@app.command("remove")
def device_type_remove(ctx: typer.Context, id: DeviceTypeId) -> None:
    """Remove a device type no device is of (else refused, naming them)."""
    with advise_if_in_use(f"disable it instead (`yingyun admin device-type disable --id {id}`)"):
        organisation(ctx).device_types.remove(PLATFORM, id)
    typer.echo(f"device type {id} removed")


@app.command("disable")
def device_type_disable(ctx: typer.Context, id: DeviceTypeId) -> None:
    """Mark a device type disabled (offered for new devices no more); its devices keep it."""
    organisation(ctx).device_types.update(PLATFORM, id, {"enabled": False})
    typer.echo(f"device type {id} disabled")


@app.command("enable")
def device_type_enable(ctx: typer.Context, id: DeviceTypeId) -> None:
    """Enable a disabled device type again."""
    organisation(ctx).device_types.update(PLATFORM, id, {"enabled": True})
    typer.echo(f"device type {id} enabled")
