"""Files, through the project's Storage API (`/storage/v1`) with the service key: the functions' one path to
files, the same code on the local stack and on a hosted project (`Settings.project_url`).

Calls go through `storage3`, supabase-py's storage client, except the two that must stream (a body sent
from an async iterator, a download read chunk by chunk), which storage3 cannot do: those use the same
httpx client and headers. Storage's errors become ours: a missing object is 404 `not_found`, an existing one
(an upload without upsert) 409 `conflict`, anything else 502 `storage_error`; Storage's own text goes to
the log only.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterable, AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, BinaryIO, NoReturn

import httpx
from storage3 import AsyncStorageClient
from storage3._async.file_api import relative_path_to_parts
from storage3.exceptions import StorageApiError
from storage3.types import FileOptions, URLOptions
from yarl import URL

from rpc.platform.errors import ApiError
from rpc.platform.settings import Settings

log = logging.getLogger(__name__)

# Uploads and downloads of large objects take long in total but never wait long for one chunk.
TIMEOUT = httpx.Timeout(60.0, connect=5.0)


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    name: str
    size: int
    content_type: str | None
    etag: str | None
    cache_control: str | None
    last_modified: str | None
    metadata: dict[str, Any] | None  # the user metadata stored with the object


class Storage:
    """One per app (`app.state.storage`); its connections open on first use and close with `close()`."""

    def __init__(self, settings: Settings) -> None:
        key = settings.supabase_secret_key.get_secret_value()
        self.url = f"{settings.project_url}/storage/v1/"
        # As supabase-py sends a key: a `sb_secret_` key in both headers is what the gateway maps to the
        # service role (rpc.platform.auth.gateway_authorization), a legacy service_role JWT works as itself.
        self.headers = {"apikey": key, "Authorization": f"Bearer {key}"}
        self._client: AsyncStorageClient | None = None

    @property
    def client(self) -> AsyncStorageClient:
        if self._client is None:
            # HTTP/1.1 (storage3's own client would speak h2): pure-Python h2 costs throughput on large
            # bodies and buys nothing for a server-side caller.
            http = httpx.AsyncClient(headers=self.headers, timeout=TIMEOUT)
            self._client = AsyncStorageClient(self.url, self.headers, http_client=http)
        return self._client

    async def close(self) -> None:
        if self._client is not None:
            await self._client.session.aclose()
            self._client = None

    async def upload(
        self,
        bucket: str,
        path: str,
        data: bytes | AsyncIterable[bytes],
        *,
        content_type: str = "application/octet-stream",
        cache_seconds: int = 3600,
        upsert: bool = False,
        size: int | None = None,
    ) -> None:
        """Store `data` at `path`; an existing object is replaced only with `upsert`. An async iterable is sent
        as it yields, never joined (`size`, when known, is sent as its Content-Length, else it is chunked)."""
        with storage_errors("upload", bucket, path):
            if isinstance(data, bytes):
                options: FileOptions = {
                    "content-type": content_type,
                    "cache-control": str(cache_seconds),
                    "upsert": "true" if upsert else "false",
                }
                await self.client.from_(bucket).upload(path, data, options)
                return
            # storage3 sends bodies as multipart forms of bytes or files, and httpx cannot put an async
            # iterator in a form: a stream goes as a raw body, which Storage takes as well (supabase-js
            # sends non-Blob bodies so), with the options as headers.
            headers = {
                "content-type": content_type,
                "cache-control": f"max-age={cache_seconds}",
                "x-upsert": "true" if upsert else "false",
            }
            if size is not None:
                headers["content-length"] = str(size)
            response = await self.client.session.post(
                self.object_url(bucket, path), content=data, headers=headers
            )
            if response.is_error:
                refused(response.status_code, response.content)

    async def chunks(self, bucket: str, path: str) -> AsyncIterator[bytes]:
        """The object's bytes as they arrive. Leaving early: iterate inside `contextlib.aclosing(...)`, so
        the connection is released at once."""
        with storage_errors("download", bucket, path):
            async with self.client.session.stream("GET", self.object_url(bucket, path)) as response:
                if response.is_error:
                    refused(response.status_code, await response.aread())
                async for chunk in response.aiter_bytes():
                    yield chunk

    async def download_to(self, bucket: str, path: str, target: BinaryIO) -> int:
        """Write the object into `target` (an open, writable binary file) as it arrives; the bytes written."""
        written = 0
        async for chunk in self.chunks(bucket, path):
            # A write of one chunk to a local file takes microseconds: not worth a thread each.
            target.write(chunk)
            written += len(chunk)
        return written

    async def signed_url(
        self, bucket: str, path: str, expires_in: int, *, download: str | bool = False
    ) -> str:
        """An absolute URL anyone may GET the object with, for `expires_in` seconds; with `download` it is
        served as an attachment (named so, when a name is given)."""
        options: URLOptions = {"download": download} if download else {}
        with storage_errors("sign", bucket, path):
            signed = await self.client.from_(bucket).create_signed_url(path, expires_in, options)
        url = signed["signedURL"]
        if url is None:
            raise missing()
        return url

    async def remove(self, bucket: str, *paths: str) -> None:
        """Remove the objects (those already gone are no error)."""
        with storage_errors("remove", bucket, *paths):
            await self.client.from_(bucket).remove(list(paths))

    async def info(self, bucket: str, path: str) -> ObjectInfo:
        with storage_errors("info", bucket, path):
            found = await self.client.from_(bucket).info(path)
        return ObjectInfo(
            name=found["name"],
            size=found["size"],
            content_type=found.get("content_type"),
            etag=found.get("etag"),
            cache_control=found.get("cache_control"),
            last_modified=found.get("last_modified"),
            metadata=found.get("metadata"),
        )

    async def exists(self, bucket: str, path: str) -> bool:
        with storage_errors("exists", bucket, path):
            return await self.client.from_(bucket).exists(path)

    def object_url(self, bucket: str, path: str) -> str:
        return str(URL(self.url).joinpath("object", bucket, *parts(path)))


@contextmanager
def storage_errors(operation: str, bucket: str, *paths: str) -> Iterator[None]:
    """Storage's errors (storage3's, ours from a streamed response, the network's) as ApiErrors, for a call
    on `paths` (checked first)."""
    for path in paths:
        parts(path)
    try:
        yield
    except StorageApiError as exc:
        if str(exc.status) == "404" and exc.code == "not_found":
            raise missing() from None
        if str(exc.status) == "409":
            raise ApiError(409, "conflict", "a file already exists at that path") from None
        log.warning("storage: %s %s %s refused: %s", operation, bucket, paths, exc)
        raise unavailable() from None
    except httpx.HTTPError as exc:
        log.warning("storage: %s %s %s failed: %r", operation, bucket, paths, exc)
        raise unavailable() from None


def parts(path: str) -> tuple[str, ...]:
    """The name's segments as storage3 splits and checks them for its own calls; a name it would refuse to
    send (a `.` or `..` segment, broken percent-encoding) is the caller's 400."""
    try:
        return relative_path_to_parts(path)
    except ValueError:
        raise ApiError(400, "invalid_input", "that file name is not allowed") from None


def refused(status: int, body: bytes) -> NoReturn:
    """A streamed call's error response, read as storage3 reads its own (Storage's JSON error body)."""
    try:
        error = json.loads(body)
        message, code, status_code = error["message"], error["error"], error["statusCode"]
    except (KeyError, TypeError, ValueError):
        raise StorageApiError(body[:200].decode("utf-8", "replace"), "InternalError", status) from None
    raise StorageApiError(message, code, status_code)


def missing() -> ApiError:
    return ApiError(404, "not_found", "there is no such file")


def unavailable() -> ApiError:
    return ApiError(502, "storage_error", "the file store failed; try again")
