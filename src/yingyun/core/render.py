"""Server-side rendering of DICOM frames to JPEG/PNG.

Feeds the patient's mobile viewer ("cloud film") and DICOMweb rendered
resources. Phones get an 8-bit picture that already has the modality LUT,
the VOI window, MONOCHROME1 inversion and colour conversion applied, so the
client never has to understand DICOM.

Only the requested frame is decoded: the header is read up to the pixel
data element in bounded memory (core/elements.py) and pydicom's decoder is
handed the open file positioned at the pixel data value, so for native data
it seeks straight to the frame and for encapsulated data it reads only that
frame's fragments. A deflated file is inflated as a stream up to the end of
the frame asked for and no further, 64 KiB at a time and under the ingest
limits (a deflate bomb is a RenderError, not gigabytes of memory).

storage/render_cache.py keeps what is rendered, so a viewer scrolling back
and forth through a series does not pay for decoding twice.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, BinaryIO, Union

import numpy as np
from PIL import Image
from pydicom.dataset import Dataset
from pydicom.pixels.decoders.base import get_decoder
from pydicom.pixels.processing import apply_color_lut, apply_modality_lut, convert_color_space
from pydicom.pixels.utils import as_pixel_options
from pydicom.uid import UID, ExplicitVRLittleEndian

from . import decoders
from .dicom import DEFAULT_MAX_INFLATED, InvalidInstance, native_pixel_bits
from .elements import StoredInstance, native_frames, read_stored

# GDCM behind pylibjpeg, and for 12-bit JPEG Extended (core/decoders.py).
decoders.install()

__all__ = [
    "DEFAULT_PRESET",
    "PRESETS",
    "RENDER_VERSION",
    "RenderError",
    "RenderOptions",
    "decode_frame",
    "describe",
    "frame_count",
    "preset_names",
    "render",
]

Source = Union[str, "os.PathLike[str]", bytes, bytearray, memoryview, BinaryIO]

# Part of every cache key: bump it whenever the same input and options would
# render to different bytes, so stale cached pictures are never served.
RENDER_VERSION = 1


class RenderError(Exception):
    """The object cannot be rendered (no pixel data, unsupported or broken
    encoding, not DICOM). Messages name the reason only, never patient data,
    because they may reach an HTTP response or a log shipped off-site."""


# Typical CT window (center, width) in HU, from Radiopaedia, "Windowing (CT)",
# table "Typical window width and level values": brain W:80 L:40, lungs
# W:1500 L:-600, mediastinum W:350 L:50, abdominal soft tissue W:400 L:50,
# liver W:150 L:30, bone W:1800 L:400. Other modalities have no meaningful
# fixed windows (MR/CR/DX signal is not calibrated), so they only get the
# DEFAULT_PRESET, which means "the window the file itself recommends".
PRESETS: dict[str, dict[str, tuple[float, float]]] = {
    "CT": {
        "brain": (40.0, 80.0),
        "lung": (-600.0, 1500.0),
        "mediastinum": (50.0, 350.0),
        "abdomen": (50.0, 400.0),
        "liver": (30.0, 150.0),
        "bone": (400.0, 1800.0),
    },
}
DEFAULT_PRESET = "default"

_VOI_FUNCTIONS = ("LINEAR", "LINEAR_EXACT", "SIGMOID")
_FORMATS = ("jpeg", "png")
# Elements bigger than this (private blobs, overlays, icon sequences' pixel
# data) are skipped when reading the header; palette LUTs (<=128 KiB) and VOI
# LUTs stay well below it so they are read normally.
_DEFER_SIZE = 512 * 1024
_PIXEL_TAGS = {0x7FE00010: "PixelData", 0x7FE00008: "FloatPixelData", 0x7FE00009: "DoubleFloatPixelData"}


def preset_names(modality: str | None) -> list[str]:
    """Preset button labels for a modality, DEFAULT_PRESET first."""
    return [DEFAULT_PRESET, *PRESETS.get((modality or "").upper(), {})]


@dataclass(frozen=True)
class RenderOptions:
    """What to render. Invalid values raise ValueError at construction so an
    HTTP layer can answer 400 before any file is touched."""

    frame: int = 0
    # (center, width). None -> the file's own window, else its VOI LUT, else
    # the frame's min/max after the modality LUT.
    window: tuple[float, float] | None = None
    # Name in PRESETS[modality] or DEFAULT_PRESET; overrides the file window.
    preset: str | None = None
    # VOI LUT function for `window`/`preset` (DICOMweb's `window=c,w,function`).
    # None -> LINEAR, except that the file's own window keeps the file's
    # VOILUTFunction.
    voi_function: str | None = None
    fmt: str = "jpeg"
    quality: int = 90
    # Max (width, height); scaled down preserving aspect ratio, never up.
    viewport: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        if isinstance(self.frame, bool) or not isinstance(self.frame, int) or self.frame < 0:
            raise ValueError("frame must be an integer >= 0")
        fmt = str(self.fmt).lower()
        fmt = "jpeg" if fmt == "jpg" else fmt
        if fmt not in _FORMATS:
            raise ValueError(f"fmt must be one of {_FORMATS}")
        object.__setattr__(self, "fmt", fmt)
        if isinstance(self.quality, bool) or not isinstance(self.quality, int) or not 1 <= self.quality <= 100:
            raise ValueError("quality must be an integer in 1..100")
        if self.window is not None:
            if len(self.window) != 2:
                raise ValueError("window must be (center, width)")
            center, width = float(self.window[0]), float(self.window[1])
            if not (np.isfinite(center) and np.isfinite(width)) or width <= 0:
                raise ValueError("window width must be > 0 and both values finite")
            object.__setattr__(self, "window", (center, width))
        if self.voi_function is not None:
            func = str(self.voi_function).upper().replace("-", "_")
            if func not in _VOI_FUNCTIONS:
                raise ValueError(f"voi_function must be one of {_VOI_FUNCTIONS}")
            object.__setattr__(self, "voi_function", func)
        if self.viewport is not None:
            if len(self.viewport) != 2:
                raise ValueError("viewport must be (width, height)")
            vw, vh = int(self.viewport[0]), int(self.viewport[1])
            if vw < 1 or vh < 1:
                raise ValueError("viewport dimensions must be >= 1")
            object.__setattr__(self, "viewport", (vw, vh))


# --------------------------------------------------------------------------
# Reading


@contextmanager
def _open(source: Source) -> Iterator[BinaryIO]:
    if isinstance(source, (bytes, bytearray, memoryview)):
        yield io.BytesIO(bytes(source))
    elif isinstance(source, (str, os.PathLike)):
        # A missing file is the storage layer's problem, not a rendering one,
        # so FileNotFoundError propagates unchanged.
        with open(source, "rb") as f:
            yield f
    elif hasattr(source, "read"):
        seekable = getattr(source, "seekable", None)
        # The decoder seeks around inside the pixel data; a socket-like
        # stream has to be buffered first.
        yield source if seekable is not None and seekable() else io.BytesIO(source.read())
    else:
        raise TypeError(f"unsupported source type {type(source).__name__}")


def _read_header(f: BinaryIO, max_inflated: int) -> StoredInstance:
    """Everything before the pixel data, in bounded memory (core/elements.py);
    leaves `f` at the pixel data value (a deflated file is re-read later)."""
    try:
        return read_stored(f, max_value=_DEFER_SIZE, max_bulk=_DEFER_SIZE, stop_at_pixels=True,
                           max_inflated=max_inflated)
    except InvalidInstance as exc:
        raise RenderError(exc.reason) from exc


def _nr_frames(ds: Dataset) -> int:
    try:
        n = int(ds.get("NumberOfFrames") or 1)
    except (TypeError, ValueError):
        n = 1
    return max(n, 1)


def _frame_bits(ds: Dataset) -> int:
    return native_pixel_bits(rows=int(ds.Rows), columns=int(ds.Columns), bits_allocated=int(ds.BitsAllocated),
                             samples_per_pixel=int(ds.get("SamplesPerPixel") or 1),
                             photometric=str(ds.get("PhotometricInterpretation") or ""))


def decode_frame(f: BinaryIO, stored: StoredInstance, frame: int, *,
                 max_inflated: int = DEFAULT_MAX_INFLATED) -> tuple[np.ndarray, str]:
    """Decode one frame of a stored instance read by ``read_stored(...,
    stop_at_pixels=True)``; returns the array and the photometric
    interpretation that the array is actually in (decoders may already have
    converted YBR). Only that frame is read: a native one by its offset (of a
    deflated file, by inflating up to it and no further), an encapsulated
    one through its fragments."""
    ds, tsyntax = stored.dataset, stored.transfer_syntax
    nframes = _nr_frames(ds)
    if frame >= nframes:
        raise IndexError(f"frame {frame} out of range: the object has {nframes} frame(s)")
    pixels = stored.pixels
    if pixels is None:
        raise RenderError("the object has no pixel data")
    if pixels.length == 0:
        raise RenderError("the pixel data element is empty")
    try:
        decoder = get_decoder(tsyntax)
    except NotImplementedError as exc:
        raise RenderError(f"unsupported transfer syntax {tsyntax}") from exc
    if not decoder.is_available:
        raise RenderError(f"no decoder installed for transfer syntax {tsyntax.name}")

    src: BinaryIO
    try:
        opts = as_pixel_options(ds)
        opts["pixel_keyword"] = _PIXEL_TAGS[pixels.tag]
        if not ds.original_encoding[0]:
            opts["pixel_vr"] = pixels.vr
        if stored.deflated:
            # The frame alone, as native data: the decoder never sees the rest.
            data = native_frames(f, stored, pixels, [frame], _frame_bits(ds), max_inflated=max_inflated)[frame]
            src, index = io.BytesIO(data), 0
            opts["number_of_frames"] = 1
            decoder = get_decoder(ExplicitVRLittleEndian)
        else:
            src, index = f, frame
    except (RenderError, InvalidInstance) as exc:
        raise RenderError(getattr(exc, "reason", str(exc))) from exc
    except Exception as exc:
        raise RenderError(f"unusable image pixel attributes ({type(exc).__name__})") from exc

    try:
        arr, props = decoder.as_array(src, index=index, **opts)
    except Exception as exc:
        # Codec messages describe the bitstream, not the patient.
        reason = " ".join(str(exc).split())[:300]
        raise RenderError(f"cannot decode {tsyntax.name} pixel data: {reason}") from exc
    return arr, str(props.get("photometric_interpretation") or ds.get("PhotometricInterpretation", ""))


# --------------------------------------------------------------------------
# Attribute look-ups that also understand enhanced multi-frame objects


def _fg_item(ds: Dataset, frame: int, seq: str) -> Dataset | None:
    """First item of functional group macro `seq` for `frame`: per-frame wins
    over shared (PS3.3 C.7.6.16)."""
    item: Dataset  # what pydicom's untyped Dataset.get hands back here
    per_frame = ds.get("PerFrameFunctionalGroupsSequence")
    if per_frame is not None and frame < len(per_frame):
        inner = per_frame[frame].get(seq)
        if inner:
            item = inner[0]
            return item
    shared = ds.get("SharedFunctionalGroupsSequence")
    if shared:
        inner = shared[0].get(seq)
        if inner:
            item = inner[0]
            return item
    return None


def _as_list(value: Any) -> list[Any]:
    """pydicom gives a bare value for VM 1 and a MultiValue otherwise."""
    if value is None or value == "":
        return []
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        return [value]
    return list(value)


def _floats(value: Any) -> list[float]:
    out = []
    for item in _as_list(value):
        try:
            out.append(float(item))
        except (TypeError, ValueError):
            return []
    return out


def _first_float(value: Any) -> float | None:
    vals = _floats(value)
    return vals[0] if vals else None


def _rescale(ds: Dataset, frame: int) -> tuple[float, float]:
    src = _fg_item(ds, frame, "PixelValueTransformationSequence") or ds
    slope = _first_float(src.get("RescaleSlope"))
    intercept = _first_float(src.get("RescaleIntercept"))
    return (slope if slope else 1.0), (intercept or 0.0)


def _file_windows(ds: Dataset, frame: int) -> list[tuple[float, float, str]]:
    """The file's VOI windows as (center, width, function), unusable ones dropped."""
    src = _fg_item(ds, frame, "FrameVOILUTSequence") or ds
    centers = _floats(src.get("WindowCenter"))
    widths = _floats(src.get("WindowWidth"))
    func = str(src.get("VOILUTFunction") or "LINEAR").upper()
    func = func if func in _VOI_FUNCTIONS else "LINEAR"
    # as many windows as both lists give (a file may send more centers than widths, or fewer)
    return [(c, w, func) for c, w in zip(centers, widths, strict=False) if w > 0 and np.isfinite(c) and np.isfinite(w)]


