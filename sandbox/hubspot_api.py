"""The HubSpot CRM contacts subset `hubspot-api-client` uses: create, read, update, search,
batch upsert by email.

Point the SDK at it with `HubSpot(access_token=..., host=url)`: the SDK copies every client
setting onto each API package's `Configuration`, and `Configuration.host` replaces
`https://api.hubapi.com`. Emails are unique and compared case-insensitively, as in HubSpot.
"""

from __future__ import annotations

import itertools
import time
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from sandbox.fake_app import FakeService, Handler, parsed_body
from sandbox.faults import Clock

CONTACTS = "/crm/v3/objects/contacts"
BATCH_UPSERT = "POST " + CONTACTS + "/batch/upsert"  # the route, as faults name it
DEFAULT_PROPERTIES = (
    "createdate",
    "email",
    "firstname",
    "hs_object_id",
    "lastmodifieddate",
    "lastname",
)
SYSTEM_PROPERTIES = ("createdate", "hs_object_id", "lastmodifieddate")
SEARCH_LIMIT = 200
FAKE_ACCESS_TOKEN = "pat-fake-token"  # noqa: S105 (a fake's token, not a secret)


class HubSpotError(Exception):
    def __init__(self, status: int, message: str, category: str, **extra: Any) -> None:
        super().__init__(message)
        self.status, self.message, self.category, self.extra = status, message, category, extra


def hubspot_error_body(status: int, message: str, category: str = "ERROR", **extra: Any) -> dict[str, Any]:
    return {
        "status": "error",
        "message": message,
        "correlationId": str(uuid.uuid4()),
        "category": category,
        **extra,
    }


def _not_found(contact_id: str) -> HubSpotError:
    return HubSpotError(
        404,
        "Object not found.  objectId are usually numeric.",
        "OBJECT_NOT_FOUND",
        context={"id": [contact_id]},
    )


def _validation(message: str) -> HubSpotError:
    return HubSpotError(400, message, "VALIDATION_ERROR")


