"""Interface engines allowed to send HL7 (`yingyun admin hl7-sender add|list|remove`).

A sender is its sending facility (MSH-4) and the host it connects from, as a
PACS is its calling AE title and host; its messages are filed under its
hospital. A running listener sees a change within `refresh_s`; a host
registered by name is looked up again every `address_ttl_s`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select

from ...core.errors import Invalid, NotFound
from ...core.ttl import TtlCache
from ...storage import schema as s
from ...storage.db import Database
from ...storage.upsert import upsert
from ..scp import ADDRESS_TTL_S, resolve_host


@dataclass(frozen=True)
class Sender:
    facility: str
    host: str
    hospital_id: str


class Hl7Senders:
    def __init__(self, db: Database, *, refresh_s: float = 2.0,
                 resolve: Callable[[str], frozenset[str]] = resolve_host, address_ttl_s: float = ADDRESS_TTL_S) -> None:
        self.db = db
        self._senders: TtlCache[None, dict[str, Sender]] = TtlCache(refresh_s)
        self._resolve = resolve
        self._addresses: TtlCache[str, frozenset[str]] = TtlCache(address_ttl_s)

    def add(self, *, facility: str, host: str, hospital_id: str) -> bool:
        """Register (True) or change (False) a sender."""
        facility = facility.strip()
        if not facility or len(facility) > 180 or not facility.isprintable() or any(c in facility for c in "|^~\\&"):
            raise Invalid("a sending facility (MSH-4) is 1-180 printable characters without HL7 delimiters",
                          subject="hl7 sender", field="facility")
        if not host.strip():
            raise Invalid("a host name or address is needed", subject="hl7 sender", field="host")
        with self.db.write() as conn:
            if conn.execute(select(s.hospitals.c.id).where(s.hospitals.c.id == hospital_id)).first() is None:
                raise NotFound(f"no hospital {hospital_id!r}: add it first", subject="hospital")
            created = upsert(conn, s.hl7_senders, {"facility": facility},
                             {"host": host.strip(), "hospital_id": hospital_id})
        self._senders.invalidate()
        return created

    def remove(self, *, facility: str) -> None:
        """Stop accepting a sender; what it sent stays."""
        with self.db.write() as conn:
            gone = conn.execute(delete(s.hl7_senders).where(s.hl7_senders.c.facility == facility.strip())).rowcount
        if not gone:
            raise NotFound(f"no HL7 sender {facility!r}", subject="hl7 sender")
        self._senders.invalidate()

    def list(self) -> list[dict[str, Any]]:
        t = s.hl7_senders
        with self.db.read() as conn:
            rows = conn.execute(select(t).order_by(t.c.facility)).all()
        return [{"facility": r.facility, "host": r.host, "hospitalId": r.hospital_id} for r in rows]

    def _load(self, _: None) -> dict[str, Sender]:
        return {r["facility"]: Sender(r["facility"], r["host"], r["hospitalId"]) for r in self.list()}

    def lookup(self, facility: str) -> Sender | None:
        return self._senders.get(None, self._load).get(facility)

    def allows(self, sender: Sender, peer_host: str) -> bool:
        """Whether a connection from `peer_host` may speak for `sender`."""
        return peer_host in self._addresses.get(sender.host, self._resolve)
