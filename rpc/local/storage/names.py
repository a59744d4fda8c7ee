"""Object keys and bucket names, validated as the real Storage server validates them (storage/limits.ts).

Its keys are S3-safe ASCII only: a name with any other character (unicode in NFC or NFD, NUL, control
characters, `%`, `\\`) is refused with InvalidKey, never normalised into another name. Files on disk are
named after the object's version, not its key, so no key reaches the file system; `.`/`..` segments and
absolute or empty-segment paths are refused all the same, because they name nothing a client could mean.
"""

from __future__ import annotations

import re
from urllib.parse import unquote

from rpc.local.storage.errors import invalid_bucket_name, invalid_key, invalid_mime_type

VALID_KEY = re.compile(r"[A-Za-z0-9_/!.*'() &$=@;:+,?-]+")
VALID_BUCKET = re.compile(r"[A-Za-z0-9_!.*'() &$=@;:+,?-]{1,100}")
MAX_KEY_BYTES = 1024  # S3's limit on a key, which Storage's keys keep to
EMPTY_FOLDER = ".emptyFolderPlaceholder"  # what the dashboard uploads to show an empty folder


def decode(raw: str) -> str:
    """A path segment as the client percent-encoded it, decoded once; undecodable bytes make it invalid."""
    try:
        return unquote(raw, errors="strict")
    except UnicodeDecodeError:
        raise invalid_key(raw) from None


def object_key(name: str) -> str:
    if (
        not VALID_KEY.fullmatch(name)
        or len(name) > MAX_KEY_BYTES
        or name.startswith("/")
        or any(segment in ("", ".", "..") for segment in name.rstrip("/").split("/"))
    ):
        raise invalid_key(name)
    return name


def bucket_name(name: str) -> str:
    if not VALID_BUCKET.fullmatch(name) or name in (".", ".."):
        raise invalid_bucket_name()
    return name


def is_empty_folder(name: str) -> bool:
    return name.rsplit("/", 1)[-1] == EMPTY_FOLDER


def mime_allowed(mime_type: str, allowed: list[str] | None) -> None:
    """Storage's check (uploader.ts validateMimeType): type/subtype, or type/* in the bucket's list."""
    if not allowed:
        return
    kind, _, subtype = mime_type.partition(";")[0].strip().lower().partition("/")
    if subtype:
        for entry in allowed:
            allowed_kind, _, allowed_subtype = entry.lower().partition("/")
            if allowed_kind == kind and allowed_subtype in ("*", subtype):
                return
    raise invalid_mime_type(mime_type)
