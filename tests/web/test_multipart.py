"""The one multipart/related parser and writer (web/multipart.py): streaming, bounded, strict."""

from __future__ import annotations

import os
import random

import pytest

from yingyun.web.multipart import (BodyTooLarge, MultipartError, RelatedParser, boundary_of, new_boundary,
                                   parse_content_type, related_length, related_type, write_related)


def parts_of(n: int, rng: random.Random) -> list[tuple[dict[str, str], bytes]]:
    return [({"Content-Type": "application/dicom", "Content-ID": f"<{i}>"}, rng.randbytes(rng.randint(0, 30_000)))
            for i in range(n)]


def parse(body: bytes, boundary: str, *, chunk: int, **kw) -> list[tuple[dict[str, str], bytes]]:
    parser = RelatedParser(boundary, max_bytes=kw.pop("max_bytes", 2**30), **kw)
    try:
        for i in range(0, len(body), chunk):
            parser.feed(body[i:i + chunk])
        out = []
        for part in parser.finish():
            content = part.content()
            out.append((part.headers, bytes(content) if isinstance(content, memoryview) else content.read()))
        return out
    finally:
        parser.close()


@pytest.mark.parametrize("chunk", [1, 2, 5, 61, 4096, 65536, 10**9])
def test_what_is_written_is_parsed_back_however_it_is_cut(chunk, tmp_path):
    rng = random.Random(chunk)
    parts = parts_of(12, rng)
    boundary = new_boundary()
    body = b"".join(write_related([(h, [c[:7], c[7:]]) for h, c in parts], boundary))
    assert len(body) == related_length([(h, len(c)) for h, c in parts], boundary)
    # a small memory budget: some parts stay in memory, the others go to the spool folder
    got = parse(body, boundary, chunk=chunk, memory_bytes=40_000, spool_dir=tmp_path / "spool")
    assert got == [({k.lower(): v for k, v in h.items()}, c) for h, c in parts]


def test_large_parts_are_spooled_to_files_not_memory(tmp_path):
    boundary = new_boundary()
    big = os.urandom(3 * 2**20)
    body = b"".join(write_related([({"Content-Type": "application/dicom"}, [big]), ({}, [b"small"])], boundary))
    parser = RelatedParser(boundary, max_bytes=2**30, spool_dir=tmp_path / "spool", memory_bytes=2**20)
    for i in range(0, len(body), 65536):
        parser.feed(body[i:i + 65536])
    large, small = parser.finish()
    assert not large.in_memory and large.size == len(big) and large.content().read() == big
    assert small.in_memory and bytes(small.content()) == b"small" and small.headers == {}
    assert (tmp_path / "spool").is_dir() and os.listdir(tmp_path / "spool") == []  # unnamed files only
    parser.close()


def test_preamble_epilogue_and_padding_after_a_boundary_are_allowed():
    body = (b"a preamble\r\n--b  \t\r\nContent-Type: application/dicom\r\n\r\nDATA\r\n--b\r\n\r\nMORE\r\n--b--\r\n"
            b"an epilogue")
    assert parse(body, "b", chunk=3) == [({"content-type": "application/dicom"}, b"DATA"), ({}, b"MORE")]


@pytest.mark.parametrize("body, says", [
    (b"", "no part boundary"),
    (b"no boundary at all", "no part boundary"),
    (b"--b\r\nContent-Type: application/dicom\r\n\r\nthe body stops here", "before its closing boundary"),
    (b"--b\r\nContent-Type: application/dicom\r\n\r\nDATA\r\n--b\r\n", "before its closing boundary"),
    (b"--b junk\r\n\r\nDATA\r\n--b--\r\n", "text after a boundary"),
    (b"--b\r\nno colon here\r\n\r\nDATA\r\n--b--\r\n", "header without a name"),
    (b"--b\r\n" + b"X-A: b\r\n" * 40 + b"\r\nDATA\r\n--b--\r\n", "more than 32 headers"),
    (b"--b\r\nX-Long: " + b"a" * 20_000 + b"\r\n\r\nDATA\r\n--b--\r\n", "headers are too long"),
])
def test_malformed_bodies_are_refused_with_what_is_wrong(body, says):
    with pytest.raises(MultipartError, match=says):
        parse(body, "b", chunk=7)


def test_a_body_over_the_limit_is_refused_as_it_arrives():
    body = b"--b\r\n\r\n" + b"x" * 1000 + b"\r\n--b--\r\n"
    with pytest.raises(BodyTooLarge) as e:
        parse(body, "b", chunk=100, max_bytes=500)
    assert e.value.limit == 500


def test_content_types():
    boundary = new_boundary()
    ctype = related_type(boundary, "application/dicom")
    assert boundary_of(ctype) == boundary
    assert parse_content_type(ctype) == ("multipart/related", {"type": "application/dicom", "boundary": boundary})
    assert boundary_of('Multipart/Related; type="application/dicom"; boundary="a b"') == "a b"
    for bad in (None, "", "application/json", "multipart/related", "multipart/related; boundary="):
        with pytest.raises(MultipartError):
            boundary_of(bad)
