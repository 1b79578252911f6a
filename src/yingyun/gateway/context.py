"""What the gateway's handlers need, handed over by the composition root."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..archive.events import NoEvents, RecordEvents
from ..core.crypto import Vault
from ..settings import Settings
from ..storage.db import Database
from ..storage.groupcommit import GroupCommit
from ..tenancy import Tenancy


@dataclass
class GatewayContext:
    settings: Settings
    db: Database
    vault: Vault
    tenancy: Tenancy
    writer: GroupCommit
    events: RecordEvents = field(default_factory=NoEvents)
