"""Association negotiation (ACSE, PS3.8 9.3.2-9.3.4 and PS3.7 Annex D): which
requests are refused, which presentation contexts are accepted and with which
transfer syntax, and what the provider is told of the peer.

Verification, every storage SOP class (anything under 1.2.840.10008.5.1.4.1.1.,
and the RT delivery instructions), Study/Patient Root and Modality Worklist C-FIND
and the Storage Commitment Push Model are accepted; the first proposed transfer
syntax we support wins (C-FIND, Verification and Storage Commitment: uncompressed only).
"""

from __future__ import annotations

from dataclasses import dataclass

from .pdu import AssociateRequest, ProposedContext
from .uids import (
    APPLICATION_CONTEXT,
    MODALITY_WORKLIST_FIND,
    OTHER_STORAGE_CLASSES,
    PATIENT_ROOT_FIND,
    STORAGE_COMMITMENT_PUSH,
    STORAGE_PREFIX,
    STORAGE_SYNTAXES,
    STUDY_ROOT_FIND,
    UNCOMPRESSED,
    VERIFICATION,
)

__all__ = ["AcceptedContext", "AssociationInfo", "Rejected", "check_request", "negotiate_context", "service_of"]


ECHO, STORE, FIND, COMMIT = "echo", "store", "find", "commit"


def service_of(abstract_syntax: str) -> str | None:
    if abstract_syntax == VERIFICATION:
        return ECHO
    if abstract_syntax in (STUDY_ROOT_FIND, PATIENT_ROOT_FIND, MODALITY_WORKLIST_FIND):
        return FIND
    if abstract_syntax == STORAGE_COMMITMENT_PUSH:
        return COMMIT
    if abstract_syntax.startswith(STORAGE_PREFIX) or abstract_syntax in OTHER_STORAGE_CLASSES:
        return STORE
    return None


@dataclass(frozen=True)
class AssociationInfo:
    calling_ae: str
    called_ae: str
    peer_host: str
    peer_port: int
    assoc_id: str


class Rejected(Exception):
    """Raised by ServiceProvider.associate to refuse; carries DICOM reject result/source/reason.

    Defaults: result 1 (permanent), source 1 (service-user), diagnostic 3
    (calling AE title not recognised).
    """

    def __init__(self, reason: str, *, result: int = 1, source: int = 1, diagnostic: int = 3) -> None:
        super().__init__(reason)
        self.reason = reason
        self.result = result
        self.source = source
        self.diagnostic = diagnostic

@dataclass
class AcceptedContext:
    context_id: int
    abstract_syntax: str
    transfer_syntax: str
    service: str


def negotiate_context(cx: ProposedContext) -> tuple[int, str]:
    """Return (PS3.8 result, chosen transfer syntax) for one proposed context."""
    service = service_of(cx.abstract_syntax)
    if service is None:
        return 3, ""
    if cx.context_id % 2 == 0:  # PS3.8 9.3.2.2: ids are odd; an even one is unusable
        return 2, ""
    allowed = STORAGE_SYNTAXES if service == STORE else UNCOMPRESSED
    for ts in cx.transfer_syntaxes:  # the requestor's order is its preference
        if ts in allowed:
            return 0, ts
    return 4, ""


def check_request(rq: AssociateRequest, ae_title: str) -> tuple[str, int, int, int] | None:
    """The A-ASSOCIATE-RJ (reason, result, source, diagnostic) that the request's
    own fields call for, before any provider is asked; None when they are fine."""
    if not rq.protocol_version & 0x0001:
        return "unsupported protocol version", 1, 2, 2
    if rq.application_context != APPLICATION_CONTEXT:
        return "unsupported application context", 1, 1, 2
    if rq.called_ae != ae_title:
        return "called AE title not recognised", 1, 1, 7
    return None
