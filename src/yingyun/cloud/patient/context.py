"""What the patient pages need, handed over by the composition root."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from ...core.crypto import Vault
from ...phonecodes import PhoneCodes
from ...core.sms import SmsSender
from ...settings import Settings
from ...storage.blobs import BlobStore
from ...storage.db import Database
from ...storage.render_cache import RenderCache
from ...tenancy import Tenancy
from .audit import AuditLog


@dataclass
class PatientContext:
    settings: Settings
    db: Database
    vault: Vault
    tenancy: Tenancy
    blobs: BlobStore
    cache: RenderCache
    sms: SmsSender
    audit: AuditLog
    codes: PhoneCodes  # the archive's sign-in codes (/h5/me)
    # Renders whole studies ahead of a JPEG zip download.
    prepare_pool: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(2,
                                                                                        thread_name_prefix="film-prepare"))

    def start(self) -> None:
        self.audit.start()

    def stop(self) -> None:
        self.prepare_pool.shutdown(wait=False, cancel_futures=True)
        self.audit.close()
        close = getattr(self.sms, "close", None)
        if callable(close):
            close()
