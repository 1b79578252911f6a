"""Request plumbing: ids, metrics, client address, security headers.

The vendor's JSON APIs (/ris/*, /thirdparty/*) have their own edge, `web.vendor`.
"""

from __future__ import annotations

import ipaddress
import logging
import time
import os
from typing import Any

import orjson
from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..core.logging import quoted, redact_path, redact_query, request_id

log = logging.getLogger("yingyun.http")
access = logging.getLogger("yingyun.access")

# Our reverse proxies' networks (Settings.trusted_proxies).
Networks = list[ipaddress.IPv4Network | ipaddress.IPv6Network]

def json_response(body: dict[str, Any] | list[Any], status: int = 200,
                  headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json", headers=headers)


class Metrics:
    """Prometheus metrics of one app (its own registry: apps side by side in tests)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "yingyun_http_requests_total", "HTTP requests by route, method, status and contract code",
            ["route", "method", "status", "code"], registry=self.registry,
        )
        self.latency = Histogram(
            "yingyun_http_request_seconds", "HTTP request latency by route",
            ["route", "method"], registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )


def from_trusted_proxy(scope: Scope, trusted: Networks) -> bool:
    """Whether the connection comes from one of our reverse proxies (`trusted`, a list of networks)."""
    peer = (scope.get("client") or ("", 0))[0]
    return bool(trusted) and in_networks(peer, trusted)


def in_networks(address: str, networks: Networks) -> bool:
    """Whether `address` (an IP as text; anything else is in none) is in one of `networks`."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in networks)


def client_address(scope: Scope, trusted: Networks) -> str:
    """The client's address; X-Forwarded-For counts only from a trusted proxy."""
    peer: str = (scope.get("client") or ("", 0))[0]
    if not from_trusted_proxy(scope, trusted):
        return peer
    for name, value in scope.get("headers", []):
        if name == b"x-forwarded-for":
            hops: list[str] = [h.strip() for h in value.decode("latin-1").split(",") if h.strip()]
            # Walk back from the nearest hop, skipping our own proxies.
            for hop in reversed(hops):
                try:
                    addr = ipaddress.ip_address(hop)
                except ValueError:
                    return peer
                if not any(addr in net for net in trusted):
                    return hop
            return hops[0] if hops else peer
    return peer


class RequestContext:
    """Pure ASGI middleware: request id, client address, metrics, access log."""

    def __init__(self, app: ASGIApp, *, metrics: Metrics, trusted_proxies: Networks, access_log: bool = False) -> None:
        self.app = app
        self.metrics = metrics
        self.trusted = trusted_proxies
        self.access_log = access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = os.urandom(8).hex()
        token = request_id.set(rid)
        scope.setdefault("state", {})
        scope["state"]["request_id"] = rid
        scope["state"]["client_ip"] = client_address(scope, self.trusted)
        start = time.perf_counter()
        status = {"code": 500}

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", rid.encode()))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            elapsed = time.perf_counter() - start
            route = scope.get("route")
            route_path = getattr(route, "path", None) or "unmatched"
            method = scope.get("method", "")
            self.metrics.requests.labels(route_path, method, str(status["code"]),
                                         str(scope["state"].get("code", ""))).inc()
            self.metrics.latency.labels(route_path, method).observe(elapsed)
            if self.access_log:
                query = scope.get("query_string", b"").decode("latin-1")
                access.info("%s %s %s %s %.1fms", scope["state"]["client_ip"], method,
                            quoted(redact_path(scope.get("path", "")) + ("?" + redact_query(query) if query else "")),
                            status["code"], elapsed * 1000)
            elif log.isEnabledFor(logging.DEBUG) or status["code"] >= 500:
                log.log(
                    logging.WARNING if status["code"] >= 500 else logging.DEBUG,
                    "%s %s %s %.1fms", method, quoted(redact_path(scope.get("path", ""))), status["code"],
                    elapsed * 1000,
                )
            request_id.reset(token)


HSTS = "max-age=31536000"


class SecurityHeaders:
    """Pure ASGI middleware: `headers` on every response under `prefix` (the pages:
    a 404, 405 or 422 of the router too, not only what a page handler returns),
    unless the response set that header itself; and Strict-Transport-Security on
    every response served over TLS (never over plain HTTP, where it means nothing).
    A fault's 500 is rendered by Starlette outside every middleware: it is JSON
    (web.vendor.install_vendor_error_handlers), not a page."""

    def __init__(self, app: ASGIApp, *, prefix: str, headers: dict[str, str]) -> None:
        self.app = app
        self.prefix = prefix
        self.headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = list(self.headers) if scope.get("path", "").startswith(self.prefix) else []
        if scope.get("scheme") == "https":
            extra.append((b"strict-transport-security", HSTS.encode()))
        if not extra:
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers += [(name, value) for name, value in extra if name not in present]
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)
