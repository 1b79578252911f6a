"""What the reading page's handlers need, filled by the composition root (serve.py) and put on the app."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from sqlalchemy import Connection, select

from ...core.crypto import Vault
from ...storage import schema as s
from ...storage.db import Database
from ...tenancy import Tenancy
from ..staff.edge import CLINICIAN, Caller


class StudyGate(Protocol):
    """Whether a staff caller may read a study (the viewer's `cloud/dicomweb` gate has the same shape, so
    serve.py can hand both the reading routes' rule)."""

    def may_view(self, conn: Connection, caller: Caller, study_uid: str) -> bool: ...


class ScopeGate:
    """Until the reading routes decide it: a study is readable by those whose roles cover a clinician's
    (clinicians, radiologists, reviewers, admins, operators) in a scope that reaches one of its hospitals."""

    def may_view(self, conn: Connection, caller: Caller, study_uid: str) -> bool:
        reach = caller.hospital_ids(CLINICIAN)
        if reach is None:
            return caller.may(CLINICIAN)
        if not reach:
            return False
        st = s.studies
        found = conn.execute(select(st.c.pk).where(st.c.study_uid == study_uid, st.c.deleted.is_(False),
                                                   st.c.hospital_id.in_(sorted(reach))).limit(1)).first()
        return found is not None


@dataclass
class ReadingPageContext:
    db: Database
    vault: Vault  # the QR link's token is kept encrypted (archive/links)
    tenancy: Tenancy
    public_url: str  # where the QR code on the printed report points (the cloud film's /h5/s/<token>)
    gate: StudyGate = field(default_factory=ScopeGate)
