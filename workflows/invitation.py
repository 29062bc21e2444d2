"""InvitationWorkflow: one invitation, from the first mail to accepted, expired, revoked or undeliverable.

The story (SPEC §3): look up existing accounts → send the invitation → wait, sending reminders
at their offsets, until a login redeems it, it expires, or ops revoke it → grant access.
Deterministic code only: time is `workflow.now()`, every side effect is an activity.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributePair, TypedSearchAttributes
from temporalio.exceptions import ActivityError, ApplicationError, FailureError

with workflow.unsafe.imports_passed_through():
    from activities.auth0 import Auth0Activities
    from activities.crm import CrmActivities
    from activities.first_mail import FirstMailActivities
    from activities.grant import GrantActivities
    from activities.mail import MailActivities
    from activities.store import StoreActivities
    from invites import temporal as names
    from invites.models import (
        AssignRolesInput,
        ExtendInput,
        GrantInput,
        InvitationEvent,
        InvitationInput,
        InvitationState,
        LinkAccountInput,
        LookupInput,
        MailInput,
        MailKind,
        MergeMetadataInput,
        RedeemInput,
        RedeemResult,
        ResendInput,
        RevokeInput,
        Status,
        UpdateProfileInput,
        VerifyEmailInput,
    )
    from invites.redemption import MESSAGES, extend_rejection, redeem_rejection

# Version 1 only: the redeem update itself waits this long for the grant (a timer in history).
# From version 2 the caller bounds its wait instead (invites.invitations.redeem).
GRANT_WAIT = timedelta(seconds=3)

# Outside systems: retry forever with capped backoff (an invitation must not be lost to an
# outage); typed non-retryable errors end the attempt at once. 429s set their own delay.
AUTH0_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=5))
MAIL_RETRY = RetryPolicy(initial_interval=timedelta(seconds=5), maximum_interval=timedelta(minutes=15))
CRM_RETRY = RetryPolicy(initial_interval=timedelta(seconds=5), maximum_interval=timedelta(minutes=30))
STORE_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=1))

AUTH0_TIMEOUT = timedelta(seconds=60)
# Versions. A change to the commands a run issues must not reach runs started before it, or
# their histories stop replaying. Two mechanisms, both kept while such runs may be open:
# - workflow.patched: GRANT_IN_PARALLEL, within version 1 (costs a marker and a search-attribute
#   upsert in every new history);
# - InvitationInput.version, chosen by the starter and so fixed for the run at no history cost:
#   1: everything below under `not self._lean`;
#   2 (LEAN): the start's search attributes are not upserted again; the wait loop's timer is
#     kept across resends (a new one only when the deadline moves); the
#     redeem update answers at acceptance (the caller waits for the grant by the run's end)
#     instead of holding a timer; the account link is a local activity; the Auth0 grant
#     activities run on the workflow's own queue (dispatched eagerly with the workflow task, and
#     never queued behind a bulk import's look-ups, which keep the rate-limited Auth0 queue).
#   3 (ONE_PROFILE_WRITE): the app_metadata merge and the email verification are one activity
#     (`update_profile`: one read and one PATCH to Auth0 instead of two of each; three events
#     fewer in history).
#   4 (ONE_GRANT_CALL): the roles, the profile write and the account link are one activity
#     (`grant_access`, activities/grant.py): the run ends one workflow task after the grant
#     instead of two (four to seven events and two billable actions fewer; a shorter wait at
#     login).
#   5 (LOOKUP_WITH_FIRST_MAIL): the look-up and the first mail are one activity on the Auth0
#     queue (`look_up_and_invite`, activities/first_mail.py); a mail that fails there is retried
#     as `send_mail` on the main queue (six events and one billable action fewer).
#   6 (EVENTS_ASIDE): the transitions are published to the CRM by a publisher of their own, in
#     order, while the story goes on: before, each was awaited where it happened, so a CRM
#     outage held the first mail, the wait and the grant until it passed, and a CRM refusing an
#     event for good failed the invitation. Now a refused event is logged and skipped. Without a
#     CRM (`publish_events` false) versions 5 and 6 issue the same commands.
GRANT_IN_PARALLEL = "grant-in-parallel-v1"
LEAN = 2
ONE_PROFILE_WRITE = 3
ONE_GRANT_CALL = 4
LOOKUP_WITH_FIRST_MAIL = 5
EVENTS_ASIDE = 6
LATEST_VERSION = EVENTS_ASIDE
# Auth0 activities heartbeat while they wait: a crashed worker's call is retried within seconds.
AUTH0_HEARTBEAT = timedelta(seconds=5)
MAIL_TIMEOUT = timedelta(seconds=60)
CRM_TIMEOUT = timedelta(seconds=60)
STORE_TIMEOUT = timedelta(seconds=30)
LINK_LOCAL_RETRIES = timedelta(seconds=2)


@workflow.defn(name=names.WORKFLOW_TYPE)
class InvitationWorkflow:
    @workflow.init
    def __init__(self, inp: InvitationInput) -> None:
        self._inp = inp
        self._state = InvitationState.of_new(inp)
        self._resends: list[ResendInput] = []
        self._deadline_moved = False
        self._redeemer: RedeemInput | None = None
        self._first_sent_at: datetime | None = None
        self._lean = inp.version >= LEAN
        self._timer: asyncio.Task[None] | None = None
        self._timer_deadline: datetime | None = None
        self._events: list[InvitationEvent] = []  # version 6: published in order, aside
        self._publisher: asyncio.Task[None] | None = None

    @workflow.run
    async def run(self, inp: InvitationInput) -> InvitationState:
        if inp.version > LATEST_VERSION:
            # Not an ApplicationError: the workflow task fails and is retried until a worker
            # that knows this version picks it up (deploy workers before starters).
            raise RuntimeError(f"invitation version {inp.version} is newer than this worker")
        if not self._lean:
            self._publish_search_attributes()  # the start already set them (version 2 skips this)
        await self._emit("invitation.created")
        if await self._invite():
            await self._emit("invitation.sent")
            while self._state.status == Status.PENDING:
                await self._wait_for_next_moment()

        if self._timer is not None and not self._timer.done():
            # Ended by a message: the wait timer goes (a run that completes with a live timer
            # is legal, but Temporal's time-skipping test server then stalls its clock).
            self._timer.cancel()
        if self._state.status == Status.ACCEPTED:
            await self._grant()
        await self._emit(f"invitation.{self._state.status.value}")
        # Every transition reaches the CRM before the run ends (version 6 publishes aside).
        await workflow.wait_condition(lambda: not self._events)
        # Let in-flight updates (a redeem waiting for its grant) reply before the run ends.
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self._state

    # --- waiting: reminders, expiry, resends ----------------------------------------------

    async def _wait_for_next_moment(self) -> None:
        reminder_at = self._next_reminder_at()
        deadline = min(t for t in (reminder_at, self._state.expires_at) if t is not None)
        self._deadline_moved = False
        if deadline > workflow.now():
            if self._lean:
                await self._wait_until(deadline)
            else:
                with contextlib.suppress(TimeoutError):
                    await workflow.wait_condition(self._woken, timeout=deadline - workflow.now())
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
            await self._emit("invitation.reminded")

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
        if not offsets or self._first_sent_at is None:
            return None
        at = self._first_sent_at + timedelta(seconds=offsets[0])
        return at if at < self._state.expires_at else None

    async def _invite(self) -> bool:
        """Look the address up (sign-up or log-in), then send the invitation mail."""
        auth0_queue = names.auth0_task_queue(workflow.info().task_queue)
        if self._inp.version < LOOKUP_WITH_FIRST_MAIL:
            lookup = await workflow.execute_activity_method(
                Auth0Activities.find_users_by_email,
                LookupInput(email=self._inp.email),
                task_queue=auth0_queue,
                start_to_close_timeout=AUTH0_TIMEOUT,
                heartbeat_timeout=AUTH0_HEARTBEAT,
                retry_policy=AUTH0_RETRY,
            )
            self._state.screen_hint = "login" if lookup.user_ids else "signup"
            return await self._send("invite")
        handle = workflow.start_activity_method(
            FirstMailActivities.look_up_and_invite,
            self._mail_input("invite"),
            task_queue=auth0_queue,
            start_to_close_timeout=AUTH0_TIMEOUT,
            heartbeat_timeout=AUTH0_HEARTBEAT,
            retry_policy=AUTH0_RETRY,
        )
        if not await self._unless_ended(handle):
            return False
        first = await handle  # a look-up that cannot succeed fails the run, as it always did
        self._state.screen_hint = first.screen_hint
        if first.refused is not None:
            self._undeliverable(first.refused)
            return False
        if first.mail is None:
            return await self._send("invite")  # the mail's own retries, on the main queue
        self._sent(0)
        return True

    async def _send(self, kind: MailKind) -> bool:
        """Send one mail; False when it was not sent (ended meanwhile, or rejected for good)."""
        seq = self._state.mails_sent
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
        )

    def _sent(self, seq: int) -> None:
        if seq == 0:
            self._first_sent_at = workflow.now()
        self._state.mails_sent += 1

    def _undeliverable(self, reason: str) -> None:
        self._state.undeliverable_reason = reason
        self._end(Status.UNDELIVERABLE)

    # --- granting access --------------------------------------------------------------------

    async def _grant(self) -> None:
        """Roles, app_metadata, verified email and our link (one activity from version 4; before,
        each its own activity and retries)."""
        req = self._redeemer
        if req is None:  # unreachable: acceptance always records its redeemer
            raise ApplicationError("accepted without a redeemer", type="InvariantViolated")
        accepted_at = self._state.accepted_at or workflow.now()
        link = LinkAccountInput(
            invitation_id=self._inp.invitation_id,
            user_id=req.user.user_id,
            email=req.user.email,
            accepted_at=accepted_at,
        )
        try:
            if self._inp.version >= ONE_GRANT_CALL:
                await self._grant_in_one_call(req, accepted_at, link)
            elif self._lean:
                await self._grant_lean(self._auth0_steps(req, accepted_at), link)
            else:
                await asyncio.gather(
                    self._grant_in_auth0_v1(self._auth0_steps(req, accepted_at)),
                    workflow.execute_activity_method(
                        StoreActivities.link_account,
                        link,
                        start_to_close_timeout=STORE_TIMEOUT,
                        retry_policy=STORE_RETRY,
                    ),
                )
        except (ActivityError, ApplicationError) as err:
            # Only non-retryable failures get here (a deleted user, an unknown role, a link held
            # by another account): ops decide. A local activity's failure arrives unwrapped.
            cause = err.cause if isinstance(err, ActivityError) and err.cause else err
            self._state.grant = "failed"
            self._state.grant_error = str(cause.message if isinstance(cause, FailureError) else cause)
            workflow.logger.error("grant failed", extra={"invitation_id": self._inp.invitation_id})
            return
        self._state.grant = "done"

    async def _grant_in_one_call(
        self, req: RedeemInput, accepted_at: datetime, link: LinkAccountInput
    ) -> None:
        """Version 4: one activity on the workflow's queue, scheduled by the accepting task (so the
        acceptance is in history before the link is written)."""
        roles = AssignRolesInput(user_id=req.user.user_id, roles=self._inp.roles) if self._inp.roles else None
        await workflow.execute_activity_method(
            GrantActivities.grant_access,
            GrantInput(roles=roles, profile=self._profile_input(req, accepted_at), link=link),
            start_to_close_timeout=AUTH0_TIMEOUT,
            heartbeat_timeout=AUTH0_HEARTBEAT,
            retry_policy=AUTH0_RETRY,
        )

    async def _grant_lean(self, steps: list[tuple[Any, Any]], link: LinkAccountInput) -> None:
        """Version 2: the Auth0 calls on the workflow's queue, then the link as a local activity.

        The link waits until a first Auth0 call has finished, so that the acceptance is in
        history: a local activity runs inside a workflow task, before that task's decisions are
        recorded, and a task can be lost (failed, or replaced when more updates arrive). Started
        in the accepting task, the link could record a user whose acceptance never lands while
        another redeem wins. One marker in history instead of three events and a workflow task.
        Every step runs to its end before a failure is reported.
        """
        calls = [
            workflow.start_activity_method(
                fn,
                arg,
                start_to_close_timeout=AUTH0_TIMEOUT,
                heartbeat_timeout=AUTH0_HEARTBEAT,
                retry_policy=AUTH0_RETRY,
            )
            for fn, arg in steps
        ]
        await workflow.wait_condition(lambda: any(call.done() for call in calls))
        linked = workflow.execute_local_activity_method(
            StoreActivities.link_account,
            link,
            start_to_close_timeout=STORE_TIMEOUT,
            retry_policy=STORE_RETRY,
            # A database outage must not hold a workflow task open: past the first quick
            # retries, the next attempt waits on a timer in history.
            local_retry_threshold=LINK_LOCAL_RETRIES,
        )
        outcomes = await asyncio.gather(linked, *calls, return_exceptions=True)
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome

    def _auth0_steps(self, req: RedeemInput, accepted_at: datetime) -> list[tuple[Any, Any]]:
        """The Auth0 grant activities of versions 1 to 3."""
        user_id = req.user.user_id
        steps: list[tuple[Any, Any]] = []
        if self._inp.roles:
            steps.append(
                (Auth0Activities.assign_roles, AssignRolesInput(user_id=user_id, roles=self._inp.roles))
            )
        if self._inp.version >= ONE_PROFILE_WRITE:
            steps.append((Auth0Activities.update_profile, self._profile_input(req, accepted_at)))
            return steps
        verify = self._verify_email(req)
        steps.append(
            (
                Auth0Activities.merge_app_metadata,
                MergeMetadataInput(
                    user_id=user_id,
                    invitation_id=self._inp.invitation_id,
                    accepted_at=accepted_at,
                    app_metadata=self._inp.app_metadata,
                ),
            )
        )
        if verify:
            steps.append(
                (
                    Auth0Activities.mark_email_verified,
                    VerifyEmailInput(user_id=user_id, email=self._inp.email),
                )
            )
        return steps

    def _profile_input(self, req: RedeemInput, accepted_at: datetime) -> UpdateProfileInput:
        return UpdateProfileInput(
            user_id=req.user.user_id,
            invitation_id=self._inp.invitation_id,
            accepted_at=accepted_at,
            app_metadata=self._inp.app_metadata,
            verify_email=self._inp.email if self._verify_email(req) else None,
        )

    def _verify_email(self, req: RedeemInput) -> bool:
        """The invitation mail proved the person reads the invited address: mark it verified when
        the account signed in with that address unverified."""
        same_address = (req.user.email or "").casefold() == self._inp.email.casefold()
        return same_address and not req.user.email_verified

    async def _grant_in_auth0_v1(self, steps: list[tuple[Any, Any]]) -> None:
        options = {
            "task_queue": names.auth0_task_queue(workflow.info().task_queue),
            "start_to_close_timeout": AUTH0_TIMEOUT,
            "heartbeat_timeout": AUTH0_HEARTBEAT,
            "retry_policy": AUTH0_RETRY,
        }
        if workflow.patched(GRANT_IN_PARALLEL):
            # Independent calls (the per-second ceiling of the Auth0 queue still paces them):
            # scheduled together, they finish sooner and cost fewer workflow tasks in history.
            await asyncio.gather(*(workflow.execute_activity_method(fn, arg, **options) for fn, arg in steps))
        else:  # invitations accepted before the change replay the sequential grant
            for fn, arg in steps:
                await workflow.execute_activity_method(fn, arg, **options)

    # --- messages -----------------------------------------------------------------------------

    @workflow.query
    def state(self) -> InvitationState:
        return self._state

    @workflow.update
    async def redeem(self, req: RedeemInput) -> RedeemResult:
        """Accept for the logged-in user. Version 1 then waits a bounded time for the grant;
        version 2 answers at once, and the caller waits for the run to end (the grant is its
        last step) for as long as it can afford."""
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
        if not self._lean:
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(lambda: self._state.grant != "pending", timeout=GRANT_WAIT)
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

    # --- bookkeeping ------------------------------------------------------------------------

    def _end(self, status: Status) -> None:
        self._state.status = status
        self._state.ended_at = workflow.now()
        self._publish_search_attributes()

    def _publish_search_attributes(self) -> None:
        pairs = [
            SearchAttributePair(names.STATUS, self._state.status.value),
            SearchAttributePair(names.EMAIL, self._inp.email_search_value),
            SearchAttributePair(names.EXPIRES_AT, self._state.expires_at),
        ]
        if self._inp.external_ref:
            pairs.append(SearchAttributePair(names.REF, self._inp.external_ref))
        workflow.upsert_search_attributes(TypedSearchAttributes(pairs))

    async def _emit(self, event_type: str) -> None:
        """Publish a transition to the CRM: from version 6 queued for the publisher (the story
        goes on at once), before that awaited here."""
        if not self._inp.publish_events:
            return  # no CRM or events sink configured: no activity, no history events
        event = self._event(event_type)
        if self._inp.version < EVENTS_ASIDE:
            await self._publish(event)
            return
        self._events.append(event)
        if self._publisher is None or self._publisher.done():
            self._publisher = asyncio.create_task(self._publish_in_order())

    async def _publish_in_order(self) -> None:
        """One event at a time, oldest first (a CRM upsert of an older status must not land after
        a newer one), each retried until the CRM takes it or refuses it for good."""
        while self._events:
            event = self._events[0]
            try:
                await self._publish(event)
            except ActivityError as err:
                # Refused for good (an event the CRM rejects): the invitation goes on. The failed
                # attempt stays in history for ops.
                cause = err.cause.message if isinstance(err.cause, FailureError) else str(err)
                workflow.logger.warning(
                    "CRM refused an event",
                    extra={"invitation_id": event.invitation_id, "event": event.type, "error": cause},
                )
            self._events.pop(0)

    async def _publish(self, event: InvitationEvent) -> None:
        await workflow.execute_activity_method(
            CrmActivities.publish_event,
            event,
            start_to_close_timeout=CRM_TIMEOUT,
            retry_policy=CRM_RETRY,
        )

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
        )
