"""`invites import` of 10,000 rows: every good row created once, bad rows reported by line, the
CLI's memory bounded, and a second run of the file creating nothing.

No worker runs here: this test is about the import (the CLI process, the database rows, the
workflow starts on a real dev server), not about 10,000 invitations mailing (the benchmark holds
10,000 open invitations in a worker; tests/cli/test_import.py follows imported ones to their mail).
"""

from __future__ import annotations

import asyncio
import csv
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import func, select
from temporalio.testing import WorkflowEnvironment

from invites.db.engine import create_engine
from invites.db.tables import Invitation
from tests.cli.conftest import Cli, cli_on, rejects_of, run_process, summary_of
from tests.support.stack import open_stack
from tests.support.temporal import start_dev_server

pytestmark = [pytest.mark.devserver, pytest.mark.slow]

ROWS = 10_000
BAD = {"invalid_email": 5, "unknown_role": 5, "invalid_data": 5, "missing_email": 5}
MAX_RSS_MIB = 400
IMPORT_TIMEOUT_S = 900
VISIBILITY_TIMEOUT_S = 120
# Run the CLI in its own process and report its peak memory. VmHWM, not getrusage's ru_maxrss:
# a child started by vfork + exec inherits the parent's peak in ru_maxrss (here pytest's),
# while VmHWM belongs to the new process alone.
MEASURED = """
import os, sys
from typer.main import get_command
from cli.main import app
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
    """A dev server of its own: 10,000 workflows would slow every later test on the shared one
    (they go with it: no clean-up of each)."""
    env = await start_dev_server()
    yield env
    await env.shutdown()


@pytest.fixture
async def import_cli(
    own_dev_env: WorkflowEnvironment, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Cli]:
    overrides = {
        "temporal_address": own_dev_env.client.service_client.config.target_host,
        "crm_backend": "none",
        "mail_backend": "outbox",
        # "wizard" may be granted but the tenant lacks it: those rows are `unknown_role`.
        "grantable_roles": ["customer", "member", "wizard"],
    }
    async with open_stack(own_dev_env, tmp_path, overrides) as stack, cli_on(stack, monkeypatch) as runner:
        yield runner


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


async def invitation_rows(cli: Cli) -> int:
    engine = create_engine(cli.stack.settings.database_url)
    try:
        async with engine.connect() as db:
            return await db.scalar(select(func.count()).select_from(Invitation)) or 0
    finally:
        await engine.dispose()


async def started_workflows(cli: Cli, expected: int) -> int:
    """Invitation workflows on the stack's task queue, once visibility has caught up."""
    query = f'TaskQueue="{cli.stack.settings.task_queue}"'
    async with asyncio.timeout(VISIBILITY_TIMEOUT_S):
        while (count := (await cli.stack.client.count_workflows(query)).count) < expected:
            await asyncio.sleep(1)
    return count


async def test_ten_thousand_rows_import_once_in_bounded_memory(import_cli: Cli, tmp_path: Path):
    cli, tag = import_cli, uuid.uuid4().hex[:8]
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
    assert await invitation_rows(cli) == good
    assert await started_workflows(cli, good) == good

    code, again, rss_kib = await import_measured(cli, path)
    assert code == 1
    counts = (again["created"], again["already_existing"], again["rejected"], again["failed"])
    assert counts == (0, good, len(bad_lines), 0), again["reasons"]
    assert dict(rejects_of(tmp_path / "leads.rejects.csv")) == bad_lines
    assert rss_kib < MAX_RSS_MIB * 1024
    assert await invitation_rows(cli) == good
    assert await started_workflows(cli, good) == good
