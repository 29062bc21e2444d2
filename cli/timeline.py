"""An invitation's story, read back from its workflow history (`invites show`).

From the history: the start (created), the account look-up and first mail (`look_up_and_invite`),
each later mail (`send_mail`: resent, reminded, or the first mail's retry) and each failed one,
the signals and updates (revoke, resend, redeem, extend), the grant (`grant_access`: roles,
profile, account link) and how the run closed; a CRM publication (`publish_event`) shows only
when it fails. The end of a pending invitation that no message caused (expired at its timer,
undeliverable) comes from the state's `ended_at`. An activity failing right now shows as
`retrying`. Payloads are decoded with the client's data converter, so an encrypted history reads
the same to whoever holds the keys.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from temporalio.api.enums.v1 import EventType, PendingActivityState
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError

from invites.ids import workflow_id
from invites.models import (
    ExtendInput,
    FirstInviteResult,
    GrantResult,
    InvitationInput,
    InvitationState,
    MailInput,
    ProvisionResult,
    RedeemInput,
    ResendInput,
    RevokeInput,
    RollbackGrantResult,
    Status,
)
from invites.temporal import ROLLBACK_ACTIVITY

# Activity names as the worker registers them (read here as names, without the activity code).
FIRST_INVITE, SEND_MAIL, GRANT_ACCESS = "look_up_and_invite", "send_mail", "grant_access"
# A provisioned invitation's first step, its later mails (each a fresh ticket), its clean-up.
PROVISION, TICKET_MAIL, REMOVE_ACCOUNT = "provision_and_invite", "send_ticket_mail", "remove_unused_account"
MAILS = (SEND_MAIL, TICKET_MAIL)
CLOSED = {
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED: "closed",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED: "failed",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT: "timed out",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED: "canceled",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED: "terminated",
}
# Ends no message caused, so no history event names them: read from the state.
ENDED_ON_ITS_OWN = (Status.EXPIRED, Status.UNDELIVERABLE)
_E = EventType


@dataclass(frozen=True)
class Moment:
    at: datetime
    event: str
    detail: str = ""


async def timeline(client: Client, state: InvitationState) -> list[Moment]:
    """The invitation's moments, oldest first (`state`: its current state, from `get_state`)."""
    handle = client.get_workflow_handle(workflow_id(state.invitation_id))
    moments: list[Moment] = []
    if state.rollback is not None:
        # A rolled-back invitation's story starts in the accepted run its rollback superseded.
        for run_id in await _earlier_runs(client, handle.id, handle):
            earlier = _Reader(client, Status.ACCEPTED)
            async for event in client.get_workflow_handle(handle.id, run_id=run_id).fetch_history_events():
                await earlier.read(event)
            moments += earlier.moments
    reader = _Reader(client, state.status)
    async for event in handle.fetch_history_events():
        await reader.read(event)
    reader.moments[:0] = moments
    if state.ended_at and state.status in ENDED_ON_ITS_OWN:
        reason = state.undeliverable_reason if state.status == Status.UNDELIVERABLE else ""
        reader.moments.append(Moment(state.ended_at, state.status.value, reason or ""))
    with contextlib.suppress(RPCError):
        description = await handle.describe()
        if description.status == WorkflowExecutionStatus.RUNNING:
            await reader.pending(description.raw_description.pending_activities)
    return sorted(reader.moments, key=lambda m: m.at)


async def _earlier_runs(client: Client, workflow: str, latest: Any) -> list[str]:
    """The run ids before the latest one under `workflow`, oldest first (from visibility)."""
    with contextlib.suppress(RPCError):
        current = (await latest.describe()).run_id
        runs = [e async for e in client.list_workflows(f'WorkflowId="{workflow}"')]
        return [e.run_id for e in sorted(runs, key=lambda e: e.start_time) if e.run_id != current]
    return []


