"""The hospital gateway API (/ris/*, contract §2): paths and field tables."""

from __future__ import annotations

import re
from typing import Any, Final

from pydantic import BaseModel, ConfigDict, create_model
from pydantic import Field as PydanticField

from .codes import Code
from .envelope import ContractError
from .params import (
    AGE_UNITS,
    COUNT_MAX,
    FORMATS,
    STUDY_CATEGORIES,
    STUDY_STATUSES,
    A,
    B,
    C,
    Field,
    Record,
    as_date,
    as_datetime,
    as_count,
    as_sex,
    enum_of,
    parse,
)

PATH_STUDY_ADD = "/ris/study/add"
PATH_REPORT_ADD = "/ris/report/add"
PATH_STUDY_QR = "/ris/getStudyQR"
PATH_STUDY_DELETE = "/ris/study/delete"
PATH_RECONCILE = "/ris/reconcilelog"
PATH_RECONCILE_RANGE = "/ris/reconcilerangelog"

# Field names the code refers to by name.
STUDY_ID = "studyId"
REPORT_NUMBER = "reportNumber"
ACCESS_NUMBER = "accessNumber"
STUDY_UID = "studyUid"
STUDY_DATE = "studyDate"
# The patient's numbers by class: what retention rules keep a study by (archive/retention.py).
INPATIENT_NUM = "inpatientNum"
CLINIC_NUM = "clinicNum"
HEALTH_SCREEN_NUM = "healthScreenNum"
ID_CARD = "idCardNum"
PHONE = "phoneNum"
STUDY_LIST = "studyList"
START_TIME = "startTime"
END_TIME = "endTime"

# Typed columns of our index for the vendor's study and report fields.
STUDY_COLUMNS = {
    ACCESS_NUMBER: "access_number",
    STUDY_UID: "study_uid",
    "patientId": "patient_id",
    "patientName": "patient_name",
    "patientSex": "patient_sex",
    "modality": "modality",
    "bodyPart": "body_part",
    "studyDesc": "study_desc",
    STUDY_DATE: "study_date",
    "status": "status",
    "hisNum": "his_num",
}
REPORT_COLUMNS = {
    ACCESS_NUMBER: "access_number",
    "imageDescription": "image_description",
    "conclusion": "conclusion",
    "reportTime": "report_time",
    "reportDoctor": "report_doctor",
    "auditTime": "audit_time",
    "auditDoctor": "audit_doctor",
    "printTime": "print_time",
    "printDoctor": "print_doctor",
}
# A reconciliation entry's counts, as the index names them (§2.7).
RECONCILE_COUNTS = {"seriesCnt": "series", "imageCnt": "images", "reportCnt": "reports", "pdfCnt": "pdf"}

# Per-route body limits (§1.2).
RECORD_BODY_LIMIT = 1 * 2**20
RANGE_BODY_LIMIT = 32 * 2**20

# Fields kept only encrypted at rest (identity numbers, phone, address).
IDENTITY_FIELDS = (
    "idCardNum",
    "phoneNum",
    "medicalInsuranceNum",
    "hkAndMarcoPermitNum",
    "passportNum",
    "otherInfo",
    "homeAddress",
)

# Groups of B fields (contract §1.3): a group is "missing" only when the hospital
# sends none of its fields, and then it is said once.
AGE = "age"  # an age with its unit, or a birthday
BODY = "body"  # height and weight
IDENTITY_NUMBER = "identity number"  # any one identifies the patient
APPLY_DEPT, APPLY_DOCTOR = "requesting department", "requesting doctor"  # by name or by id
EXAM_DEPT, EXAM_DOCTOR = "performing department", "performing doctor"
COUNTS = "counts"  # what the hospital believes it sent, for reconciliation

