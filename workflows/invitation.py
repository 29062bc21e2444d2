"""InvitationWorkflow: one invitation, from the first mail to accepted, expired, revoked or undeliverable.

The story (SPEC §3): look the address up and send the invitation → wait, sending reminders at
their offsets, until a login redeems it, it expires, or ops revoke it → grant access. Every
transition is published to the CRM aside, in order, so a CRM outage never holds the story.
Deterministic code only: time is `workflow.now()`, every side effect is an activity. To change
what a run does, see "Changing the workflow" in docs/design.md.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributePair, TypedSearchAttributes
from temporalio.exceptions import ActivityError, ApplicationError, FailureError

with workflow.unsafe.imports_passed_through():
    from activities.crm import CrmActivities
    from activities.first_mail import FirstMailActivities
    from activities.funnel import FunnelActivities
    from activities.grant import GrantActivities
    from activities.mail import MailActivities
    from activities.provisioning import ProvisioningActivities
    from activities.rollback import RollbackActivities
    from invites import temporal as names
    from invites.models import (
        DeliveryInput,
        ExtendInput,
        FunnelFact,
        FunnelStage,
        GrantInput,
        InvitationEvent,
        InvitationInput,
        InvitationState,
        MailInput,
        MailKind,
        OpenedInput,
        RedeemInput,
        RedeemResult,
        RemoveAccountInput,
        ResendInput,
        RevokeInput,
        RollbackGrantInput,
        RollbackInput,
        Status,
    )
    from invites.redemption import MESSAGES, extend_rejection, redeem_rejection, same_email

# Outside systems: retry forever with capped backoff (an invitation must not be lost to an
# outage); typed non-retryable errors end the attempt at once. 429s set their own delay.
AUTH0_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=5))
MAIL_RETRY = RetryPolicy(initial_interval=timedelta(seconds=5), maximum_interval=timedelta(minutes=15))
CRM_RETRY = RetryPolicy(initial_interval=timedelta(seconds=5), maximum_interval=timedelta(minutes=30))
AUTH0_TIMEOUT = timedelta(seconds=60)
# Auth0 activities heartbeat while they wait: a crashed worker's call is retried within seconds.
AUTH0_HEARTBEAT = timedelta(seconds=5)
MAIL_TIMEOUT = timedelta(seconds=60)
CRM_TIMEOUT = timedelta(seconds=60)
# The funnel record is a local activity on our own database: short, retried until it is written.
FUNNEL_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=1))
FUNNEL_TIMEOUT = timedelta(seconds=10)
FUNNEL_ENDINGS = ("accepted", "expired", "revoked", "undeliverable")


@workflow.defn(name=names.WORKFLOW_TYPE)
class InvitationWorkflow:
    @workflow.init
    def __init__(self, inp: InvitationInput) -> None:
        self._inp = inp
        self._state = (
            InvitationState.of_new(inp) if inp.rollback is None else inp.rollback.first_state(workflow.now())
        )
        self._resends: list[ResendInput] = []
        self._deadline_moved = False
        self._redeemer: RedeemInput | None = None
        self._first_sent_at: datetime | None = None
        self._timer: asyncio.Task[None] | None = None
        self._timer_deadline: datetime | None = None
        self._events: list[InvitationEvent] = []
        self._publisher: asyncio.Task[None] | None = None
        self._facts: list[FunnelFact] = []
        self._recorder: asyncio.Task[None] | None = None

    @workflow.run
    async def run(self, inp: InvitationInput) -> InvitationState:
        if inp.rollback is not None:
            return await self._roll_back(inp.rollback)
        self._emit("invitation.created")
        self._record("created", self._inp.created_at)
        if await self._invite():
            self._emit("invitation.sent")
            while self._state.status == Status.PENDING:
                await self._wait_for_next_moment()

        if self._timer is not None and not self._timer.done():
            # Ended by a message: the wait timer goes (a run that completes with a live timer
            # is legal, but Temporal's time-skipping test server then stalls its clock).
            self._timer.cancel()
        if self._state.status == Status.ACCEPTED:
            await self._grant()
        if self._provisioned_unused():
            await self._remove_unused_account()
        self._emit(f"invitation.{self._state.status.value}")
        if self._state.status.value in FUNNEL_ENDINGS:
            self._record(self._state.status.value, self._state.ended_at)  # type: ignore[arg-type]
        # Every transition reaches the CRM and the funnel before the run ends (and no handler
        # is left running).
        await workflow.wait_condition(
            lambda: not self._events and not self._facts and workflow.all_handlers_finished()
        )
        return self._state

    # --- inviting and waiting: the first mail, reminders, expiry, resends ----------------------

    async def _invite(self) -> bool:
        """Look the address up (sign-up or log-in) and send the invitation mail; False when the
        invitation ended first (revoked, or the mail refused for good). A provisioned invitation
        creates the account and mails its ticket instead, or falls back to the link."""
        provisioned = self._inp.mode == "provisioned"
        handle = workflow.start_activity_method(
            ProvisioningActivities.provision_and_invite
            if provisioned
            else FirstMailActivities.look_up_and_invite,
            self._mail_input("invite"),
            task_queue=names.auth0_task_queue(workflow.info().task_queue),
            start_to_close_timeout=AUTH0_TIMEOUT,
            heartbeat_timeout=AUTH0_HEARTBEAT,
            retry_policy=AUTH0_RETRY,
        )
        if not await self._unless_ended(handle):
            return False
        first = await handle  # a look-up that cannot succeed fails the run: ops see it
        if provisioned:
            self._state.mode, self._state.provisioned_user_id = first.mode, first.user_id
            first = first.first
        self._state.screen_hint = first.screen_hint
        if first.refused is not None:
            self._undeliverable(first.refused)
            return False
        if first.mail is None:
            return await self._send("invite")  # the mail's own retries, on the main queue
        self._sent(0)
        return True

    async def _wait_for_next_moment(self) -> None:
        reminder_at = self._next_reminder_at()
        deadline = min(t for t in (reminder_at, self._state.expires_at) if t is not None)
        self._deadline_moved = False
        if deadline > workflow.now():
            await self._wait_until(deadline)
        if self._state.status != Status.PENDING:
            return
        if self._resends:
            rotate = any(r.rotate for r in self._resends)
            self._resends.clear()
            if rotate:
                self._state.generation += 1  # older links now answer `stale_link`
            await self._send("invite")
        elif workflow.now() >= self._state.expires_at:
            self._end(Status.EXPIRED)
        elif reminder_at is not None and workflow.now() >= reminder_at and await self._send("reminder"):
            self._state.reminders_sent += 1
            self._emit("invitation.reminded")

    def _woken(self) -> bool:
        return self._state.status != Status.PENDING or bool(self._resends) or self._deadline_moved

    async def _wait_until(self, deadline: datetime) -> None:
        """Until `deadline` or a message. One timer per deadline: a resend keeps it, a moved
        deadline replaces it (the run cancels the last one when a message ends the invitation)."""
        timer = self._timer
        if timer is None or self._timer_deadline != deadline:
            if timer is not None and not timer.done():
                timer.cancel()
            timer = self._timer = asyncio.create_task(workflow.sleep(deadline - workflow.now()))
            self._timer_deadline = deadline
        await workflow.wait_condition(lambda: timer.done() or self._woken())

    def _next_reminder_at(self) -> datetime | None:
        offsets = self._inp.reminders[self._state.reminders_sent :]
        if not offsets or self._first_sent_at is None or self._state.reminders_stopped:
            return None
        at = self._first_sent_at + timedelta(seconds=offsets[0])
        return at if at < self._state.expires_at else None

    async def _send(self, kind: MailKind) -> bool:
        """Send one mail; False when it was not sent (ended meanwhile, or rejected for good)."""
        seq = self._state.mails_sent
        if self._state.provisioned_user_id is not None:
            # A fresh ticket in every mail: Auth0 makes it, so the Auth0 queue sends it.
            handle = workflow.start_activity_method(
                ProvisioningActivities.send_ticket_mail,
                self._mail_input(kind),
                task_queue=names.auth0_task_queue(workflow.info().task_queue),
                start_to_close_timeout=AUTH0_TIMEOUT,
                heartbeat_timeout=AUTH0_HEARTBEAT,
                retry_policy=MAIL_RETRY,
            )
        else:
            handle = workflow.start_activity_method(
                MailActivities.send_mail,
                self._mail_input(kind),
                start_to_close_timeout=MAIL_TIMEOUT,
                retry_policy=MAIL_RETRY,
            )
        if not await self._unless_ended(handle):
            return False
        try:
            await handle
        except ActivityError as err:
            if isinstance(err.cause, ApplicationError) and err.cause.non_retryable:
                self._undeliverable(err.cause.message)
                return False
            raise
        self._sent(seq)
        return True

    async def _unless_ended(self, handle: asyncio.Task[Any]) -> bool:
        """Wait for a mail's activity; a mail still retrying when the invitation ends (accepted,
        revoked) is cancelled, not sent: False."""
        await workflow.wait_condition(lambda: handle.done() or self._state.status != Status.PENDING)
        if not handle.done():
            handle.cancel()
            return False
        return True

    def _mail_input(self, kind: MailKind) -> MailInput:
        return MailInput(
            invitation_id=self._inp.invitation_id,
            email=self._inp.email,
            kind=kind,
            seq=self._state.mails_sent,
            generation=self._state.generation,
            locale=self._inp.locale,
            screen_hint=self._state.screen_hint,
            expires_at=self._state.expires_at,
            mode=self._state.mode,
            user_id=self._state.provisioned_user_id,
        )

    def _sent(self, seq: int) -> None:
        if seq == 0:
            self._first_sent_at = workflow.now()
        self._state.mails_sent += 1

    def _undeliverable(self, reason: str) -> None:
        self._state.undeliverable_reason = reason
        self._end(Status.UNDELIVERABLE)

    # --- granting access ----------------------------------------------------------------------

    async def _grant(self) -> None:
        """Roles, app_metadata, verified email and our account link, in one activity on the
        workflow's own queue (a person waits at login: never behind a bulk import's look-ups).
        Its completion in history is the redeem's answer (invites.invitations.redeem)."""
        req = self._redeemer
        if req is None:  # unreachable: acceptance always records its redeemer
            raise ApplicationError("accepted without a redeemer", type="InvariantViolated")
        try:
            result = await workflow.execute_activity_method(
                GrantActivities.grant_access,
                GrantInput(
                    invitation_id=self._inp.invitation_id,
                    user_id=req.user.user_id,
                    email=req.user.email,
                    accepted_at=self._state.accepted_at or workflow.now(),
                    roles=self._inp.roles,
                    app_metadata=self._inp.app_metadata,
                    verify_email=self._inp.email if self._verify_email(req) else None,
                    invites_marks=self._invites_marks(req),
                ),
                start_to_close_timeout=AUTH0_TIMEOUT,
                heartbeat_timeout=AUTH0_HEARTBEAT,
                retry_policy=AUTH0_RETRY,
            )
        except ActivityError as err:
            # Only non-retryable failures get here (a deleted user, an unknown role, a link held
            # by another account): ops decide.
            self._state.grant = "failed"
            self._state.grant_error = err.cause.message if isinstance(err.cause, FailureError) else str(err)
            workflow.logger.error("grant failed", extra={"invitation_id": self._inp.invitation_id})
            return
        self._state.grant = "done"
        self._state.roles_assigned = result.assigned

    async def _roll_back(self, inp: RollbackInput) -> InvitationState:
        """Undo an accepted invitation's grant (ops' `rollback`): this run starts `revoked`, so no
        redeem takes it again (the starter sets its search attributes so), removes what the grant
        wrote, and ends with the rollback done."""
        try:
            await workflow.execute_activity_method(
                RollbackActivities.roll_back_grant,
                RollbackGrantInput(
                    invitation_id=self._inp.invitation_id,
                    user_id=inp.accepted.accepted_by or "",
                    roles_assigned=inp.accepted.roles_assigned,
                    app_metadata=self._inp.app_metadata,
                ),
                start_to_close_timeout=AUTH0_TIMEOUT,
                heartbeat_timeout=AUTH0_HEARTBEAT,
                retry_policy=AUTH0_RETRY,
            )
        except ActivityError as err:
            # Only a final failure gets here (a role deleted from the tenant): ops decide.
            self._state.rollback = "failed"
            self._state.rollback_error = (
                err.cause.message if isinstance(err.cause, FailureError) else str(err)
            )
        else:
            self._state.rollback = "done"
            self._state.rolled_back_at = workflow.now()
        self._emit("invitation.rolled_back")
        await workflow.wait_condition(
            lambda: not self._events and not self._facts and workflow.all_handlers_finished()
        )
        return self._state

    def _invites_marks(self, req: RedeemInput) -> dict[str, str]:
        """What the grant sets in `app_metadata.invites`: the account this invitation provisioned
        is `active` now; a claim marks the account asked (the Action asks no more)."""
        marks: dict[str, str] = {}
        if req.user.user_id == self._state.provisioned_user_id:
            marks["status"] = "active"
        if req.via == "claim":
            marks["claimed_at"] = (self._state.accepted_at or workflow.now()).isoformat()
        return marks

    def _provisioned_unused(self) -> bool:
        """A provisioned invitation that ended without its account accepting it (expired,
        revoked, undeliverable, or claimed by another account). Not one that fell back to the
        link: the account it found is not ours."""
        return (
            self._inp.mode == "provisioned"
            and self._state.mode == "provisioned"
            and (
                self._state.accepted_by is None or self._state.accepted_by != self._state.provisioned_user_id
            )
        )

    async def _remove_unused_account(self) -> None:
        """Remove the account made ahead if nobody ever signed in to it (never one that did)."""
        try:
            await workflow.execute_activity_method(
                ProvisioningActivities.remove_unused_account,
                RemoveAccountInput(
                    invitation_id=self._inp.invitation_id,
                    email=self._inp.email,
                    user_id=self._state.provisioned_user_id,
                ),
                task_queue=names.auth0_task_queue(workflow.info().task_queue),
                start_to_close_timeout=AUTH0_TIMEOUT,
                heartbeat_timeout=AUTH0_HEARTBEAT,
                retry_policy=AUTH0_RETRY,
            )
        except ActivityError as err:
            # Refused for good (Auth0 refuses the delete): the account stays; ops see why.
            cause = err.cause.message if isinstance(err.cause, FailureError) else str(err)
            workflow.logger.warning(
                "pre-created account not removed",
                extra={"invitation_id": self._inp.invitation_id, "error": cause},
            )

    def _verify_email(self, req: RedeemInput) -> bool:
        """The invitation mail proved the person reads the invited address: mark it verified when
        the account signed in with that address unverified."""
        return same_email(req.user.email, self._inp.email) and not req.user.email_verified

    # --- messages -----------------------------------------------------------------------------

    @workflow.query
    def state(self) -> InvitationState:
        return self._state

    @workflow.update
    def redeem(self, req: RedeemInput) -> RedeemResult:
        """Accept for the logged-in user and answer at once (`grant: pending`); the caller waits
        for the grant itself, following the run's history (invites.invitations.redeem). A
        retried redeem by the user who accepted gets the same answer, with the grant's state."""
        if self._state.status == Status.PENDING:
            self._redeemer = req
            self._state.accepted_by = req.user.user_id
            self._state.accepted_at = workflow.now()
            self._state.grant = "pending"
            self._end(Status.ACCEPTED)
        else:
            # Redeems validated in one workflow task all saw `pending`; the first handler took
            # it. The others get the answer their validator would give now.
            self._reject_redeem(req)
        return RedeemResult(
            invitation_id=self._inp.invitation_id, roles=self._inp.roles, grant=self._state.grant or "pending"
        )

    @redeem.validator
    def _validate_redeem(self, req: RedeemInput) -> None:
        # Rejected here, the update never reaches history: a wrong account changes nothing.
        self._reject_redeem(req)

    def _reject_redeem(self, req: RedeemInput) -> None:
        reason = redeem_rejection(self._state, req, workflow.now())
        if reason is not None:
            raise ApplicationError(MESSAGES[reason], type=reason.value, non_retryable=True)

    @workflow.update
    def extend(self, inp: ExtendInput) -> InvitationState:
        """Move the expiry (while pending). The wait loop re-arms its timer."""
        self._state.expires_at = inp.expires_at
        self._deadline_moved = True
        self._publish_search_attributes()
        return self._state

    @extend.validator
    def _validate_extend(self, inp: ExtendInput) -> None:
        reason = extend_rejection(self._state, inp.expires_at, workflow.now())
        if reason is not None:
            raise ApplicationError(MESSAGES[reason], type=reason.value, non_retryable=True)

    @workflow.signal
    def revoke(self, inp: RevokeInput) -> None:
        # A signal handler cannot answer; revoking an ended invitation is simply ignored.
        if self._state.status == Status.PENDING:
            self._state.revoked_reason = inp.reason or None
            self._end(Status.REVOKED)

    @workflow.signal
    def resend(self, inp: ResendInput) -> None:
        if self._state.status == Status.PENDING:
            self._resends.append(inp)

    @workflow.signal
    def delivery(self, inp: DeliveryInput) -> None:
        """A SendGrid event about one of the mails (api/routes/sendgrid_events.py). Each effect
        happens once, so a repeated event changes nothing."""
        if inp.event == "delivered":
            if self._state.delivered_at is None:
                self._state.delivered_at = inp.at
                self._record("delivered", inp.at)
        elif self._state.status != Status.PENDING:
            return  # an ended invitation stays as it ended
        elif inp.event in ("bounce", "dropped"):
            self._undeliverable(inp.reason or f"SendGrid reported the mail {inp.event}")
        elif self._state.reminders_stopped is None:  # spamreport, unsubscribe: still valid
            self._state.reminders_stopped = inp.event
            self._deadline_moved = True  # the wait re-arms for the expiry alone

    @workflow.signal
    def opened(self, inp: OpenedInput) -> None:
        """The link was opened (GET /i/{token}); the first opening counts. It uses nothing up."""
        if self._state.opened_at is None:
            self._state.opened_at = inp.at
            self._record("opened", inp.at)

    # --- bookkeeping: search attributes and CRM events ------------------------------------------

    def _end(self, status: Status) -> None:
        self._state.status = status
        self._state.ended_at = workflow.now()
        self._publish_search_attributes()

    def _publish_search_attributes(self) -> None:
        """The start sets them; every transition and extension keeps them current."""
        pairs = [
            SearchAttributePair(names.STATUS, self._state.status.value),
            SearchAttributePair(names.EMAIL, self._inp.email_search_value),
            SearchAttributePair(names.EXPIRES_AT, self._state.expires_at),
        ]
        if self._inp.external_ref:
            pairs.append(SearchAttributePair(names.REF, self._inp.external_ref))
        workflow.upsert_search_attributes(TypedSearchAttributes(pairs))

    def _record(self, stage: FunnelStage, at: datetime | None) -> None:
        """Queue a funnel stage for our database (GET /v1/stats/funnel); the story goes on."""
        self._facts.append(
            FunnelFact(
                invitation_id=self._inp.invitation_id,
                stage=stage,
                at=at or workflow.now(),
                created_at=self._inp.created_at,
                source=self._inp.source,
                campaign=self._inp.campaign,
            )
        )
        if self._recorder is None or self._recorder.done():
            self._recorder = asyncio.create_task(self._record_in_order())

    async def _record_in_order(self) -> None:
        """One local activity per stage (a marker in history), each retried until written."""
        while self._facts:
            await workflow.execute_local_activity_method(
                FunnelActivities.record_funnel,
                self._facts[0],
                start_to_close_timeout=FUNNEL_TIMEOUT,
                retry_policy=FUNNEL_RETRY,
            )
            self._facts.pop(0)

    def _emit(self, event_type: str) -> None:
        """Queue a transition for the CRM; the story goes on at once."""
        if not self._inp.publish_events:
            return  # no CRM or events sink configured: no activity, no history events
        self._events.append(self._event(event_type))
        if self._publisher is None or self._publisher.done():
            self._publisher = asyncio.create_task(self._publish_in_order())

    async def _publish_in_order(self) -> None:
        """One event at a time, oldest first (a CRM upsert of an older status must not land after
        a newer one), each retried until the CRM takes it or refuses it for good."""
        while self._events:
            event = self._events[0]
            try:
                await workflow.execute_activity_method(
                    CrmActivities.publish_event,
                    event,
                    start_to_close_timeout=CRM_TIMEOUT,
                    retry_policy=CRM_RETRY,
                )
            except ActivityError as err:
                # Refused for good (an event the CRM rejects): the invitation goes on. The failed
                # attempt stays in history for ops.
                cause = err.cause.message if isinstance(err.cause, FailureError) else str(err)
                workflow.logger.warning(
                    "CRM refused an event",
                    extra={"invitation_id": event.invitation_id, "event": event.type, "error": cause},
                )
            self._events.pop(0)

    def _event(self, event_type: str) -> InvitationEvent:
        s = self._state
        return InvitationEvent(
            type=event_type,
            invitation_id=s.invitation_id,
            email=s.email,
            status=s.status,
            occurred_at=workflow.now(),
            roles=s.roles,
            external_ref=s.external_ref,
            crm_contact_id=self._inp.crm_contact_id,
            user_id=s.accepted_by,
            expires_at=s.expires_at,
            accepted_at=s.accepted_at,
            reminders_sent=s.reminders_sent,
            delivered_at=s.delivered_at,
            opened_at=s.opened_at,
        )
