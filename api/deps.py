"""Typed dependencies: routes ask for what they need, tests replace the app's services."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from api.auth import CREATE, MANAGE, READ, Principal, require
from api.services import Services


async def get_services(request: Request) -> Services:
    return request.app.state.services


ServicesDep = Annotated[Services, Depends(get_services)]


# Declared for the OpenAPI document (and /docs' Authorize button); `Authenticator` reads them.
bearer = HTTPBearer(auto_error=False, description="An API key or an Auth0 access token")
api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="An API key")


async def get_principal(
    request: Request,
    services: ServicesDep,
    _bearer_credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)] = None,
    _key: Annotated[str | None, Depends(api_key_header)] = None,
) -> Principal:
    return await services.auth.principal(request)


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def _needs(permission: str):
    async def check(principal: PrincipalDep) -> Principal:
        return require(principal, permission)

    return check


CreatorDep = Annotated[Principal, Depends(_needs(CREATE))]
ReaderDep = Annotated[Principal, Depends(_needs(READ))]
ManagerDep = Annotated[Principal, Depends(_needs(MANAGE))]
