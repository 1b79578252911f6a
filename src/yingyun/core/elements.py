"""Every element of a stored instance, read with bounded memory, for serving.

WADO-RS metadata, rendering, frames and bulk data read the stored Part-10
file, which may be large (a 2 GiB multi-frame) or hostile (a deflate bomb
stored before ingest refused them). pydicom's reader holds a deflated
dataset whole, and an undefined-length sequence whole; ``read_stored``
holds only:

* the values it keeps: at most ``max_value`` bytes each, all of them
  together (plus a per-element allowance) within ``max_header`` bytes, else
  InvalidInstance. A top-level value it does not keep (pixel data, binary
  values over ``max_bulk``, anything over ``max_value``) is recorded as a
  ``LargeValue`` with its position, for streaming later; a nested one is
  left out;
* for a deflated dataset, 64 KiB of inflated data at a time, under the ingest
  limits (core/dicom.py, "Deflated datasets"): a stored deflate bomb is
  refused after at most 16 MiB of inflation, whatever it would inflate to.

This is not core/dicom.py's walker: that one skims ~25 top-level tags of an
instance being received, in about 2 ms, and keeps nothing nested; this one
keeps every small value, nested sequences included, as a pydicom Dataset
whose values pydicom itself decodes (character sets, ambiguous VRs, DICOM
JSON), so what is served is what pydicom would make of the file.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

import numpy as np
from pydicom.charset import convert_encodings
from pydicom.datadict import dictionary_VR
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.tag import BaseTag
from pydicom.uid import UID
from pydicom.values import convert_string

from .dicom import DEFAULT_MAX_INFLATED, InvalidInstance, open_inflated, read_file_meta, transfer_syntax_encoding

__all__ = ["BULK_VRS", "PIXEL_TAGS", "LargeValue", "StoredInstance", "native_frames", "read_stored", "value_chunks"]

PIXEL_TAGS = frozenset({0x7FE00010, 0x7FE00008, 0x7FE00009})
BULK_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "UN"})
_VR32 = frozenset({b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"})
_UNDEFINED = 0xFFFFFFFF
_ITEM, _ITEM_END, _SEQ_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
_MAX_DEPTH = 32
# What a kept element costs beyond its value (the objects pydicom makes).
_ELEMENT_COST = 128
_CHUNK = 1 << 20


@dataclass(frozen=True)
class LargeValue:
    """A top-level value that was not read: where it is in the dataset."""

    tag: int
    vr: str
    offset: int  # of the value, from the dataset's first byte
    length: int | None  # bytes of the value; None: undefined length not walked (stop_at_pixels)
    undefined_length: bool = False  # encapsulated: items up to a sequence delimiter


@dataclass
class StoredInstance:
    transfer_syntax: UID
    dataset: Dataset
    large: dict[int, LargeValue] = field(default_factory=dict)
    dataset_offset: int = 0  # where the dataset starts in the file (offsets of LargeValue count from here)

    @property
    def deflated(self) -> bool:
        return transfer_syntax_encoding(self.transfer_syntax)[2]

    @property
    def pixels(self) -> LargeValue | None:
        return next((v for t, v in self.large.items() if t in PIXEL_TAGS), None)


class _Source:
    """Forward reading of a dataset's bytes: seeks over a file's large
    values, reads and discards an inflated stream's."""

    def __init__(self, f: BinaryIO, seekable: bool) -> None:
        self._f = f
        self._seekable = seekable
        self._start = f.tell() if seekable else 0
        self._pos = 0

    def tell(self) -> int:
        return self._pos

    def read(self, n: int) -> bytes:
        data = self._f.read(n)
        if len(data) != n:
            raise InvalidInstance("the stored dataset is truncated")
        self._pos += n
        return data

    def read_head(self) -> bytes:
        """Up to 8 bytes (fewer only at the end)."""
        data = self._f.read(8)
        self._pos += len(data)
        return data

    def skip(self, n: int) -> None:
        if self._seekable:
            self._f.seek(self._start + self._pos + n)
            self._pos += n
            return
        while n:
            self.read(min(n, _CHUNK))
            n -= min(n, _CHUNK)

    def seek_to(self, pos: int) -> None:
        """Forward only for an inflated stream."""
        if pos < self._pos and not self._seekable:
            raise ValueError("an inflated stream cannot go back")
        self.skip(pos - self._pos)


