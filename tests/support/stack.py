"""A whole worker's surroundings for a test: the real wiring (`worker.build_activities`) pointed at
fresh fakes (Auth0, SendGrid, HubSpot on 127.0.0.1), a fresh SQLite store and its own task queue,
so tests never see each other's invitations."""

from __future__ import annotations

import asyncio
import contextlib
import re
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from invites import invitations
from invites.codec import build_data_converter
from invites.creation import workflow_input
from invites.db.engine import create_engine
from invites.db.migrate import upgrade
from invites.db.records import InvitationRecord
from invites.db.store import Store
from invites.ids import new_invitation_id
from invites.invitations import start_invitation
from invites.models import (
    EmailPolicy,
    InvitationState,
    Mode,
    RedeemInput,
    RedeemResult,
    RedeemUser,
)
from invites.settings import Settings
from invites.tokens import TokenSigner
from sandbox.auth0_api import Auth0Fake
from sandbox.hubspot_api import HubSpotFake
from sandbox.sendgrid_api import SendGridFake
from worker import build_activities, build_workers
from workflows.invitation import InvitationWorkflow

SENDGRID_KEY = "SG.test-key"
HUBSPOT_TOKEN = "pat-test-token"
PUBLIC_URL = "http://invites.test"
LINK = re.compile(re.escape(PUBLIC_URL) + r"/i/([A-Za-z0-9_-]+)")
DAY = timedelta(days=1)


@dataclass
class Stack:
    env: WorkflowEnvironment
    client: Client  # the env's client with the settings' data converter (payload codec if keyed)
    settings: Settings
    store: Store
    auth0: Auth0Fake
    sendgrid: SendGridFake
    hubspot: HubSpotFake
    handles: list[WorkflowHandle[Any, InvitationState]] = field(default_factory=list)

    @property
    def signer(self) -> TokenSigner:
        return TokenSigner(self.settings.token_keyring)

    async def now(self) -> datetime:
        return (await self.env.get_current_time()).astimezone(UTC)

    async def invite(
        self,
        email: str = "ada@example.com",
        *,
        roles: tuple[str, ...] = ("customer",),
        expires_in: timedelta = 14 * DAY,
        reminders: tuple[timedelta, ...] = (3 * DAY, 7 * DAY),
        email_policy: EmailPolicy = "match",
        app_metadata: dict[str, Any] | None = None,
        data: dict[str, Any] | None = None,
        external_ref: str | None = None,
        mode: Mode = "link",
    ) -> WorkflowHandle[Any, InvitationState]:
        """What the API does: store the funnel data, then start the workflow."""
        now = await self.now()
        inp = workflow_input(
            self.settings,
            invitation_id=new_invitation_id(),
            email=email,
            roles=list(roles),
            app_metadata=app_metadata,
            external_ref=external_ref,
            created_at=now,
            expires_at=now + expires_in,
            reminders=[int(r.total_seconds()) for r in reminders],
            email_policy=email_policy,
            mode=mode,
        )
        await self.store.save_invitation(
            InvitationRecord(
                id=inp.invitation_id,
                email=email.lower(),
                data=data or {"plan": "pro"},
                app_metadata=inp.app_metadata,
                request_hash="test",
                created_at=now,
                external_ref=external_ref,
                options={"roles": list(roles)},  # as the Creator keeps the request
            )
        )
        handle, _ = await start_invitation(self.client, self.settings.task_queue, inp)
        self.handles.append(handle)
        return handle

    async def state(self, handle: WorkflowHandle[Any, InvitationState]) -> InvitationState:
        return await handle.query(InvitationWorkflow.state)

    async def until(
        self,
        handle: WorkflowHandle[Any, InvitationState],
        predicate: Callable[[InvitationState], bool],
        timeout: float = 20,
    ) -> InvitationState:
        """Poll the `state` query (real time) until the predicate holds."""
        async with asyncio.timeout(timeout):
            while not predicate(state := await self.state(handle)):
                await asyncio.sleep(0.05)
        return state

    async def sent(self, handle: WorkflowHandle[Any, InvitationState], mails: int = 1) -> InvitationState:
        return await self.until(handle, lambda s: s.mails_sent >= mails)

    def links(self, email: str) -> list[str]:
        """Tokens in the mails SendGrid received for `email`, oldest first."""
        return [LINK.findall(mail.text)[0] for mail in self.sendgrid.messages_to(email)]

    async def redeem(
        self,
        handle: WorkflowHandle[Any, InvitationState],
        user: dict[str, Any] | RedeemUser,
        token: str | None = None,
    ) -> RedeemResult:
        """What the webhook does: verify the link's token, then `invites.invitations.redeem`
        (the update, typed rejections, the bounded wait for the grant, closed workflows)."""
        state = await invitations.get_state(handle._client, handle.id.removeprefix("invitation-"))
        link = self.signer.verify(token or self.links(state.email)[-1])
        assert link.invitation_id == state.invitation_id
        redeemer = user if isinstance(user, RedeemUser) else RedeemUser(**user)
        req = RedeemInput(generation=link.generation, user=redeemer)
        return await invitations.redeem(self.client, link.invitation_id, req)

    @contextlib.asynccontextmanager
    async def worker(self, *, keep_open: bool = False) -> AsyncIterator[None]:
        """The production workers; at the end the test's open invitations are terminated,
        unless `keep_open` (a later `worker()` carries on with them)."""
        async with build_activities(self.settings) as acts, contextlib.AsyncExitStack() as stack:
            for w in build_workers(self.client, self.settings, acts):
                await stack.enter_async_context(w)
            yield
            if not keep_open:
                # While the worker still runs: end what the test left open, with nothing mid-step.
                await terminate_open(self)


