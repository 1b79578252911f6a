"""Roles and scopes (issue 14 item 1): what `Caller.require` lets through, and the code of each refusal."""

from __future__ import annotations

import pytest

from yingyun.cloud.staff.accounts import parse_role
from yingyun.cloud.staff.edge import Caller
from yingyun.contract.codes import Code
from yingyun.core.errors import Forbidden

HOSPITALS = {"h1": "u1", "h2": "u1", "h3": None}


def caller(*roles: str) -> Caller:
    return Caller(username="x", name="X", roles=tuple(parse_role(r) for r in roles), hospital_unions=HOSPITALS)


def refusal(c: Caller, role: str, **scope: str) -> int:
    with pytest.raises(Forbidden) as e:
        c.require(role, **scope)
    assert e.value.code is not None
    return int(e.value.code)


def test_an_operator_reaches_every_hospital_and_administers_but_signs_no_report() -> None:
    op = caller("operator")
    assert op.is_operator() and op.hospital_ids() is None and op.union_ids() is None
    op.require_admin(hospital_id="h3")
    op.require_admin(union_id="u1")
    op.require_operator()
    op.require("auditor", hospital_id="h1")
    assert refusal(op, "radiologist", hospital_id="h1") == Code.NO_PERMISSION


def test_a_union_admin_reaches_its_unions_hospitals_only() -> None:
    admin = caller("admin:union:u1")
    assert admin.hospital_ids() == {"h1", "h2"} and admin.union_ids() == {"u1"}
    admin.require_admin(hospital_id="h2")
    admin.require_admin(union_id="u1")
    admin.require("clinician", hospital_id="h1")  # an admin reads what its scope holds
    assert refusal(admin, "admin", hospital_id="h3") == Code.NO_PERMISSION
    assert refusal(admin, "admin", union_id="u2") == Code.NO_PERMISSION
    assert refusal(admin, "operator") == Code.NOT_ADMINISTRATOR


def test_a_hospital_admin_is_not_its_unions_admin() -> None:
    admin = caller("admin:hospital:h1")
    assert admin.hospital_ids() == {"h1"} and admin.union_ids() == frozenset()
    admin.require_admin(hospital_id="h1")
    assert refusal(admin, "admin", hospital_id="h2") == Code.NO_PERMISSION
    assert refusal(admin, "admin", union_id="u1") == Code.NO_PERMISSION
    assert not admin.may("admin", hospital_id="h2") and admin.may("admin", hospital_id="h1")


def test_non_admins_get_20012_on_admin_operations_and_20008_outside_their_hospital() -> None:
    reader = caller("clinician:hospital:h2")
    assert refusal(reader, "admin", hospital_id="h2") == Code.NOT_ADMINISTRATOR
    assert refusal(reader, "clinician", hospital_id="h1") == Code.NO_PERMISSION
    assert refusal(reader, "auditor") == Code.NO_PERMISSION
    reader.require("clinician", hospital_id="h2")
    rad = caller("radiologist:hospital:h3", "auditor:union:u1")
    assert rad.hospital_ids("radiologist") == {"h3"} and rad.hospital_ids("auditor") == {"h1", "h2"}
    assert rad.hospital_ids() == {"h1", "h2", "h3"} and rad.hospital_ids("clinician") == {"h3"}
    assert refusal(rad, "radiologist", hospital_id="h1") == Code.NO_PERMISSION
    assert refusal(rad, "admin") == Code.NOT_ADMINISTRATOR
