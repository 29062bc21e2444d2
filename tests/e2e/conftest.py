"""The newcomer's story in a real browser: `invites dev` as a subprocess (the README's run
command, on free ports), Playwright driving Debian's Chromium."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, async_playwright

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "e2e"
READY_S = 90


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Dev:
    api: str
    auth0: str
    ui: str
    log: Path

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=self.api, headers={"Authorization": "Bearer dev-api-key"}, timeout=15
        )


@pytest.fixture(scope="session")
def dev_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dev]:
    """`invites dev` in a fresh folder, every part on its own free port."""
    workdir = tmp_path_factory.mktemp("invites-dev")
    ports = {name: free_port() for name in ("temporal", "ui", "auth0", "api")}
    env = {
        **os.environ,
        "INVITES_TEMPORAL_ADDRESS": f"127.0.0.1:{ports['temporal']}",
        "INVITES_TEMPORAL_UI_PORT": str(ports["ui"]),
        "INVITES_AUTH0_BASE_URL": f"http://127.0.0.1:{ports['auth0']}",
        "INVITES_API_PORT": str(ports["api"]),
    }
    log = workdir / "invites-dev.log"
    invites = Path(sys.executable).parent / "invites"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(invites), "dev"], cwd=workdir, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    dev = Dev(
        api=f"http://127.0.0.1:{ports['api']}",
        auth0=f"http://127.0.0.1:{ports['auth0']}",
        ui=f"http://127.0.0.1:{ports['ui']}",
        log=log,
    )
    try:
        _wait_ready(dev, proc)
        yield dev
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shutil.copy(log, ARTIFACTS / "invites-dev.log")


def _wait_ready(dev: Dev, proc: subprocess.Popen) -> None:
    import time

    deadline = time.monotonic() + READY_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"invites dev exited ({proc.returncode}):\n{dev.log.read_text()[-4000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{dev.api}/readyz", timeout=2).status_code == 200:
                return
        time.sleep(0.5)
    raise RuntimeError(f"invites dev was not ready in {READY_S} s:\n{dev.log.read_text()[-4000:]}")


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    if not Path(CHROMIUM).exists():
        raise RuntimeError(f"{CHROMIUM} is missing: ./scripts/test installs Debian's chromium with apt-get")
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True)
        yield browser
        await browser.close()


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 20) -> None:
    async with asyncio.timeout(timeout):
        while not await check():
            await asyncio.sleep(0.25)
