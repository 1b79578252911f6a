"""WADO-RS (PS3.18 10.4): instances as stored, metadata, frames, bulk data, rendered.

Instances are served byte for byte as stored (the archive's Part-10 file)
unless the Accept header names another transfer syntax; conversion is
offered where it is lossless and possible here (to Explicit or Implicit VR
Little Endian, decompressing if a decoder is installed), else NotAcceptable (406).
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, BinaryIO
from urllib.parse import quote

import numpy as np
from pydicom import dcmread
from pydicom.encaps import get_frame
from pydicom.pixels.decoders.base import get_decoder
from pydicom.uid import UID, ExplicitVRLittleEndian, ImplicitVRLittleEndian
from sqlalchemy import Connection, and_, or_, select

from ...core.dicom import (
    DEFAULT_MAX_INFLATED,
    build_file_meta,
    native_pixel_bits,
    open_inflated,
    read_file_meta,
    transfer_syntax_encoding,
)
from ...core.elements import native_frames, read_stored, value_chunks
from ...core.errors import Invalid, NotFound
from ...core.render import RenderOptions, decode_frame
from ...storage import schema as s
from ...storage.blobs import BlobStore
from .media import MediaRange, NotAcceptable

d, se, i, st = s.dicom_studies, s.series, s.instances, s.studies

UNCOMPRESSED = {ExplicitVRLittleEndian, ImplicitVRLittleEndian}
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
    """Instances the caller may see under the path, in series then instance order; NotFound if none."""
    conds = [i.c.study_uid == study_uid, or_(st.c.deleted.is_(None), st.c.deleted.is_(False))]
    if scope is not None:
        if not scope:
            raise NotFound("no such study")
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
    rows = [Inst(*tuple(r)) for r in conn.execute(stmt)]
    if not rows:
        what = "instance" if sop_uid else "series" if series_uid else "study"
        raise NotFound(f"no such {what}")
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


def choose_instance_media(ranges: list[MediaRange], insts: list[Inst], *,
                          single_allowed: bool) -> tuple[bool, str | None]:
    """The best acceptable form every instance can be delivered in; NotAcceptable when none."""
    options = instance_media_options(ranges, single_allowed=single_allowed)
    if not options:
        raise NotAcceptable("acceptable here: multipart/related; type=\"application/dicom\""
                                     + ("; or application/dicom" if single_allowed else ""))
    for multipart, target in options:
        if all(can_deliver(x, target) for x in insts):
            return multipart, target
    raise NotAcceptable(f"cannot deliver {insts[0].transfer_syntax} in the transfer syntax asked for: "
                                 "ask for transfer-syntax=* to get it as stored")


def can_deliver(inst: Inst, target: str | None) -> bool:
    if target is None or target == inst.transfer_syntax:
        return True
    if target not in UNCOMPRESSED:
        return False
    if transfer_syntax_encoding(inst.transfer_syntax)[2]:
        # Deflated is explicit VR little endian once inflated, which is done
        # as a stream; re-encoding it to implicit VR would hold it whole.
        return target == ExplicitVRLittleEndian
    stored = UID(inst.transfer_syntax)
    if not stored.is_compressed:
        return True
    try:
        return get_decoder(stored).is_available
    except NotImplementedError:
        return False


def transcode(f: BinaryIO, target: str) -> bytes:
    ds = dcmread(f)
    if ds.file_meta.TransferSyntaxUID.is_compressed:
        ds.decompress()
    ds.file_meta.TransferSyntaxUID = UID(target)
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def instance_bytes(blobs: BlobStore, inst: Inst, target: str | None, *,
                   max_inflated: int = DEFAULT_MAX_INFLATED) -> Iterator[bytes]:
    """The instance as stored, or in ``target`` (see can_deliver). A deflated
    one asked for as Explicit VR Little Endian is inflated as it is sent, once
    it has been checked to inflate within the limits (InvalidInstance here,
    before the first byte, otherwise)."""
    if target is None or target == inst.transfer_syntax:
        return _file_chunks(blobs, inst)
    if transfer_syntax_encoding(inst.transfer_syntax)[2]:
        with blobs.open(inst.blob_key) as f:
            read_file_meta(f)
            inflated = open_inflated(f, max_inflated=max_inflated)
            while inflated.read(CHUNK):
                pass
        return _inflated_chunks(blobs, inst, target, max_inflated)
    return _transcoded_chunks(blobs, inst, target)


def _file_chunks(blobs: BlobStore, inst: Inst) -> Iterator[bytes]:
    with blobs.open(inst.blob_key) as f:
        while chunk := f.read(CHUNK):
            yield chunk


def _inflated_chunks(blobs: BlobStore, inst: Inst, target: str, max_inflated: int) -> Iterator[bytes]:
    yield build_file_meta(sop_class_uid=inst.sop_class_uid, sop_instance_uid=inst.sop_uid, transfer_syntax_uid=target)
    with blobs.open(inst.blob_key) as f:
        read_file_meta(f)
        inflated = open_inflated(f, max_inflated=max_inflated)
        while chunk := inflated.read(CHUNK):
            yield chunk


def _transcoded_chunks(blobs: BlobStore, inst: Inst, target: str) -> Iterator[bytes]:
    with blobs.open(inst.blob_key) as f:
        yield transcode(f, target)


# --------------------------------------------------------------------------
# Metadata


def resource_url(base: str, study_uid: str, series_uid: str | None = None, sop_uid: str | None = None) -> str:
    """The URL of a study, series or instance. UIDs are stored as the equipment sent them
    (core/dicom.is_storable_uid: any printable ASCII), so each is percent-encoded."""
    url = f"{base}/studies/{quote(study_uid, safe='')}"
    if series_uid is not None:
        url += f"/series/{quote(series_uid, safe='')}"
        if sop_uid is not None:
            url += f"/instances/{quote(sop_uid, safe='')}"
    return url


def instance_url(base: str, inst: Inst) -> str:
    return resource_url(base, inst.study_uid, inst.series_uid, inst.sop_uid)


def metadata(blobs: BlobStore, inst: Inst, base: str, *,
             max_inflated: int = DEFAULT_MAX_INFLATED) -> dict[str, Any]:
    """The instance's DICOM JSON. Read in bounded memory (core/elements.py):
    pixel data, binary values over 1 KiB and any value over 1 MiB become
    BulkDataURIs without being read; InvalidInstance for a stored file
    that cannot be read within those bounds (a deflate bomb)."""
    with blobs.open(inst.blob_key) as f:
        stored = read_stored(f, max_bulk=BULK_THRESHOLD, max_inflated=max_inflated)
    url = instance_url(base, inst)
    out: dict[str, dict[str, Any]] = {}
    for elem in stored.dataset:
        try:
            out[f"{elem.tag:08X}"] = elem.to_json_dict(None, BULK_THRESHOLD)
        except Exception:  # a malformed value is left out rather than failing the study
            continue
    for tag, value in stored.large.items():
        out[f"{tag:08X}"] = {"vr": value.vr, "BulkDataURI": f"{url}/bulkdata/{tag:08X}"}
    if "00080005" in out:
        out["00080005"] = {"vr": "CS", "Value": ["ISO_IR 192"]}
    out["00083002"] = {"vr": "UI", "Value": [inst.transfer_syntax]}
    return dict(sorted(out.items()))


def bulkdata(blobs: BlobStore, inst: Inst, tag_hex: str, *,
             max_inflated: int = DEFAULT_MAX_INFLATED) -> Iterator[bytes]:
    """A top-level element's value, streamed (checked before the first byte)."""
    try:
        tag = int(tag_hex, 16)
    except ValueError:
        raise Invalid("bulk data is addressed by an 8-hex-digit tag") from None
    f = blobs.open(inst.blob_key)
    try:
        stored = read_stored(f, max_bulk=BULK_THRESHOLD, max_inflated=max_inflated)
        large = stored.large.get(tag)
        if large is None:
            small = stored.dataset.get(tag)
            if small is None:
                raise NotFound(f"no element {tag_hex} in this instance")
            value = small.value
            if not isinstance(value, (bytes, bytearray)):
                raise NotFound(f"element {tag_hex} is not bulk data")
            f.close()
            return iter([bytes(value)])
    except BaseException:
        f.close()
        raise

    def chunks() -> Iterator[bytes]:
        with f:
            yield from value_chunks(f, stored, large, max_inflated=max_inflated)
    return chunks()


