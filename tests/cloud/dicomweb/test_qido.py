"""QIDO-RS: every query parameter, scoping, deleted studies, C-FIND agreement."""

from __future__ import annotations

import pytest
from pydicom.dataset import Dataset

from yingyun.archive.query import find

J = "application/dicom+json"


def val(item: dict, tag: str):
    v = item.get(tag, {}).get("Value")
    return None if v is None else (v[0] if len(v) == 1 else v)


def uids(resp) -> set[str]:
    assert resp.status_code == 200, resp.text
    return {val(x, "0020000D") for x in resp.json()}


def names(archive, resp) -> set[str]:
    by_uid = {s.study_uid: n for n, s in archive.studies.items()}
    return {by_uid[u] for u in uids(resp)}


def studies(archive, who="ops-all", **params):
    return names(archive, archive.get("/studies", who, params=params))


def test_study_search_default_answer(archive):
    r = archive.get("/studies", params={"PatientID": "PID1"}, headers={"Accept": J})
    assert r.status_code == 200 and r.headers["content-type"].startswith(J)
    [item] = r.json()
    z = archive.studies["zhang"]
    assert val(item, "0020000D") == z.study_uid
    assert item["00100010"] == {"vr": "PN", "Value": [{"Alphabetic": "Zhang^Sanfeng", "Ideographic": "张^三丰"}]}
    assert val(item, "00100020") == "PID1"
    assert val(item, "00080020") == "20261120" and val(item, "00080030") == "093000"
    assert val(item, "00080050") == "ACC1"
    assert val(item, "00080061") == "CT"
    assert val(item, "00081030") == "胸部CT"
    assert val(item, "00080005") == "ISO_IR 192"
    assert val(item, "00080056") == "ONLINE"
    assert val(item, "00201206") == 2  # NumberOfStudyRelatedSeries
    assert val(item, "00201208") == 6  # NumberOfStudyRelatedInstances
    assert val(item, "00081190") == f"{archive.dw}/studies/{z.study_uid}"
    assert list(item) == sorted(item)


def test_related_counts_include_documents(archive):
    [item] = archive.get("/studies", params={"PatientID": "PID2"}).json()
    assert val(item, "00201206") == 2 and val(item, "00201208") == 3  # MR series + SR series
    assert set(item["00080061"]["Value"]) == {"MR", "SR"}


@pytest.mark.parametrize("pattern,expected", [
    ("PID1", {"zhang"}), ("PID*", {"zhang", "wang", "li", "zhao"}), ("PID?", {"zhang", "wang", "li", "zhao"}),
    ("pid1", set()), ("*2", {"wang"}), ("PID9", set()),
])
def test_patient_id(archive, pattern, expected):
    assert studies(archive, PatientID=pattern) == expected


@pytest.mark.parametrize("pattern,expected", [
    ("Zhang^Sanfeng", {"zhang"}), ("zhang*", {"zhang"}), ("ZHANG*", {"zhang"}), ("张*", {"zhang"}),
    ("张^三丰", {"zhang"}), ("张三丰", {"zhang"}), ("*三丰", {"zhang"}), ("王*", {"wang"}), ("王^小東", {"wang"}),
    ("wang xiaodong", {"wang"}), ("*xiao*", {"wang"}), ("?i^*", {"li"}), ("Li^Si", {"li"}), ("李四", {"li"}),
    ("*", {"zhang", "wang", "li", "zhao"}), ("Zhao^L?u", {"zhao"}), ("nobody*", set()), ("Deleted*", set()),
])
def test_patient_name(archive, pattern, expected):
    assert studies(archive, PatientName=pattern) == expected


@pytest.mark.parametrize("pattern,expected", [
    ("20261120", {"zhang"}), ("20261101-20261130", {"zhang", "zhao"}), ("20261001-", {"zhang", "wang", "zhao"}),
    ("-20250101", {"li"}), ("20250101-20250101", {"li"}), ("20200101-20201231", set()),
])
def test_study_date(archive, pattern, expected):
    assert studies(archive, StudyDate=pattern) == expected


@pytest.mark.parametrize("pattern,expected", [
    ("093000", {"zhang"}), ("090000-100000", {"zhang", "zhao"}), ("-085959", {"li"}), ("1400-", {"wang"}),
])
def test_study_time(archive, pattern, expected):
    assert studies(archive, StudyTime=pattern) == expected


