"""What the DICOMweb routes need, handed over by the composition root."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from ...archive.instances import InstanceStore
from ...storage.blobs import BlobStore
from ...storage.db import Database
from ...storage.render_cache import RenderCache
from ...tenancy import Tenancy
from .auth import Authenticator
from .tokens import TokenRegistry


class AccessTrail(Protocol):
    """Where retrievals are recorded: the patient pages' AuditLog (cloud/patient/audit.py), handed over by serve."""

    def record(self, *, access: str, link_pk: int | None, link_kind: str | None, hospital_id: str | None,
               study_id: str | None, study_uid: str | None, client_ip: str | None, user_agent: str | None,
               detail: str | None = None, at: float | None = None) -> None: ...


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
