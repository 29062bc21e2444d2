"""Error bodies `{"error": {"code", "message"}}` for every failure, never a 500 for bad input.

`install` also makes the OpenAPI document say so: FastAPI documents its own validation body for
422 where the handler here answers `ErrorBody`, and an authenticated route can answer 401 and 403.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from temporalio.client import RPCTimeoutOrCancelledError
from temporalio.service import RPCError

from invites.auth0 import Auth0TokenError
from invites.errors import REFUSALS, refused
from invites.errors import unavailable as dependency_down
from invites.models import Reason
from invites.redemption import GONE
from invites.schemas import ErrorBody

log = logging.getLogger("invites.api")

RETRY_AFTER_S = "2"
_RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before retrying.",
        "required": True,
        "schema": {"type": "string"},
    }
}
# The answers any route can give (`FastAPI(responses=...)`): a body over the route's cap and a
# client past its rate limit (api/limits.py), and Temporal, the database or Auth0 down.
COMMON_RESPONSES: dict[int | str, dict[str, Any]] = {
    413: {"model": ErrorBody, "description": "`too_large`: the body is over this route's limit."},
    429: {
        "model": ErrorBody,
        "description": "`rate_limited`: too many links opened or failed authentications from this "
        "address; retry after `Retry-After` seconds.",
        "headers": _RETRY_AFTER,
    },
    503: {
        "model": ErrorBody,
        "description": "`unavailable`: a dependency is down; retry after `Retry-After` seconds.",
        "headers": _RETRY_AFTER,
    },
}
# HTTP statuses of the refusals' codes other than 409 (reason codes that say the invitation is
# gone answer 410).
REFUSAL_STATUS = {
    "not_found": 404,
    "unknown_role": 422,
    "role_not_grantable": 422,
    Reason.INVALID_EXPIRY.value: 422,
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


def refusal(exc: Exception) -> ApiError:
    """A refusal of the core (one of REFUSALS) as the API answers it."""
    refusal = refused(exc)
    if refusal is None:
        raise TypeError(f"not a refusal: {exc!r}")
    status = 410 if refusal.code in GONE else REFUSAL_STATUS.get(refusal.code, 409)
    return ApiError(status, refusal.code, refusal.message)


def install(app: FastAPI) -> None:
    _document_error_bodies(app)

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.message, exc.headers)

    async def _refused(_: Request, exc: Exception) -> JSONResponse:
        error = refusal(exc)
        return error_response(error.status, error.code, error.message)

    for kind in REFUSALS:
        app.add_exception_handler(kind, _refused)

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
        if exc.status_code == 400:
            # FastAPI's answer to a body it cannot decode at all (not UTF-8); malformed JSON is
            # already a 422 from validation, so both say the same thing.
            return error_response(422, "invalid_request", "The request body is not valid UTF-8 JSON.")
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return error_response(exc.status_code, code, str(exc.detail), getattr(exc, "headers", None))

    @app.exception_handler(RPCError)
    async def _temporal(_: Request, exc: RPCError) -> JSONResponse:
        if dependency_down(exc) is not None:
            return error_response(
                503,
                "unavailable",
                "Temporal is busy or unreachable; retry shortly.",
                {"Retry-After": RETRY_AFTER_S},
            )
        log.error("temporal error %s", exc.status.name)
        return error_response(502, "temporal_error", "Temporal refused the request.")

    @app.exception_handler(RPCTimeoutOrCancelledError)
    async def _temporal_timeout(_: Request, exc: RPCTimeoutOrCancelledError) -> JSONResponse:
        # An update or query call that ran out of time is not an RPCError: without this it
        # would be a 500. An update may still have been applied; a retry gets its answer.
        log.warning("temporal call timed out: %s", type(exc).__name__)
        return error_response(
            503,
            "unavailable",
            "Temporal did not answer in time; retry shortly.",
            {"Retry-After": RETRY_AFTER_S},
        )

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

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        # Starlette still logs the traceback; the caller gets the same shape as every error.
        return error_response(
            500, "internal_error", "Something went wrong on our side; retry later or contact support."
        )


_REF = "#/components/schemas/"
_ERROR_CONTENT = {"application/json": {"schema": {"$ref": f"{_REF}ErrorBody"}}}
_FASTAPI_422 = {"HTTPValidationError", "ValidationError"}
_AUTH_ERRORS = {
    "401": "`unauthorized` or `invalid_token`: no credential, or one that is not valid.",
    "403": "`forbidden`: the credential lacks the permission this route needs.",
}


def _document_error_bodies(app: FastAPI) -> None:
    """Post-process the generated OpenAPI once (FastAPI's documented way to extend it)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            _error_bodies(generate())
        return app.openapi_schema  # type: ignore[return-value]

    app.openapi = openapi  # type: ignore[method-assign]


def _error_bodies(document: dict[str, Any]) -> None:
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    error_body = ErrorBody.model_json_schema(ref_template=_REF + "{model}")
    for name, schema in {**error_body.pop("$defs", {}), "ErrorBody": error_body}.items():
        schemas.setdefault(name, schema)
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.get("responses", {})
            invalid = responses.get("422")
            if invalid and _refers_to(invalid, _FASTAPI_422):
                invalid.update(
                    description="`invalid_request`: the message names the field.", content=_ERROR_CONTENT
                )
            if operation.get("security"):  # an authenticated route
                for status, description in _AUTH_ERRORS.items():
                    responses.setdefault(status, {"description": description}).setdefault(
                        "content", _ERROR_CONTENT
                    )
    if not any(_refers_to(document["paths"], {name}) for name in _FASTAPI_422):
        for name in _FASTAPI_422:
            schemas.pop(name, None)


def _refers_to(value: Any, names: set[str]) -> bool:
    if isinstance(value, dict):
        ref = value.get("$ref")
        if isinstance(ref, str) and ref.removeprefix(_REF) in names:
            return True
        return any(_refers_to(v, names) for v in value.values())
    if isinstance(value, list):
        return any(_refers_to(v, names) for v in value)
    return False
