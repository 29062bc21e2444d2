"""Creating and reissuing invitations: the one path shared by the API, the CLI and bulk import.

Store the funnel data, then start the workflow under an id derived from `external_ref` (or an
idempotency key), so a repeat reaches the same row and the same workflow and nothing doubles.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio.client import Client

from invites.auth0 import RoleDirectory
from invites.codec import email_search_keys
from invites.db.records import InvitationRecord
from invites.db.store import Store
from invites.ids import (
    invitation_id_for_key,
    invitation_id_for_ref,
    invitation_id_for_reissue,
    new_invitation_id,
)
from invites.invitations import get_state, start_invitation
from invites.models import EmailPolicy, InvitationInput, InvitationState, Mode, Status
from invites.redemption import MAX_LIFETIME
from invites.schemas import InvitationCreate
from invites.settings import Settings


class IdempotencyConflict(Exception):
    """The key (external_ref / Idempotency-Key) was used before with a different body."""


class NotReissuable(Exception):
    def __init__(self, status: Status) -> None:
        super().__init__(f"Only ended invitations can be reissued; this one is {status.value}.")
        self.status = status


class MissingFunnelData(LookupError):
    pass


class RolesNotGrantable(LookupError):
    """Roles outside INVITES_GRANTABLE_ROLES: an invitation may not grant them, whether or not
    the tenant has them (a funnel key must not be able to hand out `admin`)."""

    def __init__(self, names: list[str]) -> None:
        super().__init__(f"An invitation may not grant the role {', '.join(names)}")
        self.names = names


@dataclass(frozen=True)
class Created:
    state: InvitationState
    created: bool  # False: the same request was made before (an idempotent repeat)


async def wall_clock() -> datetime:
    return datetime.now(UTC)


Clock = Callable[[], Awaitable[datetime]]


@dataclass
class Creator:
    settings: Settings
    temporal: Client
    store: Store
    roles: RoleDirectory
    # Where "now" comes from: the wall clock, or (in tests) the time-skipping server's clock.
    clock: Clock = wall_clock

    async def create(self, body: InvitationCreate, idempotency_key: str | None = None) -> Created:
        """Raises RolesNotGrantable, UnknownRoles, IdempotencyConflict; Temporal and database
        errors propagate."""
        return await self._start(await self._input(body, idempotency_key))

    async def ensure(self, body: InvitationCreate, idempotency_key: str | None = None) -> bool:
        """`create` for bulk import: True when created, False when it existed already. A repeat
        costs no `state` query (the worker is not asked), so a re-run of a big file stays cheap."""
        _, started = await start_invitation(
            self.temporal, self.settings.task_queue, await self._input(body, idempotency_key)
        )
        return started

    async def _input(self, body: InvitationCreate, idempotency_key: str | None) -> InvitationInput:
        """Store the funnel data (or find the same request's row) and build the workflow input.

        If Temporal is down the start then raises after the row is saved; a retry with the same
        key finds the row, sees the same body, and starts the same workflow id: nothing doubles.
        """
        self._check_grantable(body.roles)
        if body.roles:
            await self.roles.ids_for(body.roles)
        request_hash = request_fingerprint(body)
        record = InvitationRecord(
            id=_invitation_id(body, idempotency_key),
            email=body.email.lower(),
            data=body.data,
            app_metadata=body.app_metadata,
            request_hash=request_hash,
            created_at=await self.clock(),
            external_ref=body.external_ref,
            idempotency_key=idempotency_key,
            options=body.model_dump(
                mode="json",
                include={
                    "roles",
                    "locale",
                    "crm_contact_id",
                    "expires_in",
                    "reminders",
                    "email_policy",
                    "mode",
                    "source",
                    "campaign",
                },
            ),
        )
        saved = await self.store.save_invitation(record)
        if not saved.created:
            if saved.request_hash != request_hash:
                raise IdempotencyConflict("This key was used before with a different request body.")
            record = await self.store.get_invitation(saved.invitation_id) or record
        settings = self.settings
        expires_in = timedelta(seconds=body.expires_in) if body.expires_in else settings.default_expires_in
        return workflow_input(
            settings,
            invitation_id=record.id,
            email=str(body.email),
            roles=body.roles,
            app_metadata=body.app_metadata,
            external_ref=body.external_ref,
            crm_contact_id=body.crm_contact_id,
            locale=body.locale,
            created_at=record.created_at,
            expires_at=record.created_at + expires_in,
            reminders=body.reminders,
            email_policy=body.email_policy,
            mode=body.mode,
            source=body.source,
            campaign=body.campaign,
        )

    async def reissue(self, invitation_id: str) -> Created:
        """A new invitation with the same data for an expired, revoked or undeliverable one.

        The new id derives from the old one, so reissuing twice gives the same new invitation.
        Raises InvitationNotFound, NotReissuable, MissingFunnelData, RolesNotGrantable (the
        setting narrowed since the original was created).
        """
        old = await get_state(self.temporal, invitation_id)
        if old.status in (Status.PENDING, Status.ACCEPTED):
            raise NotReissuable(old.status)
        self._check_grantable(old.roles)
        record = await self.store.get_invitation(invitation_id)
        if record is None:
            raise MissingFunnelData(f"The funnel data of {invitation_id} is missing from the database.")
        new_id = invitation_id_for_reissue(invitation_id)
        now = await self.clock()
        saved = await self.store.save_invitation(
            InvitationRecord(
                id=new_id,
                email=record.email,
                data=record.data,
                app_metadata=record.app_metadata,
                request_hash=record.request_hash,
                created_at=now,
                reissued_from=invitation_id,
                options=record.options,
            )
        )
        stored = await self.store.get_invitation(saved.invitation_id)
        created_at = stored.created_at if stored else now
        asked = record.options
        reminders = asked.get("reminders")
        return await self._start(
            InvitationInput(
                invitation_id=new_id,
                email=old.email,
                roles=old.roles,
                app_metadata=record.app_metadata,
                crm_contact_id=asked.get("crm_contact_id"),
                locale=asked.get("locale") or "en",
                created_at=created_at,
                external_ref=old.external_ref,  # found under the funnel's ref (index, CRM)
                # The same lifetime as the original (set, extended or default), counted from now.
                expires_at=created_at + min(old.expires_at - old.created_at, MAX_LIFETIME),
                reminders=reminders if reminders is not None else _seconds(self.settings.default_reminders),
                email_policy=old.email_policy,
                mode=asked.get("mode") or "link",
                source=asked.get("source"),
                campaign=asked.get("campaign"),
                reissued_from=invitation_id,
                email_key=email_search_keys(self.settings, old.email)[0],
                publish_events=self.settings.crm_backend != "none",
            )
        )

    def _check_grantable(self, roles: list[str]) -> None:
        """Before any Auth0 call or write: a refused role costs nothing and stores nothing."""
        allowed = set(self.settings.grantable_roles)
        refused = [role for role in roles if role not in allowed]
        if refused:
            raise RolesNotGrantable(refused)

    async def _start(self, inp: InvitationInput) -> Created:
        _, started = await start_invitation(self.temporal, self.settings.task_queue, inp)
        if started:
            return Created(state=InvitationState.of_new(inp), created=True)
        return Created(state=await get_state(self.temporal, inp.invitation_id), created=False)


def workflow_input(
    settings: Settings,
    *,
    invitation_id: str,
    email: str,
    created_at: datetime,
    expires_at: datetime,
    roles: list[str] | None = None,
    app_metadata: dict[str, Any] | None = None,
    external_ref: str | None = None,
    crm_contact_id: str | None = None,
    locale: str = "en",
    reminders: list[int] | None = None,
    email_policy: EmailPolicy | None = None,
    reissued_from: str | None = None,
    mode: Mode = "link",
    source: str | None = None,
    campaign: str | None = None,
) -> InvitationInput:
    """The workflow's input, with what the settings decide: the default reminders and email
    policy, the address's search key (hashed when payloads are encrypted), and whether the
    transitions are published (only with a CRM or events sink)."""
    return InvitationInput(
        invitation_id=invitation_id,
        email=email,
        roles=roles or [],
        app_metadata=app_metadata or {},
        external_ref=external_ref,
        crm_contact_id=crm_contact_id,
        locale=locale,
        created_at=created_at,
        expires_at=expires_at,
        reminders=reminders if reminders is not None else _seconds(settings.default_reminders),
        email_policy=email_policy or settings.email_policy,
        reissued_from=reissued_from,
        email_key=email_search_keys(settings, email)[0],
        publish_events=settings.crm_backend != "none",
        mode=mode,
        source=source,
        campaign=campaign,
    )


def request_fingerprint(body: InvitationCreate) -> str:
    # Every field, defaults filled in: the same request, written with or without its defaults,
    # has one fingerprint.
    canonical = json.dumps(body.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _invitation_id(body: InvitationCreate, idempotency_key: str | None) -> str:
    if body.external_ref:
        return invitation_id_for_ref(body.external_ref)
    if idempotency_key:
        return invitation_id_for_key(idempotency_key)
    return new_invitation_id()


def _seconds(durations: list[timedelta]) -> list[int]:
    return [int(d.total_seconds()) for d in durations]
