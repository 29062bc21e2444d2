"""The one settings class. Every value comes from `INVITES_*` environment variables (or `.env`).

Read it once with `get_settings()` and pass it down; nothing reads the environment elsewhere.
"""

from __future__ import annotations

import base64
import ipaddress
import json
from datetime import timedelta
from functools import cache
from typing import Annotated, Literal
from urllib.parse import quote, urlencode, urlsplit

from pydantic import AfterValidator, BeforeValidator, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from standardwebhooks import Webhook

from invites.models import EmailPolicy

# Development defaults. They are public (README, SPEC §7) and refused in production (SPEC §10).
# Built from readable phrases so nobody mistakes them for real keys.
DEV_TOKEN_KEYS = "dev1:" + base64.b64encode(b"dev-only-token-key-do-not-use-in-prod").decode()
DEV_WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"invites-dev-webhook-secret-0001!").decode()
DEV_API_KEY = "dev-api-key"
DEV_API_KEYS = f"{DEV_API_KEY}=create:invitations read:invitations manage:invitations"
DEV_AUTH0_CLIENT_SECRET = "dev-secret"  # noqa: S105 - public dev default, refused in production
# The fake SendGrid's Event Webhook verification key (`sandbox/sendgrid_events.py` signs with its
# private half, derived from the phrase "invites-dev-sendgrid-events-key!"). Development only.
DEV_SENDGRID_EVENT_PUBLIC_KEY = (
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEZ5r0ur0LOY/f+orgOO/r368Mq11UfQs+bFkd+ZoymOSAh6NfHk3kAmnG7Hd1"
    "PoHIXOoWHJamUH394mvno4NUCg=="
)

# The shortest secret production accepts, in bytes (after base64 decoding where keys are base64).
MIN_SECRET_BYTES = 32
# How to make a good value, in the errors of a refused start (and in .env.example).
GENERATE_KEYRING_ENTRY = (
    "python -c \"import os,base64;print('k1:'+base64.b64encode(os.urandom(32)).decode())\""
)
GENERATE_WHSEC = "python -c \"import os,base64;print('whsec_'+base64.b64encode(os.urandom(32)).decode())\""
GENERATE_API_KEY = 'python -c "import secrets;print(secrets.token_urlsafe(32))"'
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


def parse_keyring(raw: str, *, name: str, min_bytes: int = 32) -> list[tuple[str, bytes]]:
    """Parse `kid:base64key,kid:base64key`; the first key is the active one."""
    keys: list[tuple[str, bytes]] = []
    for item in filter(None, (part.strip() for part in raw.split(","))):
        kid, sep, b64 = item.partition(":")
        if not sep or not kid or not kid.isascii() or len(kid) > 16:
            raise ValueError(f"{name}: each entry must be 'kid:base64key' with a short ASCII kid")
        try:
            key = base64.b64decode(b64, validate=True)
        except ValueError as exc:
            raise ValueError(f"{name}: key {kid!r} is not valid base64") from exc
        if len(key) < min_bytes:
            raise ValueError(
                f"{name}: key {kid!r} must be at least {min_bytes} bytes. "
                f"Generate one with `{GENERATE_KEYRING_ENTRY}`."
            )
        if any(k == kid for k, _ in keys):
            raise ValueError(f"{name}: key id {kid!r} appears twice")
        keys.append((kid, key))
    if not keys:
        raise ValueError(f"{name}: at least one key is required")
    return keys


def parse_api_keys(raw: str) -> dict[str, frozenset[str]]:
    """Parse `key=perm perm,key2=perm`: each static API key with the permissions it holds."""
    keys: dict[str, frozenset[str]] = {}
    for item in filter(None, (part.strip() for part in raw.split(","))):
        key, sep, perms = item.partition("=")
        key = key.strip()
        if not sep or len(key) < 8 or not perms.split():
            raise ValueError(
                "INVITES_API_KEYS: each entry must be 'key=permission ...' (keys of 8+ characters)"
            )
        keys[key] = frozenset(perms.split())
    return keys


RATE = r"^[1-9][0-9]*/(second|minute|hour|day)$"


