"""Tests for yingyun.core.dicom: index fields, validation, charsets, file meta.

Datasets come from three places: pydicom's bundled charset and test files
(decoded by pydicom as an independent oracle), datasets written by pydicom
with a given Specific Character Set, and raw bytes assembled here element by
element where a case must be malformed on purpose (bad UIDs, lying transfer
syntaxes, group 0002 inside a dataset) or exactly controlled.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import os
import random
import struct
import subprocess
import time
import tracemalloc
import warnings
import zlib
from pathlib import Path

import numpy as np
import pydicom
import pydicom.data
import pytest
from pydicom.data import get_charset_files
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset

from yingyun.core.dicom import (
    InstanceInfo,
    InvalidInstance,
    build_file_meta,
    display_person_name,
    is_storable_uid,
    is_valid_uid,
    kind_of_sop_class,
    native_pixel_bytes,
    read_dataset_info,
    read_file_info,
)
from yingyun.dicomnet.status import Status
from yingyun.dicomnet.uids import IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME

IMPLICIT = "1.2.840.10008.1.2"
EXPLICIT = "1.2.840.10008.1.2.1"
BIG = "1.2.840.10008.1.2.2"
DEFLATED = "1.2.840.10008.1.2.1.99"
JPEG_BASELINE = "1.2.840.10008.1.2.4.50"

CT = "1.2.840.10008.5.1.4.1.1.2"
ENHANCED_CT = "1.2.840.10008.5.1.4.1.1.2.1"
SC = "1.2.840.10008.5.1.4.1.1.7"
COMPREHENSIVE_SR = "1.2.840.10008.5.1.4.1.1.88.33"
KOS = "1.2.840.10008.5.1.4.1.1.88.59"
PDF = "1.2.840.10008.5.1.4.1.1.104.1"
CDA = "1.2.840.10008.5.1.4.1.1.104.2"

STUDY = "1.2.826.0.1.3680043.8.498.1"
SERIES = "1.2.826.0.1.3680043.8.498.1.1"
SOP = "1.2.826.0.1.3680043.8.498.1.1.1"

# --------------------------------------------------------------------------
# Raw dataset assembly

_VR32 = {"OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV"}


def element(
    tag: int, vr: str, value: bytes | str | int, *, implicit: bool = False, little: bool = True, pad: bool = True
) -> bytes:
    e = "<" if little else ">"
    if isinstance(value, int):
        value = struct.pack(e + "H", value)
    elif isinstance(value, str):
        value = value.encode("ascii")
    if len(value) % 2 and pad:
        value += b"\0" if vr in ("UI", "OB") else b" "
    group, elem = tag >> 16, tag & 0xFFFF
    if implicit:
        return struct.pack(e + "HHL", group, elem, len(value)) + value
    if vr in _VR32:
        return struct.pack(e + "HH", group, elem) + vr.encode() + b"\0\0" + struct.pack(e + "L", len(value)) + value
    return struct.pack(e + "HH", group, elem) + vr.encode() + struct.pack(e + "H", len(value)) + value


def base_elements(**overrides: tuple[str, bytes | str | int] | None) -> dict[int, tuple[str, bytes | str | int]]:
    elements: dict[int, tuple[str, bytes | str | int]] = {
        0x00080016: ("UI", CT),
        0x00080018: ("UI", SOP),
        0x00080020: ("DA", "20240102"),
        0x00080060: ("CS", "CT"),
        0x00100010: ("PN", "Doe^John"),
        0x00100020: ("LO", "PID-1"),
        0x0020000D: ("UI", STUDY),
        0x0020000E: ("UI", SERIES),
        0x00200013: ("IS", "7"),
        0x00280010: ("US", 2),
        0x00280011: ("US", 2),
        0x7FE00010: ("OW", b"\x01\x00\x02\x00\x03\x00\x04\x00"),
    }
    names = {
        "sop_class": 0x00080016,
        "sop_instance": 0x00080018,
        "study": 0x0020000D,
        "series": 0x0020000E,
        "charset": 0x00080005,
        "name": 0x00100010,
        "frames": 0x00280008,
        "pixels": 0x7FE00010,
    }
    for key, value in overrides.items():
        tag = names[key]
        if value is None:
            elements.pop(tag, None)
        else:
            elements[tag] = value
    return elements


def encode(elements: dict[int, tuple[str, bytes | str | int]], ts: str = EXPLICIT) -> bytes:
    implicit = ts == IMPLICIT
    little = ts != BIG
    raw = b"".join(
        element(tag, vr, value, implicit=implicit, little=little) for tag, (vr, value) in sorted(elements.items())
    )
    if ts == DEFLATED:
        z = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
        return z.compress(raw) + z.flush()
    return raw


def pydicom_bytes(ds: Dataset, *, implicit: bool = False) -> bytes:
    fp = DicomBytesIO()
    fp.is_little_endian = True
    fp.is_implicit_VR = implicit
    write_dataset(fp, ds)
    return fp.getvalue()


def pydicom_dataset(charset: str | list[str] | None = None, **values: object) -> Dataset:
    ds = Dataset()
    if charset is not None:
        ds.SpecificCharacterSet = charset
    ds.SOPClassUID = values.pop("SOPClassUID", CT)
    ds.SOPInstanceUID = SOP
    ds.StudyInstanceUID = STUDY
    ds.SeriesInstanceUID = SERIES
    for keyword, value in values.items():
        setattr(ds, keyword, value)
    return ds


# --------------------------------------------------------------------------
# UIDs, kinds, names


@pytest.mark.parametrize(
    "uid",
    ["0", "1", "1.2", "1.2.840.10008.1.2.1", "2.25.5826844465612139881965182256860673233", "1.0.2", "1." + "2" * 62],
)
def test_valid_uids(uid: str) -> None:
    assert is_valid_uid(uid)


@pytest.mark.parametrize(
    "uid",
    [
        "",
        "../../etc",
        "1.2/3",
        "1.2\\3",
        "1.02",
        "01.2",
        "1..2",
        ".1",
        "1.",
        "1." + "2" * 63,  # 65 characters
        " 1.2",
        "1.2 ",
        "1.2\n",
        "1.2\x00",
        "1.2.a",
        "١.٢",  # Arabic-Indic digits pass str.isdigit()
        "-1.2",
        None,
        1.2,
    ],
)
def test_invalid_uids(uid: object) -> None:
    assert not is_valid_uid(uid)  # type: ignore[arg-type]


HEX_UID = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"  # 64 hex digits


@pytest.mark.parametrize(
    "uid", ["1.2.840.10008.1.2.1", HEX_UID, "1.02", "01.2", "1.", ".1", "1.2.3 x", "1.2.a", "A-b_c~!#%"]
)
def test_storable_uids(uid: str) -> None:
    assert is_storable_uid(uid)


@pytest.mark.parametrize(
    "uid",
    ["", "../../etc", "..", "1..2", "1.2/3", "/1.2", "1.2\\3", "1.2\n", "1.2\x00", "1.2\x01", "\x7f", "1.2\t3",
     "1." + "2" * 63, "\u4e00", "١.٢", None, 1.2],
)
def test_unstorable_uids(uid: object) -> None:
    assert not is_storable_uid(uid)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "sop_class, kind",
    [
        ("1.2.840.10008.5.1.4.1.1.88.11", "sr"),  # Basic Text SR
        ("1.2.840.10008.5.1.4.1.1.88.22", "sr"),  # Enhanced SR
        (COMPREHENSIVE_SR, "sr"),
        ("1.2.840.10008.5.1.4.1.1.88.34", "sr"),  # Comprehensive 3D SR
        ("1.2.840.10008.5.1.4.1.1.88.35", "sr"),  # Extensible SR
        ("1.2.840.10008.5.1.4.1.1.88.40", "sr"),  # Procedure Log
        ("1.2.840.10008.5.1.4.1.1.88.50", "sr"),  # Mammography CAD SR
        ("1.2.840.10008.5.1.4.1.1.88.65", "sr"),  # Chest CAD SR
        ("1.2.840.10008.5.1.4.1.1.88.67", "sr"),  # X-Ray Radiation Dose SR
        ("1.2.840.10008.5.1.4.1.1.88.76", "sr"),  # Enhanced X-Ray Radiation Dose SR
        ("1.2.840.10008.5.1.4.1.1.88.1", "sr"),  # Text SR - Trial (retired)
        ("1.2.840.10008.5.1.4.1.1.79.1", "sr"),  # Macular Grid Thickness and Volume Report
        (KOS, "document"),
        (PDF, "pdf"),
        (CDA, "document"),
        ("1.2.840.10008.5.1.4.1.1.104.3", "document"),  # STL
        ("1.2.840.10008.5.1.4.1.1.104.4", "document"),  # OBJ
        ("1.2.840.10008.5.1.4.1.1.104.5", "document"),  # MTL
        (CT, "image"),
        (ENHANCED_CT, "image"),
        ("1.2.840.10008.5.1.4.1.1.4", "image"),  # MR
        ("1.2.840.10008.5.1.4.1.1.1.2", "image"),  # Digital Mammography
        ("1.2.840.10008.5.1.4.1.1.11.1", "image"),  # GSPS: not SR, not a document
        ("1.2.840.10008.5.1.4.1.1.88", "image"),  # not inside the SR arc
    ],
)
def test_kind_of_sop_class(sop_class: str, kind: str) -> None:
    assert kind_of_sop_class(sop_class) == kind


@pytest.mark.parametrize(
    "pn, shown",
    [
        ("Doe^John", "Doe^John"),
        ("Doe^John^^^", "Doe^John"),
        ("Wang^XiaoDong=王^小東", "王小東"),
        ("Wang^XiaoDong=王^小東=", "王小東"),
        ("=王^小東", "王小東"),
        ("张三丰", "张三丰"),
        ("张^三丰", "张三丰"),
        ("约翰·史密斯", "约翰·史密斯"),
        ("Zhang^San", "Zhang^San"),
        ("Yamada^Tarou=山田^太郎=やまだ^たろう", "山田太郎"),
        ("ﾔﾏﾀﾞ^ﾀﾛｳ", "ﾔﾏﾀﾞﾀﾛｳ"),
        ("Hong^Gildong=洪^吉洞=홍^길동", "洪吉洞"),
        ("==やまだ^たろう", "やまだたろう"),
        ("^^^^", ""),
        ("", ""),
        ("Doe^John\\Roe^Jane", "Doe^John"),
    ],
)
def test_display_person_name(pn: str, shown: str) -> None:
    assert display_person_name(pn) == shown


# --------------------------------------------------------------------------
# Character sets


CHARSET_FILES: dict[str, tuple[str, str]] = {
    # file: (patient_name, patient_name_raw)
    "chrArab.dcm": ("قباني^لنزار", "قباني^لنزار"),
    "chrFren.dcm": ("Buc^Jérôme", "Buc^Jérôme"),
    "chrFrenMulti.dcm": ("Buc^Jérôme", "Buc^Jérôme"),
    "chrGerm.dcm": ("Äneas^Rüdiger", "Äneas^Rüdiger"),
    "chrGreek.dcm": ("Διονυσιος", "Διονυσιος"),
    "chrH31.dcm": ("山田太郎", "Yamada^Tarou=山田^太郎=やまだ^たろう"),
    "chrH32.dcm": ("山田太郎", "ﾔﾏﾀﾞ^ﾀﾛｳ=山田^太郎=やまだ^たろう"),
    "chrHbrw.dcm": ("שרון^דבורה", "שרון^דבורה"),
    "chrI2.dcm": ("洪吉洞", "Hong^Gildong=洪^吉洞=홍^길동"),
    "chrJapMulti.dcm": ("やまだたろう", "やまだ^たろう"),
    "chrJapMultiExplicitIR6.dcm": ("やまだたろう", "やまだ^たろう"),
    "chrKoreanMulti.dcm": ("김희중", "김희중"),
    "chrRuss.dcm": ("Люкceмбypг", "Люкceмбypг"),
    "chrX1.dcm": ("王小東", "Wang^XiaoDong=王^小東"),
    "chrX2.dcm": ("王小东", "Wang^XiaoDong=王^小东"),
}
# Minimal datasets with a charset-switching sequence and no UIDs at all.
SQ_ONLY_FILES = {"chrSQEncoding.dcm", "chrSQEncoding1.dcm"}


def _charset_file(name: str) -> str:
    (path,) = get_charset_files(name)
    return path


def test_charset_corpus_is_the_one_expected() -> None:
    names = {os.path.basename(p) for p in get_charset_files("chr*.dcm")}
    assert names == set(CHARSET_FILES) | SQ_ONLY_FILES


@pytest.mark.parametrize("name", sorted(CHARSET_FILES))
def test_charset_file_names(name: str) -> None:
    shown, raw = CHARSET_FILES[name]
    info = read_file_info(_charset_file(name))
    assert info.patient_name == shown
    assert info.patient_name_raw == raw
    # pydicom as an independent decoder of the whole PN value
    assert info.patient_name_raw == str(pydicom.dcmread(_charset_file(name)).PatientName)


def test_charset_file_other_fields() -> None:
    info = read_file_info(_charset_file("chrKoreanMulti.dcm"))
    assert info.specific_character_set == "\\ISO 2022 IR 149"
    assert (info.study_description, info.series_description) == ("Chest", "Chest PA PA")
    assert (info.modality, info.body_part, info.patient_sex, info.patient_birth_date) == ("CR", "CHEST", "M",
                                                                                          "18000101")
    assert (info.accession_number, info.patient_id) == ("2008050417172310", "2008-3")
    assert (info.rows, info.columns, info.series_number, info.instance_number) == (32, 32, 1, 1)
    # No Pixel Data in this file and no Number of Frames.
    assert info.number_of_frames == 0
    info = read_file_info(_charset_file("chrH31.dcm"))
    assert (info.patient_id, info.study_id, info.referring_physician) == ("H31EXAMPLE", "H31EXAMPLE", "")
    assert info.number_of_frames == 1


@pytest.mark.parametrize("name", sorted(SQ_ONLY_FILES))
def test_charset_sequence_files(name: str, tmp_path: Path) -> None:
    with pytest.raises(InvalidInstance) as caught:
        read_file_info(_charset_file(name))
    assert caught.value.reason == "missing SOP Class UID"
    assert caught.value.status == Status.CANNOT_DECODE_DATA_SET
    # With UIDs added, the sequence in another character set is walked past
    # and the top-level text still decodes with the dataset's own set.
    ds = pydicom.dcmread(_charset_file(name))
    ds.SOPClassUID, ds.SOPInstanceUID, ds.StudyInstanceUID, ds.SeriesInstanceUID = SC, SOP, STUDY, SERIES
    ds.StudyDescription = "山田"
    path = tmp_path / name
    ds.save_as(path)
    info = read_file_info(path)
    assert info.study_description == "山田"
    assert info.patient_name == ""


@pytest.mark.parametrize("implicit", [True, False])
@pytest.mark.parametrize(
    "charset, name, shown",
    [
        ("GB18030", "张^三丰", "张三丰"),
        ("GB18030", "Zhang^SanFeng=张^三丰", "张三丰"),
        ("GB18030", "Wang^XiaoDong=王^小東", "王小東"),
        ("GBK", "张三丰", "张三丰"),
        ("GBK", "Wang^XiaoDong=王^小東", "王小東"),
        ("ISO_IR 192", "Zhang^SanFeng=张^三丰", "张三丰"),
    ],
)
def test_chinese_names_written_by_pydicom(charset: str, name: str, shown: str, implicit: bool) -> None:
    ds = pydicom_dataset(charset, PatientName=name, StudyDescription="胸部CT平扫", PatientID="病人-1")
    data = pydicom_bytes(ds, implicit=implicit)
    assert name.encode("utf-8") not in data or charset == "ISO_IR 192"  # really encoded in the charset
    info = read_dataset_info(data, IMPLICIT if implicit else EXPLICIT)
    assert info.patient_name == shown
    assert info.patient_name_raw == name
    assert info.study_description == "胸部CT平扫"
    assert info.patient_id == "病人-1"
    assert info.specific_character_set == charset


def test_gbk_trail_bytes_equal_to_delimiters() -> None:
    # In GBK the second byte of 淺 is 0x5C ('\\') and of 區 is 0x5E ('^'):
    # splitting before decoding would cut the characters in half.
    name = "劉^淺區"
    encoded = name.encode("gbk")
    assert encoded.count(b"\\") == 1 and encoded.count(b"^") == 2
    data = encode(base_elements(charset=("CS", "GBK"), name=("PN", encoded)))
    info = read_dataset_info(data, EXPLICIT)
    assert info.patient_name_raw == "劉^淺區"
    assert info.patient_name == "劉淺區"


def test_iso_2022_ir_58() -> None:
    # The PS3.5 Annex example; pydicom 3.0.2 leaves ESC $ ) A in the result.
    raw = b"Zhang^XiaoDong=\x1b$)A\xd5\xc5^\x1b$)A\xd0\xa1\xb6\xab="
    data = encode(base_elements(charset=("CS", "\\ISO 2022 IR 58"), name=("PN", raw)))
    info = read_dataset_info(data, EXPLICIT)
    assert info.patient_name_raw == "Zhang^XiaoDong=张^小东"
    assert info.patient_name == "张小东"


@pytest.mark.parametrize(
    "charset, encoding",
    [
        (None, "gb18030"),  # undeclared GB18030: guessed
        (None, "utf-8"),  # undeclared UTF-8: guessed
        ("ISO_IR 6", "gb18030"),  # ASCII declared, GB bytes sent
        ("GB2312", "gb18030"),  # not a defined term, but common
        ("gb18030", "gb18030"),  # wrong case
        ("ISO-IR 192", "utf-8"),  # misspelt
        ("ISO_IR 192\\GB18030", "utf-8"),  # stand-alone set wins
    ],
)
def test_undeclared_and_misspelt_charsets(charset: str | None, encoding: str) -> None:
    data = encode(
        base_elements(
            charset=("CS", charset) if charset is not None else None,
            name=("PN", "张^三丰".encode(encoding)),
        )
    )
    assert read_dataset_info(data, EXPLICIT).patient_name == "张三丰"


def test_latin1_is_not_guessed_when_declared() -> None:
    data = encode(base_elements(charset=("CS", "ISO_IR 100"), name=("PN", "Buc^Jérôme".encode("latin-1"))))
    assert read_dataset_info(data, EXPLICIT).patient_name == "Buc^Jérôme"


# --------------------------------------------------------------------------
# pydicom's test corpus as an oracle

# pydicom reads these, but they are broken: truncated, or a dataset in
# implicit VR behind a file meta that says explicit.
REJECTED_TEST_FILES = {"MR_truncated.dcm", "rtplan_truncated.dcm", "SC_rgb_jpeg.dcm"}


def _text(value: object) -> str:
    return "" if value is None else str(value).strip()


# Listed from the package folder: get_testdata_files() would also try to
# download pydicom's external corpus.
TEST_FILES_DIR = Path(pydicom.data.__file__).parent / "test_files"


def test_pydicom_test_files_agree_with_pydicom() -> None:
    compared = 0
    for file in sorted(TEST_FILES_DIR.iterdir()):
        if not file.is_file():
            continue
        path, name = str(file), file.name
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                ds = pydicom.dcmread(path, force=True)
                complete = all(
                    ds.get(k) for k in ("SOPClassUID", "SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID")
                )
            except Exception:
                complete = False
        if not complete or name in REJECTED_TEST_FILES:
            with pytest.raises(InvalidInstance):
                read_file_info(path)
            continue
        info = read_file_info(path)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            expected = {
                "sop_class_uid": _text(ds.SOPClassUID),
                "sop_instance_uid": _text(ds.SOPInstanceUID),
                "study_uid": _text(ds.StudyInstanceUID),
                "series_uid": _text(ds.SeriesInstanceUID),
                "patient_id": _text(ds.get("PatientID")),
                "patient_name_raw": _text(ds.get("PatientName")),
                "study_date": _text(ds.get("StudyDate")).replace(".", ""),  # legacy YYYY.MM.DD
                "accession_number": _text(ds.get("AccessionNumber")),
                "study_description": _text(ds.get("StudyDescription")),
                "modality": _text(ds.get("Modality")),
                "rows": ds.get("Rows"),
                "columns": ds.get("Columns"),
                "instance_number": int(ds.InstanceNumber) if ds.get("InstanceNumber") not in (None, "") else None,
            }
            ts = ds.file_meta.get("TransferSyntaxUID") if hasattr(ds, "file_meta") else None
        actual = {key: getattr(info, key) for key in expected}
        assert actual == expected, name
        if ts:
            assert info.transfer_syntax_uid == ts, name
        compared += 1
    assert compared >= 60  # the corpus shrinking would hollow this test out


# --------------------------------------------------------------------------
# Fields, kinds and frames from generated datasets


def test_all_fields_from_a_full_dataset() -> None:
    ds = pydicom_dataset(
        "ISO_IR 192",
        PatientName="Zhang^SanFeng=张^三丰",
        PatientID="P1",
        PatientBirthDate="19800101",
        PatientSex="M",
        StudyDate="20240102",
        StudyTime="101112.5",
        StudyDescription="胸部",
        AccessionNumber="ACC1",
        StudyID="S1",
        ReferringPhysicianName="Li^Si=李^四",
        SeriesNumber=3,
        SeriesDescription="Axial 5mm",
        Modality="CT",
        BodyPartExamined="CHEST",
        SeriesDate="20240103",
        SeriesTime="090000",
        InstanceNumber=12,
        Rows=512,
        Columns=256,
        BitsAllocated=16,
        PixelData=b"\0" * (512 * 256 * 2),
    )
    info = read_dataset_info(pydicom_bytes(ds), EXPLICIT)
    assert info == InstanceInfo(
        sop_class_uid=CT,
        sop_instance_uid=SOP,
        study_uid=STUDY,
        series_uid=SERIES,
        transfer_syntax_uid=EXPLICIT,
        patient_id="P1",
        patient_name="张三丰",
        patient_name_raw="Zhang^SanFeng=张^三丰",
        patient_birth_date="19800101",
        patient_sex="M",
        study_date="20240102",
        study_time="101112.5",
        study_description="胸部",
        accession_number="ACC1",
        study_id="S1",
        referring_physician="李四",
        series_number=3,
        series_description="Axial 5mm",
        modality="CT",
        body_part="CHEST",
        series_date="20240103",
        series_time="090000",
        instance_number=12,
        number_of_frames=1,
        rows=512,
        columns=256,
        specific_character_set="ISO_IR 192",
        kind="image",
        dataset_offset=0,
    )


def _sequence(implicit: bool, *, undefined: bool = True) -> bytes:
    """(0040,A730) Content Sequence with one item holding a nested sequence."""
    inner_item = element(0x00080100, "SH", "CODE", implicit=implicit)
    nested = (
        element(0x0040A043, "SQ", b"", implicit=implicit)[:-4]
        + b"\xff\xff\xff\xff"
        + struct.pack("<HHL", 0xFFFE, 0xE000, 0xFFFFFFFF)
        + inner_item
        + struct.pack("<HHL", 0xFFFE, 0xE00D, 0)
        + struct.pack("<HHL", 0xFFFE, 0xE0DD, 0)
    )
    item_body = element(0x0040A040, "CS", "TEXT", implicit=implicit) + nested
    if undefined:
        items = struct.pack("<HHL", 0xFFFE, 0xE000, 0xFFFFFFFF) + item_body + struct.pack("<HHL", 0xFFFE, 0xE00D, 0)
        return element(0x0040A730, "SQ", b"", implicit=implicit)[:-4] + b"\xff\xff\xff\xff" + items + struct.pack(
            "<HHL", 0xFFFE, 0xE0DD, 0
        )
    items = struct.pack("<HHL", 0xFFFE, 0xE000, len(item_body)) + item_body
    return element(0x0040A730, "SQ", items, implicit=implicit)


@pytest.mark.parametrize("ts", [IMPLICIT, EXPLICIT])
@pytest.mark.parametrize("undefined", [True, False])
def test_structured_report_with_nested_sequences(ts: str, undefined: bool) -> None:
    implicit = ts == IMPLICIT
    elements = base_elements(sop_class=("UI", COMPREHENSIVE_SR), pixels=None)
    elements.pop(0x00280010)
    elements.pop(0x00280011)
    data = encode(elements, ts) + _sequence(implicit, undefined=undefined)
    info = read_dataset_info(data, ts)
    assert info.kind == "sr"
    assert info.number_of_frames == 0
    assert info.rows is None and info.columns is None
    # the sequence must be walked exactly: one byte less is a truncation
    with pytest.raises(InvalidInstance):
        read_dataset_info(data[:-1], ts)


@pytest.mark.parametrize(
    "sop_class, kind",
    [(PDF, "pdf"), (CDA, "document"), (KOS, "document"), (SC, "image")],
)
def test_kinds_from_datasets(sop_class: str, kind: str) -> None:
    elements = base_elements(sop_class=("UI", sop_class), pixels=None)
    if sop_class in (PDF, CDA):
        elements[0x00420011] = ("OB", b"%PDF-1.4 not really" * 3)
    info = read_dataset_info(encode(elements), EXPLICIT)
    assert info.kind == kind


def test_multiframe_encapsulated_is_one_image() -> None:
    frames = [b"\xff\xd8" + bytes([i]) * 30 + b"\xff\xd9" for i in range(10)]
    fragments = b"".join(struct.pack("<HHL", 0xFFFE, 0xE000, len(f)) + f for f in frames)
    offsets = struct.pack("<HHL", 0xFFFE, 0xE000, 0)
    pixel = (
        struct.pack("<HH", 0x7FE0, 0x0010)
        + b"OB\0\0\xff\xff\xff\xff"
        + offsets
        + fragments
        + struct.pack("<HHL", 0xFFFE, 0xE0DD, 0)
    )
    elements = base_elements(sop_class=("UI", ENHANCED_CT), frames=("IS", "10"), pixels=None)
    data = encode(elements, JPEG_BASELINE) + pixel
    info = read_dataset_info(data, JPEG_BASELINE)
    assert (info.kind, info.number_of_frames, info.transfer_syntax_uid) == ("image", 10, JPEG_BASELINE)
    with pytest.raises(InvalidInstance):
        read_dataset_info(data[:-8], JPEG_BASELINE)  # sequence delimiter missing


@pytest.mark.parametrize("frames, expected", [("", 1), ("0", 1), ("x", 1), ("3", 3), (" 4 ", 4), ("5.0", 5)])
def test_number_of_frames_values(frames: str, expected: int) -> None:
    info = read_dataset_info(encode(base_elements(frames=("IS", frames))), EXPLICIT)
    assert info.number_of_frames == expected


@pytest.mark.parametrize(
    "tag, vr, raw, field, expected",
    [
        (0x00080020, "DA", "20240102", "study_date", "20240102"),
        (0x00080020, "DA", "2024.01.02", "study_date", "20240102"),  # pre-1993 form
        (0x00080020, "DA", "2024-01-02", "study_date", "20240102"),
        (0x00080020, "DA", "20240101-20240102", "study_date", ""),  # a range is not a date
        (0x00100030, "DA", "1/2/1980", "patient_birth_date", ""),
        (0x00080030, "TM", "101112.123456", "study_time", "101112.123456"),
        (0x00080030, "TM", "10:11:12", "study_time", "101112"),
        (0x00080030, "TM", "10:11", "study_time", "1011"),
        (0x00080030, "TM", "1011121314151617", "study_time", ""),
        (0x00080031, "TM", "09", "series_time", "09"),
        (0x00100040, "CS", "F", "patient_sex", "F"),
        (0x00080060, "CS", "M" * 40, "modality", "M" * 16),
        (0x00080050, "SH", "A" * 100, "accession_number", "A" * 64),
        (0x00200013, "IS", "2147483647", "instance_number", 2147483647),
        (0x00200013, "IS", "2147483648", "instance_number", None),
        (0x00200013, "IS", "-12", "instance_number", -12),
        (0x00200013, "IS", "1e400", "instance_number", None),
        (0x00200011, "IS", "3.5", "series_number", None),
        (0x00200011, "IS", "+4", "series_number", 4),
    ],
)
def test_values_fit_the_index(tag: int, vr: str, raw: str, field: str, expected: object) -> None:
    elements = base_elements()
    elements[tag] = (vr, raw)
    assert getattr(read_dataset_info(encode(elements), EXPLICIT), field) == expected


@pytest.mark.parametrize("ts", [IMPLICIT, EXPLICIT, BIG, DEFLATED, JPEG_BASELINE])
def test_transfer_syntaxes(ts: str) -> None:
    data = encode(base_elements(), ts)
    info = read_dataset_info(data, ts)
    assert (info.sop_instance_uid, info.rows, info.columns, info.instance_number) == (SOP, 2, 2, 7)
    assert info.transfer_syntax_uid == ts
    assert info.number_of_frames == 1


# --------------------------------------------------------------------------
# Input kinds


class _OneWayStream(io.RawIOBase):
    """A readable, non-seekable stream that returns short reads."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0

    def readable(self) -> bool:
        return True

    def readinto(self, b: bytearray) -> int:  # type: ignore[override]
        n = min(len(b), 1000, len(self._data) - self._pos)
        b[:n] = self._data[self._pos : self._pos + n]
        self._pos += n
        return n


