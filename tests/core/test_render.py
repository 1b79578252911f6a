"""Tests for yingyun.core.render against pydicom's bundled test files and
synthetic datasets whose correct rendering is known exactly.

pydicom 3.0.2 bundles only part of its test corpus (the rest lives in the
separately downloaded pydicom-data); the files used here are all bundled, so
no network is needed. Where the corpus lacks a case (MONOCHROME1, YBR_FULL
uncompressed, YBR_ICT, planar configuration 1 little endian, palette with
known colours, VOI/modality LUT sequences) the dataset is generated here.
"""

from __future__ import annotations

import io
import math
import os
import statistics
import time
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pydicom import dcmread
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate, generate_frames
from pydicom.pixels import convert_color_space
from pydicom.sequence import Sequence
from pydicom.uid import (
    JPEG2000,
    ExplicitVRLittleEndian,
    JPEG2000Lossless,
    RLELossless,
    SecondaryCaptureImageStorage,
    generate_uid,
)

from yingyun.core.render import (
    DEFAULT_PRESET,
    PRESETS,
    RenderError,
    RenderOptions,
    describe,
    frame_count,
    render,
)

PNG = RenderOptions(fmt="png")


def data(name: str) -> str:
    # download=False: these are all bundled; a typo must fail, not hit the network
    return get_testdata_file(name, download=False)


def decode(blob: bytes) -> np.ndarray:
    img = Image.open(io.BytesIO(blob))
    img.load()
    return np.asarray(img)


def png(source: object, **kw: object) -> np.ndarray:
    return decode(render(source, RenderOptions(fmt="png", **kw)))


