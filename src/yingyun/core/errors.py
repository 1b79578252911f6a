"""The one error vocabulary of Yingyun's services.

Services (tenancy, records, consultations, the patient pages' logic, DICOMweb
queries, the archive) raise only these. Each edge maps them once to what its
callers read — the vendor envelope code on `/ris/*` and `/thirdparty/*`, an HTTP
status on DICOMweb and the pages, a DIMSE status on the DICOM port, an exit code
on the command line — so the same fault reads the same everywhere and no
service spells a vendor code or an HTTP status::

    YingyunError                  root: anything Yingyun refuses on purpose
     ├── Invalid                  the caller's input is malformed or breaks a rule
     │    └── TooLarge            … because of its size
     ├── Unauthenticated          who is calling is not known (credentials missing, wrong or expired)
     ├── Forbidden                the caller is known but may not do this
     ├── NotFound                 what was named does not exist (for this caller)
     │    └── Gone                it existed and was deleted, revoked or has expired
     ├── Conflict                 the request contradicts the current state (exists, stale, locked)
     ├── RateLimited              too many requests; `retry_after` seconds, when known
     └── Unavailable              a resource the request needs is missing or exhausted (disk, a peer)

Every error carries `detail`: words for the caller, naming what was wrong
(a field, an id the caller sent) but never patient data, since it may be logged
and shown. `subject` names the kind of thing concerned ("hospital", "study",
"report", "user"…): edges that have one code per subject (the vendor's 20016
institution unknown vs 20023 union unknown) choose by it, so a service says
`NotFound("no hospital h9", subject="hospital")` and never the code. `field`
names the offending input field where there is one. `code` is the vendor's
code for this very refusal, for the few the contract numbers on their own
(40009 "the meeting has started, it cannot be cancelled" is a `Conflict`
like 40008, told apart only by the operation): the vendor edge uses it as
it is, and every other edge ignores it.

Adapters translate foreign exceptions at the boundary and chain them
(`raise Invalid(...) from exc`), as httpx does, so a traceback keeps its cause.
"""

from __future__ import annotations

from ..contract.codes import Code

__all__ = [
    "Conflict",
    "Forbidden",
    "Gone",
    "Invalid",
    "NotFound",
    "RateLimited",
    "TooLarge",
    "Unauthenticated",
    "Unavailable",
    "YingyunError",
]


class YingyunError(Exception):
    """Root of the tree; see the module docstring."""

    def __init__(self, detail: str, *, subject: str = "", field: str | None = None, code: Code | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.subject = subject
        self.field = field
        self.code = code


class Invalid(YingyunError, ValueError):
    """The input is malformed or breaks a rule of the domain."""


class TooLarge(Invalid):
    """The input is larger than what is accepted; `limit` is that size, when it is one number."""

    def __init__(self, detail: str, *, subject: str = "", field: str | None = None, code: Code | None = None,
                 limit: int | None = None) -> None:
        super().__init__(detail, subject=subject, field=field, code=code)
        self.limit = limit


class Unauthenticated(YingyunError):
    """Who is calling could not be established (no, wrong or expired credentials)."""


class Forbidden(YingyunError):
    """The caller is known and may not do this (outside its scope, or not its role)."""


class NotFound(YingyunError, LookupError):
    """What the caller named does not exist, or not for this caller (no existence leak across tenants)."""


class Gone(NotFound):
    """It existed: deleted, revoked or expired."""


class Conflict(YingyunError):
    """The request contradicts the current state: a duplicate, a stale version, a lock held by someone else."""


class RateLimited(YingyunError):
    """Too many requests from this caller; `retry_after` in seconds when the limit says when."""

    def __init__(self, detail: str, *, subject: str = "", field: str | None = None, code: Code | None = None,
                 retry_after: float | None = None) -> None:
        super().__init__(detail, subject=subject, field=field, code=code)
        self.retry_after = retry_after


class Unavailable(YingyunError):
    """Something the request needs is missing or exhausted (disk space, a peer, a sender); worth retrying later."""
