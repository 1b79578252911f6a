"""DIMSE messages (PS3.7): the command-set codec and the data the services
exchange with the provider.

Command sets are tiny, implicit VR little endian and all in group 0000, so
they are parsed and built by hand: only the fields this SCP acts on are
read (``Command``), and responses carry ascending tags (``build_response``).
pydicom decodes C-FIND identifiers and encodes the matches.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass
from typing import BinaryIO

from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filereader import read_dataset
from pydicom.filewriter import write_dataset

from .pdu import ProtocolError, ae_text, uid_text

__all__ = [
    "C_CANCEL_RQ",
    "C_ECHO_RQ",
    "C_FIND_RQ",
    "C_STORE_RQ",
    "Command",
    "ServiceFailure",
    "StoreRequest",
    "StoreResponse",
    "build_response",
    "decode_dataset",
    "encode_dataset",
]


class ServiceFailure(Exception):
    """Raised by ``Session.store`` or ``Session.find`` to answer with a failure status of the
    provider's choosing, with an Error Comment (LO, as for ``StoreResponse``: never patient data).

    This is how a provider maps its own errors to DIMSE statuses in one place; a status outside
    the failure category is answered as the provider's failure (0xC211 / 0xC311) instead.
    """

    def __init__(self, status: int, comment: str = "") -> None:
        super().__init__(f"0x{status:04x}")
        self.status = status
        self.comment = comment


@dataclass(frozen=True)
class StoreRequest:
    sop_class_uid: str
    sop_instance_uid: str
    transfer_syntax_uid: str
    message_id: int
    move_originator_ae: str | None


@dataclass(frozen=True)
class StoreResponse:
    """What ``Session.store`` may return instead of a bare status: the status
    and an Error Comment (0000,0902) telling the sender why it was refused.

    The comment is sent with a warning or failure only, as LO: at most 64
    characters of printable ASCII without backslash (others become '?').
    It must never carry patient data.
    """

    status: int
    error_comment: str = ""


C_STORE_RQ, C_FIND_RQ, C_ECHO_RQ, C_CANCEL_RQ = 0x0001, 0x0020, 0x0030, 0x0FFF
_NO_DATASET = 0x0101
_US = struct.Struct("<H")
_ELEMENT_HEADER = struct.Struct("<HHI")


class Command:
    """The handful of command-set fields this server acts on."""

    __slots__ = ("field", "message_id", "responded_to", "sop_class", "sop_instance",
                 "has_dataset", "priority", "move_originator_ae", "elements")

    def __init__(self, raw: bytes | bytearray) -> None:
        elements = _parse_command_elements(raw)
        if 0x0100 not in elements or 0x0800 not in elements:
            raise ProtocolError("command set lacks CommandField/CommandDataSetType",
                                 ProtocolError.INVALID_PARAM)
        self.field = _us_value(elements[0x0100])
        self.has_dataset = _us_value(elements[0x0800]) != _NO_DATASET
        self.message_id = _us_value(elements.get(0x0110, b"\0\0"))
        self.responded_to = _us_value(elements.get(0x0120, b"\0\0"))
        self.priority = _us_value(elements.get(0x0700, b"\0\0"))
        self.sop_class = uid_text(elements.get(0x0002, b""))
        self.sop_instance = uid_text(elements.get(0x1000, b""))
        originator = ae_text(elements.get(0x1030, b""))
        self.move_originator_ae = originator or None
        self.elements = elements  # the raw values, for the services that read more (N-ACTION: commitment.py)

    def us(self, element: int) -> int | None:
        """A US field of group 0000 (Status, Action/Event Type ID...), None when absent."""
        raw = self.elements.get(element)
        return None if raw is None else _us_value(raw)

    def uid(self, element: int) -> str:
        """A UI field of group 0000 (Requested SOP Class/Instance UID...), "" when absent."""
        return uid_text(self.elements.get(element, b""))


def _us_value(raw: bytes) -> int:
    if len(raw) != 2:
        raise ProtocolError("US command element is not 2 bytes", ProtocolError.INVALID_PARAM)
    value: int = _US.unpack(raw)[0]
    return value


def _parse_command_elements(raw: bytes | bytearray) -> dict[int, bytes]:
    elements: dict[int, bytes] = {}
    pos, end = 0, len(raw)
    while pos < end:
        if end - pos < 8:
            raise ProtocolError("truncated command element", ProtocolError.INVALID_PARAM)
        group, element, length = _ELEMENT_HEADER.unpack_from(raw, pos)
        pos += 8
        if group != 0 or pos + length > end:
            raise ProtocolError("malformed command set", ProtocolError.INVALID_PARAM)
        elements[element] = bytes(raw[pos:pos + length])
        pos += length
    return elements


def _ui(element: int, uid: str) -> bytes:
    value = uid.encode("ascii")
    if len(value) % 2:
        value += b"\x00"
    return _ELEMENT_HEADER.pack(0, element, len(value)) + value


def _us(element: int, value: int) -> bytes:
    return _ELEMENT_HEADER.pack(0, element, 2) + _US.pack(value)


def _lo(element: int, text: str) -> bytes:
    # LO: the default repertoire without backslash or control characters, 64 at most.
    value = "".join(c if " " <= c <= "~" and c != "\\" else "?" for c in text[:64]).rstrip().encode("ascii")
    if len(value) % 2:
        value += b" "
    return _ELEMENT_HEADER.pack(0, element, len(value)) + value


def build_response(command_field: int, responded_to: int, status: int, *,
                   sop_class: str = "", sop_instance: str = "", has_dataset: bool = False,
                   error_comment: str = "") -> bytes:
    """Encode a DIMSE response command set (implicit VR LE, ascending tags)."""
    parts = []
    if sop_class:
        parts.append(_ui(0x0002, sop_class))
    parts.append(_us(0x0100, command_field))
    parts.append(_us(0x0120, responded_to))
    parts.append(_us(0x0800, 0x0001 if has_dataset else _NO_DATASET))
    parts.append(_us(0x0900, status))
    if error_comment:
        parts.append(_lo(0x0902, error_comment))
    if sop_instance:
        parts.append(_ui(0x1000, sop_instance))
    body = b"".join(parts)
    return _ELEMENT_HEADER.pack(0, 0, 4) + struct.pack("<I", len(body)) + body

def decode_dataset(payload: memoryview | BinaryIO, implicit: bool, little: bool) -> Dataset:
    """A C-FIND identifier, as received, read by pydicom."""
    raw = bytes(payload) if isinstance(payload, memoryview) else payload.read()
    return read_dataset(io.BytesIO(raw), implicit, little)


def encode_dataset(ds: Dataset, implicit: bool, little: bool) -> bytes:
    """A C-FIND match in the context's (uncompressed) transfer syntax."""
    if not isinstance(ds, Dataset):
        raise TypeError("find() must yield pydicom Datasets")
    fp = DicomBytesIO()
    fp.is_implicit_VR = implicit
    fp.is_little_endian = little
    write_dataset(fp, ds)
    return fp.getvalue()
