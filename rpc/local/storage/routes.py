"""The routes of `/storage/v1`, in the order they are matched: fixed words before names, as Storage's
router prefers them (so a bucket named `public` or `sign` is reached only where the real server reaches it).
Paths, bodies and answers follow supabase/storage's `src/http/routes/object` and `bucket`.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, LiteralString, cast

import msgspec
from litestar.types import Send

from rpc.local.config import parse_size
from rpc.local.storage import errors, names
from rpc.local.storage.api import OBJECT_COLUMNS, Call, ObjectRow, Route, locked_version
from rpc.local.storage.errors import StorageError
from rpc.local.storage.uploads import decode_user_metadata, header_value
from rpc.platform.auth import Caller
from rpc.platform.db import SERVICE

if TYPE_CHECKING:
    from rpc.local.storage.api import StorageApi

MAX_OBJECTS_PER_REQUEST = 1000
UPLOAD_URL_EXPIRY_S = 7200  # the real server's default for signed upload URLs
SORT_COLUMNS = frozenset({"name", "updated_at", "created_at", "last_accessed_at"})
BUCKET_SORT_COLUMNS = frozenset({"id", "name", "created_at", "updated_at"})
# Storage's response schema types `owner` as a string, so a bucket without one (made by SQL) says "".
BUCKET_COLUMNS = (
    "id, name, coalesce(owner::text, '') as owner, public, file_size_limit, allowed_mime_types, created_at,"
    " updated_at"
)

Handler = Callable[["StorageApi", Call, Send], Awaitable[None]]


def route(method: str, pattern: str, *, public: bool = False) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        ROUTES.append((frozenset(method.split("|")), re.compile(pattern), handler, public))
        return handler

    return register


ROUTES: list[Route] = []
BUCKET = r"(?P<bucket>[^/]+)"
NAME = r"(?P<name>.+)"


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
        seconds, exact = int(float(value)), float(value)
    except (ValueError, OverflowError):
        seconds, exact = 0, 0.0
    if seconds != exact or not 0 < seconds <= 10 * 365 * 86400:
        raise errors.invalid_request("expiresIn must be a positive number of seconds")
    return seconds


def file_size_limit(value: Any) -> int | None:
    if value is None:
        return None
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
        await must_see_bucket(conn, bucket_id)
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
        await must_see_bucket(conn, bucket_id)
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


async def must_see_bucket(conn: Any, bucket_id: str) -> None:
    """NoSuchBucket unless the caller may see the bucket (its policies on storage.buckets decide)."""
    cursor = await conn.execute("select 1 from storage.buckets where id = %s", (bucket_id,))
    if await cursor.fetchone() is None:
        raise errors.no_such_bucket()


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
        prefix += "/"  # a prefix is a folder, as in Storage's search
    ordering = (
        f'sort_key collate "C" {order}'
        if column == "name"
        else f'is_folder desc, case when is_folder then sort_key end collate "C" {order}, {column} {order}, name'
    )
    rows = await api.db.fetch(
        call.caller,
        cast(LiteralString, LIST + f" order by {ordering} limit %(limit)s offset %(offset)s"),
        {
            "bucket": call.bucket(),
            "pattern": like_escape((prefix + search).lower()) + "%",
            "rest": len(prefix + search) + 1,
            "start": len(prefix) + 1,
            "limit": min(limit, 1000),
            "offset": offset,
        },
        method=call.method,
        path=call.path,
    )
    for row in rows:
        del row["sort_key"], row["is_folder"]
    await send_json(send, rows)


# Storage's search (its newest `storage.search`): what lies under the prefix and matches the search, one
# level deep. A name with a `/` after what was searched for is a folder (listed once, by its name up to
# that `/`), any other a file; both are named relative to the prefix. By name, folders and files come in
# one order (of the lower-cased full path, byte-wise); by a date, folders first (by name), then files.
LIST = """
with matched as (
  select name, id, updated_at, created_at, last_accessed_at, metadata,
         strpos(substr(name, %(rest)s), '/') as slash
  from storage.objects
  where bucket_id = %(bucket)s and lower(name) like %(pattern)s escape '\\'
), entries as (
  select distinct substr(left(name, %(rest)s - 2 + slash), %(start)s) as name, null::uuid as id,
         null::timestamptz as updated_at, null::timestamptz as created_at,
         null::timestamptz as last_accessed_at, null::jsonb as metadata,
         lower(left(name, %(rest)s - 1 + slash)) as sort_key, true as is_folder
  from matched where slash > 0
  union all
  select substr(name, %(start)s), id, updated_at, created_at, last_accessed_at, metadata, lower(name), false
  from matched where slash = 0
)
select * from entries
"""


V2_SORT_COLUMNS = frozenset({"name", "updated_at", "created_at"})
# Past every key under a folder: `~` and DEL sort after every character a valid key may hold.
PAST_FOLDER = "\x7f"


@dataclass
class Position:
    """Where a list-v2 page ends: the last name, and for a date order that entry's date (to the ms)."""

    name: str
    at: datetime | None = None

    def token(self, column: str, order: str) -> str:
        # Storage's continuation token: base64 of `l:`, `o:`, `c:` and `a:` lines.
        parts = [f"l:{self.name}", f"o:{order}", f"c:{column}"]
        if self.at is not None:
            parts.append(f"a:{self.at.isoformat(timespec='milliseconds')}")
        return base64.b64encode("\n".join(parts).encode()).decode()

    @classmethod
    def read(cls, token: str) -> tuple[Position, str | None, str | None]:
        """The position, order and column a token holds; InvalidParameter when it is not one of ours."""
        try:
            lines = base64.b64decode(token, validate=True).decode().split("\n")
            parts = dict(line.split(":", 1) for line in lines)
            at = datetime.fromisoformat(parts["a"]) if "a" in parts else None
        except (ValueError, KeyError, binascii.Error):
            raise StorageError(400, "InvalidParameter", "Invalid Parameter continuation token") from None
        return cls(parts.get("l", ""), at), parts.get("o"), parts.get("c")