# --------------------------------------------------------------------------
# Pixel pipeline


def _window_to_u8(x: np.ndarray, center: float, width: float, func: str) -> np.ndarray:
    """VOI window per PS3.3 C.11.2.1.2 onto 0..255. `x` is float32 and is
    overwritten: the in-place ops avoid three full-size temporaries."""
    if func == "SIGMOID":
        # y = 255 / (1 + exp(-4 (x - c) / w))
        np.subtract(x, center, out=x)
        np.multiply(x, np.float32(-4.0 / width), out=x)
        np.clip(x, -80.0, 80.0, out=x)  # exp() overflow in float32 is a warning
        np.exp(x, out=x)
        np.add(x, 1.0, out=x)
        np.divide(np.float32(255.0), x, out=x)
        np.add(x, 0.5, out=x)
    elif func == "LINEAR" and width <= 1.0:
        # C.11.2.1.2.1 divides by (w - 1): at w == 1 it is a step at c - 0.5.
        return np.where(x > center - 0.5, np.uint8(255), np.uint8(0))
    else:
        if func == "LINEAR_EXACT":
            low, span = center - width / 2.0, width
        else:
            low, span = center - 0.5 - (width - 1.0) / 2.0, width - 1.0
        # (x - low) * 255 / span rather than one fused multiply: for integer
        # input every step is exact or correctly rounded, so values landing
        # exactly on .5 round the same way every time (and as the standard's
        # formula does), at the cost of one more pass over the frame.
        np.subtract(x, np.float32(low), out=x)
        np.multiply(x, np.float32(255.0), out=x)
        np.divide(x, np.float32(span), out=x)
        np.add(x, np.float32(0.5), out=x)  # the truncating cast below then rounds half up
    np.clip(x, 0.0, 255.0, out=x)
    return x.astype(np.uint8)