def stack_settings(
    tmp_path: Path, auth0_url: str, sendgrid_url: str, hubspot_url: str, **over: Any
) -> Settings:
    values: dict[str, Any] = {
        "database_url": f"sqlite+aiosqlite:///{tmp_path}/invites.db",
        "task_queue": f"invitations-{uuid.uuid4().hex[:8]}",
        "auth0_base_url": auth0_url,
        "auth0_audience": f"{auth0_url}/api/v2/",
        "mail_backend": "sendgrid",
        "sendgrid_api_key": SecretStr(SENDGRID_KEY),
        "sendgrid_host": sendgrid_url,
        "crm_backend": "hubspot",
        "hubspot_access_token": SecretStr(HUBSPOT_TOKEN),
        "hubspot_host": hubspot_url,
        "public_base_url": PUBLIC_URL,
        "max_task_queue_activities_per_second": 1000,
    }
    values.update(over)
    return Settings(_env_file=None, **values)


@contextlib.asynccontextmanager
async def open_stack(
    env: WorkflowEnvironment, tmp_path: Path, overrides: dict[str, Any]
) -> AsyncIterator[Stack]:
    """Fresh fakes and a migrated store around `env`; `overrides` change the settings."""
    auth0, sendgrid, hubspot = (
        Auth0Fake(),
        SendGridFake(api_key=SENDGRID_KEY),
        HubSpotFake(access_token=HUBSPOT_TOKEN),
    )
    async with auth0.serve() as auth0_url, sendgrid.serve() as sendgrid_url, hubspot.serve() as hubspot_url:
        settings = stack_settings(tmp_path, auth0_url, sendgrid_url, hubspot_url, **overrides)
        await upgrade(settings.database_url)
        engine = create_engine(settings.database_url)
        store = Store(engine)
        try:
            client = Client(**{**env.client.config(), "data_converter": build_data_converter(settings)})
            yield Stack(env, client, settings, store, auth0, sendgrid, hubspot)
        finally:
            store.close()
            await engine.dispose()


async def terminate_open(stack: Stack) -> None:
    """Leave no invitation running on the shared server: each test starts from a quiet clock.

    The time-skipping server does not skip time while an activity or workflow task is
    outstanding, even for a terminated workflow, so wait (briefly) for them to finish first.
    """
    for handle in stack.handles:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(5):
                while await _busy(handle):
                    await asyncio.sleep(0.05)
        if (await handle.describe()).status == WorkflowExecutionStatus.RUNNING:
            with contextlib.suppress(RPCError):  # it may complete between describe and terminate
                await handle.terminate("test finished")


async def _busy(handle: WorkflowHandle[Any, InvitationState]) -> bool:
    """Still starting (no mail out yet), with an activity or a workflow task in flight."""
    description = await handle.describe()
    if description.status != WorkflowExecutionStatus.RUNNING:
        return False
    raw = description.raw_description
    if raw.pending_activities or raw.HasField("pending_workflow_task"):
        return True
    state = await handle.query(InvitationWorkflow.state)
    return state.status == "pending" and state.mails_sent == 0