@pytest.mark.parametrize("ts", [EXPLICIT, DEFLATED])
def test_input_kinds(ts: str, tmp_path: Path) -> None:
    data = encode(base_elements(), ts)
    expected = read_dataset_info(data, ts)
    assert read_dataset_info(bytearray(data), ts) == expected
    assert read_dataset_info(memoryview(data), ts) == expected
    bio = io.BytesIO(b"JUNK" + data)
    bio.seek(4)
    assert read_dataset_info(bio, ts) == expected
    assert bio.tell() == 4
    bio.write(b"x" * 100_000)  # the buffer export was released: still resizable
    path = tmp_path / "ds"
    path.write_bytes(b"JUNK" + data)
    with open(path, "rb") as f:
        f.seek(4)
        assert read_dataset_info(f, ts) == expected
        assert f.tell() == 4
    assert read_dataset_info(io.BufferedReader(_OneWayStream(data), 64), ts) == expected


def test_invalid_transfer_syntax_argument() -> None:
    with pytest.raises(InvalidInstance):
        read_dataset_info(encode(base_elements()), "1.2.840.10008.1.2.01")


# --------------------------------------------------------------------------
# Validation


@pytest.mark.parametrize(
    "missing, reason",
    [
        ("sop_class", "missing SOP Class UID"),
        ("sop_instance", "missing SOP Instance UID"),
        ("study", "missing Study Instance UID"),
        ("series", "missing Series Instance UID"),
    ],
)
def test_missing_uids(missing: str, reason: str) -> None:
    with pytest.raises(InvalidInstance) as caught:
        read_dataset_info(encode(base_elements(**{missing: None})), EXPLICIT)
    assert caught.value.reason == reason
    assert caught.value.status == Status.CANNOT_DECODE_DATA_SET


