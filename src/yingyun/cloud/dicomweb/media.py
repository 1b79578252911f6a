"""Accept headers and multipart/related bodies (RFC 2387, PS3.18 8.7)."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

_PARAM = re.compile(r';\s*([A-Za-z0-9_.+-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;,\s]*)')


@dataclass(frozen=True)
class MediaRange:
    type: str  # e.g. multipart/related, application/dicom, image/jpeg, */*
    params: dict[str, str]
    q: float

    @property
    def inner(self) -> str | None:
        """The `type` parameter of a multipart/related range, lower case."""
        v = self.params.get("type")
        return v.lower() if v else None

    @property
    def transfer_syntax(self) -> str | None:
        return self.params.get("transfer-syntax")


def _split_ranges(header: str) -> list[str]:
    out, cur, quoted = [], [], False
    for c in header:
        if c == '"':
            quoted = not quoted
        if c == "," and not quoted:
            out.append("".join(cur))
            cur = []
        else:
            cur.append(c)
    out.append("".join(cur))
    return [p.strip() for p in out if p.strip()]


def parse_accept(header: str | None) -> list[MediaRange]:
    """Media ranges, highest q first (stable); `*/*` when the header is absent."""
    if not header or not header.strip():
        return [MediaRange("*/*", {}, 1.0)]
    ranges = []
    for part in _split_ranges(header):
        mtype = part.split(";", 1)[0].strip().lower()
        params = {}
        for name, value in _PARAM.findall(part[len(part.split(";", 1)[0]):]):
            if value.startswith('"'):
                value = value[1:-1]
            params[name.lower()] = value.strip()
        try:
            q = float(params.pop("q", "1"))
        except ValueError:
            q = 1.0
        if q > 0:
            ranges.append(MediaRange(mtype, params, q))
    return sorted(ranges, key=lambda r: -r.q)


def parse_content_type(header: str | None) -> tuple[str, dict[str, str]]:
    if not header:
        return "", {}
    mtype = header.split(";", 1)[0].strip().lower()
    params = {}
    for name, value in _PARAM.findall(header[len(header.split(";", 1)[0]):]):
        params[name.lower()] = value[1:-1] if value.startswith('"') else value
    return mtype, params


def new_boundary() -> str:
    return "yingyun-" + os.urandom(12).hex()


def multipart_stream(parts: Iterable[tuple[dict[str, str], Iterable[bytes]]], boundary: str) -> Iterator[bytes]:
    """Encode parts (headers, body chunks) as a multipart body, streaming."""
    b = boundary.encode()
    for headers, body in parts:
        head = b"--" + b + b"\r\n" + b"".join(f"{k}: {v}\r\n".encode() for k, v in headers.items()) + b"\r\n"
        yield head
        yield from body
        yield b"\r\n"
    yield b"--" + b + b"--\r\n"
