"""The functions' storage client (rpc/platform/storage.py) against the local stack's /storage/v1.

The client is configured as on a hosted project (SUPABASE_URL pointing at the stack, the `sb_secret_` key)
and works in a private bucket it creates itself, so every call proves the service key's path.
"""

from __future__ import annotations

import asyncio
import hashlib
import tracemalloc
import uuid
from collections.abc import AsyncIterator
from contextlib import aclosing
from pathlib import Path

import httpx
import pytest

from rpc.platform.errors import ApiError
from rpc.platform.settings import SUPABASE_CLI_SECRET_KEY
from rpc.platform.storage import Storage

CHUNK = 256 * 1024
STREAMED = 20 * 1024 * 1024


@pytest.fixture(scope="module")
async def storage(database, api_url) -> AsyncIterator[Storage]:
    settings = database.settings(supabase_url=api_url)
    assert settings.supabase_secret_key.get_secret_value() == SUPABASE_CLI_SECRET_KEY
    client = Storage(settings)
    yield client
    await client.close()


@pytest.fixture(scope="module")
async def bucket(storage: Storage) -> str:
    name = f"private-{uuid.uuid4().hex[:8]}"
    await storage.client.create_bucket(name, options={"public": False})
    return name


def block(index: int) -> bytes:
    """The index-th chunk of the streamed object: distinct per chunk, so a lost or reordered one shows."""
    return hashlib.sha256(index.to_bytes(4, "big")).digest() * (CHUNK // 32)


async def streamed_body(pulled: list[int]) -> AsyncIterator[bytes]:
    for index in range(STREAMED // CHUNK):
        pulled.append(index)
        yield block(index)


def streamed_digest() -> str:
    digest = hashlib.sha256()
    for index in range(STREAMED // CHUNK):
        digest.update(block(index))
    return digest.hexdigest()


async def test_bytes_go_up_and_come_back_with_their_type(storage, bucket):
    path = f"pdfs/{uuid.uuid4()}.pdf"
    await storage.upload(bucket, path, b"%PDF-1.7 tiny", content_type="application/pdf")
    assert b"".join([chunk async for chunk in storage.chunks(bucket, path)]) == b"%PDF-1.7 tiny"
    info = await storage.info(bucket, path)
    assert (info.name, info.size, info.content_type) == (path, 13, "application/pdf")
    assert info.cache_control == "max-age=3600"
    assert await storage.exists(bucket, path)


async def test_an_existing_object_is_replaced_only_with_upsert(storage, bucket):
    path = f"speech/{uuid.uuid4()}.mp3"
    await storage.upload(bucket, path, b"first", content_type="audio/mpeg")
    with pytest.raises(ApiError) as refused:
        await storage.upload(bucket, path, b"second", content_type="audio/mpeg")
    # Storage's 409, in our words.
    assert (refused.value.status, refused.value.code) == (409, "conflict")
    await storage.upload(bucket, path, b"second", content_type="audio/mpeg", upsert=True)
    assert b"".join([chunk async for chunk in storage.chunks(bucket, path)]) == b"second"


async def test_a_20_mb_stream_goes_up_unbuffered_and_comes_down_to_a_file(storage, bucket, tmp_path: Path):
    path = f"resumes/{uuid.uuid4()}.pdf"
    pulled: list[int] = []
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        await storage.upload(
            bucket, path, streamed_body(pulled), content_type="application/pdf", size=STREAMED
        )
        peak = tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()
    assert len(pulled) == STREAMED // CHUNK
    # Joined, the body alone would be 20 MB; streamed, a few chunks are alive at once (client and server).
    assert peak < STREAMED // 5, f"peak {peak / 1e6:.1f} MB while uploading"
    assert (await storage.info(bucket, path)).size == STREAMED

    target = tmp_path / "resume.pdf"
    with target.open("wb") as file:
        written = await storage.download_to(bucket, path, file)
    assert written == target.stat().st_size == STREAMED
    assert hashlib.sha256(target.read_bytes()).hexdigest() == streamed_digest()


async def test_a_stream_of_unknown_size_goes_chunked(storage, bucket):
    path = f"speech/{uuid.uuid4()}.wav"

    async def body() -> AsyncIterator[bytes]:
        yield b"RIFF"
        yield b"data"

    await storage.upload(bucket, path, body(), content_type="audio/wav")
    assert b"".join([chunk async for chunk in storage.chunks(bucket, path)]) == b"RIFFdata"


async def test_a_download_left_early_releases_its_connection(storage, bucket):
    path = f"big/{uuid.uuid4()}"
    await storage.upload(bucket, path, b"x" * (4 * CHUNK))
    for _ in range(3):
        async with aclosing(storage.chunks(bucket, path)) as chunks:
            async for chunk in chunks:
                assert chunk
                break
    assert len(b"".join([chunk async for chunk in storage.chunks(bucket, path)])) == 4 * CHUNK


async def test_a_signed_url_serves_without_a_key_until_it_expires(storage, bucket):
    path = f"pdfs/{uuid.uuid4()}.pdf"
    await storage.upload(bucket, path, b"%PDF signed", content_type="application/pdf")
    # exp is whole seconds (iat rounded down + 3): valid for 2 s at least, gone 3 s after signing.
    url = await storage.signed_url(bucket, path, 3, download="offer.pdf")
    assert url.startswith(storage.url)
    async with httpx.AsyncClient() as anyone:
        served = await anyone.get(url)
        assert served.status_code == 200
        assert served.content == b"%PDF signed"
        assert served.headers["content-disposition"].startswith("attachment; filename=offer.pdf")
        # Nor can the bucket be read without the token: it is private.
        assert (await anyone.get(storage.object_url(bucket, path))).status_code != 200
        await asyncio.sleep(3.1)
        expired = await anyone.get(url)
    assert expired.status_code == 400
    assert expired.json()["error"] == "InvalidJWT"


async def test_a_missing_object_is_our_404_everywhere(storage, bucket, tmp_path: Path):
    path = f"nothing/{uuid.uuid4()}.pdf"
    calls = [
        lambda: storage.info(bucket, path),
        lambda: storage.signed_url(bucket, path, 60),
        lambda: storage.download_to(bucket, path, (tmp_path / "none").open("wb")),
        lambda: anext(storage.chunks(bucket, path)),
    ]
    for call in calls:
        with pytest.raises(ApiError) as missing:
            await call()
        assert (missing.value.status, missing.value.code) == (404, "not_found")
    assert not await storage.exists(bucket, path)


async def test_remove_then_it_does_not_exist(storage, bucket):
    paths = [f"old/{uuid.uuid4()}.pdf" for _ in range(2)]
    for path in paths:
        await storage.upload(bucket, path, b"old")
        assert await storage.exists(bucket, path)
    await storage.remove(bucket, *paths)
    for path in paths:
        assert not await storage.exists(bucket, path)
    await storage.remove(bucket, *paths)  # already gone: no error


async def test_a_name_with_dot_segments_is_refused_before_it_is_sent(storage, bucket):
    for path in ("../escape.pdf", "a/./b.pdf"):
        with pytest.raises(ApiError) as refused:
            await storage.upload(bucket, path, b"x")
        assert (refused.value.status, refused.value.code) == (400, "invalid_input")


async def test_an_unreachable_store_is_a_502(database):
    unreachable = Storage(database.settings(supabase_url="http://127.0.0.1:9"))
    try:
        with pytest.raises(ApiError) as failed:
            await unreachable.upload("any", "a.pdf", b"x")
        assert (failed.value.status, failed.value.code) == (502, "storage_error")
    finally:
        await unreachable.close()


async def test_the_app_hands_functions_one_client_and_closes_it(database):
    from litestar.testing import AsyncTestClient

    from app import create_app

    app = create_app(database.settings())
    async with AsyncTestClient(app=app):
        storage = app.state.storage
        assert isinstance(storage, Storage)
        assert storage.client is storage.client
        session = storage.client.session
    assert session.is_closed
