"""HTTP connections with bounds, over real sockets (issue 12 item 5): header sizes, stalls, idle keep-alive."""

from __future__ import annotations

import functools
import socket
import threading
import time
from pathlib import Path

import httpx
import orjson
import pytest

from yingyun.contract.signing import signed_headers
from yingyun.runtime import Runtime
from yingyun.serve import create_app
from yingyun.settings import Settings
from yingyun.storage.db import default_sqlite_url
from yingyun.web.protocol import BoundedHttpProtocol, HttpLimits

from ..support.servers import ServeProcess, ServerThread

# Short deadlines, so that a stall shows within a test; the sizes are the defaults.
LIMITS = HttpLimits(header_timeout_s=1.0, body_timeout_s=1.0, max_idle=4)
WAIT = 10.0  # a generous bound on "within the timeout"


@pytest.fixture
def database_url(tmp_path):
    return default_sqlite_url(tmp_path / "data")


@pytest.fixture
def server(runtime, tenant):
    s = ServerThread(create_app(runtime), http=functools.partial(BoundedHttpProtocol, limits=LIMITS)).start()
    yield s
    s.stop()


def connect(server) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=WAIT)
    return sock


def answer(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (or WAIT passes)."""
    out = b""
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except (ConnectionResetError, TimeoutError):
            break
        if not chunk:
            break
        out += chunk
    return out


def send_all(sock: socket.socket, data: bytes) -> bool:
    """Send `data`; False when the server closed the connection first."""
    try:
        sock.sendall(data)
        return True
    except (BrokenPipeError, ConnectionResetError):
        return False


def status(raw: bytes) -> int:
    return int(raw.split(b" ", 2)[1]) if raw.startswith(b"HTTP/1.1 ") else 0


def test_one_over_long_header_line_is_431(server):
    with connect(server) as sock:
        send_all(sock, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Long: " + b"a" * (20 * 1024) + b"\r\n\r\n")
        raw = answer(sock)
    assert status(raw) == 431 and b"connection: close" in raw.lower() and b"header line exceeds 16 KiB" in raw


def test_headers_over_64_kib_in_all_are_431(server):
    lines = b"".join(b"X-H%d: %s\r\n" % (i, b"b" * 8000) for i in range(10))  # each line is fine, not their sum
    with connect(server) as sock:
        send_all(sock, b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + lines + b"\r\n")
        raw = answer(sock)
    assert status(raw) == 431 and b"headers exceed 64 KiB" in raw


def test_an_unfinished_header_is_cut_at_the_limit_not_buffered(server):
    with connect(server) as sock:
        sent = 0
        chunk = b"c" * 65536
        ok = send_all(sock, b"GET /healthz HTTP/1.1\r\nX-Big: ")
        while ok and sent < 32 * 2**20:  # never finished; the server must stop it long before 32 MiB
            ok = send_all(sock, chunk)
            sent += len(chunk)
        raw = answer(sock)
    assert not ok and sent < 4 * 2**20
    assert status(raw) == 431 or raw == b""  # the answer may be lost in the reset of a peer still sending


def test_over_long_request_line_is_414(server):
    with connect(server) as sock:
        send_all(sock, b"GET /" + b"p" * (17 * 1024) + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        assert status(answer(sock)) == 414


def test_headers_at_the_limits_are_served(server):
    lines = b"".join(b"X-H%d: %s\r\n" % (i, b"b" * 8000) for i in range(6))
    with connect(server) as sock:
        send_all(sock, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-One: " + b"a" * 16000 + b"\r\n"
                 + lines + b"\r\n")
        assert status(answer(sock)) == 200


def test_stalled_headers_are_408_within_the_timeout(server):
    with connect(server) as sock:
        start = time.monotonic()
        send_all(sock, b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        raw = answer(sock)
        assert status(raw) == 408 and time.monotonic() - start < WAIT


def test_a_slowloris_trickle_does_not_extend_the_header_deadline(server):
    with connect(server) as sock:
        start = time.monotonic()
        send_all(sock, b"GET /healthz HTTP/1.1\r\n")
        closed = False
        while time.monotonic() - start < WAIT and not closed:
            time.sleep(0.2)
            closed = not send_all(sock, b"X")  # one byte at a time, each within any per-read timeout
            sock.settimeout(0.01)
            try:
                sock.recv(65536)  # the 408, or the close
                closed = True
            except TimeoutError:
                pass
            except ConnectionResetError:
                closed = True
            sock.settimeout(WAIT)
        assert closed and time.monotonic() - start < WAIT


def test_a_connection_that_sends_nothing_is_closed(server):
    with connect(server) as sock:
        start = time.monotonic()
        assert answer(sock) == b"" and time.monotonic() - start < WAIT


def ris_request(tenant, body: bytes, length: int | None = None) -> bytes:
    headers = signed_headers(tenant["app_id"], tenant["token"])
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    return (f"POST /ris/study/add HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n{head}"
            f"Content-Length: {len(body) if length is None else length}\r\n\r\n").encode() + body


STUDY = orjson.dumps({"patientId": "P", "patientName": "张三", "patientSex": "M", "studyId": "S1",
                      "accessNumber": "A1", "modality": "CT"})


def test_a_stalled_body_is_408_and_nothing_is_stored(server, tenant, runtime):
    with connect(server) as sock:
        start = time.monotonic()
        send_all(sock, ris_request(tenant, STUDY[:10], length=len(STUDY)))  # and the rest never comes
        raw = answer(sock)
        assert status(raw) == 408 and time.monotonic() - start < WAIT
    with runtime.db.read() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM studies").scalar() == 0


def test_a_slow_but_steady_body_is_received(server, tenant):
    whole = ris_request(tenant, STUDY)
    cut = whole.index(b"\r\n\r\n") + 4
    with connect(server) as sock:
        send_all(sock, whole[:cut])
        for i in range(cut, len(whole), 8):  # 8 bytes every 0.25 s: slower in all than the timeout, never silent
            time.sleep(0.25)
            send_all(sock, whole[i:i + 8])
        raw = answer_one(sock)
    assert status(raw) == 200 and raw.endswith(b'{"code":0,"message":"\xe6\x88\x90\xe5\x8a\x9f"}')


def answer_one(sock: socket.socket) -> bytes:
    """One answer with a Content-Length, on a connection kept alive."""
    def more() -> bytes:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionResetError("closed by the server")
        return chunk

    raw = b""
    while b"\r\n\r\n" not in raw:
        raw += more()
    head, _, body = raw.partition(b"\r\n\r\n")
    length = int(next(ln for ln in head.split(b"\r\n") if ln.lower().startswith(b"content-length:")).split(b":")[1])
    while len(body) < length:
        body += more()
    return head + b"\r\n\r\n" + body


def test_idle_keep_alive_connections_are_capped(server):
    socks = []
    try:
        for _ in range(10):  # one request each, then idle with keep-alive
            socks.append(connect(server))
            socks[-1].sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            assert status(answer_one(socks[-1])) == 200
        time.sleep(0.2)
        open_ = []
        for sock in socks:
            try:
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                open_.append(status(answer_one(sock)) == 200)
            except (BrokenPipeError, ConnectionResetError):
                open_.append(False)
        # the four most recently idle stayed; the six longest idle were closed
        assert open_ == [False] * 6 + [True] * 4
    finally:
        for sock in socks:
            sock.close()


def test_connections_that_never_send_count_as_idle(server):
    silent = [connect(server) for _ in range(5)]
    try:
        silent[0].settimeout(WAIT)
        start = time.monotonic()
        assert answer(silent[0]) == b"" and time.monotonic() - start < 0.9  # closed at once, not at the deadline
        with httpx.Client(base_url=server.url) as c:  # and the server still takes new clients
            assert c.get("/healthz").status_code == 200
    finally:
        for sock in silent:
            sock.close()


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_eight_unfinished_128_mb_headers_leave_the_server_small_and_serving(tmp_path):
    data = tmp_path / "data"
    Runtime.open(Settings(data_dir=data, database_url=default_sqlite_url(data)), create_keys=True,
                 migrate=True).close()
    with ServeProcess(data) as server:
        before = rss_mb(server.proc.pid)
        peak = before
        served: list[int] = []
        results: list[int] = []

        def flood() -> None:
            sock = socket.create_connection(("127.0.0.1", server.port), timeout=30)
            sent, chunk = 0, b"h" * 2**20
            give_up = time.monotonic() + 60  # a server that buffers it all still ends the test
            ok = send_all(sock, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ")
            while ok and sent < 128 * 2**20 and time.monotonic() < give_up:
                ok = send_all(sock, chunk)
                sent += len(chunk)
            sock.close()
            results.append(sent)

        floods = [threading.Thread(target=flood) for _ in range(8)]
        for t in floods:
            t.start()
        with httpx.Client(base_url=server.url, timeout=10) as other:
            while True:  # at least once, and as long as the floods last
                served.append(other.get("/healthz").status_code)
                peak = max(peak, rss_mb(server.proc.pid))
                if not any(t.is_alive() for t in floods):
                    break
                time.sleep(0.05)
        for t in floods:
            t.join()
        peak = max(peak, rss_mb(server.proc.pid))
        assert served and set(served) == {200}  # other clients were served meanwhile
        assert len(results) == 8 and all(sent < 8 * 2**20 for sent in results), results  # cut off early
        assert peak - before < 100, (before, peak)  # generous: each connection holds at most ~64 KiB + a read
        assert httpx.get(server.url + "/healthz").status_code == 200
