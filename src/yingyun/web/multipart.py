"""multipart/related bodies (RFC 2387), streaming both ways: DICOM over HTTP.

The one parser and the one writer of the project: STOW-RS parses requests
and WADO-RS writes answers with them, the gateway sync writes its instance
batches and the cloud parses them.

Neither side holds a whole body. `write_related` yields a body piece by
piece from the parts' own chunk iterators. `RelatedParser` is fed the body
as it arrives and keeps each part in memory while it is small and the
request's memory budget allows, else in an unnamed temporary file in
`spool_dir` (storage/spool.py), so a 2 GiB instance costs a few chunks of
memory and its size on disk. A part kept in memory is handed over
as a memoryview (the small-instance fast paths of the store take buffers),
a spooled one as the file, positioned at its start.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import BinaryIO

from ..storage.spool import spool_file

PART_MEMORY_BYTES = 8 * 2**20  # a part larger than this goes to a file
REQUEST_MEMORY_BYTES = 32 * 2**20  # the parts of one body held in memory at most, together
_PARAM = re.compile(r';\s*([A-Za-z0-9_.+-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;,\s]*)')


class MultipartError(ValueError):
    """A body that is not the multipart/related it claims to be."""


class BodyTooLarge(MultipartError):
    """The body is larger than the parser was told to accept."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"the body is larger than the {limit / 2**20:g} MiB limit")
        self.limit = limit


# -- content types ---------------------------------------------------------------


def parse_content_type(header: str | None) -> tuple[str, dict[str, str]]:
    """(media type in lower case, parameters with lower-case names) of a Content-Type value."""
    if not header:
        return "", {}
    mtype, _, rest = header.partition(";")
    params = {}
    for name, value in _PARAM.findall(";" + rest):
        params[name.lower()] = value[1:-1] if value.startswith('"') else value
    return mtype.strip().lower(), params


def boundary_of(content_type: str | None) -> str:
    """The boundary of a multipart/related Content-Type; MultipartError if it is not one."""
    mtype, params = parse_content_type(content_type)
    if mtype != "multipart/related" or not params.get("boundary"):
        raise MultipartError("expected multipart/related with a boundary")
    return params["boundary"]


def new_boundary() -> str:
    return "yingyun-" + os.urandom(12).hex()


def related_type(boundary: str, inner: str) -> str:
    """The Content-Type of a body written with `write_related`."""
    return f'multipart/related; type="{inner}"; boundary={boundary}'


# -- writing ---------------------------------------------------------------------


def part_head(headers: Mapping[str, str], boundary: str) -> bytes:
    lines = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    return f"--{boundary}\r\n{lines}\r\n".encode()


def body_tail(boundary: str) -> bytes:
    return b"--" + boundary.encode() + b"--\r\n"


def write_related(parts: Iterable[tuple[Mapping[str, str], Iterable[bytes]]], boundary: str) -> Iterator[bytes]:
    """Encode parts (headers, content chunks) as a multipart body, streaming."""
    for headers, content in parts:
        yield part_head(headers, boundary)
        yield from content
        yield b"\r\n"
    yield body_tail(boundary)


def related_length(parts: Iterable[tuple[Mapping[str, str], int]], boundary: str) -> int:
    """The length of what `write_related` yields for parts of these (headers, content sizes)."""
    return sum(len(part_head(h, boundary)) + size + 2 for h, size in parts) + len(body_tail(boundary))


# -- parsing ---------------------------------------------------------------------


class Part:
    """One part of a parsed body: its headers (names in lower case) and its content."""

    def __init__(self, budget: _Budget) -> None:
        self.headers: dict[str, str] = {}
        self.size = 0
        self._budget = budget
        self._memory: bytearray | None = bytearray()
        self._file: BinaryIO | None = None

    def content(self) -> memoryview | BinaryIO:
        """The content: a view of it while it is in memory, else its file at the start."""
        if self._memory is not None:
            return memoryview(self._memory)
        assert self._file is not None
        self._file.seek(0)
        return self._file

    @property
    def in_memory(self) -> bool:
        return self._memory is not None

    def _write(self, data: memoryview) -> None:
        self.size += len(data)
        if self._memory is not None:
            if len(self._memory) + len(data) <= PART_MEMORY_BYTES and self._budget.take(len(data)):
                self._memory += data
                return
            self._file = self._budget.spool_file()
            self._file.write(self._memory)
            self._budget.give(len(self._memory))
            self._memory = None
        assert self._file is not None
        self._file.write(data)

    def close(self) -> None:
        if self._memory is not None:
            self._budget.give(len(self._memory))
            self._memory = None
        if self._file is not None:
            self._file.close()
            self._file = None


