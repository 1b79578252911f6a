"""`yingyun admin <noun> <verb>`: tenants, peers and data, administered while the server runs.

One module per noun; each declares its Typer app and takes its runtime from
`cli.context.runtime(ctx)`, which the group's callback sets up lazily.
"""

from __future__ import annotations

import typer

from ..context import AdminGroup, AdminRuntime
from ..options import DatabaseUrl, DataDir
from . import (
    audit,
    callbacks,
    consultation,
    department,
    device,
    device_type,
    doctor,
    gateway,
    hl7,
    hold,
    hospital,
    letterhead,
    link,
    pacs,
    partner,
    qr,
    ratelimit,
    reading_route,
    reconcile,
    retention,
    ris_deliveries,
    studies,
    sync,
    token,
    union,
    user,
    usage,
    verify,
)

app = typer.Typer(cls=AdminGroup, no_args_is_help=True,
                  help="Administer tenants, peers and data (works while serve runs).")


@app.callback()
def _admin(ctx: typer.Context, data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    located = ctx.obj = AdminRuntime(data_dir, database_url)
    ctx.call_on_close(located.close)


app.add_typer(union.app, name="union")
app.add_typer(hospital.app, name="hospital")
app.add_typer(letterhead.app, name="letterhead")
app.add_typer(partner.app, name="partner")
app.add_typer(pacs.app, name="pacs")
app.add_typer(department.app, name="department")
app.add_typer(device_type.app, name="device-type")
app.add_typer(device.app, name="device")
app.add_typer(hl7.app, name="hl7-sender")
app.add_typer(token.app, name="token")
app.add_typer(doctor.app, name="doctor")
app.add_typer(consultation.app, name="consultation")
app.add_typer(callbacks.app, name="callbacks")
app.add_typer(ratelimit.app, name="ratelimit")
app.add_typer(gateway.app, name="gateway")
app.add_typer(sync.app, name="sync")
app.add_typer(user.app, name="user")
app.add_typer(retention.app, name="retention")
app.add_typer(hold.app, name="hold")
app.add_typer(ris_deliveries.app, name="ris-deliveries")
app.add_typer(qr.app, name="qr")
app.add_typer(link.app, name="link")
app.add_typer(reading_route.app, name="reading-route")
app.command("studies")(studies.studies)
app.add_typer(reconcile.app, name="reconcile")
app.command("audit")(audit.audit)
app.command("usage")(usage.usage)
app.command("verify")(verify.verify)
