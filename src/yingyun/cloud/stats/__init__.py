"""Operations statistics (运营统计) and the audit trail for auditors: `/api/v1/stats`, `/audit`, `/discrepancies`.

service.py sums the days and reads the gauges, trail.py reads the audit
trail, router.py serves them to staff callers within their scope.
"""

from __future__ import annotations

from fastapi import FastAPI

from .router import StatsContext
from .service import StatsService

__all__ = ["StatsContext", "StatsService", "install"]


def install(app: FastAPI, ctx: StatsContext) -> None:
    """Serve the routes on `app`, over `ctx` (read by the handlers' `StatsCtx` dependency)."""
    from .router import router

    app.state.stats = ctx
    app.include_router(router)
