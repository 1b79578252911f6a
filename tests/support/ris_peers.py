"""The hospital's side of report delivery, for real: a RIS that takes reports over HTTP (checking the vendor's
signature) and an HL7 engine that takes ORU^R01 over MLLP and ACKs it."""

from __future__ import annotations

import json
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from yingyun.contract import signing
from yingyun.contract.envelope import ContractError

from .net import free_port


@dataclass
class Got:
    event_id: str
    body: dict
    at: float


@dataclass
class RisReceiver:
    """POST /ris/report: verifies the signature under (app_id, token), records what it accepted; `mode` ok |
    http500 | code1 (the vendor's envelope with a failure code). Down until `up()`."""

    app_id: str
    token: str
    port: int = field(default_factory=free_port)
    mode: str = "ok"
    accepted: list[Got] = field(default_factory=list)
    attempts: list[str] = field(default_factory=list)
    bad_signatures: list[str] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/ris/report"

    def up(self) -> RisReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_POST(self):  # noqa: N802
                raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                try:
                    signing.verify(app_id=self.headers.get("appId") or "", timestamp=self.headers.get("timestamp"),
                                   signature=self.headers.get("signature"), tokens=[receiver.token])
                    if self.headers.get("appId") != receiver.app_id:
                        raise ContractError(90001, "wrong appId")
                except ContractError as e:
                    with receiver._lock:
                        receiver.bad_signatures.append(str(e))
                    return self._answer(200, {"code": 90002, "message": "bad signature"})
                event_id = self.headers.get("eventId") or ""
                with receiver._lock:
                    receiver.attempts.append(event_id)
                    mode = receiver.mode
                if mode == "http500":
                    return self._answer(500, {"error": "down for maintenance"})
                if mode == "code1":
                    return self._answer(200, {"code": 1, "message": "RIS busy"})
                with receiver._lock:
                    receiver.accepted.append(Got(event_id, json.loads(raw), time.time()))
                self._answer(200, {"code": 0, "message": "成功"})

            def _answer(self, status: int, data: dict) -> None:
                out = json.dumps(data).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def down(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None


START, END = b"\x0b", b"\x1c\x0d"


@dataclass
class MllpReceiver:
    """An HL7 engine: reads MLLP frames, records each message, answers an ACK with `code` (AA, AE, AR)."""

    port: int = field(default_factory=free_port)
    code: str = "AA"
    messages: list[bytes] = field(default_factory=list)
    _sock: socket.socket | None = None
    _thread: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def up(self) -> MllpReceiver:
        self._sock = socket.create_server(("127.0.0.1", self.port))
        self._sock.settimeout(0.2)
        self._running = True
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()
        return self

    def down(self) -> None:
        self._running = False
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def accepted(self) -> list[bytes]:
        with self._lock:
            return list(self.messages)

    def _serve(self) -> None:
        assert self._sock is not None
        while self._running:
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(5)
                data = b""
                while END not in data:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                if END not in data:
                    continue
                message = data[data.index(START) + 1:data.index(END)]
                fields = message.split(b"\r")[0].split(b"|")
                control_id = fields[9].decode()
                with self._lock:
                    code = self.code
                    if code == "AA":
                        self.messages.append(message)
                ack = (f"MSH|^~\\&|RIS|HOSP|YINGYUN||20260101000000||ACK^R01^ACK|A{control_id}|P|2.5.1\r"
                       f"MSA|{code}|{control_id}|{'ok' if code == 'AA' else 'not now'}\r").encode()
                conn.sendall(START + ack + END)
