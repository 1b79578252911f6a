"""What the patient pages need, handed over by the composition root."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from ...core.crypto import Vault
from ...core.render import RenderCache
from ...core.sms import SmsSender, make_sender
from ...settings import Settings
from ...storage.blobs import BlobStore
from ...storage.db import Database
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
    # Renders whole studies ahead of a JPEG zip download.
    prepare_pool: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(2, thread_name_prefix="film-prepare"))

    @classmethod
    def build(cls, runtime, *, sms: SmsSender | None = None) -> "PatientContext":
        st: Settings = runtime.settings
        return cls(
            settings=st, db=runtime.db, vault=runtime.vault, tenancy=runtime.tenancy,
            blobs=runtime.blobs, cache=RenderCache(st.data_dir / "render-cache", st.render_cache_bytes,
                                                  max_inflated=st.max_inflated_bytes),
            sms=sms or make_sender(st.sms_sender, st.sms_url), audit=AuditLog(runtime.db),
        )

    def start(self) -> None:
        self.audit.start()

    def stop(self) -> None:
        self.prepare_pool.shutdown(wait=False, cancel_futures=True)
        self.audit.close()
        close = getattr(self.sms, "close", None)
        if callable(close):
            close()
