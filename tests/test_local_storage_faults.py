"""The local stack's /storage/v1 under faults: racing uploads, clients that leave mid-body, the app killed
mid-upload, bodies over the limit without a Content-Length, downloads abandoned mid-stream.

Requests go over raw sockets where a client library would not send what a fault sends (half a body, a
chunked body that never ends). After every fault the bytes on disk and the rows agree: no temporary file
left, and every version file is named by exactly one row (what ObjectFiles promises).
"""

from __future__ import annotations

import json
import os
import socket
import struct
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from pydantic import SecretStr

from rpc.local.rest import free_port
from rpc.platform.settings import Settings
from tests.support import ANON_KEY, SERVICE_KEY, User, make_user, token_for

ROOT = Path(__file__).resolve().parent.parent
SMALL_LIMIT = 64 * 1024
RACE_SIZE = 512 * 1024
# SO_LINGER on, zero seconds: close() sends a reset, as a crashed client or a dropped network does.
RESET = struct.pack("ii", 1, 0)
SERVICE = {"apikey": SERVICE_KEY, "authorization": f"Bearer {SERVICE_KEY}"}


# Disk and rows ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Store:
    """The module's storage folder and its database, read past every policy."""

    root: Path
    conn: psycopg.Connection

    def temporary_files(self) -> list[Path]:
        return sorted((self.root / "tmp").iterdir())

    def version_files(self) -> set[str]:
        return {path.name for path in (self.root / "objects").glob("*/*")}

    def versions(self) -> set[str]:
        rows = self.conn.execute("select version from storage.objects where version is not null").fetchall()
        return {row[0] for row in rows}

    def row(self, bucket: str, name: str) -> dict[str, Any] | None:
        row = self.conn.execute(
            "select version, metadata from storage.objects where bucket_id = %s and name = %s", (bucket, name)
        ).fetchone()
        return None if row is None else {"version": row[0], "metadata": row[1]}

    def assert_consistent(self) -> None:
        assert self.temporary_files() == []
        assert self.version_files() == self.versions()


def wait_until(check: Callable[[], Any], what: str, timeout_s: float = 15) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if result := check():
            return result
        time.sleep(0.02)
    raise AssertionError(f"{what}: not within {timeout_s} s")


@pytest.fixture(scope="module")
def store(database) -> Iterator[Store]:
    root = database.settings().storage_dir
    with psycopg.connect(database.superuser, autocommit=True) as conn:
        yield Store(root, conn)


@pytest.fixture(scope="module")
def alice(store: Store) -> User:
    return make_user(store.conn, email=f"alice-{uuid.uuid4().hex[:6]}@example.com")


@pytest.fixture(scope="module")
def buckets(api_url: str) -> dict[str, str]:
    """Two private buckets of the module's own: one with a small limit, one with none of its own."""
    names = {"small": f"small-{uuid.uuid4().hex[:6]}", "open": f"open-{uuid.uuid4().hex[:6]}"}
    for kind, name in names.items():
        body: dict[str, Any] = {"name": name, "public": False}
        if kind == "small":
            body["file_size_limit"] = SMALL_LIMIT
        assert httpx.post(f"{api_url}/storage/v1/bucket", json=body, headers=SERVICE).status_code == 200
    return names


# Raw HTTP ---------------------------------------------------------------------------------------------


def open_request(
    url: str, method: str, path: str, headers: dict[str, str], *, length: int | None = None
) -> socket.socket:
    """A connection with the request's head sent: with `length`, a Content-Length; without, chunked."""
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=30)
    lines = [f"{method} /storage/v1{path} HTTP/1.1", f"host: {host}:{port}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    lines.append(f"content-length: {length}" if length is not None else "transfer-encoding: chunked")
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    return sock


def chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


@dataclass(frozen=True)
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def read_response(sock: socket.socket) -> Response:
    """One response with a Content-Length (every one /storage/v1 sends has one)."""
    data = b""
    while b"\r\n\r\n" not in data:
        received = sock.recv(65536)
        if not received:
            raise AssertionError(f"the connection closed after {data!r}")
        data += received
    head, body = data.split(b"\r\n\r\n", 1)
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in header_lines)}
    length = int(headers["content-length"])
    while len(body) < length:
        received = sock.recv(65536)
        if not received:
            break
        body += received
    return Response(int(status_line.split()[1]), headers, body[:length])