def test_date_and_time_together(archive):
    assert studies(archive, StudyDate="20261101-20261130", StudyTime="-095959") == {"zhang"}


def test_accession_number(archive):
    assert studies(archive, AccessionNumber="ACC2") == {"wang"}
    assert studies(archive, AccessionNumber="ACC*") == {"zhang", "wang", "li", "zhao"}
    assert studies(archive, AccessionNumber="ACC5") == set()  # the deleted study


@pytest.mark.parametrize("pattern,expected", [
    ("MR", {"wang"}), ("SR", {"wang"}), ("CT", {"zhang", "zhao"}), ("CT,MR", {"zhang", "wang", "zhao"}),
    ("CT\\CR", {"zhang", "li", "zhao"}), ("US", set()), ("C?", {"zhang", "li", "zhao"}),
])
def test_modalities_in_study(archive, pattern, expected):
    assert studies(archive, ModalitiesInStudy=pattern) == expected


def test_modalities_repeated_parameter(archive):
    r = archive.get("/studies", params=[("ModalitiesInStudy", "MR"), ("ModalitiesInStudy", "CR")])
    assert names(archive, r) == {"wang", "li"}


def test_study_uid_list(archive):
    a, b = archive.studies["zhang"].study_uid, archive.studies["li"].study_uid
    assert studies(archive, StudyInstanceUID=f"{a},{b}") == {"zhang", "li"}
    assert studies(archive, StudyInstanceUID=f"{a}\\{b}") == {"zhang", "li"}
    assert studies(archive, StudyInstanceUID=archive.studies["gone"].study_uid) == set()


def test_attribute_by_tag(archive):
    assert studies(archive, **{"00100020": "PID3"}) == {"li"}
    assert studies(archive, **{"00100010": "李*"}) == {"li"}


def test_limit_offset_newest_first(archive):
    everything = archive.get("/studies").json()
    order = [val(x, "0020000D") for x in everything]
    assert len(order) == 4
    # newest arrival first: gone (deleted) was stored last, then zhao, li, wang, zhang
    assert order == [archive.studies[n].study_uid for n in ("zhao", "li", "wang", "zhang")]
    page1 = archive.get("/studies", params={"limit": 2}).json()
    page2 = archive.get("/studies", params={"limit": 2, "offset": 2}).json()
    assert [val(x, "0020000D") for x in page1 + page2] == order
    assert archive.get("/studies", params={"offset": 10}).json() == []
    assert [val(x, "0020000D") for x in archive.get("/studies", params={"limit": 1, "offset": 3}).json()] == order[3:]
    # offset/limit apply after matching, also for patterns decided outside SQL
    r = archive.get("/studies", params={"PatientName": "*i*", "limit": 1, "offset": 1}).json()
    assert len(r) == 1
    assert "Warning" not in archive.get("/studies", params={"limit": 2}).headers


@pytest.mark.parametrize("params",
                         [{"limit": "x"}, {"limit": "-1"}, {"offset": "1.5"}, {"includefield": "NoSuchKeyword"},
                                    {"fuzzymatching": "maybe"}, {"NoSuchKeyword": "1"}, {"patientid": "PID1"}])
def test_malformed_queries_are_400(archive, params):
    r = archive.get("/studies", params=params)
    assert r.status_code == 400, r.text
    assert r.json()["detail"]


@pytest.mark.parametrize("params", [{"offset": "99999999999999999999"}, {"limit": "99999999999999999999"},
                                    {"offset": "2147483648"}, {"offset": "１"}, {"limit": "5_0"}])
def test_offset_and_limit_beyond_what_the_index_pages_are_400(archive, params):
    r = archive.get("/studies", params=params)
    assert r.status_code == 400, r.text
    assert "from 0 to 2147483647" in r.json()["detail"]
    assert archive.get("/studies", params={"offset": "2147483647"}).json() == []


@pytest.mark.parametrize("level,key", [("/series", "SeriesNumber"), ("/instances", "SeriesNumber"),
                                       ("/instances", "InstanceNumber")])
