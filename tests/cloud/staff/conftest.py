"""A small world of staff users over a real server (uvicorn on loopback), on SQLite and PostgreSQL.

Union u1 holds hospitals h1 and h2; h3 is in no union. Users (password
`PASSWORD` each): `op` operator, `u1admin` admin of union u1, `h1admin`
admin of hospital h1, `reader` clinician at h2 (phone `READER_PHONE`). The staff clock is the
test's (`world.clock.advance`), so expiry needs no waiting.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import httpx
import pytest

from yingyun.cloud.staff import accounts
from yingyun.cloud.staff.edge import CSRF_HEADER
from yingyun.core.sms import FakeSender

from ...support.servers import ServerThread
from ..hospital_api.conftest import FakeClock

PASSWORD = "correct horse battery"
READER_PHONE = "13900139000"


@dataclass
class World:
    url: str
    clock: FakeClock
    app: object
    runtime: object
    clients: list[httpx.Client] = field(default_factory=list)

    def client(self) -> httpx.Client:
        """A new client (a browser of its own), closed when the test ends."""
        c = httpx.Client(base_url=self.url, timeout=30)
        self.clients.append(c)
        return c

    def sign_in(self, username: str, password: str = PASSWORD, **extra: str) -> tuple[httpx.Client, dict]:
        """A client signed in as `username`, sending the session's CSRF token on every request."""
        c = self.client()
        body = c.post("/api/v1/session", json={"username": username, "password": password, **extra}).json()
        assert body["code"] == 0, body
        c.headers[CSRF_HEADER] = body["data"]["csrfToken"]
        return c, body


def add_users(runtime, users: list[tuple[str, str, list[str]]]) -> None:
    with runtime.db.write() as conn:
        for username, name, roles in users:
            accounts.add_user(conn, vault=runtime.vault, username=username, name=name,
                              roles=[accounts.parse_role(r) for r in roles], password=PASSWORD,
                              phone=READER_PHONE if username == "reader" else None)


@pytest.fixture
def staff_world(runtime, request):
    from yingyun.serve import create_app

    t = runtime.tenancy
    t.add_union(union_id="u1", name="联盟一")
    t.add_hospital(hospital_id="h1", name="第一医院", union_id="u1")
    t.add_hospital(hospital_id="h2", name="第二医院", union_id="u1")
    t.add_hospital(hospital_id="h3", name="第三医院")
    add_users(runtime, [("op", "运维", ["operator"]), ("u1admin", "联盟管理员", ["admin:union:u1"]),
                        ("h1admin", "一院管理员", ["admin:hospital:h1"]),
                        ("reader", "临床", ["clinician:hospital:h2"])])
    app = create_app(runtime)
    clock = FakeClock()
    app.state.staff.clock = app.state.staff.codes.clock = clock
    app.state.staff.codes.sms = FakeSender()  # the one fake: no SMS carrier runs here
    server = ServerThread(app).start()
    world = World(server.url, clock, app, runtime)
    yield world
    for c in world.clients:
        c.close()
    server.stop()
