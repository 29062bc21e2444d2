"""Pydantic models shared by the API, the workflow, the activities and the CLI.

One input model per workflow, update, signal and activity, so fields can be added compatibly.
Every model here may be stored in Temporal history: add fields with defaults, never rename.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class Status(StrEnum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    EXPIRED = "expired"
    REVOKED = "revoked"
    UNDELIVERABLE = "undeliverable"


class Reason(StrEnum):
    """Why a redeem or an extend was refused (SPEC §3). Clients match on these codes."""

    EXPIRED = "expired"
    REVOKED = "revoked"
    ALREADY_REDEEMED = "already_redeemed"
    STALE_LINK = "stale_link"
    EMAIL_MISMATCH = "email_mismatch"
    # Not redeemable because the invitation mail was rejected for good.
    UNDELIVERABLE = "undeliverable"
    # Not a link: a token-less redeem of an invitation that did not provision this account, or
    # a claim of one that may not be claimed (`email_policy: any`, address not verified).
    NOT_PROVISIONED = "not_provisioned"
    NOT_CLAIMABLE = "not_claimable"
    # extend only: the new expiry is in the past or beyond the 90-day ceiling.
    INVALID_EXPIRY = "invalid_expiry"


EmailPolicy = Literal["match", "verified", "any"]
# `link`: the invitation mail carries our link; `provisioned`: the workflow creates the account
# ahead and mails an Auth0 password-change ticket (SPEC §10).
Mode = Literal["link", "provisioned"]
# How a login reached the invitation: its link's token, the account the workflow provisioned
# (`app_metadata.invites.invitation_id`), or a claim by the account's verified address.
RedeemVia = Literal["link", "provisioned", "claim"]
MailKind = Literal["invite", "reminder"]
GrantState = Literal["done", "pending", "failed"]
# SendGrid Event Webhook events the workflow acts on (api/routes/sendgrid_events.py maps them).
DeliveryKind = Literal["delivered", "bounce", "dropped", "spamreport", "unsubscribe"]
# Funnel stages recorded per invitation (invites/db/funnel.py, GET /v1/stats/funnel).
FunnelStage = Literal["created", "delivered", "opened", "accepted", "expired", "revoked", "undeliverable"]


class _Model(BaseModel):
    # Tolerate fields added by a newer version of the code (rolling deploys, replays).
    model_config = ConfigDict(extra="ignore")


# --- workflow input, state and messages ---------------------------------------------------


class InvitationInput(_Model):
    """What `InvitationWorkflow` is started with. Funnel `data` stays in the database."""

    invitation_id: str
    email: str
    roles: list[str] = []
    app_metadata: dict[str, Any] = {}
    external_ref: str | None = None
    crm_contact_id: str | None = None
    locale: str = "en"
    created_at: datetime
    expires_at: datetime
    reminders: list[int] = Field(default_factory=lambda: [3 * 86400, 7 * 86400])
    email_policy: EmailPolicy = "match"
    reissued_from: str | None = None
    # What InvitationEmail holds: the lower-cased address, or its keyed hash when payloads are
    # encrypted (computed by the starter, which has the keys; see invites/codec.py).
    email_key: str | None = None
    # False when no CRM / events sink is configured (INVITES_CRM_BACKEND=none): transitions
    # are then not published at all (no activity, no history events).
    publish_events: bool = True
    # The funnel's keywords (POST /v1/invitations), kept with the invitation's funnel record.
    source: str | None = None
    campaign: str | None = None
    mode: Mode = "link"
    # Set on the run that undoes an accepted invitation's grant (POST .../rollback): a new run
    # under the same workflow id, started from the accepted run's input and final state.
    rollback: RollbackInput | None = None

    @property
    def email_search_value(self) -> str:
        return self.email_key or self.email.lower()


class InvitationState(_Model):
    """The workflow's `state` query answer and its result."""

    invitation_id: str
    email: str
    status: Status = Status.PENDING
    roles: list[str] = []
    external_ref: str | None = None
    created_at: datetime
    expires_at: datetime
    accepted_by: str | None = None
    accepted_at: datetime | None = None
    reminders_sent: int = 0
    mails_sent: int = 0
    generation: int = 0
    screen_hint: Literal["signup", "login"] = "signup"
    email_policy: EmailPolicy = "match"
    grant: GrantState | None = None
    grant_error: str | None = None
    revoked_reason: str | None = None
    undeliverable_reason: str | None = None
    ended_at: datetime | None = None
    source: str | None = None
    campaign: str | None = None
    # Delivery (SendGrid's Event Webhook) and the first opening of the link, each set once.
    delivered_at: datetime | None = None
    opened_at: datetime | None = None
    # Why reminders stopped while the invitation stays valid (`spamreport`, `unsubscribe`).
    reminders_stopped: str | None = None
    # `provisioned` only while the workflow provisioned an account: an address that had one
    # falls back to `link`. `provisioned_user_id` is the account it created.
    mode: Mode = "link"
    provisioned_user_id: str | None = None
    # The roles the grant assigned (not those the account held already): what a rollback removes.
    roles_assigned: list[str] = []
    # A rolled-back invitation is `revoked`; `rollback` tells how far undoing its grant has got.
    rollback: GrantState | None = None
    rollback_error: str | None = None
    rolled_back_at: datetime | None = None

    @classmethod
    def of_new(cls, inp: InvitationInput) -> InvitationState:
        """The state an invitation starts in (the workflow's, and the API's answer to a create)."""
        return cls(
            invitation_id=inp.invitation_id,
            email=inp.email,
            roles=inp.roles,
            external_ref=inp.external_ref,
            created_at=inp.created_at,
            expires_at=inp.expires_at,
            email_policy=inp.email_policy,
            mode=inp.mode,
            source=inp.source,
            campaign=inp.campaign,
        )


