"""Accept headers (PS3.18 8.7); multipart bodies are web/multipart.py's."""

from __future__ import annotations

from dataclasses import dataclass

from ...core.errors import Invalid
from ...web.multipart import parse_content_type


class NotAcceptable(Invalid):
    """Nothing the request accepts (its Accept header) can be delivered (HTTP 406)."""


class UnsupportedMediaType(Invalid):
    """The request's body is of a type this resource does not take (HTTP 415)."""


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
    out: list[str] = []
    cur: list[str] = []
    quoted = False
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
        mtype, raw = parse_content_type(part)
        params = {name: value.strip() for name, value in raw.items()}
        try:
            q = float(params.pop("q", "1"))
        except ValueError:
            q = 1.0
        if q > 0:
            ranges.append(MediaRange(mtype, params, q))
    return sorted(ranges, key=lambda r: -r.q)
