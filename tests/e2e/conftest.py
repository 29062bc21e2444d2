"""The newcomer's story in a real browser: `invites dev` as a subprocess (the README's run
command, on free ports), Playwright driving Debian's Chromium."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, async_playwright

from tests.support.invites_dev import Dev, running_invites_dev

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def invites_dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dev]:
    """`invites dev` in a fresh folder, every part on its own free port."""
    with running_invites_dev(tmp_path_factory.mktemp("invites-dev")) as dev:
        yield dev


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    if not Path(CHROMIUM).exists():
        raise RuntimeError(f"{CHROMIUM} is missing: ./scripts/test installs Debian's chromium with apt-get")
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True)
        yield browser
        await browser.close()
