"""`yingyun import`: DICOM files from folders, zip files or a DICOMDIR.

Every file goes through InstanceStore, the same durable, de-duplicating path
as C-STORE, so importing an archive twice stores it once. Every file found
gets one outcome, named with its path: stored, duplicate, replaced, skipped
(not something the archive stores: not DICOM, a DICOMDIR, a non-patient
object) or failed (a DICOM file that could not be stored, with the reason).
Nothing is silently dropped.

Where files are found: the paths given, folders walked in name order, zip
files wherever they are (given, or inside a walked folder; a file is a zip
when it starts with a zip signature and is not a DICOM Part-10 file), and
the files a DICOMDIR references. A zip inside a zip is not opened but named
as skipped: nesting is how zip bombs multiply, and CD and PACS exports do not
nest them. A path that does not exist stops the import before anything is
read (``missing_paths``): a mistyped argument is noticed at once, not after
an hour of importing the others.
"""

from __future__ import annotations

import contextlib
import functools
import io
import os
import shutil
import sys
import time
import zipfile
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, TextIO

from pydicom.uid import UID

from ..core.dicom import InvalidInstance
from ..storage.spool import spool_file
from .instances import InstanceStore
from .part10 import IN_MEMORY_BYTES, read_part10

MEDIA_STORAGE_DIRECTORY = "1.2.840.10008.1.3.10"
# Objects of the Non-Patient Object Storage service class (PS3.4 GG) and the
# like: stored by a PACS for its own use, with no patient or study to file
# them under.
NON_PATIENT_OBJECTS = frozenset(
    {
        "1.2.840.10008.5.1.4.38.1",  # Hanging Protocol Storage
        "1.2.840.10008.5.1.4.39.1",  # Color Palette Storage
        "1.2.840.10008.5.1.4.43.1",  # Generic Implant Template Storage
        "1.2.840.10008.5.1.4.44.1",  # Implant Assembly Template Storage
        "1.2.840.10008.5.1.4.45.1",  # Implant Template Group Storage
        "1.2.840.10008.5.1.4.1.1.200.1",  # CT Defined Procedure Protocol Storage
        "1.2.840.10008.5.1.4.1.1.200.3",  # Protocol Approval Storage
        "1.2.840.10008.5.1.4.1.1.200.7",  # XA Defined Procedure Protocol Storage
        "1.2.840.10008.5.1.4.1.1.201.1",  # Inventory Storage
    }
)
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
DICOMDIR_REASON = "DICOMDIR: its referenced files were imported"


@dataclass
class Outcome:
    """What happened to one file."""

    path: str
    outcome: str  # stored | duplicate | replaced | skipped | failed
    reason: str = ""
    sop_instance_uid: str = ""
    size: int = 0

    def as_json(self) -> dict[str, str]:
        out = {"path": self.path, "outcome": self.outcome}
        if self.reason:
            out["reason"] = self.reason
        if self.sop_instance_uid:
            out["sopInstanceUid"] = self.sop_instance_uid
        return out


@dataclass
class _Source:
    label: str
    size: int
    open: Callable[[], BinaryIO] | None  # None: named and skipped for `reason`
    reason: str = ""


def _opener(path: Path) -> Callable[[], BinaryIO]:
    return lambda: open(path, "rb")


def missing_paths(paths: list[str]) -> list[str]:
    return [p for p in paths if not os.path.lexists(p)]


def _is_zip(head: bytes) -> bool:
    return head[:4] in _ZIP_MAGIC and head[128:132] != b"DICM"


def _head(path: Path) -> bytes:
    with open(path, "rb") as f:
        return f.read(132)


def _dicomdir_files(path: Path) -> list[Path]:
    """Files a DICOMDIR references (its records name them relative to its folder)."""
    from pydicom import dcmread

    ds = dcmread(path, force=True)
    out = []
    for record in ds.get("DirectoryRecordSequence", []):
        ref = record.get("ReferencedFileID")
        if ref:
            parts = [ref] if isinstance(ref, str) else list(ref)
            out.append(path.parent.joinpath(*parts))
    return out


