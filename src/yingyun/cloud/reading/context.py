"""What the reading routes and services need, filled by the composition root (serve.py) and put on the app."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import Connection

from ...archive.events import NoEvents, RecordEvents
from ...core.crypto import Vault
from ...core.times import Zone
from ...storage.db import Database
from ...tenancy import Tenancy
from ..callbacks.events import CallbackEvents
from .routes import LocalReporting

# template_for(conn, *, centre_id, modality, body_part, study_desc) -> (description, conclusion) | None
TemplateFor = Callable[..., "tuple[str, str] | None"]


def _nothing_published(conn: Connection, study_uid: str) -> None:
    pass


@dataclass
class ReadingContext:
    db: Database
    vault: Vault
    tenancy: Tenancy
    zone: Zone
    # Who hears of a report written into `reports` (the partners' status callbacks): the cloud's RecordEvents.
    events: RecordEvents = field(default_factory=NoEvents)
    # The critical-finding callback ("critical": true on status 1); None: no partner is told.
    callbacks: CallbackEvents | None = None
    # Called in the approving transaction once a final report is in `reports` (the delivery to the hospital's RIS).
    report_published: Callable[[Connection, str], None] = _nothing_published
    # The templates' starting text of a new report; None: a new report starts empty.
    template_for: TemplateFor | None = None
    clock: Callable[[], float] = time.time
    lock_s: float = 30 * 60.0
    local: LocalReporting = field(default_factory=LocalReporting)
