"""The worker: wiring only. Builds the outside clients from settings and runs two Temporal workers.

- `INVITES_TASK_QUEUE` (default `invitations`): the workflow, the mails after the first one,
  the CRM events, and the grant made when someone accepts (few, and a person is waiting).
- `<task queue>-auth0`: the Auth0 look-up and first mail of every new invitation. Look-ups that
  arrive together share one Auth0 user search (`activities/lookups.py`), at most
  `INVITES_MAX_TASK_QUEUE_ACTIVITIES_PER_SECOND` calls a second, because Auth0 rate-limits per
  tenant and a bulk import makes thousands of look-ups.
"""

from __future__ import annotations

import asyncio
import compileall
import contextlib
import logging
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import httpx
from hubspot import HubSpot
from sendgrid import SendGridAPIClient
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
)
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions
from urllib3.util.retry import Retry

from activities.auth0 import Auth0Users
from activities.crm import CrmActivities, CrmBackend, HubSpotCrm, NoCrm, WebhookCrm
from activities.first_mail import FirstMailActivities
from activities.funnel import FunnelActivities
from activities.grant import GrantActivities
from activities.lookups import LookupBatcher
from activities.mail import MailActivities, MailRenderer, MailSender, OutboxSender, SendGridSender
from activities.maintenance import MaintenanceActivities
from activities.provisioning import ProvisionedUsers, ProvisioningActivities
from activities.rollback import RollbackActivities
from invites.auth0 import Auth0Management, CallPace
from invites.db.engine import create_engine
from invites.db.funnel import FunnelStore
from invites.db.migrate import upgrade
from invites.db.store import Store
from invites.eventloop import loop_factory
from invites.logs import configure_logging
from invites.settings import Settings, get_settings
from invites.telemetry import install_runtime
from invites.temporal import auth0_task_queue, build_temporal_client
from invites.tokens import TokenSigner
from workflows.invitation import InvitationWorkflow
from workflows.maintenance import PURGE_EVERY, PurgeWebhookReceiptsWorkflow

log = logging.getLogger("invites.worker")

# Tuned for a small box: activities are I/O-bound, workflows are tiny and long-lived.
MAX_CONCURRENT_ACTIVITIES = 100
# Look-ups in flight on the Auth0 queue, in batches: while one call is out, the next batches
# gather in the worker (a look-up waiting costs a coroutine).
LOOKUP_BATCHES_IN_FLIGHT = 4
# Memory is set by this cache, not by how many invitations are open (BENCHMARKS.md): an
# evicted invitation parked on a timer costs nothing until its next event replays it.
MAX_CACHED_WORKFLOWS = 800
GRACEFUL_SHUTDOWN = timedelta(seconds=20)
WORKFLOWS_DIR = Path(__file__).resolve().parent / "workflows"
# Still sandboxed (workflow code is re-imported per run and checked for non-determinism), but
# the modules it shares with the rest of the process (our models and pure rules, pydantic) are
# passed through instead of being imported again for every invitation the worker loads.
WORKFLOW_RUNNER = SandboxedWorkflowRunner(
    restrictions=SandboxRestrictions.default.with_passthrough_modules(
        "invites", "activities", "pydantic", "pydantic_core", "annotated_types", "typing_extensions"
    )
)


@dataclass
class Activities:
    first_mail: FirstMailActivities
    mail: MailActivities
    grant: GrantActivities
    rollback: RollbackActivities
    provisioning: ProvisioningActivities
    crm: CrmActivities
    maintenance: MaintenanceActivities
    funnel: FunnelActivities


@contextlib.asynccontextmanager
async def build_activities(settings: Settings) -> AsyncIterator[Activities]:
    """Every outside client, built once for the worker's life and closed at the end."""
    engine = create_engine(settings.database_url)
    await upgrade(settings.database_url)
    store = Store(engine)
    async with httpx.AsyncClient(timeout=settings.auth0_timeout) as http:
        management = Auth0Management(settings, http)
        auth0 = Auth0Users(management)  # the grant and the rollback: a person may be waiting
        # Every call the Auth0 queue's activities make takes turns under the tenant's ceiling.
        queue = management.paced(CallPace(settings.max_task_queue_activities_per_second))
        lookups = LookupBatcher(queue, batch=settings.auth0_lookup_batch)
        mail = MailActivities(
            _mail_sender(settings),
            store,
            TokenSigner(settings.token_keyring),
            MailRenderer(settings.mail_from_name),
            settings.public_base_url,
        )
        try:
            yield Activities(
                first_mail=FirstMailActivities(lookups, mail),
                mail=mail,
                grant=GrantActivities(auth0, store),
                rollback=RollbackActivities(auth0, store),
                crm=CrmActivities(_crm_backend(settings, http)),
                maintenance=MaintenanceActivities(store),
                funnel=FunnelActivities(FunnelStore(store)),
                provisioning=ProvisioningActivities(
                    ProvisionedUsers(queue, settings.auth0_database_connection),
                    mail,
                    settings.provisioned_result_url,
                ),
            )
        finally:
            await lookups.aclose()
            store.close()
            await engine.dispose()


