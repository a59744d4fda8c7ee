"""An upload's body as Storage reads it: raw bytes, or the first file of a multipart form.

supabase-js sends a Blob or File as a form (fields `cacheControl`, `metadata`, then the file), other bodies
raw with `content-type`, `cache-control` and `x-metadata`; supabase-py always sends a form. Only what
precedes the file is read before the upload is checked; the file itself is handed on chunk by chunk.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import re
from collections.abc import AsyncIterator
from typing import Any

import msgspec
import multipart
from litestar.types import Receive

from rpc.local.storage import errors

FORM_FIELDS = frozenset({"cacheControl", "contentType", "metadata", "userMetadata"})
MAX_USER_METADATA_BYTES = 1024 * 1024
# Type and cache control are sent back as headers on download: printable ASCII only (no CR/LF injection).
HEADER_VALUE = re.compile(r"[\x20-\x7e]{1,1024}")


class ClientGone(Exception):
    """The client closed the connection before its request body ended."""


async def request_chunks(receive: Receive) -> AsyncIterator[bytes]:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        if chunk := message.get("body", b""):
            yield chunk
        if not message.get("more_body", False):
            return


class UploadBody:
    """An upload's body: raw bytes, or the first file of a multipart form (supabase-js sends a Blob so), with
    the type, cache control and user metadata that came with it. Only what precedes the file is read first."""

    def __init__(self, receive: Receive) -> None:
        self.chunks = request_chunks(receive)
        self.mime_type = "application/octet-stream"
        self.cache_control = "no-cache"
        self.user_metadata: dict[str, Any] | None = None
        self.declared: int | None = None
        self._parser: multipart.PushMultipartParser | None = None
        self._pending: list[bytes] = []
        self._file_ended = False

    @classmethod
    async def read_head(cls, receive: Receive, headers: dict[str, str], limit: int) -> UploadBody:
        body = cls(receive)
        content_type = headers.get("content-type", "")
        # Absent with chunked transfer encoding: then only the bytes as they stream in are counted.
        with contextlib.suppress(KeyError, ValueError):
            body.declared = int(headers["content-length"])
        if content_type.lower().startswith("multipart/form-data"):
            await body._read_form_head(content_type)
            body.check_header_values()
            return body
        body.mime_type = content_type or body.mime_type
        body.cache_control = headers.get("cache-control", body.cache_control)
        if encoded := headers.get("x-metadata"):
            body.user_metadata = decode_user_metadata(encoded)
        if body.declared is not None and body.declared > limit:
            raise errors.entity_too_large()
        body.check_header_values()
        return body

    def check_header_values(self) -> None:
        header_value(self.mime_type)
        header_value(self.cache_control)

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
            raise errors.no_content()  # the request ended inside the file: it is not whole


def header_value(value: Any) -> str:
    """A type or cache control fit to be sent back as a header, or InvalidRequest."""
    if not isinstance(value, str) or not HEADER_VALUE.fullmatch(value):
        raise errors.invalid_request(f"Invalid character in header value: {str(value)[:50]!r}")
    return value


def decode_user_metadata(encoded: str) -> dict[str, Any] | None:
    """`x-metadata`: base64 JSON (the real server ignores what does not decode)."""
    if len(encoded) > MAX_USER_METADATA_BYTES * 4 // 3 + 4:
        raise errors.entity_too_large("user_metadata")
    try:
        value = msgspec.json.decode(base64.b64decode(encoded))
    except (binascii.Error, msgspec.DecodeError, ValueError):
        return None
    return value if isinstance(value, dict) else None
