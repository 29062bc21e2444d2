"""Swagger UI at `/docs`, entirely from the API: no CDN, so the page works offline.

FastAPI's own `/docs` loads Swagger UI's script and styles from a CDN and its icon from
FastAPI's site: without a network it is a blank page. Here the page names only same-origin
files, the ones vendored from npm's `swagger-ui-dist` in `api/static/swagger-ui/` (its README
says which release and how to update it), served under `/docs/assets/`. A Content-Security-Policy
holds the page to its own origin, so nothing outside can load even by mistake.
"""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse

from api.errors import ApiError

SWAGGER_UI = Path(__file__).parent / "static" / "swagger-ui"
ASSETS_PATH = "/docs/assets"
# Every file the page may load, with its content type: nothing else under the folder is served.
ASSETS = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "favicon-32x32.png": "image/png",
}
# The files change only with a release of the API: browsers may keep them an hour.
ASSET_CACHE = "public, max-age=3600"
# Swagger UI's default validator badge is an image from validator.swagger.io: off.
SWAGGER_UI_PARAMETERS = {"validatorUrl": None}


def install(app: FastAPI, *, title: str) -> None:
    """Serve `/docs` and its assets on `app` (called only when docs are on)."""
    page = get_swagger_ui_html(
        openapi_url=app.openapi_url or "/openapi.json",
        title=f"{title} - API docs",
        swagger_js_url=f"{ASSETS_PATH}/swagger-ui-bundle.js",
        swagger_css_url=f"{ASSETS_PATH}/swagger-ui.css",
        swagger_favicon_url=f"{ASSETS_PATH}/favicon-32x32.png",
        swagger_ui_parameters=SWAGGER_UI_PARAMETERS,
    )
    html = bytes(page.body)
    headers = {"Content-Security-Policy": content_security_policy(html.decode())}
    router = APIRouter(include_in_schema=False)

    @router.get("/docs")
    async def swagger_ui() -> HTMLResponse:
        """The Swagger UI page for /openapi.json."""
        return HTMLResponse(html, headers=headers)

    @router.get(f"{ASSETS_PATH}/{{name}}")
    async def swagger_ui_asset(name: str) -> FileResponse:
        """One of Swagger UI's vendored files."""
        if name not in ASSETS:
            raise ApiError(404, "not_found", "No such file.")
        return FileResponse(
            SWAGGER_UI / name, media_type=ASSETS[name], headers={"Cache-Control": ASSET_CACHE}
        )

    app.include_router(router)


def content_security_policy(html: str) -> str:
    """Same origin only. The page's one inline script (FastAPI's call to `SwaggerUIBundle`) is
    allowed by its hash; Swagger UI sets inline styles, hence `'unsafe-inline'` for styles."""
    hashes = " ".join(
        f"'sha256-{base64.b64encode(hashlib.sha256(s.encode()).digest()).decode()}'"
        for s in re.findall(r"<script>(.*?)</script>", html, flags=re.DOTALL)
    )
    return (
        "default-src 'none'; "
        f"script-src 'self' {hashes}; "
        "style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; "
        "connect-src 'self'; "
        "font-src 'self' data:; "
        "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )
