"""The `invites` CLI against the real dev server, a production-wired worker and the fakes.

The CLI reads its settings from `INVITES_*` variables, as in production. It runs its own event
loop (`asyncio.run`), so in-process calls go through `CliRunner` on a thread while the test's
loop keeps serving the worker and the fakes; `run_process` runs `python -m cli` itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import json
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from temporalio.client import Client
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment
from typer.testing import CliRunner

from cli.main import app
from invites.invitations import handle_for
from invites.settings import get_settings
from tests.support.stack import Stack, open_stack
from tests.support.worker_process import settings_env

ROOT = Path(__file__).resolve().parents[2]
TERMINATE_CONCURRENCY = 64
CLEANUP_TIMEOUT_S = 120.0


@dataclass
class Cli:
    stack: Stack
    env: dict[str, str]

    async def __call__(self, *args: str) -> Result:
        """`invites ARGS` in this process (on a thread: the CLI runs its own event loop)."""
        get_settings.cache_clear()
        result = await asyncio.to_thread(CliRunner().invoke, app, list(args))
        if result.exception and not isinstance(result.exception, SystemExit):
            raise result.exception
        return result

    async def json(self, *args: str, exit_code: int = 0) -> Any:
        result = await self(*args, "--json")
        assert result.exit_code == exit_code, (result.exit_code, result.stdout, result.stderr)
        return json.loads(result.stdout)

    async def create(self, email: str, *args: str) -> dict[str, Any]:
        """`invites create --json`; the test's end terminates the invitation."""
        created = await self.json("create", "--email", email, *args)
        self.stack.handles.append(handle_for(self.stack.client, created["id"]))
        return created

    def process(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """`python -m cli ARGS` in its own process, configured only by INVITES_*."""
        return run_process(self.env, ["-m", "cli", *args], timeout=timeout)


def run_process(env: dict[str, str], argv: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("INVITES_")}
    return subprocess.run(
        [sys.executable, *argv],
        cwd=ROOT,
        env={**environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@contextlib.asynccontextmanager
async def cli_on(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Cli]:
    env = settings_env(stack.settings)
    for name in os.environ:
        if name.startswith("INVITES_"):
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    try:
        yield Cli(stack, env)
    finally:
        get_settings.cache_clear()


@pytest.fixture
async def cli(
    dev_env: WorkflowEnvironment, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Cli]:
    """The CLI configured for a fresh stack whose worker runs for the test's length."""
    address = dev_env.client.service_client.config.target_host
    async with (
        open_stack(dev_env, tmp_path, {"temporal_address": address}) as stack,
        stack.worker(),
        cli_on(stack, monkeypatch) as runner,
    ):
        yield runner


def summary_of(stdout: str) -> dict[str, Any]:
    """The final summary `invites import --json` prints."""
    return json.loads(stdout)


def rejects_of(path: Path) -> list[tuple[int, str]]:
    """(line, reason) of each row in an import's rejects file, by line (written as rows finish)."""
    with path.open(newline="") as f:
        return sorted((int(row["line"]), row["reason"]) for row in csv.DictReader(f))


def unique_email(name: str = "ada") -> str:
    return f"{name}.{uuid.uuid4().hex[:10]}@example.com"


async def terminate_running(client: Client, task_queue: str) -> int:
    """Terminate every running invitation on the task queue (visibility lags: list until none)."""
    query = f'TaskQueue="{task_queue}" AND ExecutionStatus="Running"'
    gate = asyncio.Semaphore(TERMINATE_CONCURRENCY)
    ended = 0

    async def terminate(workflow_id: str) -> None:
        nonlocal ended
        async with gate:
            with contextlib.suppress(RPCError):  # it ended meanwhile
                await client.get_workflow_handle(workflow_id).terminate(reason="test finished")
                ended += 1

    async with asyncio.timeout(CLEANUP_TIMEOUT_S):
        while ids := [wf.id async for wf in client.list_workflows(query)]:
            await asyncio.gather(*(terminate(i) for i in ids))
            await asyncio.sleep(0.5)
    return ended
