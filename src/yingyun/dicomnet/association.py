"""One association, from A-ASSOCIATE-RQ to A-RELEASE or A-ABORT, on its own thread.

``Association.run`` reads PDUs from a blocking socket (``_Reader``: one
``recv_into`` a reusable buffer, no polling), reassembles each DIMSE message
from its PDVs (a data set in a ``_DatasetSink``, in memory or spooled to
disk), and calls the provider's ``Session`` once a message is complete. The
guarantees it keeps are the server's (see ``server``): a data set cut short
never reaches ``store``, ``close`` is called once, and a peer that breaks the
protocol, or is too slow, gets an A-ABORT and costs only its own association.
"""

from __future__ import annotations

import logging
import os
import secrets
import select
import socket
import struct
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from enum import Enum
from typing import Any, BinaryIO, Protocol

from pydicom.dataset import Dataset

from .acse import (
    COMMIT,
    FIND,
    STORE,
    AcceptedContext,
    AssociationInfo,
    Rejected,
    check_request,
    negotiate_context,
    service_of,
)
from .commitment import (
    ACTION_REQUEST_COMMIT,
    N_ACTION_RQ,
    N_EVENT_REPORT_RSP,
    CommitmentRequest,
    CommitmentResult,
    action_rsp,
    event_report_rq,
    parse_action,
    report_dataset,
)
from .dimse import (
    C_CANCEL_RQ,
    C_ECHO_RQ,
    C_FIND_RQ,
    C_STORE_RQ,
    Command,
    ServiceFailure,
    StoreRequest,
    StoreResponse,
    build_response,
    decode_dataset,
    encode_dataset,
)
from .pdu import (
    PDU_HEADER,
    PDV_HEADER,
    RELEASE_RP,
    AssociateRequest,
    ProtocolError,
    abort_pdu,
    encode_associate_ac,
    parse_associate_rq,
    pdata_pdus,
    reject_pdu,
)
from .status import Category, Status, category
from .uids import STORAGE_COMMITMENT_INSTANCE, STORAGE_COMMITMENT_PUSH, UNCOMPRESSED, VERIFICATION

__all__ = ["Association", "AssociationHost", "RefusalLog", "ServiceProvider", "Session", "provider_error"]

log = logging.getLogger("yingyun.dicom")

# Command sets are a few hundred bytes; anything this large is an attack or a bug.
_MAX_COMMAND_BYTES = 64 * 1024
_MAX_ASSOCIATE_RQ = 1 << 20
_READ_BUFFER = 256 * 1024
_TIGHT_S = 5.0  # see _Reader
# After we send A-ABORT / A-ASSOCIATE-RJ we drain what the peer still sends so
# that our close() is a FIN, not an RST that could destroy the PDU in flight.
_LINGER_SECONDS = 1.0
_LINGER_BYTES = 8 << 20


class Session(Protocol):
    """One per accepted association, returned by ServiceProvider.associate.

    All calls for one association come from that association's thread, one
    at a time; different associations call their sessions concurrently.
    """

    def store(self, req: StoreRequest, data: bytes | memoryview | BinaryIO) -> int | StoreResponse:
        """Persist one complete dataset; return the DIMSE status for the C-STORE-RSP
        (with an Error Comment for the sender: a ``StoreResponse``).

        ``data`` is the dataset exactly as received (no file meta) in
        ``req.transfer_syntax_uid``: a memoryview the server never reuses, or
        above ``spool_threshold`` a file object at offset 0 whose ``.name``
        the provider may ``os.replace`` elsewhere.  Raising ``ServiceFailure``
        answers with its status and comment; raising anything else yields
        0xC211.  Either way the association carries on.
        """
        ...

    def find(self, sop_class_uid: str, identifier: Dataset) -> Iterable[Dataset]:
        """Yield matches; each is sent as Pending (0xFF00), then Success.

        A C-CANCEL is honoured between matches (the iterator is then closed
        and 0xFE00 sent).  Raising ``ServiceFailure`` (when called or while
        iterating) ends it with that status and comment; anything else, 0xC311.
        """
        ...

    def commit(self, request: CommitmentRequest) -> CommitmentResult | None:
        """A Request Storage Commitment (N-ACTION): record it durably before returning, and return
        the result to report now on this association, or None to report it later on another.

        The N-EVENT-REPORT goes only while the peer has not asked to release; whether it was
        answered is told by ``commit_reported``, and a result never answered is the session's
        to hand over (at ``close``). Raising ``ServiceFailure`` refuses the request with that
        status; anything else, 0x0110.
        """
        ...

    def commit_reported(self, transaction_uid: str, status: int | None) -> None:
        """The peer's N-EVENT-REPORT-RSP status for a result sent on this association."""
        ...

    def close(self, *, aborted: bool) -> None:
        """Called exactly once; ``aborted`` is False only after A-RELEASE."""
        ...


