"""The sandbox tenant's universal login: `/authorize`, its pages, the post-login Action, tokens.

The flow a browser goes through, in Auth0's shapes:

    GET  /authorize?client_id&redirect_uri&response_type=code&scope&state&audience
         (+ invitation, login_hint, screen_hint=signup|login)   the login page
    POST /u/signup | /u/login | /u/social                        a form of that page
         -> the real post-login Action runs under Node.js (`sandbox.action_runner`)
         -> 302 redirect_uri?code=...&state=...
    POST /oauth/token grant_type=authorization_code              access token + ID token

plus the password grant for sandbox users, `GET /userinfo`, `GET /v2/logout` and the OpenID
discovery document. Transactions and codes live in memory: they last minutes, not restarts.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import jwt
from aiohttp import web
from jinja2 import Environment, FileSystemLoader, select_autoescape

from invites.settings import DEV_WEBHOOK_SECRET
from sandbox.action_runner import ActionFailed, ActionResult, ActionRunner, ActionUnavailable
from sandbox.auth0_tenant import DATABASE_CONNECTION, Auth0Error, Tenant
from sandbox.faults import Clock
from sandbox.signing import SigningKeys

TEMPLATES = Path(__file__).with_name("templates")
CLIENT_NAME = "Customer space"
DEFAULT_API_AUDIENCE = "https://invites.local/api"
DEFAULT_REDIRECT_URI = "http://127.0.0.1:8000/app"
DEFAULT_WEBHOOK_URL = "http://127.0.0.1:8000/v1/webhooks/auth0"
DEFAULT_WEBHOOK_SECRET = DEV_WEBHOOK_SECRET
DEFAULT_SCOPE = "openid profile email"
# Auth0's RBAC adds a user's permissions on the API to the access token; roles not listed have none.
DEFAULT_ROLE_PERMISSIONS: Mapping[str, Sequence[str]] = {
    "admin": ("create:invitations", "read:invitations", "manage:invitations"),
}
TRANSACTION_TTL_S = 3600
CODE_TTL_S = 60  # an authorization code is exchanged within seconds, and once
ID_TOKEN_TTL_S = 36_000
MIN_PASSWORD_LENGTH = 8
SOCIAL = {"google-oauth2": "Google", "facebook": "Facebook"}
PROFILE_CLAIMS = ("name", "nickname", "picture", "updated_at")
EMAIL_CLAIMS = ("email", "email_verified")
# A login form's own step: from the form and its address, the user and the sign-in method
# (`amr`), or LoginRefused.
FormStep = Callable[[Mapping[str, Any], str], tuple[dict[str, Any], str]]


@dataclass
class Transaction:
    """One `/authorize` request waiting for the user to sign in."""

    id: str
    client_id: str
    redirect_uri: str
    scope: str
    audience: str
    state: str | None
    nonce: str | None
    code_challenge: str | None
    code_challenge_method: str | None
    query: dict[str, str]
    expires_at: float


@dataclass
class Grant:
    """What an authorization code stands for, until it is exchanged (once): the login of `user_id`
    that completed `tx` (its client, redirect, scope, audience, nonce and PKCE challenge)."""

    user_id: str
    tx: Transaction
    auth_time: int
    expires_at: float
    action: ActionResult = field(default_factory=ActionResult)


@dataclass(frozen=True)
class Login:
    """The login in progress, as the post-login event describes it."""

    protocol: str  # `oidc-basic-profile` (universal login) or `oauth2-password` (POST /oauth/token)
    method: str  # how the user authenticated: `pwd` or `federated`
    scope: str
    audience: str
    # `event.request.query`: the `/authorize` query of this transaction (the universal login) or
    # the token request's own query string (the password grant); never an earlier login's.
    query: dict[str, str] = field(default_factory=dict)
    body: dict[str, str] = field(default_factory=dict)
    transaction: Transaction | None = None


class TokenError(Exception):
    """An /oauth/token refusal, answered as Auth0's `{error, error_description}`."""

    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.error = error
        self.description = description

    def response(self) -> web.Response:
        body = {"error": self.error, "error_description": self.description}
        return web.json_response(body, status=self.status)


