"""docs/operations.md against the real dev server: its queries find what it says, and the worker
serves the Temporal SDK metrics it names.

The queries are read out of the document (the table between `ops-queries` markers, the commands
between `ops-cli` markers), so the page and this test cannot drift apart: a query edited in the
page without its expectation here fails. Each runs with ` AND TaskQueue="<this test's queue>"`
added, so invitations of other tests on the shared server stay out, and the page's example date
is moved to a week from now (the invitations below are made relative to the present).
"""

from __future__ import annotations

import asyncio
import json
import re
import shlex
import subprocess
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle

from invites.models import RevokeInput, Status
from tests.support.auth0 import ASSIGN_ROLES, LOOKUP, user_payload
from tests.support.network import free_port
from tests.support.stack import DAY, Stack
from tests.support.temporal import binary, listed
from tests.support.worker_process import WorkerProcess
from workflows.invitation import InvitationWorkflow

pytestmark = pytest.mark.devserver

DOC = Path(__file__).resolve().parents[2] / "docs" / "operations.md"
DATE_LITERAL = re.compile(r'"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"')

# Every query of the page, and which of the invitations made below it must list.
WF = 'WorkflowType="InvitationWorkflow"'
EXPECTED = {
    f'{WF} AND InvitationStatus="pending"': {"ada_soon", "grace"},
    f'{WF} AND InvitationEmail="ada@example.com"': {"ada_soon", "ada_accepted"},
    f'{WF} AND InvitationEmail="ada@example.com" AND InvitationStatus="pending"': {"ada_soon"},
    f'{WF} AND InvitationRef="lead-42"': {"ada_soon"},
    f'{WF} AND InvitationStatus="pending" AND InvitationExpiresAt < "2026-12-01T00:00:00Z"': {"ada_soon"},
    f'{WF} AND InvitationStatus="accepted" AND ExecutionStatus="Running"': {"bob_granting"},
    f'{WF} AND InvitationStatus="undeliverable"': {"bounced"},
    f'{WF} AND InvitationStatus="expired"': {"eve_expired"},
    f'{WF} AND InvitationStatus="revoked"': {"rex_revoked"},
    f'{WF} AND InvitationStatus="pending" AND StartTime < "2026-12-01T00:00:00Z"': {"ada_soon", "grace"},
}

# SDK metrics the page tells ops to watch that one invitation with a failed attempt produces.
SDK_METRICS = (
    "temporal_activity_execution_failed",
    "temporal_activity_schedule_to_start_latency",
    "temporal_workflow_task_schedule_to_start_latency",
    "temporal_activity_execution_latency",
    "temporal_workflow_completed",
    "temporal_worker_task_slots_available",
    "temporal_num_pollers",
)


def doc_section(name: str) -> str:
    text = DOC.read_text()
    match = re.search(rf"<!-- {name}:begin[^>]*-->(.*?)<!-- {name}:end -->", text, re.S)
    if match is None:
        raise AssertionError(f"docs/operations.md has no {name} section")
    return match.group(1)


def doc_queries() -> list[str]:
    """The second column of the ops-queries table."""
    return re.findall(r"^\|[^|\n]*\|\s*`([^`]+)`\s*\|\s*$", doc_section("ops-queries"), re.M)


def doc_cli_commands() -> list[list[str]]:
    return [shlex.split(line) for line in doc_section("ops-cli").splitlines() if line.startswith("temporal ")]


def scoped(query: str, queue: str, cutoff: datetime) -> str:
    at = cutoff.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    dated = DATE_LITERAL.sub(f'"{at}"', query)
    return f'({dated}) AND TaskQueue="{queue}"'


def cli_listed(command: list[str], client: Client, query: str) -> set[str]:
    args = [binary("temporal"), *command[1:]]
    args[args.index("--query") + 1] = query
    args += ["--address", client.service_client.config.target_host, "--namespace", client.namespace]
    out = subprocess.run([*args, "-o", "json"], capture_output=True, text=True, timeout=30, check=True)
    return {row["execution"]["workflowId"] for row in json.loads(out.stdout or "[]")}


def token_of(s: Stack, handle: WorkflowHandle[Any, Any], email: str) -> str:
    """The link of this invitation among the mails to the address (several invitations share it)."""
    invitation_id = handle.id.removeprefix("invitation-")
    return next(t for t in s.links(email) if s.signer.verify(t).invitation_id == invitation_id)


async def make_one_invitation_per_state(s: Stack) -> dict[str, WorkflowHandle[Any, Any]]:
    s.sendgrid.reject("bounce@example.com")
    made = {
        "ada_soon": await s.invite("Ada@Example.com", external_ref="lead-42", expires_in=3 * DAY),
        "grace": await s.invite("grace@example.com", expires_in=30 * DAY),
        "ada_accepted": await s.invite("ada@example.com", expires_in=30 * DAY),
        "bob_granting": await s.invite("bob@example.com", expires_in=30 * DAY),
        "eve_expired": await s.invite("eve@example.com", expires_in=timedelta(seconds=3)),
        "rex_revoked": await s.invite("rex@example.com", expires_in=30 * DAY),
        "bounced": await s.invite("bounce@example.com", expires_in=30 * DAY),
    }
    for name in ("ada_soon", "grace", "ada_accepted", "bob_granting", "rex_revoked"):
        await s.sent(made[name])

    s.auth0.create_user("ada@example.com")
    accepted = await s.redeem(
        made["ada_accepted"],
        user_payload(s.auth0, "ada@example.com"),
        token_of(s, made["ada_accepted"], "ada@example.com"),
    )
    assert accepted.grant == "done"
    assert (await made["ada_accepted"].result()).status == Status.ACCEPTED

    # Auth0 refuses role assignments from now on: Bob's grant keeps retrying, his workflow runs.
    s.auth0.faults.status(ASSIGN_ROLES, 503, times=100_000)
    s.auth0.create_user("bob@example.com")
    granting = await s.redeem(made["bob_granting"], user_payload(s.auth0, "bob@example.com"))
    assert granting.grant == "pending"

    await made["rex_revoked"].signal(InvitationWorkflow.revoke, RevokeInput(reason="ops test"))
    assert (await made["rex_revoked"].result()).status == Status.REVOKED
    assert (await made["eve_expired"].result()).status == Status.EXPIRED
    assert (await made["bounced"].result()).status == Status.UNDELIVERABLE
    return made


