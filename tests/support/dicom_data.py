"""DICOM instances generated at test time: images, SR, PDF, Chinese names."""

from __future__ import annotations

import os
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset, write_file_meta_info
from pydicom.uid import DeflatedExplicitVRLittleEndian, ExplicitVRLittleEndian, generate_uid

ROOT = "1.2.826.0.1.3680043.10.1404."  # test UIDs
CT = "1.2.840.10008.5.1.4.1.1.2"
SR = "1.2.840.10008.5.1.4.1.1.88.11"
PDF = "1.2.840.10008.5.1.4.1.1.104.1"


def uid() -> str:
    return generate_uid(prefix=ROOT)


@dataclass
class StudySpec:
    study_uid: str = field(default_factory=uid)
    accession: str = "ACC1"
    patient_id: str = "PID1"
    patient_name: str = "Zhang^Sanfeng=张^三丰"
    charset: str = "ISO_IR 192"
    study_date: str = "20261120"
    study_time: str = "093000"
    modality: str = "CT"


def make(path: Path, spec: StudySpec, *, series_uid: str, sop_uid: str | None = None, kind: str = "image",
         number: int = 1, rows: int = 16, cols: int = 16, seed: int | None = None, series_number: int = 1) -> Path:
    meta = FileMetaDataset()
    sop_class = {"image": CT, "sr": SR, "pdf": PDF}[kind]
    sop_uid = sop_uid or uid()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SpecificCharacterSet = spec.charset
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = sop_uid
    ds.StudyInstanceUID = spec.study_uid
    ds.SeriesInstanceUID = series_uid
    ds.PatientName = spec.patient_name
    ds.PatientID = spec.patient_id
    ds.PatientBirthDate = "19800101"
    ds.PatientSex = "M"
    ds.StudyDate = spec.study_date
    ds.StudyTime = spec.study_time
    ds.AccessionNumber = spec.accession
    ds.StudyDescription = "胸部CT"
    ds.StudyID = "1"
    ds.SeriesNumber = series_number
    ds.InstanceNumber = number
    if kind == "image":
        ds.Modality = spec.modality
        ds.Rows, ds.Columns = rows, cols
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.BitsAllocated = ds.BitsStored = 16
        ds.HighBit = 15
        ds.PixelRepresentation = 1
        ds.RescaleIntercept = -1024
        ds.RescaleSlope = 1
        rng = np.random.default_rng(seed if seed is not None else number)
        ds.PixelData = rng.integers(0, 2000, size=(rows, cols), dtype=np.int16).tobytes()
    elif kind == "sr":
        ds.Modality = "SR"
        ds.ValueType = "CONTAINER"
        ds.CompletionFlag = "COMPLETE"
        ds.VerificationFlag = "UNVERIFIED"
    else:
        ds.Modality = "DOC"
        ds.MIMETypeOfEncapsulatedDocument = "application/pdf"
        ds.EncapsulatedDocument = b"%PDF-1.4\n%fake but well-formed enough for storage\n%%EOF\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def make_study(folder: Path, spec: StudySpec, *, series: int = 2, per_series: int = 3, sr: int = 0,
               pdf: int = 0) -> list[Path]:
    out = []
    for s in range(series):
        series_uid = uid()
        for i in range(per_series):
            out.append(make(folder / f"s{s}_i{i}.dcm", spec, series_uid=series_uid, number=i + 1, series_number=s + 1))
    if sr or pdf:
        doc_series = uid()
        for i in range(sr):
            out.append(make(folder / f"sr{i}.dcm", spec, series_uid=doc_series, kind="sr", number=i + 1))
        for i in range(pdf):
            out.append(make(folder / f"pdf{i}.dcm", spec, series_uid=uid(), kind="pdf", number=i + 1))
    return out


MULTIFRAME_WORD_SC = "1.2.840.10008.5.1.4.1.1.7.3"  # Multi-frame Grayscale Word Secondary Capture


def _multiframe_header(spec: StudySpec, *, frames: int, rows: int, cols: int, series_uid: str | None,
                       sop_uid: str | None, transfer_syntax: str) -> Dataset:
    meta = FileMetaDataset()
    sop_uid = sop_uid or uid()
    meta.MediaStorageSOPClassUID = MULTIFRAME_WORD_SC
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = transfer_syntax
    ds = Dataset()
    ds.file_meta = meta
    ds.SpecificCharacterSet = spec.charset
    ds.SOPClassUID = MULTIFRAME_WORD_SC
    ds.SOPInstanceUID = sop_uid
    ds.StudyInstanceUID = spec.study_uid
    ds.SeriesInstanceUID = series_uid or uid()
    ds.PatientName = spec.patient_name
    ds.PatientID = spec.patient_id
    ds.StudyDate = spec.study_date
    ds.StudyTime = spec.study_time
    ds.AccessionNumber = spec.accession
    ds.Modality = spec.modality
    ds.SeriesNumber = 1
    ds.InstanceNumber = 1
    ds.NumberOfFrames = frames
    ds.Rows, ds.Columns = rows, cols
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    return ds


