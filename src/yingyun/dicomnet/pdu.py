"""PDU codecs of the DICOM upper layer (PS3.8 section 9): A-ASSOCIATE-RQ
parsing, the A-ASSOCIATE-AC/RJ, A-RELEASE-RP and A-ABORT encoders and the
P-DATA-TF framing. Pure functions over bytes: no sockets, no state.

A PDU that cannot be read raises ``ProtocolError``, which carries the PS3.8
9.3.8 reason of the A-ABORT the association then sends.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass, field

from pydicom.uid import ImplicitVRLittleEndian

from .uids import (
    APPLICATION_CONTEXT,
    IMPLEMENTATION_CLASS_UID,
    IMPLEMENTATION_VERSION_NAME,
)

__all__ = [
    "PDU_HEADER",
    "PDV_HEADER",
    "RELEASE_RP",
    "AssociateRequest",
    "ProposedContext",
    "ProtocolError",
    "abort_pdu",
    "ae_text",
    "encode_associate_ac",
    "parse_associate_rq",
    "pdata_pdus",
    "reject_pdu",
    "uid_text",
]


class ProtocolError(Exception):
    """We must A-ABORT: source 2 (service-provider) with a PS3.8 reason."""

    UNSPECIFIED, UNRECOGNISED_PDU, UNEXPECTED_PDU = 0, 1, 2
    UNRECOGNISED_PARAM, UNEXPECTED_PARAM, INVALID_PARAM = 4, 5, 6

    def __init__(self, message: str, reason: int) -> None:
        super().__init__(message)
        self.reason = reason


PDU_HEADER = struct.Struct(">BxI")
PDV_HEADER = struct.Struct(">IBB")
_PDATA_HEADER = struct.Struct(">BxIIBB")  # PDU header + first PDV header
_ITEM_HEADER = struct.Struct(">BxH")

RELEASE_RP = bytes([0x06, 0, 0, 0, 0, 4, 0, 0, 0, 0])


def abort_pdu(source: int, reason: int) -> bytes:
    return bytes([0x07, 0, 0, 0, 0, 4, 0, 0, source, reason])


def reject_pdu(result: int, source: int, diagnostic: int) -> bytes:
    return bytes([0x03, 0, 0, 0, 0, 4, 0, result, source, diagnostic])


def _item(item_type: int, payload: bytes) -> bytes:
    return _ITEM_HEADER.pack(item_type, len(payload)) + payload


def uid_text(raw: bytes | memoryview) -> str:
    # Peers pad UIDs with NUL (correct) or space (common); neither is significant.
    return bytes(raw).rstrip(b"\x00 ").decode("ascii", "replace")


def ae_text(raw: bytes) -> str:
    return raw.decode("ascii", "replace").strip(" \x00")


@dataclass
class ProposedContext:
    context_id: int
    abstract_syntax: str
    transfer_syntaxes: list[str]


@dataclass
class AssociateRequest:
    called_raw: bytes
    calling_raw: bytes
    protocol_version: int
    application_context: str = ""
    contexts: list[ProposedContext] = field(default_factory=list)
    peer_max_pdu: int = 16384  # PS3.8 makes the sub-item mandatory; assume dcmtk's default if absent
    implementation_uid: str = ""
    async_ops_proposed: bool = False
    roles: dict[str, tuple[int, int]] = field(default_factory=dict)

    @property
    def called_ae(self) -> str:
        return ae_text(self.called_raw)

    @property
    def calling_ae(self) -> str:
        return ae_text(self.calling_raw)


def _iter_items(data: memoryview, what: str) -> Iterator[tuple[int, memoryview]]:
    pos, end = 0, len(data)
    while pos < end:
        if end - pos < 4:
            raise ProtocolError(f"truncated item header in {what}", ProtocolError.INVALID_PARAM)
        item_type, length = _ITEM_HEADER.unpack_from(data, pos)
        pos += 4
        if pos + length > end:
            raise ProtocolError(f"item overruns {what}", ProtocolError.INVALID_PARAM)
        yield item_type, data[pos:pos + length]
        pos += length


def _parse_presentation_context(body: memoryview) -> ProposedContext:
    if len(body) < 4:
        raise ProtocolError("short presentation context item", ProtocolError.INVALID_PARAM)
    abstract, syntaxes = None, []
    for sub_type, sub in _iter_items(body[4:], "presentation context"):
        if sub_type == 0x30:
            abstract = uid_text(sub)
        elif sub_type == 0x40:
            syntaxes.append(uid_text(sub))
    if abstract is None:
        raise ProtocolError("presentation context without abstract syntax", ProtocolError.INVALID_PARAM)
    return ProposedContext(body[0], abstract, syntaxes)


def _parse_user_information(body: memoryview, rq: AssociateRequest) -> None:
    u16 = struct.Struct(">H")
    for sub_type, sub in _iter_items(body, "user information"):
        if sub_type == 0x51 and len(sub) == 4:
            rq.peer_max_pdu = struct.unpack(">I", sub)[0]
        elif sub_type == 0x52:
            rq.implementation_uid = uid_text(sub)
        elif sub_type == 0x53:
            rq.async_ops_proposed = True
        elif sub_type == 0x54 and len(sub) >= 2:
            n = u16.unpack_from(sub, 0)[0]
            if len(sub) != 2 + n + 2:
                raise ProtocolError("bad SCP/SCU role selection item", ProtocolError.INVALID_PARAM)
            rq.roles[uid_text(sub[2:2 + n])] = (sub[2 + n], sub[3 + n])
        # 0x55 version name, 0x56/0x57 extended negotiation and 0x58 user
        # identity are ignored: we support none of them, and PS3.7 D.3.3.7
        # lets an acceptor that does not check identities stay silent.


def parse_associate_rq(pdu: bytes | bytearray) -> AssociateRequest:
    """Parse a complete A-ASSOCIATE-RQ PDU (header included)."""
    data = memoryview(pdu)
    if len(data) < 74:
        raise ProtocolError("A-ASSOCIATE-RQ shorter than its fixed fields", ProtocolError.INVALID_PARAM)
    rq = AssociateRequest(
        called_raw=bytes(data[10:26]), calling_raw=bytes(data[26:42]),
        protocol_version=struct.unpack_from(">H", data, 6)[0])
    seen_ids: set[int] = set()
    for item_type, body in _iter_items(data[74:], "A-ASSOCIATE-RQ"):
        if item_type == 0x10:
            rq.application_context = uid_text(body)
        elif item_type == 0x20:
            cx = _parse_presentation_context(body)
            if cx.context_id in seen_ids:
                raise ProtocolError("duplicate presentation context id", ProtocolError.INVALID_PARAM)
            seen_ids.add(cx.context_id)
            rq.contexts.append(cx)
        elif item_type == 0x50:
            _parse_user_information(body, rq)
    return rq

def encode_associate_ac(rq: AssociateRequest, results: list[tuple[int, int, str]],
                         max_pdu: int) -> bytes:
    items = [_item(0x10, APPLICATION_CONTEXT.encode())]
    proposed = {cx.context_id: cx for cx in rq.contexts}
    for cid, result, ts in results:
        # The transfer syntax of a rejected context is "not significant" but
        # must be present; echo one the peer knows rather than an empty UID.
        shown = ts or (proposed[cid].transfer_syntaxes[:1] or [str(ImplicitVRLittleEndian)])[0]
        items.append(_item(0x21, bytes([cid, 0, result, 0]) + _item(0x40, shown.encode())))
    user = [_item(0x51, struct.pack(">I", max_pdu)),
            _item(0x52, IMPLEMENTATION_CLASS_UID.encode())]
    if rq.async_ops_proposed:
        # We process one operation at a time: answer 1/1 (PS3.7 D.3.3.3).
        user.append(_item(0x53, struct.pack(">HH", 1, 1)))
    accepted_abstracts = {proposed[cid].abstract_syntax for cid, result, _ in results if result == 0}
    for uid, (scu, _scp) in rq.roles.items():
        if uid in accepted_abstracts:
            # We are the SCP only: the requestor may stay SCU, never become SCP.
            raw = uid.encode()
            user.append(_item(0x54, struct.pack(">H", len(raw)) + raw + bytes([1 if scu else 0, 0])))
    user.append(_item(0x55, IMPLEMENTATION_VERSION_NAME.encode()))
    items.append(_item(0x50, b"".join(user)))
    body = struct.pack(">HH", 1, 0) + rq.called_raw + rq.calling_raw + bytes(32) + b"".join(items)
    return PDU_HEADER.pack(0x02, len(body)) + body


def pdata_pdus(context_id: int, payload: bytes, *, command: bool, peer_max: int) -> bytes:
    """Frame a DIMSE message part as P-DATA-TF PDUs within the peer's limit."""
    # The peer's max length covers the PDV items: 4 length + 2 header bytes each.
    chunk = peer_max - 6 if peer_max > 6 else (16 << 20)
    base = 0x01 if command else 0x00
    total = len(payload)
    if total <= chunk:
        return _PDATA_HEADER.pack(0x04, total + 6, total + 2, context_id, base | 0x02) + payload
    parts: list[bytes | memoryview] = []
    view = memoryview(payload)
    for start in range(0, total, chunk):
        piece = view[start:start + chunk]
        last = 0x02 if start + chunk >= total else 0x00
        parts.append(_PDATA_HEADER.pack(0x04, len(piece) + 6, len(piece) + 2, context_id, base | last))
        parts.append(piece)
    return b"".join(parts)
