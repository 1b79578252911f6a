"""HTTP/1.1 connections with bounds: header size, time to send headers, body stalls, idle keep-alive.

uvicorn's httptools protocol (the fast one) puts no limit on a request's
headers (the parser buffers a header line of any length: one 64 MB header
was accepted, eight unfinished 128 MB headers took the server to 1.2 GB)
and no deadline on a request that stops half-way (each byte re-arms
nothing, so one byte every few seconds holds a connection for ever). This
subclass keeps its speed (a few attribute updates per request, one timer
per connection) and adds, per connection:

- a request line or header line over `max_line` (16 KiB) is refused with
  414 / 431, headers over `max_headers` in all (64 KiB) with 431, as soon as
  that many bytes have arrived (never buffered further);
- the headers must be complete within `header_timeout_s` of the request's
  first byte (or of the connection's opening): else 408 and close;
- while a body is being received, `body_timeout_s` of silence is a stall:
  408 (or a close, if the answer has begun) — a slow but steady body is
  fine, and time the application spends not reading does not count;
- at most `max_idle` idle keep-alive connections per process (a new
  connection that has sent nothing counts): beyond, the longest idle one is
  closed, which HTTP allows at any time between requests.

Every refusal closes the connection (`Connection: close`).
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from dataclasses import dataclass
from typing import Any

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

log = logging.getLogger("yingyun.http")


@dataclass(frozen=True)
class HttpLimits:
    max_line: int = 16 * 1024  # the request line, or one header line
    max_headers: int = 64 * 1024  # the request line and every header line of one request
    header_timeout_s: float = 20.0  # from a request's first byte (or the connection's opening) to its last header
    body_timeout_s: float = 60.0  # the longest silence while a body is being received
    max_idle: int = 256  # idle keep-alive connections per process


class _Refused(Exception):
    """Raised in a parser callback to stop parsing; the protocol answers `status`."""


_IDLE, _HEAD, _BODY, _APP = range(4)  # what a connection is waiting for: nothing, headers, body, the app

# Idle connections per server, oldest first (a dict keeps insertion order).
_idle_by_server: weakref.WeakKeyDictionary[Any, dict[BoundedHttpProtocol, None]] = weakref.WeakKeyDictionary()


class BoundedHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the bounds of `HttpLimits` (`http=` of uvicorn.run;
    `functools.partial(BoundedHttpProtocol, limits=…)` for other limits)."""

    def __init__(self, *args: Any, limits: HttpLimits = HttpLimits(), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.limits = limits
        self._idle = _idle_by_server.setdefault(self.server_state, {})
        self._phase = _IDLE
        self._since = 0.0  # when the phase began
        self._last_data = 0.0  # when body bytes last arrived
        self._head_bytes = 0  # bytes received while headers were incomplete
        self._head_size = 0  # request line and header lines parsed so far
        self._served = False
        self._refusal: tuple[int, str] | None = None
        self._watch: asyncio.TimerHandle | None = None
        self._watch_due = 0.0

    # -- connection ------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[arg-type]  # uvicorn wants a Transport; asyncio gives one
        self._enter_idle()
        self._arm(self._since + self.limits.header_timeout_s)

    def connection_lost(self, exc: Exception | None) -> None:
        self._idle.pop(self, None)
        if self._watch is not None:
            self._watch.cancel()
            self._watch = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._phase == _IDLE:
            self._idle.pop(self, None)
            self._phase, self._since, self._head_bytes = _HEAD, self.loop.time(), 0
            if self._watch_due > self._since + self.limits.header_timeout_s:  # the idle deadline was later
                self._arm(self._since + self.limits.header_timeout_s)
        elif self._phase == _BODY:
            self._last_data = self.loop.time()
        super().data_received(data)
        if self._phase == _HEAD and not self.transport.is_closing():
            # Headers still incomplete: what the parser holds is bounded here, before it grows.
            self._head_bytes += len(data)
            if self._head_bytes > self.limits.max_headers:
                self._refuse(431, f"request headers exceed {self.limits.max_headers // 1024} KiB")

    # -- parser callbacks -------------------------------------------------------------

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._phase != _HEAD:  # a pipelined request: its own deadline
            self._phase, self._since, self._head_bytes = _HEAD, self.loop.time(), 0
        self._head_size = 0

    def on_url(self, url: bytes) -> None:
        self._head_size += len(url)
        if self._head_size > self.limits.max_line:
            self._refusal = (414, f"the request line exceeds {self.limits.max_line // 1024} KiB")
            raise _Refused
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        line = len(name) + len(value) + 4
        self._head_size += line
        if line > self.limits.max_line:
            self._refusal = (431, f"a header line exceeds {self.limits.max_line // 1024} KiB")
            raise _Refused
        if self._head_size > self.limits.max_headers:
            self._refusal = (431, f"request headers exceed {self.limits.max_headers // 1024} KiB")
            raise _Refused
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._phase = _BODY
        self._last_data = self.loop.time()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        if self.cycle is not None and self.cycle.response_complete:
            self._enter_idle()  # answered before its body ended (e.g. a body over the limit)
        else:
            self._phase = _APP

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._served = True
        if self._phase == _APP and not self.pipeline and not self.transport.is_closing():
            self._enter_idle()

    def send_400_response(self, msg: str) -> None:
        # uvicorn's answer to any parser error, ours (a callback raised _Refused) included.
        status, msg = self._refusal or (400, msg)
        self._refusal = None
        self._refuse(status, msg)

    # -- bounds -----------------------------------------------------------------------

    def _enter_idle(self) -> None:
        self._phase, self._since = _IDLE, self.loop.time()
        idle = self._idle
        idle[self] = None
        if len(idle) > self.limits.max_idle:
            oldest = next(iter(idle))
            del idle[oldest]
            oldest.transport.close()

    def _check(self) -> None:
        """The connection's one timer: close what stalled, else look again when the next deadline is due."""
        self._watch = None
        if self.transport.is_closing():
            return
        now = self.loop.time()
        limits = self.limits
        if self._phase == _IDLE:
            # A new connection must start its request within the header time; uvicorn's
            # keep-alive timeout closes a served one (here as well, should it not).
            due = self._since + (self.config.timeout_keep_alive if self._served else limits.header_timeout_s)
            if now >= due:
                self.transport.close()
                return
        elif self._phase == _HEAD:
            due = self._since + limits.header_timeout_s
            if now >= due:
                self._refuse(408, f"request headers not complete within {limits.header_timeout_s:g} s")
                return
        elif self._phase == _BODY:
            if self.flow.read_paused:  # the application is not reading: not the client's silence
                self._last_data = now
            due = self._last_data + limits.body_timeout_s
            if now >= due:
                self._body_stalled()
                return
        else:
            due = now + limits.header_timeout_s  # the application's time is its own
        self._arm(due)

    def _arm(self, due: float) -> None:
        if self._watch is not None:
            self._watch.cancel()
        self._watch_due = due
        self._watch = self.loop.call_at(due, self._check)

    def _body_stalled(self) -> None:
        cycle = self.cycle
        msg = f"no request body received for {self.limits.body_timeout_s:g} s"
        if cycle is not None and not cycle.response_started:
            cycle.disconnected = True  # the application's receive() returns http.disconnect, its send() nothing
            cycle.message_event.set()
            self._refuse(408, msg)
        else:
            log.info("closing a connection: %s", msg)
            self.transport.close()

    def _refuse(self, status: int, msg: str) -> None:
        """Answer `status` with `msg` and close (never inside an answer the application has begun)."""
        if self.cycle is not None and self.cycle.response_started and not self.cycle.response_complete:
            self.transport.close()
            return
        body = msg.encode()
        head = [STATUS_LINE[status]]
        for name, value in self.server_state.default_headers:
            head += [name, b": ", value, b"\r\n"]
        head += [b"content-type: text/plain; charset=utf-8\r\ncontent-length: ", str(len(body)).encode(),
                 b"\r\nconnection: close\r\n\r\n", body]
        self.transport.write(b"".join(head))
        self.transport.close()
        client = self.client[0] if self.client else "-"
        log.info("refused a request from %s: %d %s", client, status, msg)
