"""Claim by verified email (SPEC §10): a login without the link whose identity provider verified
the address gets every invitation pending for that address.

The Action asks once per account (`invitation.claim`). The pending invitations are found
through visibility (`InvitationEmail`, the address's keyed hash when payloads are encrypted),
never by scanning, and each is redeemed by the usual `redeem` update with `via: claim`: the
workflow's validator applies the rules (pending, not expired, the invited address verified by
the provider, never an `email_policy: any` invitation, whose link is the credential), so a claim
cannot accept what a redeem would refuse.
"""

from __future__ import annotations

import asyncio
from datetime import datetime

from temporalio.client import Client

from invites.invitations import (
    InvitationBusy,
    InvitationNotFound,
    InvitationRejected,
    list_query,
    redeem,
)
from invites.models import RedeemConnection, RedeemInput, RedeemResult, RedeemUser, Status
from invites.schemas import is_safe_text
from invites.settings import Settings

# An address has a few pending invitations; past this many a claim takes the first ones listed and
# the rest stay pending for their links (or the next claim: the account is then marked asked,
# so only a login with a link would take them).
MAX_CLAIMED = 20


async def claim(
    client: Client,
    settings: Settings,
    user: RedeemUser,
    connection: RedeemConnection,
    is_new_user: bool,
    now: datetime,
) -> list[RedeemResult]:
    """Redeem, for `user`, every pending invitation of its verified address; the accepted ones.

    Nothing when the setting is off or the provider did not verify the address. Raises
    InvitationBusy when an invitation did not take the redeem in time (the Action retries the
    same message; the ones accepted meanwhile answer the same again).
    """
    email = (user.email or "").strip()
    if not settings.claim_by_verified_email or not user.email_verified or not _plausible(email):
        return []
    query = list_query(settings, Status.PENDING.value, email, None)
    ids = [
        execution.id.removeprefix("invitation-")
        async for execution in client.list_workflows(query, limit=MAX_CLAIMED, page_size=MAX_CLAIMED)
    ]
    req = RedeemInput(generation=0, user=user, connection=connection, is_new_user=is_new_user, via="claim")
    # Side by side: each redeem answers within the redeem budget, so the claim does too.
    outcomes = await asyncio.gather(*(redeem(client, i, req, now) for i in ids), return_exceptions=True)
    accepted: list[RedeemResult] = []
    busy = False
    for outcome in outcomes:
        if isinstance(outcome, RedeemResult):
            accepted.append(outcome)
        elif isinstance(outcome, InvitationBusy):
            busy = True
        elif not isinstance(outcome, InvitationRejected | InvitationNotFound):
            raise outcome  # Temporal unreachable: the webhook answers 503 and the Action retries
    if busy:
        raise InvitationBusy("an invitation did not take the claim in time")
    return accepted


def _plausible(email: str) -> bool:
    """An address that can go into a visibility query (quotes and backslashes refused)."""
    local, at, domain = email.partition("@")
    return bool(local and at and domain) and len(email) <= 320 and is_safe_text(email)
