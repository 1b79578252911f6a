"""The HL7 listener's counters, on the registry of the process's `/metrics`."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter

from .mapping import MESSAGE_TYPES


class Hl7Metrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.messages = Counter("yingyun_hl7_messages", "HL7 messages answered, by message type and ACK code",
                                ["type", "ack"], registry=registry)
        self.duplicates = Counter("yingyun_hl7_duplicates", "HL7 messages sent again under an accepted control id "
                                  "(answered AA, not written again)", ["type"], registry=registry)
        self.framing = Counter("yingyun_hl7_framing_errors", "MLLP framing faults, by kind", ["kind"],
                               registry=registry)

    def answered(self, message_type: str, ack_code: str, *, duplicate: bool = False) -> None:
        # Types beyond those handled are one label: a stranger's junk cannot grow the label set.
        kind = message_type if message_type in MESSAGE_TYPES else "other"
        self.messages.labels(kind, ack_code).inc()
        if duplicate:
            self.duplicates.labels(kind).inc()
