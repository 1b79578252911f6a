import pytest

from yingyun.contract import gateway_api as g
from yingyun.contract.codes import Code
from yingyun.contract.envelope import ContractError
from yingyun.contract.params import parse

FULL = {"patientId": "P1", "patientName": "张三", "patientSex": "M", "studyId": "S1", "accessNumber": "A1", "modality": "CT"}


def test_every_missing_a_field_is_named():
    with pytest.raises(ContractError) as e:
        parse(g.STUDY_FIELDS, {"patientName": "x", "studyId": ""})
    assert e.value.code == Code.PARAM_ERROR
    for name in ("patientId", "patientSex", "studyId", "accessNumber", "modality"):
        assert name in e.value.detail
    assert "patientName" not in e.value.detail


def test_missing_b_and_malformed_b_c_are_warnings_with_raw_kept():
    body = dict(FULL, studyDate="2026/01/01", appointDate="tomorrow", imageCnt="many", homeAddress=None)
    rec = parse(g.STUDY_FIELDS, body)
    assert "studyDate: malformed (B)" in rec.warnings
    assert "appointDate: malformed (C)" in rec.warnings
    assert "imageCnt: malformed (B)" in rec.warnings
    assert "phoneNum: missing (B)" in rec.warnings
    assert not any(w.startswith("homeAddress") for w in rec.warnings)  # C missing: no warning
    assert "studyDate" not in rec.values and rec.raw["studyDate"] == "2026/01/01"


@pytest.mark.parametrize("value,ok", [("M", True), ("f", True), ("O", True), ("X", False), (1, False), ({"a": 1}, False)])
def test_malformed_a_value_is_refused(value, ok):
    body = dict(FULL, patientSex=value)
    if ok:
        assert parse(g.STUDY_FIELDS, body).values["patientSex"] in ("M", "F", "O")
    else:
        with pytest.raises(ContractError) as e:
            parse(g.STUDY_FIELDS, body)
        assert "patientSex" in e.value.detail


def test_formats():
    rec = parse(g.STUDY_FIELDS, dict(FULL, studyDate="2026-02-03 14:05:06", patientBirthday="1990-02-28",
                                      imageCnt="12", seriesCnt=3, studyCategory="Emergency", status="final"))
    assert rec.values["studyDate"] == "2026-02-03 14:05:06"
    assert rec.values["patientBirthday"] == "1990-02-28"
    assert rec.values["imageCnt"] == 12 and rec.values["seriesCnt"] == 3
    assert rec.values["studyCategory"] == "emergency" and rec.values["status"] == "final"
    bad = parse(g.STUDY_FIELDS, dict(FULL, patientBirthday="1990-02-30", studyDate="2026-13-01 00:00:00", seriesCnt=True))
    assert {"patientBirthday: malformed (B)", "studyDate: malformed (B)", "seriesCnt: malformed (B)"} <= set(bad.warnings)


def test_numbers_for_ids_are_their_text():
    rec = parse(g.STUDY_FIELDS, dict(FULL, patientId=12345))
    assert rec.values["patientId"] == "12345"


def test_unknown_fields_are_kept_raw():
    rec = parse(g.STUDY_FIELDS, dict(FULL, vendorExtra={"x": [1, 2]}))
    assert rec.raw["vendorExtra"] == {"x": [1, 2]}


@pytest.mark.parametrize("value,count", [(0, 0), ("12", 12), (" +007 ", 7), (3.0, 3), (2**31 - 1, 2**31 - 1),
                                         ("2147483647", 2**31 - 1)])
def test_counts_in_range(value, count):
    from yingyun.contract.params import as_count

    assert as_count(value) == count


@pytest.mark.parametrize("value", [2**31, 2**63, 1e300, -1, "-1", 2.5, "1e3", "٣", "99999999999999999999", "9" * 5000,
                                   True, None, [1]])
def test_counts_out_of_range_or_not_integers_are_malformed(value):
    from yingyun.contract.params import Malformed, as_count

    with pytest.raises(Malformed, match="from 0 to 2147483647"):
        as_count(value)
