"""Storage's errors, shaped as the real server renders them.

Its body is `{"statusCode": "<status as text>", "code", "error", "message"}`, and the HTTP status is 400 for
every error but a 500 (and the few the server marks otherwise): supabase-js and supabase-py read the real
status from `statusCode`. Postgres's own text never reaches a client.
"""

from __future__ import annotations

from typing import Any

import msgspec
import psycopg
import psycopg_pool
from litestar.types import Send


class StorageError(Exception):
    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        error: str | None = None,
        http_status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.error = status, code, message, error or code
        self.http_status = http_status or (500 if status == 500 else 400)

    def body(self) -> dict[str, Any]:
        return {
            "statusCode": str(self.status),
            "code": self.code,
            "error": self.error,
            "message": self.message,
        }

    async def send(self, send: Send) -> None:
        body = msgspec.json.encode(self.body())
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        if self.status == 404:
            headers.append((b"cache-control", b"no-store"))
        await send({"type": "http.response.start", "status": self.http_status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def no_such_bucket() -> StorageError:
    return StorageError(404, "NoSuchBucket", "Bucket not found", error="Bucket not found")


def no_such_key() -> StorageError:
    return StorageError(404, "NoSuchKey", "Object not found", error="not_found")


def invalid_key(key: str) -> StorageError:
    return StorageError(400, "InvalidKey", f"Invalid key: {key}")


def invalid_bucket_name() -> StorageError:
    return StorageError(400, "InvalidBucketName", "Bucket name invalid", error="Invalid Input")


def invalid_request(message: str) -> StorageError:
    return StorageError(400, "InvalidRequest", message)


def access_denied(message: str = "Access denied") -> StorageError:
    return StorageError(403, "AccessDenied", message, error="Unauthorized")


def already_exists() -> StorageError:
    return StorageError(409, "ResourceAlreadyExists", "The resource already exists", error="Duplicate")


def entity_too_large(entity: str = "object") -> StorageError:
    """Refused mid-body, the connection stays open (no `Connection: close`): uvicorn drops the rest of the
    body as it comes. Closed under a client still sending, it would meet a reset, and fetch() a network
    error instead of this answer."""
    return StorageError(
        413,
        "EntityTooLarge",
        f"The {entity} exceeded the maximum allowed size",
        error="Payload too large",
    )


def invalid_mime_type(mime_type: str) -> StorageError:
    return StorageError(
        415, "InvalidMimeType", f"mime type {mime_type} is not supported", error="invalid_mime_type"
    )


def invalid_jwt(message: str) -> StorageError:
    return StorageError(400, "InvalidJWT", message)


def invalid_signature(message: str = "Invalid signature") -> StorageError:
    return StorageError(400, "InvalidSignature", message)


def bucket_not_empty() -> StorageError:
    return StorageError(409, "ResourceNotEmpty", "The bucket you tried to delete is not empty")


def no_content() -> StorageError:
    return StorageError(400, "InvalidRequest", "No content provided")


def database_unavailable() -> StorageError:
    return StorageError(503, "DatabaseError", "The database is not answering; try again", http_status=503)


def from_database(exc: psycopg.Error | psycopg_pool.PoolTimeout) -> StorageError:
    """Storage's reading of a database error (storage/database/errors.ts), without Postgres's text."""
    sqlstate = getattr(exc, "sqlstate", None)
    if sqlstate == "42501":
        return access_denied("new row violates row-level security policy")
    if sqlstate == "23505":
        return already_exists()
    if sqlstate == "23503":
        return StorageError(404, "NoSuchBucket", "The related resource does not exist", error="Not Found")
    if sqlstate == "57014":
        return StorageError(
            544, "DatabaseTimeout", "The connection to the database timed out", http_status=544
        )
    if sqlstate is not None and sqlstate.startswith("22"):
        # Data exceptions: a value the client sent that its column cannot hold (text, a number's range).
        return StorageError(400, "InvalidParameter", "Invalid value format or type conversion failed")
    if isinstance(exc, psycopg.DataError):
        # Refused by psycopg before it was sent: text with NUL, which Postgres cannot store.
        return StorageError(400, "InvalidParameter", "A value contains a character Storage does not accept")
    if sqlstate is None or sqlstate.startswith("08"):
        return database_unavailable()
    return StorageError(500, "DatabaseError", f"database error, code: {sqlstate}")
