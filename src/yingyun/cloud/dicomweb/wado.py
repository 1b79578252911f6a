"""WADO-RS (PS3.18 10.4): instances as stored, metadata, frames, bulk data, rendered.

Instances are served byte for byte as stored (the archive's Part-10 file)
unless the Accept header names another transfer syntax; conversion is
offered where it is lossless and possible here (to Explicit or Implicit VR
Little Endian, decompressing if a decoder is installed), else 406.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from pydicom import dcmread
from pydicom.dataelem import DataElement
from pydicom.encaps import get_frame
from pydicom.pixels import get_decoder
from pydicom.uid import UID, ExplicitVRLittleEndian, ImplicitVRLittleEndian
from sqlalchemy import Connection, and_, or_, select

from ...core.render import RenderOptions
from ...storage import schema as s
from .auth import DicomwebHTTPError
from .media import MediaRange

d, se, i, st = s.dicom_studies, s.series, s.instances, s.studies

UNCOMPRESSED = {ExplicitVRLittleEndian, ImplicitVRLittleEndian}
BULK_VRS = {"OB", "OD", "OF", "OL", "OV", "OW", "UN"}
BULK_THRESHOLD = 1024
CHUNK = 1 << 20
# Transfer syntax -> the image media type of its frames (PS3.18 Table 8.7.3-2).
FRAME_MEDIA = {
    "1.2.840.10008.1.2.4.50": "image/jpeg", "1.2.840.10008.1.2.4.51": "image/jpeg",
    "1.2.840.10008.1.2.4.57": "image/jpeg", "1.2.840.10008.1.2.4.70": "image/jpeg",
    "1.2.840.10008.1.2.4.80": "image/jls", "1.2.840.10008.1.2.4.81": "image/jls",
    "1.2.840.10008.1.2.4.90": "image/jp2", "1.2.840.10008.1.2.4.91": "image/jp2",
    "1.2.840.10008.1.2.4.92": "image/jpx", "1.2.840.10008.1.2.4.93": "image/jpx",
    "1.2.840.10008.1.2.4.201": "image/jphc", "1.2.840.10008.1.2.4.202": "image/jphc",
    "1.2.840.10008.1.2.4.203": "image/jphc", "1.2.840.10008.1.2.5": "image/dicom-rle",
}


@dataclass(frozen=True)
class Inst:
    hospital_id: str
    study_uid: str
    series_uid: str
    sop_uid: str
    sop_class_uid: str
    transfer_syntax: str
    blob_key: str
    size: int
    version: int
    number_of_frames: int
    kind: str
    modality: str | None


def resolve(conn: Connection, scope: frozenset[str] | None, study_uid: str, series_uid: str | None = None,
            sop_uid: str | None = None) -> list[Inst]:
    """Instances the caller may see under the path, in series then instance order; 404 if none."""
    conds = [i.c.study_uid == study_uid, or_(st.c.deleted.is_(None), st.c.deleted.is_(False))]
    if scope is not None:
        if not scope:
            raise DicomwebHTTPError(404, "no such study")
        conds.append(i.c.hospital_id.in_(sorted(scope)))
    if series_uid is not None:
        conds.append(i.c.series_uid == series_uid)
    if sop_uid is not None:
        conds.append(i.c.sop_uid == sop_uid)
    stmt = (select(i.c.hospital_id, i.c.study_uid, i.c.series_uid, i.c.sop_uid, i.c.sop_class_uid,
                   i.c.transfer_syntax, i.c.blob_key, i.c.size, i.c.version, i.c.number_of_frames, i.c.kind,
                   se.c.modality)
            .select_from(i.join(d, and_(d.c.hospital_id == i.c.hospital_id, d.c.study_uid == i.c.study_uid))
                         .outerjoin(st, st.c.pk == d.c.ris_study_pk)
                         .outerjoin(se, and_(se.c.hospital_id == i.c.hospital_id, se.c.series_uid == i.c.series_uid)))
            .where(*conds)
            .order_by(i.c.hospital_id, se.c.series_number, i.c.series_uid, i.c.instance_number, i.c.pk))
    rows = [Inst(*r) for r in conn.execute(stmt)]
    if not rows:
        what = "instance" if sop_uid else "series" if series_uid else "study"
        raise DicomwebHTTPError(404, f"no such {what}")
    return rows


# --------------------------------------------------------------------------
# Instances


def instance_media_options(ranges: list[MediaRange], *, single_allowed: bool) -> list[tuple[bool, str | None]]:
    """Acceptable (multipart?, target transfer syntax or None for as stored), best first."""
    out: list[tuple[bool, str | None]] = []
    for r in ranges:
        ts = r.transfer_syntax
        ts = None if ts in (None, "*") else ts
        if r.type in ("*/*", "multipart/*") or (r.type == "multipart/related" and r.inner in (None, "*/*")):
            out.append((True, None))
        elif r.type == "multipart/related" and r.inner == "application/dicom":
            out.append((True, ts))
        elif r.type in ("application/dicom", "application/*") and single_allowed:
            out.append((False, ts))
    return out


def choose_instance_media(ranges: list[MediaRange], insts: list["Inst"], *, single_allowed: bool) -> tuple[bool, str | None]:
    """The best acceptable form every instance can be delivered in; 406 when none."""
    options = instance_media_options(ranges, single_allowed=single_allowed)
    if not options:
        raise DicomwebHTTPError(406, "acceptable here: multipart/related; type=\"application/dicom\""
                                     + ("; or application/dicom" if single_allowed else ""))
    for multipart, target in options:
        if all(can_deliver(x, target) for x in insts):
            return multipart, target
    raise DicomwebHTTPError(406, f"cannot deliver {insts[0].transfer_syntax} in the transfer syntax asked for: "
                                 "ask for transfer-syntax=* to get it as stored")


def can_deliver(inst: Inst, target: str | None) -> bool:
    if target is None or target == inst.transfer_syntax:
        return True
    if target not in UNCOMPRESSED:
        return False
    stored = UID(inst.transfer_syntax)
    if not stored.is_compressed:
        return True
    try:
        return get_decoder(stored).is_available
    except NotImplementedError:
        return False


def transcode(f, target: str) -> bytes:
    ds = dcmread(f)
    if ds.file_meta.TransferSyntaxUID.is_compressed:
        ds.decompress()
    ds.file_meta.TransferSyntaxUID = UID(target)
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def instance_bytes(blobs, inst: Inst, target: str | None) -> Iterator[bytes]:
    if target is None or target == inst.transfer_syntax:
        with blobs.open(inst.blob_key) as f:
            while chunk := f.read(CHUNK):
                yield chunk
        return
    with blobs.open(inst.blob_key) as f:
        yield transcode(f, target)


# --------------------------------------------------------------------------
# Metadata


def instance_url(base: str, inst: Inst) -> str:
    return f"{base}/studies/{inst.study_uid}/series/{inst.series_uid}/instances/{inst.sop_uid}"


def metadata(blobs, inst: Inst, base: str) -> dict:
    with blobs.open(inst.blob_key) as f:
        ds = dcmread(f, defer_size=64 * 1024)
        url = instance_url(base, inst)
        out: dict[str, dict] = {}
        for elem in ds:
            tag = f"{elem.tag:08X}"
            vr = elem.VR
            if vr in BULK_VRS and (elem.tag == 0x7FE00010 or _length(elem) > BULK_THRESHOLD):
                out[tag] = {"vr": vr, "BulkDataURI": f"{url}/bulkdata/{tag}"}
                continue
            try:
                out[tag] = elem.to_json_dict(None, BULK_THRESHOLD)
            except Exception:  # a malformed value is left out rather than failing the study
                continue
        if "00080005" in out:
            out["00080005"] = {"vr": "CS", "Value": ["ISO_IR 192"]}
        out["00083002"] = {"vr": "UI", "Value": [inst.transfer_syntax]}
        return dict(sorted(out.items()))


def _length(elem: DataElement) -> int:
    raw_len = getattr(elem, "length", None)
    if isinstance(raw_len, int) and raw_len >= 0 and raw_len != 0xFFFFFFFF:
        return raw_len
    value = elem.value
    try:
        return len(value) if value is not None else 0
    except TypeError:
        return 0


def bulkdata(blobs, inst: Inst, tag_hex: str) -> bytes:
    try:
        tag = int(tag_hex, 16)
    except ValueError:
        raise DicomwebHTTPError(400, "bulk data is addressed by an 8-hex-digit tag") from None
    with blobs.open(inst.blob_key) as f:
        ds = dcmread(f)
        if tag not in ds:
            raise DicomwebHTTPError(404, f"no element {tag_hex} in this instance")
        value = ds[tag].value
    if not isinstance(value, (bytes, bytearray)):
        raise DicomwebHTTPError(404, f"element {tag_hex} is not bulk data")
    return bytes(value)


# --------------------------------------------------------------------------
# Frames


def parse_frames(text: str, available: int) -> list[int]:
    try:
        numbers = [int(p) for p in text.split(",") if p.strip()]
    except ValueError:
        raise DicomwebHTTPError(400, "frames are a comma-separated list of frame numbers from 1") from None
    if not numbers or any(n < 1 for n in numbers):
        raise DicomwebHTTPError(400, "frame numbers start at 1")
    missing = [n for n in numbers if n > max(available, 0)]
    if missing:
        raise DicomwebHTTPError(404, f"no frame {missing[0]}: this instance has {available}")
    return numbers


@dataclass(frozen=True)
class FramePlan:
    content_type: str  # of each part
    decode: bool  # decode to native little endian pixels


def choose_frame_media(ranges: list[MediaRange], stored_ts: str) -> FramePlan:
    stored = UID(stored_ts)
    native = not stored.is_compressed
    stored_media = "application/octet-stream" if native else FRAME_MEDIA.get(stored_ts, "application/octet-stream")
    as_stored = FramePlan(f"{stored_media}; transfer-syntax={stored_ts}", False)
    for r in ranges:
        ts = r.transfer_syntax
        if r.type in ("*/*", "multipart/*") or (r.type == "multipart/related" and r.inner in (None, "*/*")):
            return as_stored
        if r.type != "multipart/related":
            continue
        if r.inner == "application/octet-stream":
            if ts == "*" or ts == stored_ts:
                return FramePlan(f"application/octet-stream; transfer-syntax={stored_ts}", False)
            if ts in (None, ExplicitVRLittleEndian, ImplicitVRLittleEndian):
                if native and stored_ts != "1.2.840.10008.1.2.2":
                    return FramePlan(f"application/octet-stream; transfer-syntax={ExplicitVRLittleEndian}", False)
                try:
                    if get_decoder(stored).is_available:
                        return FramePlan(f"application/octet-stream; transfer-syntax={ExplicitVRLittleEndian}", True)
                except NotImplementedError:
                    continue
            continue
        if r.inner and r.inner == stored_media and not native and (ts in (None, "*") or ts == stored_ts):
            return as_stored
    raise DicomwebHTTPError(406, f"the frames are stored as {stored_ts}; acceptable here: multipart/related; "
                                 f"type=\"{stored_media}\" or type=\"application/octet-stream\"")


def frames(blobs, inst: Inst, numbers: list[int], plan: FramePlan) -> list[bytes]:
    with blobs.open(inst.blob_key) as f:
        ds = dcmread(f)
    if "PixelData" not in ds:
        raise DicomwebHTTPError(404, "this instance has no pixel data")
    n_frames = inst.number_of_frames or 1
    tsuid = ds.file_meta.TransferSyntaxUID
    if plan.decode:
        arr = ds.pixel_array
        if n_frames == 1:
            arr = arr[np.newaxis, ...]
        return [np.ascontiguousarray(arr[n - 1]).astype(arr.dtype.newbyteorder("<"), copy=False).tobytes()
                for n in numbers]
    if tsuid.is_compressed:
        return [bytes(get_frame(ds.PixelData, n - 1, number_of_frames=n_frames)) for n in numbers]
    bits = int(ds.BitsAllocated)
    per_frame_px = int(ds.Rows) * int(ds.Columns) * int(ds.get("SamplesPerPixel", 1))
    data = ds.PixelData
    if bits == 1:
        start_bits = [(n - 1) * per_frame_px for n in numbers]
        out = []
        bits_arr = np.unpackbits(np.frombuffer(data, dtype=np.uint8), bitorder="little")
        for sb in start_bits:
            out.append(np.packbits(bits_arr[sb: sb + per_frame_px], bitorder="little").tobytes())
        return out
    size = per_frame_px * math.ceil(bits / 8)
    return [bytes(data[(n - 1) * size: n * size]) for n in numbers]


# --------------------------------------------------------------------------
# Rendered


def render_options(params, frame: int, *, thumbnail: bool, accept: list[MediaRange]) -> RenderOptions:
    fmt = None
    explicit = params.get("accept")
    ranges = [MediaRange(explicit.strip().lower(), {}, 1.0)] if explicit else accept
    for r in ranges:
        if r.type in ("image/jpeg", "image/jpg", "image/*", "*/*"):
            fmt = "jpeg"
        elif r.type == "image/png":
            fmt = "png"
        elif r.type == "multipart/related" and r.inner in ("image/jpeg", "image/png"):
            fmt = r.inner.split("/")[1]
        if fmt:
            break
    if fmt is None:
        raise DicomwebHTTPError(406, "rendered resources are image/jpeg or image/png")
    window = voi = None
    if params.get("window"):
        parts = [p.strip() for p in params["window"].split(",")]
        if len(parts) not in (2, 3):
            raise DicomwebHTTPError(400, "window is center,width[,function]")
        try:
            window = (float(parts[0]), float(parts[1]))
        except ValueError:
            raise DicomwebHTTPError(400, "window center and width must be numbers") from None
        voi = parts[2] if len(parts) == 3 else None
    viewport = (128, 128) if thumbnail else None
    if params.get("viewport"):
        parts = [p.strip() for p in params["viewport"].split(",")]
        if len(parts) not in (2, 6):
            raise DicomwebHTTPError(400, "viewport is vw,vh[,sx,sy,sw,sh]")
        try:
            viewport = (int(parts[0]), int(parts[1]))
        except ValueError:
            raise DicomwebHTTPError(400, "viewport width and height must be integers") from None
    quality = 90 if not thumbnail else 80
    if params.get("quality"):
        try:
            quality = int(params["quality"])
        except ValueError:
            raise DicomwebHTTPError(400, "quality must be an integer 1-100") from None
    try:
        return RenderOptions(frame=frame, window=window, voi_function=voi, fmt=fmt, quality=quality, viewport=viewport)
    except ValueError as e:
        raise DicomwebHTTPError(400, str(e)) from None


def representative(insts: list[Inst]) -> Inst:
    images = [x for x in insts if x.kind == "image"] or insts
    first_series = images[0].series_uid
    in_series = [x for x in images if x.series_uid == first_series]
    return in_series[len(in_series) // 2]

