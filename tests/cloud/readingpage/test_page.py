"""The reading page /reading/: zh-CN first, English by Accept-Language; everything it loads served by Yingyun;
the issue's hooks in the markup; its script and style found, nothing else under /reading/static/."""

from __future__ import annotations

import json
import re

import httpx

from yingyun.cloud.readingpage.i18n import EN, ZH

HOOKS = ('data-testid="worklist"', 'data-testid="viewer"', 'name="imageDescription"', 'name="conclusion"',
         'name="critical"', 'data-testid="save"', 'data-testid="submit"', 'data-testid="approve"',
         'data-testid="return"', 'data-testid="amend"', 'data-testid="print"', 'data-testid="lock-warning"',
         'data-testid="template-picker"', 'data-testid="phrase-picker"', 'data-testid="priors"',
         'input name="username"', 'input name="password"')


def test_the_page_is_chinese_first_and_english_when_preferred(app_server) -> None:
    zh = httpx.get(f"{app_server.url}/reading/", headers={"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.8"})
    en = httpx.get(f"{app_server.url}/reading/", headers={"Accept-Language": "en-GB,en;q=0.9,zh;q=0.5"})
    assert zh.status_code == en.status_code == 200
    assert '<html lang="zh-CN">' in zh.text and f"<title>{ZH['title']}</title>" in zh.text
    assert '<html lang="en">' in en.text and f"<title>{EN['title']}</title>" in en.text
    words = json.loads(re.search(r'<script type="application/json" id="words">(.*?)</script>', en.text).group(1))
    assert words == EN and set(ZH) == set(EN)
    for hook in HOOKS:
        assert hook in zh.text, hook
    assert 'data-viewer="/reading/viewer/viewer"' in zh.text  # where the iframe opens OHIF
    csp = zh.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-src 'self'" in csp and "unsafe" not in csp
    assert zh.headers["cache-control"] == "no-store"
    assert httpx.get(f"{app_server.url}/reading", follow_redirects=False).headers["location"] == "/reading/"


def test_nothing_loads_from_another_origin(app_server) -> None:
    page = httpx.get(f"{app_server.url}/reading/").text
    sources = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert sources and all(src.startswith(("/reading/", "/console/")) for src in sources), sources
    for path in sources:
        assert httpx.get(f"{app_server.url}{path}").status_code == 200, path
    script = httpx.get(f"{app_server.url}/reading/static/reading.js").text
    assert "http://" not in script and "https://" not in script  # every call is to this origin's /api/v1
    assert "X-CSRF-Token" in script
    assert httpx.get(f"{app_server.url}/reading/static/../pages.py").status_code == 404
    assert httpx.get(f"{app_server.url}/reading/static/other.js").status_code == 404
