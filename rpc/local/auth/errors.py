"""GoTrue's errors, in the shape the client asks for.

supabase-js and supabase-py send `X-Supabase-Api-Version: 2024-01-01`; to them an error is
`{"code": "<error_code>", "message": ...}` and the response names the version back. Without the header
(curl, older clients) it is GoTrue's first shape: `{"code": <status>, "error_code": ..., "msg": ...}`.
A weak password carries its reasons (`weak_password.reasons`) either way.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, Response

API_VERSION_HEADER = "X-Supabase-Api-Version"
API_VERSION = "2024-01-01"


class AuthError(Exception):
    def __init__(self, status: int, code: str, message: str, *, reasons: list[str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.reasons = status, code, message, reasons


def bad_request(code: str, message: str) -> AuthError:
    return AuthError(400, code, message)


def unprocessable(code: str, message: str) -> AuthError:
    return AuthError(422, code, message)


def invalid_credentials() -> AuthError:
    return AuthError(400, "invalid_credentials", "Invalid login credentials")


def validation_failed(message: str) -> AuthError:
    return AuthError(400, "validation_failed", message)


def weak_password(message: str, reasons: list[str]) -> AuthError:
    return AuthError(422, "weak_password", message, reasons=reasons)


def rate_limited() -> AuthError:
    return AuthError(429, "over_request_rate_limit", "Request rate limit reached")


def wants_current_shape(request: Request[Any, Any, Any]) -> bool:
    return request.headers.get(API_VERSION_HEADER, "") >= API_VERSION


def render(request: Request[Any, Any, Any], exc: AuthError) -> Response[Any]:
    headers = {"x-sb-error-code": exc.code}
    if wants_current_shape(request):
        headers[API_VERSION_HEADER] = API_VERSION
        body: dict[str, Any] = {"code": exc.code, "message": exc.message}
    else:
        body = {"code": exc.status, "error_code": exc.code, "msg": exc.message}
    if exc.reasons is not None:
        body["weak_password"] = {"reasons": exc.reasons}
    return Response(body, status_code=exc.status, headers=headers)
