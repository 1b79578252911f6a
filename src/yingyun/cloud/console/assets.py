"""Where the console's npm assets are: node_modules/ of the checkout, installed by `make assets`.

package.json + package-lock.json pin them; `npm ci` (every make target that
serves or tests) puts them in node_modules/ beside the Makefile. A deployment
that keeps them elsewhere names that folder in YINGYUN_ASSETS_DIR (the folder
that holds echarts/).
"""

from __future__ import annotations

import os
from pathlib import Path

ENV_ASSETS_DIR = "YINGYUN_ASSETS_DIR"
ECHARTS = Path("echarts") / "dist" / "echarts.min.js"
CHECKOUT = Path(__file__).resolve().parents[4]  # src/yingyun/cloud/console/ -> the checkout


def node_modules() -> Path | None:
    """The folder the assets are in, or None when they are not installed."""
    named = os.environ.get(ENV_ASSETS_DIR)
    for folder in ([Path(named)] if named else []) + [CHECKOUT / "node_modules", Path.cwd() / "node_modules"]:
        if (folder / ECHARTS).is_file():
            return folder
    return None
