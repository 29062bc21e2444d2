"""The outbox and the API's root as a person meets them in `invites dev`: the mail preview's links
open in the window, the page refreshes itself, and `/` leads to the story (in development only).
The browser test `tests/e2e/test_pages_offline.py` clicks and watches the same in Chromium."""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any

import httpx
import pytest

from api.app import create_app
from api.routes.dev import mail_preview
from tests.support.api import Api, serve


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"mail_backend": "outbox"}


class Tags(HTMLParser):
    """Every start tag of a page with its attributes (values unescaped, as a browser reads them)."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def all(self, name: str) -> list[dict[str, str | None]]:
        return [attrs for tag, attrs in self.tags if tag == name]


@pytest.mark.parametrize(
    ("mail", "preview"),
    [
        (
            '<!doctype html><html lang="en"><head><meta charset="utf-8"></head><body><a href="/i/x">Go</a>',
            '<!doctype html><html lang="en"><head><base target="_top"><meta charset="utf-8"></head>'
            '<body><a href="/i/x">Go</a>',
        ),
        (
            '<HEAD lang="en"><title>t</title></HEAD>',
            '<HEAD lang="en"><base target="_top"><title>t</title></HEAD>',
        ),
        (
            '<header>no head here</header><a href="/x">x</a>',
            '<base target="_top"><header>no head here</header><a href="/x">x</a>',
        ),
    ],
)
def test_the_preview_opens_links_in_the_window(mail: str, preview: str):
    assert mail_preview(mail) == preview


async def test_the_outbox_frames_each_mail_so_its_links_open_in_the_window(api: Api):
    created = await api.created("frame@example.com", roles=["customer"])
    await api.stack.sent(api.stack.handles[-1])
    page = (await api.http.get("/dev/outbox")).text
    frames = Tags(page).all("iframe")
    assert len(frames) == 1
    # No scripts in the frame and not our origin; a click may navigate the window (and only a click).
    assert frames[0]["sandbox"] == "allow-top-navigation-by-user-activation"
    inside = Tags(frames[0]["srcdoc"] or "")
    assert inside.tags[:3] == [("html", {"lang": "en"}), ("head", {}), ("base", {"target": "_top"})]
    links = [a["href"] for a in inside.all("a")]
    assert links and all(href and "/i/" in href for href in links)
    assert created["id"] in page


async def test_the_outbox_polls_its_json_and_loads_nothing_from_elsewhere(api: Api):
    page = (await api.http.get("/dev/outbox")).text
    assert "No mail yet" in page and 'id="mails"' in page
    assert 'fetch("/dev/api/outbox"' in page
    assert not [s for s in Tags(page).all("script") if s.get("src")]  # the script is the page's own
    assert (await api.http.get("/dev/api/outbox")).json() == []


async def test_the_root_leads_to_the_story_in_development(api: Api):
    root = await api.http.get("/", follow_redirects=False)
    assert (root.status_code, root.headers["location"]) == (307, "/dev")
    assert (await api.http.get("/", follow_redirects=True)).url.path == "/dev"


async def test_the_root_is_the_plain_json_404_in_production(api: Api):
    prod = api.stack.settings.model_copy(update={"env": "production"})
    async with (
        serve(create_app(prod, temporal=api.stack.client)) as url,
        httpx.AsyncClient(base_url=url) as http,
    ):
        root = await http.get("/")
        assert root.status_code == 404
        assert root.json()["error"]["code"] == "not_found"
