"""GDCM as the last pixel decoder, and the one for 12-bit JPEG Extended.

pydicom tries a transfer syntax's decoding plugins in order. JPEG Extended
(Process 2 and 4, 1.2.840.10008.1.2.4.51) at 12 bits is where that order
runs out: pylibjpeg's libjpeg refuses streams whose scan header it finds
irregular ("scan start must be zero and scan stop must be 63", which some
encoders write and which dcmtk and Orthanc decode with a warning), Pillow
has no 12-bit JPEG, and pydicom 3.0.2's own GDCM plugin refuses every
12-bit JPEG Extended stream up front, a guard from GDCM builds without a
12-bit codec. python-gdcm's wheels have one.

``install()`` (run once, when core/render.py is imported) therefore:

* moves pydicom's GDCM plugin behind the others for every syntax it
  decodes, so whatever pylibjpeg and Pillow decode today is decoded by them
  as before, and GDCM only gets what they give up on;
* for JPEG Extended, puts last instead ``decode_jpeg_extended``: GDCM
  without the guard.

libjpeg inside GDCM prints its warnings to the process's stderr (one or two
lines per 12-bit frame, about the bitstream, never about the patient);
Python cannot silence them per call.
"""

from __future__ import annotations

import threading
from typing import cast

import gdcm
from pydicom import uid
from pydicom.pixels.decoders.base import DecodeRunner, get_decoder

__all__ = ["DECODER_DEPENDENCIES", "decode_jpeg_extended", "install", "is_available"]

# A pydicom decoding plugin module needs these two (pydicom.pixels.common).
DECODER_DEPENDENCIES = {uid.JPEGExtended12Bit: ("python-gdcm",)}


def is_available(transfer_syntax: str) -> bool:
    return transfer_syntax in DECODER_DEPENDENCIES


def decode_jpeg_extended(src: bytes, runner: DecodeRunner) -> bytes:
    """One JPEG Extended frame (8 or 12 bits) decoded by GDCM."""
    fragment = gdcm.Fragment()
    fragment.SetByteStringValue(src)
    fragments = gdcm.SequenceOfFragments.New()
    fragments.AddFragment(fragment)
    pixel_data = gdcm.DataElement(gdcm.Tag(0x7FE0, 0x0010))
    pixel_data.SetValue(fragments.__ref__())
    image = gdcm.Image()
    image.SetNumberOfDimensions(2)
    image.SetDimensions((runner.columns, runner.rows, 1))
    image.SetDataElement(pixel_data)
    pi = gdcm.PhotometricInterpretation.GetPIType(str(runner.photometric_interpretation))
    image.SetPhotometricInterpretation(gdcm.PhotometricInterpretation(pi))
    if runner.samples_per_pixel > 1:
        image.SetPlanarConfiguration(runner.planar_configuration)
    image.SetTransferSyntax(gdcm.TransferSyntax(gdcm.TransferSyntax.GetTSType(str(uid.JPEGExtended12Bit))))
    bits = runner.bits_stored
    image.SetPixelFormat(gdcm.PixelFormat(runner.samples_per_pixel, runner.bits_allocated, bits, bits - 1,
                                          runner.pixel_representation))
    # GDCM hands back char* as str; surrogateescape gives the bytes back.
    frame = image.GetBuffer().encode("utf-8", "surrogateescape")
    if not frame:
        raise ValueError("GDCM could not decode the JPEG Extended frame")
    return cast(bytes, frame)


_installed = False
_lock = threading.Lock()


def install() -> None:
    """Reorder pydicom's decoding plugins as the module doc says (idempotent)."""
    global _installed
    with _lock:
        if _installed:
            return
        for syntax in uid.AllTransferSyntaxes:
            try:
                decoder = get_decoder(syntax)
            except NotImplementedError:
                continue
            if "gdcm" not in decoder.available_plugins:
                continue
            decoder.remove_plugin("gdcm")
            if syntax == uid.JPEGExtended12Bit:
                decoder.add_plugin("gdcm", (__name__, "decode_jpeg_extended"))
            else:
                decoder.add_plugin("gdcm", ("pydicom.pixels.decoders.gdcm", "_decode_frame"))
        _installed = True
