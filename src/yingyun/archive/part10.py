"""Storing a whole Part-10 file (import, STOW-RS, gateway sync) through InstanceStore."""

from __future__ import annotations

from ..core.dicom import InvalidInstance, read_file_info
from .instances import InstanceStore, StoreResult


def store_part10(store: InstanceStore, *, hospital_id: str, data: bytes | memoryview,
                 source_ae: str | None = None) -> StoreResult:
    """The file's dataset goes in as received; its own file meta is rebuilt by the store."""
    try:
        info = read_file_info(data, max_inflated=store.max_inflated)
    except InvalidInstance as e:
        return StoreResult(e.status, "refused", e.reason)
    return store.store(hospital_id=hospital_id, data=memoryview(data)[info.dataset_offset:],
                       transfer_syntax_uid=info.transfer_syntax_uid, source_ae=source_ae)