@dataclass
class _Walk:
    src: _Source
    implicit: bool
    little: bool
    max_value: int
    max_bulk: int
    budget: int
    large: dict[int, LargeValue]

    def spend(self, n: int) -> None:
        self.budget -= n + _ELEMENT_COST
        if self.budget < 0:
            raise InvalidInstance("the instance's attributes are too large to serve")

    def header(self, head: bytes, implicit: bool) -> tuple[int, str | None, int, bool]:
        """(tag, VR or None for implicit, length, implicit) of an element header."""
        e = "<" if self.little else ">"
        group, elem = struct.unpack(e + "HH", head[:4])
        if implicit or group == 0xFFFE:
            return group << 16 | elem, None, struct.unpack(e + "L", head[4:])[0], True
        vr = head[4:6]
        if vr in _VR32:
            return group << 16 | elem, vr.decode(), struct.unpack(e + "L", self.src.read(4))[0], False
        if 0x40 < vr[0] < 0x5B and 0x40 < vr[1] < 0x5B:
            return group << 16 | elem, vr.decode(), struct.unpack(e + "H", head[6:])[0], False
        # Some writers switch to implicit VR inside sequences (pydicom issues
        # 1035/1067); follow them, as pydicom does.
        return group << 16 | elem, None, struct.unpack(e + "L", head[4:])[0], True

    def dataset(self, end: int | None, depth: int, encoding: str | list[str], *, top: bool = False,
                stop_at_pixels: bool = False) -> Dataset:
        """Elements up to ``end`` (a position), the item delimiter (None,
        nested) or the end of the data (top)."""
        if depth > _MAX_DEPTH:
            raise InvalidInstance("sequences nested too deep")
        src = self.src
        elements: dict[BaseTag, RawDataElement | DataElement] = {}
        implicit_seen = self.implicit
        while end is None or src.tell() < end:
            head = src.read_head()
            if top and len(head) < 8:
                if head.strip(b"\0"):
                    raise InvalidInstance("the stored dataset is truncated")
                break
            if len(head) < 8:
                raise InvalidInstance("the stored dataset is truncated")
            if top and not head.strip(b"\0"):
                break  # NUL padding after the last element, which ingest tolerates
            tag, vr, length, implicit = self.header(head, self.implicit)
            implicit_seen = implicit_seen or implicit
            if tag == _ITEM_END and not top:
                break
            if tag >> 16 == 0xFFFE:
                raise InvalidInstance("unexpected item tag in the stored dataset")
            value_at = src.tell()
            # Kept implicit VR values go to pydicom without a VR: it looks the
            # VR up and resolves the ambiguous ones (US or SS) from the dataset.
            raw_vr = vr
            if vr is None:
                vr = self._implicit_vr(tag)
            if top and tag in PIXEL_TAGS and stop_at_pixels:
                self.large[tag] = LargeValue(tag, vr, value_at, None if length == _UNDEFINED else length,
                                             length == _UNDEFINED)
                break
            if vr == "SQ" or (vr == "UN" and length == _UNDEFINED):
                # UN of undefined length is an implicit VR sequence (PS3.5 6.2.2).
                item_implicit = implicit or vr == "UN"
                seq = self.sequence(None if length == _UNDEFINED else value_at + length, depth, encoding,
                                    item_implicit)
                self.spend(0)
                elements[BaseTag(tag)] = DataElement(BaseTag(tag), "SQ", seq, value_at,
                                                     is_undefined_length=length == _UNDEFINED)
                continue
            if length == _UNDEFINED:  # encapsulated pixel data or a broken element: items to a delimiter
                walked = self.skip_fragments()
                if top:
                    self.large[tag] = LargeValue(tag, vr, value_at, walked, True)
                continue
            bulk = top and (tag in PIXEL_TAGS or (vr in BULK_VRS and length > self.max_bulk))
            if bulk or length > self.max_value:
                src.skip(length)
                if top:
                    self.large[tag] = LargeValue(tag, vr, value_at, length)
                continue
            self.spend(length)
            value = src.read(length)
            if tag == 0x00080005:
                encoding = convert_encodings(convert_string(value, self.little) or "")
            elements[BaseTag(tag)] = RawDataElement(BaseTag(tag), raw_vr, length, value, value_at, implicit,
                                                    self.little)
        ds = Dataset(elements, parent_encoding=encoding)
        ds.set_original_encoding(implicit_seen, self.little, encoding)
        return ds

    def sequence(self, end: int | None, depth: int, encoding: str | list[str], implicit: bool) -> Sequence:
        src = self.src
        items: list[Dataset] = []
        e = "<" if self.little else ">"
        while end is None or src.tell() < end:
            group, elem, length = struct.unpack(e + "HHL", src.read(8))
            tag = group << 16 | elem
            if tag == _SEQ_END:
                break
            if tag != _ITEM:
                raise InvalidInstance("expected an item in a sequence of the stored dataset")
            saved = self.implicit
            self.implicit = implicit
            try:
                item = self.dataset(None if length == _UNDEFINED else src.tell() + length, depth + 1, encoding)
            finally:
                self.implicit = saved
            item.is_undefined_length_sequence_item = length == _UNDEFINED
            items.append(item)
        seq = Sequence(items)
        seq.is_undefined_length = end is None
        return seq

    def skip_fragments(self) -> int:
        """Pass over items up to the sequence delimiter; their byte count."""
        src = self.src
        start = src.tell()
        e = "<" if self.little else ">"
        while True:
            group, elem, length = struct.unpack(e + "HHL", src.read(8))
            tag = group << 16 | elem
            if tag == _SEQ_END:
                return src.tell() - 8 - start
            if tag != _ITEM or length == _UNDEFINED:
                raise InvalidInstance("malformed encapsulated value in the stored dataset")
            src.skip(length)

    def _implicit_vr(self, tag: int) -> str:
        try:
            vr = dictionary_VR(tag)
        except KeyError:
            vr = "UN"
        if " or " in vr:  # ambiguous (US or SS, OB or OW): pydicom resolves the kept ones
            return "OW" if "OW" in vr else vr.split(" or ")[0]
        return vr