# --------------------------------------------------------------------------
# Frames


# Frames one request may name (after de-duplication): each frame is sent at most
# once, so an answer is never larger than the instance.
MAX_FRAMES_PER_REQUEST = 1024
_FRAME_NUMBER = re.compile(r"\s*(\d{1,20})\s*", re.ASCII)


def parse_frames(text: str, available: int) -> list[int]:
    """The frame numbers of a frame list (PS3.18 8.3.5.1: non-duplicate), in the
    order asked, each once; Invalid for a malformed or over-long list, NotFound past the end."""
    numbers: dict[int, None] = {}
    for part in text.split(","):
        if not part.strip():
            continue
        m = _FRAME_NUMBER.fullmatch(part)
        if m is None:
            raise Invalid("frames are a comma-separated list of frame numbers from 1")
        numbers[int(m.group(1))] = None
        if len(numbers) > MAX_FRAMES_PER_REQUEST:
            raise Invalid(f"at most {MAX_FRAMES_PER_REQUEST} frames per request")
    if not numbers or 0 in numbers:
        raise Invalid("frame numbers start at 1")
    missing = [n for n in numbers if n > max(available, 0)]
    if missing:
        raise NotFound(f"no frame {missing[0]}: this instance has {available}")
    return list(numbers)


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
    raise NotAcceptable(f"the frames are stored as {stored_ts}; acceptable here: multipart/related; "
                                 f"type=\"{stored_media}\" or type=\"application/octet-stream\"")


