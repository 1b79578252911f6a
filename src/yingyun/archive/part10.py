"""Part-10 files into the archive: the one entry of STOW-RS, the gateway sync and `yingyun import`.

A Part-10 file's dataset is stored exactly as received, behind a file meta
the store rebuilds (InstanceStore). The file is given as its bytes or as a
binary stream and is walked once: what `read_part10` learns (the UIDs, the
transfer syntax, where the dataset starts) is what the store indexes, so
the dataset is not parsed a second time. A stream is read from its current
position and never whole into memory, except a small one (up to
IN_MEMORY_BYTES), whose bytes then take the store's fast path for small
instances (the blob journal takes buffers only).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import BinaryIO

from ..core.dicom import InstanceInfo, InvalidInstance, read_file_info
from .instances import InstanceStore, StoreResult

IN_MEMORY_BYTES = 2**20

Source = bytes | memoryview | BinaryIO


@dataclass(frozen=True)
class Part10:
    info: InstanceInfo
    data: Source  # the file as read, its dataset at info.dataset_offset

    def store(self, store: InstanceStore, *, hospital_id: str, source_ae: str | None = None) -> StoreResult:
        return store.store_parsed(hospital_id=hospital_id, data=self.data, info=self.info, source_ae=source_ae)


def read_part10(data: Source, *, max_inflated: int, size: int | None = None) -> Part10:
    """What the index needs from a Part-10 file; InvalidInstance if it is not a usable one
    (a deflated dataset inflating past `max_inflated` included: the store's limit).

    A stream must be seekable (it is read again when stored); `size` (its
    length, when the caller knows it) spares a seek to its end."""
    if not isinstance(data, (bytes, memoryview)):
        if size is None:
            size = _remaining(data)
        if size is not None and size <= IN_MEMORY_BYTES:
            data = data.read()
    return Part10(read_file_info(data, max_inflated=max_inflated), data)


def store_part10(store: InstanceStore, *, hospital_id: str, data: Source,
                 source_ae: str | None = None) -> StoreResult:
    try:
        part = read_part10(data, max_inflated=store.max_inflated)
    except InvalidInstance as e:
        return StoreResult(e.status, "refused", e.reason)
    return part.store(store, hospital_id=hospital_id, source_ae=source_ae)


def _remaining(f: BinaryIO) -> int | None:
    try:
        if not f.seekable():
            return None
        pos = f.tell()
        end = f.seek(0, os.SEEK_END)
        f.seek(pos)
    except (OSError, AttributeError, ValueError):
        return None
    return end - pos