@pytest.mark.parametrize("bad", ["../../etc", "1.2/3", "1..2", "1.2\\3", "1.2\x01", "1." + "2" * 63, "\u4e00"])
@pytest.mark.parametrize("which", ["sop_class", "sop_instance", "study", "series"])
def test_malformed_uids(bad: str, which: str) -> None:
    with pytest.raises(InvalidInstance) as caught:
        read_dataset_info(encode(base_elements(**{which: ("UI", bad.encode("utf-8"))})), EXPLICIT)
    assert caught.value.reason.startswith("malformed ")
    assert bad not in caught.value.reason  # reasons carry no data from the instance
    assert caught.value.status == Status.CANNOT_DECODE_DATA_SET


@pytest.mark.parametrize("odd", [HEX_UID, "1.2.840.0113654.2.70.1", "1.2.3.", "1.2.3 x"])
@pytest.mark.parametrize("which", ["sop_instance", "study", "series"])
def test_non_conformant_uids_are_kept_exactly_as_sent(odd: str, which: str) -> None:
    info = read_dataset_info(encode(base_elements(**{which: ("UI", odd)})), EXPLICIT)
    assert {"sop_instance": info.sop_instance_uid, "study": info.study_uid, "series": info.series_uid}[which] == odd
    meta = build_file_meta(sop_class_uid=info.sop_class_uid, sop_instance_uid=info.sop_instance_uid,
                           transfer_syntax_uid=EXPLICIT)
    assert info.sop_instance_uid.encode() in meta


