"""`yingyun import`: DICOM files from folders, zip files or a DICOMDIR.

Every file goes through InstanceStore, the same durable, de-duplicating path
as C-STORE, so importing an archive twice stores it once. Files that are not
DICOM are skipped and counted by reason; nothing is silently dropped.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
import zipfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from ..core.dicom import InvalidInstance, read_file_info
from ..runtime import Runtime
from ..storage.blobs import LocalBlobStore
from .instances import InstanceStore

MEDIA_STORAGE_DIRECTORY = "1.2.840.10008.1.3.10"


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


def _sources(paths: list[str], stack: contextlib.ExitStack) -> Iterator[tuple[str, int, callable]]:
    """(label, size, read) for every candidate file."""
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            for root, _dirs, files in os.walk(p):
                for name in sorted(files):
                    fp = Path(root) / name
                    yield str(fp), fp.stat().st_size, fp.read_bytes
        elif p.is_file() and zipfile.is_zipfile(p):
            zf = stack.enter_context(zipfile.ZipFile(p))
            for info in zf.infolist():
                if not info.is_dir():
                    yield f"{p}!{info.filename}", info.file_size, (lambda zf=zf, n=info.filename: zf.read(n))
        elif p.is_file() and p.name.upper() == "DICOMDIR":
            for ref in _dicomdir_files(p):
                if ref.is_file():
                    yield str(ref), ref.stat().st_size, ref.read_bytes
                else:
                    yield str(ref), 0, None
        elif p.is_file():
            yield str(p), p.stat().st_size, p.read_bytes
        else:
            yield str(p), 0, None


class Progress:
    def __init__(self, total_files: int, total_bytes: int, out) -> None:
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
        now = time.monotonic()
        if not force and now - self._last < (0.2 if self.tty else 5.0):
            return
        self._last = now
        elapsed = max(now - self.start, 1e-6)
        rate = self.bytes / elapsed / 1e6
        frac = self.bytes / self.total_bytes if self.total_bytes else 1.0
        eta = (elapsed / frac - elapsed) if frac > 0 else 0
        width = 30
        bar = "#" * int(width * frac) + "-" * (width - int(width * frac))
        line = (f"[{bar}] {self.files}/{self.total_files} files  {self.bytes / 1e6:.1f}/{self.total_bytes / 1e6:.1f} MB  "
                f"{rate:.1f} MB/s  {self.files / elapsed:.0f} files/s  ETA {eta:.0f}s")
        print(("\r" if self.tty else "") + line, end="" if self.tty else "\n", file=self.out, flush=True)

    def done(self) -> None:
        if self.tty:
            print(file=self.out)


def run_import(runtime: Runtime, *, hospital_id: str, paths: list[str], out=sys.stderr) -> dict:
    store = InstanceStore(runtime.db, LocalBlobStore(runtime.settings.blob_dir), min_free_bytes=runtime.settings.min_free_bytes)
    stack = contextlib.ExitStack()
    sources = list(_sources(paths, stack))
    progress = Progress(len(sources), sum(s for _, s, _ in sources), out)
    outcomes: Counter = Counter()
    skipped: Counter = Counter()
    failed: list[dict] = []
    try:
        for label, size, read in sources:
            if read is None:
                skipped["file not found"] += 1
                progress.step(size)
                continue
            try:
                data = read()
            except OSError as e:
                failed.append({"file": label, "reason": e.strerror or type(e).__name__})
                progress.step(size)
                continue
            try:
                info = read_file_info(data)
            except InvalidInstance as e:
                skipped[f"not DICOM ({e.reason})"] += 1
                progress.step(size)
                continue
            if info.sop_class_uid == MEDIA_STORAGE_DIRECTORY:
                skipped["DICOMDIR (its references are followed)"] += 1
                progress.step(size)
                continue
            result = store.store(hospital_id=hospital_id, data=memoryview(data)[info.dataset_offset:],
                                 transfer_syntax_uid=info.transfer_syntax_uid, source_ae=None)
            if result.status == 0:
                outcomes[result.outcome] += 1
            else:
                failed.append({"file": label, "status": f"0x{result.status:04X}", "reason": result.reason})
            progress.step(size)
        progress.show(force=True)
    finally:
        progress.done()
        store.close()
        stack.close()
    return {
        "files": len(sources),
        "stored": outcomes["stored"],
        "duplicates": outcomes["duplicate"],
        "replaced": outcomes["replaced"],
        "skipped": dict(skipped),
        "failed": failed,
        "megabytes": round(progress.bytes / 1e6, 2),
        "seconds": round(time.monotonic() - progress.start, 2),
    }
