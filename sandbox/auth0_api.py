"""A sandbox Auth0 tenant over real HTTP: the Management API subset auth0-python's `AsyncAuth0`
calls, and the universal login with the real post-login Action (`sandbox.login`).

Point the SDK at it with `AsyncAuth0(base_url=f"{url}/api/v2", token=...)` after fetching a
token from `POST {url}/oauth/token` (client credentials). Requests, responses, pagination and
error bodies follow Auth0's; see `routes()` for the route keys faults can target.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from pathlib import Path
from typing import Any

from aiohttp import web

from sandbox.action_runner import ACTION_TIMEOUT_S, DEFAULT_ACTION, ActionRunner
from sandbox.auth0_tenant import DATABASE_CONNECTION, Auth0Error, Tenant
from sandbox.fake_app import FakeService, Handler, parsed_body
from sandbox.faults import Clock
from sandbox.login import (
    DEFAULT_API_AUDIENCE,
    DEFAULT_REDIRECT_URI,
    DEFAULT_ROLE_PERMISSIONS,
    DEFAULT_WEBHOOK_SECRET,
    DEFAULT_WEBHOOK_URL,
    UniversalLogin,
)
from sandbox.rate_limit import TokenBucket
from sandbox.signing import SigningKeys
from sandbox.tickets import PasswordTickets
from sandbox.user_search import UserSearch

API = "/api/v2"
# The sandbox's published dev credentials (SPEC section 7), never valid against a real tenant.
DEV_CLIENT_ID = "dev-client"
DEV_CLIENT_SECRET = "dev-secret"  # noqa: S105
MANAGEMENT_SCOPES = (
    "read:users update:users create:users delete:users create:user_tickets read:roles create:role_members "
    "delete:role_members"
)
CREATE_USER_FIELDS = {
    "connection",
    "email",
    "phone_number",
    "user_metadata",
    "blocked",
    "email_verified",
    "phone_verified",
    "app_metadata",
    "given_name",
    "family_name",
    "name",
    "nickname",
    "picture",
    "user_id",
    "password",
    "verify_email",
    "username",
}
UPDATE_USER_FIELDS = (CREATE_USER_FIELDS - {"user_id"}) | {"verify_phone_number", "client_id"}
MIN_PASSWORD_LENGTH = 8
MAX_PER_PAGE = 100


def auth0_error_body(status: int, message: str, error_code: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "statusCode": status,
        "error": HTTPStatus(status).phrase,
        "message": message,
    }
    if error_code:
        body["errorCode"] = error_code
    if status == HTTPStatus.UNAUTHORIZED:
        body["attributes"] = {"error": message}
    return body


def invalid_body(message: str) -> Auth0Error:
    return Auth0Error(400, f"Payload validation error: '{message}'.", "invalid_body")


def invalid_query(message: str) -> Auth0Error:
    return Auth0Error(400, f"Query validation error: '{message}'.", "invalid_query_string")


class Auth0Fake(FakeService):
    """A sandbox tenant: Management API, /oauth/token, JWKS and the universal login.

    `audience` is the Management API's (default `<base URL>/api/v2/`), `api_audience` the one
    user access tokens are issued for. After each interactive or password login the post-login
    Action at `action` runs under `node` (None: no Action) with the secrets
    INVITES_WEBHOOK_URL = `webhook_url`, INVITES_WEBHOOK_SECRET = `webhook_secret` and, when
    given, INVITES_CLAIM_NAMESPACE = `claim_namespace`. `/authorize` without a redirect_uri
    sends the browser to `redirect_uri`.
    """

    def __init__(
        self,
        *,
        client_id: str = DEV_CLIENT_ID,
        client_secret: str = DEV_CLIENT_SECRET,
        audience: str | None = None,
        api_audience: str = DEFAULT_API_AUDIENCE,
        state_path: str | Path | None = None,
        token_ttl: float = 86_400,
        rate_limit: float | None = None,
        burst: int | None = None,
        action: str | Path | None = DEFAULT_ACTION,
        node: str = "node",
        action_timeout: float = ACTION_TIMEOUT_S,
        webhook_url: str = DEFAULT_WEBHOOK_URL,
        webhook_secret: str = DEFAULT_WEBHOOK_SECRET,
        claim_namespace: str | None = None,
        redirect_uri: str = DEFAULT_REDIRECT_URI,
        role_permissions: Mapping[str, Sequence[str]] = DEFAULT_ROLE_PERMISSIONS,
        clock: Clock = time.time,
    ) -> None:
        super().__init__(clock=clock, error_body=auth0_error_body)
        self.client_id = client_id
        self.client_secret = client_secret
        self.audience = audience
        self.token_ttl = token_ttl
        self.tenant = Tenant(path=state_path, clock=clock)
        self.rate_limit = TokenBucket(rate_limit, burst=burst, clock=clock) if rate_limit else None
        self.tokens_issued = 0
        self.signing = SigningKeys(Path(state_path).with_suffix(".keys.json") if state_path else None)
        tickets_path = Path(state_path).with_suffix(".tickets.json") if state_path else None
        self.tickets = PasswordTickets(self.tenant, path=tickets_path, clock=clock)
        secrets = {"INVITES_WEBHOOK_URL": webhook_url, "INVITES_WEBHOOK_SECRET": webhook_secret}
        if claim_namespace:
            secrets["INVITES_CLAIM_NAMESPACE"] = claim_namespace
        self.search = UserSearch(self.tenant, _render)
        self.login = UniversalLogin(
            tenant=self.tenant,
            signing=self.signing,
            client_id=client_id,
            client_secret=client_secret,
            api_audience=api_audience,
            default_redirect_uri=redirect_uri,
            actions=ActionRunner(action, node=node, timeout=action_timeout) if action else None,
            action_secrets=secrets,
            role_permissions=role_permissions,
            token_ttl=token_ttl,
            clock=clock,
        )

    # -- helpers for tests -------------------------------------------------------------------

    def create_user(self, email: str, **kwargs: Any) -> dict[str, Any]:
        """Add a user directly (see `Tenant.create_user` for the options)."""
        return self.tenant.create_user(email, **kwargs)

    def user(self, user_id: str) -> dict[str, Any]:
        return self.tenant.user(user_id)

    def role_id(self, name: str) -> str:
        return self.tenant.role_named(name)["id"]

    def logins_count(self, user_id: str) -> int:
        return int(self.tenant.user(user_id).get("logins_count", 0))

    def role_names(self, user_id: str) -> list[str]:
        return sorted(r["name"] for r in self.tenant.roles_of(user_id))

    @property
    def role_assignments(self) -> Counter[str]:
        """Per user id, how many role ids were newly granted: proves "assigned exactly once"."""
        return self.tenant.role_assignments

    # -- HTTP --------------------------------------------------------------------------------

    def middlewares(self) -> list[Any]:
        return [self._management_api]

    @web.middleware
    async def _management_api(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Bearer token check, rate limit and Auth0 error bodies for every /api/v2 route."""
        if not request.path.startswith(API + "/"):
            return await handler(request)
        denied = self._authenticate(request)
        if denied is not None:
            return denied
        limits: dict[str, str] = {}
        if self.rate_limit is not None:
            admitted = self.rate_limit.take()
            limits = self.rate_limit.headers()
            if not admitted:
                return self._error(
                    Auth0Error(429, "Global limit has been reached", "too_many_requests"), limits
                )
        try:
            response = await handler(request)
        except Auth0Error as exc:
            return self._error(exc, limits)
        response.headers.update(limits)
        return response

    def _authenticate(self, request: web.Request) -> web.Response | None:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            return self._error(Auth0Error(401, "Missing authentication"))
        expiry = self.tenant.token_expiry(token)
        if expiry is None:
            return self._error(Auth0Error(401, "Invalid token"))
        if expiry <= self.clock():
            return self._error(Auth0Error(401, "Expired token received for JSON Web Token validation"))
        return None

    def _error(self, exc: Auth0Error, headers: dict[str, str] | None = None) -> web.Response:
        body = auth0_error_body(exc.status, exc.message, exc.error_code)
        return web.json_response(body, status=exc.status, headers=headers)

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/oauth/token", self.issue_token),
            web.get("/.well-known/jwks.json", self.jwks),
            web.get(f"{API}/users-by-email", self.users_by_email),
            self.search.route(API),
            web.post(f"{API}/users", self.create_user_route),
            web.get(f"{API}/users/{{id}}", self.get_user),
            web.patch(f"{API}/users/{{id}}", self.update_user),
            web.delete(f"{API}/users/{{id}}", self.delete_user),
            web.get(f"{API}/roles", self.list_roles),
            web.get(f"{API}/users/{{id}}/roles", self.list_user_roles),
            web.post(f"{API}/users/{{id}}/roles", self.assign_user_roles),
            web.delete(f"{API}/users/{{id}}/roles", self.remove_user_roles),
            *self.tickets.routes(),
            *self.login.routes(),
        ]

    async def jwks(self, request: web.Request) -> web.Response:
        """The public signing keys, as a tenant serves them."""
        return web.json_response(self.signing.jwks())

    async def issue_token(self, request: web.Request) -> web.Response:
        """Auth0's /oauth/token, form or JSON body: client credentials for the Management API;
        authorization code and password for users (`UniversalLogin.token`)."""
        body = await parsed_body(request) or {}
        grant = body.get("grant_type")
        if grant in ("authorization_code", "password"):
            return await self.login.token(request, body)
        if grant != "client_credentials":
            return web.json_response(
                {
                    "error": "unsupported_grant_type",
                    "error_description": f"Unsupported grant type: {grant}",
                },
                status=400,
            )
        credentials = (body.get("client_id"), body.get("client_secret"))
        if credentials != (self.client_id, self.client_secret):
            return web.json_response(
                {"error": "access_denied", "error_description": "Unauthorized"}, status=401
            )
        audience = self.audience or f"{request.url.origin()}{API}/"
        if body.get("audience", audience) != audience:
            return web.json_response(
                {
                    "error": "access_denied",
                    "error_description": f"Service not found: {body.get('audience')}",
                },
                status=403,
            )
        self.tokens_issued += 1
        return web.json_response(
            {
                "access_token": self.tenant.issue_token(self.token_ttl),
                "scope": MANAGEMENT_SCOPES,
                "expires_in": int(self.token_ttl),
                "token_type": "Bearer",
            }
        )

    async def users_by_email(self, request: web.Request) -> web.Response:
        """GET /users-by-email?email= (exact, case-sensitive)."""
        email = request.query.get("email")
        if not email:
            raise invalid_query("Missing required property: email")
        users = self.tenant.users_by_email(email)
        return web.json_response([_render(u, request.query) for u in users])

    async def create_user_route(self, request: web.Request) -> web.Response:
        """POST /users in the database connection (email + password)."""
        body = await _json_object(request)
        _reject_unknown(body, CREATE_USER_FIELDS)
        connection = body.pop("connection", None)
        if not connection:
            raise invalid_body("Missing required property: connection")
        if connection != DATABASE_CONNECTION:
            raise Auth0Error(400, "The connection does not exist.", "inexistent_connection")
        for required in ("email", "password"):
            if not body.get(required):
                raise invalid_body(f"Missing required property: {required}")
        email, password = body.pop("email"), body.pop("password")
        if "@" not in email.strip("@"):
            raise invalid_body(f"Object didn't pass validation for format email: {email}")
        if len(password) < MIN_PASSWORD_LENGTH:
            raise Auth0Error(400, "PasswordStrengthError: Password is too weak", "invalid_password")
        body.pop("verify_email", None)
        user = self.tenant.create_user(email, connection=connection, password=password, **body)
        return web.json_response(_render(user), status=201)

    async def get_user(self, request: web.Request) -> web.Response:
        """GET /users/{id}."""
        return web.json_response(_render(self.tenant.user(request.match_info["id"]), request.query))

    async def update_user(self, request: web.Request) -> web.Response:
        """PATCH /users/{id}: metadata merged at the top level, null unsets."""
        body = await _json_object(request)
        if not body:
            raise invalid_body("Too few properties defined (0), minimum 1")
        _reject_unknown(body, UPDATE_USER_FIELDS)
        for key in ("app_metadata", "user_metadata"):
            if key in body and not isinstance(body[key], dict | None):
                raise invalid_body(
                    f"Expected type object but found type {type(body[key]).__name__} on property {key}"
                )
        user = self.tenant.update_user(request.match_info["id"], body)
        return web.json_response(_render(user))

    async def delete_user(self, request: web.Request) -> web.Response:
        """DELETE /users/{id}: 204, whether or not the user existed (as Auth0 answers)."""
        self.tenant.delete_user(request.match_info["id"])
        return web.Response(status=204)

    async def list_roles(self, request: web.Request) -> web.Response:
        """GET /roles?name_filter= (case-insensitive substring), offset-paged."""
        name_filter = request.query.get("name_filter", "").lower()
        roles = [r for r in self.tenant.roles.values() if name_filter in r["name"].lower()]
        return _paged(roles, request.query)

    async def list_user_roles(self, request: web.Request) -> web.Response:
        """GET /users/{id}/roles, offset-paged."""
        return _paged(self.tenant.roles_of(request.match_info["id"]), request.query)

    async def assign_user_roles(self, request: web.Request) -> web.Response:
        """POST /users/{id}/roles {"roles": [ids]}: 204; an unknown role id is a 404."""
        roles = await _role_ids(request)
        self.tenant.assign_roles(request.match_info["id"], roles)
        return web.Response(status=204)

    async def remove_user_roles(self, request: web.Request) -> web.Response:
        """DELETE /users/{id}/roles {"roles": [ids]}: 204."""
        roles = await _role_ids(request)
        self.tenant.remove_roles(request.match_info["id"], roles)
        return web.Response(status=204)


