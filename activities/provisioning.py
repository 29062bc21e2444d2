"""The provisioned mode (SPEC §10): the account created ahead, a password-change ticket in our own
invitation mail, and the account removed again when the invitation ends unused.

`provision_and_invite` is the first step of a provisioned invitation, in place of
`look_up_and_invite`, on the Auth0 queue: look the address up; an address that has an account
falls back to the link flow (the link mail goes out as in `activities/first_mail.py`); else
create the account in the database connection with a random password that is never stored or
logged and `app_metadata.invites = {status: "invited", invitation_id}`, ask Auth0 for a ticket
and mail it. A retry finds the account it created by that `invitation_id` and creates none.

The ticket's URL is a credential, like the link token: it is made inside the activity that
sends the mail and never returned, so it never enters workflow history. Every reminder and
resend makes a fresh one (`send_ticket_mail`): Auth0 keeps only a user's newest ticket valid.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from auth0.management.core.api_error import ApiError
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.auth0 import Auth0Users
from activities.heartbeat import heartbeating
from activities.mail import MailActivities
from invites.auth0 import Auth0Management
from invites.models import FirstInviteResult, MailInput, MailResult, ProvisionResult, RemoveAccountInput

INVITED = "invited"
# A ticket outliving its invitation by a few seconds matters not (the redeem checks the expiry);
# one shorter than a minute is not worth mailing either.
MIN_TICKET_TTL_S = 60


class ProvisionedUsers(Auth0Users):
    """The Management API calls of the provisioned mode, through auth0-python like the others."""

    def __init__(self, auth0: Auth0Management, connection: str):
        super().__init__(auth0)
        self._connection = connection

    async def accounts(self, email: str) -> list[Any]:
        """Every account using the address (users-by-email: exact, and Auth0 stores it lower-cased)."""
        address = email.strip().lower()
        return list(await self._call(lambda: self._client.users.list_users_by_email(email=address)))

    async def create_invited(self, email: str, invitation_id: str) -> str | None:
        """Create the account for the invitation; None when the address was taken meanwhile."""

        async def create() -> Any:
            try:
                return await self._client.users.create(
                    connection=self._connection,
                    email=email.strip().lower(),
                    password=_random_password(),
                    email_verified=False,  # the ticket marks it verified once used
                    verify_email=False,  # our mail is the only one the person gets
                    app_metadata={"invites": {"status": INVITED, "invitation_id": invitation_id}},
                )
            except ApiError as exc:
                if exc.status_code == 409:  # "The user already exists."
                    return None
                raise

        user = await self._call(create)
        return None if user is None else user.user_id

    async def ticket(self, user_id: str, result_url: str, ttl_s: int) -> str:
        """A password-change ticket that marks the address verified and then sends the browser
        to `result_url`. Never logged: it sets the account's password."""
        answer = await self._call(
            lambda: self._client.tickets.change_password(
                user_id=user_id,
                result_url=result_url,
                ttl_sec=ttl_s,
                mark_email_as_verified=True,
            )
        )
        if not answer.ticket:
            raise ApplicationError("Auth0 answered without a ticket", type="Auth0Unavailable")
        return answer.ticket

    async def account(self, user_id: str) -> Any | None:
        """The account's sign-in record and our metadata; None when it no longer exists."""
        fields = "user_id,logins_count,last_login,app_metadata"
        try:
            return await self._call(lambda: self._client.users.get(user_id, fields=fields))
        except ApplicationError as err:
            if err.type == "Auth0UserNotFound":
                return None
            raise

    async def delete(self, user_id: str) -> None:
        try:
            await self._call(lambda: self._client.users.delete(user_id))
        except ApplicationError as err:
            if err.type != "Auth0UserNotFound":  # gone already: a retry after the delete
                raise


