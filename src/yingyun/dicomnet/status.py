"""DIMSE status values (PS3.7 Annex C, PS3.4 B.2.3 and C.4.1.1.4): one vocabulary.

A status is a number on the wire and stays one here: ``Status`` names the
values Yingyun sends or acts on, and ``category`` places any value, named or
not, in its PS3.7 class by range, so that callers compare numbers and
categories, never strings or a hand-written set of "good" codes (the shape
of pynetdicom's ``status.py``). The C2xx/C3xx failures follow pynetdicom's
conventions, so operators see the values they know from it.
"""

from __future__ import annotations

from enum import Enum, IntEnum

__all__ = ["Category", "Status", "category"]


class Category(Enum):
    SUCCESS = "success"
    WARNING = "warning"
    FAILURE = "failure"
    CANCEL = "cancel"
    PENDING = "pending"


class Status(IntEnum):
    SUCCESS = 0x0000
    # Warnings (C-STORE, PS3.4 B.2.3)
    COERCION_OF_DATA_ELEMENTS = 0xB000
    ELEMENTS_DISCARDED = 0xB006
    DATA_SET_DOES_NOT_MATCH_SOP_CLASS_WARNING = 0xB007
    # Failures
    PROCESSING_FAILURE = 0x0110
    # DIMSE-N (PS3.7 C.4.2-C.4.4): the N-ACTION of Storage Commitment
    NO_SUCH_OBJECT_INSTANCE = 0x0112
    INVALID_ARGUMENT_VALUE = 0x0115
    NO_SUCH_SOP_CLASS = 0x0118
    MISSING_ATTRIBUTE = 0x0120
    NO_SUCH_ACTION = 0x0123
    SOP_CLASS_NOT_SUPPORTED = 0x0122
    NOT_AUTHORIZED = 0x0124  # PS3.7 C.4 "Refused: Not authorized"
    UNRECOGNISED_OPERATION = 0x0211
    OUT_OF_RESOURCES = 0xA700
    DATA_SET_DOES_NOT_MATCH_SOP_CLASS = 0xA900
    CANNOT_UNDERSTAND = 0xC000
    CANNOT_DECODE_DATA_SET = 0xC210  # also: a C-STORE-RQ without a data set
    STORE_HANDLER_FAILED = 0xC211
    CANNOT_DECODE_IDENTIFIER = 0xC310
    FIND_HANDLER_FAILED = 0xC311
    CANNOT_ENCODE_MATCH = 0xC312
    # C-FIND
    CANCEL = 0xFE00
    PENDING = 0xFF00
    PENDING_WITH_WARNINGS = 0xFF01


_WARNINGS = frozenset({0x0001, 0x0107, 0x0116})


def category(status: int) -> Category:
    """The PS3.7 class of any status value; what is not success, warning,
    cancel or pending is a failure (0x01xx, 0x02xx, 0xAxxx, 0xCxxx...)."""
    if status == Status.SUCCESS:
        return Category.SUCCESS
    if status in _WARNINGS or 0xB000 <= status <= 0xBFFF:
        return Category.WARNING
    if status == Status.CANCEL:
        return Category.CANCEL
    if status in (Status.PENDING, Status.PENDING_WITH_WARNINGS):
        return Category.PENDING
    return Category.FAILURE
