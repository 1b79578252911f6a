"""The staff world of tests/cloud/staff (a server on loopback; users op, u1admin, h1admin, reader), reused."""

from __future__ import annotations

from ..staff.conftest import PASSWORD, staff_world

__all__ = ["PASSWORD", "staff_world"]