STUDY_FIELDS: tuple[Field, ...] = (
    Field("patientId", A),
    Field("patientName", A),
    Field("patientSex", A, as_sex),
    Field("studyId", A),
    Field("accessNumber", A),
    Field("modality", A),
    Field("patientAge", B, group=AGE),
    Field("patientAgeUnit", B, enum_of(AGE_UNITS, upper=True), group=AGE),
    Field("patientBirthday", B, as_date, group=AGE),
    Field("size", B, group=BODY),
    Field("weight", B, group=BODY),
    Field("phoneNum", B),
    Field("medicalInsuranceNum", B, group=IDENTITY_NUMBER),
    Field("idCardNum", B, group=IDENTITY_NUMBER),
    Field("hkAndMarcoPermitNum", B, group=IDENTITY_NUMBER),
    Field("passportNum", B, group=IDENTITY_NUMBER),
    Field("otherInfo", B, group=IDENTITY_NUMBER),
    Field("homeAddress", C),
    Field("bodyPart", B),
    Field("studyDesc", B),
    Field("studyDate", B, as_datetime),
    Field("appointDate", C, as_datetime),
    Field("scanMode", B),
    Field("studyCategory", B, enum_of(STUDY_CATEGORIES, upper=False)),
    Field("applyDept", B, group=APPLY_DEPT),
    Field("applyDoctor", B, group=APPLY_DOCTOR),
    Field("applyDeptId", B, group=APPLY_DEPT),
    Field("applyDoctorId", B, group=APPLY_DOCTOR),
    Field("hisNum", B),
    Field(CLINIC_NUM, C),
    Field(INPATIENT_NUM, C),
    Field(HEALTH_SCREEN_NUM, C),
    Field("examDept", B, group=EXAM_DEPT),
    Field("examDoctor", B, group=EXAM_DOCTOR),
    Field("examDeptId", B, group=EXAM_DEPT),
    Field("examDoctorId", B, group=EXAM_DOCTOR),
    Field("examInfo", C),
    Field("inpatientWard", C),
    Field("bedNum", C),
    Field("diagnosis", C),
    Field("symptom", C),
    Field("allergies", C),
    Field("studyRequirement", C),
    Field("equipment", C),
    Field("status", B, enum_of(STUDY_STATUSES, upper=False)),
    Field("studyUid", B),
    Field("imageCnt", B, as_count, group=COUNTS),
    Field("reportCnt", B, as_count, group=COUNTS),
    Field("pdfCnt", B, as_count, group=COUNTS),
    Field("seriesCnt", B, as_count, group=COUNTS),
)

REPORT_FIELDS: tuple[Field, ...] = (
    Field("reportNumber", A),
    Field("studyId", A),
    Field("accessNumber", A),
    Field("imageDescription", A),
    Field("conclusion", A),
    Field("reportTime", B, as_datetime),
    Field("reportDoctor", B),
    Field("auditTime", B, as_datetime),
    Field("auditDoctor", B),
    Field("printTime", B, as_datetime),
    Field("printDoctor", B),
)

QR_FIELDS: tuple[Field, ...] = (
    Field("studyId", A),
    Field("accessNumber", B),
    Field("patientId", B),
)

DELETE_FIELDS: tuple[Field, ...] = (
    Field("patientId", A),
    Field("studyId", A),
    Field("accessNumber", A),
    Field("studyUid", A),
)

RECONCILE_FIELDS: tuple[Field, ...] = (
    Field("studyId", A),
    Field("accessNumber", A),
    Field("patientName", A),
    Field("studyUid", A),
    Field("studyDate", A, as_datetime),
    Field("reportCnt", A, as_count),
    Field("pdfCnt", A, as_count),
    Field("seriesCnt", A, as_count),
    Field("imageCnt", A, as_count),
)

RANGE_FIELDS: tuple[Field, ...] = (
    Field("startTime", A, as_datetime),
    Field("endTime", A, as_datetime),
)

STUDY_LOG_FIELDS: tuple[Field, ...] = (
    Field("studyId", A),
    Field("accessNumber", A),
    Field("studyUid", A),
    Field("studyDate", A, as_datetime),
    Field("reportCnt", A, as_count),
    Field("pdfCnt", A, as_count),
    Field("seriesCnt", A, as_count),
    Field("imageCnt", A, as_count),
)

# Response data of getStudyQR (§2.3).
QR_IMAGE: Final = "qrImage"
QR_URL: Final = "qrUrl"


# -- OpenAPI: the tables above as pydantic models --------------------------------------
#
# For the OpenAPI document and for clients that want typed records
# (`StudyAdd(patient_id=…).model_dump(by_alias=True, exclude_none=True)`). The
# routes never validate with them: a body is checked by its signature first,
# then by `params.parse` with the tables above (A/B/C classes, raw values kept).

_CLASS_WORDS = {A: "required (A)", B: "expected (B): missing is accepted with a warning",
                C: "optional (C)"}