class RedeemUser(_Model):
    user_id: str = Field(min_length=1, max_length=256)
    email: str | None = Field(None, max_length=320)
    email_verified: bool = False
    name: str | None = Field(None, max_length=512)


class RedeemConnection(_Model):
    name: str = Field("", max_length=256)
    strategy: str = Field("", max_length=64)


class RedeemInput(_Model):
    """The `redeem` update: a completed login reported by the Auth0 Action."""

    generation: int = Field(ge=0)
    user: RedeemUser
    connection: RedeemConnection = RedeemConnection()
    is_new_user: bool = False
    via: RedeemVia = "link"


class RedeemResult(_Model):
    result: Literal["accepted"] = "accepted"
    invitation_id: str
    roles: list[str]
    grant: GrantState


class RevokeInput(_Model):
    reason: str = Field("", max_length=500)


class ResendInput(_Model):
    rotate: bool = Field(False, strict=True, description="Make earlier links answer stale_link.")


class ExtendInput(_Model):
    expires_at: datetime


class DeliveryInput(_Model):
    """The `delivery` signal: one SendGrid event about one of the invitation's mails."""

    event: DeliveryKind
    seq: int | None = Field(None, ge=0)  # which mail (MailInput.seq), when SendGrid sent it back
    at: datetime
    reason: str | None = Field(None, max_length=500)


class OpenedInput(_Model):
    """The `opened` signal: the link was opened (the first one sets `opened_at`)."""

    at: datetime


class RollbackInput(_Model):
    """Undo an accepted invitation: ops' reason and the accepted run's final state."""

    reason: str = Field(min_length=1, max_length=500)
    accepted: InvitationState

    def first_state(self, now: datetime) -> InvitationState:
        """The rollback run's state from its start: `revoked` (no redeem takes it again), with
        the acceptance it undoes still shown."""
        return self.accepted.model_copy(
            update={
                "status": Status.REVOKED,
                "revoked_reason": self.reason,
                "ended_at": now,
                "rollback": "pending",
            }
        )


# Its `rollback` field names RollbackInput, defined above only now: built here, once, not again
# by every TypeAdapter (each workflow run in the sandbox decodes its input through a new one).
InvitationInput.model_rebuild()


