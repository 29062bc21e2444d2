"""The sandbox's root, `/`: a person who opens the tenant's own address is sent to the story.

A real tenant has no page at its root either; this one knows where the story starts
(`--home-url`, which `invites dev` sets to the API's `/dev`) and redirects there. Without it the
root says what this server is and where its login page is, as JSON for the programs that probe it.
"""

from __future__ import annotations

from aiohttp import web


def home_routes(home_url: str | None) -> list[web.RouteDef]:
    async def home(request: web.Request) -> web.StreamResponse:
        if home_url:
            # Returned, not raised: the fakes' middleware turns raised HTTP errors into error bodies.
            return web.Response(status=307, headers={"Location": home_url})
        return web.json_response(
            {
                "error": "not_found",
                "error_description": "This is the Auth0 sandbox; its login page is /authorize.",
            },
            status=404,
        )

    return [web.get("/", home)]
