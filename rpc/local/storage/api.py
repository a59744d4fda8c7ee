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
import logging
import os
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any, LiteralString, cast
from urllib.parse import parse_qs, quote

import jwt
import msgspec
import psycopg
import psycopg_pool
from litestar import asgi
from litestar.exceptions import NotFoundException
from litestar.handlers import ASGIRouteHandler
from litestar.types import Receive, Scope, Send

from rpc.local.storage import errors, names
from rpc.local.storage.errors import StorageError
from rpc.local.storage.files import ObjectFiles
from rpc.local.storage.uploads import ClientGone, UploadBody, request_chunks
from rpc.platform.auth import Caller, TokenVerifier, gateway_authorization
from rpc.platform.db import SERVICE, Database
from rpc.platform.errors import ApiError

log = logging.getLogger(__name__)

# A route: its methods, its path pattern (after /storage/v1, percent-encoded), its handler, and whether it
# takes no API key or token (public objects and signed URLs carry their own permission).
Route = tuple[frozenset[str], re.Pattern[str], Callable[["StorageApi", "Call", Send], Awaitable[None]], bool]

PREFIX = b"/storage/v1"
CHUNK = 256 * 1024
WRITE_BATCH = 1024 * 1024  # bytes handed to a thread to write at once
MAX_JSON_BYTES = 1024 * 1024
OBJECT_COLUMNS = (
    "id, bucket_id, name, owner, owner_id, version, metadata, user_metadata, created_at, updated_at,"
    " last_accessed_at"
)
RANGE = re.compile(r"bytes=(\d*)-(\d*)")


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
        return names.bucket_name(names.decode(self.params["bucket"]))

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


class StorageApi:
    """The ASGI app behind `/storage/v1`: matches a route, authenticates its caller (unless the route is
    public or signed), and answers errors in Storage's shape."""

    def __init__(
        self,
        db: Database,
        verifier: TokenVerifier,
        files: ObjectFiles,
        routes: Sequence[Route],
        *,
        secret: str,
        file_size_limit: int,
    ) -> None:
        self.db, self.verifier, self.files, self.routes = db, verifier, files, routes
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
            error = errors.from_database(exc)
            if error.status >= 500:
                log.warning("storage: %s during %s %s: %s", error.code, call.method, path, exc)
            await error.send(send)

    async def dispatch(self, call: Call, send: Send) -> None:
        path_matched = False
        for methods, pattern, handler, public in self.routes:
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
        body = await UploadBody.read_head(call.receive, call.headers, limit)
        names.mime_allowed(body.mime_type, allowed)
        row = ObjectRow(
            bucket_id, name, caller.claims.get("sub"), upsert=upsert, user_metadata=body.user_metadata
        )
        if not checked:
            await self.probe_write(caller, call, row, mimetype=body.mime_type, declared=body.declared)
        upload = self.files.writer()
        try:
            batch: list[bytes] = []
            received = 0
            async for chunk in body.content():
                received += len(chunk)
                if received > limit:
                    raise errors.entity_too_large()
                batch.append(chunk)
                if received - upload.size >= WRITE_BATCH:
                    await in_thread(upload.write, batch)
                    batch = []
            await in_thread(upload.finish, batch)
            metadata = {
                "eTag": upload.etag,
                "size": upload.size,
                "mimetype": body.mime_type,
                "cacheControl": body.cache_control,
                "lastModified": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                "contentLength": upload.size,
                "httpStatusCode": 200,
            }
            object_id, previous = await self.store(caller, call, row, upload.version, metadata)
        except BaseException:
            upload.discard()
            raise
        self.files.remove(previous)
        return object_id, f"{bucket_id}/{name}"

    async def probe_write(
        self, caller: Caller, call: Call, row: ObjectRow, *, mimetype: str | None, declared: Any
    ) -> None:
        """Would the caller's insert (upsert) pass? Done and rolled back, as Storage's canUpload does, with
        the type and size the request declares."""
        try:
            async with self.db.as_caller(caller, method=call.method, path=call.path) as conn:
                await conn.execute(*row.write({"mimetype": mimetype, "contentLength": declared}, "probe"))
                raise _RollBack
        except _RollBack:
            pass

    async def store(
        self, caller: Caller, call: Call, row: ObjectRow, version: str, metadata: dict[str, Any]
    ) -> tuple[str, str | None]:
        """The object's row as the caller; (its id, the version it replaced)."""
        async with self.db.as_caller(caller, method=call.method, path=call.path) as conn:
            previous = await locked_version(conn, caller, row.bucket_id, row.name)
            stored = await (await conn.execute(*row.write(metadata, version))).fetchone()
        assert stored is not None
        return str(stored["id"]), previous

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


@dataclass(frozen=True, slots=True)
class ObjectRow:
    """An object's row as a write gives it: where, whose, with what user metadata; created, or upserted."""

    bucket_id: str
    name: str
    owner: str | None
    upsert: bool = False
    user_metadata: dict[str, Any] | None = None

    def write(self, metadata: dict[str, Any], version: str) -> tuple[LiteralString, tuple[Any, ...]]:
        """The insert (or upsert) of this row with `metadata` and `version`, and its parameters."""
        values = (
            self.bucket_id,
            self.name,
            self.owner,
            self.owner,
            metadata_json(metadata),
            metadata_json(self.user_metadata),
            version,
        )
        return (UPSERT if self.upsert else INSERT), values


async def in_thread(function: Callable[..., None], *args: Any) -> None:
    """Run a blocking file operation in a thread; when cancelled, still wait for it to end, since it holds
    a file descriptor that `discard()` would otherwise close (and the OS reuse) under it."""
    running = asyncio.ensure_future(asyncio.to_thread(function, *args))
    try:
        await asyncio.shield(running)
    except asyncio.CancelledError:
        await running
        raise


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


async def wait_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
