"""A copy of the Makefile and the files its rules depend on, for reading what `make -n TARGET` would run."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Every prerequisite the Makefile names that is a file of the checkout (a missing one stops `make -n`).
INPUTS = ("Makefile", "pyproject.toml", "package.json", "package-lock.json", "scripts/install-prebuilt.mjs")


def make_checkout(into: Path) -> Path:
    for name in INPUTS:
        (into / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, into / name)
    (into / ".venv" / "bin").mkdir(parents=True)
    return into


def would_run(checkout: Path, target: str) -> list[str]:
    # --no-print-directory: under `make test` this make is a sub-make, which would otherwise print "Entering
    # directory" lines naming the (pytest-…) folder.
    return subprocess.run(["make", "--no-print-directory", "-n", target], cwd=checkout, capture_output=True,
                          text=True, check=True).stdout.splitlines()