def _lut_data(item: Dataset, ds: Dataset, n_entries: int) -> np.ndarray:
    raw = item.LUTData
    if isinstance(raw, (bytes, bytearray)):
        little = ds.original_encoding[1]
        little = True if little is None else little
        if len(raw) >= 2 * n_entries:
            return np.frombuffer(raw, dtype="<u2" if little else ">u2", count=n_entries).astype(np.float32)
        return np.frombuffer(raw, dtype=np.uint8, count=n_entries).astype(np.float32)
    return np.asarray(_floats(raw) if not isinstance(raw, int) else [raw], dtype=np.float32)


def _apply_voi_lut_seq(x: np.ndarray, ds: Dataset) -> np.ndarray:
    item = ds.VOILUTSequence[0]
    desc = [int(v) for v in item.LUTDescriptor]
    n_entries = desc[0] or 65536
    first = desc[1]
    # LUT Descriptor's VR is "US or SS"; a signed image's first mapped value
    # may have been read as unsigned.
    if int(ds.get("PixelRepresentation", 0) or 0) == 1 and first >= 32768:
        first -= 65536
    lut = _lut_data(item, ds, n_entries)
    if lut.size == 0:
        raise RenderError("empty VOI LUT")
    np.subtract(x, first, out=x)
    np.rint(x, out=x)
    np.clip(x, 0, lut.size - 1, out=x)
    out = lut[x.astype(np.intp)]
    # Stretch the LUT's actual output range, not the nominal 2^bits: many
    # writers declare 16 bits and fill 12, which would otherwise render dark.
    lo, hi = float(lut.min()), float(lut.max())
    if hi <= lo:
        return np.zeros(out.shape, dtype=np.uint8)
    return _window_to_u8(out, (lo + hi) / 2.0, hi - lo, "LINEAR_EXACT")


