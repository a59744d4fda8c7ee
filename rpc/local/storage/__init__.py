"""The local stack's `/storage/v1`: Supabase Storage's HTTP API over `storage.buckets` and `storage.objects`.

Real Storage (a Node server shipped only as a container image) cannot run here, so `python app.py` serves
the part of its contract the official clients use; in production Supabase serves it. Bytes live under
`STORAGE_DIR` (`.data/storage`), one file per object version.
"""

from __future__ import annotations

from rpc.local.config import parse_size, supabase_config
from rpc.local.storage.api import StorageApi
from rpc.local.storage.files import ObjectFiles
from rpc.local.storage.routes import ROUTES
from rpc.platform.auth import TokenVerifier
from rpc.platform.db import Database
from rpc.platform.settings import Settings


def storage_api(settings: Settings, db: Database, verifier: TokenVerifier) -> StorageApi:
    """`/storage/v1` with `[storage] file_size_limit` from supabase/config.toml, as `supabase start` has it."""
    limit = parse_size(
        supabase_config(settings.supabase_config).get("storage", {}).get("file_size_limit", "50MiB")
    )
    return StorageApi(
        db,
        verifier,
        ObjectFiles(settings.storage_dir or settings.data_dir / "storage"),
        ROUTES,
        secret=settings.supabase_jwt_secret.get_secret_value(),
        file_size_limit=limit,
    )
