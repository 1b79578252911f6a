"""A small world for the internet-hospital API, and a real partner receiver.

Hospitals: h1 and h2 in union u1, h3 in union u2. RIS partners send each
hospital's records; internet-hospital partners:

* `ih`  — granted union u1 and hospital h3 (so h1, h2, h3), with a callback
  URL (the receiver below) and mini-program settings;
* `ih2` — granted h1 only, no callbacks.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from yingyun.cloud.callbacks.config import DeliveryConfig
from yingyun.cloud.hospital_api import HospitalApiConfig
from yingyun.serve import callback_dispatcher, hospital_api_context
from yingyun.contract import signing
from yingyun.contract.codes import Code
from yingyun.contract.envelope import ContractError
from yingyun.contract.identity import decrypt_field, encrypt_field
from yingyun.settings import Settings

from ...support.net import free_port
from ...support.partners import PartnerClient
from ...support.servers import ServerThread

IH_TOKEN = "ih-token-0123456789abcdefghijklm"
IH2_TOKEN = "ih2-token-0123456789abcdefghijkl"
assert len(IH_TOKEN) == 32 and len(IH2_TOKEN) == 32


class FakeClock:
    """Backoff and expiry without waiting: the tests move time forward."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


@dataclass
class Delivery:
    event_id: str
    body: dict
    identity: dict  # decrypted phoneNum / idNum
    at: float


