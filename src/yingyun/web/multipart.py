"""multipart/related bodies (DICOM over HTTP: STOW-RS and the gateway sync)."""

from __future__ import annotations

import os
import re


class MultipartError(ValueError):
    pass


def boundary_of(content_type: str) -> str:
    m = re.search(r'boundary="?([^";]+)"?', content_type or "", flags=re.I)
    if not m or not content_type.lower().startswith("multipart/related"):
        raise MultipartError("expected multipart/related with a boundary")
    return m.group(1)


def parse_related(body: bytes, content_type: str) -> list[tuple[dict[str, str], memoryview]]:
    """The parts of a multipart/related body: (headers with lower-case names, content)."""
    delim = b"--" + boundary_of(content_type).encode("latin-1")
    view = memoryview(body)
    parts: list[tuple[dict[str, str], memoryview]] = []
    pos = body.find(delim)
    if pos < 0:
        raise MultipartError("no part boundary found")
    while True:
        pos += len(delim)
        if body[pos:pos + 2] == b"--":
            return parts
        if body[pos:pos + 2] == b"\r\n":
            pos += 2
        head_end = body.find(b"\r\n\r\n", pos)
        if head_end < 0:
            raise MultipartError("part headers not terminated")
        headers = {}
        for line in body[pos:head_end].split(b"\r\n"):
            if b":" in line:
                k, v = line.split(b":", 1)
                headers[k.strip().lower().decode("latin-1")] = v.strip().decode("latin-1")
        start = head_end + 4
        nxt = body.find(b"\r\n" + delim, start)
        if nxt < 0:
            raise MultipartError("body ends inside a part (missing closing boundary)")
        parts.append((headers, view[start:nxt]))
        pos = nxt + 2


def build_related(parts: list[tuple[dict[str, str], bytes]], *, type_: str = "application/dicom") -> tuple[str, bytes]:
    boundary = "yingyun-" + os.urandom(12).hex()
    chunks: list[bytes] = []
    for headers, content in parts:
        head = "".join(f"{k}: {v}\r\n" for k, v in {"Content-Type": type_, **headers}.items())
        chunks += [f"--{boundary}\r\n{head}\r\n".encode("latin-1"), bytes(content), b"\r\n"]
    chunks.append(f"--{boundary}--\r\n".encode("latin-1"))
    return f'multipart/related; type="{type_}"; boundary={boundary}', b"".join(chunks)