def test_uid_padding_is_accepted() -> None:
    # NUL is the UI pad; a space is a common mistake and harmless.
    data = encode(base_elements(sop_instance=("UI", (SOP + ".1").encode() + b"\0"), study=("UI", STUDY + " ")))
    info = read_dataset_info(data, EXPLICIT)
    assert (info.sop_instance_uid, info.study_uid) == (SOP + ".1", STUDY)


def test_expected_sop_class_and_instance() -> None:
    data = encode(base_elements())
    info = read_dataset_info(data, EXPLICIT, expected_sop_class_uid=CT, expected_sop_instance_uid=SOP)
    assert info.sop_instance_uid == SOP
    with pytest.raises(InvalidInstance) as caught:
        read_dataset_info(data, EXPLICIT, expected_sop_class_uid=SC)
    assert caught.value.status == Status.DATA_SET_DOES_NOT_MATCH_SOP_CLASS
    with pytest.raises(InvalidInstance) as caught:
        read_dataset_info(data, EXPLICIT, expected_sop_instance_uid=SOP + ".9")
    assert caught.value.status == Status.DATA_SET_DOES_NOT_MATCH_SOP_CLASS
    assert SOP not in caught.value.reason


def test_every_truncation_is_detected_or_harmless() -> None:
    data = encode(base_elements())
    # Offsets where an element starts: cutting there leaves a shorter but
    # well-formed dataset, which is fine once all four UIDs are in.
    boundaries = {0}
    pos = 0
    for tag, (vr, value) in sorted(base_elements().items()):
        pos += len(element(tag, vr, value))
        boundaries.add(pos)
    assert pos == len(data)
    for cut in range(len(data)):
        try:
            info = read_dataset_info(data[:cut], EXPLICIT)
        except InvalidInstance as exc:
            assert exc.status == Status.CANNOT_DECODE_DATA_SET
            continue
        assert cut in boundaries, cut
        assert info.series_uid == SERIES
    pixel_start = len(data) - len(element(0x7FE00010, "OW", b"\0" * 8))
    with pytest.raises(InvalidInstance, match="truncated"):
        read_dataset_info(data[: pixel_start + 12 + 3], EXPLICIT)


