"""The error-code table of docs/api.md and the Code enum agree, both ways."""

import re
from pathlib import Path

from yingyun.contract.codes import Code

DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"


def documented_codes() -> dict[int, str]:
    text = DOC.read_text(encoding="utf-8")
    table = text.split("## Error codes", 1)[1]
    rows = re.findall(r"^\| (\d+) \| ([^|]+) \|", table, flags=re.M)
    return {int(code): zh.strip() for code, zh in rows}


def test_every_code_is_documented_with_its_message():
    doc = documented_codes()
    for code in Code:
        assert int(code) in doc, f"code {int(code)} missing from docs/api.md"
        assert doc[int(code)] == code.zh


def test_every_documented_code_exists():
    known = {int(c) for c in Code}
    assert set(documented_codes()) <= known
    assert len(documented_codes()) == len(known)


def test_codes_are_unique():
    assert len({int(c) for c in Code}) == len(list(Code))
