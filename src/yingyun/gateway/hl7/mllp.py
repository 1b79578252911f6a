"""MLLP (HL7 v2's Minimal Lower Layer Protocol): framing and the listener. Protocol only.

A message travels as 0x0B, its bytes, 0x1C 0x0D. The listener answers each
message with what its handler returns (the ACK), only once the handler has
returned, on the same connection, in the order they came; interface engines
keep one connection open for days, so an idle connection is never timed out
(TCP keepalive finds the dead ones), but a message begun and not finished
within `stall_timeout_s` ends its connection. Messages that arrive in one
read (a sender that does not wait for each ACK) are handed over together.

What arrives badly framed is told to the handler's `reject_framing`, which
may answer it (a NAK naming the fault) when its first bytes name a message:
bytes outside a frame (an unframed message), a frame begun before the
previous one ended, a message longer than `max_message_bytes`. A connection
cut in the middle of a message leaves nothing: the message was never given
to the handler, and the sender, without an ACK, sends it again.
"""

from __future__ import annotations

import logging
import socket
import threading
from dataclasses import dataclass
from typing import Protocol

log = logging.getLogger("yingyun.hl7")

START = b"\x0b"
END = b"\x1c"
CR = b"\x0d"
# What a fault tells about the frame it is about: enough for the MSH segment.
HEAD_BYTES = 4096
_WHITESPACE = b"\r\n\t \x00"


def frame(message: bytes) -> bytes:
    return START + message + END + CR


@dataclass(frozen=True)
class Framed:
    """A whole message, as it was between its start and end bytes."""

    data: bytes


@dataclass(frozen=True)
class FramingFault:
    kind: str  # unframed | unended | too-large
    head: bytes
    reason: str


class Deframer:
    """Bytes in, messages and framing faults out (`feed`), in the order they came."""

    def __init__(self, max_message_bytes: int) -> None:
        self.max_message_bytes = max_message_bytes
        self._frame: bytearray | None = None
        self._length = 0
        self._junk = bytearray()

    @property
    def inside(self) -> int:
        """Bytes of a message begun and not yet ended (0 between messages)."""
        return self._length if self._frame is not None else 0

    def feed(self, data: bytes) -> list[Framed | FramingFault]:
        out: list[Framed | FramingFault] = []
        i = 0
        while i < len(data):
            if self._frame is None:
                j = data.find(START, i)
                stop = j if j >= 0 else len(data)
                junk = data[i:stop]
                if junk.strip(_WHITESPACE + END) and len(self._junk) < HEAD_BYTES:
                    self._junk += junk.lstrip(_WHITESPACE + END)[:HEAD_BYTES - len(self._junk)]
                if j < 0:
                    break
                out.extend(self.flush())
                self._frame, self._length = bytearray(), 0
                i = j + 1
                continue
            end = data.find(END, i)
            start = data.find(START, i)
            if start >= 0 and (end < 0 or start < end):
                self._take(data[i:start])
                out.append(FramingFault("unended", bytes(self._frame[:HEAD_BYTES]),
                                        "an MLLP frame began before the previous one ended (0x1C 0x0D missing): "
                                        "the unfinished message is not read"))
                self._frame, self._length = bytearray(), 0
                i = start + 1
                continue
            self._take(data[i:end if end >= 0 else len(data)])
            if end < 0:
                break
            if self._length > self.max_message_bytes:
                out.append(FramingFault("too-large", bytes(self._frame[:HEAD_BYTES]),
                                        f"the message is longer than {self.max_message_bytes} bytes: not read"))
            else:
                out.append(Framed(bytes(self._frame)))
            self._frame, self._length = None, 0
            i = end + 1
        return out

    def flush(self) -> list[Framed | FramingFault]:
        """The bytes seen outside any frame since the last message, as one fault (none when only whitespace)."""
        if not self._junk:
            return []
        head, self._junk = bytes(self._junk), bytearray()
        return [FramingFault("unframed", head, "bytes outside an MLLP frame (0x0B … 0x1C 0x0D): not read")]

    def _take(self, chunk: bytes) -> None:
        assert self._frame is not None
        self._length += len(chunk)
        if len(self._frame) <= self.max_message_bytes:  # past the limit only the head is kept, for the NAK
            self._frame += chunk[:self.max_message_bytes + 1 - len(self._frame)]