def test_numbers_beyond_any_column_match_nothing(archive, level, key):
    assert archive.get(level, params={key: "1"}).json()  # the key is compared at this level
    for value in ("99999999999999999999", "2147483648"):
        r = archive.get(level, params={key: value})
        assert r.status_code == 200 and r.json() == [], (key, value, r.text)
    assert archive.get("/series", params={"SeriesNumber": "²"}).status_code == 200


def test_warning_repeats_no_request_text_into_the_header(archive):
    evil = '00081032.x"\r\nSet-Cookie: a=b", 299 evil "forged'
    r = archive.get("/studies", params={evil: "1", "00081032.00080100": "X", "PatientID": "PID1"})
    assert r.status_code == 200 and names(archive, r) == {"zhang"}
    warning = r.headers["Warning"]
    assert "Set-Cookie" not in warning and "evil" not in warning and "set-cookie" not in r.headers
    assert warning.count('"') == 2 and warning.startswith('299 yingyun "')  # one warn-text, closed
    assert "00081032.00080100" in warning and "1 sequence key(s) naming no known attribute" in warning


def test_fuzzymatching_is_accepted_and_ignored(archive):
    r = archive.get("/studies", params={"PatientName": "zhang*", "fuzzymatching": "true"})
    assert names(archive, r) == {"zhang"}
    assert "fuzzy" in r.headers["Warning"] and r.headers["Warning"].startswith("299 ")
    r = archive.get("/studies", params={"PatientName": "zhang*", "fuzzymatching": "false"})
    assert names(archive, r) == {"zhang"} and "Warning" not in r.headers


def test_unsupported_attribute_is_ignored_with_warning(archive):
    r = archive.get("/studies", params={"PatientWeight": "70", "PatientID": "PID1"})
    assert names(archive, r) == {"zhang"}
    assert "PatientWeight" in r.headers["Warning"]
    r = archive.get("/studies", params={"00081032.00080100": "X"})
    assert r.status_code == 200 and "00081032.00080100" in r.headers["Warning"]


def test_includefield(archive):
    base = archive.get("/series", params={"PatientID": "PID1"}).json()
    assert base and all("00100010" not in x for x in base)
    withname = archive.get("/series", params={"PatientID": "PID1", "includefield": "PatientName,00100030"}).json()
    assert all("00100010" in x and val(x, "00100030") == "19800101" for x in withname)
    everything = archive.get("/series", params={"PatientID": "PID1", "includefield": "all"}).json()
    assert all({"00100010", "00081030", "00201206", "00201208", "00080020"} <= set(x) for x in everything)
    repeated = archive.get("/studies", params=[("PatientID", "PID1"), ("includefield", "StudyDescription"),
                                               ("includefield", "PatientSex")]).json()
    assert val(repeated[0], "00100040") == "M"


def test_includefield_of_a_lower_level_is_left_out(archive):
    [item] = archive.get("/studies", params={"PatientID": "PID1", "includefield": "Modality,SOPClassUID"}).json()
    assert "00080060" not in item and "00080016" not in item and item["00080061"]["Value"] == ["CT"]


def test_series_search(archive):
    z = archive.studies["zhang"]
    r = archive.get(f"/studies/{z.study_uid}/series")
    assert r.status_code == 200
    series = r.json()
    assert [val(x, "00200011") for x in series] == [1, 2]
    for x in series:
        assert val(x, "00080060") == "CT" and val(x, "00201209") == 3 and val(x, "0020000D") == z.study_uid
        assert val(x, "00081190") == f"{archive.dw}/studies/{z.study_uid}/series/{val(x, '0020000E')}"
    assert len(archive.get(f"/studies/{z.study_uid}/series", params={"SeriesNumber": "2"}).json()) == 1
    assert archive.get(f"/studies/{z.study_uid}/series", params={"Modality": "MR"}).json() == []
    one = val(series[0], "0020000E")
    assert [val(x, "0020000E") for x in archive.get(f"/studies/{z.study_uid}/series",
                                                   params={"SeriesInstanceUID": one}).json()] == [one]


