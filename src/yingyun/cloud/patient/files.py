"""Files the pages hand out: a text report as PDF, and streamed zip archives.

`report_pdf` writes a small PDF with the report text in the standard CJK
font STSong-Light (UniGB-UCS2-H): every PDF reader provides that font, so
the file needs no embedded font and stays a few kilobytes.

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

# -- PDF -----------------------------------------------------------------------

_PAGE_W, _PAGE_H, _MARGIN = 595, 842, 50


def _char_em(ch: str) -> float:
    return 0.5 if ord(ch) < 0x2E80 else 1.0


def _wrap(text: str, size: float, width: float) -> list[str]:
    lines: list[str] = []
    for para in (text or "").replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        line, used = "", 0.0
        for ch in para:
            w = _char_em(ch) * size
            if used + w > width and line:
                lines.append(line)
                line, used = "", 0.0
            line += ch
            used += w
        lines.append(line)
    return lines


def _hex(text: str) -> str:
    # UCS-2: characters outside the BMP cannot be shown by this encoding.
    return "".join(f"{ord(c):04X}" if ord(c) <= 0xFFFF else "25A1" for c in text)


def report_pdf(title: str, blocks: list[tuple[str, str]]) -> bytes:
    """`blocks` are (heading, text) pairs; an empty heading prints text only."""
    width = _PAGE_W - 2 * _MARGIN
    items: list[tuple[float, str]] = [(16.0, line) for line in _wrap(title, 16.0, width)] + [(8.0, "")]
    for heading, text in blocks:
        if heading:
            items += [(12.5, line) for line in _wrap(heading, 12.5, width)]
        items += [(11.0, line) for line in _wrap(text, 11.0, width)] + [(6.0, "")]
    pages: list[list[tuple[float, str]]] = [[]]
    y: float = _PAGE_H - _MARGIN
    for size, line in items:
        step = size * 1.5
        if y - step < _MARGIN and pages[-1]:
            pages.append([])
            y = _PAGE_H - _MARGIN
        pages[-1].append((size, line))
        y -= step
    objects: list[bytes] = []

    def add(body: bytes) -> int:
        objects.append(body)
        return len(objects)

    catalog = add(b"")  # filled below
    pages_obj = add(b"")
    font = add(b"<< /Type /Font /Subtype /Type0 /BaseFont /STSong-Light /Encoding /UniGB-UCS2-H "
               b"/DescendantFonts [5 0 R] >>")
    add(b"<< /Type /FontDescriptor /FontName /STSong-Light /Flags 6 /FontBBox [-25 -254 1000 880] "
        b"/ItalicAngle 0 /Ascent 880 /Descent -120 /CapHeight 880 /StemV 93 >>")
    add(b"<< /Type /Font /Subtype /CIDFontType0 /BaseFont /STSong-Light "
        b"/CIDSystemInfo << /Registry (Adobe) /Ordering (GB1) /Supplement 2 >> /FontDescriptor 4 0 R "
        b"/DW 1000 /W [1 95 500] >>")
    kids = []
    for lines in pages:
        ops = ["BT"]
        y = _PAGE_H - _MARGIN
        for size, line in lines:
            y -= size * 1.5
            if line:
                ops.append(f"/F1 {size:g} Tf 1 0 0 1 {_MARGIN} {y:.1f} Tm <{_hex(line)}> Tj")
        ops.append("ET")
        stream = "\n".join(ops).encode("ascii")
        content = add(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
        kids.append(add(f"<< /Type /Page /Parent {pages_obj} 0 R /MediaBox [0 0 {_PAGE_W} {_PAGE_H}] "
                        f"/Resources << /Font << /F1 {font} 0 R >> >> /Contents {content} 0 R >>".encode()))
    objects[catalog - 1] = f"<< /Type /Catalog /Pages {pages_obj} 0 R >>".encode()
    refs = " ".join(f"{k} 0 R" for k in kids)
    objects[pages_obj - 1] = f"<< /Type /Pages /Kids [{refs}] /Count {len(kids)} >>".encode()
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for n, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % n + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for off in offsets:
        out += b"%010d 00000 n \n" % off
    out += b"trailer\n<< /Size %d /Root %d 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, catalog, xref)
    return bytes(out)


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