class ServiceProvider(Protocol):
    def associate(self, info: AssociationInfo) -> Session:
        """Accept the association (return a Session) or raise Rejected.

        Called only after the called AE title matched and a slot was free.
        Any other exception rejects transiently (result 2, source 1, reason 1).
        """
        ...


class _PeerClosed(Exception):
    """The TCP connection ended (EOF or reset)."""


class _PeerAborted(Exception):
    def __init__(self, source: int, reason: int) -> None:
        super().__init__(f"source={source} reason={reason}")


class _TooSlow(Exception):
    """The peer did not deliver in time: the A-ASSOCIATE-RQ within ARTIM, or a
    PDU within its allowance (``pdu_timeout`` plus its length at ``min_rate``)."""


class _Reader:
    """Buffered reads from a blocking socket, refilled with recv_into.

    ``timeout`` is the socket's timeout for each read (a TimeoutError when
    nothing arrives that long); ``deadline`` (a ``time.monotonic()`` value, or
    None) bounds all reads until it is changed, however the bytes trickle:
    past it, ``_TooSlow``.  The socket's timeout is shortened only for reads
    in the last ``_TIGHT_S`` before a deadline (settimeout costs system
    calls), so a read costs one clock call more, and a deadline is kept
    to within the time a read takes.
    """

    __slots__ = ("_sock", "_buf", "_view", "_start", "_end", "timeout", "deadline")

    def __init__(self, sock: socket.socket, size: int = _READ_BUFFER) -> None:
        self._sock = sock
        self._buf = bytearray(size)
        self._view = memoryview(self._buf)
        self._start = 0
        self._end = 0
        self.timeout = 0.0
        self.deadline: float | None = None

    def set_timeout(self, timeout: float) -> None:
        self.timeout = timeout
        self._sock.settimeout(timeout)

    def buffered(self) -> int:
        return self._end - self._start

    def _recv(self) -> None:
        left = None if self.deadline is None else self.deadline - time.monotonic()
        if left is not None and left < _TIGHT_S and left < self.timeout:
            if left <= 0:
                raise _TooSlow()
            self._sock.settimeout(left)
            try:
                got = self._sock.recv_into(self._view[self._end:])
            except TimeoutError:
                raise _TooSlow() from None
            finally:
                self._sock.settimeout(self.timeout)
        else:
            got = self._sock.recv_into(self._view[self._end:])
        if not got:
            raise _PeerClosed("connection closed by peer")
        self._end += got

    def wait(self) -> None:
        """Until at least one byte is buffered."""
        self._fill(1)

    def _fill(self, n: int) -> None:
        while self._end - self._start < n:
            if self._start == self._end:
                self._start = self._end = 0
            elif len(self._buf) - self._start < n:
                rest = bytes(self._view[self._start:self._end])
                self._buf[:len(rest)] = rest
                self._start, self._end = 0, len(rest)
            self._recv()

    def header(self, layout: struct.Struct) -> tuple[int, ...]:
        """Unpack a fixed-size header straight out of the buffer."""
        self._fill(layout.size)
        start = self._start
        self._start = start + layout.size
        return layout.unpack_from(self._buf, start)

    def read_exact(self, n: int) -> bytearray:
        if n <= len(self._buf):
            self._fill(n)
            start = self._start
            self._start = start + n
            return self._buf[start:start + n]
        out = bytearray()
        self.copy_to(out.extend, n)
        return out

    def copy_to(self, write: Callable[[memoryview], object], n: int) -> None:
        """Stream the next n bytes to write() without an intermediate bytes object."""
        while n:
            if self._start == self._end:
                self._start = self._end = 0
                self._recv()
            take = min(self._end - self._start, n)
            write(self._view[self._start:self._start + take])
            self._start += take
            n -= take


class _DatasetSink:
    """Accumulates one dataset in memory, spilling to a spool file when large.

    A spool file that cannot be written (disk full, the folder gone) does not
    end the association: the rest of the dataset is read and dropped, and
    ``failed`` makes the C-STORE-RSP a refusal (out of resources).
    """

    __slots__ = ("size", "failed", "_mem", "_file", "_threshold", "_spool_dir")

    def __init__(self, threshold: int, spool_dir: str | None) -> None:
        self.size = 0
        self.failed = False
        self._mem = bytearray()
        self._file: BinaryIO | None = None
        self._threshold = threshold
        self._spool_dir = spool_dir

    def write(self, chunk: memoryview) -> None:
        self.size += len(chunk)
        if self.failed:
            return
        try:
            if self._file is None:
                if self.size <= self._threshold:
                    self._mem += chunk
                    return
                self._spill()
            assert self._file is not None
            self._file.write(chunk)
        except OSError as exc:
            log.error("cannot spool a received data set: %s", exc.strerror or type(exc).__name__)
            self.discard()
            self.failed = True

    def _spill(self) -> None:
        fd, path = tempfile.mkstemp(prefix="yy-spool-", suffix=".dcm.part", dir=self._spool_dir)
        os.close(fd)
        self._file = open(path, "r+b")  # a real file object whose .name is the path
        self._file.write(self._mem)
        self._mem = bytearray()

    def payload(self) -> memoryview | BinaryIO:
        if self._file is None:
            return memoryview(self._mem)
        self._file.flush()
        self._file.seek(0)
        return self._file

    def discard(self) -> None:
        """Drop the data; the spool file goes unless the provider moved it."""
        self._mem = bytearray()
        if self._file is not None:
            path = self._file.name
            try:
                self._file.close()
            finally:
                try:
                    os.unlink(path)
                except FileNotFoundError:
                    pass
            self._file = None


