"""Reconciliation, C-FIND (findscu at every level) and bulk import."""

from __future__ import annotations

import io
import json
import subprocess
import zipfile

import pytest
from pydicom import dcmread
from pydicom.fileset import FileSet

import sys
from pathlib import Path

from yingyun.archive.importer import run_import, summary_text
from yingyun.archive.listing import list_studies
from yingyun.archive.reconcile import discrepancies

from ..support.dicom_data import StudySpec, make, make_study, uid
from .conftest import storescu

YINGYUN = str(Path(sys.executable).parent / "yingyun")


def report(runtime, **kw):
    with runtime.db.read() as conn:
        return discrepancies(conn, **kw)


def log_body(spec: StudySpec, study_id: str, **counts) -> dict:
    body = {"studyId": study_id, "accessNumber": spec.accession, "patientName": "张三丰", "studyUid": spec.study_uid,
            "studyDate": "2026-11-20 09:30:00", "reportCnt": 0, "pdfCnt": 0, "seriesCnt": 1, "imageCnt": 2}
    body.update(counts)
    return body


def test_reconcile_mismatch_missing_unlisted_and_clearing(receiver, runtime, ris, tmp_path):
    a, b = StudySpec(accession="A-1"), StudySpec(accession="B-1")
    ris.post("/ris/study/add", {"patientId": "P", "patientName": "张", "patientSex": "M", "studyId": "SA",
                                "accessNumber": "A-1", "modality": "CT", "studyUid": a.study_uid,
                                "studyDate": "2026-11-20 09:30:00"})
    files = make_study(tmp_path / "a", a, series=1, per_series=1)
    assert storescu(receiver.port, *files).returncode == 0
    assert ris.post("/ris/reconcilelog", log_body(a, "SA", imageCnt=2, seriesCnt=1))["code"] == 0
    assert ris.post("/ris/reconcilelog", log_body(b, "SB"))["code"] == 0
    rows = {r["studyId"]: r for r in report(runtime)}
    assert rows["SA"]["kind"] == "mismatch"
    assert rows["SA"]["expected"] == {"series": 1, "images": 2, "reports": 0, "pdf": 0}
    assert rows["SA"]["received"] == {"series": 1, "images": 1, "reports": 0, "pdf": 0}
    assert rows["SB"]["kind"] == "missing" and rows["SB"]["received"]["images"] == 0
    assert rows["SA"]["loggedAt"].endswith("+00:00")  # shown in the zone passed (UTC unless told)
    # the second image arrives: SA clears by itself
    assert storescu(receiver.port, make(tmp_path / "a2.dcm", a, series_uid=dcmread(files[0]).SeriesInstanceUID,
                                         number=2)).returncode == 0
    assert {r["studyId"] for r in report(runtime)} == {"SB"}
    # a range log that does not list SA makes SA "unlisted"; a DICOM-only study in range too
    c = StudySpec(accession="C-1", study_date="20261120")
    assert storescu(receiver.port, *make_study(tmp_path / "c", c, series=1, per_series=1)).returncode == 0
    entry = {k: v for k, v in log_body(b, "SB").items() if k != "patientName"}
    rng = {"startTime": "2026-11-20 00:00:00", "endTime": "2026-11-20 23:59:59", "studyList": [entry]}
    assert ris.post("/ris/reconcilerangelog", rng)["code"] == 0
    rows = report(runtime)
    unlisted = {(r["studyId"], r["studyUid"]) for r in rows if r["kind"] == "unlisted"}
    assert ("SA", a.study_uid) in unlisted and ("", c.study_uid) in unlisted
    # --since after the logs: nothing
    import time

    assert report(runtime, since=time.time() + 1) == []


