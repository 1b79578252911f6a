"""What refuses a message: the ACK code, the HL7 error code (table 0357) and where (ERR-2)."""

from __future__ import annotations

from dataclasses import dataclass

# HL7 table 0357, the codes used here.
ERROR_NAMES = {
    100: "Segment sequence error",
    101: "Required field missing",
    102: "Data type error",
    103: "Table value not found",
    200: "Unsupported message type",
    201: "Unsupported event code",
    203: "Unsupported version id",
    204: "Unknown key identifier",
    206: "Application record locked",
    207: "Application internal error",
}


@dataclass(frozen=True)
class Location:
    """ERR-2: the segment, its occurrence (1 = the first) and the field (0: the segment as a whole)."""

    segment: str
    sequence: int
    field: int

    def __str__(self) -> str:
        return f"{self.segment}-{self.field}" if self.field else self.segment


class Fault(Exception):
    """A message refused: `ack_code` AE (its content) or AR (who sent it, its kind, its framing).

    `text` names the place and the rule, never a value the hospital sent: it is logged and stored."""

    def __init__(self, ack_code: str, error_code: int, where: Location, text: str) -> None:
        super().__init__(f"{where}: {text}")
        self.ack_code = ack_code
        self.error_code = error_code
        self.where = where
        self.text = f"{where}: {text}"

    @property
    def error_name(self) -> str:
        return ERROR_NAMES.get(self.error_code, "Application error")
