"""What the index needs from one DICOM instance, read fast and safely.

Two entry points feed ingest: ``read_dataset_info`` for a dataset exactly as a
C-STORE delivered it (no file meta, transfer syntax from the presentation
context) and ``read_file_info`` for a Part-10 file from a bulk import. Both
return an ``InstanceInfo`` or raise ``InvalidInstance``; nothing else escapes
for bad content (I/O errors on a path or stream still propagate as OSError).

Guarantees
----------
* Bytes are never transcoded: the stored object is
  ``build_file_meta(...) + data[info.dataset_offset:]`` and the dataset part
  is byte-identical to what was received.
* The whole top-level dataset is walked element header by element header,
  so truncation, garbage and a transfer syntax that lies about the encoding
  are detected, but only the ~25 elements the index needs are ever copied.
  Values that are not needed (pixel data, a 100 MB private OB, nested
  sequences) are skipped by offset arithmetic or a seek: for ``bytes`` and
  ``BytesIO`` input nothing is copied; a file over 1 MiB is read in 64 KiB
  windows around the element headers (a smaller one in a single read).
  Deflated datasets are inflated as a stream in 64 KiB steps and never held
  whole, within the limits below; the deflate stream must reach its end
  marker. NUL padding after the last element is tolerated, any other
  trailing byte is not.
* SOP Class, SOP Instance, Study and Series Instance UIDs are present and
  storable (``is_storable_uid``): 1-64 characters of printable ASCII without
  '/', '\\' or '..', kept exactly as sent (trailing NUL/space padding
  aside). That is wider than PS3.5 9.1 (``is_valid_uid``) on purpose:
  equipment sends 64-character hex hashes and components with leading
  zeros, which can be stored safely. Such UIDs are not path segments by
  themselves: ``archive/layout.instance_key`` escapes what is not a PS3.5 UID.
  Transfer syntax UIDs must be valid per PS3.5.
* Thread-safe and warning-free: no global state is touched (pydicom's reader
  reports problems through ``warnings``, which cannot be silenced per thread,
  and reads undefined-length sequences whole; hence the small walker here).

Truncation (one rule for every way in)
--------------------------------------
C-STORE (``read_dataset_info``) and import, STOW and sync
(``read_file_info``) walk the same bytes with the same walker, so the same
dataset gets the same answer whichever way it came. A dataset is truncated,
and refused with 0xC210, when an element's value runs past the end of the
data, or when native pixel data (Implicit/Explicit VR, Big Endian,
Deflated) is shorter than Rows x Columns x Samples per Pixel x Number of
Frames x Bits Allocated need (``native_pixel_bytes``): the image is
incomplete, and no decoder would show it. A dataset of odd total length
whose elements are all complete (an odd-length value at the end, such as 3 x
3 8-bit pixels) is not truncated: it is stored byte for byte, like any
other. What counts is the reassembled dataset, never how its PDVs were cut.
Senders that re-encode a file before sending (pydicom
based ones read a cut-off last value short and write it back whole) turn a
file cut mid-value into a dataset with short pixel data: the pixel data rule
refuses that too, as the importer refuses the file itself.

Deflated datasets (deflate bombs)
---------------------------------
A deflated dataset may inflate to at most ``max_inflated`` bytes (the
setting ``max_inflated_bytes``, ``--max-inflated-mib``, default 2 GiB);
beyond that it is refused with 0xA700 (PS3.4 B.2.3, Refused: Out of
Resources: the receiver will not hold an instance that large). It is
refused with 0xC210 (cannot understand) when, once more than 16 MiB have
come out, it has inflated more than 200 times the compressed bytes it was
given (a small blank image deflates about 1000:1 but stays under 16 MiB), or
when its native pixel data is bigger than its image attributes need (plus 16
MiB for what may follow it): what an image SOP class instance can hold
uncompressed is its pixels plus its attributes, and a dataset that inflates
past that is not the instance it says it is. Both limits hold while
inflating, so a bomb costs at most about 16 MiB of inflation, never its
inflated size, and ``open_inflated`` applies the same limits to the stored
files served later.

Character sets
--------------
Text is decoded per (0008,0005) Specific Character Set, including ISO 2022
code extensions (escape sequences, delimiters resetting to G0), GB18030, GBK
and UTF-8. Multi-byte values are decoded *before* they are split on ``^``,
``=`` and ``\\`` because GBK trail bytes may equal those delimiters. The
tables come from pydicom, but unlike pydicom 3.0.2 the escape sequence of
ISO 2022 IR 58 (GB2312) is stripped before decoding.

When the dataset declares no character set (or only the ASCII default) but a
value has bytes >= 0x80, the data is non-conformant and any reading is a
guess; Chinese equipment that does this writes GB18030/GBK (sometimes UTF-8),
so such values are tried as UTF-8, then GB18030, then Latin-1. Misspelt
terms ("ISO-IR 192", "GB2312", "utf-8") are mapped to their codec; unknown
terms are treated like an absent character set.

Person names
------------
``patient_name_raw`` is the whole decoded PN value (all component groups,
trailing empty groups dropped), for C-FIND/QIDO matching. ``patient_name``
(and ``referring_physician``) is the display form: the ideographic group if
it has content, else the alphabetic group, else the phonetic group. In the
chosen group, if every non-empty component is written in CJK script (Han,
kana, Hangul, the middle dot of transliterated names) the components are
concatenated ("Wang^XiaoDong=王^小東" -> "王小東", "张^三丰" -> "张三丰");
otherwise the group keeps its DICOM form with trailing empty components
removed ("Doe^John^^^" -> "Doe^John").

Kinds
-----
``kind`` is the platform's counting class. All SOP classes in the SR arc
(1.2.840.10008.5.1.4.1.1.88.*, including retired trial classes and CAD, dose
and procedure-log SR) plus the SR-encoded clinical reports (Macular Grid
Thickness and Volume Report, Spectacle Prescription Report) are "sr". Key
Object Selection (88.59) is SR-encoded but is a list of references (key
images, IOCM rejection notes), not a report: counting it as "sr" would make
the report count move whenever a radiologist flags an image, so it is
"document". Encapsulated PDF is "pdf", the other encapsulated documents
(CDA, STL, OBJ, MTL and future 104.* classes) are "document", and everything
else is "image" (one instance, however many frames; this includes presentation
states, waveforms, RT objects and raw data, which are not pictures either).
"""

from __future__ import annotations

import codecs
import io
import os
import re
import struct
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from typing import BinaryIO

from pydicom import uid as pydicom_uid
from pydicom.charset import CODES_TO_ENCODINGS, python_encoding

from ..dicomnet.status import Status
from ..dicomnet.uids import IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME

