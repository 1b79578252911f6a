"""Storage Commitment Push Model (PS3.4 Annex J): the N-ACTION request, the N-EVENT-REPORT result.

What is committed is the provider's business (``Session.commit``); this module
only reads the Action Information (Transaction UID, Referenced SOP Sequence)
and writes the Event Information (Referenced SOP Sequence for what is held,
Failed SOP Sequence with a Failure Reason for the rest), and the two command
sets the SCP sends that the other services never need: the N-ACTION-RSP with
its Action Type ID and the N-EVENT-REPORT-RQ.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from .uids import STORAGE_COMMITMENT_INSTANCE, STORAGE_COMMITMENT_PUSH

__all__ = [
    "ACTION_REQUEST_COMMIT",
    "CommitmentRequest",
    "CommitmentResult",
    "EVENT_ALL_COMMITTED",
    "EVENT_SOME_FAILED",
    "N_ACTION_RQ",
    "N_ACTION_RSP",
    "N_EVENT_REPORT_RQ",
    "N_EVENT_REPORT_RSP",
    "Reason",
    "action_rsp",
    "event_report_rq",
    "parse_action",
    "report_dataset",
]

N_EVENT_REPORT_RQ, N_EVENT_REPORT_RSP = 0x0100, 0x8100
N_ACTION_RQ, N_ACTION_RSP = 0x0130, 0x8130
ACTION_REQUEST_COMMIT = 1  # PS3.4 J.3.2.1.1: the only action type of the class
EVENT_ALL_COMMITTED, EVENT_SOME_FAILED = 1, 2


class Reason:
    """Failure Reasons (0008,1197) of a Failed SOP Sequence item (PS3.4 J.3.2.2.1.1.2)."""

    PROCESSING_FAILURE = 0x0110
    NO_SUCH_OBJECT_INSTANCE = 0x0112
    RESOURCE_LIMITATION = 0x0213
    REFERENCED_SOP_CLASS_NOT_SUPPORTED = 0x0122
    CLASS_INSTANCE_CONFLICT = 0x0119
    DUPLICATE_TRANSACTION_UID = 0x0131


@dataclass(frozen=True)
class CommitmentRequest:
    transaction_uid: str
    references: tuple[tuple[str, str], ...]  # (SOP Class UID, SOP Instance UID), in the requester's order


@dataclass(frozen=True)
class CommitmentResult:
    transaction_uid: str
    committed: tuple[tuple[str, str], ...]
    failed: tuple[tuple[str, str, int], ...]  # (class, instance, Failure Reason)

    @property
    def event_type(self) -> int:
        return EVENT_SOME_FAILED if self.failed else EVENT_ALL_COMMITTED


def parse_action(ds: Dataset) -> CommitmentRequest:
    """The Action Information of a Request Storage Commitment; ValueError names what is missing."""
    transaction = str(ds.get("TransactionUID", "") or "").strip()
    if not transaction:
        raise ValueError("Transaction UID missing")
    items = ds.get("ReferencedSOPSequence") or []
    refs = []
    for item in items:
        cls = str(item.get("ReferencedSOPClassUID", "") or "").strip()
        inst = str(item.get("ReferencedSOPInstanceUID", "") or "").strip()
        if not cls or not inst:
            raise ValueError("Referenced SOP Sequence item without its class or instance")
        refs.append((cls, inst))
    if not refs:
        raise ValueError("Referenced SOP Sequence empty")
    return CommitmentRequest(transaction, tuple(refs))


def report_dataset(result: CommitmentResult) -> Dataset:
    ds = Dataset()
    ds.TransactionUID = result.transaction_uid
    if result.committed:
        ds.ReferencedSOPSequence = Sequence([_item(cls, inst) for cls, inst in result.committed])
    if result.failed:
        failed = []
        for cls, inst, reason in result.failed:
            item = _item(cls, inst)
            item.FailureReason = reason
            failed.append(item)
        ds.FailedSOPSequence = Sequence(failed)
    return ds


def _item(cls: str, inst: str) -> Dataset:
    item = Dataset()
    item.ReferencedSOPClassUID = cls
    item.ReferencedSOPInstanceUID = inst
    return item


_HEADER = struct.Struct("<HHI")


def _ui(element: int, uid: str) -> bytes:
    value = uid.encode("ascii")
    if len(value) % 2:
        value += b"\x00"
    return _HEADER.pack(0, element, len(value)) + value


def _us(element: int, value: int) -> bytes:
    return _HEADER.pack(0, element, 2) + struct.pack("<H", value)


def _group(parts: list[bytes]) -> bytes:
    body = b"".join(parts)
    return _HEADER.pack(0, 0, 4) + struct.pack("<I", len(body)) + body


def event_report_rq(message_id: int, event_type: int) -> bytes:
    """The N-EVENT-REPORT-RQ command set (implicit VR LE, ascending tags), its data set to follow."""
    return _group([_ui(0x0002, STORAGE_COMMITMENT_PUSH), _us(0x0100, N_EVENT_REPORT_RQ), _us(0x0110, message_id),
                   _us(0x0800, 0x0102), _ui(0x1000, STORAGE_COMMITMENT_INSTANCE), _us(0x1002, event_type)])


def action_rsp(responded_to: int, status: int, *, action_type: int | None) -> bytes:
    """The N-ACTION-RSP command set; the Action Type ID is echoed on success (PS3.7 10.1.4.1.7)."""
    parts = [_ui(0x0002, STORAGE_COMMITMENT_PUSH), _us(0x0100, N_ACTION_RSP), _us(0x0120, responded_to),
             _us(0x0800, 0x0101), _us(0x0900, status), _ui(0x1000, STORAGE_COMMITMENT_INSTANCE)]
    if action_type is not None:
        parts.append(_us(0x1008, action_type))
    return _group(parts)
