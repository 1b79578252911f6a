"""CORS for /dicomweb only, so a viewer served from another origin can connect.

Origins are configured (`--cors-origin`, Settings.cors_origins); `*` allows
any origin (credentials are sent as headers, never cookies, so that is
safe to allow). Other paths are passed through untouched.
"""

from __future__ import annotations

from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

PREFIX = "/dicomweb"


class DicomwebCors:
    def __init__(self, app: ASGIApp, *, origins: list[str]) -> None:
        self.app = app
        self.cors = CORSMiddleware(
            app, allow_origins=list(origins), allow_methods=["GET", "POST", "OPTIONS"],
            allow_headers=["Authorization", "Accept", "Content-Type", "appId", "timestamp", "signature"],
            expose_headers=["Content-Type", "Content-Length", "Warning", "X-Request-Id"], max_age=600,
        ) if origins else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.cors is not None and scope["type"] == "http" and (
                scope["path"] == PREFIX or scope["path"].startswith(PREFIX + "/")):
            await self.cors(scope, receive, send)
            return
        await self.app(scope, receive, send)