_Window = tuple[float, float, str]


def _choose_window(ds: Dataset, opts: RenderOptions) -> _Window | None:
    """Explicit window > preset > the file's first window. None means: use
    the VOI LUT Sequence if any, else the frame's range. Runs before decoding
    so an unknown preset is a cheap ValueError."""
    if opts.window is not None:
        return (*opts.window, opts.voi_function or "LINEAR")
    if opts.preset is not None and opts.preset != DEFAULT_PRESET:
        modality = str(ds.get("Modality", "") or "").upper()
        presets = PRESETS.get(modality, {})
        if opts.preset not in presets:
            raise ValueError(f"unknown preset {opts.preset!r} for modality {modality or '?'}; "
                             f"have {preset_names(modality)}")
        return (*presets[opts.preset], opts.voi_function or "LINEAR")
    file_windows = _file_windows(ds, opts.frame)
    if file_windows:
        center, width, func = file_windows[0]
        return (center, width, opts.voi_function or func)
    return None


def _gray_to_u8(arr: np.ndarray, ds: Dataset, frame: int, window: _Window | None) -> np.ndarray:
    if "ModalityLUTSequence" in ds and np.issubdtype(arr.dtype, np.integer):
        x = apply_modality_lut(arr, ds).astype(np.float32)
    else:
        x = arr.astype(np.float32)  # always a fresh, writeable copy
        slope, intercept = _rescale(ds, frame)
        if slope != 1.0:
            np.multiply(x, np.float32(slope), out=x)
        if intercept != 0.0:
            np.add(x, np.float32(intercept), out=x)
    if not np.issubdtype(arr.dtype, np.integer):
        # Float pixel data (parametric maps) may hold NaN/inf, which would
        # survive clip() and turn into garbage in the uint8 cast.
        finite = np.isfinite(x)
        if not finite.all():
            if not finite.any():
                raise RenderError("the frame has no finite pixel values")
            good = x[finite]
            np.nan_to_num(x, copy=False, nan=float(good.min()), posinf=float(good.max()), neginf=float(good.min()))

    if window is not None:
        return _window_to_u8(x, *window)
    if ds.get("VOILUTSequence"):
        return _apply_voi_lut_seq(x, ds)

    # No VOI at all: stretch the frame's own range, ignoring the padding that
    # CT puts outside the reconstruction circle (it would squash everything).
    sample = x
    padding = ds.get("PixelPaddingValue")
    if isinstance(padding, int) and np.issubdtype(arr.dtype, np.integer):
        keep = arr != padding
        if keep.any():
            sample = x[keep]
    lo, hi = float(sample.min()), float(sample.max())
    if hi <= lo:
        return np.zeros(x.shape, dtype=np.uint8)
    return _window_to_u8(x, (lo + hi) / 2.0, hi - lo, "LINEAR_EXACT")


