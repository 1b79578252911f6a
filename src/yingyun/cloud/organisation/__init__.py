"""The organisation of the platform: unions, hospitals, departments, device types, devices, doctors, users,
partners, PACS and gateways — one service layer under both `/api/v1/*` and `yingyun admin …`.

Every operation takes the `Actor` doing it (`scope.py`): a staff user signed in to the console
(`cloud.staff.edge.Caller`), or the operator at the command line (`scope.PLATFORM`). What the actor's
roles do not reach is refused with `Forbidden` (20008), an admin operation asked by a user who administers
nothing with 20012, and lists hold only what the actor may see. Unions, hospitals, partners, PACS and
gateways are written through `tenancy.Tenancy` (which the hot paths read, cached); the rest is here.

Each noun is a `Noun` (`nouns.py`) with the same five operations, taking and giving the JSON the API
and `--json` speak (camelCase keys), so the routes are one loop over them and the CLI prints what the
API answers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .scope import PLATFORM, Actor
from .service import Organisation

if TYPE_CHECKING:
    from fastapi import FastAPI


def install(app: FastAPI, org: Organisation) -> None:
    """Serve the organisation API on `app`, beside `cloud.staff.install` (whose sessions it runs under)."""
    from .api import install_routes  # (the command line uses the services without the web framework)

    install_routes(app, org)


__all__ = ["PLATFORM", "Actor", "Organisation", "install"]
