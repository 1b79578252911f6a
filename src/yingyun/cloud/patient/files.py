"""Files the pages hand out: streamed zip archives (the report PDF is core/reportpdf.py's).

`zip_stream` writes a zip (stored, no compression: JPEG and most DICOM do
not shrink) while reading its members, using data descriptors so nothing
has to be read twice; `zip_size` gives the exact byte count beforehand, so
the download carries a Content-Length and the browser shows real progress.
"""

from __future__ import annotations

import struct
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

# -- zip -----------------------------------------------------------------------

_CHUNK = 256 * 1024
ZIP_LIMIT = 0xFFFFFFFF - 1  # no zip64 here: archives stay under 4 GiB


@dataclass
class ZipMember:
    name: str
    size: int
    open: Callable[[], BinaryIO | bytes]


def _dos_time(t: float) -> tuple[int, int]:
    lt = time.localtime(t)
    return ((lt.tm_hour << 11) | (lt.tm_min << 5) | (lt.tm_sec // 2),
            (((lt.tm_year - 1980) & 0x7F) << 9) | (lt.tm_mon << 5) | lt.tm_mday)


def zip_size(members: Iterable[ZipMember]) -> int:
    total = 22
    for m in members:
        n = len(m.name.encode("utf-8"))
        total += 30 + n + m.size + 16 + 46 + n
    return total


def zip_stream(members: list[ZipMember], *, mtime: float | None = None, check: bool = True) -> Iterator[bytes]:
    """Yield the archive. A member whose bytes differ in length from its
    declared size raises (the Content-Length would be a lie)."""
    dtime, ddate = _dos_time(mtime or time.time())
    central: list[bytes] = []
    offset = 0
    flags = 0x08 | 0x800  # data descriptor, UTF-8 names
    for m in members:
        name = m.name.encode("utf-8")
        local = struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, flags, 0, dtime, ddate, 0, 0, 0, len(name), 0) + name
        yield local
        crc, size = 0, 0
        src = m.open()
        try:
            if isinstance(src, (bytes, bytearray)):
                crc = zlib.crc32(src)
                size = len(src)
                yield bytes(src)
            else:
                while True:
                    chunk = src.read(_CHUNK)
                    if not chunk:
                        break
                    crc = zlib.crc32(chunk, crc)
                    size += len(chunk)
                    yield chunk
        finally:
            close = getattr(src, "close", None)
            if callable(close):
                close()
        if check and size != m.size:
            raise OSError(f"zip member {m.name} changed size while streaming")
        yield struct.pack("<IIII", 0x08074B50, crc, size, size)
        central.append(struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, flags, 0, dtime, ddate, crc, size, size,
                                   len(name), 0, 0, 0, 0, 0, offset) + name)
        offset += len(local) + size + 16
    cd = b"".join(central)
    yield cd
    yield struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(members), len(members), len(cd), offset, 0)
