"""`/docs` is Swagger UI served by the API itself: the page names only same-origin files, each
served with its content type, and its Content-Security-Policy lets nothing else load. (The
browser test `tests/e2e/test_pages_offline.py` renders it with every other host unreachable.)"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from tests.support.api import serve
from tests.support.stack import Stack, open_stack


@pytest.fixture
async def stack(ts_env: WorkflowEnvironment, tmp_path: Path) -> AsyncIterator[Stack]:
    async with open_stack(ts_env, tmp_path, {}) as stack:
        yield stack


@pytest.fixture
async def docs(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with (
        serve(create_app(stack.settings, temporal=stack.client)) as url,
        httpx.AsyncClient(base_url=url) as http,
    ):
        yield http


def referenced(html: str) -> list[str]:
    """Every URL the page loads or links to (src, href, and the spec's url in the script)."""
    return re.findall(r'(?:src|href)="([^"]*)"', html) + re.findall(r"url: '([^']*)'", html)


async def test_the_docs_page_loads_only_files_the_api_serves(docs: httpx.AsyncClient):
    page = await docs.get("/docs")
    assert page.status_code == 200
    urls = referenced(page.text)
    assert sorted(urls) == [
        "/docs/assets/favicon-32x32.png",
        "/docs/assets/swagger-ui-bundle.js",
        "/docs/assets/swagger-ui.css",
        "/openapi.json",
    ]
    types = {}
    for url in urls:
        response = await docs.get(url)
        assert response.status_code == 200, url
        types[url] = response.headers["content-type"]
    assert types["/docs/assets/swagger-ui-bundle.js"].startswith("text/javascript")
    assert types["/docs/assets/swagger-ui.css"].startswith("text/css")
    assert types["/docs/assets/favicon-32x32.png"] == "image/png"
    assert (await docs.get("/docs/assets/swagger-ui-bundle.js")).text.lstrip().startswith("/*")


async def test_the_docs_page_allows_its_own_origin_only(docs: httpx.AsyncClient):
    policy = (await docs.get("/docs")).headers["content-security-policy"]
    assert "default-src 'none'" in policy
    assert "script-src 'self' 'sha256-" in policy
    assert "connect-src 'self'" in policy
    assert "http" not in policy and "*" not in policy  # no other host, no wildcard
    assert "'unsafe-inline'" not in policy.split("script-src", 1)[1].split(";", 1)[0]


@pytest.mark.parametrize(
    "path",
    [
        "/docs/assets/swagger-ui.js.map",
        "/docs/assets/README.md",
        "/docs/assets/LICENSE",
        "/docs/assets/..%2F..%2Fdocs_assets.py",
        "/docs/assets/%2e%2e/app.py",
    ],
)
async def test_only_the_listed_assets_are_served(docs: httpx.AsyncClient, path: str):
    response = await docs.get(path)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize(("api_docs", "served"), [(None, False), (True, True)])
async def test_in_production_the_assets_follow_the_docs_setting(
    stack: Stack, api_docs: bool | None, served: bool
):
    settings: Any = stack.settings.model_copy(update={"env": "production", "api_docs": api_docs})
    async with (
        serve(create_app(settings, temporal=stack.client)) as url,
        httpx.AsyncClient(base_url=url) as http,
    ):
        for path in ("/docs", "/docs/assets/swagger-ui-bundle.js", "/docs/assets/swagger-ui.css"):
            assert ((await http.get(path)).status_code == 200) is served, path
