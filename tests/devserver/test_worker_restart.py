"""A worker process killed in the middle of a grant: a new one finishes it, granting once.

The worker runs as production runs it (`worker.main()` in its own process, configured only by
`INVITES_*` variables). The Auth0 fake parks the role assignment, the worker is killed with
SIGKILL (no graceful shutdown, the activity's result is lost), and a fresh worker takes over.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from datetime import timedelta
from pathlib import Path

import pytest

from invites.models import Status
from invites.settings import Settings
from tests.support.auth0 import ASSIGN_ROLES, assignments_answered, user_payload
from tests.support.stack import Stack
from tests.support.worker_process import WorkerProcess, grant_started, settings_env
from workflows.invitation import AUTH0_TIMEOUT

pytestmark = pytest.mark.devserver

# A killed worker's activity is retried only once its start-to-close timeout has passed.
RECOVERY_TIMEOUT = AUTH0_TIMEOUT + timedelta(seconds=30)


def test_settings_env_round_trips(dev_stack: Stack, monkeypatch: pytest.MonkeyPatch):
    """The subprocess sees exactly the test's settings (guards `settings_env`)."""
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
            await assignments_answered(s.auth0)
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
            await assignments_answered(s.auth0, 2)

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
            w.dump()