class _Budget:
    """Memory the parts of one body may hold together, and where the others spool."""

    def __init__(self, limit: int, spool_dir: Path | None) -> None:
        self.left = limit
        self.spool_dir = spool_dir

    def take(self, n: int) -> bool:
        if n > self.left:
            return False
        self.left -= n
        return True

    def give(self, n: int) -> None:
        self.left += n

    def spool_file(self) -> BinaryIO:
        return spool_file(self.spool_dir)


_PREAMBLE, _DELIMITED, _HEADERS, _CONTENT, _END = range(5)
MAX_HEADER_BYTES = 16 * 1024  # of one part's header block
MAX_HEADERS = 32
MAX_PREAMBLE = 64 * 1024


class RelatedParser:
    """Parses a multipart/related body fed in chunks; `finish` returns its parts.

    The boundary is looked for with bytes.find over what arrived, so a part
    costs a few searches however large it is, and header blocks, preambles
    and the lines after a boundary are bounded. `close` releases every
    part's memory and file (the caller closes the parser when done with the
    parts, whatever happened)."""

    def __init__(self, boundary: str, *, max_bytes: int, spool_dir: Path | None = None,
                 memory_bytes: int = REQUEST_MEMORY_BYTES) -> None:
        if not 1 <= len(boundary) <= 200:  # RFC 2046: 1 to 70 characters; some clients send longer
            raise MultipartError("the boundary must be 1 to 200 characters")
        self.max_bytes = max_bytes
        self.total = 0
        self.parts: list[Part] = []
        self._budget = _Budget(memory_bytes, spool_dir)
        self._delimiter = b"\r\n--" + boundary.encode("latin-1")
        # The first delimiter may open the body: read it as if a line had ended before it.
        self._buf = bytearray(b"\r\n")
        self._state = _PREAMBLE

    def feed(self, chunk: bytes) -> None:
        self.total += len(chunk)
        if self.total > self.max_bytes:
            raise BodyTooLarge(self.max_bytes)
        if self._state == _END:
            return  # the epilogue after the closing delimiter carries nothing
        self._buf += chunk
        while self._step():
            pass

    def _step(self) -> bool:
        """Advance through what is buffered; False when it needs more."""
        buf, delimiter = self._buf, self._delimiter
        if self._state in (_PREAMBLE, _CONTENT):
            i = buf.find(delimiter)
            if i < 0:
                keep = len(delimiter) - 1  # the start of a delimiter that has not fully arrived
                if len(buf) > keep:
                    if self._state == _CONTENT:
                        self._emit(len(buf) - keep)
                    elif self.total > MAX_PREAMBLE:
                        raise MultipartError("no part boundary found")
                    del buf[:len(buf) - keep]
                return False
            if self._state == _CONTENT:
                self._emit(i)
            del buf[:i + len(delimiter)]
            self._state = _DELIMITED
            return True
        if self._state == _DELIMITED:  # "--" closes the body; else padding, then CRLF
            if buf.startswith(b"--"):
                self._state = _END
                buf.clear()
                return False
            i = buf.find(b"\r\n")
            if i < 0:
                if len(buf) > 1024:
                    raise MultipartError("malformed multipart body: no line end after a boundary")
                return False
            if buf[:i].strip(b" \t"):
                raise MultipartError("malformed multipart body: text after a boundary")
            del buf[:i + 2]
            self.parts.append(Part(self._budget))
            self._state = _HEADERS
            return True
        if self._state == _HEADERS:
            if len(buf) < 2:
                return False
            end = 0 if buf.startswith(b"\r\n") else buf.find(b"\r\n\r\n")
            if end < 0:
                if len(buf) > MAX_HEADER_BYTES:
                    raise MultipartError("malformed multipart body: a part's headers are too long")
                return False
            if end > MAX_HEADER_BYTES:
                raise MultipartError("malformed multipart body: a part's headers are too long")
            self.parts[-1].headers = _headers(bytes(buf[:end]))
            del buf[:end + (2 if end == 0 else 4)]
            self._state = _CONTENT
            return True
        return False

    def _emit(self, n: int) -> None:
        with memoryview(self._buf) as view, view[:n] as content:
            self.parts[-1]._write(content)

    def finish(self) -> list[Part]:
        """The parts, once the whole body is in; MultipartError if it ended early."""
        if self._state != _END:
            raise MultipartError("the body ends before its closing boundary" if self.parts
                                 else "no part boundary found")
        return self.parts

    def close(self) -> None:
        for part in self.parts:
            part.close()


def _headers(block: bytes) -> dict[str, str]:
    headers: dict[str, str] = {}
    lines = block.split(b"\r\n") if block else []
    if len(lines) > MAX_HEADERS:
        raise MultipartError(f"malformed multipart body: more than {MAX_HEADERS} headers in a part")
    for line in lines:
        name, colon, value = line.partition(b":")
        if not colon or not name.strip():
            raise MultipartError("malformed multipart body: a part header without a name")
        headers[name.strip().lower().decode("latin-1")] = value.strip().decode("latin-1")
    return headers
