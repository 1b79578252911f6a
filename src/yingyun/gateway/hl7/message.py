"""One HL7 v2 message: bytes decoded by its MSH-18, parsed with python-hl7, read by position; its ACK.

The character set is the message's own (MSH-18, HL7 table 0211): ASCII,
UNICODE UTF-8 or GB 18030 (with the spellings interface engines use). It is
read from the raw MSH segment before decoding, then checked against the
decoded one: MSH-3 … MSH-17 are ASCII in practice, and a message whose
bytes are not in the charset it names is refused naming MSH-18 rather than
stored with its names garbled. A message without MSH-18 must be ASCII or
UTF-8 (its text is refused otherwise, never guessed).

Values are read with `Message.value("PID", 5, component=2)` (1-based, as the
standard numbers them; absent is ""), unescaped here (\\F\\ \\S\\ \\T\\ \\R\\ \\E\\,
\\.br\\ as a line break, \\Xhh\\), not by python-hl7's unescape, which logs
through a deprecated logging call on unusual escapes.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any

import hl7
from hl7 import parser as hl7_parser

from .faults import Fault, Location

SEGMENT_END = b"\r"
# HL7 table 0211 names and the spellings seen in the field, normalised (upper case, letters and digits only).
_CHARSETS = {"ASCII": "ascii", "USASCII": "ascii", "UNICODEUTF8": "utf-8", "UTF8": "utf-8"}
_GB18030 = re.compile(r"GB18030(2000|2005|2022)?")
# Escapes of the delimiters: their index in python-hl7's separators (segment, field, repetition, component, sub).
_DELIMITER_ESCAPES = {"F": 1, "R": 2, "S": 3, "T": 4}


def codec_of(msh18: str) -> str | None:
    """The Python codec of an MSH-18 value (its first repetition); None when not one we read."""
    name = re.sub(r"[^A-Z0-9]", "", msh18.upper())
    if _GB18030.fullmatch(name):
        return "gb18030"
    return _CHARSETS.get(name)


def _raw_msh_field(raw: bytes, number: int) -> bytes:
    """MSH-`number` as bytes, from the first segment, before decoding (for MSH-18: which codec)."""
    first = raw.split(SEGMENT_END, 1)[0]
    if len(first) < 4:
        return b""
    sep = first[3:4]
    fields = first.split(sep)  # fields[0] is "MSH"; fields[1] is MSH-2; MSH-1 is the separator itself
    index = number - 1
    return fields[index] if 0 < index < len(fields) else b""


@dataclass
class Message:
    """A decoded, parsed message and its header's facts."""

    raw: bytes
    text: str
    codec: str
    charset: str  # MSH-18 as sent ("" when absent): the ACK names the same
    tree: Any  # hl7.Message
    _by_name: dict[str, list[Any]] | None = field(default=None, repr=False)

    @classmethod
    def decode(cls, raw: bytes) -> Message:
        """Decode and parse; Fault (AE/AR with where) when it cannot be read."""
        if not raw.startswith(b"MSH") or len(raw) < 8:
            raise Fault("AR", 100, Location("MSH", 1, 0), "the message does not begin with an MSH segment")
        charset_raw = _raw_msh_field(raw, 18).split(raw[5:6] if len(raw) > 5 else b"~", 1)[0]
        try:
            charset = charset_raw.decode("ascii").strip()
        except UnicodeDecodeError:
            raise Fault("AE", 103, Location("MSH", 1, 18), "MSH-18 is not a character set name") from None
        codec = codec_of(charset) if charset else "utf-8"
        if codec is None:
            raise Fault("AE", 103, Location("MSH", 1, 18),
                        "MSH-18 names a character set not read here (ASCII, UNICODE UTF-8, GB 18030)")
        try:
            text = raw.decode(codec)
        except UnicodeDecodeError:
            said = f"MSH-18 says {charset}" if charset else "without MSH-18 the message must be ASCII or UTF-8"
            raise Fault("AE", 102, Location("MSH", 1, 18),
                        f"the message's bytes are not in its character set ({said})") from None
        # Segments end with CR; LF and CR LF are what hand-written test messages and some engines send.
        text = text.replace("\r\n", "\r").replace("\n", "\r")
        try:
            tree = _parse(text)
        except Exception as exc:  # python-hl7 raises bare exceptions on what it cannot split
            raise Fault("AR", 100, Location("MSH", 1, 0), "the message cannot be split into segments") from exc
        msg = cls(raw=raw, text=text, codec=codec, charset=charset, tree=tree)
        if msg.value("MSH", 18) != charset:
            raise Fault("AE", 102, Location("MSH", 1, 18), "MSH-18 does not read the same once decoded")
        return msg

    # -- reading by position ------------------------------------------------

    def segments(self, name: str) -> list[Any]:
        if self._by_name is None:  # a mapping reads dozens of fields: the segments are sorted once
            self._by_name = {}
            for seg in self.tree:
                self._by_name.setdefault(str(seg[0]), []).append(seg)
        return self._by_name.get(name, [])

    def has(self, name: str) -> bool:
        return bool(self.segments(name))

    def value(self, segment: str | Any, field: int, component: int = 1, *, repetition: int = 1,
              sub: int = 1, index: int = 1) -> str:
        """The unescaped, stripped text at segment-field.repetition.component.sub ("" when absent).
        `segment` is a name (its `index`-th occurrence) or a segment from `segments`."""
        seg = segment
        if isinstance(segment, str):
            found = self.segments(segment)
            if len(found) < index:
                return ""
            seg = found[index - 1]
        text = _leaf(seg, field, repetition, component, sub)
        if field in (1, 2) and str(seg[0]) == "MSH":  # the separators themselves: read as they are
            return text
        if self.tree.esc in text:
            text = self.unescape(text)
        return text.strip()

    def repetitions(self, segment: Any, field: int) -> int:
        """How many repetitions a field of this segment has (0 when it is empty)."""
        if field >= len(segment) or not str(segment[field]):
            return 0
        f = segment[field]
        return 1 if isinstance(f[0], str) else len(f)

    def unescape(self, text: str) -> str:
        esc = self.tree.esc
        if esc not in text:
            return text
        separators = self.tree.separators  # segment, field, repetition, component, sub-component
        out: list[str] = []
        parts = text.split(esc)
        # Even indexes are text, odd ones escape sequences (an unpaired escape stays as it was).
        for i, part in enumerate(parts):
            if i % 2 == 0:
                out.append(part)
            elif i == len(parts) - 1:
                out.append(esc + part)
            elif part in _DELIMITER_ESCAPES:
                out.append(separators[_DELIMITER_ESCAPES[part]])
            elif part == "E":
                out.append(esc)
            elif part in (".br", ".sp", ".ce"):
                out.append("\n")
            elif part.startswith("X") and re.fullmatch(r"X([0-9A-Fa-f]{2})+", part):
                out.append(bytes.fromhex(part[1:]).decode(self.codec, errors="replace"))
            # formatting (.in, .fi, H, N …) and charset switches carry no text: dropped
        return "".join(out)

    # -- the header -----------------------------------------------------------

    @property
    def control_id(self) -> str:
        return self.value("MSH", 10)

    @property
    def facility(self) -> str:
        """MSH-4's namespace id: who sent it, as `admin hl7-sender add --facility` names it."""
        return self.value("MSH", 4)

    @property
    def version(self) -> str:
        return self.value("MSH", 12)

    @property
    def message_type(self) -> str:
        """MSH-9 as code^event ("ORM^O01")."""
        code, event = self.value("MSH", 9, 1), self.value("MSH", 9, 2)
        return f"{code}^{event}" if event else code


