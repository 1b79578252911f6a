"""The blob key of a DICOM instance (archive/layout.py): its layout, the UIDs it
escapes, and that no two instances ever share a key."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

from yingyun.archive.layout import instance_key
from yingyun.storage.blobs import InvalidKey, LocalBlobStore, validate_key

STUDY = "1.2.826.0.1.3680043.8.498.10"
SERIES = "1.2.826.0.1.3680043.8.498.10.1"
SOP = "1.2.826.0.1.3680043.8.498.10.1.1"


def test_instance_key_layout() -> None:
    fan = hashlib.sha1(STUDY.encode()).hexdigest()[:2]
    assert instance_key("h1", STUDY, SERIES, SOP) == f"h/h1/{fan}/{STUDY}/{SERIES}/{SOP}.dcm"
    assert instance_key("h1", STUDY, SERIES, SOP, "2") == f"h/h1/{fan}/{STUDY}/{SERIES}/{SOP}.v2.dcm"
    assert instance_key("h1", STUDY, SERIES, SOP, 3) == f"h/h1/{fan}/{STUDY}/{SERIES}/{SOP}.v3.dcm"
    assert re.fullmatch(r"[0-9a-f]{2}", fan)
    validate_key(instance_key("hosp.01", STUDY, SERIES, SOP, "20240101T120000"))


def test_instance_key_versions_never_collide_with_uids() -> None:
    assert instance_key("h1", STUDY, SERIES, "1.2.3", 4) != instance_key("h1", STUDY, SERIES, "1.2.3.4")


HEX = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
# Storable, not PS3.5 (core.dicom.is_storable_uid): each would be a hazard or a collision as a raw segment.
ODD_UIDS = [HEX, HEX.upper(), "1.02.3", "01.2", "1.2.3.", ".", ".1", "1.2.3 x", "a.v2", "a", "a_2e", "u-a", "~tmp",
            "1.2.v3", "-", "_", "%2e%2e", "1.2.3.v4", "1.2.3_2ev4", "x" * 64, "." + "!" * 63]


def test_instance_key_keeps_ps35_uids_and_escapes_every_other_uid() -> None:
    fan = hashlib.sha1(HEX.encode()).hexdigest()[:2]
    assert instance_key("h1", HEX, "1.02", "1.2.3.") == f"h/h1/{fan}/u-{HEX}/u-1_2e02/u-1_2e2_2e3_2e.dcm"
    for uid in ODD_UIDS:
        key = instance_key("h1", uid, uid, uid)
        validate_key(key)
        assert uid not in key.split("/") and uid + ".dcm" not in key.split("/"), key
        assert all(seg.startswith("u-") for seg in key.split("/")[3:]), key


def test_instance_key_never_gives_two_instances_one_key() -> None:
    uids = ODD_UIDS + [SOP, "1.2.3", "1.2.3.4", "1.2", "2"]
    keys = [instance_key("h1", STUDY, SERIES, uid, version) for uid in uids for version in (None, 2, 4, "v2")]
    assert len(set(keys)) == len(keys)
    segments = {instance_key("h1", uid, SERIES, SOP).split("/")[3] for uid in uids}
    assert len(segments) == len(set(uids))


def test_instance_keys_of_odd_uids_work_in_a_local_store(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "blobs", fsync=False)
    for i, uid in enumerate(ODD_UIDS):
        store.put(instance_key("h1", uid, uid, uid), f"{i}".encode())
        store.put(instance_key("h1", uid, uid, uid, 2), f"{i}v".encode())
    for i, uid in enumerate(ODD_UIDS):
        with store.open(instance_key("h1", uid, uid, uid)) as f:
            assert f.read() == f"{i}".encode()
    assert all(p.resolve().is_relative_to((tmp_path / "blobs").resolve()) for p in (tmp_path / "blobs").rglob("*"))


def test_instance_key_fans_out() -> None:
    fans = {instance_key("h1", f"1.2.3.{i}", "1.2", "1.2.3").split("/")[2] for i in range(2000)}
    assert len(fans) == 256


@pytest.mark.parametrize(
    "args",
    [
        ("", STUDY, SERIES, SOP),
        ("..", STUDY, SERIES, SOP),
        (".hidden", STUDY, SERIES, SOP),
        ("h/1", STUDY, SERIES, SOP),
        ("h" * 65, STUDY, SERIES, SOP),
        ("医院", STUDY, SERIES, SOP),
        ("h1", "../../etc", SERIES, SOP),
        ("h1", STUDY, "1.2/3", SOP),
        ("h1", STUDY, SERIES, "1..2"),
        ("h1", STUDY, "..", SOP),
        ("h1", STUDY, SERIES, "1.2\\3"),
        ("h1", STUDY, SERIES, "1.2\x00"),
        ("h1", STUDY, SERIES, "\u4e00"),
        ("h1", STUDY, SERIES, ""),
        ("h1", STUDY, SERIES, "1." + "2" * 63),
        ("h1", STUDY, SERIES, SOP, "1" * 21),
        ("h1", STUDY, SERIES, SOP, "1.2"),
        ("h1", STUDY, SERIES, SOP, ""),
        ("h1", STUDY, SERIES, SOP, "../x"),
    ],
)
def test_instance_key_refuses(args: tuple[object, ...]) -> None:
    with pytest.raises(InvalidKey):
        instance_key(*args)  # type: ignore[arg-type]