def frames(blobs: BlobStore, inst: Inst, numbers: list[int], plan: FramePlan, *,
           max_inflated: int = DEFAULT_MAX_INFLATED) -> list[bytes]:
    """The frames asked for, and only those: read by offset (native), by
    their fragments (encapsulated) or decoded one at a time."""
    with blobs.open(inst.blob_key) as f:
        stored = read_stored(f, stop_at_pixels=True, max_inflated=max_inflated)
        pixels = stored.pixels
        if pixels is None:
            raise NotFound("this instance has no pixel data")
        ds = stored.dataset
        if plan.decode:
            out = []
            for n in numbers:
                arr, _ = decode_frame(f, stored, n - 1, max_inflated=max_inflated)
                out.append(np.ascontiguousarray(arr).astype(arr.dtype.newbyteorder("<"), copy=False).tobytes())
            return out
        if pixels.undefined_length:
            n_frames = inst.number_of_frames or 1
            out = []
            for n in numbers:
                f.seek(stored.dataset_offset + pixels.offset)
                out.append(bytes(get_frame(f, n - 1, number_of_frames=n_frames)))
            return out
        frame_bits = native_pixel_bits(rows=int(ds.Rows), columns=int(ds.Columns), bits_allocated=int(ds.BitsAllocated),
                                       samples_per_pixel=int(ds.get("SamplesPerPixel", 1)),
                                       photometric=str(ds.get("PhotometricInterpretation") or ""))
        got = native_frames(f, stored, pixels, [n - 1 for n in numbers], frame_bits, max_inflated=max_inflated)
        return [got[n - 1] for n in numbers]


# --------------------------------------------------------------------------
# Rendered


def render_options(params: Mapping[str, str], frame: int, *, thumbnail: bool,
                   accept: list[MediaRange]) -> RenderOptions:
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
        raise NotAcceptable("rendered resources are image/jpeg or image/png")
    window = voi = None
    if params.get("window"):
        parts = [p.strip() for p in params["window"].split(",")]
        if len(parts) not in (2, 3):
            raise Invalid("window is center,width[,function]")
        try:
            window = (float(parts[0]), float(parts[1]))
        except ValueError:
            raise Invalid("window center and width must be numbers") from None
        voi = parts[2] if len(parts) == 3 else None
    viewport = (128, 128) if thumbnail else None
    if params.get("viewport"):
        parts = [p.strip() for p in params["viewport"].split(",")]
        if len(parts) not in (2, 6):
            raise Invalid("viewport is vw,vh[,sx,sy,sw,sh]")
        try:
            viewport = (int(parts[0]), int(parts[1]))
        except ValueError:
            raise Invalid("viewport width and height must be integers") from None
    quality = 90 if not thumbnail else 80
    if params.get("quality"):
        try:
            quality = int(params["quality"])
        except ValueError:
            raise Invalid("quality must be an integer 1-100") from None
    try:
        return RenderOptions(frame=frame, window=window, voi_function=voi, fmt=fmt, quality=quality, viewport=viewport)
    except ValueError as e:
        raise Invalid(str(e)) from None


def representative(insts: list[Inst]) -> Inst:
    images = [x for x in insts if x.kind == "image"] or insts
    first_series = images[0].series_uid
    in_series = [x for x in images if x.series_uid == first_series]
    return in_series[len(in_series) // 2]

