"""Error bodies `{"error": {"code", "message"}}` for every failure, never a 500 for bad input."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from temporalio.service import RPCError, RPCStatusCode

from invites.auth0 import Auth0TokenError

log = logging.getLogger("invites.api")

RETRY_AFTER_S = "2"
_UNAVAILABLE = {
    RPCStatusCode.UNAVAILABLE,
    RPCStatusCode.DEADLINE_EXCEEDED,
    RPCStatusCode.RESOURCE_EXHAUSTED,
    RPCStatusCode.CANCELLED,
}


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status, headers=headers)


def unavailable(what: str) -> ApiError:
    return ApiError(
        503, "unavailable", f"{what} is unavailable right now; retry shortly.", {"Retry-After": RETRY_AFTER_S}
    )


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.message, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        message = (
            f"{where}: {first.get('msg', 'invalid')}" if where else str(first.get("msg", "invalid request"))
        )
        return error_response(422, "invalid_request", message)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return error_response(exc.status_code, code, str(exc.detail), getattr(exc, "headers", None))

    @app.exception_handler(RPCError)
    async def _temporal(_: Request, exc: RPCError) -> JSONResponse:
        if exc.status in _UNAVAILABLE:
            # RESOURCE_EXHAUSTED includes Temporal's limit of in-flight updates per workflow.
            return error_response(
                503,
                "unavailable",
                "Temporal is busy or unreachable; retry shortly.",
                {"Retry-After": RETRY_AFTER_S},
            )
        log.error("temporal error %s", exc.status.name)
        return error_response(502, "temporal_error", "Temporal refused the request.")

    @app.exception_handler(OperationalError)
    @app.exception_handler(DBAPIError)
    async def _database(_: Request, exc: Exception) -> JSONResponse:
        log.error("database unavailable: %s", type(exc).__name__)
        return error_response(
            503, "unavailable", "The database is unavailable; retry shortly.", {"Retry-After": RETRY_AFTER_S}
        )

    @app.exception_handler(Auth0TokenError)
    async def _auth0(_: Request, exc: Auth0TokenError) -> JSONResponse:
        return error_response(
            503, "unavailable", "Auth0 is unavailable; retry shortly.", {"Retry-After": RETRY_AFTER_S}
        )
