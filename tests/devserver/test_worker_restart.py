"""A worker process killed in the middle of a grant: a new one finishes it, granting once.

The worker runs as production runs it (`worker.main()` in its own process, configured only by
`INVITES_*` variables). The Auth0 fake parks the role assignment, the worker is killed with
SIGKILL (no graceful shutdown, the activity's result is lost), and a fresh worker takes over.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from temporalio.api.enums.v1 import EventType

from invites.models import Status
from invites.settings import Settings
from tests.workflows.conftest import Stack, user_payload
from workflows.invitation import AUTH0_TIMEOUT

pytestmark = pytest.mark.devserver

ROOT = Path(__file__).resolve().parents[2]
ASSIGN_ROLES = "POST /api/v2/users/{id}/roles"
READY_LINE = "worker started on task queue"
READY_TIMEOUT = 30.0
# A killed worker's activity is retried only once its start-to-close timeout has passed.
RECOVERY_TIMEOUT = AUTH0_TIMEOUT + timedelta(seconds=30)


def settings_env(settings: Settings) -> dict[str, str]:
    """The `INVITES_*` variables that make `Settings()` in another process equal `settings`."""
    env: dict[str, str] = {}
    for name, value in settings:
        if value is None:
            continue
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        elif isinstance(value, timedelta):
            value = iso_duration(value)
        elif isinstance(value, list):
            value = json.dumps([iso_duration(v) if isinstance(v, timedelta) else v for v in value])
        elif isinstance(value, bool):
            value = "true" if value else "false"
        env[f"INVITES_{name.upper()}"] = str(value)
    return env


def iso_duration(value: timedelta) -> str:
    """pydantic reads a timedelta from a string only as ISO 8601 (`PT1209600S`), not as seconds."""
    return f"PT{value.total_seconds()}S"


class WorkerProcess:
    """`python -c 'import worker; worker.main()'`, its output in a log file for failures."""

    def __init__(self, settings: Settings, log: Path) -> None:
        self.log = log
        env = {k: v for k, v in os.environ.items() if not k.startswith("INVITES_")}
        env.update(settings_env(settings), PYTHONUNBUFFERED="1")
        with log.open("wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", "import worker; worker.main()"],
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    async def ready(self) -> None:
        """Wait until both Temporal workers poll (the worker logs it), failing fast if it died."""
        deadline = time.monotonic() + READY_TIMEOUT
        while READY_LINE not in self.output():
            if self.proc.poll() is not None:
                raise AssertionError(f"worker exited with {self.proc.returncode}:\n{self.output()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"worker not ready after {READY_TIMEOUT} s:\n{self.output()}")
            await asyncio.sleep(0.1)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)


def test_settings_env_round_trips(dev_stack: Stack, monkeypatch: pytest.MonkeyPatch):
    """The subprocess sees exactly the test's settings (guards the helper below)."""
    for name in os.environ:
        if name.startswith("INVITES_"):
            monkeypatch.delenv(name)
    for name, value in settings_env(dev_stack.settings).items():
        monkeypatch.setenv(name, value)
    assert Settings(_env_file=None) == dev_stack.settings


@pytest.mark.parametrize("stale_lands", ["before_retry", "after_retry"])
async def test_worker_killed_mid_grant_is_replaced_and_roles_are_granted_once(
    dev_stack: Stack, tmp_path: Path, stale_lands: str
):
    """The dead worker's parked request reaches Auth0 before the retry, or only after it."""
    s = dev_stack
    email = f"kim.{uuid.uuid4().hex[:10]}@example.com"
    user = s.auth0.create_user(email)
    uid = user["user_id"]
    held = s.auth0.faults.hold(ASSIGN_ROLES)
    workers: list[WorkerProcess] = []
    try:
        workers.append(first := WorkerProcess(s.settings, tmp_path / "worker-1.log"))
        await first.ready()
        handle = await s.invite(email, roles=("customer", "member"))
        await s.sent(handle)

        # The grant is parked in Auth0, so the update answers within its bound, not done.
        result = await s.redeem(handle, user_payload(s.auth0, email))
        assert (result.result, result.grant) == ("accepted", "pending")
        async with asyncio.timeout(10):
            await held.arrived()

        first.kill()
        if stale_lands == "before_retry":
            held.release()
            await assignment_answered(s)
        workers.append(second := WorkerProcess(s.settings, tmp_path / "worker-2.log"))
        await second.ready()

        async with asyncio.timeout(RECOVERY_TIMEOUT.total_seconds()):
            final = await handle.result()
        assert final.status == Status.ACCEPTED
        assert final.grant == "done"
        assert final.accepted_by == uid
        # The retry asks Auth0 what the user holds: it assigns only when the stale one did not land.
        assert s.auth0.faults.count(ASSIGN_ROLES) == (1 if stale_lands == "before_retry" else 2)
        if stale_lands == "after_retry":
            held.release()
            await assignment_answered(s, requests=2)

        assert s.auth0.role_names(uid) == ["customer", "member"]
        assert s.auth0.role_assignments[uid] == 2  # two role ids, each granted once
        assert [i["id"] for i in s.auth0.user(uid)["app_metadata"]["invitations"]] == [final.invitation_id]
        assert [link.invitation_id for link in await s.store.links_for_user(uid)] == [final.invitation_id]

        # The history shows the takeover: the grant's last attempt ran on the new worker.
        started = await grant_started(handle)
        assert started["attempt"] == 2
        assert started["identity"].startswith(f"{second.pid}@")  # the SDK's default: pid@host
    finally:
        held.release()
        for w in workers:
            w.kill()
            sys.stderr.write(f"--- worker pid {w.pid} ({w.log.name}) ---\n{w.output()}\n")


async def assignment_answered(s: Stack, requests: int = 1) -> None:
    """Wait until Auth0 answered `requests` role assignments 204 (the parked one included)."""
    async with asyncio.timeout(10):
        while s.auth0.faults.count(ASSIGN_ROLES, status=204) < requests:
            await asyncio.sleep(0.05)


async def grant_started(handle: Any) -> dict[str, Any]:
    """Attempt and worker identity of the grant activity's recorded start (`grant_access`, which
    assigns the roles)."""
    scheduled_id = None
    async for event in handle.fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            if event.activity_task_scheduled_event_attributes.activity_type.name == "grant_access":
                scheduled_id = event.event_id
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            attrs = event.activity_task_started_event_attributes
            if attrs.scheduled_event_id == scheduled_id:
                return {"attempt": attrs.attempt, "identity": attrs.identity}
    raise AssertionError("no recorded start of grant_access")