class ProvisioningActivities:
    def __init__(self, users: ProvisionedUsers, mail: MailActivities, result_url: str):
        self._users = users
        self._mail = mail
        self._result_url = result_url

    @activity.defn
    async def provision_and_invite(self, inp: MailInput) -> ProvisionResult:
        """Create the account (or find the one an earlier attempt created) and mail its ticket;
        fall back to the link mail when the address has an account already."""
        accounts = await self._users.accounts(inp.email)
        user_id = _created_for(accounts, inp.invitation_id)
        if user_id is None and not accounts:
            user_id = await self._users.create_invited(inp.email, inp.invitation_id)
            if user_id is None:  # created meanwhile, by someone or by our own lost attempt
                accounts = await self._users.accounts(inp.email)
                user_id = _created_for(accounts, inp.invitation_id)
        if user_id is None:
            link = inp.model_copy(update={"screen_hint": "login", "mode": "link"})
            return ProvisionResult(mode="link", first=await _first_mail(link, self._mail.send_mail))
        ticket_mail = inp.model_copy(update={"mode": "provisioned", "user_id": user_id})
        first = await _first_mail(ticket_mail, self.send_ticket_mail)
        return ProvisionResult(mode="provisioned", user_id=user_id, first=first)

    @activity.defn
    async def send_ticket_mail(self, inp: MailInput) -> MailResult:
        """A provisioned invitation's mail (the invitation, a reminder or a resend) with a fresh
        ticket, made only when this mail was not sent yet."""
        if inp.user_id is None:
            raise ApplicationError("a ticket mail needs the account's user id", type="InvariantViolated")
        user_id = inp.user_id

        async def ticket() -> str:
            ttl = int((inp.expires_at - datetime.now(UTC)).total_seconds())
            return await self._users.ticket(user_id, self._result_url, max(ttl, MIN_TICKET_TTL_S))

        async with heartbeating():
            return await self._mail.deliver(inp, ticket)

    @activity.defn
    async def remove_unused_account(self, inp: RemoveAccountInput) -> str:
        """Delete the account the invitation created if nobody ever signed in to it: `removed`,
        `kept` (it signed in, or is no longer ours) or `gone` (no such account)."""
        user_id = inp.user_id
        if user_id is None:
            user_id = _created_for(await self._users.accounts(inp.email), inp.invitation_id)
            if user_id is None:
                return "gone"
        account = await self._users.account(user_id)
        if account is None:
            return "gone"
        if account.logins_count or account.last_login or _invitation_of(account) != inp.invitation_id:
            activity.logger.info("pre-created account kept", extra={"invitation_id": inp.invitation_id})
            return "kept"
        await self._users.delete(user_id)
        activity.logger.info("unused pre-created account removed", extra={"invitation_id": inp.invitation_id})
        return "removed"


Sender = Callable[[MailInput], Awaitable[MailResult]]


async def _first_mail(inp: MailInput, send: Sender) -> FirstInviteResult:
    """Send the first mail once, as `look_up_and_invite` does: refused for good or failed for
    now comes back in the result (the workflow ends the invitation or retries the mail)."""
    hint = inp.screen_hint
    try:
        async with heartbeating():
            sent = await send(inp)
    except ApplicationError as err:
        if err.non_retryable:
            return FirstInviteResult(screen_hint=hint, refused=err.message)
        failed = err.message
    except Exception as err:
        failed = type(err).__name__  # its type only: a driver's message may quote the link
    else:
        return FirstInviteResult(screen_hint=hint, mail=sent)
    activity.logger.warning(
        "invitation mail failed, retried", extra={"invitation_id": inp.invitation_id, "error": failed}
    )
    return FirstInviteResult(screen_hint=hint, failed=failed)


def _created_for(accounts: list[Any], invitation_id: str) -> str | None:
    """The account this invitation created, among those using the address."""
    for account in accounts:
        if _invitation_of(account) == invitation_id and account.user_id:
            return str(account.user_id)
    return None


def _invitation_of(account: Any) -> str | None:
    invites = (getattr(account, "app_metadata", None) or {}).get("invites")
    return invites.get("invitation_id") if isinstance(invites, dict) else None


def _random_password() -> str:
    """256 random bits, plus one character of each class a strict password policy asks for.
    Nobody knows it: the person sets their own through the ticket."""
    return secrets.token_urlsafe(32) + "aA1!"