def test_series_relational_search(archive):
    r = archive.get("/series", params={"PatientID": "PID2"}).json()
    assert sorted(val(x, "00080060") for x in r) == ["MR", "SR"]
    r = archive.get("/series", params={"Modality": "CR"}).json()
    assert [val(x, "0020000D") for x in r] == [archive.studies["li"].study_uid]
    r = archive.get("/series", params={"Modality": "CT,CR"}).json()
    assert {val(x, "0020000D") for x in r} == {archive.studies[n].study_uid for n in ("zhang", "li", "zhao")}


def test_instance_search(archive):
    z = archive.studies["zhang"]
    series = archive.get(f"/studies/{z.study_uid}/series").json()
    se = val(series[0], "0020000E")
    insts = archive.get(f"/studies/{z.study_uid}/series/{se}/instances").json()
    assert [val(x, "00200013") for x in insts] == [1, 2, 3]
    for x in insts:
        assert val(x, "00080016") == "1.2.840.10008.5.1.4.1.1.2"
        assert val(x, "00280010") == 16 and val(x, "00280011") == 16 and val(x, "00280008") == 1
        assert val(x, "00083002") == "1.2.840.10008.1.2.1"
        assert val(x, "00081190").endswith(f"/series/{se}/instances/{val(x, '00080018')}")
    assert len(archive.get(f"/studies/{z.study_uid}/instances").json()) == 6
    assert len(archive.get(f"/studies/{z.study_uid}/instances", params={"InstanceNumber": "2"}).json()) == 2
    sop = val(insts[1], "00080018")
    found = archive.get("/instances", params={"SOPInstanceUID": sop}).json()
    assert [val(x, "00080018") for x in found] == [sop]
    assert len(archive.get("/instances", params={"PatientName": "王*"}).json()) == 3
    sr = archive.get("/instances", params={"SOPClassUID": "1.2.840.10008.5.1.4.1.1.88.11"}).json()
    assert len(sr) == 1 and val(sr[0], "0020000D") == archive.studies["wang"].study_uid


def test_deleted_study_is_invisible_everywhere(archive):
    g = archive.studies["gone"].study_uid
    assert archive.get(f"/studies/{g}/series").json() == []
    assert archive.get(f"/studies/{g}/instances").json() == []
    assert archive.get("/instances", params={"PatientID": "PID5"}).json() == []
    assert archive.get("/series", params={"StudyInstanceUID": g}).json() == []


@pytest.mark.parametrize("who,expected", [
    ("ops-all", {"zhang", "wang", "li", "zhao"}), ("ops-h1", {"zhang", "wang"}), ("ops-h2h3", {"li", "zhao"}),
])
def test_token_scope(archive, who, expected):
    assert studies(archive, who) == expected


def test_partner_scope_includes_union_hospitals(archive):
    import httpx

    r = httpx.get(archive.dw + "/studies", headers=archive.signed("union-u1"))
    assert names(archive, r) == {"zhang", "wang", "li"}
    r = httpx.get(archive.dw + "/studies", headers=archive.signed("ris-h1"))
    assert names(archive, r) == {"zhang", "wang"}


def test_hospital_narrowing(archive):
    assert studies(archive, "ops-all", hospitalId="h2") == {"li"}
    r = archive.get("/studies", "ops-h1", params={"hospitalId": "h2"})
    assert r.status_code == 403


def test_xml_only_accept_is_406(archive):
    r = archive.get("/studies", headers={"Accept": "application/dicom+xml"})
    assert r.status_code == 406


def _cfind(conn, level: str, hospitals: set[str], **keys) -> set[str]:
    ident = Dataset()
    ident.QueryRetrieveLevel = level
    ident.StudyInstanceUID = ""
    for k, v in keys.items():
        setattr(ident, k, v)
    return {str(ds.StudyInstanceUID) for ds in find(conn, ident, hospital_ids=hospitals)}


@pytest.mark.parametrize("keys", [
    {"PatientName": "zh*"}, {"PatientName": "王*"}, {"PatientName": "*^S*"}, {"StudyDate": "20261001-"},
    {"ModalitiesInStudy": "CT"}, {"PatientID": "PID?"}, {"AccessionNumber": "ACC3"}, {"StudyTime": "-1000"},
])
def test_qido_agrees_with_cfind(archive, keys):
    with archive.runtime.db.read() as conn:
        expected = _cfind(conn, "STUDY", {"h1", "h2", "h3"}, **keys)
    assert uids(archive.get("/studies", params=keys)) == expected
