"""Reading routes: which reading centre reads a hospital's studies, by modality (`reading_routes`).

A route sends a hospital's studies (all of them, or one modality's) to a reading centre: another hospital
of the union, or the hospital itself. The most specific route wins: one naming the study's modality over one
naming none. A hospital with no route for a study reads it itself, unless it reports locally (its RIS sends
reports: `/ris/report/add`), in which case nobody in the cloud reads it. The same functions serve
`/api/v1/reading-routes` and `yingyun admin reading-route`.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, delete, exists, insert, or_, select

from ...core.errors import Conflict, Invalid, NotFound
from ...core.ttl import TtlCache
from ...storage import schema as s
from ..staff.edge import ADMIN, Caller

CLOUD_SOURCE = "cloud"  # the `source` of reports written by the reading centre (archive.accept)


@dataclass(frozen=True)
class Route:
    id: str
    from_hospital_id: str
    to_hospital_id: str
    modality: str | None
    created_at: float
    created_by: str

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "fromHospitalId": self.from_hospital_id, "toHospitalId": self.to_hospital_id,
                "modality": self.modality, "createdAt": self.created_at, "createdBy": self.created_by}


def _route(row: Any) -> Route:
    return Route(row.id, row.from_hospital_id, row.to_hospital_id, row.modality, row.created_at, row.created_by)


def normal_modality(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not value.strip().isalnum() or len(value.strip()) > 16:
        raise Invalid("modality is a DICOM modality code such as CT", field="modality")
    return value.strip().upper()


def _hospital(conn: Connection, hospital_id: Any, name: str) -> str:
    if not isinstance(hospital_id, str) or not hospital_id:
        raise Invalid(f"{name} is required", field=name)
    if conn.execute(select(s.hospitals.c.id).where(s.hospitals.c.id == hospital_id)).first() is None:
        raise NotFound(f"no hospital {hospital_id!r}", subject="hospital")
    return hospital_id


def add_route(conn: Connection, *, caller: Caller, from_hospital_id: Any, to_hospital_id: Any, modality: Any = None,
              now: float | None = None) -> Route:
    """A new route; its manager administers both hospitals (an operator, an admin of their union, or of the one
    hospital when it reads itself). One route per hospital and modality (Conflict otherwise)."""
    src = _hospital(conn, from_hospital_id, "fromHospitalId")
    dst = _hospital(conn, to_hospital_id, "toHospitalId")
    mod = normal_modality(modality)
    caller.require(ADMIN, hospital_id=src)
    caller.require(ADMIN, hospital_id=dst)
    r = s.reading_routes
    same = r.c.modality.is_(None) if mod is None else r.c.modality == mod
    if conn.execute(select(r.c.id).where(r.c.from_hospital_id == src, same)).first() is not None:
        raise Conflict(f"hospital {src} already has a route for {mod or 'every modality'}", subject="reading route")
    route = Route(f"rr-{secrets.token_hex(6)}", src, dst, mod, time.time() if now is None else now, caller.username)
    conn.execute(insert(r).values(id=route.id, from_hospital_id=src, to_hospital_id=dst, modality=mod,
                                  created_at=route.created_at, created_by=route.created_by))
    return route


def list_routes(conn: Connection, *, caller: Caller) -> list[Route]:
    """The routes from or to a hospital the caller's roles reach (every route for an operator)."""
    r = s.reading_routes
    q = select(r).order_by(r.c.from_hospital_id, r.c.modality, r.c.id)
    reach = caller.hospital_ids()
    if reach is not None:
        q = q.where(or_(r.c.from_hospital_id.in_(sorted(reach)), r.c.to_hospital_id.in_(sorted(reach))))
    return [_route(row) for row in conn.execute(q)]


def remove_route(conn: Connection, *, caller: Caller, route_id: str) -> Route:
    r = s.reading_routes
    row = conn.execute(select(r).where(r.c.id == route_id)).first()
    if row is None:
        raise NotFound(f"no reading route {route_id!r}", subject="reading route")
    route = _route(row)
    caller.require(ADMIN, hospital_id=route.from_hospital_id)
    caller.require(ADMIN, hospital_id=route.to_hospital_id)
    conn.execute(delete(r).where(r.c.id == route_id))
    return route


def all_routes(conn: Connection) -> list[Route]:
    return [_route(row) for row in conn.execute(select(s.reading_routes))]


class LocalReporting:
    """Which hospitals report locally (a report reached `reports` from their RIS, not from the cloud), cached for
    `refresh_s`: the worklist asks on every call, and a hospital starts or stops reporting locally rarely."""

    def __init__(self, *, refresh_s: float = 10.0) -> None:
        self._cache: TtlCache[str, bool] = TtlCache(refresh_s)

    def of(self, conn: Connection, hospital_id: str) -> bool:
        return self._cache.get(hospital_id, lambda h: reports_locally(conn, h))


def reports_locally(conn: Connection, hospital_id: str) -> bool:
    r, v = s.reports, s.report_versions
    local = exists().where(v.c.report_pk == r.c.pk, or_(v.c.source.is_(None), v.c.source != CLOUD_SOURCE))
    return conn.execute(select(r.c.pk).where(r.c.hospital_id == hospital_id, local).limit(1)).first() is not None


def study_modality(ris_modality: str | None, dicom_modalities: str | None) -> str | None:
    """The modality a study is routed by: the RIS's, else the first DICOM one."""
    text = ris_modality or (dicom_modalities or "").split("\\")[0]
    return text.strip().upper() or None


def centre_of(routes: list[Route], *, hospital_id: str, modality: str | None, local: bool) -> str | None:
    """The reading centre of a study of `hospital_id` (module docstring); None: nobody in the cloud reads it."""
    mine = [r for r in routes if r.from_hospital_id == hospital_id]
    for r in mine:
        if r.modality is not None and r.modality == modality:
            return r.to_hospital_id
    for r in mine:
        if r.modality is None:
            return r.to_hospital_id
    return None if local else hospital_id


@dataclass(frozen=True)
class Share:
    """The studies of one sending hospital a centre reads: every one (`modalities` None and `exclude` empty), those
    of `modalities`, or every one but those of `exclude`."""

    hospital_id: str
    modalities: frozenset[str] | None
    exclude: frozenset[str]


def shares_of(routes: list[Route], centres: frozenset[str] | None, hospitals: list[str],
              local: Any) -> list[Share]:
    """What `centres` (None: every centre) read, per sending hospital, from the routes (`centre_of`, as sets).
    `local(hospital_id) -> bool`: whether it reports locally."""
    out = []
    for h in hospitals:
        mine = [r for r in routes if r.from_hospital_id == h]
        specific = {r.modality: r.to_hospital_id for r in mine if r.modality is not None}
        default = next((r.to_hospital_id for r in mine if r.modality is None), None)
        if default is None and not local(h):
            default = h
        take = frozenset(m for m, c in specific.items() if centres is None or c in centres)
        if default is not None and (centres is None or default in centres):
            out.append(Share(h, None, frozenset(specific) - take))
        elif take:
            out.append(Share(h, take, frozenset()))
    return out


__all__ = ["CLOUD_SOURCE", "LocalReporting", "Route", "Share", "add_route", "all_routes", "centre_of",
           "list_routes", "remove_route", "shares_of", "study_modality"]
