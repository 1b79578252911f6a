"""`make serve` installs what the server needs; `make test` adds the test tools (issue 12 item 18).

Read from what make would run (`make -n`) in a copy of the Makefile, with the
install stamps placed as each sequence of commands leaves them.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from .support.makefile import make_checkout, would_run



@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    return make_checkout(tmp_path)


def installs(lines: list[str]) -> list[str]:
    return [line.split("install -q ")[-1] for line in lines if "pip install" in line and "--upgrade pip" not in line]


def age(checkout: Path, *stamps: str) -> None:
    """pyproject.toml older than the stamps named (the install done after it changed)."""
    past = time.time() - 100
    os.utime(checkout / "pyproject.toml", (past, past))
    for name in stamps:
        (checkout / ".venv" / name).touch()


def test_serve_installs_the_runtime_only(checkout):
    assert installs(would_run(checkout, "serve")) == ["-e ."]
    assert installs(would_run(checkout, "test")) == ["-e '.[test]'"]
    assert installs(would_run(checkout, "install")) == ["-e '.[test]'"]


def test_switching_between_serve_and_test(checkout):
    # after `make serve`: the test tools are still to come, the server's packages are there
    age(checkout, ".installed-runtime")
    assert installs(would_run(checkout, "serve")) == []
    assert installs(would_run(checkout, "test")) == ["-e '.[test]'"]
    # after `make test` (which covers the server's packages too): nothing to install for either
    age(checkout, ".installed-runtime", ".installed-test")
    assert installs(would_run(checkout, "serve")) == []
    assert installs(would_run(checkout, "test")) == []
    # pyproject.toml changes: each target installs again what it needs
    os.utime(checkout / "pyproject.toml", (time.time() + 10, time.time() + 10))
    assert installs(would_run(checkout, "serve")) == ["-e ."]
    assert installs(would_run(checkout, "test")) == ["-e '.[test]'"]


def test_make_test_lints_before_the_tests(checkout):
    age(checkout, ".installed-runtime", ".installed-test")
    lines = would_run(checkout, "test")
    steps = [i for i, line in enumerate(lines) if "ruff check" in line or line.endswith("/mypy") or "pytest" in line]
    assert [lines[i].split("/")[-1].split()[0] for i in steps] == ["ruff", "mypy", "python"], lines
    assert "src tests bench" in lines[steps[0]]
    assert any(line.endswith("/mypy") for line in would_run(checkout, "types"))