@dataclass
class _Message:
    context: AcceptedContext
    command: Command
    data: _DatasetSink | None


class _Marker(Enum):
    RELEASE = "A-RELEASE-RQ received"  # queued after the messages before it


_RELEASE = _Marker.RELEASE
_BUSY = "too many associations"

class RefusalLog:
    """Warnings about refused peers, at most one per kind every ``interval``
    seconds, the next one counting those left out: a flood of connections
    must not flood the log (or the disk under it)."""

    def __init__(self, interval: float = 10.0) -> None:
        self.interval = interval
        self._lock = threading.Lock()
        self._last: dict[str, float] = {}
        self._left_out: dict[str, int] = {}

    def warning(self, kind: str, message: str, *args: object) -> None:
        now = time.monotonic()
        with self._lock:
            if now - self._last.get(kind, -self.interval) < self.interval:
                self._left_out[kind] = self._left_out.get(kind, 0) + 1
                return
            self._last[kind] = now
            left_out = self._left_out.pop(kind, 0)
        if left_out:
            log.warning(message + " (and %d more like it in the last %.0fs)", *args, left_out, self.interval)
        else:
            log.warning(message, *args)


class AssociationObserver(Protocol):
    """What the server tells of its associations as they go, for an operator's metrics."""

    def association(self, outcome: str, reason: str) -> None:
        """An A-ASSOCIATE-RQ answered: ``accepted`` (reason ""), or ``rejected`` and why."""

    def stored(self, status: int, seconds: float, size: int) -> None:
        """A C-STORE answered with ``status``, ``seconds`` after its data set was in, of ``size`` bytes."""

    def queried(self, sop_class: str, status: int) -> None:
        """A C-FIND of the information model ``sop_class`` ended with ``status``."""


class NoObserver:
    def association(self, outcome: str, reason: str) -> None:
        pass

    def stored(self, status: int, seconds: float, size: int) -> None:
        pass

    def queried(self, sop_class: str, status: int) -> None:
        pass


class AssociationHost(Protocol):
    """What an association reads of the server that accepted it (``UpperLayerServer``)."""

    provider: ServiceProvider
    ae_title: str
    max_associations: int
    max_pdu: int
    pdata_limit: int
    acse_timeout: float
    idle_timeout: float
    pdu_timeout: float
    min_rate: int
    spool_threshold: int
    spool_dir: str | None
    refusals: RefusalLog
    observer: AssociationObserver