def parse_range(body: Any) -> tuple[Record, list[Record]]:
    """A period's log (§2.7): its head and its StudyLog entries, by the A/B/C rules (100001 naming the fault)."""
    head = parse(RANGE_FIELDS, body)
    study_list = body.get(STUDY_LIST)
    if study_list is None:
        raise ContractError(Code.PARAM_ERROR, f"missing required field(s): {STUDY_LIST}")
    if not isinstance(study_list, list):
        raise ContractError(Code.PARAM_ERROR, f"{STUDY_LIST} must be an array of StudyLog")
    return head, [parse(STUDY_LOG_FIELDS, item, where=f"{STUDY_LIST}[{i}]") for i, item in enumerate(study_list)]


def _attribute(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _record_model(model_name: str, fields: tuple[Field, ...], doc: str, **extra: Any) -> type[BaseModel]:
    spec: dict[str, Any] = {}
    for f in fields:
        words = [_CLASS_WORDS[f.cls]]
        if f.group is not None:
            words.append(f"one of its group ({', '.join(x.name for x in fields if x.group == f.group)}) is enough")
        if f.convert in FORMATS:
            words.append(FORMATS[f.convert])
        kind: Any = int if f.convert is as_count else str
        bounds: dict[str, Any] = {"ge": 0, "le": COUNT_MAX} if kind is int else {}
        default: Any = ... if f.cls == A else None  # `...`: required
        info = PydanticField(default, alias=f.name, title=f.name, description="; ".join(words),
                             **bounds)
        spec[_attribute(f.name)] = (kind if f.cls == A else kind | None, info)
    spec.update(extra)
    return create_model(model_name, __config__=_RECORD_CONFIG, __doc__=doc, **spec)


# Unknown fields are accepted and kept (contract §1.3).
_RECORD_CONFIG = ConfigDict(extra="allow", populate_by_name=True)

StudyAdd = _record_model("StudyAdd", STUDY_FIELDS, "Study information (§2.1): an upsert keyed by hospital + studyId.")
ReportAdd = _record_model("ReportAdd", REPORT_FIELDS, "A reviewed report (§2.2): an upsert keyed by hospital + "
                                                      "reportNumber.")
StudyQr = _record_model("StudyQr", QR_FIELDS, "Ask for a study's cloud-film QR code (§2.3).")
StudyDelete = _record_model("StudyDelete", DELETE_FIELDS, "Soft-delete a study (§2.5).")
ReconcileLog = _record_model("ReconcileLog", RECONCILE_FIELDS, "One study's counts as the hospital believes it "
                                                               "uploaded them (§2.6).")
StudyLog = _record_model("StudyLog", STUDY_LOG_FIELDS, "One study of a reconcilerangelog (§2.7).")
ReconcileRangeLog = _record_model(
    "ReconcileRangeLog", RANGE_FIELDS, "The studies uploaded in a period (§2.7).",
    # StudyLog is a model made at run time, which mypy cannot take as a type.
    study_list=(list[StudyLog],  # type: ignore[valid-type]
                PydanticField(..., alias=STUDY_LIST, title=STUDY_LIST,
                              description="required (A); a bad entry is named by its index")))


class Envelope(BaseModel):
    """Every answer (§1.2), with HTTP 200: `code` 0 is success, anything else names what was wrong."""

    code: int = PydanticField(description="0 success; the error codes are in docs/api.md")
    message: str = PydanticField(description="成功, or the vendor's wording and then what exactly was wrong")


class QrData(BaseModel):
    qr_image: str = PydanticField(alias=QR_IMAGE, description="PNG of the QR code, base64, no data: prefix")
    qr_url: str = PydanticField(alias=QR_URL, description="the URL the QR code encodes")


class QrEnvelope(Envelope):
    data: QrData | None = PydanticField(None, description="present when code is 0")


# Request body model of each route.
REQUEST_MODELS: dict[str, type[BaseModel]] = {
    PATH_STUDY_ADD: StudyAdd, PATH_REPORT_ADD: ReportAdd, PATH_STUDY_QR: StudyQr,
    PATH_STUDY_DELETE: StudyDelete, PATH_RECONCILE: ReconcileLog, PATH_RECONCILE_RANGE: ReconcileRangeLog,
}