class MessageHandler(Protocol):
    def handle_all(self, raws: list[bytes], *, peer_host: str) -> list[bytes]:
        """The answers (ACKs) to messages that arrived together, in their order, each returned once what it
        asked is durable."""
        ...

    def reject_framing(self, head: bytes, *, peer_host: str, kind: str, reason: str) -> bytes | None:
        """The answer to what arrived badly framed, or None to answer nothing."""
        ...


class PortInUse(Exception):
    pass


class MllpServer:
    """Listens on `host`:`port` (0: any free port, see `.port`); a thread per connection, at most
    `max_connections` at once (one more is closed at once, and logged)."""

    def __init__(self, handler: MessageHandler, *, host: str, port: int, max_message_bytes: int = 8 * 2**20,
                 max_connections: int = 32, stall_timeout_s: float = 30.0) -> None:
        self.handler = handler
        self.max_message_bytes = max_message_bytes
        self.max_connections = max_connections
        self.stall_timeout_s = stall_timeout_s
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        try:
            self._listener = socket.create_server((host, port), family=family, backlog=64)
        except OSError as exc:
            raise PortInUse(f"HL7 port {port} cannot be listened on ({exc.strerror})") from exc
        self.port: int = self._listener.getsockname()[1]
        self._connections: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._accept_loop, name="hl7-listener", daemon=True)

    def start(self) -> MllpServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        try:
            self._listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._listener.close()
        with self._lock:
            for conn in list(self._connections):
                try:
                    conn.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        self._thread.join(timeout=5)

    def _accept_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                conn, addr = self._listener.accept()
            except OSError:
                return
            with self._lock:
                full = len(self._connections) >= self.max_connections
                if not full:
                    self._connections.add(conn)
            if full:
                log.warning("HL7 connection from %s refused: %d connections open already", addr[0],
                            self.max_connections)
                conn.close()
                continue
            threading.Thread(target=self._serve, args=(conn, addr[0]), name="hl7-connection", daemon=True).start()

    def _serve(self, conn: socket.socket, peer: str) -> None:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # an ACK waits for nothing
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        deframer = Deframer(self.max_message_bytes)
        try:
            while not self._stopping.is_set():
                conn.settimeout(self.stall_timeout_s if deframer.inside else None)
                try:
                    data = conn.recv(65536)
                except TimeoutError:
                    log.warning("HL7 connection from %s closed: a message stalled after %d bytes (not read)",
                                peer, deframer.inside)
                    return
                if not data:
                    if deframer.inside:
                        log.warning("HL7 connection from %s cut in the middle of a message (%d bytes, not read)",
                                    peer, deframer.inside)
                    self._answer(conn, peer, deframer.flush())
                    return
                self._answer(conn, peer, deframer.feed(data))
        except OSError as exc:
            log.info("HL7 connection from %s ended (%s)", peer, type(exc).__name__)
        finally:
            with self._lock:
                self._connections.discard(conn)
            conn.close()

    def _answer(self, conn: socket.socket, peer: str, events: list[Framed | FramingFault]) -> None:
        """Answer in order; messages that came in one read (a sender not waiting for each ACK) go to the
        handler together, so that their commits can be shared."""
        run: list[bytes] = []
        for event in [*events, None]:
            if isinstance(event, Framed):
                run.append(event.data)
                continue
            if run:
                conn.sendall(b"".join(frame(reply) for reply in self.handler.handle_all(run, peer_host=peer)))
                run = []
            if event is not None:
                reply = self.handler.reject_framing(event.head, peer_host=peer, kind=event.kind, reason=event.reason)
                if reply is not None:
                    conn.sendall(frame(reply))