class Association:
    """One TCP connection, from A-ASSOCIATE-RQ to release/abort, on its own thread."""

    def __init__(self, server: AssociationHost, sock: socket.socket,
                 address: tuple[Any, ...], *, over_capacity: bool) -> None:
        self._server = server
        self._sock = sock
        self._host = str(address[0])
        self._port = int(address[1])
        self._over_capacity = over_capacity
        self._accepted_at = time.monotonic()
        self.assoc_id = secrets.token_hex(4)
        self._reader = _Reader(sock)
        self._send_lock = threading.Lock()
        self._session: Session | None = None
        self._contexts: dict[int, AcceptedContext] = {}
        self._peer_max = 0
        self._ready: deque[_Message | _Marker] = deque()
        # Message being reassembled (non-async: one at a time).
        self._msg_context: int | None = None
        self._command_bytes = bytearray()
        self._command: Command | None = None
        self._sink: _DatasetSink | None = None
        self._interrupted = False
        self._stats = {"store": 0, "store_failed": 0, "find": 0}
        self._reports: dict[int, str] = {}  # N-EVENT-REPORT message id -> its Transaction UID
        self._next_id = 0

    # ---- lifecycle

    def run(self) -> None:
        aborted = True
        server = self._server
        try:
            # ARTIM (PS3.8 9.1.5): the whole A-ASSOCIATE-RQ, counted from the accept.
            self._reader.set_timeout(server.acse_timeout)
            self._reader.deadline = self._accepted_at + server.acse_timeout
            if not self._associate():
                return
            self._reader.set_timeout(server.idle_timeout)
            self._serve()
            aborted = False
        except (_TooSlow, TimeoutError) as exc:
            if self._session is None:
                # ARTIM expiry before association (PS3.8 AA-2): just close.
                server.refusals.warning("artim", "connection %s from %s: no complete A-ASSOCIATE-RQ within %.1fs "
                                        "of connecting, closing", self.assoc_id, self._host, server.acse_timeout)
            elif isinstance(exc, _TooSlow):
                server.refusals.warning("slow", "association %s from %s: a PDU arrived slower than %d bytes/s "
                                        "(after %.0fs), aborting", self.assoc_id, self._host, server.min_rate,
                                        server.pdu_timeout)
                self._abort(2, 0)
            else:
                log.warning("association %s: idle for %.1fs, aborting", self.assoc_id, server.idle_timeout)
                self._abort(2, 0)
        except _PeerAborted as exc:
            log.info("association %s aborted by peer (%s)", self.assoc_id, exc)
        except _PeerClosed:
            if self._session is None:
                # TCP health checks and port scanners do this all day long.
                log.debug("connection %s from %s closed before association", self.assoc_id, self._host)
            elif not self._interrupted:
                log.warning("association %s: peer closed the connection without release", self.assoc_id)
        except ProtocolError as exc:
            log.warning("association %s: protocol error, aborting: %s", self.assoc_id, exc)
            self._abort(2, exc.reason)
        except OSError as exc:
            if not self._interrupted:
                log.warning("association %s: socket error: %s", self.assoc_id, exc)
        except Exception:
            log.exception("association %s: internal error, aborting", self.assoc_id)
            self._abort(2, 0)
        finally:
            self._finish(aborted)

    def _finish(self, aborted: bool) -> None:
        if self._sink is not None:
            self._sink.discard()
            self._sink = None
        for item in self._ready:
            if isinstance(item, _Message) and item.data is not None:
                item.data.discard()
        self._ready.clear()
        if self._session is not None:
            try:
                self._session.close(aborted=aborted)
            except Exception:
                provider_error(self.assoc_id, "session.close()")
            if not aborted:
                log.info("association %s released (stored=%d failed=%d find=%d)", self.assoc_id,
                         self._stats["store"], self._stats["store_failed"], self._stats["find"])
        try:
            self._sock.close()
        except OSError:
            pass

    def interrupt(self) -> None:
        """Called from another thread by shutdown(): abort and unblock the reader."""
        self._interrupted = True
        if self._session is not None and self._send_lock.acquire(timeout=1.0):
            try:
                self._sock.sendall(abort_pdu(0, 0))
            except OSError:
                pass
            finally:
                self._send_lock.release()
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _send(self, data: bytes) -> None:
        with self._send_lock:
            self._sock.sendall(data)

    def _abort(self, source: int, reason: int) -> None:
        if self._interrupted:
            return
        try:
            self._send(abort_pdu(source, reason))
        except OSError:
            return
        self._linger()

    def _linger(self) -> None:
        """Half-close and drain briefly so the peer reads our last PDU (no RST)."""
        try:
            self._sock.shutdown(socket.SHUT_WR)
            self._sock.settimeout(_LINGER_SECONDS)
            drained = 0
            while drained < _LINGER_BYTES:
                got = self._sock.recv(65536)
                if not got:
                    break
                drained += len(got)
        except OSError:
            pass

    # ---- association establishment

    def _associate(self) -> bool:
        pdu_type, length = self._reader.header(PDU_HEADER)
        if pdu_type != 0x01:
            if pdu_type == 0x07:
                raise _PeerAborted(-1, -1)
            known = pdu_type in (0x02, 0x03, 0x04, 0x05, 0x06)
            raise ProtocolError(f"expected A-ASSOCIATE-RQ, got PDU type 0x{pdu_type:02x}",
                                 ProtocolError.UNEXPECTED_PDU if known else ProtocolError.UNRECOGNISED_PDU)
        if length > _MAX_ASSOCIATE_RQ:
            raise ProtocolError(f"A-ASSOCIATE-RQ of {length} bytes", ProtocolError.INVALID_PARAM)
        body = self._reader.read_exact(length)
        rq = parse_associate_rq(PDU_HEADER.pack(0x01, length) + body)
        self._reader.deadline = None  # the RQ is in: answering it is not the peer's time
        refusal = self._refusal(rq)
        if refusal is not None:
            reason, result, source, diagnostic = refusal
            self._server.observer.association("rejected", reason)
            if reason == _BUSY:
                self._server.refusals.warning(
                    "busy", "association %s rejected: all %d association slots are busy (calling=%r peer=%s)",
                    self.assoc_id, self._server.max_associations, rq.calling_ae, self._host)
            else:
                log.info("association %s rejected: %s (calling=%r called=%r peer=%s:%d)", self.assoc_id,
                         reason, rq.calling_ae, rq.called_ae, self._host, self._port)
            self._send(reject_pdu(result, source, diagnostic))
            self._linger()
            return False
        results = []
        for cx in rq.contexts:
            result, ts = negotiate_context(cx)
            results.append((cx.context_id, result, ts))
            if result == 0:
                self._contexts[cx.context_id] = AcceptedContext(
                    cx.context_id, cx.abstract_syntax, ts, service_of(cx.abstract_syntax) or "")
        self._peer_max = rq.peer_max_pdu
        self._send(encode_associate_ac(rq, results, self._server.max_pdu))
        self._server.observer.association("accepted", "")
        log.info("association %s accepted: calling=%r called=%r peer=%s:%d contexts=%d/%d impl=%s",
                 self.assoc_id, rq.calling_ae, rq.called_ae, self._host, self._port,
                 len(self._contexts), len(rq.contexts), rq.implementation_uid)
        return True

    def _refusal(self, rq: AssociateRequest) -> tuple[str, int, int, int] | None:
        """Decide on A-ASSOCIATE-RJ; on acceptance, the session is created here."""
        refusal = check_request(rq, self._server.ae_title)
        if refusal is not None:
            return refusal
        if self._over_capacity:
            return _BUSY, 2, 3, 2
        info = AssociationInfo(rq.calling_ae, rq.called_ae, self._host, self._port, self.assoc_id)
        try:
            self._session = self._server.provider.associate(info)
        except Rejected as exc:
            return exc.reason, exc.result, exc.source, exc.diagnostic
        except Exception:
            provider_error(self.assoc_id, "provider.associate()")
            return "provider error", 2, 1, 1
        return None

    # ---- DIMSE loop

    def _serve(self) -> None:
        while True:
            while self._ready:
                item = self._ready.popleft()
                if item is _RELEASE:
                    self._send(RELEASE_RP)
                    return
                self._dispatch(item)
            self._read_pdu()

    def _read_pdu(self) -> None:
        reader, server = self._reader, self._server
        if not reader.buffered():
            reader.wait()  # between PDUs: the idle timeout applies
        started = time.monotonic()
        reader.deadline = started + server.pdu_timeout
        pdu_type, length = reader.header(PDU_HEADER)
        if server.min_rate:
            reader.deadline = started + server.pdu_timeout + length / server.min_rate
        try:
            self._read_pdu_body(pdu_type, length)
        finally:
            reader.deadline = None

    def _read_pdu_body(self, pdu_type: int, length: int) -> None:
        if pdu_type == 0x04:
            if length > self._server.pdata_limit:
                raise ProtocolError(f"P-DATA-TF of {length} bytes", ProtocolError.INVALID_PARAM)
            self._read_pdata(length)
        elif pdu_type == 0x05:
            self._expect_length(length, 4)
            self._reader.read_exact(4)
            if self._msg_context is not None:
                raise ProtocolError("A-RELEASE-RQ in the middle of a message", ProtocolError.UNEXPECTED_PDU)
            self._ready.append(_RELEASE)
        elif pdu_type == 0x07:
            self._expect_length(length, 4)
            body = self._reader.read_exact(4)
            raise _PeerAborted(body[2], body[3])
        elif pdu_type in (0x01, 0x02, 0x03, 0x06):
            raise ProtocolError(f"unexpected PDU type 0x{pdu_type:02x}", ProtocolError.UNEXPECTED_PDU)
        else:
            raise ProtocolError(f"unrecognised PDU type 0x{pdu_type:02x}", ProtocolError.UNRECOGNISED_PDU)

    @staticmethod
    def _expect_length(length: int, expected: int) -> None:
        if length != expected:
            raise ProtocolError(f"PDU length {length}, expected {expected}", ProtocolError.INVALID_PARAM)

    def _read_pdata(self, remaining: int) -> None:
        if remaining < 6:
            raise ProtocolError("P-DATA-TF without a PDV", ProtocolError.INVALID_PARAM)
        while remaining:
            if remaining < 6:
                raise ProtocolError("PDV header overruns P-DATA-TF", ProtocolError.INVALID_PARAM)
            item_length, context_id, control = self._reader.header(PDV_HEADER)
            if item_length < 2 or item_length + 4 > remaining:
                raise ProtocolError("PDV length inconsistent with PDU", ProtocolError.INVALID_PARAM)
            remaining -= item_length + 4
            self._read_pdv(context_id, control, item_length - 2)

    def _read_pdv(self, context_id: int, control: int, n: int) -> None:
        context = self._contexts.get(context_id)
        if context is None:
            raise ProtocolError(f"PDV for unaccepted presentation context {context_id}",
                                 ProtocolError.INVALID_PARAM)
        if self._msg_context is not None and context_id != self._msg_context:
            raise ProtocolError("PDVs of two messages interleaved", ProtocolError.UNEXPECTED_PARAM)
        last = control & 0x02
        if control & 0x01:
            self._read_command_fragment(context, n, last)
        else:
            self._read_data_fragment(context, n, last)

    def _read_command_fragment(self, context: AcceptedContext, n: int, last: int) -> None:
        if self._command is not None:
            raise ProtocolError("command fragment while a data set was expected",
                                 ProtocolError.UNEXPECTED_PARAM)
        if len(self._command_bytes) + n > _MAX_COMMAND_BYTES:
            raise ProtocolError("command set too large", ProtocolError.INVALID_PARAM)
        self._msg_context = context.context_id
        self._reader.copy_to(self._command_bytes.extend, n)
        if not last:
            return
        command = Command(self._command_bytes)
        self._command_bytes = bytearray()
        if command.has_dataset:
            self._command = command
            self._sink = _DatasetSink(self._server.spool_threshold, self._server.spool_dir)
        else:
            self._msg_context = None
            self._ready.append(_Message(context, command, None))

    def _read_data_fragment(self, context: AcceptedContext, n: int, last: int) -> None:
        if self._command is None or self._sink is None:
            raise ProtocolError("data fragment without a preceding command", ProtocolError.UNEXPECTED_PARAM)
        self._reader.copy_to(self._sink.write, n)
        if last:
            self._ready.append(_Message(context, self._command, self._sink))
            self._command, self._sink, self._msg_context = None, None, None

    # ---- DIMSE services

    def _dispatch(self, msg: _Message) -> None:
        try:
            field_ = msg.command.field
            if field_ == C_STORE_RQ:
                self._c_store(msg)
            elif field_ == C_ECHO_RQ:
                self._respond(msg, 0x8030, Status.SUCCESS, sop_class=VERIFICATION)
            elif field_ == C_FIND_RQ:
                self._c_find(msg)
            elif field_ == C_CANCEL_RQ:
                pass  # nothing outstanding to cancel; PS3.7 9.3.2.3: no response
            elif field_ == N_ACTION_RQ:
                self._n_action(msg)
            elif field_ == N_EVENT_REPORT_RSP:
                self._event_report_answered(msg)
            elif field_ & 0x8000:
                log.warning("association %s: ignoring unsolicited DIMSE response 0x%04x",
                            self.assoc_id, field_)
            else:
                log.warning("association %s: unrecognised DIMSE command 0x%04x", self.assoc_id, field_)
                self._respond(msg, field_ | 0x8000, Status.UNRECOGNISED_OPERATION, sop_class=msg.command.sop_class)
        finally:
            if msg.data is not None:
                msg.data.discard()

    def _respond(self, msg: _Message, field_: int, status: int, *, sop_class: str = "",
                 sop_instance: str = "", error_comment: str = "") -> None:
        cmd = build_response(field_, msg.command.message_id, status, sop_class=sop_class,
                             sop_instance=sop_instance, error_comment=error_comment)
        self._send(pdata_pdus(msg.context.context_id, cmd, command=True, peer_max=self._peer_max))

    def _c_store(self, msg: _Message) -> None:
        cmd, ctx = msg.command, msg.context
        if ctx.service != STORE:
            answer = StoreResponse(Status.UNRECOGNISED_OPERATION, "C-STORE not offered on this presentation context")
        elif cmd.sop_class != ctx.abstract_syntax:
            answer = StoreResponse(Status.DATA_SET_DOES_NOT_MATCH_SOP_CLASS,
                                   "SOP Class differs from presentation context")
        elif msg.data is None:
            answer = StoreResponse(Status.CANNOT_DECODE_DATA_SET, "C-STORE-RQ without data set")
        elif msg.data.failed:
            answer = StoreResponse(Status.OUT_OF_RESOURCES, "the receiver could not spool the data set")
        else:
            started = time.monotonic()
            answer = self._call_store(msg, msg.data)
            self._server.observer.stored(answer.status, time.monotonic() - started, msg.data.size)
        status, comment = answer.status, answer.error_comment
        if category(status) in (Category.SUCCESS, Category.WARNING):
            self._stats["store"] += 1
        else:
            self._stats["store_failed"] += 1
            log.warning("association %s: C-STORE msg %d sop_class=%s -> status 0x%04x%s", self.assoc_id,
                        cmd.message_id, cmd.sop_class, status, f" ({comment})" if comment else "")
        self._respond(msg, 0x8001, status, sop_class=cmd.sop_class or ctx.abstract_syntax,
                      sop_instance=cmd.sop_instance,
                      error_comment=comment if category(status) != Category.SUCCESS else "")

    def _call_store(self, msg: _Message, sink: _DatasetSink) -> StoreResponse:
        cmd = msg.command
        req = StoreRequest(cmd.sop_class, cmd.sop_instance, msg.context.transfer_syntax,
                           cmd.message_id, cmd.move_originator_ae)
        assert self._session is not None
        try:
            answer = self._session.store(req, sink.payload())
        except ServiceFailure as failure:
            return _answer_of(failure, Status.STORE_HANDLER_FAILED)
        except Exception:
            provider_error(self.assoc_id, f"store() of message {cmd.message_id}")
            return StoreResponse(Status.STORE_HANDLER_FAILED)
        if not isinstance(answer, StoreResponse):
            answer = StoreResponse(answer)  # a bare status, checked next
        status = answer.status
        if isinstance(status, bool) or not isinstance(status, int) or not 0 <= status <= 0xFFFF \
                or not isinstance(answer.error_comment, str):
            log.error("association %s: store() returned %r, not a status", self.assoc_id, type(status))
            return StoreResponse(Status.STORE_HANDLER_FAILED)
        return answer

    # ---- C-FIND

    def _c_find(self, msg: _Message) -> None:
        cmd, ctx = msg.command, msg.context
        if ctx.service != FIND:
            self._find_final(msg, Status.UNRECOGNISED_OPERATION, "C-FIND not offered on this presentation context")
            return
        if cmd.sop_class != ctx.abstract_syntax:
            self._find_final(msg, Status.DATA_SET_DOES_NOT_MATCH_SOP_CLASS,
                             "SOP Class differs from presentation context")
            return
        implicit, little = UNCOMPRESSED[ctx.transfer_syntax]
        try:
            if msg.data is None:
                raise ValueError("no identifier")
            identifier = decode_dataset(msg.data.payload(), implicit, little)
        except Exception as exc:
            log.warning("association %s: undecodable C-FIND identifier (%s)", self.assoc_id,
                        type(exc).__name__)
            self._find_final(msg, Status.CANNOT_DECODE_IDENTIFIER, "Identifier could not be decoded")
            return
        self._stats["find"] += 1
        assert self._session is not None
        matches: Iterator[Dataset] | None = None
        try:
            try:
                matches = iter(self._session.find(cmd.sop_class, identifier))
            except ServiceFailure as failure:
                raise _FindFailed.of(failure) from None
            except Exception:
                provider_error(self.assoc_id, "find()")
                raise _FindFailed(Status.FIND_HANDLER_FAILED) from None
            status = self._stream_matches(msg, matches, implicit, little)
        except _FindFailed as failure:
            status, comment = failure.status, failure.comment
        else:
            comment = ""
        finally:
            close = getattr(matches, "close", None)
            if close is not None:
                try:
                    close()
                except Exception:
                    provider_error(self.assoc_id, "closing the find() iterator")
        self._find_final(msg, status, comment)

    def _stream_matches(self, msg: _Message, matches: Iterator[Dataset],
                        implicit: bool, little: bool) -> int:
        while True:
            try:
                match = next(matches)
            except StopIteration:
                return Status.SUCCESS
            except ServiceFailure as failure:
                raise _FindFailed.of(failure) from None
            except Exception:
                provider_error(self.assoc_id, "find()")
                raise _FindFailed(Status.FIND_HANDLER_FAILED) from None
            if self._cancel_requested(msg.command.message_id):
                return Status.CANCEL
            try:
                encoded = encode_dataset(match, implicit, little)
            except Exception as exc:
                log.warning("association %s: cannot encode C-FIND match (%s)", self.assoc_id,
                            type(exc).__name__)
                raise _FindFailed(Status.CANNOT_ENCODE_MATCH) from None
            cmd = build_response(0x8020, msg.command.message_id, Status.PENDING,
                                 sop_class=msg.command.sop_class, has_dataset=True)
            cid = msg.context.context_id
            self._send(pdata_pdus(cid, cmd, command=True, peer_max=self._peer_max)
                       + pdata_pdus(cid, encoded, command=False, peer_max=self._peer_max))

    def _find_final(self, msg: _Message, status: int, comment: str = "") -> None:
        if category(status) not in (Category.SUCCESS, Category.CANCEL):
            log.warning("association %s: C-FIND msg %d -> status 0x%04x", self.assoc_id,
                        msg.command.message_id, status)
        self._respond(msg, 0x8020, status, sop_class=msg.command.sop_class or msg.context.abstract_syntax,
                      error_comment=comment)
        self._server.observer.queried(msg.context.abstract_syntax, status)

    def _cancel_requested(self, message_id: int) -> bool:
        """Read whatever the peer has sent meanwhile; consume a matching C-CANCEL."""
        while self._reader.buffered() or _readable(self._sock):
            self._read_pdu()
        for item in list(self._ready):
            if (isinstance(item, _Message) and item.command.field == C_CANCEL_RQ
                    and item.command.responded_to == message_id):
                self._ready.remove(item)
                return True
        return False

    # ---- Storage Commitment Push Model (PS3.4 J.3): N-ACTION in, N-EVENT-REPORT out

    def _n_action(self, msg: _Message) -> None:
        cmd, ctx = msg.command, msg.context
        action_type = cmd.us(0x1008)
        result: CommitmentResult | None = None
        if ctx.service != COMMIT:
            status: int = Status.UNRECOGNISED_OPERATION
        elif cmd.uid(0x0003) != STORAGE_COMMITMENT_PUSH:  # Requested SOP Class UID
            status = Status.NO_SUCH_SOP_CLASS
        elif cmd.uid(0x1001) != STORAGE_COMMITMENT_INSTANCE:  # Requested SOP Instance UID: the well-known one
            status = Status.NO_SUCH_OBJECT_INSTANCE
        elif action_type != ACTION_REQUEST_COMMIT:
            status = Status.NO_SUCH_ACTION
        else:
            status, result = self._call_commit(msg)
        if status != Status.SUCCESS:
            log.warning("association %s: N-ACTION msg %d -> status 0x%04x", self.assoc_id, cmd.message_id, status)
        self._send(pdata_pdus(ctx.context_id, action_rsp(cmd.message_id, status, action_type=(
            action_type if status == Status.SUCCESS else None)), command=True, peer_max=self._peer_max))
        if result is not None:
            self._send_event_report(ctx, result)

    def _call_commit(self, msg: _Message) -> tuple[int, CommitmentResult | None]:
        implicit, little = UNCOMPRESSED[msg.context.transfer_syntax]
        try:
            if msg.data is None:
                raise ValueError("no Action Information")
            request = parse_action(decode_dataset(msg.data.payload(), implicit, little))
        except Exception as exc:
            log.warning("association %s: unusable Storage Commitment request (%s)", self.assoc_id,
                        type(exc).__name__)
            return Status.MISSING_ATTRIBUTE, None
        assert self._session is not None
        try:
            return Status.SUCCESS, self._session.commit(request)
        except ServiceFailure as failure:
            return _answer_of(failure, Status.PROCESSING_FAILURE).status, None
        except Exception:
            provider_error(self.assoc_id, "commit()")
            return Status.PROCESSING_FAILURE, None

    def _send_event_report(self, ctx: AcceptedContext, result: CommitmentResult) -> None:
        # A peer that already asked to release would ignore the report (and may have closed its end):
        # it is then the session's to send on a new association.
        while self._reader.buffered() or _readable(self._sock):
            self._read_pdu()
        if _RELEASE in self._ready:
            log.info("association %s: release asked before the commitment result; it goes on a new association",
                     self.assoc_id)
            return
        self._next_id = self._next_id % 0xFFFF + 1
        implicit, little = UNCOMPRESSED[ctx.transfer_syntax]
        self._reports[self._next_id] = result.transaction_uid
        self._send(pdata_pdus(ctx.context_id, event_report_rq(self._next_id, result.event_type), command=True,
                              peer_max=self._peer_max)
                   + pdata_pdus(ctx.context_id, encode_dataset(report_dataset(result), implicit, little),
                                command=False, peer_max=self._peer_max))

    def _event_report_answered(self, msg: _Message) -> None:
        transaction = self._reports.pop(msg.command.responded_to, None)
        if transaction is None:
            log.warning("association %s: N-EVENT-REPORT-RSP to no report of ours", self.assoc_id)
            return
        assert self._session is not None
        try:
            self._session.commit_reported(transaction, msg.command.us(0x0900))
        except Exception:
            provider_error(self.assoc_id, "commit_reported()")


