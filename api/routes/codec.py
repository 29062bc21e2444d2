"""Temporal's remote codec protocol, so the Temporal UI (and `temporal --codec-endpoint`) can
show ops the decrypted payloads: `POST /codec/decode` and `POST /codec/encode`.

Body and answer are `{"payloads": [<Payload as protobuf JSON>]}`. Decoding shows ops what they
may read (`read:invitations`); encoding makes payloads the workers will act on
(`manage:invitations`). In development (INVITES_ENV=development) the local UI may call both
without credentials. CORS, for the UI's origins and these routes only, is set up in the app.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials
from google.protobuf import json_format
from temporalio.api.common.v1 import Payloads

from api.auth import MANAGE, READ, require
from api.deps import ServicesDep, api_key_header, bearer
from api.errors import ApiError
from invites.codec import EncryptionCodec, UnknownPayloadKey, payload_keyring
from invites.schemas import ErrorBody

router = APIRouter(prefix="/codec", tags=["ops"])


def _codec(permission: str) -> Callable[..., Awaitable[EncryptionCodec]]:
    async def codec(
        request: Request,
        services: ServicesDep,
        _bearer_credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)] = None,
        _key: Annotated[str | None, Depends(api_key_header)] = None,
    ) -> EncryptionCodec:
        if services.settings.env != "development":  # the local UI calls it without credentials
            require(await services.auth.principal(request), permission)
        keyring = payload_keyring(services.settings)
        if keyring is None:
            raise ApiError(404, "not_found", "Payload encryption is off (INVITES_PAYLOAD_KEYS is not set).")
        return EncryptionCodec(keyring)

    return codec


Decoder = Annotated[EncryptionCodec, Depends(_codec(READ))]
Encoder = Annotated[EncryptionCodec, Depends(_codec(MANAGE))]


RESPONSES = {
    404: {"model": ErrorBody, "description": "Payload encryption is off"},
    422: {"model": ErrorBody, "description": "Not protobuf JSON, or a payload key is unknown"},
}


@router.post("/decode", responses=RESPONSES)
async def decode(request: Request, codec: Decoder) -> JSONResponse:
    """Decrypt payloads for display (Temporal UI, CLI)."""
    payloads = await _read(request)
    try:
        decoded = await codec.decode(payloads.payloads)
    except UnknownPayloadKey as exc:
        raise ApiError(422, "unknown_payload_key", str(exc)) from None
    return _answer(decoded)


@router.post("/encode", responses=RESPONSES)
async def encode(request: Request, codec: Encoder) -> JSONResponse:
    """Encrypt payloads (used by tools that send input through the UI or CLI)."""
    return _answer(await codec.encode((await _read(request)).payloads))


async def _read(request: Request) -> Payloads:
    body = await request.body()  # at most 4 MiB (api/limits.py)
    try:
        return json_format.Parse(body, Payloads(), ignore_unknown_fields=True)
    except (json_format.ParseError, UnicodeDecodeError):
        raise ApiError(
            422, "invalid_request", 'The body must be {"payloads": [...]} in protobuf JSON.'
        ) from None


def _answer(payloads: list) -> JSONResponse:
    return JSONResponse(json_format.MessageToDict(Payloads(payloads=payloads)))