class HubSpotFake(FakeService):
    """A HubSpot portal's contacts, reached with one private-app access token."""

    def __init__(self, *, access_token: str = FAKE_ACCESS_TOKEN, clock: Clock = time.time):
        super().__init__(clock=clock, error_body=hubspot_error_body)
        self.access_token = access_token
        self.contacts: dict[str, dict[str, Any]] = {}
        self._ids = itertools.count(101)

    # -- helpers for tests -------------------------------------------------------------------

    def contact_by_email(self, email: str) -> dict[str, Any] | None:
        return next(
            (c for c in self.contacts.values() if c["properties"].get("email", "").lower() == email.lower()),
            None,
        )

    def add_contact(self, properties: dict[str, Any]) -> dict[str, Any]:
        """Create a contact directly; raises HubSpotError 409 on a duplicate email."""
        email = str(properties.get("email", "")).lower()
        if email and (existing := self.contact_by_email(email)):
            raise HubSpotError(409, f"Contact already exists. Existing ID: {existing['id']}", "CONFLICT")
        contact_id, now = str(next(self._ids)), self._now()
        contact = {
            "id": contact_id,
            "properties": {},
            "createdAt": now,
            "updatedAt": now,
            "archived": False,
        }
        contact["properties"].update(createdate=now, hs_object_id=contact_id)
        self._set(contact, properties)
        self.contacts[contact_id] = contact
        return contact

    # -- HTTP --------------------------------------------------------------------------------

    def middlewares(self) -> list[Any]:
        return [self._authenticate]

    @web.middleware
    async def _authenticate(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Private-app bearer token on every CRM route; HubSpotError → HubSpot's error body."""
        if not request.path.startswith("/crm/"):
            return await handler(request)
        if request.headers.get("Authorization") != f"Bearer {self.access_token}":
            return self._answer(
                HubSpotError(
                    401,
                    "Authentication credentials not found. This API supports OAuth 2.0 "
                    "authentication and you can find more details at "
                    "https://developers.hubspot.com/docs/methods/auth/oauth-overview",
                    "INVALID_AUTHENTICATION",
                )
            )
        try:
            return await handler(request)
        except HubSpotError as exc:
            return self._answer(exc)

    def _answer(self, exc: HubSpotError) -> web.Response:
        body = hubspot_error_body(exc.status, exc.message, exc.category, **exc.extra)
        return web.json_response(body, status=exc.status)

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post(CONTACTS, self.create),
            web.get(CONTACTS + "/{contactId}", self.get),
            web.patch(CONTACTS + "/{contactId}", self.update),
            web.post(CONTACTS + "/batch/upsert", self.batch_upsert),
            web.post(CONTACTS + "/search", self.search),
        ]

    async def create(self, request: web.Request) -> web.Response:
        """POST /crm/v3/objects/contacts: 201; 409 when the email is taken."""
        body = await _object(request)
        contact = self.add_contact(body.get("properties") or {})
        return web.json_response(_view(contact, contact["properties"]), status=201)

    async def get(self, request: web.Request) -> web.Response:
        """GET /crm/v3/objects/contacts/{contactId}[?idProperty=email&properties=...]."""
        contact = self._find(request.match_info["contactId"], request.query.get("idProperty"))
        return web.json_response(_view(contact, _requested(request)))

    async def update(self, request: web.Request) -> web.Response:
        """PATCH /crm/v3/objects/contacts/{contactId}[?idProperty=email]."""
        contact = self._find(request.match_info["contactId"], request.query.get("idProperty"))
        body = await _object(request)
        self._set(contact, body.get("properties") or {})
        return web.json_response(_view(contact, contact["properties"]))

    async def batch_upsert(self, request: web.Request) -> web.Response:
        """POST .../batch/upsert with `idProperty: "email"`: creates or updates each input."""
        started = self._now()
        inputs = (await _object(request)).get("inputs")
        if not isinstance(inputs, list) or not inputs:
            raise _validation("inputs must be a non-empty list")
        results = []
        for item in inputs:
            if item.get("idProperty") != "email" or not item.get("id"):
                raise _validation("Upsert requires idProperty 'email' and an id on every input.")
            properties = {**(item.get("properties") or {}), "email": item["id"]}
            contact = self.contact_by_email(item["id"])
            new = contact is None
            if contact is None:
                contact = self.add_contact(properties)
            else:
                self._set(contact, properties)
            results.append({**_view(contact, contact["properties"]), "new": new})
        return web.json_response(
            {
                "status": "COMPLETE",
                "results": results,
                "startedAt": started,
                "completedAt": self._now(),
            }
        )

    async def search(self, request: web.Request) -> web.Response:
        """POST .../search: filterGroups OR'd, filters AND'd; `after` is an offset."""
        body = await _object(request)
        groups = body.get("filterGroups") or []
        matches = [
            c
            for c in self.contacts.values()
            if not c["archived"] and (not groups or any(_matches(c, g) for g in groups))
        ]
        limit = min(int(body.get("limit") or 10), SEARCH_LIMIT)
        offset = int(body.get("after") or 0)
        page = matches[offset : offset + limit]
        result: dict[str, Any] = {
            "total": len(matches),
            "results": [_view(c, body.get("properties") or None) for c in page],
        }
        if offset + limit < len(matches):
            result["paging"] = {"next": {"after": str(offset + limit)}}
        return web.json_response(result)

    def _find(self, key: str, id_property: str | None) -> dict[str, Any]:
        if id_property in (None, "hs_object_id"):
            contact = self.contacts.get(key)
        elif id_property == "email":
            contact = self.contact_by_email(key)
        else:
            raise _validation(f"Property {id_property} is not a unique identifier property.")
        if contact is None:
            raise _not_found(key)
        return contact

    def _set(self, contact: dict[str, Any], properties: dict[str, Any]) -> None:
        """Write properties as HubSpot strings; an empty string clears one."""
        for name, value in properties.items():
            if value in ("", None):
                contact["properties"].pop(name, None)
            else:
                text = str(value).lower() if name == "email" else str(value)
                contact["properties"][name] = text
        contact["updatedAt"] = contact["properties"]["lastmodifieddate"] = self._now()

    def _now(self) -> str:
        stamp = datetime.fromtimestamp(self.clock(), UTC)
        return stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z")


async def _object(request: web.Request) -> dict[str, Any]:
    body = await parsed_body(request)
    if not isinstance(body, dict):
        raise _validation("Invalid input JSON: the body must be a JSON object.")
    return body


def _requested(request: web.Request) -> list[str] | None:
    """`properties` as the SDK sends it (repeated) or as a comma-separated list."""
    names = [n for value in request.query.getall("properties", []) for n in value.split(",")]
    return names or None


def _view(contact: dict[str, Any], requested: Iterable[str] | None) -> dict[str, Any]:
    """A contact as HubSpot answers: requested properties (null when unset), else defaults."""
    names = DEFAULT_PROPERTIES if requested is None else (*SYSTEM_PROPERTIES, *requested)
    props = contact["properties"]
    return {**contact, "properties": {n: props.get(n) for n in dict.fromkeys(names)}}


def _matches(contact: dict[str, Any], group: dict[str, Any]) -> bool:
    props = contact["properties"]

    def check(f: dict[str, Any]) -> bool:
        value = props.get(f.get("propertyName", ""))
        current = None if value is None else value.lower()
        wanted = str(f.get("value", "")).lower()
        values = [str(v).lower() for v in f.get("values") or []]
        match f.get("operator"):
            case "EQ":
                return current == wanted
            case "NEQ":
                return current != wanted
            case "IN":
                return current in values
            case "NOT_IN":
                return current not in values
            case "HAS_PROPERTY":
                return value is not None
            case "NOT_HAS_PROPERTY":
                return value is None
        raise _validation(f"Operator {f.get('operator')} is not supported by this fake.")

    return all(check(f) for f in group.get("filters") or [])
