"""Body parts and exam kinds in Chinese, for people: DICOM's codes and hospitals' English shorthand.

A hospital may send Body Part Examined as DICOM's defined term (PS3.16
Annex L: CHEST, LSPINE, …), as its own English ("Chest", "L-Spine"), or
already in Chinese. Chinese text is shown as the hospital wrote it; a code
or English word we know is shown in Chinese; anything else as it came
(never hidden: it is the hospital's record).
"""

from __future__ import annotations

import re

BODY_PARTS: dict[str, str] = {
    "ABDOMEN": "腹部", "ABDOMENPELVIS": "腹盆腔", "ANKLE": "踝关节", "AORTA": "主动脉", "ARM": "上臂",
    "BRAIN": "颅脑", "BREAST": "乳腺", "BRONCHUS": "支气管", "CALCANEUS": "跟骨", "CAROTID": "颈动脉",
    "CHEST": "胸部", "CHESTABDOMEN": "胸腹部", "CHESTABDPELVIS": "胸腹盆腔", "CLAVICLE": "锁骨", "COCCYX": "尾骨",
    "COLON": "结肠", "CSPINE": "颈椎", "CTSPINE": "颈胸椎", "ELBOW": "肘关节", "EXTREMITY": "四肢", "EYE": "眼部",
    "FACE": "面部", "FEMUR": "股骨", "FINGER": "手指", "FOOT": "足部", "FOREARM": "前臂", "GALLBLADDER": "胆囊",
    "HAND": "手部", "HEAD": "头部", "HEADNECK": "头颈部", "HEART": "心脏", "HIP": "髋关节", "HUMERUS": "肱骨",
    "JAW": "颌骨", "KIDNEY": "肾脏", "KNEE": "膝关节", "LEG": "小腿", "LIVER": "肝脏", "LSPINE": "腰椎",
    "LSSPINE": "腰骶椎", "LUNG": "肺部", "MANDIBLE": "下颌骨", "NECK": "颈部", "ORBIT": "眼眶", "PANCREAS": "胰腺",
    "PELVIS": "盆腔", "PROSTATE": "前列腺", "RIB": "肋骨", "SACRUM": "骶骨", "SCAPULA": "肩胛骨",
    "SHOULDER": "肩关节", "SINUS": "鼻窦", "SKULL": "颅骨", "SPINE": "脊柱", "SPLEEN": "脾脏", "SSPINE": "骶椎",
    "STOMACH": "胃", "TEMPORALBONE": "颞骨", "THIGH": "大腿", "THYROID": "甲状腺", "TIBIA": "胫骨", "TOE": "足趾",
    "TSPINE": "胸椎", "TLSPINE": "胸腰椎", "UTERUS": "子宫", "WHOLEBODY": "全身", "WRIST": "腕关节",
    # English a hospital's RIS writes for the same parts
    "CERVICALSPINE": "颈椎", "THORACICSPINE": "胸椎", "LUMBARSPINE": "腰椎", "THORAX": "胸部", "CRANIUM": "颅脑",
}

MODALITIES: dict[str, str] = {
    "CT": "CT", "MR": "磁共振", "DX": "X线摄影", "CR": "X线摄影", "DR": "X线摄影", "RF": "X线透视",
    "XA": "血管造影", "MG": "乳腺X线", "US": "超声", "NM": "核医学", "PT": "PET", "ES": "内镜", "OT": "其他",
}

# ", / + & and" between parts: "CHEST/ABDOMEN", "Chest + Abdomen"
SEPARATORS = re.compile(r"\s*(?:[/,，、+&]|\band\b)\s*", re.IGNORECASE)


def has_chinese(text: str) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" for ch in text)


def _key(word: str) -> str:
    return re.sub(r"[^A-Z]", "", word.upper())


def body_part_zh(text: str | None) -> str:
    """The body part in Chinese: the hospital's Chinese as is, known codes and words mapped, the rest unchanged."""
    text = (text or "").strip()
    if not text or has_chinese(text):
        return text
    whole = BODY_PARTS.get(_key(text))
    if whole:
        return whole
    parts = [p for p in SEPARATORS.split(text) if p]
    mapped = [BODY_PARTS.get(_key(p)) for p in parts]
    if len(parts) > 1 and all(mapped):
        return "、".join(m for m in mapped if m)
    return text


def modality_zh(code: str | None) -> str:
    """The modality's Chinese name ("磁共振" for MR), or the code itself when unknown."""
    code = (code or "").strip().upper()
    return MODALITIES.get(code, code)


def exam_name_zh(description: str | None, *, modality: str | None, body_part: str | None) -> str:
    """The exam's name in Chinese: the hospital's own Chinese name, else one made of the part and the modality
    ("胸部CT"), keeping the hospital's English after it so nothing it wrote is lost."""
    desc = (description or "").strip()
    if has_chinese(desc):
        return desc
    part = body_part_zh(body_part)
    kind = modality_zh(modality)
    made = f"{part}{kind}" if part and has_chinese(part) and kind else ""
    if made and desc:
        return f"{made}（{desc}）"
    return made or desc
