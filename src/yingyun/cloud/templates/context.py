"""What the templates API's handlers need, filled by the composition root (serve.py) and put on the app."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from ...storage.db import Database


@dataclass
class TemplatesContext:
    db: Database
    clock: Callable[[], float] = time.time