class Settings(BaseSettings):
    """All settings of the API, the worker and the CLI (env prefix `INVITES_`)."""

    model_config = SettingsConfigDict(env_prefix="INVITES_", env_file=".env", extra="ignore")

    # Production unless told otherwise: a forgotten variable then refuses to start on public dev
    # defaults instead of serving with them. `invites dev` and the tests set `development`.
    env: Literal["development", "production"] = "production"

    # Temporal
    temporal_address: str = "127.0.0.1:7233"
    temporal_namespace: str = "default"
    temporal_api_key: SecretStr | None = None
    temporal_tls: bool = False
    temporal_ui_port: int = 8233
    # Where people open the Temporal UI (links from /ops and the `invites dev` banner to each
    # run); unset: http://127.0.0.1:<temporal_ui_port>, the one `invites dev` starts.
    temporal_ui_url: str = ""
    # Browser origins of the Temporal UI, allowed (CORS) to call the codec endpoint.
    ui_origins: list[str] = ["http://127.0.0.1:8233", "http://localhost:8233"]
    task_queue: str = "invitations"
    # The tenant's ceiling for the look-ups before first mails, in Auth0 calls per second: a
    # batched user search (up to `auth0_lookup_batch` addresses) is one call (activities/lookups.py).
    max_task_queue_activities_per_second: float = Field(2.0, gt=0)

    # Database
    database_url: str = "sqlite+aiosqlite:///.invites/invites.db"

    # Invitations
    email_policy: EmailPolicy = "match"
    default_expires_in: timedelta = timedelta(days=14)
    default_reminders: Annotated[list[timedelta], NoDecode] = [timedelta(days=3), timedelta(days=7)]
    # The Auth0 roles an invitation may grant (comma-separated names): anything else is refused
    # (`role_not_grantable`), so a funnel key cannot hand out `admin`.
    grantable_roles: Annotated[list[str], NoDecode] = ["customer", "member"]
    # Derived from the API and Auth0 addresses when left unset (see _derive_addresses).
    public_base_url: str = ""
    # Where /i/{token} sends the invitee: for a tenant, its /authorize URL with the app's client
    # id, redirect URI, scope and audience (the API adds invitation, login_hint, screen_hint).
    signin_url: str = ""
    claim_namespace: str = "https://invites.dev/"
    # Claim by verified email (SPEC §10): a login without the link, whose identity provider
    # verified the address, gets that address's pending invitations. False: every claim is `none`.
    claim_by_verified_email: bool = True
    # Provisioned mode: the database connection the accounts are created in, and where the
    # password-change ticket sends the person once the password is set (the customer space;
    # default <public_base_url>/app).
    auth0_database_connection: str = "Username-Password-Authentication"
    provisioned_result_url: str = ""

    # Keys and secrets
    token_keys: SecretStr = SecretStr(DEV_TOKEN_KEYS)
    payload_keys: SecretStr | None = None
    webhook_secret: SecretStr = SecretStr(DEV_WEBHOOK_SECRET)
    # Rotation without a window: secrets still accepted (comma-separated `whsec_…`) while the
    # Action changes over to the new INVITES_WEBHOOK_SECRET; dropped once it has.
    webhook_previous_secrets: SecretStr | None = None
    api_keys: SecretStr = SecretStr(DEV_API_KEYS)

    # Auth0 (management API through auth0-python; base URL points at the sandbox in dev)
    auth0_domain: str = "127.0.0.1:8100"
    auth0_base_url: str = "http://127.0.0.1:8100"
    auth0_client_id: str = "dev-client"
    auth0_client_secret: SecretStr = SecretStr(DEV_AUTH0_CLIENT_SECRET)
    auth0_audience: str = ""  # the Management API audience; default <auth0_base_url>/api/v2/
    auth0_timeout: float = 10.0
    # Addresses per Auth0 user search (`email:("a" OR "b" …)`), the look-ups that arrive together.
    auth0_lookup_batch: int = Field(50, ge=1, le=100)

    # HTTP API
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    api_audience: str = "https://invites.local/api"
    auth0_issuer: str = ""  # default <auth0_base_url>/
    auth0_jwks_url: str | None = None  # default: <auth0_base_url>/.well-known/jwks.json
    # Permissions come from an access token's `permissions` claim (Auth0 RBAC) only: a user can
    # ask for any `scope`. True also counts the `scope` of machine-to-machine tokens
    # (client-credentials grants, which only the tenant's admins can authorize).
    scope_permissions_for_m2m: bool = False
    webhook_receipt_ttl: timedelta = timedelta(days=1)
    # Swagger UI at /docs (and ReDoc): unset, on in development and off in production, where it
    # is one more page to serve; /openapi.json is always served.
    api_docs: bool | None = None
    # The bearer token Prometheus scrapes `/metrics` with. Unset: open in development, off (404)
    # in production, where request counts and rejection reasons are not for everyone.
    metrics_token: SecretStr | None = None
    # Per client address (api/limits.py), as "<count>/<second|minute|hour|day>": invitation
    # links opened, and failed authentications (bad keys, tokens, webhook signatures); past
    # either, 429 with Retry-After. Behind a proxy, list its addresses in trusted_proxies
    # (comma-separated, or "*") so the forwarded client address counts, not the proxy's.
    rate_limit_links: str = Field("120/minute", pattern=RATE)
    rate_limit_auth_failures: str = Field("30/minute", pattern=RATE)
    trusted_proxies: str = "127.0.0.1"

    # Logs and worker metrics (docs/operations.md)
    # `auto`: one JSON object per line in production, readable text in development.
    log_format: Literal["auto", "json", "text"] = "auto"
    log_level: Annotated[
        Literal["DEBUG", "INFO", "WARNING", "ERROR"], BeforeValidator(lambda v: str(v).strip().upper())
    ] = "INFO"
    # The worker's Prometheus endpoint for Temporal SDK metrics; empty or `off` disables it.
    worker_metrics_port: Annotated[
        Annotated[int, Field(ge=1, le=65535)] | None,
        BeforeValidator(lambda v: None if str(v).strip().lower() in ("", "off", "none") else v),
    ] = 9464
    # The IP address it listens on; unset: 0.0.0.0 in production (scraped from outside the
    # container), 127.0.0.1 in development.
    worker_metrics_host: Annotated[
        str | None, AfterValidator(lambda v: v if v is None else str(ipaddress.ip_address(v)))
    ] = None

    # Mail
    mail_backend: Literal["sendgrid", "outbox"] = "outbox"
    sendgrid_api_key: SecretStr | None = None
    sendgrid_host: str = "https://api.sendgrid.com"
    mail_from: str = "invitations@invites.local"
    mail_from_name: str = "Invites"
    sendgrid_template_invite: str | None = None
    sendgrid_template_reminder: str | None = None
    # SendGrid's Event Webhook verification key (Mail Settings → Signed Event Webhook: base64 of
    # the ECDSA P-256 public key). Unset: POST /v1/webhooks/sendgrid answers 401 to everything;
    # in development it defaults to the fake SendGrid's key (DEV_SENDGRID_EVENT_PUBLIC_KEY).
    sendgrid_event_public_key: str | None = None
    # Keep the whole mail (link included) in our outbox even when SendGrid delivers it, so
    # /dev/outbox shows it: for `invites dev`, whose mail goes through the fake SendGrid.
    # Production refuses it (the link is a credential, not kept at rest).
    mail_outbox_copy: bool = False
    # The funnel's known sources (comma-separated keywords): /metrics labels the funnel counters
    # by source only when they are listed (others count as `other`), so labels stay bounded.
    funnel_sources: Annotated[list[str], NoDecode] = []

    # CRM and events out
    crm_backend: Literal["hubspot", "webhook", "none"] = "none"
    hubspot_access_token: SecretStr | None = None
    hubspot_host: str = "https://api.hubapi.com"
    events_url: str | None = None
    events_secret: SecretStr | None = None

    @field_validator("default_expires_in", mode="before")
    @classmethod
    def _seconds(cls, value: object) -> object:
        """Durations are seconds (`1209600`) or ISO 8601 (`P14D`)."""
        return int(value) if isinstance(value, str) and value.strip().isdigit() else value

    @field_validator("default_reminders", mode="before")
    @classmethod
    def _reminder_list(cls, value: object) -> object:
        """A JSON list, or comma-separated seconds / ISO 8601 durations (`259200,P7D`)."""
        if isinstance(value, str):
            text = value.strip()
            value = (
                json.loads(text)
                if text.startswith("[")
                else [p.strip() for p in text.split(",") if p.strip()]
            )
        if isinstance(value, list):
            return [cls._seconds(v) for v in value]
        return value

    @field_validator("grantable_roles", "funnel_sources", mode="before")
    @classmethod
    def _role_list(cls, value: object) -> object:
        """Comma-separated role names (`customer,member`), or a JSON list."""
        if isinstance(value, str):
            text = value.strip()
            value = json.loads(text) if text.startswith("[") else [p.strip() for p in text.split(",")]
        return [v for v in value if v] if isinstance(value, list) else value

    @field_validator("default_reminders")
    @classmethod
    def _sorted_reminders(cls, value: list[timedelta]) -> list[timedelta]:
        return sorted(value)

    @model_validator(mode="after")
    def _derive_addresses(self) -> Settings:
        """Addresses that follow from others unless set: one port change moves them all."""
        auth0 = self.auth0_base_url.rstrip("/")
        self.public_base_url = self.public_base_url or f"http://{self.api_host}:{self.api_port}"
        self.temporal_ui_url = self.temporal_ui_url or f"http://127.0.0.1:{self.temporal_ui_port}"
        self.provisioned_result_url = self.provisioned_result_url or f"{self.public_base_url.rstrip('/')}/app"
        self.auth0_audience = self.auth0_audience or f"{auth0}/api/v2/"
        self.auth0_issuer = self.auth0_issuer or f"{auth0}/"
        if self.env == "development" and self.sendgrid_event_public_key is None:
            self.sendgrid_event_public_key = DEV_SENDGRID_EVENT_PUBLIC_KEY
        if not self.signin_url:
            query = urlencode(
                {
                    "client_id": self.auth0_client_id,
                    "response_type": "code",
                    "redirect_uri": f"{self.public_base_url.rstrip('/')}/app/callback",
                    "scope": "openid profile email",
                    "audience": self.api_audience,
                },
                quote_via=quote,
            )
            self.signin_url = f"{auth0}/authorize?{query}"
        return self

    @model_validator(mode="after")
    def _check(self) -> Settings:
        parse_keyring(self.token_keys.get_secret_value(), name="INVITES_TOKEN_KEYS")
        parse_api_keys(self.api_keys.get_secret_value())
        for secret in self.webhook_secrets:
            try:
                Webhook(secret)
            except Exception:
                raise ValueError(
                    "INVITES_WEBHOOK_SECRET / INVITES_WEBHOOK_PREVIOUS_SECRETS: not a Standard Webhooks "
                    "secret (whsec_ followed by base64)"
                ) from None
        if self.payload_keys is not None:
            parse_keyring(self.payload_keys.get_secret_value(), name="INVITES_PAYLOAD_KEYS")
        if self.env == "production":
            self._refuse_unsafe_in_production()
        if self.mail_backend == "sendgrid" and self.sendgrid_api_key is None:
            raise ValueError("INVITES_SENDGRID_API_KEY is required when INVITES_MAIL_BACKEND=sendgrid")
        if self.crm_backend == "hubspot" and self.hubspot_access_token is None:
            raise ValueError("INVITES_HUBSPOT_ACCESS_TOKEN is required when INVITES_CRM_BACKEND=hubspot")
        if self.crm_backend == "webhook" and not (self.events_url and self.events_secret):
            raise ValueError(
                "INVITES_EVENTS_URL and INVITES_EVENTS_SECRET are required with INVITES_CRM_BACKEND=webhook"
            )
        return self

    def _refuse_unsafe_in_production(self) -> None:
        """Production fails closed (SPEC §10): every problem found, each naming its setting and
        how to make a good value, in one error."""
        problems: dict[str, str] = {}
        dev_values = {
            "INVITES_TOKEN_KEYS": (
                self.token_keys,
                DEV_TOKEN_KEYS,
                f"Generate one with `{GENERATE_KEYRING_ENTRY}`",
            ),
            "INVITES_WEBHOOK_SECRET": (
                self.webhook_secret,
                DEV_WEBHOOK_SECRET,
                f"Generate one with `{GENERATE_WHSEC}`",
            ),
            "INVITES_WEBHOOK_PREVIOUS_SECRETS": (
                self.webhook_previous_secrets or SecretStr(""),
                DEV_WEBHOOK_SECRET,
                f"Generate one with `{GENERATE_WHSEC}`",
            ),
            "INVITES_EVENTS_SECRET": (
                self.events_secret or SecretStr(""),
                DEV_WEBHOOK_SECRET,
                f"Generate one with `{GENERATE_WHSEC}`",
            ),
            "INVITES_AUTH0_CLIENT_SECRET": (
                self.auth0_client_secret,
                DEV_AUTH0_CLIENT_SECRET,
                "Copy it from your Machine-to-Machine application in the Auth0 dashboard",
            ),
        }
        for name, (secret, dev, how) in dev_values.items():
            if dev in secret.get_secret_value():
                problems[name] = f"{name} holds a public development default. {how}."
        if DEV_API_KEY in self.api_key_permissions:
            problems["INVITES_API_KEYS"] = (
                f"INVITES_API_KEYS holds the public development key {DEV_API_KEY!r}. "
                f"Generate each key with `{GENERATE_API_KEY}`."
            )

        short: dict[str, tuple[list[int], str]] = {
            "INVITES_WEBHOOK_SECRET": ([_webhook_key_bytes(self.webhook_secret)], GENERATE_WHSEC),
            "INVITES_WEBHOOK_PREVIOUS_SECRETS": (
                [_webhook_key_bytes(SecretStr(older)) for older in self.webhook_secrets[1:]],
                GENERATE_WHSEC,
            ),
            "INVITES_EVENTS_SECRET": (
                [_webhook_key_bytes(self.events_secret)] if self.events_secret else [],
                GENERATE_WHSEC,
            ),
            "INVITES_API_KEYS": ([len(key.encode()) for key in self.api_key_permissions], GENERATE_API_KEY),
            "INVITES_METRICS_TOKEN": (
                [len(self.metrics_token.get_secret_value().encode())] if self.metrics_token else [],
                GENERATE_API_KEY,
            ),
        }
        for name, (sizes, how) in short.items():
            if name not in problems and any(size < MIN_SECRET_BYTES for size in sizes):
                problems[name] = (
                    f"{name} holds a key shorter than {MIN_SECRET_BYTES} bytes. Generate one with `{how}`."
                )

        if self.sendgrid_event_public_key == DEV_SENDGRID_EVENT_PUBLIC_KEY:
            problems["INVITES_SENDGRID_EVENT_PUBLIC_KEY"] = (
                "INVITES_SENDGRID_EVENT_PUBLIC_KEY is the fake SendGrid's public development key. Copy "
                "the verification key from SendGrid (Settings → Mail Settings → Signed Event Webhook)."
            )
        if self.mail_outbox_copy:
            problems["INVITES_MAIL_OUTBOX_COPY"] = (
                "INVITES_MAIL_OUTBOX_COPY=true keeps every invitation link in the database. Unset it."
            )
        if self.mail_backend == "outbox":
            problems["INVITES_MAIL_BACKEND"] = (
                "INVITES_MAIL_BACKEND=outbox keeps every mail in the database, so nobody receives an "
                "invitation. Set INVITES_MAIL_BACKEND=sendgrid and INVITES_SENDGRID_API_KEY to a "
                "SendGrid API key with the Mail Send permission."
            )
        auth0 = urlsplit(self.auth0_base_url)
        if auth0.scheme != "https" or (auth0.hostname or "") in LOOPBACK_HOSTS:
            problems["INVITES_AUTH0_BASE_URL"] = (
                f"INVITES_AUTH0_BASE_URL={self.auth0_base_url} is the local sandbox or plain http, not "
                "a tenant. Set it to your tenant's https URL (e.g. https://your-tenant.eu.auth0.com)."
            )

        if problems:
            raise ValueError(
                "production refuses to start (INVITES_ENV=development only on a developer's machine):\n"
                + "\n".join(f"- {problem}" for problem in problems.values())
            )

    @property
    def jwks_url(self) -> str:
        return self.auth0_jwks_url or self.auth0_base_url.rstrip("/") + "/.well-known/jwks.json"

    @property
    def webhook_secrets(self) -> list[str]:
        """The secrets a webhook may be signed with: the current one first, then the previous."""
        previous = self.webhook_previous_secrets.get_secret_value() if self.webhook_previous_secrets else ""
        older = [secret.strip() for secret in previous.split(",") if secret.strip()]
        return [self.webhook_secret.get_secret_value(), *older]

    @property
    def api_key_permissions(self) -> dict[str, frozenset[str]]:
        return parse_api_keys(self.api_keys.get_secret_value())

    @property
    def token_keyring(self) -> list[tuple[str, bytes]]:
        return parse_keyring(self.token_keys.get_secret_value(), name="INVITES_TOKEN_KEYS")


def _webhook_key_bytes(secret: SecretStr) -> int:
    """The length of a Standard Webhooks secret's key (`whsec_` + base64), decoded as the
    `standardwebhooks` package decodes it; 0 when it does not decode."""
    encoded = secret.get_secret_value().strip().removeprefix("whsec_")
    try:
        return len(base64.b64decode(encoded + "=="))
    except ValueError:
        return 0


@cache
def get_settings() -> Settings:
    return Settings()