async def test_every_query_in_the_operations_doc_lists_the_invitations_it_promises(dev_stack: Stack):
    s, client = dev_stack, dev_stack.env.client
    queries, commands = doc_queries(), doc_cli_commands()
    assert set(queries) == set(EXPECTED), "docs/operations.md and EXPECTED list different queries"
    assert commands, "docs/operations.md shows no temporal workflow list command"
    assert {c[c.index("--query") + 1] for c in commands} <= set(EXPECTED)

    async with s.worker():
        made = await make_one_invitation_per_state(s)
        ids = {name: handle.id for name, handle in made.items()}
        cutoff = datetime.now(UTC) + timedelta(days=7)
        try:
            for query in queries:
                expected = {ids[name] for name in EXPECTED[query]}
                await listed(client, scoped(query, s.settings.task_queue, cutoff), expected)
            for command in commands:
                query = command[command.index("--query") + 1]
                expected = {ids[name] for name in EXPECTED[query]}
                found = cli_listed(command, client, scoped(query, s.settings.task_queue, cutoff))
                assert found == expected, f"{shlex.join(command)} listed {sorted(found)}"
        finally:
            for handle in made.values():
                if (await handle.describe()).status == WorkflowExecutionStatus.RUNNING:
                    await handle.terminate("test finished")


SAMPLE = re.compile(r"^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)")
LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def scrape(port: int) -> dict[str, list[tuple[dict[str, str], float]]]:
    """`/metrics` as {sample name: [(labels, value)]}, names exactly as served."""
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    samples: dict[str, list[tuple[dict[str, str], float]]] = {}
    for line in text.splitlines():
        if match := SAMPLE.match(line):
            name, labels, value = match.groups()
            samples.setdefault(name, []).append((dict(LABEL.findall(labels or "")), float(value)))
    return samples


def total(samples: dict[str, list[tuple[dict[str, str], float]]], name: str, **labels: str) -> float:
    return sum(v for got, v in samples.get(name, []) if all(got.get(k) == x for k, x in labels.items()))


async def test_the_worker_serves_sdk_metrics_and_logs_json_lines_without_secrets(
    dev_stack: Stack, tmp_path: Path
):
    """`worker.main()` in its own process, as production runs it, with the metrics port set."""
    s = dev_stack
    port = free_port()
    settings = s.settings.model_copy(
        update={"worker_metrics_port": port, "log_format": "json", "log_level": "DEBUG"}
    )
    s.auth0.faults.status(LOOKUP, 503, times=1)  # one failed attempt, retried after a second
    email = f"mia.{uuid.uuid4().hex[:8]}@example.com"
    worker = WorkerProcess(settings, tmp_path / "worker.log")
    try:
        await worker.ready()
        handle = await s.invite(email)
        await s.sent(handle)
        await handle.signal(InvitationWorkflow.revoke, RevokeInput(reason="metrics test"))
        await handle.result()
        async with asyncio.timeout(15):
            while total(samples := scrape(port), "temporal_workflow_completed") < 1:
                await asyncio.sleep(0.2)
    finally:
        worker.kill()

    queue, auth0_queue = s.settings.task_queue, f"{s.settings.task_queue}-auth0"
    documented = DOC.read_text()
    for name in SDK_METRICS:
        assert f"`{name}`" in documented, f"{name} is not in docs/operations.md"
        assert any(sample.startswith(name) for sample in samples), f"{name} not served"
    # The look-up and the first mail are one activity on the Auth0 queue.
    first = "look_up_and_invite"
    assert total(samples, "temporal_activity_execution_failed", activity_type=first) >= 1
    assert total(samples, "temporal_activity_execution_latency_count", activity_type=first) >= 1
    assert total(samples, "temporal_activity_schedule_to_start_latency_count", task_queue=auth0_queue) >= 2
    assert total(samples, "temporal_workflow_task_schedule_to_start_latency_count", task_queue=queue) >= 1
    assert total(samples, "temporal_workflow_completed", workflow_type="InvitationWorkflow") == 1

    lines = [json.loads(line) for line in worker.output().splitlines()]  # every line is JSON
    invitation_id = handle.id.removeprefix("invitation-")
    mail = next(line for line in lines if line["message"] == "mail sent")
    assert (mail["invitation_id"], mail["kind"], mail["activity_type"]) == (
        invitation_id,
        "invite",
        first,
    )
    # The SDK's own warning for the failed attempt names the invitation through the workflow id.
    failed = next(line for line in lines if line["message"] == "Completing activity as failed")
    assert (failed["invitation_id"], failed["activity_type"]) == (invitation_id, first)
    assert "Auth0 answered 503" in failed["exc"]
    secrets = [*s.links(email), s.settings.sendgrid_api_key, s.settings.hubspot_access_token]
    for secret in secrets:
        value = secret.get_secret_value() if hasattr(secret, "get_secret_value") else secret
        assert value not in worker.output()