@route("POST", rf"/object/list-v2/{BUCKET}/?")
async def list_objects_v2(api: StorageApi, call: Call, send: Send) -> None:
    """Storage's cursor-paged listing: every key under a prefix (case-sensitive), or one level of it
    (`with_delimiter`), by name or by a date; `nextCursor` continues where a page ended."""
    body = await call.json()
    prefix = body.get("prefix") or ""
    limit = body.get("limit", 1000)
    sort = body.get("sortBy") or {}
    if not isinstance(prefix, str) or not isinstance(sort, dict):
        raise errors.invalid_request("prefix must be text and sortBy an object")
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
        raise errors.invalid_request("limit must be a positive integer")
    limit = min(limit, 1000)
    column, order = sort.get("column", "name"), str(sort.get("order", "asc")).lower()
    position: Position | None = None
    if cursor := body.get("cursor"):
        if not isinstance(cursor, str):
            raise errors.invalid_request("cursor must be text")
        position, cursor_order, cursor_column = Position.read(cursor)
        order, column = cursor_order or order, cursor_column or column
    if column not in V2_SORT_COLUMNS or order not in ("asc", "desc"):
        raise errors.invalid_request("sortBy.column or sortBy.order is not one Storage knows")
    delimited = body.get("with_delimiter") is True
    if position is not None and delimited and column == "name" and position.name.endswith("/"):
        position.name += PAST_FOLDER if order == "asc" else ""  # a page that ended on a folder
    entries: list[tuple[dict[str, Any], Position]] = []
    exhausted = False
    while len(entries) <= limit and not exhausted:
        wanted = limit + 1 - len(entries)
        rows = await api.db.fetch(
            call.caller,
            cast(LiteralString, list_v2_query(column, order, position)),
            {
                "bucket": call.bucket(),
                "prefix": like_escape(prefix) + "%",
                "after_name": position.name if position else None,
                "after_at": position.at if position else None,
                "limit": wanted,
            },
            method=call.method,
            path=call.path,
        )
        exhausted = len(rows) < wanted
        for row in rows:
            at = row.pop("sort_at")
            slash = row["name"].find("/", len(prefix)) if delimited else -1
            if slash < 0:
                position = Position(row["name"], at)
                entries.append(({**row, "key": row["name"]}, position))
            else:
                folder = row["name"][: slash + 1]
                position = Position(folder if column == "name" else row["name"], at)
                if not entries or entries[-1][0]["name"] != folder:
                    entries.append(({"id": None, "key": folder, "name": folder}, position))
                if column == "name":
                    # Seek past the folder's keys rather than read them all.
                    position = Position(folder + (PAST_FOLDER if order == "asc" else ""))
                    exhausted = False
                    break
            if len(entries) > limit:
                break
    page = entries[:limit]
    result: dict[str, Any] = {
        "hasNext": len(entries) > limit,
        "folders": [entry for entry, _ in page if entry["id"] is None],
        "objects": [entry for entry, _ in page if entry["id"] is not None],
    }
    if result["hasNext"]:
        last_entry, last = page[-1]
        result["nextCursor"] = Position(last_entry["name"], last.at if column != "name" else None).token(
            column, order
        )
        result["nextCursorKey"] = last_entry["name"]
    await send_json(send, result)


def list_v2_query(column: str, order: str, position: Position | None) -> str:
    """One page of keys after `position`, in the order asked for (column and order from the lists)."""
    before_or_after = ">" if order == "asc" else "<"
    sort_at = f"date_trunc('milliseconds', {column})" if column != "name" else "null::timestamptz"
    after = ""
    if position is not None:
        after = (
            f' and name collate "C" {before_or_after} %(after_name)s'
            if column == "name" or position.at is None
            else f' and ({sort_at}, name collate "C") {before_or_after} (%(after_at)s, %(after_name)s)'
        )
    ordering = (
        f'name collate "C" {order}' if column == "name" else f'{sort_at} {order}, name collate "C" {order}'
    )
    return (
        # Column and order come from the lists above.
        f"select id, name, metadata, updated_at, created_at, last_accessed_at, {sort_at} as sort_at"  # noqa: S608
        " from storage.objects where bucket_id = %(bucket)s and name like %(prefix)s escape '\\'"
        f"{after} order by {ordering} limit %(limit)s"
    )


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
        for key in ("cacheControl", "mimetype"):
            if key in overrides:
                metadata[key] = header_value(overrides[key])
        encoded = call.headers.get("x-metadata")
        user_metadata = decode_user_metadata(encoded) if encoded else None
    row = ObjectRow(
        destination_bucket,
        destination,
        caller.claims.get("sub"),
        upsert=call.headers.get("x-upsert") == "true",
        user_metadata=user_metadata,
    )
    version = await asyncio.to_thread(api.files.link, original["version"])
    try:
        object_id, previous = await api.store(caller, call, row, version, metadata)
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
    await api.probe_write(
        caller,
        call,
        ObjectRow(bucket_id, name, owner, upsert=upsert),
        mimetype=call.headers.get("content-type"),
        declared=call.headers.get("content-length"),
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
