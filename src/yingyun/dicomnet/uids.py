"""The UIDs of the upper layer: who we are, what we offer, which encodings we take.

One implementation identity for the product, on the wire (A-ASSOCIATE-AC
user information) and in the file meta of every stored file
(``core/dicom.build_file_meta``), as pynetdicom keeps one
``PYNETDICOM_IMPLEMENTATION_UID``. Transfer syntaxes are pydicom's ``UID``
constants; the few that pydicom 3.0 does not name are spelled here once.
"""

from __future__ import annotations

from pydicom import uid as u
from pydicom.uid import UID

__all__ = [
    "APPLICATION_CONTEXT",
    "IMPLEMENTATION_CLASS_UID",
    "IMPLEMENTATION_VERSION_NAME",
    "MODALITY_WORKLIST_FIND",
    "OTHER_STORAGE_CLASSES",
    "PATIENT_ROOT_FIND",
    "STORAGE_COMMITMENT_INSTANCE",
    "STORAGE_COMMITMENT_PUSH",
    "STORAGE_PREFIX",
    "STORAGE_SYNTAXES",
    "STUDY_ROOT_FIND",
    "UNCOMPRESSED",
    "VERIFICATION",
]

# Constant for every Yingyun build: a UUID-derived UID (PS3.5 B.2) needs no
# registered root. The version name changes with the on-disk format.
IMPLEMENTATION_CLASS_UID = "2.25.5826844465612139881965182256860673233"
IMPLEMENTATION_VERSION_NAME = "YINGYUN_010"

APPLICATION_CONTEXT = "1.2.840.10008.3.1.1.1"
VERIFICATION = "1.2.840.10008.1.1"
STUDY_ROOT_FIND = "1.2.840.10008.5.1.4.1.2.2.1"
PATIENT_ROOT_FIND = "1.2.840.10008.5.1.4.1.2.1.1"
MODALITY_WORKLIST_FIND = "1.2.840.10008.5.1.4.31"  # Modality Worklist Information Model - FIND
STORAGE_COMMITMENT_PUSH = "1.2.840.10008.1.20.1"  # Storage Commitment Push Model SOP Class
STORAGE_COMMITMENT_INSTANCE = "1.2.840.10008.1.20.1.1"  # its well-known SOP Instance
# Storage SOP classes: anything under this root (PS3.4 Annex B), and the two that were
# registered elsewhere (the RT delivery instructions): every one pynetdicom knows, without
# importing pynetdicom (a tenth of a second in every process that reads a DICOM file).
STORAGE_PREFIX = "1.2.840.10008.5.1.4.1.1."
OTHER_STORAGE_CLASSES = frozenset(
    {str(u.RTBeamsDeliveryInstructionStorage), str(u.RTBrachyApplicationSetupDeliveryInstructionStorage)})

# (is_implicit_vr, is_little_endian) of the syntaxes we decode and encode ourselves.
# Plain str keys, like every UID here: a peer's UIDs are compared as strings.
UNCOMPRESSED: dict[str, tuple[bool, bool]] = {
    str(u.ImplicitVRLittleEndian): (True, True),
    str(u.ExplicitVRLittleEndian): (False, True),
    str(u.ExplicitVRBigEndian): (False, False),
}

# Storage never transcodes, so any syntax whose dataset encoding is standard
# explicit/implicit VR is safe to accept; JPIP-referenced and SMPTE 2110 stream
# syntaxes are left out because their pixel data lives outside the dataset.
STORAGE_SYNTAXES: frozenset[str] = frozenset(str(ts) for ts in [
    *UNCOMPRESSED, u.DeflatedExplicitVRLittleEndian,
    UID("1.2.840.10008.1.2.1.98"),  # Encapsulated Uncompressed Explicit VR LE (not named by pydicom 3.0)
    u.JPEGBaseline8Bit, u.JPEGExtended12Bit, u.JPEGLossless, u.JPEGLosslessSV1,
    u.JPEGLSLossless, u.JPEGLSNearLossless,
    u.JPEG2000Lossless, u.JPEG2000, u.JPEG2000MCLossless, u.JPEG2000MC,
    u.HTJ2KLossless, u.HTJ2KLosslessRPCL, u.HTJ2K,
    # JPEG XL lossless, JPEG recompression, JPEG XL (not named by pydicom 3.0)
    UID("1.2.840.10008.1.2.4.110"), UID("1.2.840.10008.1.2.4.111"), UID("1.2.840.10008.1.2.4.112"),
    u.MPEG2MPML, u.MPEG2MPMLF, u.MPEG2MPHL, u.MPEG2MPHLF,
    u.MPEG4HP41, u.MPEG4HP41F, u.MPEG4HP41BD, u.MPEG4HP41BDF, u.MPEG4HP422D, u.MPEG4HP422DF,
    u.MPEG4HP423D, u.MPEG4HP423DF, u.MPEG4HP42STEREO, u.MPEG4HP42STEREOF,
    u.HEVCMP51, u.HEVCM10P51,
    u.RLELossless,
])
