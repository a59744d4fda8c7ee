"""One error shape for every function: `{"error": "<snake_case_code>", "message": "<human text>"}`.

Exceptions become that shape here and nowhere else: Litestar's own (404, 405, validation), ours
(`ApiError`), Postgres's (mapped by SQLSTATE class) and anything unexpected (a logged 500 that says
nothing about internals).
"""

from __future__ import annotations

import logging
from typing import Any

import msgspec
import psycopg
import psycopg_pool
from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.types import Send

log = logging.getLogger(__name__)


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers or {}


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None, **extra: Any
) -> Response:
    return Response(
        {"error": code, "message": message, **extra},
        status_code=status,
        media_type=MediaType.JSON,
        headers=headers,
    )


async def send_error(send: Send, status: int, code: str, message: str) -> None:
    """The same shape from ASGI middleware, which answers before Litestar's exception handlers can."""
    body = msgspec.json.encode({"error": code, "message": message})
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


HTTP_CODES = {
    400: "bad_request",
    401: "missing_or_invalid_authorization",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
    503: "service_unavailable",
}

# SQLSTATE (exact or by class) -> (status, code, what to say when Postgres itself raised it). The text of
# Postgres's own errors names tables, columns and internals and is never shown: only the messages our
# functions raise (plpgsql RAISE) are meant for users.
PG_ERRORS: dict[str, tuple[int, str, str]] = {
    "42501": (403, "forbidden", "you are not allowed to do that"),  # insufficient_privilege, RLS refusals
    "23505": (409, "conflict", "that already exists"),  # unique_violation
    "23503": (409, "conflict", "that refers to something missing, or something still refers to it"),
    "23514": (422, "check_violation", "a value breaks a rule"),
    "23502": (422, "not_null_violation", "a required value is missing"),
    "22": (400, "invalid_input", "a value has the wrong type or is out of range"),  # bad uuid, json, ...
    "P0001": (400, "rejected", "the request was rejected"),  # raise exception in our functions
    "57014": (504, "statement_timeout", "the query took too long"),
    "08": (503, "database_unavailable", "the database is unavailable, try again"),
    "53": (503, "database_unavailable", "the database is unavailable, try again"),
    "57P": (503, "database_unavailable", "the database is unavailable, try again"),
}


def raised_by_us(exc: psycopg.Error) -> bool:
    """A RAISE in one of our plpgsql functions: its message was written for users."""
    return exc.diag.source_function == "exec_stmt_raise"


def pg_error(exc: psycopg.Error) -> ApiError:
    state = exc.sqlstate or ""
    if not state and isinstance(exc, psycopg.DataError):
        # Refused by psycopg before it was sent (a NUL in a text value): the data exception Postgres would
        # have raised.
        state = "22000"
    if not state and isinstance(exc, psycopg.OperationalError):
        # The connection went under a statement without a word from the server (it was killed, the network
        # went): the database is unavailable, not the request wrong.
        return ApiError(
            503, "database_unavailable", "the database is unavailable, try again", {"Retry-After": "1"}
        )
    # PostgREST's convention, which our functions follow: SQLSTATE PTxyz answers with HTTP status xyz.
    if state.startswith("PT") and state[2:].isdigit() and 400 <= int(state[2:]) < 500 and raised_by_us(exc):
        status = int(state[2:])
        return ApiError(status, HTTP_CODES.get(status, "bad_request"), exc.diag.message_primary or "refused")
    for key in (state, state[:3], state[:2]):
        if key in PG_ERRORS:
            status, code, message = PG_ERRORS[key]
            if status < 500 and raised_by_us(exc) and exc.diag.message_primary:
                message = exc.diag.message_primary
            elif status < 500 and (name := exc.diag.constraint_name or exc.diag.column_name):
                message = f"{message} ({name})"  # our schema's names, which say which rule
            return ApiError(status, code, message)
    return ApiError(500, "internal_error", "something went wrong on our side")


def on_api_error(_: Request[Any, Any, Any], exc: ApiError) -> Response:
    return error_response(exc.status, exc.code, exc.message, exc.headers)


def on_validation_error(_: Request[Any, Any, Any], exc: ValidationException) -> Response:
    problems = [e for e in exc.extra if isinstance(e, dict)] if isinstance(exc.extra, list) else []
    names = [str(p["key"]) for p in problems if p.get("key")]
    message = f"invalid {', '.join(names)}" if names else exc.detail
    fields = [
        {"field": p.get("key"), "source": p.get("source"), "message": p.get("message")} for p in problems
    ]
    return error_response(422, "validation_failed", message, fields=fields)


def on_http_exception(request: Request[Any, Any, Any], exc: HTTPException) -> Response:
    status = exc.status_code
    if status >= 500:
        log.error("error on %s: %s", request.url.path, exc.detail, exc_info=exc)
    code = HTTP_CODES.get(status, "internal_error" if status >= 500 else "bad_request")
    headers = dict(exc.headers or {})
    message = exc.detail if status < 500 else "something went wrong on our side"
    return error_response(status, code, message, headers)


def on_database_error(request: Request[Any, Any, Any], exc: psycopg.Error) -> Response:
    error = pg_error(exc)
    if error.status >= 500:
        log.error("database error on %s: %s", request.url.path, exc.sqlstate, exc_info=exc)
    return on_api_error(request, error)


def on_pool_timeout(_: Request[Any, Any, Any], exc: psycopg_pool.PoolTimeout) -> Response:
    log.error("connection pool exhausted: %s", exc)
    return error_response(
        503, "database_unavailable", "the database is busy, try again", {"Retry-After": "1"}
    )


def on_unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response:
    log.exception("unhandled error on %s", request.url.path, exc_info=exc)
    return error_response(500, "internal_error", "something went wrong on our side")


exception_handlers: dict[Any, Any] = {
    ApiError: on_api_error,
    ValidationException: on_validation_error,
    HTTPException: on_http_exception,
    psycopg_pool.PoolTimeout: on_pool_timeout,
    psycopg.Error: on_database_error,
    Exception: on_unexpected,
}
