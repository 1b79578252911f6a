"""The console's browser assets: pinned in package.json + package-lock.json, installed by make, served by Yingyun."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ...support.makefile import make_checkout, would_run

ROOT = Path(__file__).resolve().parents[3]


def test_echarts_is_pinned_exactly_in_both_files() -> None:
    package = json.loads((ROOT / "package.json").read_text(encoding="utf-8"))
    lock = json.loads((ROOT / "package-lock.json").read_text(encoding="utf-8"))
    pinned = package["dependencies"]["echarts"]
    assert pinned[0].isdigit() and all(part.isdigit() for part in pinned.split("."))  # no ^, ~ or range
    assert lock["packages"]["node_modules/echarts"]["version"] == pinned
    assert all(entry.get("integrity", "").startswith("sha512-") for name, entry in lock["packages"].items() if name)


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    return make_checkout(tmp_path)


@pytest.mark.parametrize("target", ["serve", "test", "install", "assets"])
def test_make_installs_the_locked_assets(checkout: Path, target: str) -> None:
    assert "npm ci --ignore-scripts --no-audit --no-fund" in would_run(checkout, target)
    # Once installed (the hidden lockfile newer than both files) nothing is installed again.
    stamp = checkout / "node_modules" / ".package-lock.json"
    stamp.parent.mkdir()
    stamp.touch()
    assert not any(line.startswith("npm ") for line in would_run(checkout, target))
