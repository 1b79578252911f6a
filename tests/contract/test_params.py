import pytest

from yingyun.contract import gateway_api as g
from yingyun.contract.codes import Code
from yingyun.contract.envelope import ContractError
from yingyun.contract.params import parse

FULL = {"patientId": "P1", "patientName": "张三", "patientSex": "M", "studyId": "S1", "accessNumber": "A1",
        "modality": "CT"}


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


@pytest.mark.parametrize("value,ok",
                         [("M", True), ("f", True), ("O", True), ("X", False), (1, False), ({"a": 1}, False)])
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
    bad = parse(g.STUDY_FIELDS,
                dict(FULL, patientBirthday="1990-02-30", studyDate="2026-13-01 00:00:00", seriesCnt=True))
    assert {"patientBirthday: malformed (B)", "studyDate: malformed (B)",
            "seriesCnt: malformed (B)"} <= set(bad.warnings)


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


@pytest.mark.parametrize("value,sex", [("男", "M"), ("女", "F"), ("未知", "O"), (" 女 ", "F"), ("m", "M")])
def test_chinese_sex_words_are_m_f_o(value, sex):
    assert parse(g.STUDY_FIELDS, dict(FULL, patientSex=value)).values["patientSex"] == sex


MINIMAL_WARNINGS = [
    "patientAge/patientAgeUnit/patientBirthday: missing (B)",
    "size/weight: missing (B)",
    "phoneNum: missing (B)",
    "medicalInsuranceNum/idCardNum/hkAndMarcoPermitNum/passportNum/otherInfo: missing (B)",
    "bodyPart: missing (B)",
    "studyDesc: missing (B)",
    "studyDate: missing (B)",
    "scanMode: missing (B)",
    "studyCategory: missing (B)",
    "applyDept/applyDeptId: missing (B)",
    "applyDoctor/applyDoctorId: missing (B)",
    "hisNum: missing (B)",
    "examDept/examDeptId: missing (B)",
    "examDoctor/examDoctorId: missing (B)",
    "status: missing (B)",
    "studyUid: missing (B)",
    "imageCnt/reportCnt/pdfCnt/seriesCnt: missing (B)",
]


def test_a_group_of_b_fields_is_missing_once_and_only_when_all_of_it_is():
    # A fields only: each group said once, naming its fields, in table order (31 B fields, 17 warnings)
    assert parse(g.STUDY_FIELDS, FULL).warnings == MINIMAL_WARNINGS
    # one identity number, a department by id, a doctor by name, an age without unit, one count: those groups are there
    rec = parse(g.STUDY_FIELDS, dict(FULL, passportNum="E123", applyDeptId="D1", examDoctor="李", patientAge="40",
                                     imageCnt=3))
    gone = {"medicalInsuranceNum/idCardNum/hkAndMarcoPermitNum/passportNum/otherInfo: missing (B)",
            "applyDept/applyDeptId: missing (B)", "examDoctor/examDoctorId: missing (B)",
            "patientAge/patientAgeUnit/patientBirthday: missing (B)",
            "imageCnt/reportCnt/pdfCnt/seriesCnt: missing (B)"}
    assert rec.warnings == [w for w in MINIMAL_WARNINGS if w not in gone]
    # a field sent malformed is present (the group is not missing) and is named as malformed
    rec = parse(g.STUDY_FIELDS, dict(FULL, patientBirthday="soon"))
    assert "patientBirthday: malformed (B)" in rec.warnings
    assert not any(w.startswith("patientAge") for w in rec.warnings)
    # empty strings count as not sent
    rec = parse(g.STUDY_FIELDS, dict(FULL, idCardNum="", passportNum="  "))
    assert "medicalInsuranceNum/idCardNum/hkAndMarcoPermitNum/passportNum/otherInfo: missing (B)" in rec.warnings
