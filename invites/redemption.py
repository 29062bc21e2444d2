"""The rules that decide whether a login may redeem an invitation, and whether it may be extended.

Pure functions over `InvitationState`: the workflow's update validators call them, and the API
calls them on a closed workflow's final state (an update cannot reach a completed workflow, yet
a webhook retry by the user who accepted must still get the same answer).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from invites.models import InvitationState, Reason, RedeemInput, Status

MAX_LIFETIME = timedelta(days=90)

# Why an ended invitation refuses every message: the reason code for each status but pending.
ENDED_REASON: dict[Status, Reason] = {
    Status.EXPIRED: Reason.EXPIRED,
    Status.REVOKED: Reason.REVOKED,
    Status.ACCEPTED: Reason.ALREADY_REDEEMED,
    Status.UNDELIVERABLE: Reason.UNDELIVERABLE,
}
# The refusals that say the invitation (or this link of it) can no longer be used by anyone, as
# HTTP's 410 Gone says; the others (`already_redeemed`, `email_mismatch`) are conflicts (409).
GONE: frozenset[Reason] = frozenset({Reason.EXPIRED, Reason.REVOKED, Reason.UNDELIVERABLE, Reason.STALE_LINK})

MESSAGES = {
    Reason.EXPIRED: "This invitation has expired.",
    Reason.REVOKED: "This invitation was revoked.",
    Reason.ALREADY_REDEEMED: "This invitation was already accepted by another account.",
    Reason.STALE_LINK: "A newer invitation link was sent; use the most recent mail.",
    Reason.EMAIL_MISMATCH: "This invitation was sent to a different email address.",
    Reason.UNDELIVERABLE: "The invitation mail could not be delivered.",
    Reason.INVALID_EXPIRY: "The new expiry must be in the future and within 90 days.",
    Reason.NOT_PROVISIONED: "This invitation did not create this account.",
    Reason.NOT_CLAIMABLE: "This invitation cannot be claimed by this account.",
}


def is_same_acceptor(state: InvitationState, req: RedeemInput) -> bool:
    return state.status == Status.ACCEPTED and state.accepted_by == req.user.user_id


def redeem_rejection(state: InvitationState, req: RedeemInput, now: datetime) -> Reason | None:
    """None when `req` may redeem (or already did, as the same user); otherwise the reason."""
    if is_same_acceptor(state, req):
        return None  # a retried webhook gets the same answer
    if req.via == "provisioned" and not is_provisioned_for(state, req.user.user_id):
        # Before the status: a token-less redeem learns nothing about other invitations.
        return Reason.NOT_PROVISIONED
    if state.status != Status.PENDING:
        return ENDED_REASON[state.status]
    if now >= state.expires_at:
        return Reason.EXPIRED  # the expiry timer may not have fired yet
    if req.via == "provisioned":
        return None  # the account was made for this invitation; its ticket went to the mailbox
    if req.via == "claim":
        return None if is_claimable_by(state, req) else Reason.NOT_CLAIMABLE
    if req.generation < state.generation:
        return Reason.STALE_LINK
    if state.email_policy == "match" and not same_email(req.user.email, state.email):
        return Reason.EMAIL_MISMATCH
    if state.email_policy == "verified" and not (
        req.user.email_verified and same_email(req.user.email, state.email)
    ):
        return Reason.EMAIL_MISMATCH
    return None


def is_provisioned_for(state: InvitationState, user_id: str) -> bool:
    """Whether the workflow created this account for the invitation (provisioned mode)."""
    return (
        state.mode == "provisioned"
        and state.provisioned_user_id is not None
        and (state.provisioned_user_id == user_id)
    )


def is_claimable_by(state: InvitationState, req: RedeemInput) -> bool:
    """A claim without the link (SPEC §10): the identity provider verified the invited address,
    whatever the invitation's policy, and never an `any` invitation (its link is the credential:
    it goes to whoever holds it)."""
    return state.email_policy != "any" and req.user.email_verified and same_email(req.user.email, state.email)


def extend_rejection(state: InvitationState, new_expiry: datetime, now: datetime) -> Reason | None:
    if state.status != Status.PENDING:
        return ENDED_REASON[state.status]
    if now >= state.expires_at:
        return Reason.EXPIRED
    if new_expiry <= now or new_expiry > now + MAX_LIFETIME:
        return Reason.INVALID_EXPIRY
    return None


def same_email(a: str | None, b: str) -> bool:
    """SPEC §3: equal after trimming and lower-casing, with no Unicode folding (`casefold` would
    match `straße@` to `strasse@`, another mailbox, and then mark that address verified)."""
    return a is not None and a.strip().lower() == b.strip().lower()
