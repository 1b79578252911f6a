"""`yingyun admin device add | list | remove | disable | enable`: the modalities of a hospital.

A device given an AE title (and the host it sends from) is registered as a PACS peer: the DICOM port
accepts its C-STORE while it is enabled."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from ...cloud.organisation import PLATFORM
from ...cloud.organisation.nouns import Query, save
from ..context import organisation
from ..options import AsJson, HospitalFilter
from ..output import emit

app = typer.Typer(no_args_is_help=True, help="Devices (设备) of a hospital: the modalities that make its images.")

DeviceId = Annotated[str, typer.Option("--id", help="Device id.")]


@app.command("add")
def device_add(
    ctx: typer.Context,
    hospital: Annotated[str, typer.Option("--hospital", help="The hospital it belongs to.")],
    name: Annotated[str, typer.Option("--name", help="Its name, unique in the hospital, e.g. CT-1.")],
    device_type: Annotated[str, typer.Option("--type", help="Its device type's id.")],
    modality: Annotated[str | None, typer.Option(
        "--modality", help="Its DICOM modality (default: its device type's).")] = None,
    department: Annotated[str | None, typer.Option("--department", help="The department it is in.")] = None,
    ae_title: Annotated[str | None, typer.Option(
        "--ae-title", help="The AE title it sends from: registers it as a PACS peer for C-STORE.")] = None,
    host: Annotated[str | None, typer.Option(
        "--host", help="The host it sends from (required with --ae-title).")] = None,
    port: Annotated[int | None, typer.Option("--port", help="Its DICOM port (default 104).")] = None,
    id: Annotated[str | None, typer.Option("--id", help="Its id (generated if omitted; given: changes it).")] = None,
) -> None:
    """Add a device, or change an existing one."""
    data: dict[str, Any] = {"hospitalId": hospital, "name": name, "deviceTypeId": device_type, "modality": modality,
                            "departmentId": department, "aeTitle": ae_title, "host": host, "port": port}
    created, item = save(organisation(ctx).devices, PLATFORM, id, data)
    typer.echo(f"device {item['id']} {'added' if created else 'updated'}")


@app.command("list")
def device_list(ctx: typer.Context, as_json: AsJson = False, hospital: HospitalFilter = None) -> None:
    """Every device."""
    rows = organisation(ctx).devices.list(PLATFORM, Query(limit=None, hospital_id=hospital)).items
    emit(rows, as_json, ["id", "hospitalId", "name", "deviceTypeId", "modality", "departmentId", "aeTitle", "host",
                         "port", "enabled"])


@app.command("remove")
def device_remove(ctx: typer.Context, id: DeviceId) -> None:
    """Remove a device and its PACS registration; what it sent stays with its hospital."""
    organisation(ctx).devices.remove(PLATFORM, id)
    typer.echo(f"device {id} removed")


@app.command("disable")
def device_disable(ctx: typer.Context, id: DeviceId) -> None:
    """Stop accepting the device's C-STORE (its PACS registration is withdrawn); nothing is deleted."""
    organisation(ctx).devices.update(PLATFORM, id, {"enabled": False})
    typer.echo(f"device {id} disabled")


@app.command("enable")
def device_enable(ctx: typer.Context, id: DeviceId) -> None:
    """Accept the device's C-STORE again."""
    organisation(ctx).devices.update(PLATFORM, id, {"enabled": True})
    typer.echo(f"device {id} enabled")
