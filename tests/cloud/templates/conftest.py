"""The staff world of tests/cloud/staff (union u1 holds h1 and h2, h3 is in none), with readers added.

h1 is the reading centre: `rad1` radiologist, `rev1` reviewer, `h1admin` admin there; `u1admin` admin of
union u1; `rad2` radiologist at h2 (the same union, another centre); `rev3` reviewer at h3; `reader`
clinician at h2; `op` operator. Every password is `PASSWORD`.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from ..staff.conftest import PASSWORD, add_users, staff_world

__all__ = ["PASSWORD", "staff_world"]


def ok(r: httpx.Response) -> object:
    body = r.json()
    assert r.status_code == 200 and body["code"] == 0, body
    return body.get("data")


def code(r: httpx.Response) -> int:
    body = r.json()
    assert r.status_code == 200, r.text
    return int(body["code"])


@pytest.fixture
def world(staff_world):
    add_users(staff_world.runtime, [
        ("rad1", "放射一", ["radiologist:hospital:h1"]), ("rev1", "审核一", ["reviewer:hospital:h1"]),
        ("rad2", "放射二", ["radiologist:hospital:h2"]), ("rev3", "审核三", ["reviewer:hospital:h3"])])
    return staff_world


@pytest.fixture
def as_user(world) -> Callable[[str], httpx.Client]:
    clients: dict[str, httpx.Client] = {}

    def signed_in(username: str) -> httpx.Client:
        if username not in clients:
            clients[username] = world.sign_in(username)[0]
        return clients[username]

    return signed_in
