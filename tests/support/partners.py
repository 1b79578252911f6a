"""A partner's side of the wire: signing and posting like a vendor integration."""

from __future__ import annotations

import httpx
import orjson

from yingyun.contract.signing import signed_headers


class PartnerClient:
    def __init__(self, base_url: str, app_id: str, token: str) -> None:
        self.base_url = base_url
        self.app_id = app_id
        self.token = token
        self.http = httpx.Client(base_url=base_url, timeout=30)

    def post(self, path: str, body, *, headers: dict | None = None, raw: bytes | None = None) -> dict:
        h = {"Content-Type": "application/json", **signed_headers(self.app_id, self.token)}
        h.update(headers or {})
        content = raw if raw is not None else orjson.dumps(body)
        r = self.http.post(path, content=content, headers=h)
        assert r.status_code == 200, (r.status_code, r.text)
        return r.json()

    def close(self) -> None:
        self.http.close()