def read_stored(
    f: BinaryIO,
    *,
    max_value: int = 1 << 20,
    max_bulk: int = 1 << 20,
    max_header: int = 64 << 20,
    stop_at_pixels: bool = False,
    max_inflated: int = DEFAULT_MAX_INFLATED,
) -> StoredInstance:
    """The stored Part-10 file ``f`` (positioned at its start) as a bounded
    Dataset; see the module doc. ``stop_at_pixels`` ends at the top-level
    pixel data, leaving ``f`` positioned at its value (not for deflated
    files, whose stream is consumed), which is what rendering needs."""
    base = f.tell()
    ts_text, offset = read_file_meta(f)
    offset += base
    ts = UID(ts_text)
    implicit, little, deflated = transfer_syntax_encoding(ts)
    # read_file_meta left f at the dataset.
    stream: BinaryIO = open_inflated(f, max_inflated=max_inflated) if deflated else f
    walk = _Walk(_Source(stream, not deflated), implicit, little, max_value, max_bulk, max_header, {})
    ds = walk.dataset(None, 0, "iso8859", top=True, stop_at_pixels=stop_at_pixels)
    # What pydicom's reader would give, for code that asks the dataset.
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ts
    stored = StoredInstance(ts, ds, walk.large, offset)
    if stop_at_pixels and not deflated and stored.pixels is not None:
        f.seek(offset + stored.pixels.offset)
    return stored


def _reopen(f: BinaryIO, stored: StoredInstance, max_inflated: int) -> _Source:
    f.seek(stored.dataset_offset)
    if stored.deflated:
        return _Source(open_inflated(f, max_inflated=max_inflated), False)
    return _Source(f, True)


def value_chunks(f: BinaryIO, stored: StoredInstance, value: LargeValue, *, start: int = 0,
                 length: int | None = None, max_inflated: int = DEFAULT_MAX_INFLATED) -> Iterator[bytes]:
    """The bytes of a large value (from ``start`` within it, ``length`` of
    them or to its end), 1 MiB at a time, read again from ``f``: a seek for
    a stored file, inflation from the start for a deflated one."""
    total = value.length if value.length is not None else 0
    remaining = (total - start) if length is None else length
    src = _reopen(f, stored, max_inflated)
    src.seek_to(value.offset + start)
    while remaining > 0:
        n = min(remaining, _CHUNK)
        yield src.read(n)
        remaining -= n


def native_frames(f: BinaryIO, stored: StoredInstance, value: LargeValue, indexes: list[int], frame_bits: int, *,
                  max_inflated: int = DEFAULT_MAX_INFLATED) -> dict[int, bytes]:
    """Frames of native pixel data by index, ``frame_bits`` bits each (1-bit
    frames need not start on a byte: their bits are shifted into place). A
    deflated file is inflated once, up to the last frame asked for."""
    src = _reopen(f, stored, max_inflated)
    out: dict[int, bytes] = {}
    for index in sorted(set(indexes)):
        first, shift = divmod(index * frame_bits, 8)
        src.seek_to(value.offset + first)
        data = src.read((shift + frame_bits + 7) // 8)
        if shift or frame_bits % 8:
            bits = np.unpackbits(np.frombuffer(data, np.uint8), bitorder="little")[shift : shift + frame_bits]
            data = np.packbits(bits, bitorder="little").tobytes()
        out[index] = data
    return out
