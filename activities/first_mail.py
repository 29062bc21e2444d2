"""The invitation's first step: the Auth0 look-up and the invitation mail, in one activity.

It runs on the Auth0 queue. The look-up joins the worker's `LookupBatcher`
(`activities/lookups.py`): the look-ups that arrive together share one Auth0 user search, paced
in calls per second (Auth0 rate-limits per tenant); the mail goes out right after the answer.
One activity instead of two saves a workflow task and its events per invitation.

The mail is tried once here. A refusal for good comes back in the result (the workflow ends the
invitation undeliverable), and so does a failure that may pass: the workflow then retries the
mail as its own `send_mail` activity on the main queue, with the mail's policy, so an outage at
SendGrid neither repeats the look-up nor holds the Auth0 queue's slots. A failed look-up is
raised and retried under the Auth0 policy.
"""

from __future__ import annotations

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.heartbeat import heartbeating
from activities.lookups import LookupBatcher
from activities.mail import MailActivities
from invites.models import FirstInviteResult, MailInput

# A look-up waits for its batch to gather (up to 2 s in a stream) and for its call's turn
# under the tenant's pace: its first heartbeat (a write in Temporal, a billable action) comes
# only after 3 s, inside the 5 s heartbeat timeout, so a look-up answered in time sends none.
LOOKUP_HEARTBEAT_S = 3.0


class FirstMailActivities:
    def __init__(self, lookups: LookupBatcher, mail: MailActivities):
        self._lookups = lookups
        self._mail = mail

    @activity.defn
    async def look_up_and_invite(self, inp: MailInput) -> FirstInviteResult:
        """Look the address up (sign-up or log-in), then send the invitation mail once."""
        async with heartbeating(LOOKUP_HEARTBEAT_S):
            hint = "login" if await self._lookups.has_account(inp.email) else "signup"
        try:
            async with heartbeating():
                sent = await self._mail.send_mail(inp.model_copy(update={"screen_hint": hint}))
        except ApplicationError as err:
            if err.non_retryable:
                return FirstInviteResult(screen_hint=hint, refused=err.message)
            failed = err.message
        except Exception as err:
            # The database recording the mail, say. Its type only: a driver's message can quote
            # the statement's values (the mail's link), and this result is kept in history.
            # `send_mail`'s own attempts then show the whole failure.
            failed = type(err).__name__
        else:
            return FirstInviteResult(screen_hint=hint, mail=sent)
        activity.logger.warning(
            "invitation mail failed, retried as send_mail",
            extra={"invitation_id": inp.invitation_id, "error": failed},
        )
        return FirstInviteResult(screen_hint=hint, failed=failed)
