"""The data dir is owner-only: 0700 folders and 0600 files, whatever the umask.

It holds patient data throughout: the SQLite database and its -wal/-shm
(names, patient ids, reports, diagnoses, and the blob journal's copies of
received DICOM files with the phone and ID numbers inside them), the blobs,
the render cache, the spool, the key file. Every command that writes first
narrows its umask (`owner_only_umask`), so nothing it or a library creates
is readable by other users; the stores that create files also pass 0600 and
0700 themselves. A server's start makes the data dir 0700 (`prepare`) and
takes group and other permissions off what is already there: the top level
at every start, and once the whole tree (a data dir from before this rule
has 0644 files in 0755 folders), remembered by a marker file.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

DIR_MODE = 0o700
FILE_MODE = 0o600
UMASK = 0o077
# Present once every file under the data dir has been made owner-only.
MARKER = ".owner-only"


def owner_only_umask() -> None:
    """For the whole process (and the processes it starts)."""
    os.umask(UMASK)


def prepare(data_dir: Path, *, also: tuple[Path, ...] = ()) -> None:
    """Make the data dir (0700) if missing, and owner-only what is in it.

    `also`: folders outside the data dir that hold patient data too (a local
    blob store elsewhere); their root is made 0700."""
    data_dir.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    for root in (data_dir, *also):
        if root.is_dir():
            _restrict(root)
    marker = data_dir / MARKER
    if marker.exists():
        with os.scandir(data_dir) as entries:
            for entry in entries:
                _restrict(Path(entry.path))
        return
    for folder, dirs, files in os.walk(data_dir):
        for name in (*dirs, *files):
            _restrict(Path(folder) / name)
    os.close(os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, FILE_MODE))


def _restrict(path: Path) -> None:
    try:
        st = path.lstat()
    except FileNotFoundError:
        return  # removed meanwhile (a temp file)
    if stat.S_ISLNK(st.st_mode) or not st.st_mode & 0o077:
        return
    os.chmod(path, stat.S_IMODE(st.st_mode) & ~0o077)
