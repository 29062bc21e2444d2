"""`invites dev` (the README's run command) as a subprocess in a fresh folder, every part on its
own free port, for the browser test; its log and screenshots land in test-artifacts/e2e/."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.support.network import free_port

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "e2e"
READY_S = 90
BANNER = "invites dev is up"
STOP_S = 30


@dataclass
class Dev:
    api: str
    auth0: str
    ui: str
    log: Path
    proc: subprocess.Popen = field(repr=False)

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=self.api, headers={"Authorization": "Bearer dev-api-key"}, timeout=15
        )

    def stop(self) -> int:
        """Ctrl-C, as a person stops it; its exit code (killed after STOP_S)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(STOP_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


@contextlib.contextmanager
def running_invites_dev(workdir: Path) -> Iterator[Dev]:
    """`invites dev` in `workdir`, ready (its banner is printed and its API answers /readyz);
    stopped with Ctrl-C after (or before, by `Dev.stop`)."""
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
        proc=proc,
    )
    try:
        _wait_ready(dev, proc)
        yield dev
    finally:
        dev.stop()
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shutil.copy(log, ARTIFACTS / "invites-dev.log")


def _wait_ready(dev: Dev, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + READY_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"invites dev exited ({proc.returncode}):\n{dev.log.read_text()[-4000:]}")
        # The API answers a moment before `invites dev` sees its port and prints the banner.
        with contextlib.suppress(httpx.HTTPError):
            if BANNER in dev.log.read_text(errors="replace") and (
                httpx.get(f"{dev.api}/readyz", timeout=2).status_code == 200
            ):
                return
        time.sleep(0.5)
    raise RuntimeError(f"invites dev was not ready in {READY_S} s:\n{dev.log.read_text()[-4000:]}")


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 20) -> None:
    """Poll `check` until it holds."""
    async with asyncio.timeout(timeout):
        while not await check():
            await asyncio.sleep(0.25)
