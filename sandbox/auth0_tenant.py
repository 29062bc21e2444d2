"""The state of the sandbox Auth0 tenant: users, roles, role grants, management tokens.

Kept apart from the HTTP layer so that the Management API fake and the sandbox's login pages
(`sandbox.login`) work on the same tenant. Optionally persisted to a JSON file so `invites dev` keeps its
users across restarts.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import string
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sandbox.faults import Clock

DATABASE_CONNECTION = "Username-Password-Authentication"
SOCIAL_CONNECTIONS = ("google-oauth2", "facebook")
# Enterprise connections (connection -> provider): users come from the company's identity
# provider, and Auth0 refuses to update their `email_verified`.
ENTERPRISE_CONNECTIONS = {"acme-saml": "samlp"}
SEEDED_ROLES = {
    "customer": "Customers who accepted an invitation.",
    "member": "Members of the customer space.",
    "admin": "Administrators.",
}
_ALNUM = string.ascii_letters + string.digits
_PBKDF2_ROUNDS = 10_000


class Auth0Error(Exception):
    """A Management API error, answered as Auth0's `{statusCode, error, message, errorCode}`."""

    def __init__(self, status: int, message: str, error_code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.error_code = error_code


def user_not_found() -> Auth0Error:
    return Auth0Error(404, "The user does not exist.", "inexistent_user")


def merge_metadata(current: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """Auth0's metadata merge: top-level keys merged, nested values replaced, null deletes."""
    merged = dict(current)
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged


def _random_id(prefix: str, length: int, alphabet: str = _ALNUM) -> str:
    return prefix + "".join(secrets.choice(alphabet) for _ in range(length))


def _hash_password(password: str, salt: bytes | None = None) -> str:
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, _PBKDF2_ROUNDS)
    return f"{salt.hex()}${digest.hex()}"


class Tenant:
    """Users, roles and grants of one sandbox tenant, in memory (and in `path` if given)."""

    def __init__(self, *, path: str | Path | None = None, clock: Clock = time.time) -> None:
        self.path = Path(path) if path else None
        self.clock = clock
        self.users: dict[str, dict[str, Any]] = {}
        self.roles: dict[str, dict[str, Any]] = {}
        self.user_roles: dict[str, list[str]] = {}
        self.passwords: dict[str, str] = {}
        self.tokens: dict[str, float] = {}
        # Role ids newly granted per user; a repeated grant of a held role adds nothing.
        self.role_assignments: Counter[str] = Counter()
        if self.path and self.path.exists():
            self._load()
        else:
            for name, description in SEEDED_ROLES.items():
                self.add_role(name, description)

    # -- users -------------------------------------------------------------------------------

    def now_iso(self) -> str:
        stamp = datetime.fromtimestamp(self.clock(), UTC)
        return stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z")

    def create_user(
        self,
        email: str,
        *,
        connection: str = DATABASE_CONNECTION,
        password: str | None = None,
        email_verified: bool | None = None,
        name: str | None = None,
        app_metadata: dict[str, Any] | None = None,
        user_metadata: dict[str, Any] | None = None,
        **profile: Any,
    ) -> dict[str, Any]:
        """Create a user. Database users get a lower-cased email, as Auth0 stores them."""
        social = connection in SOCIAL_CONNECTIONS
        if not social:
            email = email.lower()
            if any(u["email"] == email for u in self.users_in(connection)):
                raise Auth0Error(409, "The user already exists.", "auth0_idp_error")
        provider = connection if social else ENTERPRISE_CONNECTIONS.get(connection, "auth0")
        local_id = _random_id("", 21, string.digits) if social else secrets.token_hex(12)
        now = self.now_iso()
        user: dict[str, Any] = {
            "user_id": f"{provider}|{local_id}",
            "email": email,
            "email_verified": social if email_verified is None else email_verified,
            "name": name or email,
            "nickname": email.split("@")[0],
            "picture": "https://cdn.auth0.com/avatars/default.png",
            "identities": [
                {
                    "connection": connection,
                    "user_id": local_id,
                    "provider": provider,
                    "isSocial": social,
                }
            ],
            "created_at": now,
            "updated_at": now,
            "logins_count": 0,  # until the first login (record_login)
            "app_metadata": dict(app_metadata or {}),
            "user_metadata": dict(user_metadata or {}),
            **profile,
        }
        self.users[user["user_id"]] = user
        if password is not None:
            self.passwords[user["user_id"]] = _hash_password(password)
        self.save()
        return user

    def users_in(self, connection: str) -> list[dict[str, Any]]:
        return [u for u in self.users.values() if u["identities"][0]["connection"] == connection]

    def user(self, user_id: str) -> dict[str, Any]:
        try:
            return self.users[user_id]
        except KeyError:
            raise user_not_found() from None

    def users_by_email(self, email: str) -> list[dict[str, Any]]:
        """Exact, case-sensitive match, like Auth0's `users-by-email`."""
        return [u for u in self.users.values() if u["email"] == email]

    def update_user(self, user_id: str, patch: dict[str, Any]) -> dict[str, Any]:
        """Apply a PATCH body with Auth0's semantics (metadata merged, null unsets)."""
        user = self.user(user_id)
        database = not user["identities"][0]["isSocial"]
        if "email_verified" in patch and user["identities"][0]["connection"] in ENTERPRISE_CONNECTIONS:
            raise Auth0Error(
                400,
                "Updating email_verified is not supported for enterprise connections.",
                "operation_not_supported",
            )
        for key, value in patch.items():
            if key in ("app_metadata", "user_metadata"):
                user[key] = merge_metadata(user.get(key, {}), value or {})
            elif key == "password":
                self.passwords[user_id] = _hash_password(value)
            elif key in ("verify_email", "verify_phone_number", "connection", "client_id"):
                continue
            elif value is None:
                user.pop(key, None)
            elif key == "email":
                new_email = value.lower() if database else value
                if new_email != user["email"] and "email_verified" not in patch:
                    user["email_verified"] = False
                user["email"] = new_email
            else:
                user[key] = value
        user["updated_at"] = self.now_iso()
        self.save()
        return user

    def delete_user(self, user_id: str) -> bool:
        """Remove a user with its password and roles; False when there was none."""
        existed = self.users.pop(user_id, None) is not None
        self.passwords.pop(user_id, None)
        self.user_roles.pop(user_id, None)
        self.save()
        return existed

    def user_in(self, connection: str, email: str) -> dict[str, Any] | None:
        """The user of a connection with this email (database emails are compared lower-cased)."""
        wanted = email if connection in SOCIAL_CONNECTIONS else email.lower()
        return next((u for u in self.users_in(connection) if u["email"] == wanted), None)

    def record_login(self, user_id: str, ip: str | None = None) -> int:
        """Count a login as Auth0 does (`logins_count`, `last_login`, `last_ip`); the new count."""
        user = self.user(user_id)
        user["logins_count"] = int(user.get("logins_count", 0)) + 1
        user["last_login"] = self.now_iso()
        if ip:
            user["last_ip"] = ip
        self.save()
        return user["logins_count"]

    def check_password(self, user_id: str, password: str) -> bool:
        stored = self.passwords.get(user_id)
        if stored is None:
            return False
        salt, _ = stored.split("$", 1)
        return hmac.compare_digest(stored, _hash_password(password, bytes.fromhex(salt)))

    # -- roles -------------------------------------------------------------------------------

    def add_role(self, name: str, description: str = "") -> dict[str, Any]:
        role = {"id": _random_id("rol_", 16), "name": name, "description": description}
        self.roles[role["id"]] = role
        self.save()
        return role

    def role_named(self, name: str) -> dict[str, Any]:
        for role in self.roles.values():
            if role["name"] == name:
                return role
        raise KeyError(name)

    def roles_of(self, user_id: str) -> list[dict[str, Any]]:
        self.user(user_id)
        return [self.roles[r] for r in self.user_roles.get(user_id, []) if r in self.roles]

    def assign_roles(self, user_id: str, role_ids: list[str]) -> int:
        """Grant roles; returns how many were newly granted (held ones are left as they are)."""
        self.user(user_id)
        if any(r not in self.roles for r in role_ids):
            raise Auth0Error(
                404,
                "One or more of the roles you are attempting to assign do not exist.",
                "inexistent_role",
            )
        held = self.user_roles.setdefault(user_id, [])
        added = [r for r in dict.fromkeys(role_ids) if r not in held]
        held.extend(added)
        self.role_assignments[user_id] += len(added)
        self.save()
        return len(added)

    def remove_roles(self, user_id: str, role_ids: list[str]) -> None:
        self.user(user_id)
        held = self.user_roles.get(user_id, [])
        self.user_roles[user_id] = [r for r in held if r not in role_ids]
        self.save()

    # -- management tokens -------------------------------------------------------------------

    def issue_token(self, ttl: float) -> str:
        now = self.clock()
        self.tokens = {t: exp for t, exp in self.tokens.items() if exp > now}
        token = secrets.token_urlsafe(32)
        self.tokens[token] = now + ttl
        self.save()
        return token

    def token_expiry(self, token: str) -> float | None:
        return self.tokens.get(token)

    # -- persistence -------------------------------------------------------------------------

    _PERSISTED = ("users", "roles", "user_roles", "passwords", "tokens", "role_assignments")

    def save(self) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(self.path.suffix + ".tmp")
        # No indent: the C encoder (indenting falls back to the pure-Python one, 10x slower).
        tmp.write_text(json.dumps({k: getattr(self, k) for k in self._PERSISTED}, separators=(",", ":")))
        os.replace(tmp, self.path)

    def _load(self) -> None:
        data = json.loads(self.path.read_text()) if self.path else {}
        for key in self._PERSISTED:
            value = data.get(key, {})
            setattr(self, key, Counter(value) if key == "role_assignments" else value)
