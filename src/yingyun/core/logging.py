"""Structured logs with a request or association id, never patient identifiers.

Log call sites pass ids (hospital, study id, UIDs, AE titles) only; names,
phone and ID numbers never reach a log line. The access log redacts link
tokens from paths, since a token is a key to a patient's page.
"""

from __future__ import annotations

import contextvars
import logging
import re
import sys

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")

_TOKEN_PATH = re.compile(r"(/h5/(?:s|share|p|d)/)[A-Za-z0-9_-]{8,}")


def redact_path(path: str) -> str:
    return _TOKEN_PATH.sub(r"\1…", path)


class _ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get()
        return True


def configure(level: str = "INFO") -> None:
    root = logging.getLogger()
    if any(getattr(h, "_yingyun", False) for h in root.handlers):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler._yingyun = True  # type: ignore[attr-defined]
    handler.addFilter(_ContextFilter())
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"))
    root.addHandler(handler)
    root.setLevel(level)
    logging.getLogger("uvicorn.access").disabled = True
    logging.getLogger("alembic").setLevel(logging.WARNING)
