"""`/docs`: the OpenAPI document in Swagger UI, from the installed swagger-ui-bundle.

FastAPI's own page loads Swagger UI from a CDN, so it is blank on a hospital
network without internet. Here the page, its script and its style come from
the server (the assets of the pinned `swagger-ui-bundle-v2` package), and
the document gets the components that routes name by `$ref` in their
`openapi_extra` (request bodies read by hand, security schemes of headers
checked by hand), which FastAPI cannot see.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from starlette.responses import HTMLResponse
from starlette.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

ASSETS = "/docs/assets"


def install_docs(app: FastAPI, *, components: dict[str, dict[str, Any]],
                 edits: Sequence[Callable[[dict[str, Any]], None]] = ()) -> None:
    """Serve Swagger UI at /docs (the app must be made with docs_url=None), add
    `components` ({"schemas": …, "securitySchemes": …}) to the OpenAPI document,
    and let each of `edits` complete the document once it is generated (what
    routes cannot declare, such as the credentials their edge reads by hand)."""
    app.mount(ASSETS, StaticFiles(directory=str(swagger_ui_path)), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url=app.openapi_url or "/openapi.json", title=f"{app.title} API",
                                   swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
                                   swagger_css_url=f"{ASSETS}/swagger-ui.css",
                                   swagger_favicon_url=f"{ASSETS}/favicon-32x32.png")

    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = generate()
            for kind, entries in components.items():
                document.setdefault("components", {}).setdefault(kind, {}).update(entries)
            for edit in edits:
                edit(document)
        assert app.openapi_schema is not None
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented way to extend the document
