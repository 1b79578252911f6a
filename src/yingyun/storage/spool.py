"""Temporary files of instances on their way in (an HTTP part, a large zip member).

Unnamed (O_TMPFILE on Linux) and owner-only: nothing is left behind by a
crash, and no other local user can read the patient data in them. The
folder is made when first needed, so a fresh data dir works.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import BinaryIO


def spool_file(spool_dir: Path | None) -> BinaryIO:
    """A new temporary file in `spool_dir` (the system's temporary folder when None)."""
    if spool_dir is not None:
        os.makedirs(spool_dir, mode=0o700, exist_ok=True)
    return tempfile.TemporaryFile(dir=spool_dir)
