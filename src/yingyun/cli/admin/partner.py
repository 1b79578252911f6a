"""`yingyun admin partner add | list | remove | disable | enable | rotate`."""

from __future__ import annotations

from typing import Annotated

import typer

from ...settings import Settings
from ...cloud.organisation import PLATFORM
from ...cloud.organisation.nouns import ALL, save
from ..context import organisation
from ..errors import advise_if_in_use
from ..options import AsJson
from ..output import emit

app = typer.Typer(no_args_is_help=True, help="Partners (appId + token): RIS integrations and internet hospitals.")

AppId = Annotated[str, typer.Option("--app-id", help="The partner's appId (its `appId` header).")]
GRACE_HOURS = Settings.token_grace_s / 3600


@app.command("add")
def partner_add(
    ctx: typer.Context,
    app_id: AppId,
    token: Annotated[str | None, typer.Option(
        "--token", help="Exactly 32 ASCII characters; generated if omitted.")] = None,
    hospital: Annotated[list[str] | None, typer.Option(
        "--hospital",
        help="A hospital it may see (repeat); a RIS integration has exactly one, which owns what it sends.")] = None,
    union: Annotated[list[str] | None, typer.Option(
        "--union", help="A union whose hospitals it may see (repeat).")] = None,
    callback_url: Annotated[str | None, typer.Option(
        "--callback-url", help="Where status callbacks are POSTed.")] = None,
    mini_app_id: Annotated[str | None, typer.Option(
        "--mini-app-id", help="Its mini-program's app id (uniAppId).")] = None,
    mini_path: Annotated[str | None, typer.Option(
        "--mini-path", help="May use {reportId} {studyId} {hospitalId}.")] = None,
) -> None:
    """Add a partner (its token is printed once), or change an existing one."""
    created, added = save(organisation(ctx).partners, PLATFORM, app_id, {
        "token": token, "hospitals": hospital, "unions": union, "callbackUrl": callback_url,
        "miniAppId": mini_app_id, "miniPath": mini_path})
    issued = added.get("token") if token is None else None
    typer.echo(f"partner {app_id} {'added' if created else 'updated'}")
    if issued:
        typer.echo(f"token: {issued}")
        typer.echo("(shown once: store it now)", err=True)


@app.command("list")
def partner_list(ctx: typer.Context, as_json: AsJson = False) -> None:
    """Every partner with its grants (never its tokens)."""
    emit(organisation(ctx).partners.list(PLATFORM, ALL).items, as_json,
         ["appId", "enabled", "hospitals", "unions", "callbackUrl", "liveTokens"])


@app.command("remove")
def partner_remove(ctx: typer.Context, app_id: AppId) -> None:
    """Remove a partner, its grants and tokens, if nothing refers to it (else refused: disable it instead)."""
    with advise_if_in_use(f"disable it instead (`yingyun admin partner disable --app-id {app_id}`)"):
        organisation(ctx).partners.remove(PLATFORM, app_id)
    typer.echo(f"partner {app_id} removed")


@app.command("disable")
def partner_disable(ctx: typer.Context, app_id: AppId) -> None:
    """Refuse the partner's calls (code 20010) until enabled again; nothing is deleted."""
    organisation(ctx).partners.update(PLATFORM, app_id, {"enabled": False})
    typer.echo(f"partner {app_id} disabled")


@app.command("enable")
def partner_enable(ctx: typer.Context, app_id: AppId) -> None:
    """Accept a disabled partner's calls again."""
    organisation(ctx).partners.update(PLATFORM, app_id, {"enabled": True})
    typer.echo(f"partner {app_id} enabled")


@app.command("rotate")
def partner_rotate(
    ctx: typer.Context,
    app_id: AppId,
    grace_hours: Annotated[float, typer.Option(
        "--grace-hours", help="How long the old token keeps working.")] = GRACE_HOURS,
) -> None:
    """Issue a new token (printed once); the old one keeps working for the grace period."""
    token = organisation(ctx).partners.rotate(PLATFORM, app_id, grace_s=grace_hours * 3600)["token"]
    typer.echo(f"token: {token}")
    typer.echo(f"(shown once; the previous token keeps working for {grace_hours:g} h)", err=True)