def _color_to_u8(arr: np.ndarray, bits_stored: int) -> np.ndarray:
    if arr.dtype == np.uint8:
        return arr
    if not np.issubdtype(arr.dtype, np.integer):
        raise RenderError("floating point colour pixel data is not supported")
    # Keep the most significant 8 of the stored bits.
    shift = max(min(bits_stored, arr.dtype.itemsize * 8) - 8, 0)
    return (arr >> shift).astype(np.uint8)


def _palette_to_u8(arr: np.ndarray, ds: Dataset) -> np.ndarray:
    rgb = apply_color_lut(arr, ds)
    if rgb.dtype == np.uint8:
        return rgb
    # Some writers declare 16-bit palette entries but fill only 0..255
    # (a known interoperability wart that dcmtk also tolerates).
    if int(rgb.max()) <= 255:
        return rgb.astype(np.uint8)
    return (rgb >> 8).astype(np.uint8)


def _to_display(arr: np.ndarray, pi: str, ds: Dataset, frame: int, window: _Window | None) -> np.ndarray:
    """Decoded frame -> (rows, cols) or (rows, cols, 3) uint8. Colour images
    ignore `window`: VOI windows are defined for grayscale only."""
    samples = int(ds.get("SamplesPerPixel", 1) or 1)
    if samples == 1 and pi in ("MONOCHROME1", "MONOCHROME2"):
        out = _gray_to_u8(arr, ds, frame, window)
        if pi == "MONOCHROME1":
            # MONOCHROME1: the lowest value is white; invert after VOI (C.7.6.3.1.2)
            np.subtract(np.uint8(255), out, out=out)
        return out
    if samples == 1 and pi == "PALETTE COLOR":
        if not np.issubdtype(arr.dtype, np.integer):
            raise RenderError("palette colour with non-integer indices")
        return _palette_to_u8(arr, ds)
    if samples == 3 and arr.ndim == 3:
        if pi in ("YBR_FULL", "YBR_FULL_422", "YBR_ICT"):
            # Decoders normally return RGB already (pydicom reports the colour
            # space they delivered); this only covers one that did not. ICT is
            # the same BT.601 full-range transform as YBR_FULL.
            arr = convert_color_space(arr, "YBR_FULL", "RGB")
        elif pi != "RGB":
            raise RenderError(f"unsupported photometric interpretation {pi}")
        bits = int(ds.get("BitsStored") or ds.get("BitsAllocated") or 8)
        return _color_to_u8(arr, bits)
    raise RenderError(f"unsupported photometric interpretation {pi or '(none)'} with {samples} sample(s) per pixel")


