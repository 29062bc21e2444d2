"""The HTTP API's request and response bodies (SPEC §4), with their limits and examples.

Naming ladder: `InvitationCreate` (input) → `InvitationPublic` (output). Inputs forbid unknown
fields, so a typo in a funnel integration is a 422, not a silently ignored option.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    EmailStr,
    Field,
    field_validator,
    model_validator,
)

from invites.ids import ID_PATTERN
from invites.models import (
    EmailPolicy,
    GrantState,
    InvitationState,
    Mode,
    RedeemConnection,
    RedeemResult,
    RedeemUser,
    ResendInput,
    RevokeInput,
    Status,
)

MAX_DATA_BYTES = 64 * 1024
MAX_APP_METADATA_BYTES = 16 * 1024
MIN_EXPIRES_IN = 3600
MAX_EXPIRES_IN = 90 * 86400
ROLE_NAME = r"^[A-Za-z0-9][A-Za-z0-9 _.:-]{0,63}$"
# The funnel's `source` and `campaign`: short keywords, safe as group keys and metric labels.
KEYWORD = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$"
# Visibility query values are quoted: refuse quotes and backslashes outright.
SAFE_TEXT = r'^[^"\\\x00-\x1f]{1,200}$'
# RFC 3339 with a time zone: what `format: date-time` promises. pydantic alone would also take
# "7" (seconds since 1970) or a date without a time.
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _json_size(value: Any) -> int:
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())


def _rfc3339(value: Any) -> Any:
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not RFC3339.match(value):
        raise ValueError("use an RFC 3339 date-time with a time zone, e.g. 2026-12-31T00:00:00Z")
    return value


RoleName = Annotated[str, Field(pattern=ROLE_NAME)]
DateTime = Annotated[AwareDatetime, BeforeValidator(_rfc3339)]
# FastAPI validates the decoded JSON in pydantic's lax mode, where "3600" is an int and "yes" a
# bool; the OpenAPI document says integer and boolean, so the inputs hold to it.
Seconds = Annotated[int, Field(strict=True)]


class InvitationCreate(_Input):
    """What the funnel sends to invite a person."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "email": "ada@example.com",
                    "roles": ["customer"],
                    "data": {"plan": "pro", "quote_id": "Q-1042"},
                    "app_metadata": {"segment": "smb"},
                    "external_ref": "lead-1042",
                    "locale": "en",
                    "expires_in": 1209600,
                }
            ]
        },
    )

    email: EmailStr = Field(description="The address the invitation is sent to.")
    roles: list[RoleName] = Field(default=[], max_length=20, description="Auth0 role names to grant.")
    data: dict[str, Any] = Field(default={}, description="Funnel data, at most 64 KiB of JSON.")
    # Any key is safe: the payload is written under `app_metadata.invites.data`, never beside
    # `invitations` or anyone else's top-level keys.
    app_metadata: dict[str, Any] = Field(
        default={},
        description="Merged into the account's Auth0 `app_metadata.invites.data` on acceptance (16 KiB).",
    )
    external_ref: str | None = Field(
        None,
        pattern=SAFE_TEXT,
        max_length=128,
        description="The funnel's own id; makes the create idempotent.",
    )
    crm_contact_id: str | None = Field(None, pattern=SAFE_TEXT, max_length=64)
    locale: str = Field("en", pattern=r"^[a-zA-Z]{2,3}([_-][a-zA-Z0-9]{2,8})?$")
    expires_in: Seconds | None = Field(
        None, ge=MIN_EXPIRES_IN, le=MAX_EXPIRES_IN, description="Seconds until expiry (1 hour .. 90 days)."
    )
    reminders: list[Annotated[Seconds, Field(gt=0, le=MAX_EXPIRES_IN)]] | None = Field(
        None, max_length=10, description="Reminder offsets in seconds after sending."
    )
    email_policy: EmailPolicy | None = None
    source: str | None = Field(
        None,
        pattern=KEYWORD,
        description="Where the invitation comes from (a keyword), for the funnel stats.",
    )
    campaign: str | None = Field(
        None, pattern=KEYWORD, description="The campaign (a keyword), for the funnel stats."
    )
    mode: Mode = Field(
        "link",
        description="`link` (our invitation link) or `provisioned` (the account is created ahead and the "
        "mail carries an Auth0 password-change ticket; an address with an account falls back to `link`).",
    )

    @field_validator("data")
    @classmethod
    def _data_size(cls, value: dict[str, Any]) -> dict[str, Any]:
        if _json_size(value) > MAX_DATA_BYTES:
            raise ValueError("data must be at most 64 KiB of JSON")
        return value

    @field_validator("app_metadata")
    @classmethod
    def _metadata_size(cls, value: dict[str, Any]) -> dict[str, Any]:
        if _json_size(value) > MAX_APP_METADATA_BYTES:
            raise ValueError("app_metadata must be at most 16 KiB of JSON")
        return value

    @field_validator("roles")
    @classmethod
    def _unique_roles(cls, value: list[str]) -> list[str]:
        return list(dict.fromkeys(value))