def _zip_members(path: Path, label: str, stack: contextlib.ExitStack, spool_dir: Path | None) -> Iterator[_Source]:
    try:
        zf = stack.enter_context(zipfile.ZipFile(path))
    except (zipfile.BadZipFile, OSError):
        # a zip signature, but not a zip: try it as DICOM
        yield _Source(label, path.stat().st_size, _opener(path))
        return
    for info in zf.infolist():
        if info.is_dir():
            continue
        member = f"{label}!{info.filename}"
        with zf.open(info) as f:
            head = f.read(132)
        if _is_zip(head):
            yield _Source(member, info.file_size, None, "zip inside a zip: not opened (unpack it first)")
        else:
            yield _Source(member, info.file_size, functools.partial(_unzipped, zf, info, spool_dir))


def _unzipped(zf: zipfile.ZipFile, info: zipfile.ZipInfo, spool_dir: Path | None) -> BinaryIO:
    """A zip member as a seekable file: a small one in memory, a large one inflated
    once into an unnamed temporary file (a zip member seeks by inflating again)."""
    if info.file_size <= IN_MEMORY_BYTES:
        return io.BytesIO(zf.read(info))
    spool = spool_file(spool_dir)
    with zf.open(info) as member:
        shutil.copyfileobj(member, spool, 2**20)
    spool.seek(0)
    return spool


def _file(path: Path, stack: contextlib.ExitStack, spool_dir: Path | None) -> Iterator[_Source]:
    try:
        head = _head(path)
    except OSError as e:
        yield _Source(str(path), 0, None, e.strerror or type(e).__name__)
        return
    if _is_zip(head):
        yield from _zip_members(path, str(path), stack, spool_dir)
    else:
        yield _Source(str(path), path.stat().st_size, _opener(path))


def _sources(paths: list[str], stack: contextlib.ExitStack, spool_dir: Path | None = None) -> Iterator[_Source]:
    """Every candidate file, in the order given (folders in name order)."""
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            for root, dirs, files in os.walk(p):
                dirs.sort()
                for name in sorted(files):
                    yield from _file(Path(root) / name, stack, spool_dir)
        elif p.is_file() and p.name.upper() == "DICOMDIR":
            yield _Source(str(p), p.stat().st_size, None, DICOMDIR_REASON)
            for ref in _dicomdir_files(p):
                if ref.is_file():
                    yield from _file(ref, stack, spool_dir)
                else:
                    yield _Source(str(ref), 0, None, "referenced by the DICOMDIR, but not on the disc")
        elif p.is_file():
            yield from _file(p, stack, spool_dir)
        else:
            yield _Source(str(p), 0, None, "not found")


def _not_stored(f: BinaryIO, exc: InvalidInstance) -> str | None:
    """The skip reason for a DICOM file that is not a stored object (a
    DICOMDIR, a non-patient object), else None: read_file_info refuses those
    for a missing UID, which would call them broken."""
    if not exc.reason.startswith("missing "):
        return None
    from pydicom import dcmread

    try:
        f.seek(0)
        ds = dcmread(f, stop_before_pixels=True, force=True)
    except Exception:
        return None
    sop_class = str(ds.get("SOPClassUID") or getattr(ds, "file_meta", {}).get("MediaStorageSOPClassUID") or "")
    if sop_class == MEDIA_STORAGE_DIRECTORY:
        return DICOMDIR_REASON
    if sop_class in NON_PATIENT_OBJECTS:
        return f"not a stored object: {UID(sop_class).name} (a non-patient object)"
    return None


class Progress:
    """A progress bar on a terminal; nothing at all anywhere else (a log
    file or a pipe gets the summary only)."""

    def __init__(self, total_files: int, total_bytes: int, out: TextIO) -> None:
        self.total_files, self.total_bytes, self.out = total_files, total_bytes, out
        self.files = self.bytes = 0
        self.start = time.monotonic()
        self._last = 0.0
        self.tty = hasattr(out, "isatty") and out.isatty()

    def step(self, size: int) -> None:
        self.files += 1
        self.bytes += size
        self.show()

    def show(self, *, force: bool = False) -> None:
        if not self.tty:
            return
        now = time.monotonic()
        if not force and now - self._last < 0.2:
            return
        self._last = now
        elapsed = max(now - self.start, 1e-6)
        rate = self.bytes / elapsed / 1e6
        frac = self.bytes / self.total_bytes if self.total_bytes else 1.0
        eta = (elapsed / frac - elapsed) if frac > 0 else 0
        width = 30
        bar = "#" * int(width * frac) + "-" * (width - int(width * frac))
        line = (f"[{bar}] {self.files}/{self.total_files} files  "
                f"{self.bytes / 1e6:.1f}/{self.total_bytes / 1e6:.1f} MB  "
                f"{rate:.1f} MB/s  {self.files / elapsed:.0f} files/s  ETA {eta:.0f}s")
        print("\r" + line, end="", file=self.out, flush=True)

    def done(self) -> None:
        if self.tty:
            print(file=self.out)


