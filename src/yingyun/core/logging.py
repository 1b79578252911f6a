"""Structured logs with a request or association id, never patient identifiers.

Log call sites pass ids (hospital, study id, UIDs, AE titles) only; names,
phone and ID numbers never reach a log line. The access log redacts link
tokens from paths, since a token is a key to a patient's page.

A value a caller chose (a studyId, a reportNumber, a path, a partner's
answer) goes into a line through `quoted()`, so that no caller can end the
line early and forge the next one; the handler escapes control characters
in every message as well, for the lines that carry no caller value by
design and turn out to.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
import time

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
# The DICOM association a line is about (set by the association's thread for its lifetime).
association_id: contextvars.ContextVar[str] = contextvars.ContextVar("association_id", default="-")

_TOKEN_PATH = re.compile(r"(/h5/(?:s|share|p|d)/)[A-Za-z0-9_-]{8,}")
_QUERY_VALUE = re.compile(r"=[^&]*")


def redact_path(path: str) -> str:
    return _TOKEN_PATH.sub(r"\1…", path)


def redact_query(query: str) -> str:
    """A query string with every value cut out: a QIDO search carries a patient's name or id there, a link
    a token; the keys say what was asked."""
    return _QUERY_VALUE.sub("=…", query)


# Control characters (C0, DEL, C1: line breaks, ANSI escapes), the Unicode
# line and paragraph separators and the bidirectional overrides (which make
# a terminal show text in another order than it was written).
_CONTROLS = "\x00-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069"
_UNSAFE_IN_QUOTES = re.compile(f'[{_CONTROLS}"\\\\]')
_UNSAFE = re.compile(f"[{_CONTROLS}]")
_SHORT = {"\n": "\\n", "\r": "\\r", "\t": "\\t", '"': '\\"', "\\": "\\\\"}


def _escape_one(m: re.Match[str]) -> str:
    c = m.group()
    short = _SHORT.get(c)
    if short is not None:
        return short
    return f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}"


def quoted(value: object) -> str:
    """A caller-supplied value for a log line: in double quotes, with quotes,
    backslashes and control characters escaped (so it stays one token of one line)."""
    text = value if isinstance(value, str) else str(value)
    if _UNSAFE_IN_QUOTES.search(text) is None:
        return f'"{text}"'
    return '"' + _UNSAFE_IN_QUOTES.sub(_escape_one, text) + '"'


def one_line(text: str) -> str:
    """`text` with its control characters escaped (no quoting)."""
    if _UNSAFE.search(text) is None:
        return text
    return _UNSAFE.sub(_escape_one, text)


class _OneLineFormatter(logging.Formatter):
    """Every message on one line: a traceback (formatted after the message) keeps its lines."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = one_line(record.message)
        return super().formatMessage(record)


class _JsonFormatter(logging.Formatter):
    """One JSON object a line (`--log-format json`), for a log collector: the ids as their own keys."""

    def format(self, record: logging.LogRecord) -> str:
        line = {"time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
                + f".{int(record.msecs):03d}Z",
                "level": record.levelname, "logger": record.name, "message": record.getMessage()}
        for key in ("request_id", "association_id"):
            value = getattr(record, key, "-")
            if value != "-":
                line[key] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)  # (json escapes every control character)


class _ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get()
        record.association_id = association_id.get()
        return True


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"


def configure(level: str = "INFO", fmt: str = "text") -> None:
    """Logging of a server process (`--log-level`, `--log-format text|json`), set up once."""
    root = logging.getLogger()
    if any(getattr(h, "_yingyun", False) for h in root.handlers):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler._yingyun = True  # type: ignore[attr-defined]  # our mark: configure() adds one handler, once
    handler.addFilter(_ContextFilter())
    handler.setFormatter(_JsonFormatter() if fmt == "json" else _OneLineFormatter(TEXT_FORMAT))
    root.addHandler(handler)
    root.setLevel(level)
    logging.getLogger("uvicorn.access").disabled = True
    logging.getLogger("alembic").setLevel(logging.WARNING)
