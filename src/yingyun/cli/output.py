"""What the commands print: rows as a table or JSON, times in a zone, and refusals."""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Sequence
from typing import Any, NoReturn

import typer

from ..core.times import Zone

Row = dict[str, Any]


def fail(message: str, code: int = 1) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def echo_json(value: object) -> None:
    typer.echo(json.dumps(value, ensure_ascii=False, indent=2))


def emit(rows: Sequence[Row], as_json: bool, columns: list[str]) -> None:
    """Rows as JSON, or as a table whose columns line up on a terminal (CJK characters are two columns wide)."""
    if as_json:
        echo_json(rows)
        return
    if not rows:
        typer.echo("(none)")
        return
    table = [columns] + [[_cell(r.get(c)) for c in columns] for r in rows]
    widths = [max(display_width(line[i]) for line in table) for i in range(len(columns))]
    for line in table:
        cells = (text + " " * (width - display_width(text)) for text, width in zip(line, widths, strict=True))
        typer.echo("  ".join(cells).rstrip())


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return ",".join(map(str, value))
    return str(value)


def display_width(text: str) -> int:
    """Terminal columns of a text: wide and full-width characters take two, combining marks none."""
    return sum(0 if unicodedata.combining(ch) else 2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def shown(rows: list[Row], zone: Zone, *fields: str) -> list[Row]:
    """The rows with their Unix-seconds `fields` shown in `zone` (ISO 8601 with the offset)."""
    return [dict(r, **{f: zone.show_optional(r[f]) for f in fields if f in r}) for r in rows]


def joined(counts: dict[str, Any]) -> str:
    """`{"series": 1, "images": 2}` as one table cell: `series=1 images=2`."""
    return " ".join(f"{k}={v}" for k, v in counts.items())