def test_registered_study_with_nothing_arrived_is_missing(runtime, ris):
    spec = StudySpec(accession="R-1")
    add = {"patientId": "P", "patientName": "张", "patientSex": "M", "studyId": "SR", "accessNumber": "R-1",
           "modality": "CT", "studyUid": spec.study_uid, "studyDate": "2026-11-20 09:30:00", "status": "registered"}
    assert ris.post("/ris/study/add", add)["code"] == 0
    assert ris.post("/ris/reconcilelog", log_body(spec, "SR", imageCnt=2, seriesCnt=1))["code"] == 0
    (row,) = report(runtime)
    assert row["kind"] == "missing" and row["received"] == {"series": 0, "images": 0, "reports": 0, "pdf": 0}
    # a report arrives: something of the study is here, so the counts differ
    assert ris.post("/ris/report/add", {"reportNumber": "RN", "studyId": "SR", "accessNumber": "R-1",
                                        "imageDescription": "所见", "conclusion": "结论"})["code"] == 0
    (row,) = report(runtime)
    assert row["kind"] == "mismatch" and row["received"]["reports"] == 1
    # a registered study the hospital expects nothing of is no discrepancy
    empty = StudySpec(accession="E-1")
    assert ris.post("/ris/study/add",
                    dict(add, studyId="SE", accessNumber="E-1", studyUid=empty.study_uid))["code"] == 0
    assert ris.post("/ris/reconcilelog", log_body(empty, "SE", imageCnt=0, seriesCnt=0))["code"] == 0
    assert [r["studyId"] for r in report(runtime)] == ["SR"]


def test_reconcile_cli_json(receiver, runtime, ris, settings):
    spec = StudySpec()
    ris.post("/ris/reconcilelog", log_body(spec, "SX"))
    out = subprocess.run([YINGYUN, "admin", "reconcile", "--json",
                          "--data-dir", str(settings.data_dir), "--database-url", settings.database_url],
                         capture_output=True, text=True, check=True).stdout
    rows = json.loads(out)
    assert rows[0]["kind"] == "missing" and rows[0]["studyId"] == "SX"
    assert set(rows[0]) == {"kind", "hospitalId", "studyId", "accessNumber", "studyUid", "expected", "received",
                            "loggedAt"}
    out = subprocess.run([YINGYUN, "admin", "reconcile", "--json", "--since",
                          "2999-01-01", "--data-dir", str(settings.data_dir), "--database-url", settings.database_url],
                         capture_output=True, text=True, check=True).stdout
    assert json.loads(out) == []


