"""Typed dependencies: routes ask for what they need, tests replace the app's services."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from api.auth import CREATE, MANAGE, READ, Principal, require
from api.services import Services


def get_services(request: Request) -> Services:
    return request.app.state.services


ServicesDep = Annotated[Services, Depends(get_services)]


async def get_principal(request: Request, services: ServicesDep) -> Principal:
    return await services.auth.principal(request)


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def _needs(permission: str):
    async def check(principal: PrincipalDep) -> Principal:
        return require(principal, permission)

    return check


CreatorDep = Annotated[Principal, Depends(_needs(CREATE))]
ReaderDep = Annotated[Principal, Depends(_needs(READ))]
ManagerDep = Annotated[Principal, Depends(_needs(MANAGE))]
