"""DICOM JSON model (PS3.18 F.2) for index values, without building Datasets.

QIDO-RS answers are made from index rows; encoding them straight into the
JSON model is several times faster than going through pydicom Datasets and
gives the same output as `Dataset.to_json_dict` for these value types.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from pydicom.datadict import dictionary_VR, keyword_for_tag, tag_for_keyword

_NUMBER_VRS = {"IS", "US", "UL", "SS", "SL", "UV", "SV", "FL", "FD"}


@lru_cache(maxsize=4096)
def tag_of(keyword: str) -> tuple[str, str]:
    """(8 hex digits, VR) of a dictionary keyword; KeyError when unknown."""
    tag = tag_for_keyword(keyword)
    if tag is None:
        raise KeyError(keyword)
    return f"{tag:08X}", dictionary_VR(tag)


@lru_cache(maxsize=4096)
def keyword_of(attribute: str) -> str | None:
    """The keyword for a QIDO attribute id: a keyword or 8 hex digits; None if unknown."""
    text = attribute.strip()
    if len(text) == 8 and all(c in "0123456789abcdefABCDEF" for c in text):
        kw = keyword_for_tag(int(text, 16))
        return kw or None
    return text if tag_for_keyword(text) is not None else None


def person_name(raw: str) -> dict[str, str]:
    groups = raw.split("\\", 1)[0].split("=")
    out = {}
    for name, value in zip(("Alphabetic", "Ideographic", "Phonetic"), groups, strict=False):  # 1 to 3 groups
        if value:
            out[name] = value
    return out


def element(keyword: str, value: Any) -> tuple[str, dict[str, Any]]:
    """(tag, JSON element) for a keyword and an index value (None or "" -> no Value)."""
    tag, vr = tag_of(keyword)
    if value is None or value == "" or value == []:
        return tag, {"vr": vr}
    values = value if isinstance(value, list) else [value]
    if vr == "PN":
        encoded = [person_name(str(v)) for v in values]
        return tag, {"vr": vr, "Value": [e for e in encoded if e] or [{}]}
    if vr in _NUMBER_VRS:
        try:
            nums = [int(v) if vr != "FL" and vr != "FD" else float(v) for v in values]
        except (TypeError, ValueError):
            return tag, {"vr": vr}
        return tag, {"vr": vr, "Value": nums}
    return tag, {"vr": vr, "Value": [str(v) for v in values]}

