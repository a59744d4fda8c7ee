"""`/storage/v1`: the part of Supabase Storage's HTTP API that supabase-js and supabase-py call.

Every operation runs as the caller's role and claims, as PostgREST runs a request, so the policies on
`storage.objects` and `storage.buckets` are the only access rule (the real server does the same). Writes
are checked twice: before the body is read (the caller's insert, or upsert, would pass: rolled back) and
when the row is stored with the real size and type. Bodies stream to disk within the bucket's limits and
downloads stream from it; nothing is held in memory whole. Routes, request and response shapes, headers
and errors follow supabase/storage's `src/http/routes/object` and `bucket`.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import logging
import os
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any, LiteralString, cast
from urllib.parse import parse_qs, quote

import jwt
import msgspec
import multipart
import psycopg
import psycopg_pool
from litestar import asgi
from litestar.exceptions import NotFoundException
from litestar.handlers import ASGIRouteHandler
from litestar.types import Receive, Scope, Send

from rpc.local.storage import errors, names
from rpc.local.storage.errors import StorageError
from rpc.local.storage.files import ObjectFiles
from rpc.platform.auth import Caller, TokenVerifier, gateway_authorization
from rpc.platform.db import SERVICE, Database
from rpc.platform.errors import ApiError

log = logging.getLogger(__name__)

PREFIX = b"/storage/v1"
CHUNK = 256 * 1024
MAX_JSON_BYTES = 1024 * 1024
MAX_USER_METADATA_BYTES = 1024 * 1024
MAX_OBJECTS_PER_REQUEST = 1000
UPLOAD_URL_EXPIRY_S = 7200  # the real server's default for signed upload URLs
FORM_FIELDS = frozenset({"cacheControl", "contentType", "metadata", "userMetadata"})
SORT_COLUMNS = frozenset({"name", "updated_at", "created_at", "last_accessed_at"})
BUCKET_SORT_COLUMNS = frozenset({"id", "name", "created_at", "updated_at"})
OBJECT_COLUMNS = (
    "id, bucket_id, name, owner, owner_id, version, metadata, user_metadata, created_at, updated_at,"
    " last_accessed_at"
)
# Storage's response schema types `owner` as a string, so a bucket without one (made by SQL) says "".
BUCKET_COLUMNS = (
    "id, name, coalesce(owner::text, '') as owner, public, file_size_limit, allowed_mime_types, created_at,"
    " updated_at"
)
RANGE = re.compile(r"bytes=(\d*)-(\d*)")
# Type and cache control are sent back as headers on download: printable ASCII only (no CR/LF injection).
HEADER_VALUE = re.compile(r"[\x20-\x7e]{1,1024}")


class ClientGone(Exception):
    """The client closed the connection before its request body ended."""


@dataclass
class Call:
    """One request to /storage/v1."""

    scope: Scope
    receive: Receive
    method: str
    path: str  # after /storage/v1, still percent-encoded
    params: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    query: dict[str, str] = field(default_factory=dict)
    authenticated: Caller | None = None  # who sent it (routes that take a token instead have none)

    @property
    def caller(self) -> Caller:
        assert self.authenticated is not None, "a public route asked for its caller"
        return self.authenticated

    def name(self) -> str:
        return names.object_key(names.decode(self.params["name"]))

    def bucket(self) -> str:
        return names.decode(self.params["bucket"])

    async def json(self) -> dict[str, Any]:
        body = bytearray()
        async for chunk in request_chunks(self.receive):
            body += chunk
            if len(body) > MAX_JSON_BYTES:
                raise errors.invalid_request("The request body is too large")
        try:
            value = msgspec.json.decode(bytes(body)) if body else {}
        except msgspec.DecodeError:
            raise errors.invalid_request("Body is not valid JSON") from None
        if not isinstance(value, dict):
            raise errors.invalid_request("body must be object")
        return value


Handler = Callable[["StorageApi", Call, Send], Awaitable[None]]


def route(method: str, pattern: str, *, public: bool = False) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        ROUTES.append((frozenset(method.split("|")), re.compile(pattern), handler, public))
        return handler

    return register


ROUTES: list[tuple[frozenset[str], re.Pattern[str], Handler, bool]] = []
BUCKET = r"(?P<bucket>[^/]+)"
NAME = r"(?P<name>.+)"


class StorageApi:
    def __init__(
        self, db: Database, verifier: TokenVerifier, files: ObjectFiles, *, secret: str, file_size_limit: int
    ) -> None:
        self.db, self.verifier, self.files = db, verifier, files
        self.secret, self.file_size_limit = secret, file_size_limit

    async def open(self) -> None:
        """Make the folders and remove what a crash left behind (before any request is served)."""
        self.files.prepare()
        rows = await self.db.fetch(SERVICE, "select version from storage.objects where version is not null")
        removed = await asyncio.to_thread(self.files.sweep, {row["version"] for row in rows})
        if removed:
            log.info("storage: removed %d files no object names (left by an interrupted upload)", removed)

    def handler(self) -> ASGIRouteHandler:
        @asgi("/storage/v1", is_mount=True, copy_scope=False, include_in_schema=False)
        async def storage(scope: Scope, receive: Receive, send: Send) -> None:
            await self(scope, receive, send)

        return storage

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        raw_path: bytes = scope.get("raw_path") or b""
        if not raw_path.startswith(PREFIX + b"/"):
            raise NotFoundException()
        path = raw_path.removeprefix(PREFIX).decode("latin-1")
        call = Call(scope, receive, scope["method"], path)
        try:
            await self.dispatch(call, send)
        except StorageError as exc:
            await exc.send(send)
        except ClientGone:
            log.info("storage: the client left during %s %s", call.method, path)
        except (psycopg.Error, psycopg_pool.PoolTimeout) as exc:
            if isinstance(exc, psycopg.Error) and exc.sqlstate is None:
                log.warning("storage: database unavailable: %s", exc)
            elif exc.__class__.__name__ not in ("InsufficientPrivilege", "UniqueViolation"):
                log.warning("storage: database error: %s", exc)
            await errors.from_database(exc).send(send)

    async def dispatch(self, call: Call, send: Send) -> None:
        path_matched = False
        for methods, pattern, handler, public in ROUTES:
            match = pattern.fullmatch(call.path)
            if match is None:
                continue
            path_matched = True
            if call.method not in methods:
                continue
            call.params = match.groupdict()
            call.headers = {
                name.decode("latin-1"): value.decode("latin-1") for name, value in call.scope["headers"]
            }
            query = parse_qs(call.scope["query_string"].decode("latin-1"), keep_blank_values=True)
            call.query = {key: values[-1] for key, values in query.items()}
            if not public:
                call.authenticated = await self.authenticate(call)
            await handler(self, call, send)
            return
        status = 405 if path_matched else 404
        raise StorageError(
            404,
            "InvalidRequest",
            f"Route {call.method}:{call.path} not found",
            error="Not Found",
            http_status=status,
        )

    async def authenticate(self, call: Call) -> Caller:
        authorization = gateway_authorization(call.headers.get("authorization"), call.headers.get("apikey"))
        try:
            return await self.verifier.verify(authorization)
        except ApiError as exc:
            if exc.status >= 500:
                raise StorageError(503, "InternalError", exc.message, http_status=503) from None
            raise errors.access_denied(exc.message) from None

    # -- buckets ----------------------------------------------------------------------------------------

    async def bucket_for_upload(self, bucket_id: str) -> dict[str, Any]:
        # As Storage reads it: as its superuser, since the limits apply whoever may see the bucket.
        rows = await self.db.fetch(
            SERVICE,
            "select id, file_size_limit, allowed_mime_types from storage.buckets where id = %s",
            (bucket_id,),
        )
        if not rows:
            raise errors.no_such_bucket()
        return rows[0]

    # -- writing objects --------------------------------------------------------------------------------

    async def upload(
        self, call: Call, caller: Caller, *, bucket_id: str, name: str, upsert: bool, checked: bool
    ) -> tuple[str, str]:
        """Stream the body into a new version and store its row as `caller`; (object id, key).

        `checked`: the caller's right was proven already (a signed upload URL), so no probe first.
        """
        bucket = await self.bucket_for_upload(bucket_id)
        limit = 0 if names.is_empty_folder(name) else self.file_size_limit
        if bucket["file_size_limit"] is not None:
            limit = min(limit, bucket["file_size_limit"])
        allowed = None if names.is_empty_folder(name) else bucket["allowed_mime_types"]
        body = await UploadBody.read_head(call, limit)
        for value in (body.mime_type, body.cache_control):
            if not HEADER_VALUE.fullmatch(value):
                raise errors.invalid_request(f"Invalid character in header value: {value[:50]!r}")
        names.mime_allowed(body.mime_type, allowed)
        owner = caller.claims.get("sub")
        if not checked:
            await self.probe_write(
                caller,
                call,
                bucket_id,
                name,
                owner,
                upsert,
                {"mimetype": body.mime_type, "contentLength": body.declared},
                body.user_metadata,
            )
        upload = self.files.writer()
        try:
            async for chunk in body.content():
                if upload.size + len(chunk) > limit:
                    raise errors.entity_too_large()
                upload.write(chunk)
            await asyncio.to_thread(upload.finish)
            metadata = {
                "eTag": upload.etag,
                "size": upload.size,
                "mimetype": body.mime_type,
                "cacheControl": body.cache_control,
                "lastModified": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                "contentLength": upload.size,
                "httpStatusCode": 200,
            }
            object_id, previous = await self.store(
                caller, call, bucket_id, name, owner, upload.version, metadata, body.user_metadata, upsert
            )
        except BaseException:
            upload.discard()
            raise
        self.files.remove(previous)
        return object_id, f"{bucket_id}/{name}"

    async def probe_write(
        self,
        caller: Caller,
        call: Call,
        bucket_id: str,
        name: str,
        owner: str | None,
        upsert: bool,
        metadata: dict[str, Any],
        user_metadata: dict[str, Any] | None,
    ) -> None:
        """Would the caller's insert (upsert) pass? Done and rolled back, as Storage's canUpload does."""
        try:
            async with self.db.as_caller(caller, method=call.method, path=call.path) as conn:
                await conn.execute(
                    UPSERT if upsert else INSERT,
                    (
                        bucket_id,
                        name,
                        owner,
                        owner,
                        metadata_json(metadata),
                        metadata_json(user_metadata),
                        "probe",
                    ),
                )
                raise _RollBack
        except _RollBack:
            pass

    async def store(
        self,
        caller: Caller,
        call: Call,
        bucket_id: str,
        name: str,
        owner: str | None,
        version: str,
        metadata: dict[str, Any],
        user_metadata: dict[str, Any] | None,
        upsert: bool,
    ) -> tuple[str, str | None]:
        """The object's row as the caller; (its id, the version it replaced)."""
        async with self.db.as_caller(caller, method=call.method, path=call.path) as conn:
            previous = await locked_version(conn, caller, bucket_id, name)
            cursor = await conn.execute(
                UPSERT if upsert else INSERT,
                (
                    bucket_id,
                    name,
                    owner,
                    owner,
                    metadata_json(metadata),
                    metadata_json(user_metadata),
                    version,
                ),
            )
            row = await cursor.fetchone()
        assert row is not None
        return str(row["id"]), previous

    async def find(self, caller: Caller, call: Call, bucket_id: str, name: str) -> dict[str, Any]:
        rows = await self.db.fetch(
            caller,
            f"select {OBJECT_COLUMNS} from storage.objects where bucket_id = %s and name = %s",  # noqa: S608 (constants)
            (bucket_id, name),
            method=call.method,
            path=call.path,
        )
        if not rows:
            raise errors.no_such_key()
        return rows[0]

    # -- reading objects --------------------------------------------------------------------------------

    async def serve(self, call: Call, send: Send, caller: Caller, bucket_id: str, name: str) -> None:
        """The object's bytes as Storage's renderer sends them (ETag, ranges, `?download`)."""
        for attempt in range(2):
            row = await self.find(caller, call, bucket_id, name)
            try:
                # A local file's open is microseconds; it is closed below, after streaming.
                file = open(self.files.path(row["version"]), "rb")  # noqa: SIM115, ASYNC230
                break
            except FileNotFoundError:
                # Replaced between the lookup and the open: the new version is there now.
                if attempt:
                    raise errors.no_such_key() from None
        with file:
            await self.send_file(call, send, row, file)

    async def send_file(self, call: Call, send: Send, row: dict[str, Any], file: Any) -> None:
        metadata = row["metadata"] or {}
        size = os.fstat(file.fileno()).st_size
        etag = metadata.get("eTag") or ""
        headers = [
            (b"content-type", (metadata.get("mimetype") or "application/octet-stream").encode("latin-1")),
            (b"etag", etag.encode("latin-1")),
            (b"accept-ranges", b"bytes"),
            (b"x-robots-tag", b"none"),
            (b"last-modified", format_datetime(row["updated_at"].astimezone(UTC), usegmt=True).encode()),
        ]
        if cache_control := metadata.get("cacheControl"):
            headers.append((b"cache-control", cache_control.encode("latin-1")))
        if "download" in call.query:
            headers.append((b"content-disposition", content_disposition(call.query["download"])))
        if etag and call.headers.get("if-none-match") == etag:
            await send({"type": "http.response.start", "status": 304, "headers": headers})
            await send({"type": "http.response.body", "body": b""})
            return
        status, start, length = 200, 0, size
        if (requested := byte_range(call.headers.get("range"), size)) is not None:
            start, end = requested
            status, length = 206, end - start + 1
            headers.append((b"content-range", f"bytes {start}-{end}/{size}".encode()))
        headers.append((b"content-length", str(length).encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        if call.method == "HEAD":
            await send({"type": "http.response.body", "body": b""})
            return
        gone = asyncio.create_task(wait_disconnect(call.receive))
        try:
            file.seek(start)
            remaining = length
            while remaining and not gone.done():
                chunk = file.read(min(CHUNK, remaining))
                if not chunk:
                    break
                remaining -= len(chunk)
                await send({"type": "http.response.body", "body": chunk, "more_body": bool(remaining)})
            if remaining:
                await send({"type": "http.response.body", "body": b""})
        finally:
            gone.cancel()

    # -- signed URLs ------------------------------------------------------------------------------------

    def sign(self, claims: dict[str, Any], expires_in: int) -> str:
        now = int(time.time())
        return jwt.encode({**claims, "iat": now, "exp": now + expires_in}, self.secret, algorithm="HS256")

    def verify_signed(self, call: Call, bucket_id: str, name: str, scope: str) -> dict[str, Any]:
        token = call.query.get("token")
        if not token:
            raise StorageError(400, "MissingParameter", "Missing Required Parameter token")
        try:
            payload = jwt.decode(token, self.secret, algorithms=["HS256"], options={"require": ["exp"]})
        except jwt.ExpiredSignatureError:
            raise errors.invalid_jwt("jwt expired") from None
        except jwt.PyJWTError:
            raise errors.invalid_jwt("invalid signature") from None
        if payload.get("scope") != scope:
            raise errors.invalid_signature(f"Token is not scoped for {scope}")
        if payload.get("url") != f"{bucket_id}/{name}":
            raise errors.invalid_signature()
        return payload


class _RollBack(Exception):
    pass


INSERT: LiteralString = (
    "insert into storage.objects (bucket_id, name, owner, owner_id, metadata, user_metadata, version)"
    " values (%s, %s, %s, %s, %s, %s, %s) returning id"
)
UPSERT: LiteralString = (
    INSERT.removesuffix(" returning id")
    + " on conflict (bucket_id, name) do update set owner = excluded.owner, owner_id = excluded.owner_id,"
    " metadata = excluded.metadata, user_metadata = excluded.user_metadata, version = excluded.version"
    " returning id"
)


async def locked_version(conn: Any, caller: Caller, bucket_id: str, name: str) -> str | None:
    """Lock the key for this transaction and read the version a write will replace, whether the caller
    may see it or not (its file must go once the new row is committed), then go back to being the caller."""
    cursor = await conn.execute(
        "select pg_advisory_xact_lock(hashtextextended(%s, 0)), set_config('role', 'service_role', true)",
        (f"{bucket_id}/{name}",),
    )
    cursor = await conn.execute(
        "select version, set_config('role', %s, true) from storage.objects where bucket_id = %s and name = %s",
        (caller.role, bucket_id, name),
    )
    row = await cursor.fetchone()
    if row is None:
        await conn.execute("select set_config('role', %s, true)", (caller.role,))
        return None
    return cast(str | None, row["version"])


def metadata_json(value: dict[str, Any] | None) -> str | None:
    return None if value is None else msgspec.json.encode(value).decode()


def content_disposition(download: str) -> bytes:
    if not download:
        return b"attachment;"
    encoded = quote(download, safe="")
    return f"attachment; filename={encoded}; filename*=UTF-8''{encoded}".encode()


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """One satisfiable `bytes=` range as (first, last); anything else serves the whole object."""
    match = RANGE.fullmatch(header.strip()) if header else None
    if match is None or size == 0:
        return None
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:
        return max(0, size - int(last)), size - 1
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    return (start, end) if start <= end else None


async def request_chunks(receive: Receive) -> AsyncIterator[bytes]:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        if chunk := message.get("body", b""):
            yield chunk
        if not message.get("more_body", False):
            return


async def wait_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


class UploadBody:
    """An upload's body: raw bytes, or the first file of a multipart form (supabase-js sends a Blob so), with
    the type, cache control and user metadata that came with it. Only what precedes the file is read first."""

    def __init__(self, call: Call) -> None:
        self.call = call
        self.chunks = request_chunks(call.receive)
        self.mime_type = "application/octet-stream"
        self.cache_control = "no-cache"
        self.user_metadata: dict[str, Any] | None = None
        self.declared: int | None = None
        self._parser: multipart.PushMultipartParser | None = None
        self._pending: list[bytes] = []
        self._file_ended = False

    @classmethod
    async def read_head(cls, call: Call, limit: int) -> UploadBody:
        body = cls(call)
        content_type = call.headers.get("content-type", "")
        with contextlib.suppress(ValueError):
            body.declared = int(call.headers["content-length"])
        if content_type.lower().startswith("multipart/form-data"):
            await body._read_form_head(content_type)
            return body
        body.mime_type = content_type or body.mime_type
        body.cache_control = call.headers.get("cache-control", body.cache_control)
        if encoded := call.headers.get("x-metadata"):
            body.user_metadata = decode_user_metadata(encoded)
        if body.declared is not None and body.declared > limit:
            raise errors.entity_too_large()
        return body

    async def _read_form_head(self, content_type: str) -> None:
        boundary = multipart.parse_options_header(content_type)[1].get("boundary")
        if not boundary:
            raise errors.no_content()
        try:
            self._parser = multipart.PushMultipartParser(boundary, max_segment_count=16)
        except multipart.MultipartError:
            raise errors.no_content() from None
        fields: dict[str, bytearray] = {}
        current: bytearray | None = None
        async for chunk in self.chunks:
            events = self._events(chunk)
            for event in events:
                if isinstance(event, multipart.MultipartSegment):
                    if event.filename is not None or event.name not in FORM_FIELDS:
                        self._start_file(event, fields)
                        # The rest of this chunk's events belong to the file.
                        for rest in events:
                            if rest is None:
                                self._file_ended = True
                                break
                            if isinstance(rest, bytes | bytearray):
                                self._pending.append(bytes(rest))
                        return
                    current = fields.setdefault(event.name or "", bytearray())
                elif isinstance(event, bytes | bytearray) and current is not None:
                    current += event
                    if sum(len(value) for value in fields.values()) > MAX_USER_METADATA_BYTES:
                        raise errors.entity_too_large("user_metadata")
        raise errors.no_content()

    def _events(self, chunk: bytes) -> Any:
        assert self._parser is not None
        try:
            return iter(list(self._parser.parse(chunk)))
        except multipart.MultipartError:
            raise errors.no_content() from None

    def _start_file(self, segment: multipart.MultipartSegment, fields: dict[str, bytearray]) -> None:
        text = {key: value.decode("utf-8", errors="replace") for key, value in fields.items()}
        self.mime_type = text.get("contentType") or segment.content_type or self.mime_type
        if cache_time := text.get("cacheControl"):
            self.cache_control = f"max-age={cache_time}"
        if custom := text.get("metadata") or text.get("userMetadata"):
            with contextlib.suppress(msgspec.DecodeError):
                decoded = msgspec.json.decode(custom)
                self.user_metadata = decoded if isinstance(decoded, dict) else None

    async def content(self) -> AsyncIterator[bytes]:
        if self._parser is None:
            async for chunk in self.chunks:
                yield chunk
            return
        for chunk in self._pending:
            yield chunk
        async for chunk in self.chunks:
            if self._file_ended:
                continue  # fields after the file: read and ignored, as the real server does
            for event in self._events(chunk):
                if event is None:
                    self._file_ended = True
                    break
                if isinstance(event, bytes | bytearray):
                    yield bytes(event)
        if not self._file_ended:
            raise ClientGone  # the form ended inside the file: it is not whole


def decode_user_metadata(encoded: str) -> dict[str, Any] | None:
    """`x-metadata`: base64 JSON (the real server ignores what does not decode)."""
    if len(encoded) > MAX_USER_METADATA_BYTES * 4 // 3 + 4:
        raise errors.entity_too_large("user_metadata")
    try:
        value = msgspec.json.decode(base64.b64decode(encoded))
    except (binascii.Error, msgspec.DecodeError, ValueError):
        return None
    return value if isinstance(value, dict) else None


# -- routes (order matters: the first pattern that matches the path wins, fixed words before names) -------


async def send_json(send: Send, body: Any, status: int = 200) -> None:
    encoded = msgspec.json.encode(body)
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(encoded)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": encoded})


def required(body: dict[str, Any], key: str, kind: type | tuple[type, ...] = str) -> Any:
    value = body.get(key)
    if value is None:
        raise errors.invalid_request(f"body must have required property '{key}'")
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise errors.invalid_request(f"body/{key} has the wrong type")
    return value


def expires_in(body: dict[str, Any]) -> int:
    # Storage's schema says integer and its validator coerces: supabase-py sends "60".
    value = required(body, "expiresIn", (int, float, str))
    try:
        seconds = int(value)
    except ValueError:
        seconds = 0
    if seconds != float(value or 0) or not 0 < seconds <= 10 * 365 * 86400:
        raise errors.invalid_request("expiresIn must be a positive number of seconds")
    return seconds


def file_size_limit(value: Any) -> int | None:
    if value is None:
        return None
    from rpc.local.config import parse_size

    try:
        return parse_size(value)
    except (ValueError, TypeError):
        raise StorageError(
            400, "InvalidRequest", "Invalid file size format, hint: use 20GB / 20MB / 30KB / 3B"
        ) from None


def mime_types(value: Any) -> list[str] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(item, str) and "/" in item for item in value):
        raise errors.invalid_request(
            "allowed_mime_types must be a list of types such as image/png or image/*"
        )
    return value


@route("GET", r"/bucket/?")
async def list_buckets(api: StorageApi, call: Call, send: Send) -> None:
    column = call.query.get("sortColumn", "name")
    order = call.query.get("sortOrder", "asc").lower()
    if column not in BUCKET_SORT_COLUMNS or order not in ("asc", "desc"):
        raise errors.invalid_request("sortColumn or sortOrder is not one Storage knows")
    try:
        limit = int(call.query.get("limit", "1000"))
        offset = int(call.query.get("offset", "0"))
    except ValueError:
        raise errors.invalid_request("limit and offset must be integers") from None
    rows = await api.db.fetch(
        call.caller,
        cast(
            LiteralString,
            # Column and order come from the lists above.
            f"select {BUCKET_COLUMNS} from storage.buckets where name ilike %s escape '\\'"  # noqa: S608
            f" order by {column} {order} limit %s offset %s",
        ),
        (f"%{like_escape(call.query.get('search', ''))}%", max(0, min(limit, 1000)), max(0, offset)),
        method=call.method,
        path=call.path,
    )
    await send_json(send, rows)


@route("POST", r"/bucket/?")
async def create_bucket(api: StorageApi, call: Call, send: Send) -> None:
    body = await call.json()
    name = names.bucket_name(required(body, "name"))
    bucket_id = names.bucket_name(body.get("id") or name)
    caller = call.caller
    owner = caller.claims.get("sub")
    await api.db.fetch(
        caller,
        "insert into storage.buckets (id, name, owner, owner_id, public, file_size_limit, allowed_mime_types)"
        " values (%s, %s, %s, %s, %s, %s, %s)",
        (
            bucket_id,
            name,
            owner,
            owner,
            bool(body.get("public", False)),
            file_size_limit(body.get("file_size_limit")),
            mime_types(body.get("allowed_mime_types")),
        ),
        method=call.method,
        path=call.path,
    )
    await send_json(send, {"name": bucket_id})


@route("GET", rf"/bucket/{BUCKET}/?")
async def get_bucket(api: StorageApi, call: Call, send: Send) -> None:
    rows = await api.db.fetch(
        call.caller,
        cast(LiteralString, f"select {BUCKET_COLUMNS} from storage.buckets where id = %s"),  # noqa: S608 (constant)
        (call.bucket(),),
        method=call.method,
        path=call.path,
    )
    if not rows:
        raise errors.no_such_bucket()
    await send_json(send, rows[0])


@route("PUT", rf"/bucket/{BUCKET}/?")
async def update_bucket(api: StorageApi, call: Call, send: Send) -> None:
    body = await call.json()
    rows = await api.db.fetch(
        call.caller,
        "update storage.buckets set public = coalesce(%s, public), file_size_limit = %s,"
        " allowed_mime_types = %s, updated_at = now() where id = %s returning id",
        (
            body.get("public") if isinstance(body.get("public"), bool) else None,
            file_size_limit(body.get("file_size_limit")),
            mime_types(body.get("allowed_mime_types")),
            call.bucket(),
        ),
        method=call.method,
        path=call.path,
    )
    if not rows:
        raise errors.no_such_bucket()
    await send_json(send, {"message": "Successfully updated"})


@route("POST", rf"/bucket/{BUCKET}/empty/?")
async def empty_bucket(api: StorageApi, call: Call, send: Send) -> None:
    bucket_id = call.bucket()
    caller = call.caller
    async with api.db.as_caller(caller, method=call.method, path=call.path) as conn:
        found = await (
            await conn.execute("select 1 from storage.buckets where id = %s", (bucket_id,))
        ).fetchone()
        if found is None:
            raise errors.no_such_bucket()
        await conn.execute(ALLOW_DELETE)
        cursor = await conn.execute(
            "delete from storage.objects where bucket_id = %s returning version", (bucket_id,)
        )
        removed = await cursor.fetchall()
    for row in removed:
        api.files.remove(row["version"])
    await send_json(send, {"message": "Successfully emptied"})


@route("DELETE", rf"/bucket/{BUCKET}/?")
async def delete_bucket(api: StorageApi, call: Call, send: Send) -> None:
    bucket_id = call.bucket()
    async with api.db.as_caller(call.caller, method=call.method, path=call.path) as conn:
        found = await (
            await conn.execute("select 1 from storage.buckets where id = %s", (bucket_id,))
        ).fetchone()
        if found is None:
            raise errors.no_such_bucket()
        await conn.execute(ALLOW_DELETE)
        has_objects = await (
            await conn.execute("select 1 from storage.objects where bucket_id = %s limit 1", (bucket_id,))
        ).fetchone()
        if has_objects is not None:
            raise errors.bucket_not_empty()
        cursor = await conn.execute("delete from storage.buckets where id = %s returning id", (bucket_id,))
        if await cursor.fetchone() is None:
            raise errors.no_such_bucket()
    await send_json(send, {"message": "Successfully deleted"})


ALLOW_DELETE: LiteralString = "select set_config('storage.allow_delete_query', 'true', true)"


def like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


@route("POST", rf"/object/list/{BUCKET}/?")
async def list_objects(api: StorageApi, call: Call, send: Send) -> None:
    body = await call.json()
    prefix = required(body, "prefix")
    search = body.get("search") or ""
    sort = body.get("sortBy") or {}
    if not isinstance(search, str) or not isinstance(sort, dict):
        raise errors.invalid_request("search must be text and sortBy an object")
    column, order = sort.get("column", "name"), str(sort.get("order", "asc")).lower()
    if column not in SORT_COLUMNS or order not in ("asc", "desc"):
        raise errors.invalid_request("sortBy.column or sortBy.order is not one Storage knows")
    limit, offset = body.get("limit", 100), body.get("offset", 0)
    if not isinstance(limit, int) or not isinstance(offset, int) or limit < 0 or offset < 0:
        raise errors.invalid_request("limit and offset must be non-negative integers")
    if prefix and not prefix.endswith("/"):
        prefix += "/"  # a prefix is a folder, as in Storage's v1 search
    level = prefix.count("/") + 1
    rows = await api.db.fetch(
        call.caller,
        cast(LiteralString, LIST.format(column=column, order=order)),
        {
            "bucket": call.bucket(),
            "pattern": like_escape((prefix + search).lower()) + "%",
            "level": level,
            "limit": min(limit, 1000),
            "offset": offset,
        },
        method=call.method,
        path=call.path,
    )
    await send_json(send, rows)


# Storage's v1 search: the folders at the prefix's level first (by name), then its files, one page of both.
LIST = """
with visible as (
  select name, path_tokens, id, updated_at, created_at, last_accessed_at, metadata
  from storage.objects
  where bucket_id = %(bucket)s and lower(name) like %(pattern)s escape '\\'
)
(select folder as name, null::uuid as id, null::timestamptz as updated_at, null::timestamptz as created_at,
        null::timestamptz as last_accessed_at, null::jsonb as metadata
   from (select distinct path_tokens[%(level)s] as folder from visible
         where cardinality(path_tokens) > %(level)s) folders
  order by folder {order})
union all
(select path_tokens[%(level)s], id, updated_at, created_at, last_accessed_at, metadata
   from visible where cardinality(path_tokens) = %(level)s
  order by {column} {order})
limit %(limit)s offset %(offset)s
"""


def object_pair(body: dict[str, Any]) -> tuple[str, str, str, str]:
    bucket_id = names.bucket_name(required(body, "bucketId"))
    destination_bucket = names.bucket_name(body.get("destinationBucket") or bucket_id)
    return (
        bucket_id,
        names.object_key(required(body, "sourceKey")),
        destination_bucket,
        names.object_key(required(body, "destinationKey")),
    )


@route("POST", r"/object/move/?")
async def move_object(api: StorageApi, call: Call, send: Send) -> None:
    # Bytes are stored per version, not per key: a move is a rename of the row, checked by its policies.
    bucket_id, source, destination_bucket, destination = object_pair(await call.json())
    caller = call.caller
    async with api.db.as_caller(caller, method=call.method, path=call.path) as conn:
        existing = await locked_version(conn, caller, destination_bucket, destination)
        if existing is not None and (destination_bucket, destination) != (bucket_id, source):
            raise errors.already_exists()
        cursor = await conn.execute(
            "update storage.objects set bucket_id = %s, name = %s, owner = %s, owner_id = %s"
            " where bucket_id = %s and name = %s returning id",
            (
                destination_bucket,
                destination,
                caller.claims.get("sub"),
                caller.claims.get("sub"),
                bucket_id,
                source,
            ),
        )
        if await cursor.fetchone() is None:
            raise errors.no_such_key()
    await send_json(send, {"message": "Successfully moved"})


@route("POST", r"/object/copy/?")
async def copy_object(api: StorageApi, call: Call, send: Send) -> None:
    body = await call.json()
    bucket_id, source, destination_bucket, destination = object_pair(body)
    caller = call.caller
    original = await api.find(caller, call, bucket_id, source)
    metadata = dict(original["metadata"] or {})
    user_metadata = original["user_metadata"]
    if body.get("copyMetadata", True) is False:
        overrides = body.get("metadata") if isinstance(body.get("metadata"), dict) else {}
        metadata.pop("cacheControl", None)
        metadata.pop("mimetype", None)
        metadata.update({k: v for k, v in overrides.items() if k in ("cacheControl", "mimetype")})
        encoded = call.headers.get("x-metadata")
        user_metadata = decode_user_metadata(encoded) if encoded else None
    upsert = call.headers.get("x-upsert") == "true"
    version = await asyncio.to_thread(api.files.link, original["version"])
    try:
        object_id, previous = await api.store(
            caller,
            call,
            destination_bucket,
            destination,
            caller.claims.get("sub"),
            version,
            metadata,
            user_metadata,
            upsert,
        )
    except BaseException:
        api.files.remove(version)
        raise
    api.files.remove(previous)
    await send_json(send, {"Id": object_id, "Key": f"{destination_bucket}/{destination}"})


@route("POST", rf"/object/sign/{BUCKET}/?")
async def sign_many(api: StorageApi, call: Call, send: Send) -> None:
    body = await call.json()
    expiry = expires_in(body)
    paths = required(body, "paths", list)
    if not all(isinstance(path, str) for path in paths) or len(paths) > MAX_OBJECTS_PER_REQUEST:
        raise errors.invalid_request(f"paths must be at most {MAX_OBJECTS_PER_REQUEST} object names")
    bucket_id = call.bucket()
    rows = await api.db.fetch(
        call.caller,
        "select name from storage.objects where bucket_id = %s and name = any(%s)",
        (bucket_id, paths),
        method=call.method,
        path=call.path,
    )
    found = {row["name"] for row in rows}
    results = []
    for path in paths:
        if path in found:
            token = api.sign({"url": f"{bucket_id}/{path}", "scope": "download"}, expiry)
            results.append(
                {"error": None, "path": path, "signedURL": f"/object/sign/{bucket_id}/{path}?token={token}"}
            )
        else:
            error = "Either the object does not exist or you do not have access to it"
            results.append({"error": error, "path": path, "signedURL": None})
    await send_json(send, results)


@route("POST", rf"/object/sign/{BUCKET}/{NAME}")
async def sign_one(api: StorageApi, call: Call, send: Send) -> None:
    expiry = expires_in(await call.json())
    bucket_id, name = call.bucket(), call.name()
    await api.find(call.caller, call, bucket_id, name)
    token = api.sign({"url": f"{bucket_id}/{name}", "scope": "download"}, expiry)
    await send_json(send, {"signedURL": f"/object/sign/{bucket_id}/{name}?token={token}"})


@route("GET|HEAD", rf"/object/sign/{BUCKET}/{NAME}", public=True)
async def download_signed(api: StorageApi, call: Call, send: Send) -> None:
    bucket_id, name = call.bucket(), call.name()
    api.verify_signed(call, bucket_id, name, "download")
    await api.serve(call, send, SERVICE, bucket_id, name)


@route("POST", rf"/object/upload/sign/{BUCKET}/{NAME}")
async def sign_upload(api: StorageApi, call: Call, send: Send) -> None:
    bucket_id, name = call.bucket(), call.name()
    caller = call.caller
    owner = caller.claims.get("sub")
    upsert = call.headers.get("x-upsert") == "true"
    declared = call.headers.get("content-length")
    await api.probe_write(
        caller,
        call,
        bucket_id,
        name,
        owner,
        upsert,
        {"mimetype": call.headers.get("content-type"), "contentLength": declared},
        None,
    )
    url = f"{bucket_id}/{name}"
    token = api.sign({"owner": owner, "url": url, "upsert": upsert, "scope": "upload"}, UPLOAD_URL_EXPIRY_S)
    await send_json(send, {"url": f"/object/upload/sign/{url}?token={token}", "token": token})


@route("PUT", rf"/object/upload/sign/{BUCKET}/{NAME}", public=True)
async def upload_signed(api: StorageApi, call: Call, send: Send) -> None:
    bucket_id, name = call.bucket(), call.name()
    payload = api.verify_signed(call, bucket_id, name, "upload")
    owner = payload.get("owner")
    # The token is the permission (its issuer's insert was checked when it was signed), as on Storage.
    claims = {"role": "service_role", **({"sub": owner} if isinstance(owner, str) else {})}
    signer = Caller(role="service_role", claims=claims)
    _, key = await api.upload(
        call, signer, bucket_id=bucket_id, name=name, upsert=bool(payload.get("upsert")), checked=True
    )
    await send_json(send, {"Key": key})


@route("GET|HEAD", rf"/object/public/{BUCKET}/{NAME}", public=True)
async def download_public(api: StorageApi, call: Call, send: Send) -> None:
    bucket_id, name = call.bucket(), call.name()
    await public_bucket(api, bucket_id)
    await api.serve(call, send, SERVICE, bucket_id, name)


async def public_bucket(api: StorageApi, bucket_id: str) -> None:
    rows = await api.db.fetch(SERVICE, "select 1 from storage.buckets where id = %s and public", (bucket_id,))
    if not rows:
        raise errors.no_such_bucket()


@route("GET|HEAD", rf"/object/authenticated/{BUCKET}/{NAME}")
async def download_authenticated(api: StorageApi, call: Call, send: Send) -> None:
    await api.serve(call, send, call.caller, call.bucket(), call.name())


async def send_info(api: StorageApi, call: Call, send: Send, caller: Caller) -> None:
    row = await api.find(caller, call, call.bucket(), call.name())
    metadata = row["metadata"] or {}
    await send_json(
        send,
        {
            "id": row["id"],
            "name": row["name"],
            "version": row["version"],
            "bucket_id": row["bucket_id"],
            "size": metadata.get("size"),
            "content_type": metadata.get("mimetype"),
            "cache_control": metadata.get("cacheControl"),
            "etag": metadata.get("eTag"),
            "metadata": row["user_metadata"],
            "last_modified": row["updated_at"],
            "created_at": row["created_at"],
        },
    )


@route("GET", rf"/object/info/public/{BUCKET}/{NAME}", public=True)
async def info_public(api: StorageApi, call: Call, send: Send) -> None:
    await public_bucket(api, call.bucket())
    await send_info(api, call, send, SERVICE)


@route("GET", rf"/object/info/authenticated/{BUCKET}/{NAME}")
async def info_authenticated(api: StorageApi, call: Call, send: Send) -> None:
    await send_info(api, call, send, call.caller)


@route("GET", rf"/object/info/{BUCKET}/{NAME}")
async def info(api: StorageApi, call: Call, send: Send) -> None:
    await send_info(api, call, send, call.caller)


@route("GET|HEAD", rf"/object/{BUCKET}/{NAME}")
async def download(api: StorageApi, call: Call, send: Send) -> None:
    await api.serve(call, send, call.caller, call.bucket(), call.name())


@route("POST", rf"/object/{BUCKET}/{NAME}")
async def create_object(api: StorageApi, call: Call, send: Send) -> None:
    upsert = call.headers.get("x-upsert") == "true"
    object_id, key = await api.upload(
        call, call.caller, bucket_id=call.bucket(), name=call.name(), upsert=upsert, checked=False
    )
    await send_json(send, {"Id": object_id, "Key": key})


@route("PUT", rf"/object/{BUCKET}/{NAME}")
async def update_object(api: StorageApi, call: Call, send: Send) -> None:
    object_id, key = await api.upload(
        call, call.caller, bucket_id=call.bucket(), name=call.name(), upsert=True, checked=False
    )
    await send_json(send, {"Id": object_id, "Key": key})


@route("DELETE", rf"/object/{BUCKET}/?")
async def remove_objects(api: StorageApi, call: Call, send: Send) -> None:
    prefixes = required(await call.json(), "prefixes", list)
    if not all(isinstance(prefix, str) for prefix in prefixes):
        raise errors.invalid_request("prefixes must be object names")
    if len(prefixes) > MAX_OBJECTS_PER_REQUEST:
        raise errors.invalid_request(
            f"Bulk object requests are limited to {MAX_OBJECTS_PER_REQUEST} objects per request."
        )
    async with api.db.as_caller(call.caller, method=call.method, path=call.path) as conn:
        await conn.execute(ALLOW_DELETE)
        cursor = await conn.execute(
            cast(
                LiteralString,
                "delete from storage.objects where bucket_id = %s and name = any(%s)"  # noqa: S608 (constant)
                f" returning {OBJECT_COLUMNS}",
            ),
            (call.bucket(), prefixes),
        )
        removed = await cursor.fetchall()
    for row in removed:
        api.files.remove(row.pop("version"))
    await send_json(send, removed)


@route("DELETE", rf"/object/{BUCKET}/{NAME}")
async def remove_object(api: StorageApi, call: Call, send: Send) -> None:
    bucket_id, name = call.bucket(), call.name()
    async with api.db.as_caller(call.caller, method=call.method, path=call.path) as conn:
        await conn.execute(ALLOW_DELETE)
        cursor = await conn.execute(
            "delete from storage.objects where bucket_id = %s and name = %s returning version",
            (bucket_id, name),
        )
        row = await cursor.fetchone()
        if row is None:
            raise errors.no_such_key()
    api.files.remove(row["version"])
    await send_json(send, {"message": "Successfully deleted"})