def _one(store: InstanceStore, hospital_id: str, src: _Source) -> Outcome:
    if src.open is None:
        return Outcome(src.label, "failed" if src.reason == "not found" else "skipped", src.reason, size=src.size)
    try:
        with src.open() as f:
            return _stored(store, hospital_id, src, f)
    except OSError as e:
        return Outcome(src.label, "failed", e.strerror or type(e).__name__, size=src.size)


def _stored(store: InstanceStore, hospital_id: str, src: _Source, f: BinaryIO) -> Outcome:
    """One file through the Part-10 entry (archive/part10.py): read as a stream, never whole."""
    try:
        file = read_part10(f, max_inflated=store.max_inflated, size=src.size)
    except InvalidInstance as e:
        not_stored = _not_stored(f, e)
        if not_stored is not None:
            return Outcome(src.label, "skipped", not_stored, size=src.size)
        if e.reason == "not a DICOM file":
            return Outcome(src.label, "skipped", e.reason, size=src.size)
        return Outcome(src.label, "failed", e.reason, size=src.size)
    info = file.info
    if info.sop_class_uid == MEDIA_STORAGE_DIRECTORY:
        return Outcome(src.label, "skipped", DICOMDIR_REASON, size=src.size)
    result = file.store(store, hospital_id=hospital_id)
    if result.status != 0:
        return Outcome(src.label, "failed", f"0x{result.status:04X} {result.reason}", info.sop_instance_uid, src.size)
    return Outcome(src.label, result.outcome, "", info.sop_instance_uid, src.size)


def run_import(store: InstanceStore, *, spool_dir: Path, hospital_id: str, paths: list[str],
               out: TextIO = sys.stderr) -> dict[str, Any]:
    """Import every file under ``paths`` (which must exist: see
    missing_paths) through ``store`` (the process's, which its owner closes),
    zip members too large for memory waiting in ``spool_dir``; ``out`` gets a
    progress bar when it is a terminal."""
    stack = contextlib.ExitStack()
    outcomes: list[Outcome] = []
    try:
        sources = list(_sources(paths, stack, spool_dir))
        progress = Progress(len(sources), sum(s.size for s in sources), out)
        try:
            for src in sources:
                outcomes.append(_one(store, hospital_id, src))
                progress.step(src.size)
            progress.show(force=True)
        finally:
            progress.done()
    finally:
        stack.close()
    counts = Counter(o.outcome for o in outcomes)
    return {
        "files": len(outcomes),
        "stored": counts["stored"],
        "duplicates": counts["duplicate"],
        "replaced": counts["replaced"],
        "skipped": dict(Counter(o.reason for o in outcomes if o.outcome == "skipped")),
        "failed": [{"file": o.path, "reason": o.reason} for o in outcomes if o.outcome == "failed"],
        "megabytes": round(progress.bytes / 1e6, 2),
        "seconds": round(time.monotonic() - progress.start, 2),
        "outcomes": [o.as_json() for o in outcomes],
    }


def summary_text(summary: dict[str, Any]) -> str:
    """The summary for a person: counts, then every file not stored, named."""
    lines = [f"{summary['files']} file(s), {summary['megabytes']} MB in {summary['seconds']} s: "
             f"{summary['stored']} stored, {summary['duplicates']} duplicate(s), {summary['replaced']} replaced, "
             f"{sum(summary['skipped'].values())} skipped, {len(summary['failed'])} failed"]
    for kind in ("skipped", "failed"):
        named = [o for o in summary["outcomes"] if o["outcome"] == kind]
        if named:
            lines.append(f"{kind}:")
            lines += [f"  {o['path']}: {o['reason']}" for o in named]
    return "\n".join(lines)