class _Plan(hl7_parser._ParsePlan):  # type: ignore[misc]  # python-hl7 has no type hints
    """python-hl7's parse plan, its walk down the levels made once per set of delimiters instead of at
    every field: the plan made anew for each of a message's ~150 parts was half of `hl7.parse`'s time.
    The message it builds is `hl7.parse`'s (tests/gateway/test_hl7.py compares them)."""

    def __init__(self, separator: str, separators: str, containers: list[Any], esc: str, factory: Any) -> None:
        super().__init__(separator, separators, containers, esc, factory)
        self._tail = separators[separators.find(separator):]
        self._next: _Plan | None = None

    def next(self) -> _Plan | None:
        child = self._next
        if child is None and len(self.containers) > 1:
            child = self._next = _Plan(self.separators[self.separators.find(self.separator) + 1], self.separators,
                                       self.containers[1:], self.esc, self.factory)
        return child

    def applies(self, text: str) -> bool:
        return any(s in text for s in self._tail)


_PLANS: dict[tuple[str, str], _Plan] = {}


def _parse(text: str) -> Any:
    """`hl7.parse(text)`, with the plan of these delimiters kept."""
    message = text.strip()
    base = hl7_parser.create_parse_plan(message, hl7.Factory)
    plan = _PLANS.get((base.separators, base.esc))
    if plan is None:
        if len(_PLANS) > 64:  # delimiters are the sender's to choose: a stranger's cannot grow this
            _PLANS.clear()
        plan = _PLANS[(base.separators, base.esc)] = _Plan(base.separator, base.separators, base.containers,
                                                             base.esc, base.factory)
    return hl7_parser._split(message, plan)


