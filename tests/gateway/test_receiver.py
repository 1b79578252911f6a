"""The receiver processes import only the receive path (no numpy, Pillow or
the HTTP app) and stop when the serve process that started them is gone."""

from __future__ import annotations

import subprocess
import sys


def test_receive_path_needs_no_numpy_pillow_or_http_app() -> None:
    code = (
        "import sys\n"
        "from yingyun.gateway import receiver\n"
        "for m in receiver._UNNEEDED_MODULES: sys.modules.setdefault(m, None)\n"
        "from yingyun.gateway.receiver import build_receiver\n"
        "from yingyun.settings import Settings\n"
        "import yingyun.archive.instances, yingyun.gateway.scp, yingyun.gateway.upperlayer, yingyun.runtime\n"
        "import yingyun.core.logging\n"
        "bad = [m for m in ('fastapi', 'uvicorn', 'yingyun.serve') if m in sys.modules]\n"
        "assert not bad, bad\n"
        "print('ok')\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr


def test_settings_round_trip_without_serve(tmp_path) -> None:
    from yingyun.settings import Settings, parse_proxies

    s = Settings(data_dir=tmp_path, database_url="sqlite:///" + str(tmp_path / "y.db"),
                 trusted_proxies=parse_proxies(["10.0.0.0/8"]), blob_url="s3://films/prod")
    assert Settings.from_json(s.to_json()) == s