def make_dicom(
    pixels: np.ndarray,
    *,
    photometric: str = "MONOCHROME2",
    bits_stored: int | None = None,
    frames: int | None = None,
    planar: int = 0,
    raw: bytes | None = None,
    **attrs: object,
) -> bytes:
    """A minimal Explicit VR Little Endian image. `pixels` is (rows, cols),
    (rows, cols, 3) or with a leading frame axis when `frames` is given."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "OT"
    shape = pixels.shape[1:] if frames else pixels.shape
    ds.Rows, ds.Columns = int(shape[0]), int(shape[1])
    ds.SamplesPerPixel = 3 if len(shape) == 3 else 1
    ds.PhotometricInterpretation = photometric
    if ds.SamplesPerPixel == 3:
        ds.PlanarConfiguration = planar
    if frames:
        ds.NumberOfFrames = frames
    ds.BitsAllocated = pixels.dtype.itemsize * 8
    ds.BitsStored = bits_stored or ds.BitsAllocated
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = 1 if pixels.dtype.kind == "i" else 0
    for key, value in attrs.items():
        setattr(ds, key, value)
    if raw is None:
        arr = pixels
        if ds.SamplesPerPixel == 3 and planar == 1:
            arr = np.moveaxis(pixels, -1, -3)  # (..., 3, rows, cols)
        raw = np.ascontiguousarray(arr).astype(arr.dtype.newbyteorder("<")).tobytes()
    ds.PixelData = raw + (b"\0" if len(raw) % 2 else b"")
    bio = io.BytesIO()
    ds.save_as(bio, enforce_file_format=True)
    return bio.getvalue()


def ref_voi(x: np.ndarray, c: float, w: float, func: str = "LINEAR") -> np.ndarray:
    """PS3.3 C.11.2.1.2 written out literally onto 0..255, rounded half up.
    LINEAR and LINEAR_EXACT use exact fractions, so a value landing exactly
    on .5 is known to round up rather than by float luck."""
    if func == "SIGMOID":
        y = 255.0 / (1.0 + np.exp(-4.0 * (x.astype(np.float64) - c) / w))
        return np.floor(y + 0.5).astype(np.uint8)
    fc, fw, half = Fraction(c), Fraction(w), Fraction(1, 2)

    def one(v: int | float) -> int:
        fx = Fraction(v)
        if func == "LINEAR":
            if fx <= fc - half - (fw - 1) / 2:
                return 0
            if fx > fc - half + (fw - 1) / 2:
                return 255
            y = ((fx - (fc - half)) / (fw - 1) + half) * 255
        else:
            if fx <= fc - fw / 2:
                return 0
            if fx > fc + fw / 2:
                return 255
            y = ((fx - fc) / fw + half) * 255
        return math.floor(y + half)

    values, inverse = np.unique(x, return_inverse=True)
    mapped = np.array([one(v.item()) for v in values], dtype=np.uint8)
    return mapped[inverse].reshape(x.shape)


RAMP16 = np.arange(4096, dtype=np.uint16).reshape(64, 64)

# SC_rgb*.dcm (100x100) are ten horizontal bands of 10 rows each.
BANDS = [
    (255, 0, 0), (255, 128, 128), (0, 255, 0), (128, 255, 128), (0, 0, 255),
    (128, 128, 255), (0, 0, 0), (64, 64, 64), (192, 192, 192), (255, 255, 255),
]  # fmt: skip


def band_colours(img: np.ndarray) -> np.ndarray:
    # middle of each band, away from edges where JPEG chroma bleeds
    return np.array([img[b * 10 + 3 : b * 10 + 7, 30:70].reshape(-1, 3).mean(axis=0) for b in range(10)])


def rgb_bands() -> np.ndarray:
    img = np.zeros((100, 100, 3), dtype=np.uint8)
    for b, colour in enumerate(BANDS):
        img[b * 10 : b * 10 + 10] = colour
    return img


# ---------------------------------------------------------------------------
# Bundled files: every transfer syntax / photometric the corpus has


@pytest.mark.parametrize(
    ("name", "mode", "size"),
    [
        ("CT_small.dcm", "L", (128, 128)),  # 16-bit signed, rescale -1024
        ("MR_small.dcm", "L", (64, 64)),  # explicit LE, window from file
        ("MR_small_implicit.dcm", "L", (64, 64)),  # implicit VR LE
        ("MR_small_bigendian.dcm", "L", (64, 64)),  # explicit VR big endian
        ("MR_small_RLE.dcm", "L", (64, 64)),  # RLE lossless
        ("MR_small_jp2klossless.dcm", "L", (64, 64)),  # JPEG 2000 lossless
        ("MR_small_jpeg_ls_lossless.dcm", "L", (64, 64)),  # JPEG-LS lossless (via libjpeg)
        ("JPEGLSNearLossless_08.dcm", "L", (10, 45)),  # JPEG-LS near-lossless 8-bit
        ("JPEGLSNearLossless_16.dcm", "L", (10, 50)),  # JPEG-LS near-lossless 16-bit
        ("JPEG2000.dcm", "L", (256, 1024)),  # JPEG 2000 (lossy syntax) 16-bit signed
        ("693_J2KI.dcm", "L", (512, 512)),  # J2K lossy CT, BitsStored 14
        ("J2K_pixelrep_mismatch.dcm", "L", (512, 512)),  # J2K signedness != PixelRepresentation
        ("JPGExtended.dcm", "L", (256, 1024)),  # JPEG extended 12-bit (process 4)
        ("image_dfl.dcm", "L", (512, 512)),  # deflated explicit VR LE, 8-bit unsigned
        ("examples_overlay.dcm", "L", (484, 300)),  # BitsStored 12 of 16, two file windows
        ("liver_1frame.dcm", "L", (512, 512)),  # 1-bit segmentation
        ("rtdose.dcm", "L", (10, 10)),  # 32-bit unsigned multi-frame
        ("rtdose_rle.dcm", "L", (10, 10)),  # 32-bit RLE multi-frame
        ("SC_rgb_rle.dcm", "RGB", (100, 100)),  # RGB RLE
        ("SC_rgb_jpeg_gdcm.dcm", "RGB", (100, 100)),  # JPEG lossless SV1 (process 14)
        ("SC_rgb_jpeg_dcmtk.dcm", "RGB", (100, 100)),  # JPEG baseline YBR_FULL
        ("SC_rgb_dcmtk_+eb+cy+np.dcm", "RGB", (100, 100)),  # JPEG baseline YBR_FULL_422
        ("SC_ybr_full_422_uncompressed.dcm", "RGB", (100, 100)),  # native YBR_FULL_422
        ("SC_rgb_gdcm_KY.dcm", "RGB", (100, 100)),  # JPEG 2000 RGB
        ("SC_rgb_jls_lossy_line.dcm", "RGB", (100, 100)),  # JPEG-LS RGB
        ("GDCMJ2K_TextGBR.dcm", "RGB", (400, 400)),  # JPEG 2000 YBR_RCT
        ("examples_jpeg2k.dcm", "RGB", (640, 480)),  # JPEG 2000 lossless YBR_RCT (US)
        ("examples_ybr_color.dcm", "RGB", (320, 240)),  # 30-frame JPEG baseline YBR_FULL_422
        ("examples_rgb_color.dcm", "RGB", (320, 240)),  # native RGB (US)
        ("ExplVR_BigEnd.dcm", "RGB", (80, 60)),  # big endian RGB, planar configuration 1
        ("examples_palette.dcm", "RGB", (800, 350)),  # PALETTE COLOR
    ],
)
def test_bundled_files_render(name: str, mode: str, size: tuple[int, int]) -> None:
    blob = render(data(name))
    assert blob[:2] == b"\xff\xd8"
    img = Image.open(io.BytesIO(blob))
    img.load()
    assert img.format == "JPEG"
    assert img.mode == mode
    assert img.size == size
    assert np.asarray(img).std() > 10, "rendered image is blank"


@pytest.mark.parametrize(
    "name",
    [
        "MR_small_implicit.dcm",
        "MR_small_bigendian.dcm",
        "MR_small_expb.dcm",
        "MR_small_RLE.dcm",
        "MR_small_jp2klossless.dcm",
        "MR_small_jpeg_ls_lossless.dcm",
        "MR_small_padded.dcm",
    ],
)
def test_lossless_encodings_render_identically(name: str) -> None:
    assert np.array_equal(png(data(name)), png(data("MR_small.dcm")))


def test_mr_small_uses_file_window() -> None:
    ds = dcmread(data("MR_small.dcm"))
    expected = ref_voi(ds.pixel_array, float(ds.WindowCenter), float(ds.WindowWidth))
    assert np.array_equal(png(data("MR_small.dcm")), expected)


def test_ct_small_without_window_stretches_hu_range() -> None:
    ds = dcmread(data("CT_small.dcm"))
    hu = ds.pixel_array.astype(np.float64) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    lo, hi = hu.min(), hu.max()
    expected = np.floor((hu - lo) / (hi - lo) * 255 + 0.5).astype(np.uint8)
    got = png(data("CT_small.dcm"))
    assert got.min() == 0 and got.max() == 255
    assert np.abs(got.astype(int) - expected).max() <= 1


def test_rtdose_encodings_agree_frame_by_frame() -> None:
    for frame in (0, 7, 14):
        ref = png(data("rtdose.dcm"), frame=frame)
        assert np.array_equal(png(data("rtdose_rle.dcm"), frame=frame), ref)
        assert np.array_equal(png(data("rtdose_expb.dcm"), frame=frame), ref)


def _dcmtk(tool: str, *args: str | Path) -> None:
    import subprocess

    done = subprocess.run([f"/usr/bin/{tool}", *map(str, args)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_12_bit_jpeg_extended_renders_as_dcmtk_decodes_it(tmp_path: Path) -> None:
    # JPEG-lossy.dcm's scan header (start and stop of the spectral selection)
    # is irregular for a sequential JPEG: pylibjpeg's libjpeg and Pillow give
    # up, pydicom's GDCM plugin refuses 12 bits; dcmtk decodes it (with a
    # warning) and so must we. dcmtk's decompressed copy is the reference.
    native = tmp_path / "native.dcm"
    _dcmtk("dcmdjpeg", data("JPEG-lossy.dcm"), native)
    assert dcmread(data("JPEG-lossy.dcm")).file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.4.51"
    got = png(data("JPEG-lossy.dcm"))
    assert got.shape == (1024, 256) and got.std() > 10
    assert np.array_equal(got, png(native))


def test_12_bit_jpeg_extended_from_dcmtk_renders(tmp_path: Path) -> None:
    # A sample made by a real encoder: dcmcjpeg +ee (extended sequential,
    # 12 bits) of a 12-bit ramp, against dcmtk's own decoding of it.
    ramp = (np.add.outer(np.arange(64), np.arange(96)) * 21 % 4096).astype(np.uint16)
    source, lossy, back = tmp_path / "src.dcm", tmp_path / "lossy.dcm", tmp_path / "back.dcm"
    source.write_bytes(make_dicom(ramp, bits_stored=12))
    _dcmtk("dcmcjpeg", "+ee", source, lossy)
    assert dcmread(lossy).file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.4.51"
    _dcmtk("dcmdjpeg", lossy, back)
    # Two 12-bit IDCTs may round a sample differently: one grey level at most.
    assert np.abs(png(lossy).astype(int) - png(back).astype(int)).max() <= 1
    assert np.abs(png(lossy).astype(int) - png(source).astype(int)).max() <= 8  # lossy, but the same picture


@pytest.mark.filterwarnings("ignore:Expected explicit VR, but found implicit VR:UserWarning")
def test_implicit_vr_under_explicit_transfer_syntax() -> None:
    # SC_rgb_jpeg.dcm declares explicit VR but is written implicit; the
    # pixel data element header must be parsed as it really is.
    got = png(data("SC_rgb_jpeg.dcm"))
    assert np.array_equal(got, dcmread(data("SC_rgb_jpeg.dcm")).pixel_array)


# ---------------------------------------------------------------------------
# Colour


@pytest.mark.parametrize(
    ("name", "tolerance"),
    [
        ("SC_rgb_rle.dcm", 0),
        ("SC_rgb_rle_16bit.dcm", 0),  # top 8 of 16 bits
        ("SC_rgb_rle_32bit.dcm", 0),  # top 8 of 32 bits
        ("SC_rgb_jpeg_gdcm.dcm", 0),  # JPEG lossless
        ("SC_rgb_small_odd.dcm", None),  # 3x3, checked separately below
        ("SC_ybr_full_422_uncompressed.dcm", 3),  # YBR->RGB rounding only
        ("SC_rgb_gdcm_KY.dcm", 3),
        ("SC_rgb_jls_lossy_line.dcm", 3),
        ("SC_rgb_jls_lossy_sample.dcm", 3),
        ("SC_rgb_dcmtk_+eb+cr.dcm", 8),  # JPEG baseline, RGB component ids
        ("SC_rgb_jpeg_dcmtk.dcm", 8),  # JPEG baseline, YBR_FULL
        ("SC_rgb_dcmtk_+eb+cy+n1.dcm", 8),  # YBR_FULL
        ("SC_rgb_dcmtk_+eb+cy+np.dcm", 8),  # YBR_FULL_422
        ("SC_rgb_dcmtk_+eb+cy+s2.dcm", 8),  # YBR_FULL_422
        ("SC_rgb_jpeg_lossy_gdcm.dcm", 8),
    ],
)
def test_rgb_known_colour_bands(name: str, tolerance: int | None) -> None:
    got = png(data(name))
    if tolerance is None:
        assert np.array_equal(got, dcmread(data(name)).pixel_array)
        return
    assert got.shape == (100, 100, 3)
    # A second YBR->RGB conversion (or a missing one) moves these by far more
    # than JPEG error: e.g. pure red would come out near (0, 215, 0).
    assert np.abs(band_colours(got) - np.array(BANDS)).max() <= tolerance


@pytest.mark.parametrize("bits_stored", [16, 12])
def test_deep_rgb_keeps_most_significant_bits(bits_stored: int) -> None:
    # The bundled 16/32-bit files repeat each byte (0x8080...), which would
    # hide taking the low byte; here the low bits are zero.
    deep = rgb_bands().astype(np.uint16) << (bits_stored - 8)
    got = png(make_dicom(deep, photometric="RGB", bits_stored=bits_stored))
    assert np.array_equal(got, rgb_bands())


def test_two_frame_rgb_second_frame_is_inverse() -> None:
    first = png(data("SC_rgb_rle_2frame.dcm"), frame=0)
    second = png(data("SC_rgb_rle_2frame.dcm"), frame=1)
    assert np.array_equal(second, 255 - first)
    assert np.abs(band_colours(first) - np.array(BANDS)).max() == 0


def test_generated_ybr_full_native() -> None:
    ybr = convert_color_space(rgb_bands(), "RGB", "YBR_FULL")
    got = png(make_dicom(ybr, photometric="YBR_FULL"))
    assert np.abs(band_colours(got) - np.array(BANDS)).max() <= 2


@pytest.mark.parametrize("planar", [0, 1])
def test_generated_rgb_planar_configuration(planar: int) -> None:
    img = rgb_bands()
    img[:, :50] = img[:, :50] // 2  # left/right halves differ, so a planar mix-up shows
    got = png(make_dicom(img, photometric="RGB", planar=planar))
    assert np.array_equal(got, img)


@pytest.mark.parametrize(
    ("tsyntax", "photometric", "kwargs", "tolerance"),
    [(JPEG2000, "YBR_ICT", {"j2k_cr": [5]}, 4), (JPEG2000Lossless, "YBR_RCT", {}, 0)],
)
def test_generated_j2k_multicomponent_transform(tsyntax: str, photometric: str, kwargs: dict, tolerance: int) -> None:
    ds = dcmread(io.BytesIO(make_dicom(rgb_bands(), photometric="RGB")))
    ds.PhotometricInterpretation = photometric  # makes the encoder apply the MCT
    ds.compress(tsyntax, rgb_bands(), **kwargs)
    assert ds.PhotometricInterpretation == photometric
    bio = io.BytesIO()
    ds.save_as(bio)
    got = png(bio.getvalue())
    assert np.abs(band_colours(got) - np.array(BANDS)).max() <= tolerance


def test_palette_colour_exact() -> None:
    idx = np.arange(256, dtype=np.uint8).reshape(16, 16)
    entries = np.arange(256, dtype=np.uint16)
    red, green, blue = entries * 257, (255 - entries) * 257, np.full(256, 128 * 257, dtype=np.uint16)
    blob = make_dicom(
        idx,
        photometric="PALETTE COLOR",
        RedPaletteColorLookupTableDescriptor=[256, 0, 16],
        GreenPaletteColorLookupTableDescriptor=[256, 0, 16],
        BluePaletteColorLookupTableDescriptor=[256, 0, 16],
        RedPaletteColorLookupTableData=red.astype("<u2").tobytes(),
        GreenPaletteColorLookupTableData=green.astype("<u2").tobytes(),
        BluePaletteColorLookupTableData=blue.astype("<u2").tobytes(),
    )
    got = png(blob)
    assert got.shape == (16, 16, 3)
    assert np.array_equal(got[..., 0], idx)
    assert np.array_equal(got[..., 1], 255 - idx)
    assert (got[..., 2] == 128).all()


def test_bundled_palette_is_colour() -> None:
    got = png(data("examples_palette.dcm"))
    assert got.shape == (350, 800, 3)
    # a palette rendered as gray would have identical channels everywhere
    assert (got[..., 0] != got[..., 2]).mean() > 0.01


def test_window_is_ignored_for_colour() -> None:
    assert np.array_equal(png(data("SC_rgb_rle.dcm"), window=(10.0, 20.0)), png(data("SC_rgb_rle.dcm")))


# ---------------------------------------------------------------------------
# Grayscale pipeline, exact values on synthetic data


@pytest.mark.parametrize(("center", "width"), [(2048.0, 1024.0), (100.0, 3.0), (3000.5, 1500.0), (2000.0, 1.0)])
def test_explicit_linear_window_exact(center: float, width: float) -> None:
    got = png(make_dicom(RAMP16, bits_stored=12), window=(center, width))
    assert np.array_equal(got, ref_voi(RAMP16, center, width))


@pytest.mark.parametrize("func", ["LINEAR", "LINEAR_EXACT", "SIGMOID"])
def test_file_window_respects_voi_lut_function(func: str) -> None:
    blob = make_dicom(RAMP16, bits_stored=12, WindowCenter="2000", WindowWidth="1200", VOILUTFunction=func)
    got = png(blob)
    assert np.abs(got.astype(int) - ref_voi(RAMP16, 2000.0, 1200.0, func)).max() <= (1 if func == "SIGMOID" else 0)


def test_voi_function_option_for_explicit_window() -> None:
    got = png(make_dicom(RAMP16), window=(2000.0, 1200.0), voi_function="linear-exact")
    assert np.array_equal(got, ref_voi(RAMP16, 2000.0, 1200.0, "LINEAR_EXACT"))


def test_first_of_several_file_windows() -> None:
    blob = make_dicom(RAMP16, WindowCenter=["1000", "3000"], WindowWidth=["500", "800"])
    assert np.array_equal(png(blob), ref_voi(RAMP16, 1000.0, 500.0))


def test_signed_16_with_rescale() -> None:
    stored = (RAMP16.astype(np.int32) - 2048).astype(np.int16)
    blob = make_dicom(stored, RescaleSlope="2", RescaleIntercept="-1000", WindowCenter="-1000", WindowWidth="4000")
    expected = ref_voi(stored.astype(np.float64) * 2 - 1000, -1000.0, 4000.0)
    assert np.array_equal(png(blob), expected)


@pytest.mark.parametrize("dtype", [np.uint8, np.int8])
def test_8_bit(dtype: type) -> None:
    base = np.arange(256).reshape(16, 16)
    stored = (base if dtype is np.uint8 else base - 128).astype(dtype)
    got = png(make_dicom(stored), window=(0.0, 100.0))
    assert np.array_equal(got, ref_voi(stored, 0.0, 100.0))


def test_min_max_when_no_window() -> None:
    got = png(make_dicom(RAMP16, bits_stored=12))
    assert got[0, 0] == 0 and got[-1, -1] == 255
    assert np.array_equal(got, ref_voi(RAMP16, 2047.5, 4095.0, "LINEAR_EXACT"))


def test_min_max_ignores_pixel_padding() -> None:
    stored = RAMP16.copy()
    stored[:8] = 0  # padding outside the field of view
    stored[8:] = np.clip(stored[8:], 1000, 2000)
    got = png(make_dicom(stored, PixelPaddingValue=0))
    assert got[8:].min() == 0 and got[8:].max() == 255


@pytest.mark.parametrize("signed", [False, True])
def test_bits_stored_masks_high_bits(signed: bool) -> None:
    values = (np.arange(4096).reshape(64, 64) - (2048 if signed else 0)).astype(np.int16 if signed else np.uint16)
    clean = make_dicom(values, bits_stored=12, WindowCenter="0", WindowWidth="2000")
    # Old writers leave overlay bits or garbage above BitsStored.
    dirty_words = (values.astype(np.uint16) & 0x0FFF) | 0xA000
    dirty = make_dicom(values, bits_stored=12, raw=dirty_words.astype("<u2").tobytes(), WindowCenter="0",
                       WindowWidth="2000")
    assert np.array_equal(png(dirty), png(clean))
    assert np.array_equal(png(clean), ref_voi(values, 0.0, 2000.0))


def test_modality_lut_sequence() -> None:
    item = Dataset()
    item.LUTDescriptor = [4096, 0, 16]
    item.ModalityLUTType = "US"
    item.add_new(0x00283006, "US", [min(v * 4, 65535) for v in range(4096)])  # LUTData
    blob = make_dicom(RAMP16, bits_stored=12, ModalityLUTSequence=Sequence([item]))
    got = png(blob, window=(8000.0, 4000.0))
    assert np.array_equal(got, ref_voi(RAMP16.astype(np.float64) * 4, 8000.0, 4000.0))


def test_voi_lut_sequence() -> None:
    item = Dataset()
    item.LUTDescriptor = [1024, 1000, 16]
    # 12-bit output declared as 16-bit: stretched by its actual range
    item.add_new(0x00283006, "US", [v * 4 for v in range(1024)])  # LUTData
    got = png(make_dicom(RAMP16, bits_stored=12, VOILUTSequence=Sequence([item])))
    flat = RAMP16.ravel()
    out = got.ravel()
    assert (out[flat < 1000] == 0).all()
    assert (out[flat >= 2023] == 255).all()
    inside = (flat >= 1000) & (flat < 2023)
    expected = np.floor((flat[inside] - 1000) * 4 / 4092 * 255 + 0.5)
    assert np.abs(out[inside] - expected).max() <= 1


def test_monochrome1_is_inverse_of_monochrome2() -> None:
    ds = dcmread(data("CT_small.dcm"))
    ds.PhotometricInterpretation = "MONOCHROME1"
    bio = io.BytesIO()
    ds.save_as(bio)
    for opts in ({}, {"window": (40.0, 400.0)}, {"preset": "bone"}):
        m2 = png(data("CT_small.dcm"), **opts)
        m1 = png(bio.getvalue(), **opts)
        assert np.array_equal(m1, 255 - m2)
        assert m1.std() > 10


# ---------------------------------------------------------------------------
# Presets, options


def test_presets_change_output() -> None:
    outputs = {name: png(data("CT_small.dcm"), preset=name) for name in PRESETS["CT"]}
    assert len({o.tobytes() for o in outputs.values()}) == len(PRESETS["CT"])
    assert np.array_equal(outputs["lung"], png(data("CT_small.dcm"), window=PRESETS["CT"]["lung"]))
    assert not np.array_equal(outputs["bone"], png(data("CT_small.dcm")))


def test_default_preset_is_file_window() -> None:
    assert np.array_equal(png(data("MR_small.dcm"), preset=DEFAULT_PRESET), png(data("MR_small.dcm")))


def test_explicit_window_beats_preset_and_file() -> None:
    w = (300.0, 600.0)
    assert np.array_equal(png(data("MR_small.dcm"), window=w, preset=DEFAULT_PRESET),
                          png(data("MR_small.dcm"), window=w))
    assert not np.array_equal(png(data("MR_small.dcm"), window=w), png(data("MR_small.dcm")))


def test_unknown_preset_is_value_error() -> None:
    with pytest.raises(ValueError, match="unknown preset"):
        render(data("CT_small.dcm"), RenderOptions(preset="kidney-stone"))
    with pytest.raises(ValueError, match="unknown preset"):
        render(data("MR_small.dcm"), RenderOptions(preset="lung"))  # CT-only


@pytest.mark.parametrize(
    "kwargs",
    [{"frame": -1}, {"fmt": "gif"}, {"quality": 0}, {"quality": 101}, {"window": (40.0, 0.0)}, {"viewport": (0, 10)},
     {"voi_function": "CUBIC"}],
)
def test_invalid_options(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        RenderOptions(**kwargs)


def test_formats_and_quality() -> None:
    jpeg_lo = render(data("CT_small.dcm"), RenderOptions(quality=30))
    jpeg_hi = render(data("CT_small.dcm"), RenderOptions(fmt="JPG", quality=95))
    assert jpeg_lo[:2] == jpeg_hi[:2] == b"\xff\xd8"
    assert len(jpeg_lo) < len(jpeg_hi)
    blob = render(data("CT_small.dcm"), PNG)
    assert blob[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    ("name", "viewport", "expected"),
    [
        ("CT_small.dcm", (64, 64), (64, 64)),
        ("CT_small.dcm", (1000, 1000), (128, 128)),  # never scaled up
        ("CT_small.dcm", (100, 50), (50, 50)),
        ("JPEG2000.dcm", (200, 200), (50, 200)),  # 256 wide x 1024 tall
        ("examples_jpeg2k.dcm", (320, 480), (320, 240)),
    ],
)
def test_viewport(name: str, viewport: tuple[int, int], expected: tuple[int, int]) -> None:
    img = Image.open(io.BytesIO(render(data(name), RenderOptions(viewport=viewport))))
    assert img.size == expected


def test_viewport_downscale_keeps_content() -> None:
    small = decode(render(data("CT_small.dcm"), RenderOptions(fmt="png", viewport=(64, 64)))).astype(float)
    full = png(data("CT_small.dcm")).astype(float)
    halved = full.reshape(64, 2, 64, 2).mean(axis=(1, 3))
    assert np.abs(small - halved).mean() < 6


# ---------------------------------------------------------------------------
# Multi-frame


def test_multiframe_frames_differ_and_count() -> None:
    assert frame_count(data("examples_ybr_color.dcm")) == 30
    assert frame_count(data("rtdose.dcm")) == 15
    assert frame_count(data("CT_small.dcm")) == 1
    assert not np.array_equal(png(data("examples_ybr_color.dcm"), frame=0),
                              png(data("examples_ybr_color.dcm"), frame=29))
    assert not np.array_equal(png(data("rtdose.dcm"), frame=0), png(data("rtdose.dcm"), frame=14))


def test_frame_out_of_range() -> None:
    with pytest.raises(IndexError):
        render(data("rtdose.dcm"), RenderOptions(frame=15))
    with pytest.raises(IndexError):
        render(data("CT_small.dcm"), RenderOptions(frame=1))


def test_native_multiframe_picks_right_frame() -> None:
    frames = np.stack([RAMP16 // 4 + 1000 * k for k in range(4)]).astype(np.uint16)
    blob = make_dicom(frames, frames=4)
    for k in range(4):
        assert np.array_equal(png(blob, frame=k, window=(2000.0, 4000.0)), ref_voi(frames[k], 2000.0, 4000.0))


def test_enhanced_multiframe_functional_groups() -> None:
    # Enhanced CT/MR keep rescale and windows in functional groups, not at
    # the top level; the window may differ per frame.
    frames = np.stack([RAMP16 for _ in range(3)]).astype(np.uint16)
    windows = [(1000.0, 500.0), (2000.0, 800.0), (-500.0, 3000.0)]

    def item(**kw: object) -> Dataset:
        ds = Dataset()
        for k, v in kw.items():
            setattr(ds, k, v)
        return ds

    shared = item(
        PixelValueTransformationSequence=Sequence([item(RescaleSlope="1", RescaleIntercept="-1024", RescaleType="HU")]),
        PixelMeasuresSequence=Sequence([item(PixelSpacing=["0.5", "0.6"], SliceThickness="1.25")]),
    )
    per_frame = [
        item(FrameVOILUTSequence=Sequence([item(WindowCenter=str(c), WindowWidth=str(w))])) for c, w in windows
    ]
    blob = make_dicom(
        frames,
        frames=3,
        Modality="CT",
        SharedFunctionalGroupsSequence=Sequence([shared]),
        PerFrameFunctionalGroupsSequence=Sequence(per_frame),
    )
    for k, (c, w) in enumerate(windows):
        assert np.array_equal(png(blob, frame=k), ref_voi(frames[k].astype(np.float64) - 1024, c, w))
    info = describe(blob, frame=1)
    assert info["window"]["center"] == 2000 and info["rescale_intercept"] == -1024
    assert info["pixel_spacing"] == [0.5, 0.6] and info["slice_thickness"] == 1.25


def _rle_multiframe(corrupt: int | None) -> tuple[bytes, np.ndarray]:
    frames = np.stack([np.roll(RAMP16, 700 * k) for k in range(3)]).astype(np.uint16)
    ds = dcmread(io.BytesIO(make_dicom(frames, frames=3)))
    ds.compress(RLELossless, frames, encoding_plugin="pydicom")
    encoded = list(generate_frames(ds.PixelData, number_of_frames=3))
    if corrupt is not None:
        encoded[corrupt] = b"\xff" * len(encoded[corrupt])
    ds.PixelData = encapsulate(encoded, has_bot=True)
    bio = io.BytesIO()
    ds.save_as(bio)
    return bio.getvalue(), frames


def test_compressed_multiframe_decodes_only_requested_frame() -> None:
    # Frame 1 is destroyed: if frames 0 and 2 still render, no other frame
    # was decoded to get them.
    blob, frames = _rle_multiframe(corrupt=1)
    for k in (0, 2):
        assert np.array_equal(png(blob, frame=k, window=(2048.0, 4096.0)), ref_voi(frames[k], 2048.0, 4096.0))
    with pytest.raises(RenderError, match="cannot decode RLE"):
        render(blob, RenderOptions(frame=1))


# ---------------------------------------------------------------------------
# Sources and errors


class _Stream(io.RawIOBase):
    """A non-seekable stream, like an HTTP body."""

    def __init__(self, payload: bytes) -> None:
        self._buf = io.BytesIO(payload)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def readinto(self, b: bytearray) -> int:  # type: ignore[override]
        chunk = self._buf.read(len(b))
        b[: len(chunk)] = chunk
        return len(chunk)


def test_source_types() -> None:
    path = data("MR_small_RLE.dcm")
    payload = Path(path).read_bytes()
    ref = render(path, PNG)
    for source in (Path(path), payload, bytearray(payload), memoryview(payload), io.BytesIO(payload), _Stream(payload)):
        assert render(source, PNG) == ref
    with open(path, "rb") as f:
        assert render(f, PNG) == ref


def test_missing_file_is_not_a_render_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        render(tmp_path / "nope.dcm")


@pytest.mark.parametrize(
    ("source", "match"),
    [
        (lambda: data("rtplan.dcm"), "no pixel data"),
        (lambda: data("test-SR.dcm"), "no pixel data"),
        (lambda: data("MR_truncated.dcm"), "cannot decode"),
        (lambda: b"", "not a DICOM file"),
        (lambda: os.urandom(4096), "not a DICOM file"),
        (lambda: b"\0" * 128 + b"DICM" + os.urandom(2000), None),
    ],
)
def test_render_errors(source: Callable[[], object], match: str | None) -> None:
    with pytest.raises(RenderError, match=match):
        render(source())


def test_error_message_has_no_patient_data() -> None:
    blob = make_dicom(RAMP16, PatientName="SENTINEL^PATIENT", PatientID="SENTINEL-ID-123")
    ds = dcmread(io.BytesIO(blob))
    del ds.PixelData
    bio = io.BytesIO()
    ds.save_as(bio)
    with pytest.raises(RenderError) as info:
        render(bio.getvalue())
    assert "SENTINEL" not in str(info.value)

    ds = dcmread(io.BytesIO(blob))
    ds.BitsAllocated = 24  # not a valid pixel layout
    bio = io.BytesIO()
    ds.save_as(bio)
    with pytest.raises(RenderError) as info:
        render(bio.getvalue())
    assert "SENTINEL" not in str(info.value)


def test_unsupported_transfer_syntax() -> None:
    ds = dcmread(io.BytesIO(make_dicom(RAMP16)))
    ds.file_meta.TransferSyntaxUID = "1.2.826.0.1.3680043.2.999.1"
    bio = io.BytesIO()
    ds.save_as(bio, implicit_vr=False, little_endian=True)
    with pytest.raises(RenderError, match="unsupported transfer syntax"):
        render(bio.getvalue())


def test_describe() -> None:
    info = describe(data("CT_small.dcm"))
    assert info["rows"] == 128 and info["columns"] == 128 and info["frames"] == 1
    assert info["modality"] == "CT" and info["photometric"] == "MONOCHROME2"
    assert info["rescale_intercept"] == -1024
    assert info["presets"][0] == DEFAULT_PRESET and "lung" in info["presets"]
    assert info["pixel_spacing"] == pytest.approx([0.661468, 0.661468])
    assert info["slice_thickness"] == 5
    assert info["instance_number"] == 1

    info = describe(data("examples_overlay.dcm"))
    assert info["window"] == {"center": 450, "width": 790, "function": "LINEAR"}
    assert [w["explanation"] for w in info["windows"]] == ["WINDOW1", "WINDOW2"]
    assert info["series_description"] == "marked lesion<MPR Collection>"
    assert info["presets"] == [DEFAULT_PRESET]

    info = describe(data("examples_ybr_color.dcm"))
    assert info["frames"] == 30 and info["lossy"] is True and info["samples_per_pixel"] == 3


def test_describe_leaks_no_identifiers() -> None:
    blob = make_dicom(RAMP16, PatientName="SENTINEL^PATIENT", PatientID="SENTINEL-ID", InstitutionName="SENTINEL HOSP",
                      SeriesDescription="T2 ax")
    info = describe(blob)
    assert "SENTINEL" not in repr(info)
    assert info["series_description"] == "T2 ax"
    with pytest.raises(RenderError):
        describe(b"garbage")


def test_cold_render_512_ct_is_fast(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    stored = rng.integers(0, 2000, (512, 512), dtype=np.uint16)
    path = tmp_path / "ct.dcm"
    path.write_bytes(
        make_dicom(stored, bits_stored=12, Modality="CT", RescaleIntercept="-1024", RescaleSlope="1", WindowCenter="40",
                   WindowWidth="400")
    )
    opts = RenderOptions(quality=90)
    render(path, opts)
    times = []
    for _ in range(15):
        t0 = time.perf_counter()
        render(path, opts)
        times.append(time.perf_counter() - t0)
    assert statistics.median(times) < 0.050
