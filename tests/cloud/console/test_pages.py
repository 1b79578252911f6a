"""The console page: zh-CN first, English by Accept-Language; its script, style and ECharts served by Yingyun."""

from __future__ import annotations

import json
import re

import httpx

from yingyun.cloud.console.i18n import EN, ZH


def test_the_page_is_chinese_first_and_english_when_preferred(app_server) -> None:
    zh = httpx.get(f"{app_server.url}/console/", headers={"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.8"})
    en = httpx.get(f"{app_server.url}/console/", headers={"Accept-Language": "en-GB,en;q=0.9,zh;q=0.5"})
    default = httpx.get(f"{app_server.url}/console/")
    assert zh.status_code == en.status_code == default.status_code == 200
    # The page names the platform's zone: its script reckons the statistics' days there, not in the browser's.
    assert '<html lang="zh-CN" data-timezone="Asia/Shanghai">' in zh.text and f"<title>{ZH['title']}</title>" in zh.text
    assert '<html lang="en" data-timezone="Asia/Shanghai">' in en.text and f"<title>{EN['title']}</title>" in en.text
    assert '<html lang="zh-CN" ' in default.text
    words = json.loads(re.search(r'<script type="application/json" id="words">(.*?)</script>', en.text).group(1))
    assert words == EN
    # The sign-in selectors.
    for hook in ('input name="username"', 'input name="password"', 'button type="submit"'):
        assert hook in zh.text
    assert "script-src 'self'" in zh.headers["content-security-policy"] and zh.headers["cache-control"] == "no-store"


def test_nothing_loads_from_another_origin(app_server) -> None:
    page = httpx.get(f"{app_server.url}/console/").text
    sources = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert sources and all(s.startswith("/console/") for s in sources), sources
    for path in sources:
        r = httpx.get(f"{app_server.url}{path}")
        assert r.status_code == 200, path
    echarts = httpx.get(f"{app_server.url}/console/assets/echarts.min.js")
    assert echarts.headers["content-type"].startswith("text/javascript") and b"echarts" in echarts.content[:2000]
    assert httpx.get(f"{app_server.url}/console/static/../pages.py").status_code == 404
    assert httpx.get(f"{app_server.url}/console/static/other.js").status_code == 404