class _FindFailed(Exception):
    def __init__(self, status: int, comment: str = "") -> None:
        super().__init__(f"0x{status:04x}")
        self.status = status
        self.comment = comment

    @classmethod
    def of(cls, failure: ServiceFailure) -> _FindFailed:
        answer = _answer_of(failure, Status.FIND_HANDLER_FAILED)
        return cls(answer.status, answer.error_comment)


def _answer_of(failure: ServiceFailure, fallback: Status) -> StoreResponse:
    """The provider's failure status and comment, or `fallback` when they are not a failure's."""
    status = failure.status
    if isinstance(status, int) and not isinstance(status, bool) and 0 <= status <= 0xFFFF \
            and category(status) == Category.FAILURE and isinstance(failure.comment, str):
        return StoreResponse(status, failure.comment)
    log.error("ServiceFailure with %r, not a failure status", status)
    return StoreResponse(fallback)


def provider_error(assoc_id: str, what: str) -> None:
    """Log a provider exception without its message, which may quote patient data."""
    exc = sys.exc_info()[1]
    log.warning("association %s: %s raised %s", assoc_id, what, type(exc).__name__)
    log.debug("association %s: %s traceback", assoc_id, what, exc_info=True)


def _readable(sock: socket.socket) -> bool:
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    return bool(poller.poll(0))