def _encode(pixels: np.ndarray, opts: RenderOptions) -> bytes:
    img = Image.fromarray(np.ascontiguousarray(pixels))
    if opts.viewport is not None:
        vw, vh = opts.viewport
        scale = min(vw / img.width, vh / img.height)
        if scale < 1.0:
            size = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
            # reducing_gap: box-reduce first, then Lanczos for the last 2x;
            # 2.5x faster for a 3000x2500 CR down to phone size, and the box
            # step only averages pixels the Lanczos pass would blend anyway.
            img = img.resize(size, Image.Resampling.LANCZOS, reducing_gap=2.0)
    buf = io.BytesIO()
    if opts.fmt == "png":
        # Pillow's default zlib level 6: on a 512x512 CT ~1 ms slower than
        # level 1-3 for ~8% fewer bytes, which a phone on 4G notices more.
        img.save(buf, format="PNG")
    else:
        # 4:4:4 for colour: chroma subsampling smears thin Doppler/annotation
        # lines, and grayscale (the bulk of traffic) is unaffected.
        img.save(buf, format="JPEG", quality=opts.quality, subsampling=0)
    return buf.getvalue()


# --------------------------------------------------------------------------
# Public API


def render(source: Source, opts: RenderOptions = RenderOptions(), *, max_inflated: int = DEFAULT_MAX_INFLATED) -> bytes:
    """Render one frame of a DICOM object to JPEG or PNG bytes.

    Raises RenderError if the object cannot be rendered (including a deflated
    one past the inflate limits), IndexError if the frame does not exist,
    ValueError for a preset the modality does not have.
    """
    with _open(source) as f:
        stored = _read_header(f, max_inflated)
        ds = stored.dataset
        window = _choose_window(ds, opts)
        arr, pi = decode_frame(f, stored, opts.frame, max_inflated=max_inflated)
        try:
            pixels = _to_display(arr, pi, ds, opts.frame, window)
        except RenderError:
            raise
        except Exception as exc:
            # Malformed LUTs and attribute values end up here; the chained
            # cause is in the server log, the message stays generic.
            raise RenderError(f"cannot apply the image's display attributes ({type(exc).__name__})") from exc
    return _encode(pixels, opts)


def frame_count(source: Source, *, max_inflated: int = DEFAULT_MAX_INFLATED) -> int:
    with _open(source) as f:
        return _nr_frames(_read_header(f, max_inflated).dataset)


def _num(value: Any) -> float | int | None:
    v = _first_float(value)
    if v is None:
        return None
    return int(v) if v.is_integer() and abs(v) < 2**53 else v


