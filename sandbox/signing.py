"""RS256 signing keys of the Auth0 stand-in: access tokens for the API, JWKS for verifiers.

Keys can be rotated (the new key signs, the old one stays published until dropped) and persisted
to a JSON file so tokens survive a restart of `invites dev`.
"""

from __future__ import annotations

import json
import secrets
import time
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm


class SigningKeys:
    def __init__(self, path: str | Path | None = None) -> None:
        self._path = Path(path) if path else None
        self._keys: list[tuple[str, rsa.RSAPrivateKey]] = []
        if self._path and self._path.exists():
            for item in json.loads(self._path.read_text()):
                key = serialization.load_pem_private_key(item["pem"].encode(), password=None)
                self._keys.append((item["kid"], key))  # type: ignore[arg-type]

    def _ensure(self) -> None:
        if not self._keys:  # generated on first use: most fakes never sign anything
            self.rotate()

    @property
    def active_kid(self) -> str:
        self._ensure()
        return self._keys[0][0]

    def rotate(self, keep_old: bool = True) -> str:
        """A new key signs from now on; the old ones stay in the JWKS unless `keep_old=False`."""
        kid = "key-" + secrets.token_hex(6)
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self._keys = [(kid, key), *(self._keys if keep_old else [])]
        self._save()
        return kid

    def jwks(self) -> dict[str, Any]:
        self._ensure()
        keys = []
        for kid, key in self._keys:
            jwk = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
            keys.append({**jwk, "kid": kid, "use": "sig", "alg": "RS256"})
        return {"keys": keys}

    def sign(self, claims: dict[str, Any], *, kid: str | None = None) -> str:
        kid = kid or self.active_kid
        key = dict(self._keys).get(kid) or rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid})

    def access_token(
        self,
        *,
        issuer: str,
        audience: str,
        subject: str,
        permissions: list[str] | None = None,
        scope: str = "",
        ttl: int = 3600,
        extra: dict[str, Any] | None = None,
        kid: str | None = None,
    ) -> str:
        now = int(time.time())
        claims = {
            "iss": issuer,
            "aud": audience,
            "sub": subject,
            "iat": now,
            "exp": now + ttl,
            **(extra or {}),
        }
        if permissions is not None:
            claims["permissions"] = permissions
        if scope:
            claims["scope"] = scope
        return self.sign(claims, kid=kid)

    def _save(self) -> None:
        if not self._path:
            return
        self._path.parent.mkdir(parents=True, exist_ok=True)
        items = [
            {
                "kid": kid,
                "pem": key.private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                ).decode(),
            }
            for kid, key in self._keys
        ]
        self._path.write_text(json.dumps(items))