def _leaf(seg: Any, field: int, repetition: int, component: int, sub: int) -> str:
    """python-hl7's tree: a segment's fields; a field is [text] or repetitions; a repetition is
    texts or components; a component is sub-component texts."""
    # list's own indexing: python-hl7's containers index in Python (for slices), a mapping reads dozens
    # of fields a message, and that was a tenth of an ORM^O01's time.
    get = list.__getitem__
    if field >= len(seg):
        return ""
    f = get(seg, field)
    if not f:
        return ""
    first = get(f, 0)
    if isinstance(first, str):  # a plain value
        return first if repetition == component == sub == 1 else ""
    if repetition > len(f):
        return ""
    rep = get(f, repetition - 1)
    if component > len(rep):
        return ""
    comp = get(rep, component - 1)
    if isinstance(comp, str):
        return comp if sub == 1 else ""
    return str(get(comp, sub - 1)) if sub <= len(comp) else ""


@dataclass(frozen=True)
class Header:
    """What an ACK needs of the message it answers."""

    facility: str  # MSH-4
    application: str  # MSH-3
    receiving_facility: str  # MSH-6
    control_id: str  # MSH-10
    version: str  # MSH-12
    event: str  # MSH-9.2
    charset: str  # MSH-18 as sent
    codec: str

    @classmethod
    def of(cls, msg: Message) -> Header:
        return cls(msg.facility, msg.value("MSH", 3), msg.value("MSH", 6), msg.control_id, msg.version,
                   msg.value("MSH", 9, 2), msg.charset, msg.codec)

    @classmethod
    def of_raw(cls, raw: bytes) -> Header:
        """Best effort, from the bytes of a message that could not be decoded: ASCII parts only."""
        def text(number: int, component: int = 1) -> str:
            value = _raw_msh_field(raw, number).decode("ascii", errors="replace")
            return value.split("^")[component - 1] if value.count("^") >= component - 1 else ""

        return cls(text(4), text(3), text(6), text(10), text(12) or "2.5.1", text(9, 2), "", "ascii")


def ack(header: Header | None, code: str, *, fault: Fault | None = None, text: str = "",
        application: str = "YINGYUN") -> bytes:
    """The original-mode ACK (MSA-1 `code`, MSA-2 the message's control id), encoded in its charset.

    An AE or AR names where and why in an ERR segment: ERR-2 (segment^sequence^field) and ERR-3
    (table 0357) from 2.5 on, ERR-1 (segment^sequence^field^code) before it; MSA-3 carries the words for
    receivers that read only MSA. `header` None: nothing of the message could be read."""
    def clean(value: str) -> str:
        return re.sub(r"[|^~\\&\r\n]", " ", value)

    h = header or Header("", "", "", "", "2.5.1", "", "", "ascii")
    words = clean(fault.text if fault is not None else text)
    msh = "|".join([
        "MSH", "^~\\&", application, clean(h.receiving_facility), clean(h.application), clean(h.facility),
        time.strftime("%Y%m%d%H%M%S"), "", f"ACK^{clean(h.event)}^ACK" if h.event else "ACK",
        f"Y{time.time_ns()}", "P", clean(h.version), "", "", "", "", "", h.charset,
    ]).rstrip("|")
    msa = "|".join(["MSA", code, clean(h.control_id), words]).rstrip("|")
    segments = [msh, msa]
    if fault is not None:
        loc = fault.where
        error = f"{fault.error_code}^{clean(fault.error_name)}^HL70357"
        if _at_least_25(h.version):
            segments.append("|".join(["ERR", "", f"{loc.segment}^{loc.sequence}^{loc.field}", error,
                                      "E", "", "", "", words]))
        else:
            segments.append(f"ERR|{loc.segment}^{loc.sequence}^{loc.field}^{error.replace('^', '&')}")
    return ("\r".join(segments) + "\r").encode(h.codec, errors="replace")


def _at_least_25(version: str) -> bool:
    parts = re.findall(r"\d+", version)
    return len(parts) >= 2 and (int(parts[0]), int(parts[1])) >= (2, 5)
