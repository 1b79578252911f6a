"""STOW-RS (PS3.18 10.5): store instances sent as multipart/related.

Every part goes through InstanceStore, the one durable ingest path
(C-STORE, import, the gateway->cloud sync): it is on disk and indexed
before it is reported stored. The body is parsed as it streams in
(web/multipart.py: small parts in memory, large ones spooled to a file),
and every part is a Part-10 file stored through archive/part10.py, so a
large study or instance never sits in memory whole.

The answer is the Store Instances Response Module (PS3.18 Table 10.5.3-1)
in DICOM JSON: ReferencedSOPSequence for what was stored (with its
RetrieveURL), FailedSOPSequence with a FailureReason for what was not.
HTTP 200 when everything was stored, 202 when some parts failed, 409 when
none could be stored.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ...archive.instances import InstanceStore
from ...archive.part10 import read_part10
from ...core.dicom import InvalidInstance
from ...core.errors import Invalid
from ...dicomnet.status import Status
from ...web.multipart import Part
from .dicomjson import element

# FailureReason values (PS3.18 10.5.3): a part that is not application/dicom is
# "SOP Class not supported"; one that is not a DICOM file, "Cannot understand";
# one of another study than the URL's, "Data Set does not match SOP Class"
# (PS3.18 uses it for a wrong study); a refusal without a status of its own,
# "Processing failure".


@dataclass
class Outcome:
    stored: list[dict[str, Any]] = field(default_factory=list)
    failed: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    study_uids: set[str] = field(default_factory=set)


def store_parts(store: InstanceStore, parts: list[Part], *, hospital_id: str, study_uid: str | None,
                base_url: str) -> Outcome:
    out = Outcome()
    for n, part in enumerate(parts, 1):
        ctype = part.headers.get("content-type", "application/dicom").split(";", 1)[0].strip().lower()
        if ctype != "application/dicom":
            out.failed.append(_failed("", "", Status.SOP_CLASS_NOT_SUPPORTED))
            out.warnings.append(f"part {n}: {ctype} is not stored (only application/dicom parts are)")
            continue
        try:
            file = read_part10(part.content(), max_inflated=store.max_inflated, size=part.size)
        except InvalidInstance as e:
            out.failed.append(_failed("", "", Status.CANNOT_UNDERSTAND))
            out.warnings.append(f"part {n}: not a DICOM Part-10 file ({e.reason})")
            continue
        info = file.info
        if study_uid is not None and info.study_uid != study_uid:
            out.failed.append(_failed(info.sop_class_uid, info.sop_instance_uid,
                                      Status.DATA_SET_DOES_NOT_MATCH_SOP_CLASS))
            out.warnings.append(f"part {n}: Study Instance UID differs from the one in the request URL")
            continue
        res = file.store(store, hospital_id=hospital_id)
        if res.outcome == "refused":
            out.failed.append(_failed(info.sop_class_uid, info.sop_instance_uid,
                                      res.status or Status.PROCESSING_FAILURE))
            out.warnings.append(f"part {n}: {res.reason}")
            continue
        url = f"{base_url}/studies/{info.study_uid}/series/{info.series_uid}/instances/{info.sop_instance_uid}"
        out.stored.append(dict([element("ReferencedSOPClassUID", info.sop_class_uid),
                                element("ReferencedSOPInstanceUID", info.sop_instance_uid),
                                element("RetrieveURL", url)]))
        out.study_uids.add(info.study_uid)
    return out


def _failed(sop_class: str, sop_uid: str, reason: int) -> dict[str, Any]:
    return dict([element("ReferencedSOPClassUID", sop_class or None),
                 element("ReferencedSOPInstanceUID", sop_uid or None),
                 element("FailureReason", int(reason))])


def response(out: Outcome, *, study_uid: str | None, base_url: str) -> tuple[int, dict[str, Any]]:
    body: dict[str, dict[str, Any]] = {}
    uids = out.study_uids
    target = study_uid or (next(iter(uids)) if len(uids) == 1 else None)
    if target:
        body.update([element("RetrieveURL", f"{base_url}/studies/{target}")])
    if out.failed:
        body["00081198"] = {"vr": "SQ", "Value": out.failed}
    if out.stored:
        body["00081199"] = {"vr": "SQ", "Value": out.stored}
    if not out.stored and not out.failed:
        raise Invalid("the request carried no parts")
    status = 200 if not out.failed else (202 if out.stored else 409)
    return status, dict(sorted(body.items()))
