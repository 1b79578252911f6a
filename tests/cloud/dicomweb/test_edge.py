"""The DICOMweb edge without a server: the services raise the error tree, the
edge maps it to HTTP statuses once, and the base URL honours trusted proxies."""

from __future__ import annotations

import ipaddress

import pytest
from starlette.requests import Request

from yingyun.cloud.dicomweb import DicomwebContext, qido, wado
from yingyun.cloud.dicomweb.auth import Caller
from yingyun.cloud.dicomweb.media import NotAcceptable, UnsupportedMediaType, parse_accept
from yingyun.cloud.dicomweb.router import BeyondLimits, base_url, error_response, status_of
from yingyun.core import errors

JPEG_BASELINE = "1.2.840.10008.1.2.4.50"


@pytest.mark.parametrize("call, kind", [
    (lambda: qido.parse("study", [("NoSuchAttribute", "x")]), errors.Invalid),
    (lambda: qido.parse("study", [("limit", "-1")]), errors.Invalid),
    (lambda: wado.parse_frames("0", 3), errors.Invalid),
    (lambda: wado.parse_frames("4", 3), errors.NotFound),
    (lambda: wado.choose_frame_media(parse_accept("text/html"), JPEG_BASELINE), NotAcceptable),
    (lambda: Caller("token:t", frozenset({"h1"})).scope("h2"), errors.Forbidden),
    (lambda: Caller("token:t", None).store_target(None, {"h1", "h2"}), errors.Invalid),
    (lambda: Caller("token:t", None).store_target("h9", {"h1"}), errors.NotFound),
])
def test_services_raise_the_error_tree(call, kind):
    with pytest.raises(kind) as caught:
        call()
    assert not hasattr(caught.value, "status_code")  # no HTTP below the edge


def test_every_error_of_the_tree_has_its_status():
    expected = {errors.Invalid: 400, errors.TooLarge: 413, NotAcceptable: 406, UnsupportedMediaType: 415,
                BeyondLimits: 422, errors.Unauthenticated: 401, errors.Forbidden: 403, errors.NotFound: 404,
                errors.Gone: 404, errors.Conflict: 409, errors.RateLimited: 429, errors.Unavailable: 503}
    assert {kind: status_of(kind("x")) for kind in expected} == expected
    tree = {getattr(errors, name) for name in errors.__all__} - {errors.YingyunError}
    assert tree <= set(expected)


def test_error_response_is_the_detail_with_its_headers():
    r = error_response(errors.Unauthenticated("unknown appId"))
    assert r.status_code == 401 and r.body == b'{"detail":"unknown appId"}'
    assert r.headers["www-authenticate"] == 'Bearer realm="yingyun-dicomweb"'
    assert error_response(errors.RateLimited("slow down", retry_after=2.4)).headers["retry-after"] == "2"


def _request(peer: str, host: str) -> Request:
    return Request({"type": "http", "method": "GET", "scheme": "http", "path": "/dicomweb/studies", "root_path": "",
                    "query_string": b"", "headers": [(b"host", host.encode())], "client": (peer, 50000),
                    "server": ("10.0.0.5", 8042)})


@pytest.mark.parametrize("peer, host, url", [
    ("192.0.2.7", "pacs.example", "http://pacs.example:8042/dicomweb"),  # straight to us: the port is put back
    ("10.1.2.3", "pacs.example", "http://pacs.example/dicomweb"),  # through our proxy: the Host as it is
    ("192.0.2.7", "pacs.example:9000", "http://pacs.example:9000/dicomweb"),
])
def test_base_url_puts_the_port_back_unless_behind_a_trusted_proxy(peer, host, url):
    ctx = DicomwebContext(db=None, tenancy=None, blobs=None, cache=None, store=None, auth=None, tokens=None,  # type: ignore[arg-type]
                          trusted_proxies=[ipaddress.ip_network("10.0.0.0/8")])
    assert base_url(_request(peer, host), ctx) == url


def test_no_http_below_the_edge():
    import ast
    from pathlib import Path

    import yingyun.cloud.dicomweb as pkg

    folder = Path(pkg.__file__).parent
    bad = []
    for name in ("qido", "wado", "stow", "auth", "media", "dicomjson", "tokens"):
        for node in ast.walk(ast.parse((folder / f"{name}.py").read_text(encoding="utf-8"))):
            mods = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            bad += [f"{name}.py imports {m}" for m in mods
                    if m.startswith(("fastapi", "starlette.exceptions", "starlette.responses"))]
    assert bad == []
