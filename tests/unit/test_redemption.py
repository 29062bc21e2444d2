"""The redeem rules of SPEC §3, shared by the workflow's validator and the API for ended runs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from invites.models import EmailPolicy, InvitationState, Reason, RedeemInput, RedeemUser
from invites.redemption import redeem_rejection, same_email

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


def pending(email: str, policy: EmailPolicy) -> InvitationState:
    return InvitationState(
        invitation_id="inv_x",
        email=email,
        created_at=NOW - timedelta(days=1),
        expires_at=NOW + timedelta(days=13),
        email_policy=policy,
    )


def redeem(email: str | None, verified: bool = False) -> RedeemInput:
    return RedeemInput(generation=0, user=RedeemUser(user_id="auth0|u", email=email, email_verified=verified))


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ("Ada@Example.com", "ada@example.com", True),
        ("  ada@example.com ", "ada@example.com", True),
        ("straße@example.com", "strasse@example.com", False),  # another mailbox: no Unicode folding
        ("ﬁ@example.com", "fi@example.com", False),
        (None, "ada@example.com", False),
    ],
)
def test_addresses_match_after_trimming_and_lower_casing_only(a: str | None, b: str, same: bool):
    assert same_email(a, b) is same


def test_match_refuses_a_unicode_folded_address():
    rejection = redeem_rejection(pending("strasse@example.com", "match"), redeem("straße@example.com"), NOW)
    assert rejection == Reason.EMAIL_MISMATCH


@pytest.mark.parametrize(
    ("email", "verified", "reason"),
    [
        ("ada@example.com", True, None),  # a social login whose provider verified the address
        ("ADA@example.com", True, None),
        ("ada@example.com", False, Reason.EMAIL_MISMATCH),  # a password sign-up not yet verified
        ("eve@example.com", True, Reason.EMAIL_MISMATCH),  # verified, but another address
    ],
)
def test_verified_accepts_only_an_account_whose_provider_verified_the_invited_address(
    email: str, verified: bool, reason: Reason | None
):
    assert redeem_rejection(pending("ada@example.com", "verified"), redeem(email, verified), NOW) == reason


def test_any_accepts_whoever_holds_the_link():
    assert redeem_rejection(pending("ada@example.com", "any"), redeem("eve@example.com"), NOW) is None