@dataclass
class Receiver:
    """The partner's callback endpoint: verifies, decrypts, records; can fail, hang or go down."""

    app_id: str
    token: str
    port: int = field(default_factory=free_port)
    mode: str = "ok"  # ok | http500 | code1 | slow
    slow_s: float = 3.0
    received: list[Delivery] = field(default_factory=list)
    attempts: list[str] = field(default_factory=list)  # eventIds of every attempt, failed ones too
    rejected: list[str] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/callback"

    def up(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_POST(self):  # noqa: N802
                length = int(self.headers.get("Content-Length", "0"))
                raw = self.rfile.read(length)
                try:
                    signing.verify(app_id=self.headers.get("appId") or "", timestamp=self.headers.get("timestamp"),
                                   signature=self.headers.get("signature"), tokens=[receiver.token])
                    if self.headers.get("appId") != receiver.app_id:
                        raise ContractError(Code.INVALID_TOKEN, "wrong appId")
                except ContractError as e:
                    with receiver._lock:
                        receiver.rejected.append(str(e))
                    return self._answer(200, {"code": 90002, "message": "bad signature"})
                event_id = self.headers.get("eventId") or ""
                body = json.loads(raw)
                with receiver._lock:
                    receiver.attempts.append(event_id)
                    mode = receiver.mode
                if mode == "http500":
                    return self._answer(500, {"error": "down for maintenance"})
                if mode == "code1":
                    return self._answer(200, {"code": 1, "message": "partner busy"})
                if mode == "slow":
                    time.sleep(receiver.slow_s)
                identity = {k: decrypt_field(body[k], receiver.token) if body.get(k) else ""
                            for k in ("phoneNum", "idNum")}
                with receiver._lock:
                    receiver.received.append(Delivery(event_id, body, identity, time.time()))
                self._answer(200, {"code": 0, "message": "ok"})

            def _answer(self, status: int, data: dict) -> None:
                out = json.dumps(data).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(out)))
                    self.end_headers()
                    self.wfile.write(out)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self._server = server
        return self

    def down(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def statuses(self) -> list[tuple[str, int]]:
        with self._lock:
            return [(d.body["studyId"], d.body["status"]) for d in self.received]


@pytest.fixture
def port() -> int:
    return free_port()


@pytest.fixture
def settings(tmp_path, database_url, port) -> Settings:
    # The public URL is the test server's own address, so the links handed out open as they are.
    return Settings(data_dir=tmp_path / "data", database_url=database_url, public_url=f"http://127.0.0.1:{port}")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def receiver():
    r = Receiver("ih", IH_TOKEN).up()
    yield r
    r.down()


@pytest.fixture
def hapi_config() -> HospitalApiConfig:
    return HospitalApiConfig(rate_per_minute=0, max_experts=3,
                             delivery=DeliveryConfig(timeout_s=1.0, per_partner=4, workers=8, retry_base_s=30.0,
                                                     retry_max_s=3600.0, horizon_s=24 * 3600.0, poll_s=0.02))


@pytest.fixture
def hctx(runtime, clock, hapi_config):
    return hospital_api_context(runtime, config=hapi_config, clock=clock)


@pytest.fixture
def dispatcher(hctx):
    d = callback_dispatcher(hctx)
    yield d
    d.stop()


@pytest.fixture
def world(runtime, receiver):
    t = runtime.tenancy
    t.add_union(union_id="u1", name="城东医联体")
    t.add_union(union_id="u2", name="城西医联体")
    t.add_hospital(hospital_id="h1", name="第一医院", union_id="u1")
    t.add_hospital(hospital_id="h2", name="第二医院", union_id="u1")
    t.add_hospital(hospital_id="h3", name="第三医院", union_id="u2")
    ris = {}
    for h in ("h1", "h2", "h3"):
        _, token = t.add_partner(app_id=f"ris-{h}", hospitals=[h])
        ris[h] = token
    t.add_partner(app_id="ih", token=IH_TOKEN, unions=["u1"], hospitals=["h3"], callback_url=receiver.url,
                  mini_app_id="wx-mini-1", mini_path="pages/study?rid={reportId}&sid={studyId}&h={hospitalId}")
    t.add_partner(app_id="ih2", token=IH2_TOKEN, hospitals=["h1"])
    return {"ris_tokens": ris}


@pytest.fixture
def server(runtime, hctx, port, world):
    from yingyun.serve import create_app

    s = ServerThread(create_app(runtime, hospital=hctx), port=port).start()
    yield s
    s.stop()


@pytest.fixture
def ris(server, world):
    clients = {h: PartnerClient(server.url, f"ris-{h}", tok) for h, tok in world["ris_tokens"].items()}
    yield clients
    for c in clients.values():
        c.close()


@pytest.fixture
def ih(server):
    c = PartnerClient(server.url, "ih", IH_TOKEN)
    yield c
    c.close()


@pytest.fixture
def ih2(server):
    c = PartnerClient(server.url, "ih2", IH2_TOKEN)
    yield c
    c.close()


def enc(value: str, token: str = IH_TOKEN) -> str:
    return encrypt_field(value, token)


ID_P = "11010519491231002X"  # the caller's patient
PHONE_P = "13800138000"
ID_Q = "110105195001010011"  # someone else
PHONE_Q = "13900139000"


def study(study_id: str, *, id_card: str | None = ID_P, phone: str | None = PHONE_P, name: str = "张三丰",
          modality: str = "CT", date: str = "2026-11-20 09:30:00", **extra) -> dict:
    body = {"patientId": "P-" + study_id, "patientName": name, "patientSex": "M", "studyId": study_id,
            "accessNumber": "A-" + study_id, "modality": modality, "studyDate": date, "studyDesc": "胸部CT平扫",
            "bodyPart": "胸部", "applyDoctor": "李医生", "applyDoctorId": "D01", "applyDept": "呼吸内科",
            "applyDeptId": "K01", "hisNum": "HIS-" + study_id}
    if id_card is not None:
        body["idCardNum"] = id_card
    if phone is not None:
        body["phoneNum"] = phone
    body.update(extra)
    return body


def report(study_id: str, number: str | None = None) -> dict:
    return {"reportNumber": number or "R-" + study_id, "studyId": study_id, "accessNumber": "A-" + study_id,
            "imageDescription": "双肺纹理清晰", "conclusion": "未见明显异常", "reportDoctor": "王医生"}


def query(**over) -> dict:
    body = {"phoneNum": enc(PHONE_P), "idNum": enc(ID_P), "hospitalId": "h1", "unionId": "u1", "studyType": 0,
            "dataFlag": 0, "usage": 0, "studyDateBegin": "2026-01-01 00:00:00", "studyDateEnd": "2026-12-31 23:59:59"}
    body.update(over)
    return {k: v for k, v in body.items() if v is not None}


def ok(answer: dict):
    assert answer["code"] == 0, answer
    return answer.get("data")


@dataclass
class CliResult:
    returncode: int
    stdout: str
    stderr: str


def cli(settings, *args: str, check: bool = True) -> CliResult:
    """`yingyun admin ...` run in-process (the same Typer app; tests/test_cli.py covers the console script)."""
    from typer.testing import CliRunner

    from yingyun.cli.main import app

    result = CliRunner().invoke(app, ["admin", *args, "--data-dir", str(settings.data_dir), "--database-url",
                                      settings.database_url])
    out = CliResult(result.exit_code, result.stdout, result.stderr)
    if check:
        assert result.exit_code == 0, (out, result.exception)
    return out
