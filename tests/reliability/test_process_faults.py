"""Process faults on the real dev server: a worker killed with grants in flight, and the Temporal
server itself stopped and started again while invitations wait.

The worker runs as production runs it (`worker.main()` in its own process, configured only by
`INVITES_*` variables, see `tests/support/worker_process.py`); real time throughout.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from invites.models import Status
from tests.support.auth0 import ASSIGN_ROLES, assignments_answered, user_payload
from tests.support.network import free_port
from tests.support.stack import Stack, open_stack
from tests.support.temporal import start_dev_server
from tests.support.worker_process import WorkerProcess, grant_started
from workflows.invitation import AUTH0_HEARTBEAT

pytestmark = [pytest.mark.devserver, pytest.mark.slow]

INVITATIONS = 50
ROLES = ("customer", "member")
# A killed worker's Auth0 call is noticed when its heartbeat stops (AUTH0_HEARTBEAT), then retried.
RECOVERY_TIMEOUT = AUTH0_HEARTBEAT.total_seconds() + 55
ANSWER_TIMEOUT = 20.0


async def test_worker_killed_with_50_grants_in_flight_grants_each_user_once(dev_stack: Stack, tmp_path: Path):
    """50 invitations accepted, their grants in flight, the worker SIGKILLed: a new worker
    finishes every grant and no user gets a role twice.

    Grants run on the main queue, all 50 at once, so every role assignment is parked inside
    Auth0 when the worker dies. Of the parked requests, half reach Auth0 before the new worker
    retries them (the retry finds the roles held and assigns nothing), half only after the
    retry assigned the roles (the late request finds them held and adds nothing).
    """
    s = dev_stack
    tag = uuid.uuid4().hex[:8]
    emails = [f"grant{i}.{tag}@example.com" for i in range(INVITATIONS)]
    uids = {email: s.auth0.create_user(email)["user_id"] for email in emails}
    holds = [s.auth0.faults.hold(ASSIGN_ROLES) for _ in range(INVITATIONS)]
    early, late = holds[: len(holds) // 2], holds[len(holds) // 2 :]
    workers: list[WorkerProcess] = []
    try:
        workers.append(first := WorkerProcess(s.settings, tmp_path / "worker-1.log"))
        await first.ready()
        handles = [await s.invite(email, roles=ROLES) for email in emails]
        await asyncio.gather(*(s.sent(h) for h in handles))

        results = await asyncio.gather(
            *(s.redeem(h, user_payload(s.auth0, email)) for h, email in zip(handles, emails, strict=True))
        )
        assert {(r.result, r.grant) for r in results} == {("accepted", "pending")}
        async with asyncio.timeout(20):
            await asyncio.gather(*(h.arrived() for h in holds))

        first.kill()
        for hold in early:
            hold.release()
        await assignments_answered(s.auth0, len(early), ANSWER_TIMEOUT)
        workers.append(second := WorkerProcess(s.settings, tmp_path / "worker-2.log"))
        await second.ready()

        async with asyncio.timeout(RECOVERY_TIMEOUT):
            finals = await asyncio.gather(*(h.result() for h in handles))
        for hold in late:
            hold.release()
        # Every assignment answered: the early parked ones once (the retry found the roles held),
        # the late ones twice (the retry, then the stale request).
        await assignments_answered(s.auth0, INVITATIONS + len(late), ANSWER_TIMEOUT)

        for email, final in zip(emails, finals, strict=True):
            uid = uids[email]
            assert (final.status, final.grant, final.accepted_by) == (Status.ACCEPTED, "done", uid)
            assert s.auth0.role_names(uid) == sorted(ROLES)
            assert s.auth0.role_assignments[uid] == len(ROLES), email  # each role granted once
            invitations = s.auth0.user(uid)["app_metadata"]["invitations"]
            assert [i["id"] for i in invitations] == [final.invitation_id]
            assert [link.invitation_id for link in await s.store.links_for_user(uid)] == [final.invitation_id]
        assert sum(s.auth0.role_assignments.values()) == INVITATIONS * len(ROLES)

        # The history shows the takeover: every grant completed on the new worker, on its
        # second attempt (all were in flight at the kill).
        starts = [await grant_started(h) for h in handles]
        assert all(start["identity"].startswith(f"{second.pid}@") for start in starts), starts
        attempts = sorted(start["attempt"] for start in starts)
        assert attempts == [1] * (INVITATIONS - len(holds)) + [2] * len(holds)
    finally:
        s.auth0.faults.release_all()
        for w in workers:
            w.kill()
            w.dump()


# --- the Temporal server restarted ---------------------------------------------------------------

SECOND = timedelta(seconds=1)
BOB_REMINDERS = (3 * SECOND, 6 * SECOND)
BOB_EXPIRES_IN = 14 * SECOND


async def test_a_restarted_dev_server_keeps_its_invitations_reminding_expiring_and_redeemable(
    tmp_path: Path,
):
    """Stop the dev server while invitations wait, keep it down past a reminder's due time,
    start it again on the same port and state file: the timers and the invitations survive.

    `ada` waits to be redeemed after the restart. `bob` is reminded once before the stop; his
    second reminder comes due while no server runs and goes out once, late, after the restart;
    his expiry, still ahead at the restart, fires on time. The worker process and the test's
    client stay up throughout and reconnect by themselves, as they would in production.
    """
    port, database = free_port(), tmp_path / "temporal.db"
    env: WorkflowEnvironment | None = await start_dev_server(port=port, database=database)
    worker: WorkerProcess | None = None
    try:
        async with open_stack(env, tmp_path, {"temporal_address": f"127.0.0.1:{port}"}) as s:
            worker = WorkerProcess(s.settings, tmp_path / "worker.log")
            await worker.ready()
            tag = uuid.uuid4().hex[:8]
            ada, bob = f"ada.{tag}@example.com", f"bob.{tag}@example.com"
            s.auth0.create_user(ada)
            ada_inv = await s.invite(ada, reminders=(60 * SECOND,), expires_in=120 * SECOND)
            bob_inv = await s.invite(bob, reminders=BOB_REMINDERS, expires_in=BOB_EXPIRES_IN)
            await s.sent(ada_inv)
            await s.until(bob_inv, lambda st: st.reminders_sent == 1)

            await env.shutdown()
            env = None
            first_sent_at = s.sendgrid.messages_to(bob)[0].at
            # Down until bob's second reminder is overdue by a second or more.
            await asyncio.sleep(max(0.0, first_sent_at + BOB_REMINDERS[1].total_seconds() + 1 - time.time()))
            restarted_at = time.time()  # nothing can run on the server before this
            env = await start_dev_server(port=port, database=database)

            result = await s.redeem(ada_inv, user_payload(s.auth0, ada))
            assert (result.result, result.grant) == ("accepted", "done")
            async with asyncio.timeout(30):
                ada_final, bob_final = await ada_inv.result(), await bob_inv.result()

        assert (ada_final.status, ada_final.grant) == (Status.ACCEPTED, "done")
        assert ada_final.accepted_at is not None and ada_final.accepted_at.timestamp() >= restarted_at
        assert bob_final.status == Status.EXPIRED
        assert bob_final.ended_at is not None and bob_final.ended_at >= bob_final.expires_at
        assert bob_final.ended_at.timestamp() > restarted_at
        assert bob_final.reminders_sent == 2
        mails = s.sendgrid.messages_to(bob)
        assert [m.custom_args["mail_kind"] for m in mails] == ["invite", "reminder", "reminder"]
        due = mails[0].at + BOB_REMINDERS[1].total_seconds()
        assert due < restarted_at <= mails[2].at  # due while the server was down, sent after
    finally:
        if worker is not None:
            worker.kill()
            worker.dump()
        if env is not None:
            await env.shutdown()
