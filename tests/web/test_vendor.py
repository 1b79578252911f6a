"""The vendor edges (/ris/*, /thirdparty/*): one route class renders every answer and refusal (web/vendor.py)."""

from __future__ import annotations

import logging

import httpx
import orjson
import pytest

from yingyun.contract.codes import Code
from yingyun.contract.signing import signed_headers
from yingyun.core import errors
from yingyun.web.vendor import RIS, THIRDPARTY, vendor_code

STUDY = {"patientId": "P1", "patientName": "张三丰", "patientSex": "M", "studyId": "S1", "accessNumber": "A1",
         "modality": "CT", "phoneNum": "13800138000"}


@pytest.mark.parametrize("exc, ris, thirdparty", [
    (errors.NotFound("no study S1", subject="study"), Code.DATA_NOT_FOUND, Code.STUDY_NOT_FOUND),
    (errors.Gone("study S1 was deleted", subject="study"), Code.DATA_NOT_FOUND, Code.STUDY_NOT_FOUND),
    (errors.NotFound("no doctor d1", subject="doctor"), Code.DOCTOR_NOT_FOUND, Code.DOCTOR_NOT_FOUND),
    (errors.NotFound("no hospital h9", subject="hospital"), Code.INSTITUTION_NOT_FOUND, Code.INSTITUTION_NOT_FOUND),
    (errors.NotFound("no union u9", subject="union"), Code.UNION_NOT_FOUND, Code.UNION_NOT_FOUND),
    (errors.NotFound("no consultation c1", subject="consultation"), Code.DATA_NOT_FOUND, Code.DATA_NOT_FOUND),
    (errors.Invalid("studyId is malformed", field="studyId"), Code.PARAM_ERROR, Code.INVALID_FORMAT),
    (errors.TooLarge("6 experts", subject="experts", limit=5), Code.TOO_MANY_EXPERTS, Code.TOO_MANY_EXPERTS),
    (errors.TooLarge("body too large", limit=1), Code.PARAM_ERROR, Code.INVALID_FORMAT),
    (errors.Conflict("doctor d1 already exists", subject="doctor"), Code.DOCTOR_EXISTS, Code.DOCTOR_EXISTS),
    (errors.Conflict("c1 was cancelled", subject="consultation"), Code.INVALID_DATA, Code.INVALID_DATA),
    (errors.Conflict("c1 is in_progress", subject="consultation", code=Code.MEETING_STARTED_NO_CANCEL),
     Code.MEETING_STARTED_NO_CANCEL, Code.MEETING_STARTED_NO_CANCEL),
    (errors.Forbidden("hospitalId 'h3' is not granted", subject="hospital"), Code.NO_PERMISSION, Code.NO_PERMISSION),
    (errors.RateLimited("slow down", retry_after=1), Code.FETCH_LIMIT, Code.FETCH_LIMIT),
    (errors.Unavailable("the disk is full"), Code.INTERNAL_ERROR, Code.INTERNAL_ERROR),
])
def test_each_kind_of_refusal_reads_as_one_vendor_code_per_family(exc, ris, thirdparty):
    assert (vendor_code(exc, RIS), vendor_code(exc, THIRDPARTY)) == (ris, thirdparty)


def _fault_is_rendered(response: httpx.Response, caplog: pytest.LogCaptureFixture, logger: str) -> None:
    rid = response.headers["x-request-id"]
    assert response.status_code == 200
    assert response.json() == {"code": 1, "message": f"其他内部错误: internal error, request id {rid}"}
    faults = [r for r in caplog.records if r.name == logger and rid in r.getMessage()]
    assert len(faults) == 1 and faults[0].exc_info is not None  # the log line names the request, with its traceback
    assert "13800138000" not in response.text


def test_a_fault_in_a_ris_handler_is_code_1_with_the_request_id_the_log_repeats(runtime, tenant, app_server,
                                                                               monkeypatch, caplog):
    from yingyun.archive import records

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("the index fell over")

    monkeypatch.setattr(records, "upsert_study", broken)
    caplog.set_level(logging.ERROR)
    with httpx.Client(base_url=app_server.url) as http:
        response = http.post("/ris/study/add", content=orjson.dumps(STUDY), headers={
            "Content-Type": "application/json", **signed_headers(tenant["app_id"], tenant["token"])})
        _fault_is_rendered(response, caplog, "yingyun.ris")
        monkeypatch.undo()
        again = http.post("/ris/study/add", content=orjson.dumps(STUDY), headers={
            "Content-Type": "application/json", **signed_headers(tenant["app_id"], tenant["token"])})
    assert again.json()["code"] == 0  # nothing half-written stands in the way


def test_a_fault_in_a_thirdparty_handler_is_code_1_with_the_request_id_the_log_repeats(runtime, tenant, app_server,
                                                                                       monkeypatch, caplog):
    from yingyun.cloud.consultations import service

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("the index fell over")

    _, token = runtime.tenancy.add_partner(app_id="ih", hospitals=["h1"])
    monkeypatch.setattr(service, "list_consultations", broken)
    caplog.set_level(logging.ERROR)
    with httpx.Client(base_url=app_server.url) as http:
        response = http.post("/thirdparty/consultations/list/ih", content=b"{}", headers={
            "Content-Type": "application/json", **signed_headers("ih", token)})
    _fault_is_rendered(response, caplog, "yingyun.thirdparty")
