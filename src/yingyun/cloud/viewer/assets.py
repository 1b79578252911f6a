"""OHIF's published build, adapted to being served under /reading/viewer/.

The build is made for the root of a site: `window.PUBLIC_URL="/"` in its
index.html, webpack's public path `"/"` compiled into the bundles that load
chunks and workers, and `url(/…)` for its font. We rewrite those few
strings in memory when a file is first asked for (each rewritten file is
kept; the rest are sent from disk as they are), and serve our own small
index.html: the build's one has an inline script we would have to allow,
startup images for phones and a service-worker loader that names a CDN.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path

from ..console.assets import CHECKOUT, ENV_ASSETS_DIR

DIST = Path("@ohif") / "app" / "dist"
# webpack's runtime in every bundle that loads chunks (the app and its workers).
PUBLIC_PATH = b'__webpack_require__.p = "/";'
HASHED = re.compile(r"^(?:[\w-]+\.bundle\.[0-9a-f]{16}\.js|[0-9a-f]{16}\.(?:wasm|woff2))$")


def find_build() -> OhifBuild | None:
    """The installed build (YINGYUN_ASSETS_DIR, else the checkout's node_modules/), or None."""
    named = os.environ.get(ENV_ASSETS_DIR)
    for folder in ([Path(named)] if named else []) + [CHECKOUT / "node_modules", Path.cwd() / "node_modules"]:
        if (folder / DIST / "index.html").is_file():
            return OhifBuild((folder / DIST).resolve())
    return None


@dataclass
class OhifBuild:
    dist: Path
    prefix: str = "/reading/viewer"
    _rewritten: dict[str, bytes | None] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        original = (self.dist / "index.html").read_text("utf-8")
        bundle = re.search(r'src="/(app\.bundle\.[0-9a-f]+\.js)"', original)
        if bundle is None:
            raise ValueError(f"{self.dist}/index.html names no app bundle: not an OHIF v3 build")
        self.app_bundle = bundle.group(1)
        base = self.prefix + "/"
        # OHIF's loader calls browserImportFunction for its extensions; the one inline script, allowed by hash.
        self.inline_script = f'function browserImportFunction(n){{return import(n)}}window.PUBLIC_URL="{base}"'
        self.script_hash = "sha256-" + base64.b64encode(hashlib.sha256(self.inline_script.encode()).digest()).decode()
        self.index_html = (
            '<!doctype html><html lang="en"><head><meta charset="UTF-8">'
            '<meta name="viewport" content="width=device-width,initial-scale=1,shrink-to-fit=no">'
            '<meta name="theme-color" content="#000000"><title>Yingyun viewer</title>'
            f'<link rel="icon" href="{base}assets/favicon.ico">'
            f'<script>{self.inline_script}</script>'
            f'<script src="{base}app-config.js"></script>'
            f'<script defer src="{base}{self.app_bundle}"></script>'
            f'<link href="{base}app.bundle.css" rel="stylesheet"></head>'
            '<body><noscript>The viewer needs JavaScript.</noscript>'
            '<div id="react-portal"></div><div id="root"></div></body></html>').encode()

    def file(self, path: str) -> Path | None:
        """The build's file at `path` (relative), or None when there is none (or it would leave dist/)."""
        if not path or path.startswith("/") or "\\" in path:
            return None
        f = (self.dist / path).resolve()
        if self.dist not in f.parents or not f.is_file():
            return None
        return f

    def rewritten(self, path: str, f: Path) -> bytes | None:
        """The file's bytes with the site root replaced by our prefix, or None when it needs no rewrite."""
        if not path.endswith((".js", ".css")):
            return None
        with self._lock:
            if path in self._rewritten:
                return self._rewritten[path]
        data = f.read_bytes()
        base = (self.prefix + "/").encode()
        if path.endswith(".js"):
            out = data.replace(PUBLIC_PATH, b'__webpack_require__.p = "' + base + b'";')
        else:
            out = data.replace(b"url(/", b"url(" + base)
        kept = out if out != data else None
        with self._lock:
            self._rewritten[path] = kept
        return kept

    @staticmethod
    def immutable(path: str) -> bool:
        """Whether `path` names its content (a hash in the name): cached for a year."""
        return HASHED.match(path.rsplit("/", 1)[-1]) is not None
