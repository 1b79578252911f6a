"""STOW-RS (PS3.18 10.5): store instances sent as multipart/related.

Every part goes through InstanceStore, the one durable ingest path
(C-STORE, import, the gateway->cloud sync): it is on disk and indexed
before it is reported stored. The body is parsed as it streams in, each
part spooled to a temporary file (in memory up to 8 MiB) and stored as a
Part-10 file through archive/part10.py, so a large study or instance never
sits in memory whole.

The answer is the Store Instances Response Module (PS3.18 Table 10.5.3-1)
in DICOM JSON: ReferencedSOPSequence for what was stored (with its
RetrieveURL), FailedSOPSequence with a FailureReason for what was not.
HTTP 200 when everything was stored, 202 when some parts failed, 409 when
none could be stored.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from typing import BinaryIO

from python_multipart.multipart import MultipartParser

from ...archive.instances import InstanceStore
from ...archive.part10 import read_part10
from ...core.dicom import InvalidInstance
from .auth import DicomwebHTTPError
from .dicomjson import element

SPOOL_BYTES = 8 * 2**20
FAILURE_PROCESSING = 0x0110
FAILURE_NOT_DICOM = 0xC000  # "Error: Cannot understand"
FAILURE_STUDY_MISMATCH = 0xA900  # "Error: Data Set does not match SOP Class" (PS3.18 uses it for a wrong study)
FAILURE_MEDIA = 0x0122  # "Referenced SOP Class not supported": a part that is not application/dicom


@dataclass
class Part:
    headers: dict[str, str]
    body: BinaryIO
    size: int = 0


@dataclass
class PartParser:
    """Feeds on request chunks; collects the parts as spooled files."""

    boundary: str
    max_bytes: int
    parts: list[Part] = field(default_factory=list)
    total: int = 0

    def __post_init__(self) -> None:
        self._field = b""
        self._value = b""
        self._headers: dict[str, str] = {}
        self._cur: Part | None = None
        callbacks = {
            "on_part_begin": self._begin, "on_part_data": self._data, "on_part_end": self._end,
            "on_header_field": self._hfield, "on_header_value": self._hvalue, "on_header_end": self._hend,
            "on_headers_finished": self._hdone,
        }
        self._parser = MultipartParser(self.boundary, callbacks, max_header_count=32, max_header_size=16384)

    def _begin(self) -> None:
        self._headers = {}
        self._cur = Part({}, tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES))

    def _hfield(self, data: bytes, start: int, end: int) -> None:
        self._field += data[start:end]

    def _hvalue(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def _hend(self) -> None:
        self._headers[self._field.decode("latin-1").strip().lower()] = self._value.decode("latin-1").strip()
        self._field = self._value = b""

    def _hdone(self) -> None:
        assert self._cur is not None
        self._cur.headers = self._headers

    def _data(self, data: bytes, start: int, end: int) -> None:
        assert self._cur is not None
        self._cur.body.write(data[start:end])
        self._cur.size += end - start

    def _end(self) -> None:
        assert self._cur is not None
        self._cur.body.seek(0)
        self.parts.append(self._cur)
        self._cur = None

    def feed(self, chunk: bytes) -> None:
        self.total += len(chunk)
        if self.total > self.max_bytes:
            raise DicomwebHTTPError(413, f"the request is larger than the {self.max_bytes // 2**20} MiB limit")
        try:
            self._parser.write(chunk)
        except Exception as e:  # python-multipart raises its own errors on malformed bodies
            raise DicomwebHTTPError(400, f"malformed multipart body: {e}") from e

    def finish(self) -> list[Part]:
        try:
            self._parser.finalize()
        except Exception as e:
            raise DicomwebHTTPError(400, f"malformed multipart body: {e}") from e
        return self.parts

    def close(self) -> None:
        for p in self.parts:
            p.body.close()
        if self._cur is not None:
            self._cur.body.close()


@dataclass
class Outcome:
    stored: list[dict] = field(default_factory=list)
    failed: list[dict] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    study_uids: set[str] = field(default_factory=set)


def store_parts(store: InstanceStore, parts: list[Part], *, hospital_id: str, study_uid: str | None,
                base_url: str) -> Outcome:
    out = Outcome()
    for n, part in enumerate(parts, 1):
        ctype = part.headers.get("content-type", "application/dicom").split(";", 1)[0].strip().lower()
        if ctype != "application/dicom":
            out.failed.append(_failed("", "", FAILURE_MEDIA))
            out.warnings.append(f"part {n}: {ctype} is not stored (only application/dicom parts are)")
            continue
        try:
            file = read_part10(part.body, max_inflated=store.max_inflated, size=part.size)
        except InvalidInstance as e:
            out.failed.append(_failed("", "", FAILURE_NOT_DICOM))
            out.warnings.append(f"part {n}: not a DICOM Part-10 file ({e.reason})")
            continue
        info = file.info
        if study_uid is not None and info.study_uid != study_uid:
            out.failed.append(_failed(info.sop_class_uid, info.sop_instance_uid, FAILURE_STUDY_MISMATCH))
            out.warnings.append(f"part {n}: Study Instance UID differs from the one in the request URL")
            continue
        res = file.store(store, hospital_id=hospital_id)
        if res.outcome == "refused":
            out.failed.append(_failed(info.sop_class_uid, info.sop_instance_uid, res.status or FAILURE_PROCESSING))
            out.warnings.append(f"part {n}: {res.reason}")
            continue
        url = f"{base_url}/studies/{info.study_uid}/series/{info.series_uid}/instances/{info.sop_instance_uid}"
        out.stored.append(dict([element("ReferencedSOPClassUID", info.sop_class_uid),
                                element("ReferencedSOPInstanceUID", info.sop_instance_uid),
                                element("RetrieveURL", url)]))
        out.study_uids.add(info.study_uid)
    return out


def _failed(sop_class: str, sop_uid: str, reason: int) -> dict:
    return dict([element("ReferencedSOPClassUID", sop_class or None),
                 element("ReferencedSOPInstanceUID", sop_uid or None),
                 element("FailureReason", reason)])


def response(out: Outcome, *, study_uid: str | None, base_url: str) -> tuple[int, dict]:
    body: dict[str, dict] = {}
    uids = out.study_uids
    target = study_uid or (next(iter(uids)) if len(uids) == 1 else None)
    if target:
        body.update([element("RetrieveURL", f"{base_url}/studies/{target}")])
    if out.failed:
        body["00081198"] = {"vr": "SQ", "Value": out.failed}
    if out.stored:
        body["00081199"] = {"vr": "SQ", "Value": out.stored}
    if not out.stored and not out.failed:
        raise DicomwebHTTPError(400, "the request carried no parts")
    status = 200 if not out.failed else (202 if out.stored else 409)
    return status, dict(sorted(body.items()))
