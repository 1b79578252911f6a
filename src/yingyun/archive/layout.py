"""Where a DICOM instance's bytes live in the blob store: its key.

``h/{hospital}/{sha1(study_uid)[:2]}/{study}/{series}/{sop}.dcm`` and
``{sop}.v{version}.dcm`` for a superseded copy, where each of study, series
and sop is its UID turned into one key segment, so that no UID ever becomes
a path by itself. A PS3.5 UID (digits and dots, ``core.dicom.is_valid_uid``)
is its own segment, as in every key written before; any other storable UID
(``core.dicom.is_storable_uid``: 64-character hex hashes, leading zeros...)
is escaped as ``u-`` followed by its letters, digits and '-' as they are and
every other character as '_' and two hex digits ('.' included). Distinct
UIDs give distinct segments: a PS3.5 UID starts with a digit, an escaped one
with 'u'. Readers use the key stored with each instance, never this
function. The hash level keeps a hospital's top folder at <= 256 entries
however many studies arrive. The version carries a 'v', which a PS3.5 UID
never contains ("1.2.3" version "4" as "1.2.3.4.dcm" would collide with the
current copy of SOP UID "1.2.3.4"), and an escaped segment contains no '.',
so a superseded copy's name never equals a current one's. No key is a
folder of another (storage/blobs.py: a local store could not hold both).
"""

from __future__ import annotations

import hashlib
import re

from ..core.dicom import is_storable_uid, is_valid_uid
from ..storage.blobs import InvalidKey

_HOSPITAL_RE = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,63}")
# At most 20: an escaped UID is up to 2 + 64 * 3 characters, and a name must fit in 255.
_VERSION_RE = re.compile(r"[A-Za-z0-9_-]{1,20}")


def _uid_segment(uid: str) -> str:
    """One key segment for a storable UID (layout in the module doc)."""
    if is_valid_uid(uid):
        return uid
    return "u-" + "".join(c if c.isalnum() or c == "-" else f"_{ord(c):02x}" for c in uid)


def instance_key(
    hospital_id: str,
    study_uid: str,
    series_uid: str,
    sop_instance_uid: str,
    version: str | int | None = None,
) -> str:
    """The blob key of a DICOM instance (layout in the module doc).

    The hospital id must be 1-64 key characters not starting with '.'; UIDs
    must be storable (core.dicom.is_storable_uid); a version is 1-20
    characters of ``[A-Za-z0-9_-]``. Anything else raises InvalidKey.
    """
    if not isinstance(hospital_id, str) or _HOSPITAL_RE.fullmatch(hospital_id) is None:
        raise InvalidKey("invalid hospital id for a blob key")
    for uid in (study_uid, series_uid, sop_instance_uid):
        if not is_storable_uid(uid):
            raise InvalidKey("invalid UID for a blob key")
    fan = hashlib.sha1(study_uid.encode("ascii")).hexdigest()[:2]
    name = _uid_segment(sop_instance_uid)
    if version is not None:
        version = str(version)
        if _VERSION_RE.fullmatch(version) is None:
            raise InvalidKey("invalid version for a blob key")
        name = f"{name}.v{version}"
    return f"h/{hospital_id}/{fan}/{_uid_segment(study_uid)}/{_uid_segment(series_uid)}/{name}.dcm"