class LoginRefused(Exception):
    """A login form was not accepted: the page again, with this sentence."""

    def __init__(self, status: int, message: str, mode: str, email: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.mode = mode
        self.email = email


class UniversalLogin:
    """The login side of the sandbox tenant, on the same tenant and keys as the Management API."""

    def __init__(
        self,
        *,
        tenant: Tenant,
        signing: SigningKeys,
        client_id: str,
        client_secret: str,
        api_audience: str = DEFAULT_API_AUDIENCE,
        default_redirect_uri: str = DEFAULT_REDIRECT_URI,
        actions: ActionRunner | None = None,
        action_secrets: Mapping[str, str] | None = None,
        role_permissions: Mapping[str, Sequence[str]] = DEFAULT_ROLE_PERMISSIONS,
        token_ttl: float = 86_400,
        clock: Clock = time.time,
    ) -> None:
        self.tenant = tenant
        self.signing = signing
        self.client_id = client_id
        self.client_secret = client_secret
        self.api_audience = api_audience
        self.default_redirect_uri = default_redirect_uri
        self.actions = actions
        self.action_secrets = dict(action_secrets or {})
        self.role_permissions = {role: list(perms) for role, perms in role_permissions.items()}
        self.token_ttl = int(token_ttl)
        self.clock = clock
        self.transactions: dict[str, Transaction] = {}
        self.codes: dict[str, Grant] = {}
        self.pages = Environment(
            loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]), trim_blocks=True
        )

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/authorize", self.authorize),
            web.post("/u/signup", self.signup),
            web.post("/u/login", self.login),
            web.post("/u/social", self.social),
            web.get("/userinfo", self.userinfo),
            web.get("/v2/logout", self.logout),
            web.get("/.well-known/openid-configuration", self.discovery),
        ]

    # -- the login page ----------------------------------------------------------------------

    async def authorize(self, request: web.Request) -> web.Response:
        """The login page for an authorization-code request (sign-up first with screen_hint=signup)."""
        query = dict(request.query)
        client_id = query.get("client_id") or self.client_id
        if client_id != self.client_id:
            return self._message(400, "Unknown application", f"No application has the client id {client_id}.")
        redirect_uri = query.get("redirect_uri") or self.default_redirect_uri
        if not _is_http_url(redirect_uri):
            return self._message(400, "Invalid redirect", "The redirect_uri must be an http(s) URL.")
        state = query.get("state")

        def refuse(error: str, description: str) -> web.Response:
            return _redirect(redirect_uri, error=error, error_description=description, state=state)

        if query.get("response_type", "code") != "code":
            return refuse("unsupported_response_type", "Only response_type=code is supported here.")
        audience = query.get("audience") or self.api_audience
        if audience != self.api_audience:
            return refuse("access_denied", f"Service not found: {audience}")
        if "none" in query.get("prompt", "").split():
            # There are no single-sign-on sessions in the sandbox: silent login always needs the page.
            return refuse("login_required", "Login required")
        method = query.get("code_challenge_method", "plain") if query.get("code_challenge") else None
        if method not in (None, "S256", "plain"):
            return refuse("invalid_request", "code_challenge_method must be S256 or plain.")
        tx = Transaction(
            id=secrets.token_urlsafe(16),
            client_id=client_id,
            redirect_uri=redirect_uri,
            scope=query.get("scope") or DEFAULT_SCOPE,
            audience=audience,
            state=state,
            nonce=query.get("nonce"),
            code_challenge=query.get("code_challenge"),
            code_challenge_method=method,
            query=query,
            expires_at=self.clock() + TRANSACTION_TTL_S,
        )
        self._prune()
        self.transactions[tx.id] = tx
        mode = "signup" if query.get("screen_hint") == "signup" else "login"
        problem = self.actions.problem() if self.actions else None
        return self._page(tx, mode, email=query.get("login_hint", ""), notice=problem)

    async def signup(self, request: web.Request) -> web.Response:
        """Create a database user (email + password), then finish the login."""
        return await self._submit(request, self._sign_up)

    async def login(self, request: web.Request) -> web.Response:
        """Sign in a database user with email and password."""
        return await self._submit(request, self._log_in)

    async def social(self, request: web.Request) -> web.Response:
        """A simulated Google/Facebook sign-in: the provider returns the address typed in the form."""
        return await self._submit(request, self._federated)

    async def _submit(self, request: web.Request, step: FormStep) -> web.Response:
        """A login form on an open transaction: the form's own step finds the user (or refuses,
        and the page shows again with its sentence), then the login completes."""
        form = await request.post()
        tx = self._transaction(form)
        if tx is None:
            return self._expired()
        email = str(form.get("email", "")).strip()
        try:
            user, method = step(form, email)
        except LoginRefused as refused:
            return self._refused(tx, refused)
        return await self._complete(request, tx, user, method)

    def _sign_up(self, form: Mapping[str, Any], email: str) -> tuple[dict[str, Any], str]:
        password = str(form.get("password", ""))
        if not _looks_like_email(email):
            raise LoginRefused(400, "Enter a valid email address.", "signup", email)
        if len(password) < MIN_PASSWORD_LENGTH:
            raise LoginRefused(
                400, f"Choose a password of at least {MIN_PASSWORD_LENGTH} characters.", "signup", email
            )
        if self.tenant.user_in(DATABASE_CONNECTION, email) is not None:
            exists = "A user with this email already exists; sign in instead."
            raise LoginRefused(400, exists, "login", email)
        self._ready("signup", email)
        return self.tenant.create_user(email, connection=DATABASE_CONNECTION, password=password), "pwd"

    def _log_in(self, form: Mapping[str, Any], email: str) -> tuple[dict[str, Any], str]:
        user = self.tenant.user_in(DATABASE_CONNECTION, email)
        if user is None or not self.tenant.check_password(user["user_id"], str(form.get("password", ""))):
            raise LoginRefused(400, "Wrong email or password.", "login", email)
        if user.get("blocked"):
            raise LoginRefused(401, "This account is blocked; ask an administrator.", "login", email)
        self._ready("login", email)
        return user, "pwd"

    def _federated(self, form: Mapping[str, Any], email: str) -> tuple[dict[str, Any], str]:
        connection = str(form.get("connection", ""))
        if connection not in SOCIAL:
            raise LoginRefused(400, f"Unknown connection {connection!r}.", "login", email)
        if not _looks_like_email(email):
            raise LoginRefused(400, f"Enter the address {SOCIAL[connection]} should return.", "login", email)
        self._ready("login", email)
        user = self.tenant.user_in(connection, email) or self.tenant.create_user(
            email, connection=connection, email_verified=True
        )
        return user, "federated"

    async def _complete(
        self, request: web.Request, tx: Transaction, user: dict[str, Any], method: str
    ) -> web.Response:
        """Count the login, run the Action, and send the browser back with a code."""
        self.transactions.pop(tx.id, None)
        back = tx.redirect_uri
        try:
            login = Login("oidc-basic-profile", method, tx.scope, tx.audience, query=tx.query, transaction=tx)
            action = await self._run_action(request, user, login)
        except ActionUnavailable as exc:
            return self._message(503, "The login cannot finish", str(exc))
        except ActionFailed as exc:
            link = _with_query(back, error="access_denied", error_description=str(exc), state=tx.state)
            return self._message(500, "The login Action failed", str(exc), link=link)
        if action.denied is not None:
            link = _with_query(back, error="access_denied", error_description=action.denied, state=tx.state)
            return self._message(403, "Access denied", action.denied, link=link)
        code = secrets.token_urlsafe(24)
        now = self.clock()
        self.codes[code] = Grant(user["user_id"], tx, int(now), expires_at=now + CODE_TTL_S, action=action)
        return _redirect(back, code=code, state=tx.state)

    # -- the post-login Action ---------------------------------------------------------------

    async def _run_action(self, request: web.Request, user: dict[str, Any], login: Login) -> ActionResult:
        """Run the Action for a login in progress; Auth0 counts the login before the Action runs."""
        logins_count = self.tenant.record_login(user["user_id"], request.remote)
        if self.actions is None:
            return ActionResult()
        event = self._event(request, self.tenant.user(user["user_id"]), logins_count, login)
        result = await self.actions.run(event)
        patch = {
            key: value
            for key, value in (("app_metadata", result.app_metadata), ("user_metadata", result.user_metadata))
            if value is not None
        }
        if patch and result.denied is None:
            self.tenant.update_user(user["user_id"], patch)
        return result

    def _event(
        self, request: web.Request, user: dict[str, Any], logins_count: int, login: Login
    ) -> dict[str, Any]:
        """The post-login `event` Auth0 builds, for the fields an Action reads."""
        transaction, query = login.transaction, login.query
        identity = user["identities"][0]
        connection = identity["connection"]
        tx: dict[str, Any] = {
            "id": transaction.id if transaction else secrets.token_urlsafe(12),
            "protocol": login.protocol,
            "prompt": [p for p in query.get("prompt", "").split() if p],
            "requested_scopes": login.scope.split(),
            "locale": "en",
            "ui_locales": [],
            "acr_values": [],
        }
        if transaction is not None:
            tx.update(
                redirect_uri=transaction.redirect_uri,
                response_type=["code"],
                state=transaction.state,
                login_hint=query.get("login_hint"),
            )
        return {
            "authentication": {"methods": [{"name": login.method, "timestamp": self.tenant.now_iso()}]},
            "authorization": {"roles": [r["name"] for r in self.tenant.roles_of(user["user_id"])]},
            "client": {"client_id": self.client_id, "name": CLIENT_NAME, "metadata": {}},
            "configuration": {},
            "connection": {
                "id": "con_" + hashlib.sha256(connection.encode()).hexdigest()[:16],
                "name": connection,
                "strategy": identity["provider"],
                "metadata": {},
            },
            "request": {
                "ip": request.remote,
                "hostname": request.host,
                "method": "GET" if transaction else request.method,
                "query": dict(query),
                "body": dict(login.body),
                "user_agent": request.headers.get("User-Agent", ""),
                "language": "en",
                "geoip": {},
            },
            "resource_server": {"identifier": login.audience},
            "secrets": dict(self.action_secrets),
            "stats": {"logins_count": logins_count},
            "tenant": {"id": "sandbox"},
            "transaction": tx,
            "user": {"app_metadata": {}, "user_metadata": {}, **user},
        }

    # -- /oauth/token ------------------------------------------------------------------------

    async def token(self, request: web.Request, body: Mapping[str, Any]) -> web.Response:
        """The `authorization_code` and `password` grants of POST /oauth/token."""
        try:
            client_id, client_secret = _client_credentials(request, body)
            if body.get("grant_type") == "password":
                return await self._password_grant(request, body, client_id, client_secret)
            return self._code_grant(request, body, client_id, client_secret)
        except TokenError as exc:
            return exc.response()

    def _code_grant(
        self, request: web.Request, body: Mapping[str, Any], client_id: str | None, client_secret: str | None
    ) -> web.Response:
        # A public client (no secret, PKCE or not) is fine in the sandbox; a wrong secret is not.
        if client_id != self.client_id or (client_secret is not None and client_secret != self.client_secret):
            raise TokenError(401, "access_denied", "Unauthorized")
        grant = self.codes.pop(str(body.get("code", "")), None)
        if grant is None or grant.expires_at <= self.clock() or grant.tx.client_id != client_id:
            raise TokenError(403, "invalid_grant", "Invalid authorization code")
        if body.get("redirect_uri", grant.tx.redirect_uri) != grant.tx.redirect_uri:
            raise TokenError(403, "invalid_grant", "redirect_uri does not match the one sent to /authorize")
        if grant.tx.code_challenge is not None and not _pkce_ok(grant.tx, str(body.get("code_verifier", ""))):
            raise TokenError(403, "invalid_grant", "Failed to verify code verifier")
        return web.json_response(
            self._tokens(
                issuer=_issuer(request),
                user_id=grant.user_id,
                scope=grant.tx.scope,
                audience=grant.tx.audience,
                action=grant.action,
                nonce=grant.tx.nonce,
                auth_time=grant.auth_time,
            )
        )

    async def _password_grant(
        self, request: web.Request, body: Mapping[str, Any], client_id: str | None, client_secret: str | None
    ) -> web.Response:
        if (client_id, client_secret) != (self.client_id, self.client_secret):
            raise TokenError(401, "access_denied", "Unauthorized")
        audience = str(body.get("audience") or self.api_audience)
        if audience != self.api_audience:
            raise TokenError(403, "access_denied", f"Service not found: {audience}")
        username, password = str(body.get("username", "")), str(body.get("password", ""))
        user = self.tenant.user_in(DATABASE_CONNECTION, username)
        if user is None or not self.tenant.check_password(user["user_id"], password):
            raise TokenError(403, "invalid_grant", "Wrong email or password.")
        if user.get("blocked"):
            raise TokenError(401, "unauthorized", "user is blocked")
        scope = str(body.get("scope") or DEFAULT_SCOPE)
        shown = {k: str(v) for k, v in body.items() if k not in ("password", "client_secret")}
        # Auth0 hands the Action this request's own query string and form (an `invitation`
        # in either stays visible to it, and the Action must still not redeem on this grant).
        login = Login("oauth2-password", "pwd", scope, audience, query=dict(request.query), body=shown)
        try:
            action = await self._run_action(request, user, login)
        except ActionUnavailable as exc:
            raise TokenError(503, "temporarily_unavailable", str(exc)) from None
        except ActionFailed as exc:
            raise TokenError(403, "access_denied", str(exc)) from None
        if action.denied is not None:
            raise TokenError(403, "access_denied", action.denied)
        return web.json_response(
            self._tokens(
                issuer=_issuer(request),
                user_id=user["user_id"],
                scope=scope,
                audience=audience,
                action=action,
                extra={"gty": "password"},
            )
        )

    def _tokens(
        self,
        *,
        issuer: str,
        user_id: str,
        scope: str,
        audience: str,
        action: ActionResult,
        nonce: str | None = None,
        auth_time: int | None = None,
        extra: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """An access token for the API and, with `openid`, an ID token; the user read afresh."""
        user = self.tenant.user(user_id)  # the Action's webhook may have granted roles meanwhile
        now = int(self.clock())
        scopes = scope.split()
        openid = "openid" in scopes
        access = {
            "iss": issuer,
            "sub": user_id,
            "aud": [audience, f"{issuer}userinfo"] if openid else audience,
            "iat": now,
            "exp": now + self.token_ttl,
            "scope": scope,
            "azp": self.client_id,
            "permissions": self.permissions_of(user_id),
            **(extra or {}),
            **action.access_token_claims,
        }
        answer: dict[str, Any] = {
            "access_token": self.signing.sign(access),
            "scope": scope,
            "expires_in": self.token_ttl,
            "token_type": "Bearer",
        }
        if openid:
            identity: dict[str, Any] = {
                "iss": issuer,
                "aud": self.client_id,
                "sub": user_id,
                "iat": now,
                "exp": now + ID_TOKEN_TTL_S,
                **_profile(user, scopes),
                **({"nonce": nonce} if nonce else {}),
                **({"auth_time": auth_time} if auth_time else {}),
                **action.id_token_claims,
            }
            answer["id_token"] = self.signing.sign(identity)
        return answer

    def permissions_of(self, user_id: str) -> list[str]:
        roles = self.tenant.roles_of(user_id)
        return sorted({p for role in roles for p in self.role_permissions.get(role["name"], [])})

    # -- userinfo, logout, discovery ---------------------------------------------------------

    async def userinfo(self, request: web.Request) -> web.Response:
        """The signed-in user's profile, for an access token issued with `openid`."""
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        issuer = _issuer(request)
        try:
            if scheme.lower() != "bearer" or not token:
                raise jwt.InvalidTokenError("missing bearer token")
            claims = self._verify(token.strip(), audience=f"{issuer}userinfo", issuer=issuer)
            user = self.tenant.user(claims["sub"])
        except (jwt.PyJWTError, Auth0Error):
            return web.Response(
                status=401, text="Unauthorized", headers={"WWW-Authenticate": 'Bearer error="invalid_token"'}
            )
        scopes = str(claims.get("scope", "")).split()
        return web.json_response({"sub": user["user_id"], **_profile(user, scopes)})

    def _verify(self, token: str, *, audience: str, issuer: str) -> dict[str, Any]:
        kid = jwt.get_unverified_header(token).get("kid")
        keys = {key.key_id: key for key in jwt.PyJWKSet.from_dict(self.signing.jwks()).keys}
        if kid not in keys:
            raise jwt.InvalidTokenError("unknown signing key")
        return jwt.decode(token, keys[kid].key, algorithms=["RS256"], audience=audience, issuer=issuer)

    async def logout(self, request: web.Request) -> web.Response:
        """End the session (there is none to keep) and go back to `returnTo`."""
        return_to = request.query.get("returnTo", "")
        if _is_http_url(return_to):
            return web.Response(status=302, headers={"Location": return_to})
        return self._message(200, "Signed out", "You are signed out of the sandbox tenant.")

    async def discovery(self, request: web.Request) -> web.Response:
        """OpenID Provider metadata, so OIDC client libraries find the endpoints."""
        issuer = _issuer(request)
        return web.json_response(
            {
                "issuer": issuer,
                "authorization_endpoint": f"{issuer}authorize",
                "token_endpoint": f"{issuer}oauth/token",
                "userinfo_endpoint": f"{issuer}userinfo",
                "jwks_uri": f"{issuer}.well-known/jwks.json",
                "end_session_endpoint": f"{issuer}v2/logout",
                "response_types_supported": ["code"],
                "grant_types_supported": ["authorization_code", "password", "client_credentials"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "code_challenge_methods_supported": ["S256", "plain"],
                "scopes_supported": ["openid", "profile", "email"],
            }
        )

    # -- pages -------------------------------------------------------------------------------

    def _transaction(self, form: Mapping[str, Any]) -> Transaction | None:
        tx = self.transactions.get(str(form.get("transaction", "")))
        return tx if tx is not None and tx.expires_at > self.clock() else None

    def _ready(self, mode: str, email: str) -> None:
        """Refuse before anything is written when the Action cannot run (no half-done sign-up)."""
        problem = self.actions.problem() if self.actions else None
        if problem:
            raise LoginRefused(503, problem, mode, email)

    def _prune(self) -> None:
        now = self.clock()
        self.transactions = {k: t for k, t in self.transactions.items() if t.expires_at > now}
        self.codes = {k: g for k, g in self.codes.items() if g.expires_at > now}

    def _page(
        self,
        tx: Transaction,
        mode: str,
        *,
        email: str = "",
        error: str | None = None,
        notice: str | None = None,
        status: int = 200,
    ) -> web.Response:
        html = self.pages.get_template("login.html").render(
            client_name=CLIENT_NAME,
            transaction=tx.id,
            mode=mode,
            email=email,
            error=error,
            notice=notice,
            social=SOCIAL,
            min_password=MIN_PASSWORD_LENGTH,
        )
        return web.Response(status=status, text=html, content_type="text/html")

    def _refused(self, tx: Transaction, refused: LoginRefused) -> web.Response:
        return self._page(tx, refused.mode, email=refused.email, error=refused.message, status=refused.status)

    def _expired(self) -> web.Response:
        return self._message(
            400, "This login page has expired", "Go back to the application and sign in again."
        )

    def _message(self, status: int, title: str, message: str, *, link: str | None = None) -> web.Response:
        html = self.pages.get_template("message.html").render(title=title, message=message, link=link)
        return web.Response(status=status, text=html, content_type="text/html")


def _issuer(request: web.Request) -> str:
    """The tenant's issuer: its base URL with a trailing slash, as Auth0 writes `iss`."""
    return f"{request.url.origin()}/"


def _profile(user: dict[str, Any], scopes: Sequence[str]) -> dict[str, Any]:
    claims = [*(PROFILE_CLAIMS if "profile" in scopes else ()), *(EMAIL_CLAIMS if "email" in scopes else ())]
    return {claim: user[claim] for claim in claims if claim in user}


def _client_credentials(request: web.Request, body: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """client_id/secret from the body (client_secret_post) or HTTP Basic (client_secret_basic)."""
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "basic" and value:
        try:
            client_id, _, client_secret = base64.b64decode(value).decode().partition(":")
        except ValueError:
            raise TokenError(401, "access_denied", "Unauthorized") from None
        return client_id, client_secret
    secret = body.get("client_secret")
    return body.get("client_id"), None if secret is None else str(secret)


def _pkce_ok(tx: Transaction, verifier: str) -> bool:
    """The code verifier matches the challenge the login's /authorize request carried."""
    if tx.code_challenge_method == "S256":
        digest = hashlib.sha256(verifier.encode()).digest()
        computed = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    else:
        computed = verifier
    return hmac.compare_digest(computed, tx.code_challenge or "")


def _is_http_url(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def _looks_like_email(email: str) -> bool:
    local, at, domain = email.partition("@")
    return bool(local and at and "." in domain and " " not in email)


def _with_query(url: str, **params: str | None) -> str:
    parts = urlsplit(url)
    query = parse_qsl(parts.query) + [(k, v) for k, v in params.items() if v is not None]
    return urlunsplit(parts._replace(query=urlencode(query)))


def _redirect(url: str, **params: str | None) -> web.Response:
    # Returned, not raised: the fault middleware turns raised HTTP exceptions into error bodies.
    return web.Response(status=302, headers={"Location": _with_query(url, **params)})