def user_headers(user: User, content_type: str = "image/png", **extra: str) -> dict[str, str]:
    return {
        "apikey": ANON_KEY,
        "authorization": f"Bearer {token_for(user)}",
        "content-type": content_type,
        **extra,
    }


def download(url: str, bucket: str, name: str) -> httpx.Response:
    return httpx.get(f"{url}/storage/v1/object/{bucket}/{name}", headers=SERVICE, timeout=30)


# Two uploads to one path at once ----------------------------------------------------------------------


@pytest.mark.parametrize("upsert", [False, True], ids=["create", "upsert"])
def test_two_uploads_to_one_path_at_once(api_url: str, store: Store, alice: User, upsert: bool) -> None:
    headers = user_headers(alice, **({"x-upsert": "true"} if upsert else {}))
    for _ in range(3):
        name = f"{alice.id}/race-{uuid.uuid4().hex[:8]}.png"
        bodies = [b"A" * RACE_SIZE, b"B" * RACE_SIZE]
        sockets = [
            open_request(api_url, "POST", f"/object/avatars/{name}", headers, length=RACE_SIZE)
            for _ in bodies
        ]
        with closing(sockets[0]), closing(sockets[1]):
            for sock, body in zip(sockets, bodies, strict=True):
                sock.sendall(body[: RACE_SIZE // 2])
            # Both passed their checks and are writing: end them together, so their rows race.
            wait_until(lambda: len(store.temporary_files()) == 2, "two uploads streaming")
            for sock, body in zip(sockets, bodies, strict=True):
                sock.sendall(body[RACE_SIZE // 2 : -1])
            for sock, body in zip(sockets, bodies, strict=True):
                sock.sendall(body[-1:])
            replies = [read_response(sock) for sock in sockets]

        won = [body for body, reply in zip(bodies, replies, strict=True) if reply.status == 200]
        if upsert:
            assert [reply.status for reply in replies] == [200, 200], replies
        else:
            assert len(won) == 1, replies
            lost = next(reply for reply in replies if reply.status != 200)
            assert (lost.json()["statusCode"], lost.json()["error"]) == ("409", "Duplicate")
        stored = download(api_url, "avatars", name).content
        assert stored in won  # whole, and one of the bodies that was accepted
        row = store.row("avatars", name)
        assert row is not None
        assert row["metadata"]["size"] == RACE_SIZE
        assert (store.root / "objects" / row["version"][:2] / row["version"]).stat().st_size == RACE_SIZE
        store.assert_consistent()  # the loser's (or the replaced) version is gone


# A client that leaves mid-upload --------------------------------------------------------------------------


def form_head(boundary: str) -> bytes:
    return (
        f'--{boundary}\r\nContent-Disposition: form-data; name="cacheControl"\r\n\r\n60\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name=""; filename="a.png"\r\n'
        "Content-Type: image/png\r\n\r\n"
    ).encode()


@pytest.mark.parametrize("as_form", [False, True], ids=["raw", "multipart"])
@pytest.mark.parametrize("reset", [False, True], ids=["close", "reset"])
def test_a_client_that_leaves_mid_upload_leaves_nothing(
    api_url: str, store: Store, alice: User, as_form: bool, reset: bool
) -> None:
    name = f"{alice.id}/left-{uuid.uuid4().hex[:8]}.png"
    boundary = "b0undary"
    content_type = f"multipart/form-data; boundary={boundary}" if as_form else "image/png"
    head = form_head(boundary) if as_form else b""
    sock = open_request(
        api_url, "POST", f"/object/avatars/{name}", user_headers(alice, content_type), length=1_500_000
    )
    sock.sendall(head + b"x" * 400_000)
    wait_until(store.temporary_files, "the upload writing")
    if reset:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, RESET)
    sock.close()
    wait_until(lambda: not store.temporary_files(), "the temporary file removed")
    assert store.row("avatars", name) is None
    store.assert_consistent()
    # The server goes on: the same path uploads whole.
    again = httpx.post(
        f"{api_url}/storage/v1/object/avatars/{name}", content=b"whole", headers=user_headers(alice)
    )
    assert again.status_code == 200, again.text
    assert download(api_url, "avatars", name).content == b"whole"
    store.assert_consistent()


# The app killed mid-upload ----------------------------------------------------------------------------

RUNNER = (
    "import sys, uvicorn\n"
    "from app import create_app\n"
    "from rpc.platform.settings import Settings\n"
    "uvicorn.run(create_app(Settings()), host='127.0.0.1', port=int(sys.argv[1]), log_config=None)\n"
)


def environment(settings: Settings) -> dict[str, str]:
    """The settings given explicitly, as the environment variables Settings reads."""
    env = {}
    for name in settings.model_fields_set:
        value = getattr(settings, name)
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        elif isinstance(value, bool):
            value = "true" if value else "false"
        elif isinstance(value, list | dict):
            value = json.dumps(value)
        env[name.upper()] = str(value)
    return env


@contextmanager
def app_process(settings: Settings, logs: Path) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """The app in a process of its own on a free port; stopped (if still alive) afterwards."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with logs.open("ab") as output:
        proc = subprocess.Popen(
            [sys.executable, "-c", RUNNER, str(port)],
            cwd=ROOT,
            env={**os.environ, **environment(settings)},
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:

        def ready() -> bool:
            if proc.poll() is not None:
                raise AssertionError(f"the app exited with {proc.returncode}: {logs.read_text()}")
            try:
                return httpx.get(f"{url}/storage/v1/bucket/avatars", headers=SERVICE).status_code == 200
            except httpx.TransportError:
                return False

        wait_until(ready, "the app serving /storage/v1", 60)
        yield proc, url
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


def test_the_app_killed_mid_upload_leaves_nothing_after_a_restart(
    database, store: Store, alice: User, tmp_path: Path
) -> None:
    settings = database.settings(rest_api=False, storage_api=True)
    logs = tmp_path / "app.log"
    name = f"{alice.id}/killed-{uuid.uuid4().hex[:8]}.png"
    store.assert_consistent()
    with app_process(settings, logs) as (proc, url):
        sock = open_request(url, "POST", f"/object/avatars/{name}", user_headers(alice), length=1_500_000)
        with closing(sock):
            sock.sendall(b"x" * 600_000)
            wait_until(store.temporary_files, "the upload writing")
            proc.kill()
            proc.wait(10)
    assert len(store.temporary_files()) == 1  # what the crash left
    assert store.row("avatars", name) is None
    # And what a crash between renaming a version into place and committing its row leaves.
    orphan = str(uuid.uuid4())
    (store.root / "objects" / orphan[:2]).mkdir(exist_ok=True)
    (store.root / "objects" / orphan[:2] / orphan).write_bytes(b"never committed")
    assert store.version_files() - store.versions() == {orphan}

    with app_process(settings, logs) as (_, url):
        store.assert_consistent()
        assert store.row("avatars", name) is None
        again = httpx.post(
            f"{url}/storage/v1/object/avatars/{name}", content=b"after", headers=user_headers(alice)
        )
        assert again.status_code == 200, again.text
        assert download(url, "avatars", name).content == b"after"
    store.assert_consistent()


# Limits without a Content-Length -----------------------------------------------------------------------


def test_a_chunked_upload_over_the_limit_is_refused_while_it_streams(
    api_url: str, store: Store, buckets: dict[str, str]
) -> None:
    bucket, name = buckets["small"], f"over-{uuid.uuid4().hex[:8]}.bin"
    with closing(open_request(api_url, "POST", f"/object/{bucket}/{name}", SERVICE)) as sock:
        for _ in range(SMALL_LIMIT // 16384):
            sock.sendall(chunk(b"x" * 16384))
        sock.sendall(chunk(b"x"))  # one byte over, and the body's end never sent
        refused = read_response(sock)
    assert refused.status == 400
    assert refused.json() == {
        "statusCode": "413",
        "code": "EntityTooLarge",
        "error": "Payload too large",
        "message": "The object exceeded the maximum allowed size",
    }
    assert store.row(bucket, name) is None
    store.assert_consistent()


def test_a_chunked_upload_exactly_at_the_limit_is_stored(
    api_url: str, store: Store, buckets: dict[str, str]
) -> None:
    bucket, name = buckets["small"], f"at-{uuid.uuid4().hex[:8]}.bin"
    body = bytes(range(256)) * (SMALL_LIMIT // 256)
    with closing(open_request(api_url, "POST", f"/object/{bucket}/{name}", SERVICE)) as sock:
        for start in range(0, SMALL_LIMIT, 10000):
            sock.sendall(chunk(body[start : start + 10000]))
        sock.sendall(b"0\r\n\r\n")
        stored = read_response(sock)
    assert stored.status == 200, stored.body
    assert stored.json()["Key"] == f"{bucket}/{name}"
    assert download(api_url, bucket, name).content == body
    store.assert_consistent()


def test_a_declared_length_over_the_limit_is_refused_before_the_body(
    api_url: str, store: Store, buckets: dict[str, str]
) -> None:
    bucket, name = buckets["small"], f"declared-{uuid.uuid4().hex[:8]}.bin"
    path = f"/object/{bucket}/{name}"
    with closing(open_request(api_url, "POST", path, SERVICE, length=SMALL_LIMIT + 1)) as sock:
        refused = read_response(sock)  # not a byte of the body sent
        # The client may go on sending what it declared (fetch does, then reads the answer): the server
        # drops it, and the connection serves the next request, never reset under the writer.
        sock.sendall(b"x" * (SMALL_LIMIT + 1))
        sock.sendall(f"GET /storage/v1/bucket/{bucket} HTTP/1.1\r\nhost: x\r\n".encode())
        sock.sendall("".join(f"{k}: {v}\r\n" for k, v in SERVICE.items()).encode() + b"\r\n")
        assert read_response(sock).json()["id"] == bucket
    assert refused.status == 400
    assert refused.json()["statusCode"] == "413"
    assert store.row(bucket, name) is None
    store.assert_consistent()
    # The [storage] limit applies to a bucket without one of its own, before the body too.
    huge = 10 * 1024**3
    with closing(
        open_request(api_url, "POST", f"/object/{buckets['open']}/{name}", SERVICE, length=huge)
    ) as sock:
        assert read_response(sock).json()["statusCode"] == "413"
    store.assert_consistent()


# A download abandoned mid-stream ----------------------------------------------------------------------


def open_object_files(root: Path) -> list[str]:
    """Object files this process (the app under uvicorn runs in it) holds open."""
    objects = str(root / "objects")
    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith(objects):
            found.append(target)
    return found


@pytest.mark.parametrize("reset", [False, True], ids=["close", "reset"])
def test_a_download_abandoned_mid_stream_does_not_hurt_the_server(
    api_url: str, store: Store, buckets: dict[str, str], reset: bool
) -> None:
    bucket, name = buckets["open"], f"big-{uuid.uuid4().hex[:8]}.bin"
    body = bytes(range(256)) * (8 * 4096)  # 8 MiB
    uploaded = httpx.post(f"{api_url}/storage/v1/object/{bucket}/{name}", content=body, headers=SERVICE)
    assert uploaded.status_code == 200, uploaded.text
    for _ in range(3):
        sock = open_request(api_url, "GET", f"/object/{bucket}/{name}", SERVICE, length=0)
        received = b""
        while b"\r\n\r\n" not in received or len(received) < 200_000:
            data = sock.recv(65536)
            assert data, received[:200]
            received += data
        assert received.startswith(b"HTTP/1.1 200")
        if reset:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, RESET)
        sock.close()
    # The server let go of the file, and serves the object whole to the next client.
    wait_until(lambda: not open_object_files(store.root), "the object file closed")
    assert download(api_url, bucket, name).content == body
    assert httpx.get(f"{api_url}/storage/v1/bucket/{bucket}", headers=SERVICE).status_code == 200
    store.assert_consistent()