async def _json_object(request: web.Request) -> dict[str, Any]:
    body = await parsed_body(request)
    if body is None and request.body_exists:
        raise Auth0Error(400, "Invalid request payload JSON format", "invalid_body")
    if body is not None and not isinstance(body, dict):
        raise invalid_body("Expected type object but found type array")
    return dict(body or {})


def _reject_unknown(body: dict[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise invalid_body(f"Additional properties not allowed: {','.join(unknown)}")


async def _role_ids(request: web.Request) -> list[str]:
    roles = (await _json_object(request)).get("roles")
    if not isinstance(roles, list) or not roles:
        raise invalid_body("Too few items (0), minimum 1 on property roles")
    for i, role in enumerate(roles):
        if not isinstance(role, str) or not role.startswith("rol_"):
            raise invalid_body(f"String does not match pattern ^rol_ on property roles[{i}]")
    return roles


def _flag(query: Any, name: str, default: bool) -> bool:
    value = query.get(name)
    return default if value is None else value.lower() == "true"


def _render(user: dict[str, Any], query: Any = None) -> dict[str, Any]:
    """A user as Auth0 returns it: empty metadata omitted, `fields`/`include_fields` applied."""
    out = {k: v for k, v in user.items() if not (k.endswith("_metadata") and not v)}
    fields = (query or {}).get("fields")
    if fields:
        wanted = set(fields.split(","))
        include = _flag(query, "include_fields", True)
        out = {k: v for k, v in out.items() if (k in wanted) == include}
    return out


def _paged(items: list[dict[str, Any]], query: Any) -> web.Response:
    """Auth0 offset paging: `{start, limit, total, roles}` with include_totals, else a list."""
    try:
        page, per_page = int(query.get("page", 0)), int(query.get("per_page", 50))
    except ValueError:
        raise invalid_query("page and per_page must be integers") from None
    if page < 0 or not 1 <= per_page <= MAX_PER_PAGE:
        raise invalid_query(f"per_page must be 1..{MAX_PER_PAGE} and page at least 0")
    chunk = items[page * per_page : (page + 1) * per_page]
    if not _flag(query, "include_totals", False):
        return web.json_response(chunk)
    return web.json_response(
        {"roles": chunk, "start": page * per_page, "limit": per_page, "total": len(items)}
    )