def findscu(port: int, level: str, *keys: str, root="-S") -> list[dict]:
    args = ["/usr/bin/findscu", "-aet", "PACS1", "-aec", "YINGYUN", root, "-k", f"QueryRetrieveLevel={level}"]
    for k in keys:
        args += ["-k", k]
    out = subprocess.run(args + ["127.0.0.1", str(port)], capture_output=True, text=True, timeout=60,
                         env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"})
    assert out.returncode == 0, out.stderr
    answers, current = [], None
    for line in (out.stdout + out.stderr).splitlines():
        if "Find Response:" in line:
            current = {}
            answers.append(current)
        elif current is not None and line.startswith("I: (") and "[" in line:
            tag = line[3:14]
            value = line.split("[", 1)[1].rsplit("]", 1)[0]
            current[tag] = value.strip(" \x00")
    return answers


@pytest.fixture
def populated(receiver, runtime, tmp_path):
    specs = {
        "zhang": StudySpec(accession="ACC-Z", patient_id="PZ", patient_name="Zhang^Sanfeng=张^三丰",
                           study_date="20261101"),
        "wang": StudySpec(accession="ACC-W", patient_id="PW", patient_name="Wang^XiaoDong=王^小東",
                          study_date="20261115"),
        "li": StudySpec(accession="ACC-L", patient_id="PL", patient_name="Li^Si", study_date="20261201", modality="MR"),
    }
    for name, spec in specs.items():
        assert storescu(receiver.port, *make_study(tmp_path / name, spec, series=2, per_series=2)).returncode == 0
    return specs


def test_cfind_study_level(receiver, populated):
    all_ = findscu(receiver.port, "STUDY", "StudyInstanceUID", "PatientName", "NumberOfStudyRelatedInstances")
    assert len(all_) == 3
    by_date = findscu(receiver.port, "STUDY", "StudyDate=20261101-20261120", "StudyInstanceUID")
    assert {a["(0020,000d)"] for a in by_date} == {populated["zhang"].study_uid, populated["wang"].study_uid}
    wild = findscu(receiver.port, "STUDY", "PatientName=wang*", "StudyInstanceUID")  # case-insensitive
    assert [a["(0020,000d)"] for a in wild] == [populated["wang"].study_uid]
    chinese = findscu(receiver.port, "STUDY", "SpecificCharacterSet=ISO_IR 192", "PatientName=张*", "StudyInstanceUID")
    assert [a["(0020,000d)"] for a in chinese] == [populated["zhang"].study_uid]
    uids = f"StudyInstanceUID={populated['zhang'].study_uid}\\{populated['li'].study_uid}"
    assert len(findscu(receiver.port, "STUDY", uids)) == 2
    mr = findscu(receiver.port, "STUDY", "ModalitiesInStudy=MR", "StudyInstanceUID")
    assert [a["(0020,000d)"] for a in mr] == [populated["li"].study_uid]
    counts = findscu(receiver.port, "STUDY", f"StudyInstanceUID={populated['li'].study_uid}",
                     "NumberOfStudyRelatedSeries", "NumberOfStudyRelatedInstances")
    assert counts[0]["(0020,1206)"] == "2" and counts[0]["(0020,1208)"] == "4"


def test_cfind_series_and_image_levels(receiver, populated):
    uid_ = populated["wang"].study_uid
    series = findscu(receiver.port, "SERIES", f"StudyInstanceUID={uid_}", "SeriesInstanceUID", "Modality",
                     "NumberOfSeriesRelatedInstances")
    assert len(series) == 2 and all(s["(0020,1209)"] == "2" for s in series)
    images = findscu(receiver.port, "IMAGE", f"StudyInstanceUID={uid_}",
                     f"SeriesInstanceUID={series[0]['(0020,000e)']}",
                     "SOPInstanceUID", "InstanceNumber")
    assert len(images) == 2
    one = findscu(receiver.port, "IMAGE", f"StudyInstanceUID={uid_}", f"SeriesInstanceUID={series[0]['(0020,000e)']}",
                  "InstanceNumber=2", "SOPInstanceUID")
    assert len(one) == 1


def test_cfind_hides_deleted_studies(receiver, runtime, ris, populated):
    spec = populated["zhang"]
    ris.post("/ris/study/add", {"patientId": "PZ", "patientName": "张三丰", "patientSex": "M", "studyId": "SZ",
                                "accessNumber": spec.accession, "modality": "CT", "studyUid": spec.study_uid})
    assert len(findscu(receiver.port, "STUDY", f"StudyInstanceUID={spec.study_uid}")) == 1
    r = ris.post("/ris/study/delete", {"patientId": "PZ", "studyId": "SZ", "accessNumber": spec.accession,
                                       "studyUid": spec.study_uid})
    assert r["code"] == 0
    assert findscu(receiver.port, "STUDY", f"StudyInstanceUID={spec.study_uid}") == []


def _palette(path: Path) -> Path:
    """A Color Palette Storage object: a PACS's own, with no patient or study."""
    from pydicom.dataset import Dataset, FileMetaDataset

    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID = "1.2.840.10008.5.1.4.39.1"
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID = uid()
    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.1"
    ds.ContentLabel = "HOT_IRON"
    ds.RedPaletteColorLookupTableDescriptor = [256, 0, 8]
    ds.RedPaletteColorLookupTableData = bytes(range(256))
    ds.save_as(path, enforce_file_format=True)
    return path


def test_import_folder_zip_dicomdir(runtime, tenant, tmp_path):
    a, b, c, d = StudySpec(), StudySpec(), StudySpec(), StudySpec()
    folder = tmp_path / "folder"
    make_study(folder, a, series=1, per_series=3)
    (folder / "notes.txt").write_text("not dicom")
    _palette(folder / "palette.dcm")
    cut = make(folder / "cut.dcm", a, series_uid=uid())
    cut.write_bytes(cut.read_bytes()[:-100])
    # A zip found inside a folder is opened like one given as an argument; a
    # zip inside that zip is named, not opened.
    inner = tmp_path / "inner.zip"
    with zipfile.ZipFile(inner, "w") as zf:
        zf.writestr("x.txt", "x")
    (folder / "sub").mkdir()
    with zipfile.ZipFile(folder / "sub" / "export.zip", "w") as zf:
        for f in make_study(tmp_path / "dsrc2", d, series=1, per_series=2):
            zf.write(f, arcname=f"IMG/{f.stem.upper()}")
        zf.write(inner, arcname="nested.zip")
    zpath = tmp_path / "cd.zip"
    with zipfile.ZipFile(zpath, "w") as zf:
        for f in make_study(tmp_path / "zsrc", b, series=1, per_series=2):
            zf.write(f, arcname=f"IMG/{f.stem.upper()}")  # no .dcm suffix, like a CD
    fs = FileSet()
    for f in make_study(tmp_path / "dsrc", c, series=1, per_series=2):
        fs.add(dcmread(f))
    fs.write(tmp_path / "cd")
    fs._stage["t"].cleanup()  # pydicom's staging folder: no close() of its own, and a warning if left to the GC
    err = io.StringIO()
    summary = run_import(runtime.instances, spool_dir=runtime.settings.spool_dir,
                         hospital_id="h1", paths=[str(folder), str(zpath), str(tmp_path / "cd")], out=err)
    assert err.getvalue() == ""  # no progress bar where there is no terminal
    outcomes = {o["path"]: (o["outcome"], o.get("reason", "")) for o in summary["outcomes"]}
    assert summary["stored"] == 9
    assert outcomes[str(folder / "notes.txt")] == ("skipped", "not a DICOM file")
    assert outcomes[str(folder / "palette.dcm")] == \
        ("skipped", "not a stored object: Color Palette Storage (a non-patient object)")
    assert outcomes[str(tmp_path / "cd" / "DICOMDIR")] == ("skipped", "DICOMDIR: its referenced files were imported")
    assert outcomes[str(folder / "sub" / "export.zip") + "!nested.zip"] == \
        ("skipped", "zip inside a zip: not opened (unpack it first)")
    assert outcomes[str(cut)] == ("failed", "file is truncated")
    assert summary["failed"] == [{"file": str(cut), "reason": "file is truncated"}]
    assert all(o["outcome"] in ("stored", "skipped", "failed") for o in summary["outcomes"])
    assert all(o.get("sopInstanceUid") for o in summary["outcomes"] if o["outcome"] == "stored")
    text = summary_text(summary)
    for path, (outcome, reason) in outcomes.items():
        if outcome != "stored":
            assert f"  {path}: {reason}" in text
    with runtime.db.read() as conn:
        rows = {r["studyUid"]: r["received"]["images"] for r in list_studies(conn)}
    assert rows == {a.study_uid: 3, b.study_uid: 2, c.study_uid: 2, d.study_uid: 2}
    again = run_import(runtime.instances, spool_dir=runtime.settings.spool_dir,
                       hospital_id="h1", paths=[str(folder)], out=io.StringIO())
    assert again["stored"] == 0 and again["duplicates"] == 5


def test_import_cli_paths_json_and_progress(runtime, tenant, tmp_path):
    import os
    import pty

    spec = StudySpec()
    folder = tmp_path / "f"
    make_study(folder, spec, series=1, per_series=2)
    env = {**os.environ, "YINGYUN_DATA_DIR": str(runtime.settings.data_dir)}
    base = [YINGYUN, "import", "--database-url", runtime.settings.database_url]
    # A path that does not exist: an error naming it, and nothing imported.
    r = subprocess.run([*base, str(folder), str(tmp_path / "nope")], capture_output=True, text=True, env=env)
    assert r.returncode == 1 and f"no such file or folder: {tmp_path / 'nope'}" in r.stderr
    with runtime.db.read() as conn:
        assert list_studies(conn) == []
    # --json: every file's outcome; no progress bar into a pipe.
    r = subprocess.run([*base, "--json", str(folder)], capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert sorted(o["outcome"] for o in out["outcomes"]) == ["stored", "stored"]
    assert "ETA" not in r.stderr
    # On a terminal the bar is drawn; the summary names what was not stored.
    (folder / "junk.bin").write_bytes(b"\x01" * 300)
    primary, secondary = pty.openpty()
    try:
        r = subprocess.run([*base, str(folder)], stdout=subprocess.PIPE, stderr=secondary, text=True, env=env)
        os.close(secondary)
        drawn = b""
        while True:
            try:
                chunk = os.read(primary, 65536)
            except OSError:
                break
            if not chunk:
                break
            drawn += chunk
    finally:
        os.close(primary)
    assert r.returncode == 0
    assert b"ETA" in drawn and b"files/s" in drawn
    assert "2 duplicate(s)" in r.stdout and f"  {folder / 'junk.bin'}: not a DICOM file" in r.stdout