# --- activity inputs and results -----------------------------------------------------------


class MailInput(_Model):
    """One mail. `seq` makes each send distinct and its retries the same (idempotency key)."""

    invitation_id: str
    email: str
    kind: MailKind
    seq: int
    generation: int
    locale: str = "en"
    screen_hint: Literal["signup", "login"] = "signup"
    expires_at: datetime
    # `provisioned`: the mail carries a password-change ticket for `user_id` instead of a link.
    mode: Mode = "link"
    user_id: str | None = None

    @property
    def mail_id(self) -> str:
        return f"{self.invitation_id}:{self.kind}:{self.seq}"


class MailResult(_Model):
    mail_id: str
    message_id: str | None = None
    already_sent: bool = False


class FirstInviteResult(_Model):
    """`look_up_and_invite`'s answer. `mail` is None when the mail was not sent: refused for
    good (`refused`: the invitation is undeliverable) or failed for now (`failed`: the workflow
    retries it as `send_mail`)."""

    screen_hint: Literal["signup", "login"]
    mail: MailResult | None = None
    refused: str | None = None
    failed: str | None = None


class ProvisionResult(_Model):
    """`provision_and_invite`'s answer: the first mail's (see FirstInviteResult), and the mode
    the invitation runs in: `provisioned` with the account created for it (`user_id`), or
    `link` when the address had an account already. Never the ticket's URL."""

    mode: Mode
    user_id: str | None = None
    first: FirstInviteResult


class RemoveAccountInput(_Model):
    """`remove_unused_account`: the account a provisioned invitation created, removed only if
    it never logged in and still carries this invitation's id. `user_id` is None when the run
    ended before the first activity answered: the account is then found by `email`."""

    invitation_id: str
    email: str
    user_id: str | None = None


class GrantInput(_Model):
    """`grant_access`: the roles, the profile write and our account link, for one acceptance.

    `email` is the account's address (kept with the link); `verify_email` is the invited
    address, set when the account signed in with it unverified (the mail proved the person
    reads it), and marked verified only while it is still the account's address.
    """

    invitation_id: str
    user_id: str
    email: str | None
    accepted_at: datetime
    roles: list[str] = []
    app_metadata: dict[str, Any] = {}
    verify_email: str | None = None
    # Merged into `app_metadata.invites` beside `data`: `status: active` for a provisioned
    # account, `claimed_at` for a claim (the Action then asks no more).
    invites_marks: dict[str, str] = {}


class GrantResult(_Model):
    assigned: list[str] = []
    already_had: list[str] = []
    email_verified: bool = False
    linked: bool = False


class RollbackGrantInput(_Model):
    """`roll_back_grant`: what one acceptance wrote, to be removed again."""

    invitation_id: str
    user_id: str
    roles_assigned: list[str] = []
    app_metadata: dict[str, Any] = {}


class RollbackGrantResult(_Model):
    removed: list[str] = []
    # Assigned by this invitation but also granted by another accepted invitation of the account.
    kept: list[str] = []
    metadata_removed: bool = False
    unlinked: bool = False


class FunnelFact(_Model):
    """`record_funnel`: one invitation reached a funnel stage (recorded once, whatever the retries)."""

    invitation_id: str
    stage: FunnelStage
    at: datetime
    created_at: datetime
    source: str | None = None
    campaign: str | None = None


class InvitationEvent(_Model):
    """A transition delivered to the CRM / events sink. Never carries the link token."""

    # invitation.created, .sent, .reminded, .accepted, .expired, .revoked, .undeliverable,
    # .rolled_back
    type: str
    invitation_id: str
    email: str
    status: Status
    occurred_at: datetime
    roles: list[str] = []
    external_ref: str | None = None
    crm_contact_id: str | None = None
    user_id: str | None = None
    expires_at: datetime | None = None
    accepted_at: datetime | None = None
    reminders_sent: int = 0
    delivered_at: datetime | None = None
    opened_at: datetime | None = None