@pytest.mark.parametrize("ts", [EXPLICIT, DEFLATED])
def test_truncated_streams(ts: str) -> None:
    data = encode(base_elements(), ts)
    for cut in (len(data) - 1, len(data) - 7, len(data) // 2):
        with pytest.raises(InvalidInstance):
            read_dataset_info(io.BufferedReader(_OneWayStream(data[:cut]), 64), ts)
        with pytest.raises(InvalidInstance):
            read_dataset_info(io.BytesIO(data[:cut]), ts)


@pytest.mark.parametrize("ts", [IMPLICIT, EXPLICIT, BIG, DEFLATED])
def test_garbage_is_invalid(ts: str) -> None:
    rng = random.Random(ts)
    samples = [b"", b"\0", b"\0" * 7, b"DICM", b"\xff" * 64, b"hello world, not DICOM"]
    samples += [rng.randbytes(rng.randrange(1, 4096)) for _ in range(300)]
    for sample in samples:
        with pytest.raises(InvalidInstance) as caught:
            read_dataset_info(sample, ts)
        assert caught.value.status == Status.CANNOT_DECODE_DATA_SET


def test_garbage_files_are_invalid(tmp_path: Path) -> None:
    rng = random.Random(7)
    for i, sample in enumerate([b"", b"\0" * 132, b"\0" * 128 + b"DICM", b"\0" * 128 + b"DICM" + rng.randbytes(300)]):
        path = tmp_path / f"g{i}"
        path.write_bytes(sample)
        with pytest.raises(InvalidInstance):
            read_file_info(path)


def test_wrapped_exceptions_are_chained() -> None:
    with pytest.raises(InvalidInstance) as caught:
        read_dataset_info(b"\x08\x00\x16\x00UI\x40\x00" + b"1" * 10, EXPLICIT)
    assert caught.value.__cause__ is not None


@pytest.mark.parametrize(
    "declared, actual",
    [(IMPLICIT, EXPLICIT), (EXPLICIT, IMPLICIT), (BIG, EXPLICIT), (EXPLICIT, BIG), (DEFLATED, EXPLICIT),
     (EXPLICIT, DEFLATED)],
)
def test_lying_transfer_syntax(declared: str, actual: str) -> None:
    elements = base_elements()
    elements[0x00080005] = ("CS", "ISO_IR 100")
    with pytest.raises(InvalidInstance) as caught:
        read_dataset_info(encode(elements, actual), declared)
    if {declared, actual} == {IMPLICIT, EXPLICIT}:
        assert "the transfer syntax says" in caught.value.reason


def test_trailing_zero_padding_is_accepted_but_garbage_is_not() -> None:
    data = encode(base_elements())
    assert read_dataset_info(data + b"\0" * 3, EXPLICIT).sop_instance_uid == SOP
    assert read_dataset_info(data + b"\0" * 64, EXPLICIT).sop_instance_uid == SOP
    with pytest.raises(InvalidInstance):
        read_dataset_info(data + b"\0" * 20 + b"\x01", EXPLICIT)
    with pytest.raises(InvalidInstance):
        read_dataset_info(data + b"abc", EXPLICIT)


def test_excessive_nesting_is_refused() -> None:
    depth = 40
    head = b"".join(
        struct.pack("<HH", 0x0040, 0xA730) + b"SQ\0\0\xff\xff\xff\xff" + struct.pack("<HHL", 0xFFFE, 0xE000, 0xFFFFFFFF)
        for _ in range(depth)
    )
    tail = (struct.pack("<HHL", 0xFFFE, 0xE00D, 0) + struct.pack("<HHL", 0xFFFE, 0xE0DD, 0)) * depth
    data = encode(base_elements(pixels=None)) + head + tail
    with pytest.raises(InvalidInstance, match="nested too deep"):
        read_dataset_info(data, EXPLICIT)


@pytest.mark.parametrize("ts", [IMPLICIT, EXPLICIT])
@pytest.mark.parametrize("meta_implicit", [True, False])
def test_group_0002_inside_a_dataset(ts: str, meta_implicit: bool) -> None:
    group2 = element(0x00020002, "UI", CT, implicit=meta_implicit) + element(
        0x00020010, "UI", EXPLICIT if not meta_implicit else IMPLICIT, implicit=meta_implicit
    )
    dataset = encode(base_elements(), ts)
    info = read_dataset_info(group2 + dataset, ts)
    assert info.dataset_offset == len(group2)
    stored = build_file_meta(sop_class_uid=CT, sop_instance_uid=SOP, transfer_syntax_uid=ts) + (group2 + dataset)[
        info.dataset_offset :
    ]
    ds = pydicom.dcmread(io.BytesIO(stored))
    assert ds.SOPInstanceUID == SOP
    assert ds.file_meta.TransferSyntaxUID == ts


# --------------------------------------------------------------------------
# Large elements are skipped, never loaded


def _with_big_private(size: int) -> tuple[bytes, bytes]:
    """(dataset head up to the private value, dataset tail after it)."""
    head = encode(base_elements(pixels=None)) + element(0x00090010, "LO", "BIG CREATOR")
    head += struct.pack("<HH", 0x0009, 0x1000) + b"OB\0\0" + struct.pack("<L", size)
    tail = element(0x7FE00010, "OW", b"\0" * 64)
    return head, tail


def test_big_private_element_in_a_file_is_not_loaded(tmp_path: Path) -> None:
    size = 100 * 2**20
    head, tail = _with_big_private(size)
    meta = build_file_meta(sop_class_uid=CT, sop_instance_uid=SOP, transfer_syntax_uid=EXPLICIT)
    path = tmp_path / "big.dcm"
    with open(path, "wb") as f:
        f.write(meta + head)
        f.seek(size, os.SEEK_CUR)  # sparse: 100 MB that cost no disk
        f.write(tail)
    assert path.stat().st_size == len(meta) + len(head) + size + len(tail)
    tracemalloc.start()
    try:
        info = read_file_info(path)
        with open(path, "rb") as f:
            info_from_stream = read_file_info(f)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert info.sop_instance_uid == SOP and info.number_of_frames == 1
    assert info_from_stream == info
    assert peak < 2 * 2**20


def test_big_private_element_in_memory_is_not_copied() -> None:
    size = 100 * 2**20
    head, tail = _with_big_private(size)
    data = bytearray(len(head) + size + len(tail))
    data[: len(head)] = head
    data[-len(tail) :] = tail
    tracemalloc.start()
    try:
        info = read_dataset_info(data, EXPLICIT)
        info_bio = read_dataset_info(io.BytesIO(data), EXPLICIT)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert info.sop_instance_uid == SOP and info_bio == info
    # BytesIO(data) copies the buffer once itself; the reader adds nothing.
    assert peak < size + 2 * 2**20


def _deflate(*pieces: bytes, zeros: int = 0) -> bytes:
    """One raw deflate stream of pieces[0], ``zeros`` zero bytes (a multiple
    of 1 MiB), pieces[1:]: full-flushed blocks, which concatenate, so the
    zeros are one compressed MiB repeated."""

    def block(data: bytes, mode: int = zlib.Z_FULL_FLUSH) -> bytes:
        z = zlib.compressobj(1 if data.strip(b"\0") else 9, zlib.DEFLATED, -zlib.MAX_WBITS)
        return z.compress(data) + z.flush(mode)

    zero_block = block(b"\0" * 2**20)
    out = [block(pieces[0]), *[zero_block] * (zeros // 2**20), *map(block, pieces[1:]), block(b"", zlib.Z_FINISH)]
    return b"".join(out)


def _noise(size: int) -> bytes:
    """Bytes that deflate about 3:1, like real pixel data."""
    return np.random.default_rng(size).integers(0, 4, size, dtype=np.uint8).tobytes()


def test_deflated_big_element_is_streamed() -> None:
    size = 32 * 2**20  # past the point where the ratio is checked
    head, tail = _with_big_private(size)
    z = zlib.compressobj(1, zlib.DEFLATED, -zlib.MAX_WBITS)
    data = z.compress(head) + z.compress(_noise(size)) + z.compress(tail) + z.flush()
    assert len(data) < size // 2
    tracemalloc.start()
    try:
        info = read_dataset_info(data, DEFLATED)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert info.sop_instance_uid == SOP
    assert peak < 8 * 2**20


def test_deflate_bomb_is_refused_by_its_ratio() -> None:
    head, tail = _with_big_private(2**30)
    data = _deflate(head, tail, zeros=2**30)  # about 1 MB that inflates to 1 GiB
    assert len(data) < 2 * 2**20
    tracemalloc.start()
    try:
        with pytest.raises(InvalidInstance, match="more than 200:1") as caught:
            read_dataset_info(data, DEFLATED)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert caught.value.status == Status.CANNOT_DECODE_DATA_SET
    assert peak < 8 * 2**20
    # A small blank image deflates as well, but is far below the point
    # where the ratio applies.
    blank = base_elements(pixels=("OW", b"\0" * 2**20))
    blank[0x00280100] = ("US", 16)
    blank[0x00280010] = blank[0x00280011] = ("US", 724)
    assert len(encode(blank, DEFLATED)) * 200 < 2**20
    assert read_dataset_info(encode(blank, DEFLATED), DEFLATED).sop_instance_uid == SOP


def test_deflated_dataset_past_the_configured_maximum_is_out_of_resources(tmp_path: Path) -> None:
    size = 3 * 2**20
    head, tail = _with_big_private(size)
    data = _deflate(head + _noise(size), tail)
    assert read_dataset_info(data, DEFLATED, max_inflated=8 * 2**20).sop_instance_uid == SOP
    with pytest.raises(InvalidInstance, match="beyond the 2 MiB limit") as caught:
        read_dataset_info(data, DEFLATED, max_inflated=2 * 2**20)
    assert caught.value.status == Status.OUT_OF_RESOURCES
    meta = build_file_meta(sop_class_uid=CT, sop_instance_uid=SOP, transfer_syntax_uid=DEFLATED)
    (tmp_path / "f.dcm").write_bytes(meta + data)
    with pytest.raises(InvalidInstance, match="beyond the 2 MiB limit"):
        read_file_info(tmp_path / "f.dcm", max_inflated=2 * 2**20)


def _image(rows: int, columns: int, bits: int, pixels: bytes, **extra: tuple[str, bytes | str | int]) -> dict:
    elements = base_elements(pixels=("OB" if bits == 8 else "OW", pixels))
    elements.update({0x00280010: ("US", rows), 0x00280011: ("US", columns), 0x00280100: ("US", bits)})
    elements.update({int(k[1:], 16): v for k, v in extra.items()})
    return elements


@pytest.mark.parametrize("ts", [IMPLICIT, EXPLICIT, BIG, DEFLATED])
def test_short_native_pixel_data_is_truncated_for_receiver_and_importer_alike(ts: str) -> None:
    # What a pydicom-based sender makes of a file whose last byte is cut off:
    # complete elements, an odd total length, one byte of the image missing.
    def image(rows: int, columns: int, bits: int, pixels: bytes) -> bytes:
        head = _image(rows, columns, bits, b"")
        del head[0x7FE00010]
        last = element(0x7FE00010, "OW", pixels, implicit=ts == IMPLICIT, little=ts != BIG, pad=False)
        raw = encode(head, EXPLICIT if ts == DEFLATED else ts) + last
        return _deflate(raw) if ts == DEFLATED else raw

    short = image(16, 16, 16, b"\1" * 511)
    meta = build_file_meta(sop_class_uid=CT, sop_instance_uid=SOP, transfer_syntax_uid=ts)
    with pytest.raises(InvalidInstance, match="pixel data is truncated") as received:
        read_dataset_info(short, ts)
    with pytest.raises(InvalidInstance, match="pixel data is truncated") as imported:
        read_file_info(meta + short)
    assert received.value.status == imported.value.status == Status.CANNOT_DECODE_DATA_SET
    # An odd length with every element complete is a whole dataset: 3 x 3 x 8 bits.
    odd = image(3, 3, 8, b"\1" * 9)
    assert ts == DEFLATED or len(odd) % 2
    assert read_dataset_info(odd, ts).rows == 3
    assert read_file_info(meta + odd).rows == 3


@pytest.mark.parametrize(
    "attributes, needed",
    [
        ({}, 16 * 16 * 2),
        ({"x00280008": ("IS", "3")}, 3 * 16 * 16 * 2),
        ({"x00280002": ("US", 3), "x00280004": ("CS", "RGB")}, 16 * 16 * 3 * 2),
        ({"x00280002": ("US", 3), "x00280004": ("CS", "YBR_FULL_422")}, 16 * 16 * 2 * 2),
    ],
)
def test_pixel_data_must_cover_its_image(attributes: dict, needed: int) -> None:
    assert read_dataset_info(encode(_image(16, 16, 16, b"\1" * needed, **attributes)), EXPLICIT).rows == 16
    with pytest.raises(InvalidInstance, match="pixel data is truncated"):
        read_dataset_info(encode(_image(16, 16, 16, b"\1" * (needed - 2), **attributes)), EXPLICIT)


def test_pixel_size_rules() -> None:
    # 1-bit frames are packed back to back: 3 frames of 5 x 5 are 75 bits.
    assert native_pixel_bytes(rows=5, columns=5, bits_allocated=1, frames=3) == 10
    assert native_pixel_bytes(rows=2, columns=2, bits_allocated=8, samples_per_pixel=3, photometric="YBR_FULL_422") == 8
    # Only native pixel data is measured: encapsulated fragments are not sizes.
    jpeg = encode(_image(512, 512, 16, b"\xff\xd8" * 8))
    assert read_dataset_info(jpeg, JPEG_BASELINE).rows == 512


def test_deflated_pixel_data_bigger_than_its_image_is_refused() -> None:
    # 16 x 16 x 16 bits need 512 bytes; the element claims 64 MiB of zeros,
    # which would pass the ratio if the zeros were noise.
    elements = _image(16, 16, 16, b"")
    del elements[0x7FE00010]
    head = encode(elements) + struct.pack("<HH", 0x7FE0, 0x0010) + b"OW\0\0" + struct.pack("<L", 64 * 2**20)
    with pytest.raises(InvalidInstance, match="beyond what its image attributes need") as caught:
        read_dataset_info(_deflate(head, zeros=64 * 2**20), DEFLATED)
    assert caught.value.status == Status.CANNOT_DECODE_DATA_SET
    # The exact size, with a trailing element after it, is fine.
    exact = encode(_image(16, 16, 16, _noise(512))) + element(0xFFFCFFFC, "OB", b"\0" * 64)
    assert read_dataset_info(_deflate(exact), DEFLATED).rows == 16


# --------------------------------------------------------------------------
# File meta and stored files


def _meta_elements(meta: bytes) -> dict[int, bytes]:
    out: dict[int, bytes] = {}
    pos = 132
    while pos < len(meta):
        group, elem, vr = struct.unpack_from("<HH2s", meta, pos)
        if vr in (b"OB", b"UN", b"SQ", b"UT"):
            (length,) = struct.unpack_from("<L", meta, pos + 8)
            pos += 12
        else:
            (length,) = struct.unpack_from("<H", meta, pos + 6)
            pos += 8
        out[group << 16 | elem] = meta[pos : pos + length]
        pos += length
    assert pos == len(meta)
    return out


def test_build_file_meta_layout() -> None:
    meta = build_file_meta(sop_class_uid=CT, sop_instance_uid=SOP, transfer_syntax_uid=IMPLICIT, source_ae="CT01")
    assert meta[:128] == b"\0" * 128 and meta[128:132] == b"DICM"
    elements = _meta_elements(meta)
    assert struct.unpack("<L", elements[0x00020000])[0] == len(meta) - 132 - 12
    assert elements[0x00020001] == b"\x00\x01"
    assert elements[0x00020002] == CT.encode() + b"\0"
    assert elements[0x00020003] == SOP.encode() + b"\0"
    assert elements[0x00020010] == IMPLICIT.encode() + b"\0"
    assert elements[0x00020012].rstrip(b"\0") == IMPLEMENTATION_CLASS_UID.encode()
    assert elements[0x00020013].rstrip() == IMPLEMENTATION_VERSION_NAME.encode()
    assert elements[0x00020016] == b"CT01"
    assert all(len(v) % 2 == 0 for v in elements.values())
    assert is_valid_uid(IMPLEMENTATION_CLASS_UID)
    without_ae = _meta_elements(build_file_meta(sop_class_uid=CT, sop_instance_uid=SOP, transfer_syntax_uid=IMPLICIT))
    assert 0x00020016 not in without_ae


@pytest.mark.parametrize(
    "kwargs",
    [
        {"sop_class_uid": "1..2"},
        {"sop_instance_uid": "../x"},
        {"transfer_syntax_uid": ""},
        {"transfer_syntax_uid": "1.2.840.10008.1.02"},
        {"source_ae": "A" * 17},
        {"source_ae": "BAD\\AE"},
        {"source_ae": "   "},
        {"source_ae": "医院"},
    ],
)
def test_build_file_meta_refuses_bad_values(kwargs: dict[str, str]) -> None:
    args = {"sop_class_uid": CT, "sop_instance_uid": SOP, "transfer_syntax_uid": EXPLICIT, **kwargs}
    with pytest.raises(ValueError):
        build_file_meta(**args)


@pytest.mark.parametrize("ts", [IMPLICIT, EXPLICIT, BIG, DEFLATED])
def test_stored_file_reads_back_identically(ts: str, tmp_path: Path) -> None:
    ds = pydicom_dataset(
        "GB18030",
        PatientName="张^三丰",
        PatientID="P1",
        Modality="CT",
        Rows=2,
        Columns=2,
        BitsAllocated=16,
        BitsStored=16,
        HighBit=15,
        PixelRepresentation=0,
        SamplesPerPixel=1,
        PhotometricInterpretation="MONOCHROME2",
        PixelData=b"\x01\x00\x02\x00\x03\x00\x04\x00",
    )
    if ts in (IMPLICIT, EXPLICIT):
        data = pydicom_bytes(ds, implicit=ts == IMPLICIT)
    else:
        # pydicom writes big endian and deflated only as whole files
        ds.file_meta = pydicom.dataset.FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = ts
        buf = io.BytesIO()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # pydicom: big endian writing is deprecated
            ds.save_as(buf, enforce_file_format=True)
        whole = buf.getvalue()
        data = whole[read_file_info(whole).dataset_offset :]
    info = read_dataset_info(data, ts, expected_sop_class_uid=CT, expected_sop_instance_uid=SOP)
    meta = build_file_meta(sop_class_uid=info.sop_class_uid, sop_instance_uid=info.sop_instance_uid,
                           transfer_syntax_uid=ts)
    path = tmp_path / "stored.dcm"
    path.write_bytes(meta + data)

    stored = pydicom.dcmread(path)
    assert stored.file_meta.TransferSyntaxUID == ts
    assert stored.file_meta.MediaStorageSOPInstanceUID == SOP
    assert stored.file_meta.ImplementationClassUID == IMPLEMENTATION_CLASS_UID
    for keyword in ("SOPInstanceUID", "StudyInstanceUID", "PatientID", "Rows", "PixelData"):
        assert stored[keyword].value == ds[keyword].value
    assert str(stored.PatientName) == "张^三丰"
    assert path.read_bytes()[len(meta) :] == data
    from_file = read_file_info(path)
    assert from_file.dataset_offset == len(meta)
    assert from_file == dataclasses.replace(info, dataset_offset=len(meta))


# scripts/install-system-deps.sh (run by `make test`) installs dcmtk.
DCMDUMP = "/usr/bin/dcmdump"


@pytest.mark.parametrize("ts", [IMPLICIT, EXPLICIT, BIG, DEFLATED, JPEG_BASELINE])
def test_stored_file_is_read_by_dcmtk(ts: str, tmp_path: Path) -> None:
    elements = base_elements(charset=("CS", "GB18030"), name=("PN", "张^三丰".encode("gb18030")))
    if ts == JPEG_BASELINE:
        elements.pop(0x7FE00010)
    data = encode(elements, ts)
    if ts == JPEG_BASELINE:  # compressed syntaxes need encapsulated pixel data
        fragment = b"\xff\xd8" + b"\0" * 6 + b"\xff\xd9"
        data += (
            struct.pack("<HH", 0x7FE0, 0x0010)
            + b"OB\0\0\xff\xff\xff\xff"
            + struct.pack("<HHL", 0xFFFE, 0xE000, 0)
            + struct.pack("<HHL", 0xFFFE, 0xE000, len(fragment))
            + fragment
            + struct.pack("<HHL", 0xFFFE, 0xE0DD, 0)
        )
    info = read_dataset_info(data, ts)
    path = tmp_path / "stored.dcm"
    path.write_bytes(
        build_file_meta(sop_class_uid=info.sop_class_uid, sop_instance_uid=SOP, transfer_syntax_uid=ts, source_ae="SCU")
        + data
    )
    proc = subprocess.run([DCMDUMP, "+U8", "-E", str(path)], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert "E:" not in proc.stderr and "W:" not in proc.stderr, proc.stderr
    assert "[张^三丰]" in proc.stdout
    assert f"[{SOP}]" in proc.stdout
    assert "(0002,0016) AE [SCU]" in proc.stdout


def test_file_without_preamble_or_meta(tmp_path: Path) -> None:
    data = encode(base_elements(), IMPLICIT)
    path = tmp_path / "raw.dcm"
    path.write_bytes(data)
    info = read_file_info(path)
    assert (info.transfer_syntax_uid, info.sop_instance_uid, info.dataset_offset) == (IMPLICIT, SOP, 0)
    path.write_bytes(encode(base_elements(), EXPLICIT))
    assert read_file_info(path).transfer_syntax_uid == EXPLICIT
    path.write_bytes(encode(base_elements(), BIG))
    assert read_file_info(path).transfer_syntax_uid == BIG
    meta = build_file_meta(sop_class_uid=CT, sop_instance_uid=SOP, transfer_syntax_uid=IMPLICIT)
    path.write_bytes(meta[132:] + data)  # meta without the preamble
    info = read_file_info(path)
    assert (info.transfer_syntax_uid, info.dataset_offset) == (IMPLICIT, len(meta) - 132)
    path.write_bytes(b"Just some text that is not DICOM at all.\n" * 10)
    with pytest.raises(InvalidInstance):
        read_file_info(path)


# --------------------------------------------------------------------------
# Speed (loose bound: the aim is < 0.3 ms; this only catches regressions
# of an order of magnitude)


def test_read_is_fast() -> None:
    ds = pydicom_dataset("ISO_IR 192", PatientName="张^三丰", Modality="CT", Rows=64, Columns=64, BitsAllocated=16)
    for i in range(80):
        ds.add_new((0x0019, 0x1000 + i), "LO", "x" * 40)
    ds.PixelData = b"\0" * (64 * 64 * 2)
    data = pydicom_bytes(ds)
    assert 10_000 < len(data) < 16_000
    read_dataset_info(data, EXPLICIT)
    n = 300
    start = time.perf_counter()
    for _ in range(n):
        read_dataset_info(data, EXPLICIT)
    assert (time.perf_counter() - start) / n < 0.002


def test_reasons_never_carry_patient_data() -> None:
    secret = "机密患者"
    elements = base_elements(name=("PN", secret.encode("gb18030")), charset=("CS", "GB18030"))
    data = encode(elements)
    for cut in range(0, len(data), 7):
        try:
            read_dataset_info(data[:cut], EXPLICIT)
        except InvalidInstance as exc:
            assert secret not in exc.reason and hashlib.sha1(secret.encode()).hexdigest() not in exc.reason
