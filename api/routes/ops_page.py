"""`/ops`: the funnel, time to accept and the pending invitations that waited longest, for ops
and product people, in production as in development.

The page and its script are static: they hold no data and no secret. A person signs in in the
page with an API key or an Auth0 access token holding `read:invitations`; the script keeps it in
the tab's `sessionStorage` and sends it as `Authorization: Bearer` to the API's own routes
(`/v1/stats/funnel`, `/v1/stats/time-to-accept`, `/v1/invitations`), so it never lands in a URL
or a log. The Content-Security-Policy allows this origin only, no inline script, and no form
submission at all (a form that cannot submit cannot put the key in a URL, even if the script
did not run). The charts are SVG the script draws; nothing comes from a CDN.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

from fastapi import APIRouter
from fastapi.responses import FileResponse, HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from api.deps import ServicesDep
from api.errors import ApiError
from invites.ids import workflow_id

router = APIRouter(include_in_schema=False)
OPS_STATIC = Path(__file__).parent.parent / "static" / "ops"
ASSETS = {"ops.js": "text/javascript; charset=utf-8", "ops.css": "text/css; charset=utf-8"}
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'none'; base-uri 'none'; frame-ancestors 'none'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "Referrer-Policy": "no-referrer",  # the links to the Temporal UI carry no address of ours
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-cache",
}
RUN_PLACEHOLDER = "INVITATION_ID"
_pages = Environment(
    loader=FileSystemLoader(Path(__file__).parent.parent / "templates"), autoescape=select_autoescape()
)


def run_url_template(temporal_ui_url: str, namespace: str) -> str:
    """The Temporal UI's page of an invitation's workflow, `INVITATION_ID` standing for its id."""
    return (
        f"{temporal_ui_url.rstrip('/')}/namespaces/{quote(namespace, safe='')}"
        f"/workflows/{workflow_id(RUN_PLACEHOLDER)}"
    )


@router.get("/ops")
async def ops_page(services: ServicesDep) -> HTMLResponse:
    """The ops page (static; its data comes from the API once a person signs in)."""
    settings = services.settings
    html = _pages.get_template("ops/index.html").render(
        run_url=run_url_template(settings.temporal_ui_url, settings.temporal_namespace),
        placeholder=RUN_PLACEHOLDER,
    )
    return HTMLResponse(html, headers=PAGE_HEADERS)


@router.get("/ops/assets/{name}")
async def ops_asset(name: str) -> FileResponse:
    """The page's script and styles."""
    if name not in ASSETS:
        raise ApiError(404, "not_found", "No such file.")
    return FileResponse(
        OPS_STATIC / name,
        media_type=ASSETS[name],
        headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"},
    )