__all__ = [
    "DEFAULT_MAX_INFLATED",
    "MAX_INFLATE_RATIO",
    "InstanceInfo",
    "InvalidInstance",
    "build_file_meta",
    "display_person_name",
    "is_storable_uid",
    "is_valid_uid",
    "kind_of_sop_class",
    "native_pixel_bits",
    "native_pixel_bytes",
    "open_inflated",
    "read_dataset_info",
    "read_file_info",
    "read_file_meta",
    "transfer_syntax_encoding",
]

# pydicom's UIDs as plain str: they are compared with, and returned as, the strings read from files.
IMPLICIT_VR_LITTLE_ENDIAN = str(pydicom_uid.ImplicitVRLittleEndian)
EXPLICIT_VR_LITTLE_ENDIAN = str(pydicom_uid.ExplicitVRLittleEndian)
EXPLICIT_VR_BIG_ENDIAN = str(pydicom_uid.ExplicitVRBigEndian)
# Deflated Explicit VR LE, and JPIP Referenced Deflate (not named by pydicom 3.0)
_DEFLATED_TS = frozenset({str(pydicom_uid.DeflatedExplicitVRLittleEndian), "1.2.840.10008.1.2.4.95"})


class InvalidInstance(ValueError):
    """The bytes are not a usable DICOM instance.

    ``reason`` names the problem without patient data (safe to log and to put
    in a DIMSE Error Comment); ``status`` is the DIMSE failure status to
    answer with: 0xC210 (cannot understand), 0xA900 (dataset does not match
    the SOP class, also used by dcmtk for a SOP instance mismatch) or 0xA700
    (out of resources: a deflated dataset inflating past the configured
    maximum).
    """

    def __init__(self, reason: str, status: int = Status.CANNOT_DECODE_DATA_SET) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


@dataclass(frozen=True, slots=True)
class InstanceInfo:
    """The index's view of one instance.

    Strings are decoded and stripped of padding; absent or unusable elements
    are "" (text) or None (numbers). Dates are YYYYMMDD and times
    HH[MM[SS[.F]]] (legacy "YYYY.MM.DD" / "HH:MM:SS" converted, anything else
    dropped); code strings are cut to 16 characters, the accession number to
    64 and integers outside the signed 32-bit range dropped, so every value
    fits the index columns.
    """

    sop_class_uid: str
    sop_instance_uid: str
    study_uid: str
    series_uid: str
    transfer_syntax_uid: str
    patient_id: str
    patient_name: str
    patient_name_raw: str
    patient_birth_date: str
    patient_sex: str
    study_date: str
    study_time: str
    study_description: str
    accession_number: str
    study_id: str
    referring_physician: str
    series_number: int | None
    series_description: str
    modality: str
    body_part: str
    series_date: str
    series_time: str
    instance_number: int | None
    # (0028,0008) when valid, else 1 with pixel data and 0 without (SR, PDF).
    number_of_frames: int
    rows: int | None
    columns: int | None
    specific_character_set: str
    kind: str
    # Where the dataset proper starts in the bytes given: after the file meta
    # for read_file_info; after group 0002 elements that some SCUs wrongly
    # send inside a C-STORE dataset for read_dataset_info (usually 0). A
    # stored file must not carry two group 0002s, so store data[offset:].
    dataset_offset: int = 0


# --------------------------------------------------------------------------
# UIDs and kinds

_UID_RE = re.compile(r"(?:0|[1-9][0-9]*)(?:\.(?:0|[1-9][0-9]*))*")


def is_valid_uid(uid: str) -> bool:
    """PS3.5 9.1: '.'-separated components of ASCII digits, no leading zero
    except a lone "0", at most 64 characters. A valid UID contains no '/' and
    no '..', so it is safe as a path segment."""
    return isinstance(uid, str) and 0 < len(uid) <= 64 and _UID_RE.fullmatch(uid) is not None


def is_storable_uid(uid: str) -> bool:
    """What ingest accepts as an instance's identifying UIDs (module doc):
    1-64 characters of printable ASCII (space to '~'), no path separator
    ('/' or '\\', which is also DICOM's value separator) and no '..'.
    A gateway must not refuse a PACS's image for a cosmetic fault it can
    store safely; an empty, multi-valued or control-character UID is not
    cosmetic."""
    return (isinstance(uid, str) and 0 < len(uid) <= 64 and uid.isascii() and uid.isprintable()
            and "/" not in uid and "\\" not in uid and ".." not in uid)


_SR_PREFIX = "1.2.840.10008.5.1.4.1.1.88."
_KOS = "1.2.840.10008.5.1.4.1.1.88.59"
_SR_REPORTS_OUTSIDE_88 = frozenset(
    {
        "1.2.840.10008.5.1.4.1.1.79.1",  # Macular Grid Thickness and Volume Report
        "1.2.840.10008.5.1.4.1.1.78.6",  # Spectacle Prescription Report
    }
)
_PDF = "1.2.840.10008.5.1.4.1.1.104.1"
_ENCAPSULATED_PREFIX = "1.2.840.10008.5.1.4.1.1.104."


def kind_of_sop_class(sop_class_uid: str) -> str:
    """The counting class: "image" | "sr" | "pdf" | "document" (see module doc)."""
    if sop_class_uid.startswith(_SR_PREFIX):
        return "document" if sop_class_uid == _KOS else "sr"
    if sop_class_uid in _SR_REPORTS_OUTSIDE_88:
        return "sr"
    if sop_class_uid == _PDF:
        return "pdf"
    if sop_class_uid.startswith(_ENCAPSULATED_PREFIX):
        return "document"
    return "image"


# --------------------------------------------------------------------------
# File meta

_VR32 = frozenset({b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"})
_VR16 = frozenset(
    {b"AE", b"AS", b"AT", b"CS", b"DA", b"DS", b"DT", b"FD", b"FL", b"IS", b"LO"}
    | {b"LT", b"PN", b"SH", b"SL", b"SS", b"ST", b"TM", b"UI", b"UL", b"US"}
)


def _meta_element(group_elem: int, vr: bytes, value: bytes) -> bytes:
    tag = struct.pack("<HH", group_elem >> 16, group_elem & 0xFFFF)
    if vr in _VR32:
        return tag + vr + b"\0\0" + struct.pack("<L", len(value)) + value
    return tag + vr + struct.pack("<H", len(value)) + value


def _uid_value(uid: str) -> bytes:
    raw = uid.encode("ascii")
    return raw + b"\0" if len(raw) % 2 else raw


def build_file_meta(
    *,
    sop_class_uid: str,
    sop_instance_uid: str,
    transfer_syntax_uid: str,
    source_ae: str | None = None,
) -> bytes:
    """The Part-10 header for a received dataset: 128-byte zero preamble,
    b"DICM" and an explicit-VR-little-endian group 0002 with its group length.

    ``build_file_meta(...) + dataset_bytes`` is a complete Part-10 file. The
    SOP UIDs must be storable and the transfer syntax UID valid (ValueError
    otherwise: they come from a dataset that read_dataset_info already
    checked, so a bad one is a programming error).
    """
    for name, uid, ok in (
        ("sop_class_uid", sop_class_uid, is_storable_uid),
        ("sop_instance_uid", sop_instance_uid, is_storable_uid),
        ("transfer_syntax_uid", transfer_syntax_uid, is_valid_uid),
    ):
        if not ok(uid):
            raise ValueError(f"{name} is not a valid UID")
    version = IMPLEMENTATION_VERSION_NAME.encode("ascii")
    elements = [
        _meta_element(0x00020001, b"OB", b"\x00\x01"),
        _meta_element(0x00020002, b"UI", _uid_value(sop_class_uid)),
        _meta_element(0x00020003, b"UI", _uid_value(sop_instance_uid)),
        _meta_element(0x00020010, b"UI", _uid_value(transfer_syntax_uid)),
        _meta_element(0x00020012, b"UI", _uid_value(IMPLEMENTATION_CLASS_UID)),
        _meta_element(0x00020013, b"SH", version + b" " if len(version) % 2 else version),
    ]
    if source_ae is not None:
        ae = source_ae.strip()
        # AE: 1-16 chars of the default repertoire without backslash/controls.
        if not ae or len(ae) > 16 or not ae.isascii() or not ae.isprintable() or "\\" in ae:
            raise ValueError("source_ae is not a valid AE title")
        raw = ae.encode("ascii")
        elements.append(_meta_element(0x00020016, b"AE", raw + b" " if len(raw) % 2 else raw))
    body = b"".join(elements)
    return b"\0" * 128 + b"DICM" + _meta_element(0x00020000, b"UL", struct.pack("<L", len(body))) + body


# --------------------------------------------------------------------------
# Byte sources


class _Truncated(Exception):
    """The data ended inside an element (internal)."""


class _Malformed(Exception):
    """Structurally not a DICOM dataset (internal; message is the reason)."""


_CHUNK = 64 * 1024
_SKIP_CHUNK = 1024 * 1024
# Deflate bombs (module doc, "Deflated datasets"): the configurable ceiling,
# the ratio past which a dataset is refused, and the inflated bytes after
# which the ratio applies, so that a small blank image (which deflates about
# 1000:1) is not refused.
DEFAULT_MAX_INFLATED = 2 * 2**30
MAX_INFLATE_RATIO = 200
_RATIO_GRACE = 16 * 2**20
# What may follow an image's pixel data in a deflated dataset (a digital
# signature, trailing padding) beyond the bytes its image attributes need.
_AFTER_PIXELS = 16 * 2**20


class _Reader:
    """A forward reader over a window of bytes.

    For bytes/memoryview input the window is the whole buffer and no method
    ever copies more than a wanted value. For streams the window is refilled
    from ``more`` and large values are passed over with ``skip_more``
    (a seek for files, read-and-discard for inflated data).
    """

    __slots__ = ("buf", "pos", "lim", "base", "_more", "_skip_more")

    def __init__(
        self,
        buf: bytes | memoryview,
        more: Callable[[int], bytes] | None = None,
        skip_more: Callable[[int], int] | None = None,
    ) -> None:
        self.buf = buf
        self.pos = 0
        self.lim = len(buf)
        self.base = 0
        self._more = more
        self._skip_more = skip_more

    def tell(self) -> int:
        return self.base + self.pos

    def ensure(self, n: int) -> bool:
        """Make n bytes available at pos; False when the data ends first
        (what there is stays in the window for inspection)."""
        if self.pos + n <= self.lim:
            return True
        if self._more is None:
            return False
        parts = [bytes(self.buf[self.pos : self.lim])]
        have = len(parts[0])
        eof = False
        while have < n:
            chunk = self._more(max(n - have, _CHUNK))
            if not chunk:
                eof = True
                break
            parts.append(chunk)
            have += len(chunk)
        self.base += self.pos
        self.buf = b"".join(parts)
        self.pos = 0
        self.lim = have
        return not eof

    def need(self, n: int) -> int:
        """Consume n bytes; return their index in ``self.buf``."""
        p = self.pos
        if p + n <= self.lim:
            self.pos = p + n
            return p
        if not self.ensure(n):
            raise _Truncated
        self.pos = n
        return 0

    def skip(self, n: int) -> None:
        q = self.pos + n
        if q <= self.lim:
            self.pos = q
            return
        if self._skip_more is None:
            raise _Truncated
        n -= self.lim - self.pos
        self.base += self.lim
        self.buf = b""
        self.pos = self.lim = 0
        if self._skip_more(n) < n:
            raise _Truncated
        self.base += n

    def at_end(self) -> bool:
        if self.pos < self.lim:
            return False
        if self._more is None:
            return True
        chunk = self._more(_CHUNK)
        if not chunk:
            return True
        self.base += self.lim
        self.buf = chunk
        self.pos = 0
        self.lim = len(chunk)
        return False

    def rest_is_zero(self) -> bool:
        """Consume the rest; True when it is all NUL (trailing padding that
        some writers leave after the last element)."""
        while not self.at_end():
            if any(self.buf[self.pos : self.lim]):
                return False
            self.pos = self.lim
        return True

    def chunks(self) -> Iterator[bytes]:
        """The rest as chunks (feeds the inflater). Copies, in small pieces:
        a lingering slice of a BytesIO buffer would keep it from resizing."""
        while self.pos < self.lim:
            end = min(self.pos + _CHUNK, self.lim)
            chunk = bytes(self.buf[self.pos : end])
            self.pos = end
            yield chunk
        if self._more is not None:
            while chunk := self._more(_CHUNK):
                yield chunk


class _Inflater:
    """Raw-deflate (PS3.5 A.5) decompression on demand, never whole, within
    the limits of the module doc (InvalidInstance past them)."""

    def __init__(self, chunks: Iterator[bytes], max_inflated: int) -> None:
        self._z = zlib.decompressobj(-zlib.MAX_WBITS)
        self._chunks = chunks
        self._total = 0
        self._fed = 0
        self._limit = max_inflated
        self._over = (f"deflated dataset inflates beyond the {max_inflated // 2**20} MiB limit",
                      Status.OUT_OF_RESOURCES)

    def cap(self, limit: int, reason: str) -> None:
        """Lower the limit once the dataset itself says how big it can be."""
        if limit < self._limit:
            self._limit = limit
            self._over = (reason, Status.CANNOT_DECODE_DATA_SET)

    def read(self, n: int) -> bytes:
        z = self._z
        out = b""
        while not out and not z.eof:
            data = z.unconsumed_tail
            if not data:
                nxt = next(self._chunks, None)
                if nxt is None:
                    # Input ended before the deflate end marker: even if the
                    # dataset happens to look complete, the transfer was cut.
                    raise _Truncated
                data = nxt
                self._fed += len(nxt)
            out = z.decompress(data, n)
        self._total += len(out)
        if self._total > self._limit:
            raise InvalidInstance(*self._over)
        if self._total > _RATIO_GRACE and self._total > MAX_INFLATE_RATIO * self._fed:
            raise InvalidInstance(f"deflated dataset inflates more than {MAX_INFLATE_RATIO}:1")
        return out

    def skip(self, n: int) -> int:
        done = 0
        while done < n:
            out = self.read(min(n - done, _SKIP_CHUNK))
            if not out:
                break
            done += len(out)
        return done


class _InflatedStream(io.RawIOBase):
    """open_inflated's stream: the errors of the inflater as InvalidInstance."""

    def __init__(self, inflater: _Inflater) -> None:
        super().__init__()
        self._inflater = inflater
        self._pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        with memoryview(buffer) as view:
            if not self._pending:
                try:
                    self._pending = self._inflater.read(len(view))
                except _Truncated as exc:
                    raise InvalidInstance("deflated dataset is truncated") from exc
                except zlib.error as exc:
                    raise InvalidInstance("deflated dataset does not inflate") from exc
            n = min(len(view), len(self._pending))
            view[:n] = self._pending[:n]
            self._pending = self._pending[n:]
            return n


def open_inflated(f: BinaryIO, *, max_inflated: int = DEFAULT_MAX_INFLATED) -> BinaryIO:
    """The dataset of a deflated transfer syntax, inflated as it is read from
    ``f`` (positioned where the deflated bytes start): a forward-only binary
    stream holding 64 KiB at a time, under the same limits as ingest (an
    InvalidInstance from ``read`` past them, or when the deflate stream is cut
    short)."""
    read = f.read
    inflater = _Inflater(iter(lambda: read(_CHUNK), b""), max_inflated)
    return io.BufferedReader(_InflatedStream(inflater), _CHUNK)


def _stream_reader(f: BinaryIO) -> _Reader:
    read = f.read
    try:
        seekable = f.seekable()
    except (AttributeError, OSError):
        seekable = False
    if seekable:
        start = f.tell()
        end = f.seek(0, os.SEEK_END)
        f.seek(start)

        def skip_more(n: int) -> int:
            pos = f.tell()
            target = min(pos + n, end)
            f.seek(target)
            return target - pos

    else:

        def skip_more(n: int) -> int:
            done = 0
            while done < n:
                chunk = read(min(n - done, _SKIP_CHUNK))
                if not chunk:
                    break
                done += len(chunk)
            return done

    return _Reader(b"", read, skip_more)


@contextmanager
def _source(data: bytes | bytearray | memoryview | BinaryIO) -> Iterator[_Reader]:
    """A reader over the input from its current position. Buffers are used
    in place (BytesIO too, via getbuffer); a stream's position is restored
    afterwards so the caller can hand the same object on to storage."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        with memoryview(data) as view:
            if view.format != "B" or view.ndim != 1:
                with view.cast("B") as flat:
                    yield _Reader(flat)
            else:
                yield _Reader(view)
        return
    if isinstance(data, io.BytesIO):
        pos = data.tell()
        with data.getbuffer() as whole, whole[pos:] as mv:
            yield _Reader(mv)
        return
    if not hasattr(data, "read"):
        raise TypeError("expected bytes, memoryview or a binary stream")
    seekable = getattr(data, "seekable", None)
    start = data.tell() if seekable is not None and seekable() else None
    try:
        yield _stream_reader(data)
    finally:
        if start is not None:
            data.seek(start)


# --------------------------------------------------------------------------
# Element walking

_IMPL = {True: struct.Struct("<HHL"), False: struct.Struct(">HHL")}
_EXPL = {True: struct.Struct("<HH2sH"), False: struct.Struct(">HH2sH")}
_UL = {True: struct.Struct("<L"), False: struct.Struct(">L")}
_US = {True: struct.Struct("<H"), False: struct.Struct(">H")}

_UNDEFINED = 0xFFFFFFFF
_ITEM = 0xFFFEE000
_ITEM_END = 0xFFFEE00D
_SEQ_END = 0xFFFEE0DD
_PIXEL_TAGS = frozenset({0x7FE00010, 0x7FE00008, 0x7FE00009})
_MAX_DEPTH = 32
# No wanted element is legitimately bigger (LO is 64 chars, PN 64 per group);
# a larger one is skipped instead of copied.
_MAX_WANTED = 64 * 1024

_SPECIFIC_CHARACTER_SET = 0x00080005
_SOP_CLASS = 0x00080016
_SOP_INSTANCE = 0x00080018
_STUDY_UID = 0x0020000D
_SERIES_UID = 0x0020000E
_SAMPLES_PER_PIXEL = 0x00280002
_PHOTOMETRIC = 0x00280004
_FRAMES = 0x00280008
_ROWS = 0x00280010
_COLUMNS = 0x00280011
_BITS_ALLOCATED = 0x00280100
_WANTED = frozenset(
    {
        _SPECIFIC_CHARACTER_SET,
        _SOP_CLASS,
        _SOP_INSTANCE,
        0x00080020,  # Study Date
        0x00080021,  # Series Date
        0x00080030,  # Study Time
        0x00080031,  # Series Time
        0x00080050,  # Accession Number
        0x00080060,  # Modality
        0x00080090,  # Referring Physician's Name
        0x00081030,  # Study Description
        0x0008103E,  # Series Description
        0x00100010,  # Patient's Name
        0x00100020,  # Patient ID
        0x00100030,  # Patient's Birth Date
        0x00100040,  # Patient's Sex
        0x00180015,  # Body Part Examined
        _STUDY_UID,
        _SERIES_UID,
        0x00200010,  # Study ID
        0x00200011,  # Series Number
        0x00200013,  # Instance Number
        _SAMPLES_PER_PIXEL,
        _PHOTOMETRIC,
        _FRAMES,
        _ROWS,
        _COLUMNS,
        _BITS_ALLOCATED,
    }
)


def _is_vr(vr: bytes) -> bool:
    return 0x40 < vr[0] < 0x5B and 0x40 < vr[1] < 0x5B


def _walk_top(
    r: _Reader, implicit: bool, little: bool, on_pixels: Callable[[dict[int, bytes], int, int], None] | None = None
) -> tuple[dict[int, bytes], bool, int]:
    """Walk a top-level dataset to its end.

    Returns (wanted tag -> value bytes, has pixel data, offset after any
    leading group 0002 elements relative to the start). ``on_pixels(values,
    length, position)`` sees a top-level pixel data element of defined length
    before its value is passed over.
    """
    impl_unpack = _IMPL[little].unpack_from
    expl_unpack = _EXPL[little].unpack_from
    ul_unpack = _UL[little].unpack_from
    wanted = _WANTED
    values: dict[int, bytes] = {}
    has_pixels = False
    start = r.tell()
    group2_end = 0
    leading = True
    while True:
        p = r.pos
        if p + 8 > r.lim:  # the window is exhausted: end, refill or truncation
            if r.at_end():
                break
            if not r.ensure(8):
                if r.rest_is_zero():
                    break
                raise _Truncated
            p = r.pos
        buf = r.buf
        r.pos = p + 8
        if implicit:
            group, elem, length = impl_unpack(buf, p)
            vr = b""
        else:
            group, elem, vr, length = expl_unpack(buf, p)
        if not group and not elem and not length and vr in (b"", b"\0\0"):
            # An all-NUL header: trailing padding some writers leave behind.
            r.pos = p
            if r.rest_is_zero():
                break
            raise _Malformed("malformed element header")
        if leading:
            if group == 0x0002:
                # Group 0002 does not belong in a dataset, but some SCUs send
                # it, encoded either way; take each element as it comes.
                if _is_vr(bytes(buf[p + 4 : p + 6])):
                    group, elem, vr, length = _EXPL[little].unpack_from(buf, p)
                else:
                    group, elem, length = impl_unpack(buf, p)
                    vr = b""
            else:
                leading = False
                # A lying transfer syntax shows on the first header, where
                # the VR position is unambiguous (pydicom uses the same test).
                looks_explicit = _is_vr(bytes(buf[p + 4 : p + 6]))
                if implicit and looks_explicit:
                    raise _Malformed("dataset is explicit VR but the transfer syntax says implicit VR")
                if not implicit and not looks_explicit:
                    raise _Malformed("dataset is implicit VR but the transfer syntax says explicit VR")
        if vr:
            if vr in _VR32:
                q = r.need(4)
                length = ul_unpack(r.buf, q)[0]
            elif vr not in _VR16 and not _is_vr(vr):
                raise _Malformed("invalid VR in dataset")
        if group == 0xFFFE:
            raise _Malformed("item tag at dataset level")
        tag = group << 16 | elem
        if length == _UNDEFINED:
            if vr and vr not in (b"SQ", b"UN", b"OB", b"OW"):
                raise _Malformed("undefined length on a VR that does not allow it")
            if tag in _PIXEL_TAGS:
                has_pixels = True
            # UN of undefined length is implicit VR little endian inside (PS3.5 6.2.2).
            if vr == b"UN":
                _skip_items(r, True, True, 1)
            else:
                _skip_items(r, not vr, little, 1)
        elif tag in wanted and length <= _MAX_WANTED:
            q = r.need(length)
            if tag not in values:
                values[tag] = bytes(r.buf[q : q + length])
        else:
            if tag in _PIXEL_TAGS:
                has_pixels = True
                if on_pixels is not None:
                    on_pixels(values, length, r.tell())
            q = r.pos + length
            if q <= r.lim:
                r.pos = q
            else:
                r.skip(length)
        if leading:
            group2_end = r.tell() - start
    return values, has_pixels, group2_end


def _skip_items(r: _Reader, implicit: bool, little: bool, depth: int) -> None:
    """Pass over the items of an undefined-length sequence (or encapsulated
    pixel data fragments) up to and including the sequence delimiter."""
    if depth > _MAX_DEPTH:
        raise _Malformed("sequences nested too deep")
    unpack = _IMPL[little].unpack_from
    while True:
        q = r.need(8)
        group, elem, length = unpack(r.buf, q)
        tag = group << 16 | elem
        if tag == _SEQ_END:
            return
        if tag != _ITEM:
            raise _Malformed("expected an item in a sequence")
        if length == _UNDEFINED:
            _skip_item_dataset(r, implicit, little, depth + 1)
        else:
            r.skip(length)


def _skip_item_dataset(r: _Reader, implicit: bool, little: bool, depth: int) -> None:
    """Pass over an undefined-length item's dataset up to its delimiter."""
    if depth > _MAX_DEPTH:
        raise _Malformed("sequences nested too deep")
    impl_unpack = _IMPL[little].unpack_from
    expl_unpack = _EXPL[little].unpack_from
    ul_unpack = _UL[little].unpack_from
    while True:
        p = r.need(8)
        buf = r.buf
        elem_implicit = implicit
        if implicit:
            group, elem, length = impl_unpack(buf, p)
            vr = b""
        else:
            group, elem, vr, length = expl_unpack(buf, p)
            if group == 0xFFFE:
                group, elem, length = impl_unpack(buf, p)
            elif vr in _VR32:
                q = r.need(4)
                length = ul_unpack(r.buf, q)[0]
            elif not _is_vr(vr):
                # Some writers switch to implicit VR inside sequences
                # (pydicom issues 1035/1067); follow them rather than fail.
                group, elem, length = impl_unpack(buf, p)
                vr = b""
                elem_implicit = True
        tag = group << 16 | elem
        if tag == _ITEM_END:
            return
        if length == _UNDEFINED:
            if vr == b"UN":
                _skip_items(r, True, True, depth + 1)
            else:
                _skip_items(r, elem_implicit, little, depth + 1)
        else:
            r.skip(length)


# --------------------------------------------------------------------------
# Text decoding


def _codec(name: str) -> str:
    return codecs.lookup(name).name


_DEFAULT = _codec("latin_1")
_GUESSES = ("utf-8", "gb18030")
# Python strips these escape sequences itself; for all others the sequence is
# removed before decoding (pydicom 3.0.2 leaves ESC $ ) A in IR 58 text).
_SELF_ESCAPING = frozenset({_codec("iso2022_jp"), _codec("iso2022_jp_2")})
_STANDALONE = frozenset({_codec("utf_8"), _codec("gb18030"), _codec("gbk")})
_PN_DELIMS = b"^=\\"
_TEXT_DELIMS = b"\\"


def _norm_term(term: str) -> str:
    return re.sub(r"[\s_-]", "", term.upper())


_TERMS: dict[str, str] = {_norm_term(k): _codec(v) for k, v in python_encoding.items() if k}
_TERMS.update(
    {
        "UTF8": "utf-8",
        # Not defined terms, but what Chinese equipment writes; GB18030 is a
        # superset of both, so decoding with it never loses characters.
        "GB2312": "gb18030",
        "ISO2022GB2312": "gb18030",
    }
)
_ESCAPES = {k: _codec(v) for k, v in CODES_TO_ENCODINGS.items()}


@dataclass(frozen=True, slots=True)
class _Charset:
    codecs: tuple[str, ...]  # first one for text without escape sequences
    guess: bool  # no real character set declared: guess for non-ASCII bytes


_DEFAULT_TERMS = frozenset({"", "ISOIR6", "ISO2022IR6"})


@lru_cache(maxsize=256)
def _charset(raw: bytes | None) -> _Charset:
    if not raw:
        return _Charset((_DEFAULT,), True)
    terms = [_norm_term(t) for t in raw.decode("latin_1").split("\\")]
    resolved = [_DEFAULT if t in _DEFAULT_TERMS else _TERMS.get(t) for t in terms]
    for codec in resolved:
        if codec in _STANDALONE:
            # UTF-8/GB18030/GBK cannot take part in code extension (PS3.3
            # C.12.1.1.2); a dataset that lists one with others means it.
            return _Charset((codec,), False)
    guess = terms[0] in _DEFAULT_TERMS or resolved[0] is None
    return _Charset((resolved[0] or _DEFAULT, *(c for c in resolved[1:] if c)), guess)


def _decode(raw: bytes, cs: _Charset, delims: bytes) -> str:
    if b"\x1b" not in raw:
        if raw.isascii():
            return raw.decode("ascii")
        if cs.guess:
            for codec in _GUESSES:
                try:
                    return raw.decode(codec)
                except UnicodeDecodeError:
                    pass
        return raw.decode(cs.codecs[0], "replace")
    # ISO 2022 code extension: each escape sequence starts a fragment in the
    # designated character set; a delimiter resets to the first one (PS3.5
    # 6.1.2.5.3), so only text up to the first delimiter uses the new set.
    parts: list[str] = []
    first = cs.codecs[0]
    for frag in re.findall(rb"^[^\x1b]+|\x1b[^\x1b]*", raw):
        if not frag.startswith(b"\x1b"):
            parts.append(frag.decode(first, "replace"))
            continue
        seq_len = 4 if frag.startswith((b"\x1b$(", b"\x1b$)")) else 3
        designated = _ESCAPES.get(frag[:seq_len])
        if designated is None:
            parts.append(frag.decode(first, "replace"))
            continue
        if designated in _SELF_ESCAPING:
            parts.append(frag.decode(designated, "replace"))
            continue
        body = frag[seq_len:]
        cut = next((i for i, b in enumerate(body) if b in delims), len(body))
        parts.append(body[:cut].decode(designated, "replace"))
        parts.append(body[cut:].decode(first, "replace"))
    return "".join(parts)


def _text(values: dict[int, bytes], tag: int, cs: _Charset) -> str:
    raw = values.get(tag)
    if not raw:
        return ""
    return _decode(raw, cs, _TEXT_DELIMS).strip(" \0")


def _ascii(values: dict[int, bytes], tag: int) -> str:
    raw = values.get(tag)
    if not raw:
        return ""
    return raw.decode("ascii", "replace").strip(" \0")


def _int(values: dict[int, bytes], tag: int) -> int | None:
    text = _ascii(values, tag)
    if not text:
        return None
    try:
        number = int(text)
    except ValueError:
        try:
            real = float(text)  # some writers put "1.0" in IS
        except ValueError:
            return None
        if not real.is_integer():
            return None
        number = int(real)
    # IS is a signed 32-bit range; anything else would not fit the index.
    return number if -(2**31) <= number < 2**31 else None


_DA_RE = re.compile(r"\d{8}")
_DA_LEGACY_RE = re.compile(r"(\d{4})[.\-/](\d{2})[.\-/](\d{2})")
_TM_RE = re.compile(r"\d{2}(?:\d{2}(?:\d{2}(?:\.\d{1,6})?)?)?")
_TM_LEGACY_RE = re.compile(r"(\d{2}):(\d{2})(?::(\d{2})(\.\d{1,6})?)?")


def _date(values: dict[int, bytes], tag: int) -> str:
    """YYYYMMDD; the pre-1993 "YYYY.MM.DD" (and dashed) form is converted
    and anything else (ranges, garbage) is dropped, so the value sorts and
    fits an 8-character column."""
    text = _ascii(values, tag)
    if _DA_RE.fullmatch(text):
        return text
    legacy = _DA_LEGACY_RE.fullmatch(text)
    return "".join(legacy.groups()) if legacy else ""


def _time(values: dict[int, bytes], tag: int) -> str:
    """HH[MM[SS[.F{1,6}]]]; "HH:MM:SS" is converted, anything else dropped."""
    text = _ascii(values, tag)
    if _TM_RE.fullmatch(text):
        return text
    legacy = _TM_LEGACY_RE.fullmatch(text)
    return "".join(g for g in legacy.groups() if g) if legacy else ""


def _code(values: dict[int, bytes], tag: int) -> str:
    # CS is at most 16 characters; longer junk is cut to what the index holds.
    return _ascii(values, tag)[:16]


def _us(values: dict[int, bytes], tag: int, little: bool) -> int | None:
    raw = values.get(tag)
    if raw is None or len(raw) != 2:
        return None
    value: int = _US[little].unpack(raw)[0]
    return value


_CJK_RE = re.compile(
    "[\u1100-\u11ff\u3040-\u30ff\u3130-\u318f\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff"
    "\uac00-\ud7af\uf900-\ufaff\uff65-\uff9f\u00b7\u30fb\U00020000-\U0003ffff]+"
)


def _render_group(group: str) -> str:
    components = [c.strip() for c in group.split("^")]
    filled = [c for c in components if c]
    if not filled:
        return ""
    if all(_CJK_RE.fullmatch(c) for c in filled):
        return "".join(filled)
    return "^".join(components).rstrip("^")


def display_person_name(pn: str) -> str:
    """The display form of a decoded PN value (rule in the module doc)."""
    groups = pn.split("\\", 1)[0].split("=")
    alphabetic = groups[0]
    ideographic = groups[1] if len(groups) > 1 else ""
    phonetic = groups[2] if len(groups) > 2 else ""
    for group in (ideographic, alphabetic, phonetic):
        shown = _render_group(group)
        if shown:
            return shown
    return ""


def _person_name(values: dict[int, bytes], tag: int, cs: _Charset) -> str:
    raw = values.get(tag)
    if not raw:
        return ""
    return _decode(raw, cs, _PN_DELIMS).strip(" \0").rstrip("=")


# --------------------------------------------------------------------------
# Public readers


def transfer_syntax_encoding(ts: str) -> tuple[bool, bool, bool]:
    """(implicit VR, little endian, deflated) for a transfer syntax UID.
    Every other (compressed or private) syntax encodes the dataset as
    explicit VR little endian."""
    if ts == IMPLICIT_VR_LITTLE_ENDIAN:
        return True, True, False
    if ts == EXPLICIT_VR_BIG_ENDIAN:
        return False, False, False
    return False, True, ts in _DEFLATED_TS


def _clean_uid(raw: bytes | None) -> str | None:
    if raw is None:
        return None
    # Non-ASCII bytes become U+FFFD, which is_valid_uid and is_storable_uid then refuse.
    return raw.rstrip(b"\0 ").decode("ascii", "replace")


_REQUIRED = (
    (_SOP_CLASS, "SOP Class UID"),
    (_SOP_INSTANCE, "SOP Instance UID"),
    (_STUDY_UID, "Study Instance UID"),
    (_SERIES_UID, "Series Instance UID"),
)


_NATIVE_TS = frozenset(
    {IMPLICIT_VR_LITTLE_ENDIAN, EXPLICIT_VR_LITTLE_ENDIAN, EXPLICIT_VR_BIG_ENDIAN,
     str(pydicom_uid.DeflatedExplicitVRLittleEndian)}
)
_YBR_422 = frozenset({"YBR_FULL_422", "YBR_PARTIAL_422"})


def native_pixel_bits(
    *, rows: int, columns: int, bits_allocated: int, samples_per_pixel: int = 1, frames: int = 1,
    photometric: str = "",
) -> int:
    """The bits of native (uncompressed) pixel data that these image
    attributes need: 1-bit frames are packed back to back (PS3.5 8.1.1), and
    YBR_*_422 carries two luminance samples per chrominance pair (PS3.3
    C.7.6.3.1.2)."""
    samples = rows * columns * samples_per_pixel
    if photometric in _YBR_422 and samples_per_pixel == 3:
        samples = rows * columns * 2
    return samples * max(frames, 1) * bits_allocated


def native_pixel_bytes(
    *, rows: int, columns: int, bits_allocated: int, samples_per_pixel: int = 1, frames: int = 1,
    photometric: str = "",
) -> int:
    """``native_pixel_bits`` in bytes, before the even-length padding byte."""
    bits = native_pixel_bits(rows=rows, columns=columns, bits_allocated=bits_allocated,
                             samples_per_pixel=samples_per_pixel, frames=frames, photometric=photometric)
    return (bits + 7) // 8


def _expected_pixel_bytes(values: dict[int, bytes], little: bool) -> int | None:
    rows, columns = _us(values, _ROWS, little), _us(values, _COLUMNS, little)
    bits = _us(values, _BITS_ALLOCATED, little)
    if not rows or not columns or not bits:
        return None  # not an image the walker can size: nothing to check
    frames = _int(values, _FRAMES)
    return native_pixel_bytes(
        rows=rows, columns=columns, bits_allocated=bits, samples_per_pixel=_us(values, _SAMPLES_PER_PIXEL, little) or 1,
        frames=frames if frames and frames > 0 else 1, photometric=_code(values, _PHOTOMETRIC),
    )


def _read_dataset(r: _Reader, ts: str, max_inflated: int) -> tuple[dict[int, bytes], bool, int, bool]:
    implicit, little, deflated = transfer_syntax_encoding(ts)
    inflater: _Inflater | None = None
    if deflated:
        inflater = _Inflater(r.chunks(), max_inflated)
        r = _Reader(b"", inflater.read, inflater.skip)

    def on_pixels(values: dict[int, bytes], length: int, at: int) -> None:
        # Native pixel data must hold the whole image (module doc,
        # "Truncation"); in a deflated dataset it also bounds the inflation.
        expected = _expected_pixel_bytes(values, little)
        if expected is None:
            return
        if length < expected:
            raise _Malformed("pixel data is truncated: shorter than its image attributes need")
        if inflater is not None:
            allowed = at + expected + 1 + _AFTER_PIXELS
            reason = "deflated dataset inflates beyond what its image attributes need"
            if at + length > allowed:
                raise InvalidInstance(reason)
            inflater.cap(allowed, reason)

    if r.at_end():
        raise _Malformed("empty dataset")
    values, has_pixels, group2_end = _walk_top(r, implicit, little, on_pixels if ts in _NATIVE_TS else None)
    if group2_end and deflated:
        raise _Malformed("group 0002 elements inside a deflated dataset")
    return values, has_pixels, group2_end, little


def _build_info(
    values: dict[int, bytes],
    has_pixels: bool,
    little: bool,
    ts: str,
    dataset_offset: int,
    expected_sop_class_uid: str | None,
    expected_sop_instance_uid: str | None,
) -> InstanceInfo:
    uids: dict[int, str] = {}
    for tag, name in _REQUIRED:
        uid = _clean_uid(values.get(tag))
        if not uid:
            raise InvalidInstance(f"missing {name}")
        if not is_storable_uid(uid):
            raise InvalidInstance(f"malformed {name}")
        uids[tag] = uid
    if expected_sop_class_uid is not None and uids[_SOP_CLASS] != expected_sop_class_uid:
        raise InvalidInstance(
            "SOP Class UID in the dataset does not match the request",
            Status.DATA_SET_DOES_NOT_MATCH_SOP_CLASS,
        )
    if expected_sop_instance_uid is not None and uids[_SOP_INSTANCE] != expected_sop_instance_uid:
        raise InvalidInstance(
            "SOP Instance UID in the dataset does not match the request",
            Status.DATA_SET_DOES_NOT_MATCH_SOP_CLASS,
        )
    raw_cs = values.get(_SPECIFIC_CHARACTER_SET)
    cs = _charset(raw_cs.rstrip(b" \0") if raw_cs else None)
    name_raw = _person_name(values, 0x00100010, cs)
    frames = _int(values, _FRAMES)
    if frames is None or frames < 1:
        frames = 1 if has_pixels else 0
    return InstanceInfo(
        sop_class_uid=uids[_SOP_CLASS],
        sop_instance_uid=uids[_SOP_INSTANCE],
        study_uid=uids[_STUDY_UID],
        series_uid=uids[_SERIES_UID],
        transfer_syntax_uid=ts,
        patient_id=_text(values, 0x00100020, cs),
        patient_name=display_person_name(name_raw),
        patient_name_raw=name_raw,
        patient_birth_date=_date(values, 0x00100030),
        patient_sex=_code(values, 0x00100040),
        study_date=_date(values, 0x00080020),
        study_time=_time(values, 0x00080030),
        study_description=_text(values, 0x00081030, cs),
        accession_number=_text(values, 0x00080050, cs)[:64],
        study_id=_text(values, 0x00200010, cs),
        referring_physician=display_person_name(_person_name(values, 0x00080090, cs)),
        series_number=_int(values, 0x00200011),
        series_description=_text(values, 0x0008103E, cs),
        modality=_code(values, 0x00080060),
        body_part=_code(values, 0x00180015),
        series_date=_date(values, 0x00080021),
        series_time=_time(values, 0x00080031),
        instance_number=_int(values, 0x00200013),
        number_of_frames=frames,
        rows=_us(values, _ROWS, little),
        columns=_us(values, _COLUMNS, little),
        specific_character_set=_ascii(values, _SPECIFIC_CHARACTER_SET),
        kind=kind_of_sop_class(uids[_SOP_CLASS]),
        dataset_offset=dataset_offset,
    )


_PARSE_ERRORS = (_Malformed, struct.error, zlib.error, ValueError, OverflowError, IndexError)


def _reason(exc: Exception) -> str:
    if isinstance(exc, _Malformed):
        return str(exc)
    if isinstance(exc, zlib.error):
        return "deflated dataset does not inflate"
    return "malformed dataset"


def read_dataset_info(
    data: bytes | bytearray | memoryview | BinaryIO,
    transfer_syntax_uid: str,
    *,
    expected_sop_class_uid: str | None = None,
    expected_sop_instance_uid: str | None = None,
    max_inflated: int = DEFAULT_MAX_INFLATED,
) -> InstanceInfo:
    """Index fields of a dataset without file meta, encoded in
    ``transfer_syntax_uid`` (as received by C-STORE).

    A stream is read from its current position, which is restored. With
    ``expected_*`` (the C-STORE request's Affected SOP Class/Instance UID) a
    mismatch raises InvalidInstance with status 0xA900. ``max_inflated`` is
    the most a deflated dataset may inflate to (0xA700 beyond).
    """
    ts = transfer_syntax_uid.rstrip("\0 ") if isinstance(transfer_syntax_uid, str) else ""
    if not is_valid_uid(ts):
        raise InvalidInstance("malformed Transfer Syntax UID")
    try:
        with _source(data) as r:
            values, has_pixels, group2_end, little = _read_dataset(r, ts, max_inflated)
    except _Truncated as exc:
        raise InvalidInstance("dataset is truncated") from exc
    except InvalidInstance:
        raise
    except _PARSE_ERRORS as exc:
        raise InvalidInstance(_reason(exc)) from exc
    return _build_info(
        values, has_pixels, little, ts, group2_end, expected_sop_class_uid, expected_sop_instance_uid
    )


def _read_meta_ts(r: _Reader) -> str | None:
    """Consume group 0002 (explicit VR LE, tolerating implicit elements);
    return its Transfer Syntax UID."""
    ts: str | None = None
    while r.ensure(8):
        p = r.pos
        buf = r.buf
        group, elem, vr, length = _EXPL[True].unpack_from(buf, p)
        if group != 0x0002:
            break
        r.pos = p + 8
        if vr in _VR32:
            q = r.need(4)
            length = _UL[True].unpack_from(r.buf, q)[0]
        elif not _is_vr(vr):
            group, elem, length = _IMPL[True].unpack_from(buf, p)
        if length == _UNDEFINED:
            raise _Malformed("undefined length in file meta")
        if elem == 0x0010 and length <= 64:
            q = r.need(length)
            ts = _clean_uid(bytes(r.buf[q : q + length]))
        else:
            r.skip(length)
    return ts


def read_file_meta(f: BinaryIO) -> tuple[str, int]:
    """(Transfer Syntax UID, where the dataset starts) of a Part-10 file with
    file meta, such as a stored instance. ``f`` must be seekable and at the
    file's start; it is left where the dataset starts."""
    start = f.tell()
    r = _stream_reader(f)
    try:
        if not r.ensure(132) or bytes(r.buf[r.pos + 128 : r.pos + 132]) != b"DICM":
            raise _Malformed("not a DICOM file")
        r.skip(132)
        ts = _read_meta_ts(r)
    except _Truncated as exc:
        raise InvalidInstance("file is truncated") from exc
    except _PARSE_ERRORS as exc:
        raise InvalidInstance(_reason(exc)) from exc
    if ts is None or not is_valid_uid(ts):
        raise InvalidInstance("no usable Transfer Syntax UID in the file meta")
    offset = r.tell()
    f.seek(start + offset)
    return ts, offset


def read_file_info(
    path_or_file: str | os.PathLike[str] | BinaryIO | bytes | memoryview, *, max_inflated: int = DEFAULT_MAX_INFLATED
) -> InstanceInfo:
    """Index fields of a Part-10 file (a path, a binary stream or the bytes).

    Files without preamble, or without any file meta, are accepted when the
    dataset parses completely as implicit or explicit VR little endian and
    carries valid UIDs (what pydicom's force=True would try, minus the
    guesswork that yields half-read datasets); otherwise InvalidInstance.
    ``dataset_offset`` is where the dataset starts after the file meta.
    """
    if isinstance(path_or_file, (str, os.PathLike)):
        with open(path_or_file, "rb") as f:
            if os.fstat(f.fileno()).st_size <= _SKIP_CHUNK:
                # One read beats a reader that seeks for small files.
                return read_file_info(f.read(), max_inflated=max_inflated)
            return read_file_info(f, max_inflated=max_inflated)
    # Bytes with neither a preamble nor file meta that do not parse as a
    # dataset were never DICOM: "not a DICOM file", not "truncated".
    headerless = False
    try:
        with _source(path_or_file) as r:
            r.ensure(132)
            head = bytes(r.buf[r.pos : r.pos + 132])
            if len(head) == 132 and head[128:132] == b"DICM":
                r.skip(132)
                ts = _read_meta_ts(r)
            elif head[:2] == b"\x02\x00" and len(head) >= 6 and _is_vr(head[4:6]):
                ts = _read_meta_ts(r)  # file meta without the preamble
            else:
                ts = None
                headerless = True
            dataset_offset = r.tell()
            if ts is None:
                if not r.ensure(6):
                    raise _Malformed("not a DICOM file")
                first = bytes(r.buf[r.pos : r.pos + 6])
                if not _is_vr(first[4:6]):
                    ts = IMPLICIT_VR_LITTLE_ENDIAN
                elif first[0] == 0 and first[1] != 0:
                    # Groups of the first elements are small, so a zero first
                    # byte means the group was written big endian.
                    ts = EXPLICIT_VR_BIG_ENDIAN
                else:
                    ts = EXPLICIT_VR_LITTLE_ENDIAN
            elif not is_valid_uid(ts):
                raise _Malformed("malformed Transfer Syntax UID in file meta")
            values, has_pixels, group2_end, little = _read_dataset(r, ts, max_inflated)
    except _Truncated as exc:
        raise InvalidInstance("not a DICOM file" if headerless else "file is truncated") from exc
    except InvalidInstance:
        raise
    except _PARSE_ERRORS as exc:
        raise InvalidInstance("not a DICOM file" if headerless else _reason(exc)) from exc
    return _build_info(values, has_pixels, little, ts, dataset_offset + group2_end, None, None)
