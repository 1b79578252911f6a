"""Parameter classes A/B/C and formats of the hospital gateway API (§1.3, §1.4).

A parsed record keeps everything the hospital sent: typed values for the
fields we understand, the raw JSON for all of it (unknown extras included),
and a data-quality warning for every missing B field and every malformed B
or C value ("phoneNum: missing (B)", "studyDate: malformed (B)"). Only A
fields can make a request fail.

B fields that say the same thing in different ways form a group (one of the
identity numbers, a department's name or its id): the group is missing only
when the hospital sends none of its fields, and then it is said once, naming
them all ("applyDept/applyDeptId: missing (B)").
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from .codes import Code
from .envelope import ContractError

A, B, C = "A", "B", "C"

DATETIME_FORMAT = "%Y-%m-%d %H:%M:%S"
DATE_FORMAT = "%Y-%m-%d"

SEXES = frozenset({"M", "F", "O"})
# What many Chinese RIS send for patientSex.
SEX_WORDS = {"男": "M", "女": "F", "未知": "O"}
AGE_UNITS = frozenset({"Y", "M", "D"})
STUDY_CATEGORIES = frozenset({"normal", "emergency"})
STUDY_STATUSES = ("registered", "partial", "preliminary", "print", "final")


class Malformed(ValueError):
    """A present value of the wrong shape: the contract's parsers say which field (100001 on §2, 20030 on §3).

    Raised and caught inside `contract` only (it imports nothing of ours, so not `core.errors`): what leaves
    a parser is the vendor's `ContractError`, at the vendor edge that called it."""


# The format a converter accepts, in words, for the OpenAPI schemas of the tables.
FORMATS: dict[Callable[[Any], Any], str] = {}


def _text(value: Any) -> str:
    # Hospital systems often send ids as JSON numbers; their text is what they meant.
    if isinstance(value, bool) or isinstance(value, (dict, list)):
        raise Malformed("expected a string")
    if isinstance(value, (int, float)):
        return str(value)
    if not isinstance(value, str):
        raise Malformed("expected a string")
    return value


def as_str(value: Any) -> str:
    return _text(value)


# Counts are stored as 32-bit integers (INTEGER on PostgreSQL and SQLite
# alike); no study holds two billion images, so a larger count is a fault.
COUNT_MAX = 2**31 - 1
_COUNT_RANGE = f"expected a count from 0 to {COUNT_MAX}"
_DECIMAL = re.compile(r"\s*\+?0*(\d{1,10})\s*", re.ASCII)


def as_count(value: Any) -> int:
    """A count (imageCnt, reportCnt, pdfCnt, seriesCnt): an integer 0 … COUNT_MAX,
    as a JSON number (3.0 is 3) or decimal digits."""
    if isinstance(value, bool):
        raise Malformed(_COUNT_RANGE)
    if isinstance(value, float) and value.is_integer() and abs(value) <= COUNT_MAX:
        value = int(value)
    if isinstance(value, str):
        m = _DECIMAL.fullmatch(value)
        value = int(m.group(1)) if m else None
    if isinstance(value, int) and 0 <= value <= COUNT_MAX:
        return value
    raise Malformed(_COUNT_RANGE)


_CANONICAL_DATETIME = re.compile(r"(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})", re.ASCII)


def as_datetime(value: Any) -> str:
    """Normalised 'yyyy-MM-dd HH:mm:ss'; a bare date means its midnight."""
    text = _text(value).strip()
    m = _CANONICAL_DATETIME.fullmatch(text)
    if m is not None:  # what nearly every RIS sends: checked without strptime's cost
        try:
            year, month, day, hour, minute, second = map(int, m.groups())
            datetime(year, month, day, hour, minute, second)
            return text
        except ValueError:
            raise Malformed("expected yyyy-MM-dd HH:mm:ss") from None
    for fmt in (DATETIME_FORMAT, DATE_FORMAT):
        try:
            return datetime.strptime(text, fmt).strftime(DATETIME_FORMAT)
        except ValueError:
            continue
    raise Malformed("expected yyyy-MM-dd HH:mm:ss")


def as_date(value: Any) -> str:
    text = _text(value).strip()
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        try:
            return date.fromisoformat(text).strftime(DATE_FORMAT)
        except ValueError:
            pass
    raise Malformed("expected yyyy-MM-dd")


def enum_of(allowed: frozenset[str] | tuple[str, ...], *, upper: bool) -> Callable[[Any], str]:
    def convert(value: Any) -> str:
        text = _text(value).strip()
        text = text.upper() if upper else text.lower()
        if text not in allowed:
            raise Malformed("expected one of " + "/".join(sorted(allowed)))
        return text

    FORMATS[convert] = " / ".join(allowed if isinstance(allowed, tuple) else sorted(allowed))
    return convert


def as_sex(value: Any) -> str:
    """M / F / O, in either case, or the Chinese words for them (男 / 女 / 未知)."""
    text = _text(value).strip()
    sex = SEX_WORDS.get(text) or text.upper()
    if sex not in SEXES:
        raise Malformed("expected one of F/M/O (or 男/女/未知)")
    return sex


FORMATS.update({
    as_datetime: "yyyy-MM-dd HH:mm:ss (a bare yyyy-MM-dd is its midnight)",
    as_date: "yyyy-MM-dd",
    as_count: f"an integer from 0 to {COUNT_MAX}",
    as_sex: "M / F / O, or 男 / 女 / 未知",
})


@dataclass(frozen=True)
class Field:
    name: str
    cls: str
    convert: Callable[[Any], Any] = as_str
    group: str | None = None  # B fields of one group: missing only when all of them are


@dataclass
class Record:
    values: dict[str, Any]
    raw: dict[str, Any]
    warnings: list[str] = field(default_factory=list)

    def get(self, name: str, default: Any = None) -> Any:
        value = self.values.get(name)
        return default if value is None else value


def _is_empty(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def parse(fields: tuple[Field, ...], body: Any, *, where: str = "") -> Record:
    """Apply the A/B/C rules; raise 100001 naming every missing or malformed A field."""
    if not isinstance(body, dict):
        raise ContractError(Code.PARAM_ERROR, f"{where or 'body'} must be a JSON object")
    values: dict[str, Any] = {}
    warnings: list[str] = []
    missing: list[str] = []
    malformed: list[str] = []
    # Groups with a field sent are not missing; the others are said once, at their first field.
    said = {f.group for f in fields if f.group is not None and not _is_empty(body.get(f.name))}
    for f in fields:
        value = body.get(f.name)
        if _is_empty(value):
            if f.cls == A:
                missing.append(f.name)
            elif f.cls == B and f.group is None:
                warnings.append(f"{f.name}: missing (B)")
            elif f.cls == B and f.group is not None and f.group not in said:
                said.add(f.group)
                warnings.append("/".join(x.name for x in fields if x.group == f.group) + ": missing (B)")
            continue
        try:
            values[f.name] = f.convert(value)
        except Malformed as e:
            if f.cls == A:
                malformed.append(f"{f.name} ({e})")
            else:
                warnings.append(f"{f.name}: malformed ({f.cls})")
    if missing or malformed:
        parts = []
        prefix = f"{where}." if where else ""
        if missing:
            parts.append("missing required field(s): " + ", ".join(prefix + m for m in missing))
        if malformed:
            parts.append("malformed required field(s): " + ", ".join(prefix + m for m in malformed))
        raise ContractError(Code.PARAM_ERROR, "; ".join(parts))
    return Record(values=values, raw=body, warnings=warnings)
