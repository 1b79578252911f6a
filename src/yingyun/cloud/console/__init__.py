"""The operations console at /console/ (issue 14 item 5): one page, its script, style and charts.

The page is served here (pages.py) in the browser's language (i18n.py); its
data comes only from `/api/v1` (sessions, organisation, stats, audit), so
the console never shows more than its user may see. ECharts comes from
node_modules/ (assets.py), installed from package-lock.json by make.
"""

from __future__ import annotations

from fastapi import FastAPI

from .pages import PREFIX, router

__all__ = ["PREFIX", "install"]


def install(app: FastAPI, *, timezone: str) -> None:
    """`timezone`: the platform's zone (Settings.timezone), whose days the statistics count; the page reckons
    "today" in it, not in the browser's zone (the two differ by a day for hours of every day)."""
    app.state.console_timezone = timezone
    app.include_router(router)
