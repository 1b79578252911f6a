"""Staff accounts: users with scoped roles, their sessions, the staff audit trail, and the `/api/v1` edge.

`edge` is what every `/api/v1` router codes against (`StaffRoute`,
`CallerDep`, `Caller`, `Role`); `audit.record_action` records what a staff
user did; `accounts` and `sessions` are the services; `api` is the session
API.
"""

from __future__ import annotations

from fastapi import FastAPI

from .context import SessionPolicy, StaffContext


def install(app: FastAPI, ctx: StaffContext) -> None:
    """Serve the session API on `app`, over `ctx` (read by the handlers' `StaffCtx` dependency)."""
    from . import api

    app.state.staff = ctx
    app.include_router(api.router)


__all__ = ["SessionPolicy", "StaffContext", "install"]
