"""What the DICOMweb routes need, handed over by the composition root."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from sqlalchemy import Connection, or_, select

from ...archive.instances import InstanceStore
from ...core.ttl import TtlCache
from ...storage import schema as s
from ...storage.blobs import BlobStore
from ...storage.db import Database
from ...storage.render_cache import RenderCache
from ...tenancy import Tenancy
from .auth import Authenticator, Caller
from .metacache import MetadataCache
from .tokens import TokenRegistry


class AccessTrail(Protocol):
    """Where retrievals are recorded: the patient pages' AuditLog (cloud/patient/audit.py), handed over by serve."""

    def record(self, *, access: str, link_pk: int | None, link_kind: str | None, hospital_id: str | None,
               study_id: str | None, study_uid: str | None, client_ip: str | None, user_agent: str | None,
               detail: str | None = None, at: float | None = None) -> None: ...


class StudyGate(Protocol):
    """Whether a staff session's caller may view a study (every study a request of theirs touches is asked)."""

    def may_view(self, conn: Connection, caller: Caller, study_uid: str) -> bool: ...


class HospitalScopeGate:
    """The default gate: a hospital holding the study (not deleted) is in the caller's scope."""

    def may_view(self, conn: Connection, caller: Caller, study_uid: str) -> bool:
        if caller.hospitals is None:
            return True
        d, st = s.dicom_studies, s.studies
        held = conn.execute(select(d.c.hospital_id).select_from(d.outerjoin(st, st.c.pk == d.c.ris_study_pk))
                            .where(d.c.study_uid == study_uid, or_(st.c.deleted.is_(None), st.c.deleted.is_(False))))
        return any(h in caller.hospitals for (h,) in held)


@dataclass
class DicomwebContext:
    db: Database
    tenancy: Tenancy
    blobs: BlobStore
    cache: RenderCache
    store: InstanceStore
    auth: Authenticator
    tokens: TokenRegistry
    max_stow_bytes: int = 4 * 2**30
    spool_dir: Path | None = None  # where STOW parts too large for memory wait to be stored
    trusted_proxies: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = field(default_factory=list)
    # The access trail WADO-RS retrievals are written to: the patient pages' own, so one trail shows who
    # looked at a study, through a link or a tool. None: retrievals are not audited (tests of other things).
    audit: AccessTrail | None = None
    # Staff sessions' access, per study; decisions kept a few seconds (a viewer asks for one study hundreds of
    # times a minute), keyed by the caller's name and the study.
    gate: StudyGate = field(default_factory=HospitalScopeGate)
    gate_decisions: TtlCache[tuple[str, str], bool] = field(default_factory=lambda: TtlCache(5.0, max_entries=4096))
    # Instances' metadata, serialised once (a viewer's series metadata is then a join of kept bytes).
    metadata: MetadataCache = field(default_factory=MetadataCache)