def describe(source: Source, frame: int = 0, *, max_inflated: int = DEFAULT_MAX_INFLATED) -> dict[str, Any]:
    """Header facts for the viewer overlay. Deliberately no patient, study
    date, institution or operator fields: this goes to the phone as JSON."""
    with _open(source) as f:
        stored = _read_header(f, max_inflated)
    ds = stored.dataset
    nframes = _nr_frames(ds)
    frame = min(max(frame, 0), nframes - 1)
    modality = str(ds.get("Modality", "") or "").upper()
    measures = _fg_item(ds, frame, "PixelMeasuresSequence") or ds
    position = _fg_item(ds, frame, "PlanePositionSequence") or ds
    orientation = _fg_item(ds, frame, "PlaneOrientationSequence") or ds
    slope, intercept = _rescale(ds, frame)
    windows = _file_windows(ds, frame)
    explanations = [str(e) for e in _as_list(ds.get("WindowCenterWidthExplanation"))]
    spacing = _floats(measures.get("PixelSpacing"))
    imager_spacing = _floats(ds.get("ImagerPixelSpacing"))
    aspect = _floats(ds.get("PixelAspectRatio"))
    position_vals = _floats(position.get("ImagePositionPatient"))
    orientation_vals = _floats(orientation.get("ImageOrientationPatient"))
    # The attribute is authoritative (it also records lossy history from
    # before a lossless re-encode); the syntax is a fallback for writers that
    # omit it, counting J2K/HTJ2K as lossy because they usually are.
    flag = str(ds.get("LossyImageCompression", "") or "").strip()
    lossy = flag == "01" if flag else stored.transfer_syntax in _LOSSY_SYNTAXES
    return {
        "rows": int(ds.get("Rows") or 0),
        "columns": int(ds.get("Columns") or 0),
        "frames": nframes,
        "modality": modality or None,
        "photometric": str(ds.get("PhotometricInterpretation", "") or "") or None,
        "samples_per_pixel": int(ds.get("SamplesPerPixel") or 1),
        "bits_stored": _num(ds.get("BitsStored")),
        "transfer_syntax": str(stored.transfer_syntax),
        "lossy": lossy,
        "window": ({"center": _num(windows[0][0]), "width": _num(windows[0][1]),
                    "function": windows[0][2]} if windows else None),
        "windows": [
            {"center": _num(c), "width": _num(w), "function": fn,
             "explanation": explanations[i] if i < len(explanations) else None}
            for i, (c, w, fn) in enumerate(windows)
        ],
        "has_voi_lut": bool(ds.get("VOILUTSequence")),
        "rescale_slope": _num(slope),
        "rescale_intercept": _num(intercept),
        "rescale_type": str(ds.get("RescaleType", "") or "") or ("HU" if modality == "CT" else None),
        "presets": preset_names(modality),
        "pixel_spacing": spacing[:2] if len(spacing) >= 2 else None,
        "imager_pixel_spacing": imager_spacing[:2] if len(imager_spacing) >= 2 else None,
        "pixel_aspect_ratio": aspect[:2] if len(aspect) >= 2 else None,
        "slice_thickness": _num(measures.get("SliceThickness")),
        "slice_location": _num(ds.get("SliceLocation")),
        "image_position": position_vals[:3] if len(position_vals) >= 3 else None,
        "image_orientation": orientation_vals[:6] if len(orientation_vals) >= 6 else None,
        "instance_number": _num(ds.get("InstanceNumber")),
        "series_number": _num(ds.get("SeriesNumber")),
        "series_description": str(ds.get("SeriesDescription", "") or "") or None,
    }


_LOSSY_SYNTAXES = {
    UID("1.2.840.10008.1.2.4.50"),  # JPEG baseline
    UID("1.2.840.10008.1.2.4.51"),  # JPEG extended
    UID("1.2.840.10008.1.2.4.81"),  # JPEG-LS near-lossless
    UID("1.2.840.10008.1.2.4.91"),  # JPEG 2000 (lossy or lossless)
    UID("1.2.840.10008.1.2.4.203"),  # HTJ2K (lossy or lossless)
}