class _Reader:
    def __init__(self, client: Client, status: Status) -> None:
        self._client = client
        self._status = status
        self._scheduled: dict[int, tuple[str, Any]] = {}  # event id -> (activity, decoded input)
        self._ended = False  # by a message read so far (the first accepted redeem, or revoke)
        self.moments: list[Moment] = []

    def _add(self, event: HistoryEvent, what: str, detail: str = "") -> None:
        self.moments.append(Moment(event.event_time.ToDatetime(tzinfo=UTC), what, detail))

    async def _decode(self, payloads: Any, hint: type) -> Any:
        """The first payload as `hint`, or None when it cannot be read (say, a key not held here)."""
        try:
            values = await self._client.data_converter.decode_wrapper(payloads, [hint])
        except Exception:
            return None
        return values[0] if values else None

    async def _failure(self, failure: Any) -> str:
        try:
            return str(await self._client.data_converter.decode_failure(failure))
        except Exception:
            return failure.message

    async def read(self, event: HistoryEvent) -> None:
        kind = event.event_type
        if kind == _E.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
            await self._started(event)
        elif kind == _E.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            await self._activity_scheduled(event)
        elif kind == _E.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            await self._activity_completed(event)
        elif kind in (_E.EVENT_TYPE_ACTIVITY_TASK_FAILED, _E.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT):
            attrs = (
                event.activity_task_failed_event_attributes
                if kind == _E.EVENT_TYPE_ACTIVITY_TASK_FAILED
                else event.activity_task_timed_out_event_attributes
            )
            name, _ = self._scheduled.get(attrs.scheduled_event_id, ("activity", None))
            what = "mail failed" if name == SEND_MAIL else f"{name} failed"
            self._add(event, what, await self._failure(attrs.failure))
        elif kind == _E.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
            await self._signaled(event)
        elif kind == _E.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
            await self._update(event)
        elif kind in CLOSED:
            detail = ""
            if kind == _E.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED:
                detail = event.workflow_execution_terminated_event_attributes.reason
            elif kind == _E.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED:
                final = await self._decode(
                    event.workflow_execution_completed_event_attributes.result, InvitationState
                )
                detail = final.status.value if final else ""
            elif kind == _E.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED:
                detail = await self._failure(event.workflow_execution_failed_event_attributes.failure)
            self._add(event, CLOSED[kind], detail)

    async def _started(self, event: HistoryEvent) -> None:
        inp = await self._decode(event.workflow_execution_started_event_attributes.input, InvitationInput)
        if inp is None:
            self._add(event, "created")
            return
        if inp.rollback is not None:
            self._add(event, "rollback requested", inp.rollback.reason)
            return
        parts = [f"roles {', '.join(inp.roles)}" if inp.roles else "no roles"]
        parts.append(f"expires {_when(inp.expires_at)}")
        if inp.external_ref:
            parts.append(f"ref {inp.external_ref}")
        if inp.reissued_from:
            parts.append(f"reissue of {inp.reissued_from}")
        self._add(event, "created", "; ".join(parts))

    async def _activity_scheduled(self, event: HistoryEvent) -> None:
        attrs = event.activity_task_scheduled_event_attributes
        name = attrs.activity_type.name
        decoded = await self._decode(attrs.input, MailInput) if name in MAILS else None
        self._scheduled[event.event_id] = (name, decoded)

    async def _activity_completed(self, event: HistoryEvent) -> None:
        attrs = event.activity_task_completed_event_attributes
        name, inp = self._scheduled.get(attrs.scheduled_event_id, ("", None))
        if name in MAILS and isinstance(inp, MailInput):
            if inp.kind == "reminder":
                self._add(event, "reminded", f"reminder mail (mail #{inp.seq + 1})")
            elif inp.seq == 0:
                self._add(event, "sent", "invitation mail")
            else:
                self._add(
                    event, "resent", f"invitation mail #{inp.seq + 1}, link generation {inp.generation}"
                )
        elif name == FIRST_INVITE:
            self._first_mail(event, await self._decode(attrs.result, FirstInviteResult))
        elif name == PROVISION:
            provisioned = await self._decode(attrs.result, ProvisionResult)
            if provisioned is not None and provisioned.mode == "provisioned":
                self._add(event, "account made ahead", f"{provisioned.user_id}; the mail carries a ticket")
                self._first_mail(event, provisioned.first, TICKET_MAIL, looked_up=False)
            elif provisioned is not None:
                self._add(event, "looked up", "existing account: the link instead of an account made ahead")
                self._first_mail(event, provisioned.first, looked_up=False)
        elif name == REMOVE_ACCOUNT:
            outcome = await self._decode(attrs.result, str)
            detail = "removed: never used" if outcome == "removed" else (outcome or "")
            self._add(event, "account made ahead", detail)
        elif name == GRANT_ACCESS:
            await self._granted(event, attrs.result)
        elif name == ROLLBACK_ACTIVITY:
            undone = await self._decode(attrs.result, RollbackGrantResult)
            if undone is None:
                self._add(event, "rolled back")
                return
            parts = [f"removed {', '.join(undone.removed)}" if undone.removed else "no roles removed"]
            if undone.kept:
                parts.append(f"kept {', '.join(undone.kept)} (another invitation grants them)")
            parts.append("account unlinked" if undone.unlinked else "no account link")
            self._add(event, "rolled back", "; ".join(parts))

    def _first_mail(
        self,
        event: HistoryEvent,
        first: FirstInviteResult | None,
        retry: str = SEND_MAIL,
        looked_up: bool = True,
    ) -> None:
        """The first mail's outcome (`look_up_and_invite`, or `provision_and_invite`'s)."""
        if first is None:
            return
        if looked_up:
            self._add(event, "looked up", _hint(first.screen_hint))
        if first.mail is not None:
            self._add(event, "sent", "invitation mail")
        elif first.refused is not None:
            self._add(event, "mail failed", first.refused)
        else:
            self._add(event, "mail failed", f"{first.failed}; retried as {retry}")

    async def _granted(self, event: HistoryEvent, result: Any) -> None:
        """The grant's three parts, each a moment of its own (they run in one activity)."""
        granted = await self._decode(result, GrantResult)
        if granted is None:
            self._add(event, "access granted", "roles, profile and account link")
            return
        held = f"already held: {', '.join(granted.already_had)}" if granted.already_had else ""
        self._add(event, "roles assigned", held)
        profile = "app_metadata, email verified" if granted.email_verified else "app_metadata"
        self._add(event, "profile updated", profile)
        self._add(event, "account linked")

    async def _signaled(self, event: HistoryEvent) -> None:
        attrs = event.workflow_execution_signaled_event_attributes
        if attrs.signal_name == "revoke":
            revoke = await self._decode(attrs.input, RevokeInput)
            reason = revoke.reason if revoke else ""
            # The workflow applies a revoke only while pending: the first one, if it ended revoked.
            if self._status == Status.REVOKED and not self._ended:
                self._ended = True
                self._add(event, "revoked", reason)
            elif self._status == Status.PENDING:
                self._add(event, "revoke requested", reason)
            else:
                self._add(event, "revoke ignored", "the invitation had ended")
        elif attrs.signal_name == "resend":
            resend = await self._decode(attrs.input, ResendInput)
            self._add(
                event, "resend requested", "new link (older ones stale)" if resend and resend.rotate else ""
            )
        else:
            self._add(event, f"signal {attrs.signal_name}")

    async def _update(self, event: HistoryEvent) -> None:
        request = event.workflow_execution_update_accepted_event_attributes.accepted_request.input
        if request.name == "redeem":
            # Only a redeem its validator let through is in history: the first one accepts.
            redeem = await self._decode(request.args, RedeemInput)
            who = f"by {redeem.user.user_id}" if redeem else ""
            if self._status == Status.ACCEPTED and not self._ended:
                self._ended = True
                self._add(event, "accepted", who)
            else:
                self._add(event, "redeem repeated", who)
        elif request.name == "extend":
            ext = await self._decode(request.args, ExtendInput)
            self._add(event, "extended", f"now expires {_when(ext.expires_at)}" if ext else "")
        else:
            self._add(event, f"update {request.name}")

    async def pending(self, activities: Any) -> None:
        """An activity failing now shows as `retrying` with its attempt and last error."""
        for info in activities:
            if info.attempt <= 1 and not info.HasField("last_failure"):
                continue
            if info.HasField("last_attempt_complete_time"):
                at = info.last_attempt_complete_time.ToDatetime(tzinfo=UTC)
            else:
                at = info.scheduled_time.ToDatetime(tzinfo=UTC)
            state = "" if info.state != PendingActivityState.PENDING_ACTIVITY_STATE_STARTED else " (running)"
            error = await self._failure(info.last_failure) if info.HasField("last_failure") else ""
            detail = f"{info.activity_type.name} attempt {info.attempt}{state}"
            self.moments.append(Moment(at, "retrying", f"{detail}: {error}" if error else detail))


def _hint(screen_hint: str) -> str:
    return "existing account: login" if screen_hint == "login" else "no account yet: sign-up"


def _when(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
