"""What the DICOMweb routes need, handed over by the composition root."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ...archive.instances import InstanceStore
from ...core.render import RenderCache
from ...storage.blobs import BlobStore, LocalBlobStore
from ...storage.db import Database
from ...tenancy import Tenancy
from .auth import Authenticator
from .tokens import TokenRegistry


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
    trusted_proxies: list = field(default_factory=list)
    owns_store: bool = True

    @classmethod
    def build(cls, runtime, *, cache: RenderCache | None = None, blobs: BlobStore | None = None,
              store: InstanceStore | None = None) -> "DicomwebContext":
        """`store`: share the process's InstanceStore (and its group commit)
        if the composition root has one; else DICOMweb makes and closes its own."""
        st = runtime.settings
        blobs = blobs or getattr(runtime, "blobs", None) or LocalBlobStore(st.blob_dir)
        tokens = TokenRegistry(runtime.db, refresh_s=st.tenancy_refresh_s)
        return cls(
            db=runtime.db, tenancy=runtime.tenancy, blobs=blobs,
            cache=cache or RenderCache(st.data_dir / "render-cache", st.render_cache_bytes,
                                                  max_inflated=st.max_inflated_bytes),
            store=store or InstanceStore(runtime.db, blobs, min_free_bytes=st.min_free_bytes,
                                         max_inflated=st.max_inflated_bytes),
            owns_store=store is None,
            auth=Authenticator(runtime.tenancy, tokens, window_s=st.signature_window_s),
            tokens=tokens, trusted_proxies=list(st.trusted_proxies), spool_dir=st.spool_dir,
            max_stow_bytes=st.max_upload_bytes,
        )

    def close(self) -> None:
        if self.owns_store:
            self.store.close()
