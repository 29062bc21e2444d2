"""The rules of the token-less redeems (SPEC §10): a provisioned account's, and a claim's."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from invites.models import EmailPolicy, InvitationState, Reason, RedeemInput, RedeemUser, RedeemVia, Status
from invites.redemption import redeem_rejection

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
MADE = "auth0|made-for-it"


def state(policy: EmailPolicy = "match", **fields: object) -> InvitationState:
    return InvitationState(
        invitation_id="inv_x",
        email="ada@example.com",
        created_at=NOW - timedelta(days=1),
        expires_at=NOW + timedelta(days=13),
        email_policy=policy,
        generation=3,  # a token-less redeem carries no generation: never `stale_link`
        **fields,
    )


def req(
    via: RedeemVia, user_id: str = MADE, email: str = "Ada@Example.com", verified: bool = True
) -> RedeemInput:
    user = RedeemUser(user_id=user_id, email=email, email_verified=verified)
    return RedeemInput(generation=0, user=user, via=via)


PROVISIONED = {"mode": "provisioned", "provisioned_user_id": MADE}


def test_the_account_a_provisioned_invitation_made_redeems_it():
    assert redeem_rejection(state(**PROVISIONED), req("provisioned"), NOW) is None


@pytest.mark.parametrize(
    "invitation",
    [
        state(**PROVISIONED, status=Status.EXPIRED),  # learns nothing about the status either
        state(mode="provisioned", provisioned_user_id=None),
        state(mode="link"),
        state(mode="link", provisioned_user_id=MADE),
    ],
)
def test_a_token_less_redeem_of_an_invitation_that_did_not_make_the_account_is_refused(invitation):
    assert (
        redeem_rejection(invitation, req("provisioned", user_id="auth0|other"), NOW) == Reason.NOT_PROVISIONED
    )


def test_a_provisioned_redeem_follows_the_status_and_expiry():
    assert (
        redeem_rejection(state(**PROVISIONED, status=Status.REVOKED), req("provisioned"), NOW)
        == Reason.REVOKED
    )
    late = NOW + timedelta(days=14)
    assert redeem_rejection(state(**PROVISIONED), req("provisioned"), late) == Reason.EXPIRED
    accepted = state(**PROVISIONED, status=Status.ACCEPTED, accepted_by=MADE)
    assert redeem_rejection(accepted, req("provisioned"), NOW) is None  # a retried webhook


@pytest.mark.parametrize("policy", ["match", "verified"])
def test_a_claim_needs_the_invited_address_verified(policy: EmailPolicy):
    assert redeem_rejection(state(policy), req("claim", "google-oauth2|1"), NOW) is None
    unverified = req("claim", "auth0|2", verified=False)
    assert redeem_rejection(state(policy), unverified, NOW) == Reason.NOT_CLAIMABLE
    other = req("claim", "google-oauth2|3", email="eve@example.com")
    assert redeem_rejection(state(policy), other, NOW) == Reason.NOT_CLAIMABLE


def test_an_any_invitation_is_never_claimed():
    assert redeem_rejection(state("any"), req("claim", "google-oauth2|1"), NOW) == Reason.NOT_CLAIMABLE


def test_a_claim_of_an_ended_invitation_says_why():
    taken = state(status=Status.ACCEPTED, accepted_by="auth0|someone")
    assert redeem_rejection(taken, req("claim", "google-oauth2|1"), NOW) == Reason.ALREADY_REDEEMED
