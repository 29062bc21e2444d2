"""`invites import FILE.csv`: rows created once, bad rows reported by line, memory bounded."""

from __future__ import annotations

import asyncio
import csv
import json
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import func, select
from temporalio.testing import WorkflowEnvironment

import worker
from invites.db.engine import create_engine
from invites.db.tables import Mail
from tests.cli.conftest import Cli, cli_on, run_process, terminate_running
from tests.conftest import start_dev_server
from tests.workflows.conftest import _stack

pytestmark = pytest.mark.devserver

HEADER = "email,roles,external_ref,locale,expires_in,email_policy,plan,source\n"


def summary_of(stdout: str) -> dict:
    return json.loads(stdout)


def rejects_of(path: Path) -> list[tuple[int, str]]:
    """(line, reason) of each rejected row, by line (rows are written as they finish)."""
    with path.open(newline="") as f:
        return sorted((int(row["line"]), row["reason"]) for row in csv.DictReader(f))


async def mails_sent(cli: Cli) -> int:
    engine = create_engine(cli.stack.settings.database_url)
    try:
        async with engine.connect() as db:
            return await db.scalar(select(func.count()).select_from(Mail)) or 0
    finally:
        await engine.dispose()


ROWS = 10_000
BAD = {"invalid_email": 5, "unknown_role": 5, "invalid_data": 5, "missing_email": 5}
MAX_RSS_MIB = 400
IMPORT_TIMEOUT_S = 900
SETTLE_TIMEOUT_S = 600
# Run the CLI in its own process and report its peak memory. VmHWM, not getrusage's ru_maxrss:
# a child started by vfork + exec inherits the parent's peak in ru_maxrss (here pytest's, with
# a worker holding 10,000 workflows), while VmHWM belongs to the new process alone.
MEASURED = """
import os, sys
from typer.main import get_command
from invites.cli import app
code = 0
try:
    get_command(app).main(args=sys.argv[1:], prog_name="invites")
except SystemExit as exc:
    code = exc.code or 0
sys.stdout.flush()
with open("/proc/self/status") as status:
    peak = next(line.split()[1] for line in status if line.startswith("VmHWM:"))
sys.stderr.write(f"\\npeak_rss_kib={peak}\\n")
sys.stderr.flush()
os._exit(code)
"""


def write_leads(path: Path, tag: str) -> dict[int, str]:
    """ROWS data rows, the BAD ones spread through the file; returns line -> expected reason."""
    bad_lines: dict[int, str] = {}
    kinds = [kind for kind, count in BAD.items() for _ in range(count)]
    every = ROWS // len(kinds)
    with path.open("w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["email", "roles", "external_ref", "plan", "notes"])
        for i in range(ROWS):
            line = i + 2
            email, roles, ref, notes = f"lead{i}.{tag}@example.com", "customer", "", "ok"
            if i % 2 == 0:
                ref = f"lead-{tag}-{i}"
            if i % 7 == 0:
                roles = "customer|member"
            if i % every == every // 2 and kinds:
                kind = kinds.pop()
                bad_lines[line] = kind
                if kind == "invalid_email":
                    email = f"lead{i}.{tag}-at-example.com"
                elif kind == "unknown_role":
                    roles = "customer wizard"
                elif kind == "invalid_data":
                    notes = "x" * 70_000  # past the 64 KiB of data
                else:
                    email = ""
            out.writerow([email, roles, ref, "pro" if i % 3 else "team", notes])
    return bad_lines


@pytest.fixture
async def own_dev_env() -> AsyncIterator[WorkflowEnvironment]:
    """A dev server of its own: 10,000 workflows would slow every later test on the shared one."""
    env = await start_dev_server()
    yield env
    await env.shutdown()


@pytest.fixture
async def busy_cli(
    own_dev_env: WorkflowEnvironment, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Cli]:
    """A stack for 10,000 invitations: a roomy worker; nothing but the first mail happens."""
    dev_env = own_dev_env
    monkeypatch.setattr(worker, "MAX_CONCURRENT_ACTIVITIES", 500)
    monkeypatch.setattr(worker, "MAX_CONCURRENT_AUTH0_ACTIVITIES", 100)
    monkeypatch.setattr(worker, "MAX_CACHED_WORKFLOWS", 12_000)
    overrides = {
        "temporal_address": dev_env.client.service_client.config.target_host,
        "crm_backend": "none",
        "mail_backend": "outbox",
        "default_reminders": [],
    }
    async with (
        _stack(dev_env, tmp_path, overrides) as stack,
        stack.worker(),
        cli_on(stack, monkeypatch) as runner,
    ):
        try:
            yield runner
        finally:
            # While the worker runs: no invitation is left to call the fakes once they go.
            await terminate_running(stack.client, stack.settings.task_queue)


async def import_measured(cli: Cli, path: Path) -> tuple[int, dict, int]:
    started = time.monotonic()
    result = await asyncio.to_thread(
        run_process,
        cli.env,
        ["-c", MEASURED, "import", str(path), "--json", "--concurrency", "32"],
        IMPORT_TIMEOUT_S,
    )
    rss_kib = int(result.stderr.rsplit("peak_rss_kib=", 1)[1].split()[0])
    print(f"import of {path.name}: {time.monotonic() - started:.1f} s, peak RSS {rss_kib // 1024} MiB")
    assert result.stdout, result.stderr
    return result.returncode, summary_of(result.stdout), rss_kib


@pytest.mark.slow
async def test_ten_thousand_rows_import_once_in_bounded_memory(busy_cli: Cli, tmp_path: Path):
    cli, tag = busy_cli, uuid.uuid4().hex[:8]
    path = tmp_path / "leads.csv"
    bad_lines = write_leads(path, tag)
    assert len(bad_lines) == sum(BAD.values())
    good = ROWS - len(bad_lines)

    code, summary, rss_kib = await import_measured(cli, path)
    assert code == 1  # rows were rejected
    assert (summary["created"], summary["already_existing"]) == (good, 0)
    assert (summary["rejected"], summary["failed"]) == (len(bad_lines), 0)
    assert summary["reasons"] == BAD
    assert dict(rejects_of(tmp_path / "leads.rejects.csv")) == bad_lines
    assert rss_kib < MAX_RSS_MIB * 1024
    # Real invitations: each sends its mail. Waiting for that also lets the worker settle before
    # the second run (SQLite takes one writer at a time).
    async with asyncio.timeout(SETTLE_TIMEOUT_S):
        while await mails_sent(cli) < good:
            await asyncio.sleep(1)

    code, again, rss_kib = await import_measured(cli, path)
    counts = (again["created"], again["already_existing"], again["rejected"])
    assert counts == (0, good, len(bad_lines)), again["reasons"]
    assert dict(rejects_of(tmp_path / "leads.rejects.csv")) == bad_lines
    assert rss_kib < MAX_RSS_MIB * 1024