def _pixel_header(length: int) -> bytes:
    # (7FE0,0010) OW, explicit VR little endian: tag, VR, 2 reserved bytes, 4-byte length.
    return b"\xe0\x7f\x10\x00OW\x00\x00" + length.to_bytes(4, "little")


def write_large(path: Path, spec: StudySpec, *, size: int, series_uid: str | None = None, sop_uid: str | None = None,
                rows: int = 512, cols: int = 512, seed: int = 0) -> Path:
    """A multi-frame instance of about `size` bytes, written without holding its pixels in memory.

    The header is written by pydicom; the Pixel Data element (the last one) is
    appended by hand, a frame at a time, so a 2 GiB instance costs a frame of memory.
    """
    frame_bytes = rows * cols * 2
    frames = max(1, size // frame_bytes)
    ds = _multiframe_header(spec, frames=frames, rows=rows, cols=cols, series_uid=series_uid, sop_uid=sop_uid,
                            transfer_syntax=ExplicitVRLittleEndian)
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    rng = np.random.default_rng(seed)
    with open(path, "ab") as f:
        f.write(_pixel_header(frames * frame_bytes))
        frame = rng.integers(0, 4096, size=rows * cols, dtype=np.uint16).tobytes()
        for i in range(frames):
            # Each frame differs (its first pixels carry its number) without drawing new random data.
            f.write(i.to_bytes(4, "little") + frame[4:])
    return path


def write_deflated(path: Path, spec: StudySpec, *, frames: int, rows: int = 1024, cols: int = 1024,
                   fill: str = "zeros", series_uid: str | None = None, sop_uid: str | None = None) -> Path:
    """A Deflated Explicit VR Little Endian multi-frame image whose pixels are
    all zero (``fill="zeros"``: a deflate bomb, about 1000:1) or 2-bit noise
    (``"noise"``: about 3:1, what a real image might do).

    The deflate stream is assembled from full-flushed pieces (a full flush
    ends a block on a byte boundary and resets the window, so the pieces
    concatenate into one valid stream): a 1 GiB bomb is written in
    milliseconds, from one compressed frame of zeros repeated.
    """
    frame_bytes = rows * cols * 2
    ds = _multiframe_header(spec, frames=frames, rows=rows, cols=cols, series_uid=series_uid, sop_uid=sop_uid,
                            transfer_syntax=DeflatedExplicitVRLittleEndian)
    fp = DicomBytesIO()
    fp.is_little_endian, fp.is_implicit_VR = True, False
    write_dataset(fp, ds)
    head = fp.getvalue() + _pixel_header(frames * frame_bytes)

    def piece(data: bytes, mode: int = zlib.Z_FULL_FLUSH) -> bytes:
        z = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
        return z.compress(data) + z.flush(mode)

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        f.write(b"\0" * 128 + b"DICM")
        write_file_meta_info(f, ds.file_meta, enforce_standard=True)
        f.write(piece(head))
        if fill == "zeros":
            zero_frame = piece(bytes(frame_bytes))
            for _ in range(frames):
                f.write(zero_frame)
        else:
            rng = np.random.default_rng(len(head))
            for _ in range(frames):
                noise = rng.integers(0, 4, size=rows * cols, dtype=np.uint16).tobytes()
                f.write(piece(noise))
        f.write(piece(b"", zlib.Z_FINISH))
    return path


def sha256_of(path_or_stream) -> str:
    """SHA-256 of a file (path) or of a binary stream, read in 1 MiB pieces."""
    import hashlib

    h = hashlib.sha256()
    stream = open(path_or_stream, "rb") if isinstance(path_or_stream, (str, os.PathLike)) else path_or_stream
    try:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            h.update(chunk)
    finally:
        if stream is not path_or_stream:
            stream.close()
    return h.hexdigest()


def dataset_sha256(path: Path) -> str:
    """SHA-256 of a Part-10 file's data set (what follows its file meta), read in pieces.

    Found through the file meta's group length, which both pydicom and Yingyun
    write first, so that the module under test does not find it for the test."""
    with open(path, "rb") as f:
        head = f.read(144)
        assert head[128:132] == b"DICM" and head[132:136] == b"\x02\x00\x00\x00", "no file meta group length"
        f.seek(144 + int.from_bytes(head[140:144], "little"))
        return sha256_of(f)