def _mail_sender(settings: Settings) -> MailSender:
    if settings.mail_backend == "outbox":
        return OutboxSender()
    key = settings.sendgrid_api_key.get_secret_value() if settings.sendgrid_api_key else ""
    return SendGridSender(
        SendGridAPIClient(api_key=key, host=settings.sendgrid_host),
        settings.mail_from,
        settings.mail_from_name,
        {"invite": settings.sendgrid_template_invite, "reminder": settings.sendgrid_template_reminder},
        keeps_content=settings.mail_outbox_copy,
    )


def _crm_backend(settings: Settings, http: httpx.AsyncClient) -> CrmBackend:
    if settings.crm_backend == "hubspot" and settings.hubspot_access_token:
        token = settings.hubspot_access_token.get_secret_value()
        # retry=0: urllib3 would retry on its own; Temporal owns retries (durable, visible).
        return HubSpotCrm(HubSpot(access_token=token, host=settings.hubspot_host, retry=Retry(total=0)))
    if settings.crm_backend == "webhook" and settings.events_url and settings.events_secret:
        return WebhookCrm(http, settings.events_url, settings.events_secret.get_secret_value())
    return NoCrm()


def build_workers(client: Client, settings: Settings, acts: Activities) -> list[Worker]:
    main = Worker(
        client,
        task_queue=settings.task_queue,
        workflows=[InvitationWorkflow, PurgeWebhookReceiptsWorkflow],
        workflow_runner=WORKFLOW_RUNNER,
        # The grant runs here, not on the Auth0 queue: a person waits for it at login, and it
        # must not queue behind a bulk import's look-ups.
        activities=[
            acts.mail.send_mail,
            acts.grant.grant_access,
            acts.rollback.roll_back_grant,
            acts.crm.publish_event,
            acts.maintenance.purge_webhook_receipts,
            acts.funnel.record_funnel,  # a local activity of the invitation workflow
        ],
        max_concurrent_activities=MAX_CONCURRENT_ACTIVITIES,
        max_cached_workflows=MAX_CACHED_WORKFLOWS,
        graceful_shutdown_timeout=GRACEFUL_SHUTDOWN,
    )
    auth0 = Worker(
        client,
        task_queue=auth0_task_queue(settings.task_queue),
        activities=[
            acts.first_mail.look_up_and_invite,
            # Provisioned invitations: their Auth0 calls are paced with the look-ups'.
            acts.provisioning.provision_and_invite,
            acts.provisioning.send_ticket_mail,
            acts.provisioning.remove_unused_account,
        ],
        max_concurrent_activities=LOOKUP_BATCHES_IN_FLIGHT * settings.auth0_lookup_batch,
        # The ceiling counts Auth0 calls, and a look-up call answers a batch: the server hands
        # out up to a full batch per call, across all workers; `CallPace` paces the calls.
        max_task_queue_activities_per_second=(
            settings.max_task_queue_activities_per_second * settings.auth0_lookup_batch
        ),
        graceful_shutdown_timeout=GRACEFUL_SHUTDOWN,
    )
    return [main, auth0]


async def run(settings: Settings | None = None) -> None:
    """Run until SIGINT/SIGTERM, then finish in-flight activities (graceful shutdown)."""
    settings = settings or get_settings()
    compile_workflow_modules(WORKFLOWS_DIR)
    install_runtime(settings)  # before the client: it and its workers report to this runtime
    client = await build_temporal_client(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with build_activities(settings) as acts:
        workers = build_workers(client, settings, acts)
        async with contextlib.AsyncExitStack() as stack:
            for w in workers:
                await stack.enter_async_context(w)
            await ensure_schedules(client, settings)
            log.info("worker started on task queue %s", settings.task_queue)
            await stop.wait()
            log.info("worker stopping")


def compile_workflow_modules(directory: Path) -> None:
    """Write the workflow modules' bytecode if it is missing or older than the source.

    The sandbox loads the workflow module afresh for every run it has not cached; without fresh
    bytecode (`PYTHONDONTWRITEBYTECODE`, or a source edited since) each load compiles the
    source, about a sixth of the worker's CPU in a bulk import. compileall writes it whatever
    that variable says. A read-only install (the image) has it from pip: nothing to write.
    """
    with contextlib.suppress(OSError):
        compileall.compile_dir(directory, quiet=2)


def purge_schedule_id(task_queue: str) -> str:
    return f"purge-webhook-receipts-{task_queue}"


async def ensure_schedules(client: Client, settings: Settings) -> None:
    """The worker's housekeeping as Temporal Schedules, created once (every worker tries; the
    first wins, the others find it). Ops pause, trigger or delete them in the Temporal UI."""
    schedule_id = purge_schedule_id(settings.task_queue)
    schedule = Schedule(
        action=ScheduleActionStartWorkflow(
            PurgeWebhookReceiptsWorkflow.run, id=schedule_id, task_queue=settings.task_queue
        ),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=PURGE_EVERY)]),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
    )
    with contextlib.suppress(ScheduleAlreadyRunningError):
        await client.create_schedule(schedule_id, schedule)


def main() -> None:
    settings = get_settings()
    configure_logging(settings)  # JSON lines in production; holds httpx & co. above their leaky levels
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        runner.run(run(settings))


if __name__ == "__main__":
    main()
