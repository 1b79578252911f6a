"""The internet-hospital API (/thirdparty/*, contract §3): paths, field names, parsing.

Every vendor field name of §3.1-§3.3 lives here, and so do the names of our
own consultation API (a signed API under /thirdparty/consultations...,
designed by us in the vendor's style: camelCase JSON, the usual envelope).
Parsing follows the contract's codes for this family: a required field that
is missing or empty -> 20031 naming every such field; a malformed one ->
20030 naming it; an identity field that does not decrypt -> 100001 naming it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .codes import Code
from .envelope import ContractError
from .identity import IdentityDecryptError, decrypt_field
from .params import Malformed

PREFIX = "/thirdparty"
PATH_PATIENT_STUDIES = PREFIX + "/patientStudies/{appId}"
PATH_PATIENT_CONSULTATIONS = PREFIX + "/patientConsultations/{appId}"
PATH_PATIENT_REPORT_URL = PREFIX + "/patientReportUrl/{appId}"

# Our consultation API (not the vendor's): one verb per path, appId last like §3.
PATH_CONSULTATION = PREFIX + "/consultations/{verb}/{appId}"
CONSULTATION_VERBS = ("create", "get", "list", "update", "start", "cancel", "conclude")
PATH_DOCTOR = PREFIX + "/doctors/{verb}/{appId}"
DOCTOR_VERBS = ("add", "list")

BODY_LIMIT = 1 * 2**20

# -- field names ----------------------------------------------------------------

PHONE_NUM = "phoneNum"
PHONE_NUMBER = "phoneNumber"  # §3.2 spells it differently; phoneNum accepted there too
ID_NUM = "idNum"
HIS_ID = "hisId"
PATIENT_NAME = "patientName"
HOSPITAL_ID = "hospitalId"
UNION_ID = "unionId"
STUDY_TYPE = "studyType"
DATA_FLAG = "dataFlag"
USAGE = "usage"
STUDY_DATE_BEGIN = "studyDateBegin"
STUDY_DATE_END = "studyDateEnd"
REPORT_ID = "reportId"

# Study (data of §3.1)
S_HIS_ID = "hisId"
S_REPORT_ID = "reportId"
S_STUDY_TYPE = "studyType"
S_STUDY_DATE = "studyDate"
S_STUDY_ID = "studyId"
S_BODY_PART = "bodyPart"
S_STUDY_NAME = "studyName"
S_APPLY_DOCTOR = "applyDoctor"
S_APPLY_DOCTOR_ID = "applyDoctorId"
S_APPLY_DEPT = "applyDept"
S_APPLY_DEPT_ID = "applyDeptId"
S_UNI_APP_ID = "uniAppId"
S_UNI_PATH = "uniPath"
S_H5_URL = "h5Url"
S_H5_DETAIL_URL = "h5DetailUrl"

# The RIS study-add fields (§2.1) that the Study answer copies, as they are kept in `details`.
RIS_APPLY_FIELDS = (S_APPLY_DOCTOR, S_APPLY_DOCTOR_ID, S_APPLY_DEPT, S_APPLY_DEPT_ID)
RIS_ID_CARD = "idCardNum"
RIS_PHONE = "phoneNum"

# dataFlag (§3.1)
FLAG_ALL, FLAG_HOSPITAL, FLAG_NOT_HOSPITAL, FLAG_UNION, FLAG_NOT_UNION = 0, 1, 2, 3, 4
DATA_FLAGS = (FLAG_ALL, FLAG_HOSPITAL, FLAG_NOT_HOSPITAL, FLAG_UNION, FLAG_NOT_UNION)
# usage (§3.1): 2 is a doctor looking at the patient, 0 and 1 the patient.
USAGE_PATIENT_LIST, USAGE_PATIENT_CONSULT, USAGE_DOCTOR = 0, 1, 2
USAGES = (USAGE_PATIENT_LIST, USAGE_PATIENT_CONSULT, USAGE_DOCTOR)

# studyType (§1.5)
STUDY_TYPES = (0, 1, 2, 3, 4, 5)
_MODALITY_TYPE = {"US": 5, "ECG": 4, "ES": 3, "SM": 2, "OP": 1, "OPT": 1, "OPM": 1, "OAM": 1}


def study_type_of(modalities: str | list[str] | None) -> int:
    """§1.5: the study type from its modality (or the first modality that decides it)."""
    if modalities is None:
        return 0
    items = modalities if isinstance(modalities, list) else re.split(r"[\\,/\s]+", modalities)
    for m in items:
        t = _MODALITY_TYPE.get(m.strip().upper())
        if t is not None:
            return t
    return 0


# -- consultation API names (ours) -------------------------------------------------

C_ID = "consultationId"
C_STUDIES = "studies"  # [{hospitalId, studyId}]
C_EXPERTS = "expertIds"
C_REQUESTER = "requestingDoctorId"
C_PURPOSE = "purpose"
C_SCHEDULED_AT = "scheduledAt"
C_MEETING_URL = "meetingUrl"
C_STATUS = "status"
C_CONCLUSION = "conclusion"
C_DOCTOR_ID = "doctorId"
C_NAME = "name"
C_TITLE = "title"
C_DEPT = "dept"

CONSULTATION_STATES = ("requested", "scheduled", "in_progress", "concluded", "cancelled")


# -- parsing ---------------------------------------------------------------------------

DATETIME_FORMAT = "%Y-%m-%d %H:%M:%S"


def as_text(value: Any) -> str:
    if isinstance(value, bool) or isinstance(value, (dict, list)) or value is None:
        raise Malformed("expected a string")
    if isinstance(value, (int, float)):
        return str(value)
    if not isinstance(value, str):
        raise Malformed("expected a string")
    return value.strip()


def int_in(allowed: tuple[int, ...]) -> Callable[[Any], int]:
    def convert(value: Any) -> int:
        if isinstance(value, bool):
            raise Malformed("expected an integer")
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, str) and re.fullmatch(r"\s*\d{1,3}\s*", value):
            value = int(value)
        if not isinstance(value, int) or value not in allowed:
            raise Malformed("expected one of " + ", ".join(str(a) for a in allowed))
        return value

    return convert


def as_begin(value: Any) -> str:
    return _datetime(value, "00:00:00")


def as_end(value: Any) -> str:
    return _datetime(value, "23:59:59")


def _datetime(value: Any, day_time: str) -> str:
    """'yyyy-MM-dd HH:mm:ss' (a bare date covers its whole day, per side of the range)."""
    text = as_text(value)
    try:
        return datetime.strptime(text, DATETIME_FORMAT).strftime(DATETIME_FORMAT)
    except ValueError:
        pass
    try:
        return datetime.strptime(text, "%Y-%m-%d").strftime("%Y-%m-%d ") + day_time
    except ValueError:
        pass
    raise Malformed("expected yyyy-MM-dd HH:mm:ss")


def as_local_datetime(value: Any) -> str:
    text = as_text(value)
    try:
        return datetime.strptime(text, DATETIME_FORMAT).strftime(DATETIME_FORMAT)
    except ValueError:
        raise Malformed("expected yyyy-MM-dd HH:mm:ss") from None


def as_text_list(value: Any) -> list[str]:
    if isinstance(value, str):
        value = [v for v in (p.strip() for p in value.split(",")) if v]
    if not isinstance(value, list):
        raise Malformed("expected an array of strings")
    out = [as_text(v) for v in value]
    if any(not v for v in out):
        raise Malformed("expected non-empty strings")
    return list(dict.fromkeys(out))


def as_study_refs(value: Any) -> list[tuple[str, str]]:
    if not isinstance(value, list) or not value:
        raise Malformed("expected a non-empty array of {hospitalId, studyId}")
    out = []
    for item in value:
        if not isinstance(item, dict):
            raise Malformed("expected objects {hospitalId, studyId}")
        h, s = item.get(HOSPITAL_ID), item.get(S_STUDY_ID)
        if h in (None, "") or s in (None, ""):
            raise Malformed("each entry needs hospitalId and studyId")
        out.append((as_text(h), as_text(s)))
    return list(dict.fromkeys(out))


def as_url(value: Any) -> str:
    text = as_text(value)
    if text and not re.fullmatch(r"https?://[^\s]{1,2000}", text):
        raise Malformed("expected an http(s) URL")
    return text


def as_long_text(limit: int) -> Callable[[Any], str]:
    def convert(value: Any) -> str:
        text = as_text(value)
        if len(text) > limit:
            raise Malformed(f"longer than {limit} characters")
        return text

    return convert


@dataclass(frozen=True)
class Param:
    name: str
    required: bool
    convert: Callable[[Any], Any] = as_text
    identity: bool = False  # encrypted with the partner's token (§1.4)
    aliases: tuple[str, ...] = ()
    description: str = ""
    json_type: str = "string"


PATIENT_STUDIES_PARAMS = (
    Param(PHONE_NUM, True, identity=True, description="encrypted phone number (AES-256-ECB hex)"),
    Param(ID_NUM, True, identity=True, description="encrypted ID card number (AES-256-ECB hex)"),
    Param(HIS_ID, False, description="HIS number (informational)"),
    Param(PATIENT_NAME, False, description="patient name; checked when a study has no ID card number"),
    Param(HOSPITAL_ID, True, description="platform hospital id"),
    Param(UNION_ID, True, description="platform medical-union id"),
    Param(STUDY_TYPE, True, int_in(STUDY_TYPES), description="0 radiology … 5 ultrasound", json_type="integer"),
    Param(DATA_FLAG, True, int_in(DATA_FLAGS), description="0 all, 1 this hospital, 2 all but it, 3 this union, "
          "4 all but it", json_type="integer"),
    Param(USAGE, True, int_in(USAGES), description="0 patient list, 1 patient consultation, 2 doctor",
          json_type="integer"),
    Param(STUDY_DATE_BEGIN, True, as_begin, description="yyyy-MM-dd HH:mm:ss, inclusive"),
    Param(STUDY_DATE_END, True, as_end, description="yyyy-MM-dd HH:mm:ss, inclusive"),
)

PATIENT_CONSULTATIONS_PARAMS = (
    Param(HIS_ID, True, description="HIS number"),
    Param(PHONE_NUMBER, True, identity=True, aliases=(PHONE_NUM,), description="encrypted phone number"),
    Param(ID_NUM, True, identity=True, description="encrypted ID card number"),
    Param(PATIENT_NAME, False),
    Param(HOSPITAL_ID, True),
    Param(UNION_ID, True),
)

PATIENT_REPORT_URL_PARAMS = (
    Param(REPORT_ID, True, description="reportId from patientStudies or a status callback"),
    Param(PHONE_NUM, True, identity=True, description="encrypted phone number"),
    Param(ID_NUM, True, identity=True, description="encrypted ID card number"),
    Param(HOSPITAL_ID, True),
)

CONSULTATION_CREATE_PARAMS = (
    Param(C_STUDIES, True, as_study_refs, description="the patient's studies: [{hospitalId, studyId}]",
          json_type="array"),
    Param(C_EXPERTS, False, as_text_list, description="invited expert doctor ids", json_type="array"),
    Param(C_REQUESTER, False, description="requesting doctor id"),
    Param(C_PURPOSE, False, as_long_text(4000), description="the question put to the experts"),
    Param(C_SCHEDULED_AT, False, as_local_datetime, description="yyyy-MM-dd HH:mm:ss; makes it scheduled"),
    Param(C_MEETING_URL, False, as_url, description="video meeting URL (the meeting itself is elsewhere)"),
)
CONSULTATION_ID_PARAMS = (Param(C_ID, True),)
CONSULTATION_UPDATE_PARAMS = (
    Param(C_ID, True),
    Param(C_EXPERTS, False, as_text_list, json_type="array"),
    Param(C_PURPOSE, False, as_long_text(4000)),
    Param(C_SCHEDULED_AT, False, as_local_datetime),
    Param(C_MEETING_URL, False, as_url),
)
CONSULTATION_CONCLUDE_PARAMS = (
    Param(C_ID, True),
    Param(C_DOCTOR_ID, True, description="the expert who submits the conclusion"),
    Param(C_CONCLUSION, True, as_long_text(20000)),
)
CONSULTATION_LIST_PARAMS = (
    Param(HOSPITAL_ID, False, description="only consultations of this hospital"),
    Param(C_STATUS, False, description="requested | scheduled | in_progress | concluded | cancelled"),
)
DOCTOR_ADD_PARAMS = (
    Param(C_DOCTOR_ID, True),
    Param(C_NAME, True),
    Param(HOSPITAL_ID, True),
    Param(C_TITLE, False),
    Param(C_DEPT, False),
)
DOCTOR_LIST_PARAMS = (Param(HOSPITAL_ID, False),)


def parse(params: tuple[Param, ...], body: Any, *, tokens: tuple[str, ...] = ()) -> dict[str, Any]:
    """Check and convert a request body; identity fields are decrypted with the partner's tokens."""
    if not isinstance(body, dict):
        raise ContractError(Code.INVALID_FORMAT, "body must be a JSON object")
    out: dict[str, Any] = {}
    missing: list[str] = []
    malformed: list[str] = []
    undecryptable: list[str] = []
    for p in params:
        value = body.get(p.name)
        if _empty(value):
            for alias in p.aliases:
                if not _empty(body.get(alias)):
                    value = body.get(alias)
                    break
        if _empty(value):
            if p.required:
                missing.append(p.name)
            continue
        try:
            converted = p.convert(value)
        except Malformed as e:
            malformed.append(f"{p.name} ({e})")
            continue
        if p.identity:
            plain = decrypt_identity(converted, tokens)
            if plain is None:
                undecryptable.append(p.name)
                continue
            if not plain.strip():
                missing.append(p.name)
                continue
            converted = plain.strip()
        out[p.name] = converted
    if missing:
        raise ContractError(Code.REQUIRED_EMPTY, "missing required field(s): " + ", ".join(missing))
    if malformed:
        raise ContractError(Code.INVALID_FORMAT, "malformed field(s): " + ", ".join(malformed))
    if undecryptable:
        raise ContractError(
            Code.PARAM_ERROR,
            "field(s) do not decrypt with this partner's token (AES-256-ECB, hex): " + ", ".join(undecryptable),
        )
    return out