class InvitationPublic(BaseModel):
    """An invitation as the API shows it."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "inv_01JD0Z3Q6W7N9V4X2B8C5M1K0T",
                    "email": "ada@example.com",
                    "status": "pending",
                    "roles": ["customer"],
                    "external_ref": "lead-1042",
                    "created_at": "2026-11-29T10:00:00Z",
                    "expires_at": "2026-12-13T10:00:00Z",
                    "accepted_by": None,
                    "accepted_at": None,
                    "reminders_sent": 0,
                }
            ]
        }
    )

    id: str
    email: str
    status: Status
    roles: list[str]
    external_ref: str | None
    created_at: datetime
    expires_at: datetime
    accepted_by: str | None
    accepted_at: datetime | None
    reminders_sent: int
    grant: GrantState | None = None
    mode: Mode = "link"
    source: str | None = None
    campaign: str | None = None
    delivered_at: datetime | None = Field(None, description="When SendGrid first reported a mail delivered.")
    opened_at: datetime | None = Field(None, description="When the link was first opened.")
    revoked_reason: str | None = None
    rollback: GrantState | None = Field(
        None, description="Set on a rolled-back invitation: how far undoing its grant has got."
    )
    rolled_back_at: datetime | None = None

    @classmethod
    def from_state(cls, state: InvitationState) -> InvitationPublic:
        return cls.model_validate(
            {**state.model_dump(include=set(cls.model_fields)), "id": state.invitation_id}
        )


class InvitationSummary(BaseModel):
    """One row of a list: what Temporal visibility knows without asking each workflow."""

    id: str
    email: str | None
    status: Status | None
    external_ref: str | None
    created_at: datetime | None
    expires_at: datetime | None
    closed_at: datetime | None


class InvitationPage(BaseModel):
    items: list[InvitationSummary]
    next_page_token: str | None = Field(None, description="Pass as page_token for the next page.")


class RevokeRequest(RevokeInput):
    """The `revoke` signal's input, as the API takes it (unknown fields refused)."""

    model_config = ConfigDict(extra="forbid")


class RollbackRequest(BaseModel):
    """Undo an accepted invitation's grant; the reason is kept with the invitation."""

    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=500, pattern=r"\S")


class ResendRequest(ResendInput):
    """The `resend` signal's input, as the API takes it (unknown fields refused)."""

    model_config = ConfigDict(extra="forbid")


class ExtendRequest(_Input):
    expires_at: DateTime | None = None
    expires_in: Seconds | None = Field(
        None, ge=MIN_EXPIRES_IN, le=MAX_EXPIRES_IN, description="Seconds from now."
    )

    @model_validator(mode="after")
    def _one_of(self) -> ExtendRequest:
        if (self.expires_at is None) == (self.expires_in is None):
            raise ValueError("give exactly one of expires_at and expires_in")
        return self


class RedeemWebhook(BaseModel):
    """The body the Auth0 Action posts after a login that carried an invitation: its link's
    token (`invitation`), or, for an account a provisioned invitation created, that
    invitation's id from `app_metadata.invites` (`invitation_id`). Exactly one of the two."""

    model_config = ConfigDict(extra="ignore")

    type: Literal["invitation.redeem"]
    invitation: str | None = Field(None, min_length=1, max_length=256)
    invitation_id: str | None = Field(None, pattern=ID_PATTERN.pattern)
    user: RedeemUser
    connection: RedeemConnection = RedeemConnection()
    is_new_user: bool = False

    @model_validator(mode="after")
    def _one_of(self) -> RedeemWebhook:
        if (self.invitation is None) == (self.invitation_id is None):
            raise ValueError("give exactly one of invitation and invitation_id")
        return self


class ClaimWebhook(BaseModel):
    """The body the Auth0 Action posts, once per account, for a login without a link whose
    identity provider verified the address: claim the pending invitations sent to it."""

    model_config = ConfigDict(extra="ignore")

    type: Literal["invitation.claim"]
    user: RedeemUser
    connection: RedeemConnection = RedeemConnection()
    is_new_user: bool = False


class ClaimedInvitation(BaseModel):
    invitation_id: str
    roles: list[str]
    grant: GrantState


class ClaimAnswer(BaseModel):
    """`claimed` with the invitations this login accepted, or `none`."""

    result: Literal["claimed", "none"]
    invitations: list[ClaimedInvitation] = []


class RedeemAccepted(RedeemResult):
    """The webhook's answer to an accepted redemption: the `redeem` update's result."""


class RedeemRejected(BaseModel):
    result: Literal["rejected"] = "rejected"
    reason: str


class ErrorDetail(BaseModel):
    code: str
    message: str


class ErrorBody(BaseModel):
    error: ErrorDetail


class LinkedInvitationPublic(BaseModel):
    invitation_id: str
    email: str
    accepted_at: datetime
    created_at: datetime
    roles: list[str] = Field(description="The roles this invitation granted.")
    data: dict[str, Any]


class Me(BaseModel):
    user_id: str
    roles: list[str] = Field(
        description="The roles the account's accepted invitations granted, all of them, sorted "
        "(roles given outside invitations are Auth0's to tell)."
    )
    invitations: list[LinkedInvitationPublic]


def is_safe_text(value: str) -> bool:
    return bool(re.match(SAFE_TEXT, value))


class TimeToAccept(BaseModel):
    """Seconds from creation to acceptance (nearest rank); null when none was accepted."""

    p50: float | None
    p90: float | None


class FunnelGroup(BaseModel):
    key: str | None = Field(description="The source or campaign; null for invitations without one.")
    created: int
    delivered: int
    opened: int
    accepted: int
    expired: int
    revoked: int
    undeliverable: int
    accept_rate: float = Field(description="accepted / created, 0 when none was created.")
    time_to_accept_s: TimeToAccept


class FunnelStats(BaseModel):
    """GET /v1/stats/funnel: the invitations created in [from, to), per group (SPEC §10)."""

    model_config = ConfigDict(populate_by_name=True)

    from_: datetime = Field(alias="from")
    to: datetime
    groups: list[FunnelGroup]