def decrypt_identity(cipher_hex: str, tokens: tuple[str, ...]) -> str | None:
    """The plain value under any of the partner's live tokens (rotation grace), else None."""
    for token in tokens:
        try:
            plain = decrypt_field(cipher_hex, token)
        except (IdentityDecryptError, ValueError):
            continue
        if plain.isprintable():
            return plain
    return None


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip()) or value == []


def request_schema(params: tuple[Param, ...]) -> dict[str, Any]:
    """The OpenAPI schema of a body made of `params`."""
    props: dict[str, dict[str, Any]] = {}
    for p in params:
        schema: dict[str, Any] = {"type": p.json_type}
        if p.json_type == "array":
            schema["items"] = {"type": "object"} if p.name == C_STUDIES else {"type": "string"}
        if p.description:
            schema["description"] = p.description
        props[p.name] = schema
        for alias in p.aliases:
            props[alias] = dict(schema, description=f"accepted for {p.name}")
    return {"type": "object", "required": [p.name for p in params if p.required], "properties": props}


def fill_mini_path(template: str | None, *, report_id: str, study_id: str, hospital_id: str) -> str:
    """The partner's mini-program path with {reportId} {studyId} {hospitalId} filled in (URL-quoted)."""
    from urllib.parse import quote

    if not template:
        return ""
    values = {"reportId": report_id, "studyId": study_id, "hospitalId": hospital_id}
    return re.sub(r"\{(reportId|studyId|hospitalId)\}", lambda m: quote(values[m.group(1)], safe=""), template)
