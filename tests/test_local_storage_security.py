"""The local stack's /storage/v1 as an attacker meets it: every kind of caller, forged and stale tokens,
signed URLs used where they do not belong, and paths, headers and bodies no frontend would send.

Requests go out through http.client, which sends a path as written (httpx and browsers remove dot segments
and re-encode first). Every refusal must be a 4xx in Storage's error shape, never a 500, never Postgres's
text; every right a policy grants must still work.
"""

from __future__ import annotations

import base64
import http.client
import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

import jwt
import psycopg
import pytest

from rpc.platform.settings import SUPABASE_CLI_PUBLISHABLE_KEY, SUPABASE_CLI_SECRET_KEY
from tests.support import (
    ANON_KEY,
    SERVICE_KEY,
    Company,
    User,
    add_member,
    make_company,
    make_user,
    token_for,
)

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 24
SECRET_BYTES = b"the vault's secret"
FOREIGN_SECRET = "not-this-projects-secret-but-32-characters-long"
ERROR_KEYS = {"statusCode", "code", "error", "message"}
# What Postgres, psycopg or Python would say; none of it may reach a client.
LEAKS = ("SQLSTATE", "psycopg", "Traceback", "DETAIL", "CONTEXT:", "syntax error", "out of range", "bigint")

USERS = ("alice", "bob", "owner", "admin", "recruiter", "other-owner")
SERVICE_ACTORS = frozenset({"service key", "sb_secret key"})
# Callers the server must not recognise at all.
INVALID_ACTORS = frozenset(
    {
        "no headers",
        "tampered JWT",
        "expired JWT",
        "JWT with role postgres",
        "JWT with role supabase_admin",
        "JWT of another secret",
        "unknown sb_secret key",
    }
)
ACTORS = ("anon key", "sb_publishable key", *USERS, *sorted(SERVICE_ACTORS), *sorted(INVALID_ACTORS))


@dataclass(frozen=True)
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def request(
    url: str,
    method: str,
    path: str,
    headers: dict[str, str] | None = None,
    body: bytes | dict[str, Any] | list[Any] | None = None,
) -> Reply:
    """One request with the path exactly as given (under /storage/v1), on a connection of its own."""
    headers = dict(headers or {})
    if isinstance(body, dict | list):
        body = json.dumps(body).encode()
        headers.setdefault("content-type", "application/json")
    connection = http.client.HTTPConnection(url.removeprefix("http://"), timeout=30)
    try:
        connection.request(method, f"/storage/v1{path}", body=body, headers=headers)
        response = connection.getresponse()
        return Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
    finally:
        connection.close()


def refused(reply: Reply, status: str | tuple[str, ...] | None = None) -> dict[str, Any]:
    """Storage's error shape, a 4xx (by HTTP status and by statusCode) without any database text."""
    assert 400 <= reply.status < 500, (reply.status, reply.body[:300])
    body = reply.json()
    assert set(body) == ERROR_KEYS, body
    assert body["statusCode"].isdigit(), body
    assert 400 <= int(body["statusCode"]) < 500, body
    assert not any(leak in body["message"] for leak in LEAKS), body
    if status is not None:
        assert body["statusCode"] in ((status,) if isinstance(status, str) else status), body
    return body


def tampered(token: str, **changes: Any) -> str:
    """The token with its claims changed and its signature kept."""
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    forged = base64.urlsafe_b64encode(json.dumps({**claims, **changes}).encode()).rstrip(b"=").decode()
    return f"{header}.{forged}.{signature}"


# The world: users, two companies, a private bucket and objects, made once per module -------------------


@dataclass(frozen=True)
class World:
    url: str
    users: dict[str, User]
    company: Company
    other_company: Company
    vault: str  # a private bucket with no policy: only the service role may touch it
    actors: dict[str, dict[str, str]]

    def folder(self, actor: str) -> str | None:
        return self.users[actor].id if actor in self.users else None

    def call(self, actor: str, method: str, path: str, body: Any = None, **headers: str) -> Reply:
        return request(self.url, method, path, {**self.actors[actor], **headers}, body)

    def put(self, path: str, body: bytes = PNG, content_type: str = "image/png") -> None:
        """Store `path` (bucket/name) as the service role, replacing what is there."""
        reply = self.call("service key", "POST", f"/object/{path}", body, **upsert(content_type))
        assert reply.status == 200, reply.body

    def get(self, path: str) -> bytes | None:
        reply = self.call("service key", "GET", f"/object/{path}")
        return reply.body if reply.status == 200 else None


def upsert(content_type: str = "image/png") -> dict[str, str]:
    return {"content-type": content_type, "x-upsert": "true"}


@pytest.fixture(scope="module")
def world(api_url: str, database) -> World:
    with psycopg.connect(database.superuser, autocommit=True) as conn:
        users = {name: make_user(conn, email=f"{name}-{uuid.uuid4().hex[:6]}@example.com") for name in USERS}
        company = make_company(conn, users["owner"])
        add_member(conn, company, users["admin"], "admin")
        add_member(conn, company, users["recruiter"], "recruiter")
        other_company = make_company(conn, users["other-owner"])
    alice = token_for(users["alice"])
    now = int(time.time())
    with_anon_key = {"apikey": ANON_KEY}
    actors: dict[str, dict[str, str]] = {
        "no headers": {},
        "anon key": {**with_anon_key, "authorization": f"Bearer {ANON_KEY}"},
        # What supabase-js sends with the newer keys and no session.
        "sb_publishable key": {
            "apikey": SUPABASE_CLI_PUBLISHABLE_KEY,
            "authorization": f"Bearer {SUPABASE_CLI_PUBLISHABLE_KEY}",
        },
        "service key": {"apikey": SERVICE_KEY, "authorization": f"Bearer {SERVICE_KEY}"},
        "sb_secret key": {
            "apikey": SUPABASE_CLI_SECRET_KEY,
            "authorization": f"Bearer {SUPABASE_CLI_SECRET_KEY}",
        },
        "unknown sb_secret key": {"apikey": "sb_secret_guessed", "authorization": "Bearer sb_secret_guessed"},
        # Alice's token made to say service_role, its signature kept.
        "tampered JWT": {**with_anon_key, "authorization": f"Bearer {tampered(alice, role='service_role')}"},
        "expired JWT": {
            **with_anon_key,
            "authorization": f"Bearer {token_for(users['alice'], iat=now - 7200, exp=now - 3600)}",
        },
        "JWT with role postgres": {
            **with_anon_key,
            "authorization": f"Bearer {token_for(users['alice'], role='postgres')}",
        },
        "JWT with role supabase_admin": {
            **with_anon_key,
            "authorization": f"Bearer {token_for(users['alice'], role='supabase_admin')}",
        },
        "JWT of another secret": {
            **with_anon_key,
            "authorization": f"Bearer {token_for(users['alice'], FOREIGN_SECRET, role='service_role')}",
        },
        **{
            name: {**with_anon_key, "authorization": f"Bearer {token_for(user)}"}
            for name, user in users.items()
        },
    }
    vault = f"vault-{uuid.uuid4().hex[:8]}"
    world = World(api_url, users, company, other_company, vault, actors)
    created = world.call("service key", "POST", "/bucket", {"name": vault, "public": False})
    assert created.status == 200, created.body
    world.put(f"{vault}/secret.txt", SECRET_BYTES, "text/plain")
    return world


# A private bucket -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("actor", ACTORS)
def test_a_private_bucket_without_policies_is_the_service_roles_alone(world: World, actor: str) -> None:
    vault, name = world.vault, "secret.txt"
    reads = [
        world.call(actor, "GET", f"/object/{vault}/{name}"),
        world.call(actor, "GET", f"/object/authenticated/{vault}/{name}"),
        world.call(actor, "HEAD", f"/object/{vault}/{name}"),
    ]
    info = world.call(actor, "GET", f"/object/info/{vault}/{name}")
    listed = world.call(actor, "POST", f"/object/list/{vault}", {"prefix": "", "search": "secret"})
    signed = world.call(actor, "POST", f"/object/sign/{vault}/{name}", {"expiresIn": 60})
    signed_many = world.call(actor, "POST", f"/object/sign/{vault}", {"expiresIn": 60, "paths": [name]})
    written = world.call(actor, "POST", f"/object/{vault}/by-{uuid.uuid4().hex[:6]}.txt", b"x")
    bucket = world.call(actor, "GET", f"/bucket/{vault}")
    # Not public, so its public URL serves no one, whoever asks.
    refused(world.call(actor, "GET", f"/object/public/{vault}/{name}"), "404")
    refused(world.call(actor, "GET", f"/object/info/public/{vault}/{name}"), "404")

    if actor in SERVICE_ACTORS:
        assert [reply.status for reply in reads] == [200, 200, 200]
        assert reads[0].body == reads[1].body == SECRET_BYTES
        assert info.json()["size"] == len(SECRET_BYTES)
        assert [entry["name"] for entry in listed.json()] == [name]
        url = signed.json()["signedURL"]
        assert request(world.url, "GET", url).body == SECRET_BYTES
        assert signed_many.json()[0]["error"] is None
        assert written.status == 200
        assert bucket.json()["public"] is False
        return
    for reply in reads:
        assert reply.status >= 400
        assert SECRET_BYTES not in reply.body
    if actor in INVALID_ACTORS:
        for reply in (reads[0], reads[1], info, listed, signed, signed_many, written, bucket):
            assert refused(reply, "403")["code"] == "AccessDenied"
        return
    refused(reads[0], "404")
    refused(reads[1], "404")
    refused(info, "404")
    assert (listed.status, listed.json()) == (200, [])
    refused(signed, "404")
    assert signed_many.json() == [
        {
            "error": "Either the object does not exist or you do not have access to it",
            "path": name,
            "signedURL": None,
        }
    ]
    assert refused(written, "403")["message"] == "new row violates row-level security policy"
    refused(bucket, "404")
    assert world.get(f"{vault}/secret.txt") == SECRET_BYTES


# avatars and company-logos, under every actor --------------------------------------------------------


def allowed(actor: str, *who: str) -> bool:
    return actor in SERVICE_ACTORS or actor in who


def expect_write(reply: Reply, ok: bool, actor: str) -> None:
    if ok:
        assert reply.status == 200, (actor, reply.body)
    else:
        refused(reply, "403")


@pytest.mark.parametrize("actor", ACTORS)
def test_who_writes_where_in_the_public_buckets(world: World, actor: str) -> None:
    alice, company, other = world.users["alice"].id, world.company.id, world.other_company.id
    tag = f"{actor.replace(' ', '-')}-{uuid.uuid4().hex[:6]}"
    png = {"content-type": "image/png"}

    # Anyone with a valid key reads the public buckets through the API; the public URL needs none.
    world.put(f"avatars/{alice}/{tag}-read.png")
    read = world.call(actor, "GET", f"/object/avatars/{alice}/{tag}-read.png")
    if actor in INVALID_ACTORS:
        refused(read, "403")
    else:
        assert read.body == PNG
    assert world.call(actor, "GET", f"/object/public/avatars/{alice}/{tag}-read.png").body == PNG

    # Creating in alice's folder, in the company's and in the other company's logo folders.
    for path, who in (
        (f"avatars/{alice}/{tag}.png", ("alice",)),
        (f"company-logos/{company}/{tag}.png", ("owner", "admin")),
        (f"company-logos/{other}/{tag}.png", ("other-owner",)),
    ):
        ok = allowed(actor, *who)
        expect_write(world.call(actor, "POST", f"/object/{path}", PNG, **png), ok, actor)
        assert world.get(path) == (PNG if ok else None), path

    # Replacing an object someone else put there: upsert (POST with x-upsert) and update (PUT).
    for path, who in (
        (f"avatars/{alice}/{tag}-target.png", ("alice",)),
        (f"company-logos/{company}/{tag}-target.png", ("owner", "admin")),
    ):
        for method, headers in (("POST", upsert()), ("PUT", png)):
            world.put(path)
            ok = allowed(actor, *who)
            expect_write(world.call(actor, method, f"/object/{path}", b"replaced", **headers), ok, actor)
            assert world.get(path) == (b"replaced" if ok else PNG), (path, method)

    # Removing it, in bulk and one by one: refused means nothing removed (bulk answers []).
    for path, who in (
        (f"avatars/{alice}/{tag}-target.png", ("alice",)),
        (f"company-logos/{company}/{tag}-target.png", ("owner", "admin")),
    ):
        bucket, name = path.split("/", 1)
        ok = allowed(actor, *who)
        world.put(path)
        bulk = world.call(actor, "DELETE", f"/object/{bucket}", {"prefixes": [name]})
        world.put(path)
        single = world.call(actor, "DELETE", f"/object/{path}")
        if actor in INVALID_ACTORS:
            refused(bulk, "403")
            refused(single, "403")
        elif ok:
            assert [row["name"] for row in bulk.json()] == [name]
            assert single.json() == {"message": "Successfully deleted"}
        else:
            assert (bulk.status, bulk.json()) == (200, [])
            refused(single, "404")
        assert world.get(path) == (None if ok else PNG), path

    # Moving alice's object into the caller's folder (or one named by no one): only she and the service
    # role may update it, and she only within her folder.
    source = f"{alice}/{tag}-move.png"
    world.put(f"avatars/{source}")
    destination = f"{world.folder(actor) or 'nobody'}/{tag}-moved.png"
    moved = world.call(
        actor,
        "POST",
        "/object/move",
        {"bucketId": "avatars", "sourceKey": source, "destinationKey": destination},
    )
    ok = allowed(actor, "alice")
    if ok:
        assert moved.json() == {"message": "Successfully moved"}
    else:
        refused(moved, "403" if actor in INVALID_ACTORS else "404")
    assert world.get(f"avatars/{source}") == (None if ok else PNG)
    assert world.get(f"avatars/{destination}") == (PNG if ok else None)

    # Users write their own folder; nobody without a user id has one.
    if actor in world.users:
        mine = f"avatars/{world.users[actor].id}/{tag}-mine.png"
        assert world.call(actor, "POST", f"/object/{mine}", PNG, **png).status == 200
        assert world.call(actor, "GET", f"/object/{mine}").body == PNG


def test_moves_and_copies_stay_within_what_the_caller_may_write(world: World) -> None:
    alice, bob = world.users["alice"].id, world.users["bob"].id
    tag = uuid.uuid4().hex[:6]
    world.put(f"avatars/{alice}/{tag}.png")
    world.put(f"avatars/{bob}/{tag}.png", PNG + b"bob")

    def move(actor: str, source: str, destination: str, bucket: str = "avatars", **extra: str) -> Reply:
        body = {"bucketId": bucket, "sourceKey": source, "destinationKey": destination, **extra}
        return world.call(actor, "POST", "/object/move", body)

    def copy(actor: str, source: str, destination: str, bucket: str = "avatars", **extra: str) -> Reply:
        body = {"bucketId": bucket, "sourceKey": source, "destinationKey": destination, **extra}
        return world.call(actor, "POST", "/object/copy", body)

    # Into another user's folder: the update's check refuses it, and the object stays where it was.
    refused(move("alice", f"{alice}/{tag}.png", f"{bob}/{tag}-planted.png"), "403")
    refused(move("alice", f"{alice}/{tag}.png", f"{tag}-root.png"), "403")
    refused(move("alice", f"{alice}/{tag}.png", f"{alice}/{tag}.png", destinationBucket=world.vault), "403")
    assert world.get(f"avatars/{alice}/{tag}.png") == PNG
    assert world.get(f"avatars/{bob}/{tag}-planted.png") is None
    # Out of another user's folder: no row she may update.
    refused(move("alice", f"{bob}/{tag}.png", f"{alice}/{tag}-stolen.png"), "404")
    assert world.get(f"avatars/{bob}/{tag}.png") == PNG + b"bob"
    # Onto an existing object of her own: a duplicate, not an overwrite.
    world.put(f"avatars/{alice}/{tag}-other.png", PNG + b"other")
    refused(move("alice", f"{alice}/{tag}-other.png", f"{alice}/{tag}.png"), "409")
    assert world.get(f"avatars/{alice}/{tag}.png") == PNG
    # Within her folder: allowed.
    assert move("alice", f"{alice}/{tag}.png", f"{alice}/{tag}-renamed.png").status == 200
    assert world.get(f"avatars/{alice}/{tag}-renamed.png") == PNG

    # Copy: the source must be readable and the destination writable by the caller.
    refused(
        copy(
            "alice",
            "secret.txt",
            f"{alice}/{tag}-secret.txt",
            bucket=world.vault,
            destinationBucket="avatars",
        ),
        "404",
    )
    assert world.get(f"avatars/{alice}/{tag}-secret.txt") is None
    refused(copy("alice", f"{alice}/{tag}-renamed.png", f"{bob}/{tag}-planted.png"), "403")
    refused(copy("alice", f"{alice}/{tag}-renamed.png", "secret.txt", destinationBucket=world.vault), "403")
    assert world.get(f"{world.vault}/secret.txt") == SECRET_BYTES
    # Over her own object without x-upsert: a duplicate; bob's avatar is public, so she may copy it to hers.
    refused(copy("alice", f"{bob}/{tag}.png", f"{alice}/{tag}-renamed.png"), "409")
    assert copy("alice", f"{bob}/{tag}.png", f"{alice}/{tag}-copied.png").status == 200
    assert world.get(f"avatars/{alice}/{tag}-copied.png") == PNG + b"bob"
    # Bob's upsert by copy over alice's object: refused, hers intact.
    refused(
        world.call(
            "bob",
            "POST",
            "/object/copy",
            {
                "bucketId": "avatars",
                "sourceKey": f"{bob}/{tag}.png",
                "destinationKey": f"{alice}/{tag}-copied.png",
            },
            **{"x-upsert": "true"},
        ),
        "403",
    )
    assert world.get(f"avatars/{alice}/{tag}-copied.png") == PNG + b"bob"

    # A company owner cannot move the company's logo into another company's folder.
    company, other = world.company.id, world.other_company.id
    world.put(f"company-logos/{company}/{tag}.png")
    refused(move("owner", f"{company}/{tag}.png", f"{other}/{tag}.png", bucket="company-logos"), "403")
    refused(move("other-owner", f"{company}/{tag}.png", f"{other}/{tag}.png", bucket="company-logos"), "404")
    assert world.get(f"company-logos/{company}/{tag}.png") == PNG
    assert world.get(f"company-logos/{other}/{tag}.png") is None


@pytest.mark.parametrize("actor", sorted(set(ACTORS) - SERVICE_ACTORS))
def test_buckets_are_managed_by_the_service_role_alone(world: World, actor: str) -> None:
    loosened = {"public": True, "file_size_limit": 10**9, "allowed_mime_types": ["text/html"]}
    attempts = [
        world.call(actor, "PUT", "/bucket/avatars", loosened),
        world.call(actor, "PUT", f"/bucket/{world.vault}", loosened),
        world.call(actor, "POST", f"/bucket/{world.vault}/empty"),
        world.call(actor, "DELETE", f"/bucket/{world.vault}"),
        world.call(actor, "POST", "/bucket", {"name": f"mine-{uuid.uuid4().hex[:6]}", "public": True}),
    ]
    for reply in attempts:
        refused(reply, ("403", "404"))
    listed = world.call(actor, "GET", "/bucket")
    if actor in INVALID_ACTORS:
        refused(listed, "403")
    else:
        assert listed.json() == []
    avatars = world.call("service key", "GET", "/bucket/avatars").json()
    assert (avatars["public"], avatars["file_size_limit"]) == (True, 2 * 1024 * 1024)
    assert "text/html" not in avatars["allowed_mime_types"]
    vault = world.call("service key", "GET", f"/bucket/{world.vault}").json()
    assert (vault["public"], vault["file_size_limit"]) == (False, None)
    assert world.get(f"{world.vault}/secret.txt") == SECRET_BYTES


# Signed URLs ----------------------------------------------------------------------------------------------


def signed_download(world: World, name: str = "secret.txt", expires_in: int = 60) -> str:
    reply = world.call("service key", "POST", f"/object/sign/{world.vault}/{name}", {"expiresIn": expires_in})
    return reply.json()["signedURL"]


def token_of(url: str) -> str:
    return url.split("token=", 1)[1]


def test_a_signed_url_expires(world: World) -> None:
    # exp is whole seconds (iat rounded down + 3): valid for 2 s at least, gone 3 s after signing.
    url = signed_download(world, expires_in=3)
    assert request(world.url, "GET", url).body == SECRET_BYTES
    time.sleep(3.1)
    body = refused(request(world.url, "GET", url), "400")
    assert (body["error"], body["message"]) == ("InvalidJWT", "jwt expired")


def test_signed_download_tokens_are_checked(world: World) -> None:
    vault = world.vault
    world.put(f"{vault}/other.txt", b"other", "text/plain")
    url = signed_download(world)
    token = token_of(url)
    path = f"/object/sign/{vault}/secret.txt"
    claims = jwt.decode(token, options={"verify_signature": False})

    def invalid(token: str, at: str = path, error: str | None = "InvalidJWT") -> None:
        body = refused(request(world.url, "GET", f"{at}?token={token}"), "400")
        assert body["error"] in ((error,) if error else ("InvalidJWT", "InvalidSignature")), body

    # The token's own path, tampered to name another: the signature no longer matches.
    invalid(tampered(token, url=f"{vault}/other.txt"), f"/object/sign/{vault}/other.txt")
    # The genuine token at another path, another bucket, or with a different spelling of the same name.
    invalid(token, f"/object/sign/{vault}/other.txt", "InvalidSignature")
    invalid(token, "/object/sign/avatars/secret.txt", "InvalidSignature")
    # Made with another secret, or with none.
    invalid(jwt.encode(claims, FOREIGN_SECRET, algorithm="HS256"))
    invalid(jwt.encode(claims, key=None, algorithm="none"))
    # The project's other tokens are not signed URLs, though the same secret signs them.
    invalid(token_for(world.users["alice"]), error=None)
    invalid(SERVICE_KEY, error=None)
    invalid("not-a-token")
    # No token at all.
    assert refused(request(world.url, "GET", path), "400")["error"] == "MissingParameter"
    assert refused(request(world.url, "GET", path + "?token="), "400")["error"] == "MissingParameter"
    # And the genuine one still works.
    assert request(world.url, "GET", url).body == SECRET_BYTES


def test_upload_and_download_tokens_are_not_interchangeable(world: World) -> None:
    alice = world.users["alice"].id
    name = f"{alice}/{uuid.uuid4().hex[:6]}.png"
    world.put(f"avatars/{name}")
    made = world.call("alice", "POST", f"/object/upload/sign/avatars/{name}", None, **{"x-upsert": "true"})
    upload_token = made.json()["token"]
    # An upload token does not download, even the object it may overwrite.
    body = refused(request(world.url, "GET", f"/object/sign/avatars/{name}?token={upload_token}"), "400")
    assert body["error"] == "InvalidSignature"
    # A download token does not upload.
    download_token = token_of(signed_download(world))
    overwrite = request(
        world.url,
        "PUT",
        f"/object/upload/sign/{world.vault}/secret.txt?token={download_token}",
        {"content-type": "text/plain"},
        b"overwritten",
    )
    assert refused(overwrite, "400")["error"] == "InvalidSignature"
    assert world.get(f"{world.vault}/secret.txt") == SECRET_BYTES
    # Nor does an upload token forged with another secret, or one without a token at all.
    forged = jwt.encode(
        {"url": f"{world.vault}/forged.txt", "scope": "upload", "upsert": True, "exp": int(time.time()) + 60},
        FOREIGN_SECRET,
        algorithm="HS256",
    )
    put = request(
        world.url, "PUT", f"/object/upload/sign/{world.vault}/forged.txt?token={forged}", {}, b"forged"
    )
    assert refused(put, "400")["error"] == "InvalidJWT"
    put = request(world.url, "PUT", f"/object/upload/sign/{world.vault}/forged.txt", {}, b"forged")
    assert refused(put, "400")["error"] == "MissingParameter"
    assert world.get(f"{world.vault}/forged.txt") is None
    # Bob may not even ask for an upload token into alice's folder; alice's token works once, for its path.
    refused(world.call("bob", "POST", f"/object/upload/sign/avatars/{alice}/bob.png"), "403")
    used = request(
        world.url, "PUT", f"/object/upload/sign/avatars/{name}?token={upload_token}", upsert(), b"by token"
    )
    assert used.status == 200, used.body
    assert world.get(f"avatars/{name}") == b"by token"


# Paths, headers and bodies no frontend sends ----------------------------------------------------------


def alice_path(world: World, name: str) -> str:
    return f"/object/avatars/{world.users['alice'].id}/{name}"


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        pytest.param("POST", "/object/avatars/{alice}/../{bob}/x.png", "400", id="dotdot"),
        pytest.param("POST", "/object/avatars/{alice}/%2e%2e/{bob}/x.png", "400", id="encoded-dotdot"),
        pytest.param(
            "POST", "/object/avatars/{alice}/%2E%2E/%2E%2E/x.png", "400", id="upper-encoded-dotdot-twice"
        ),
        pytest.param("POST", "/object/avatars/{alice}/%252e%252e/x.png", "400", id="double-encoded-dotdot"),
        pytest.param(
            "POST", "/object/avatars/{alice}/..%2f{bob}%2fx.png", "400", id="dotdot-encoded-slashes"
        ),
        pytest.param("POST", "/object/avatars/{alice}\\..\\{bob}\\x.png", "400", id="backslashes"),
        pytest.param("POST", "/object/avatars/{alice}/%5c..%5cx.png", "400", id="encoded-backslashes"),
        pytest.param("POST", "/object/avatars/{alice}/x%00.png", "400", id="nul"),
        pytest.param("POST", "/object/avatars/{alice}/x%ff.png", "400", id="not-utf8"),
        pytest.param("POST", "/object/avatars/{alice}/" + "x" * 1025, "400", id="1025-chars"),
        pytest.param("POST", "/object/avatars/%2f{alice}/x.png", "400", id="absolute"),
        pytest.param("POST", "/object/../avatars/{alice}/x.png", "400", id="bucket-dotdot"),
        pytest.param("POST", "/object/%2e%2e/avatars/{alice}/x.png", "400", id="bucket-encoded-dotdot"),
        pytest.param("GET", "/object/../{alice}/x.png", "400", id="get-bucket-dotdot"),
        pytest.param(
            "GET", "/object/avatars/{alice}/../../{vault}/secret.txt", "400", id="get-dotdot-into-vault"
        ),
        pytest.param("GET", "/object/avatars%00/{alice}/x.png", ("400", "404"), id="get-bucket-nul"),
        pytest.param("POST", "/object/{vault}%00/x.txt", ("400", "404"), id="post-bucket-nul"),
        pytest.param("GET", "/bucket/..", "400", id="bucket-info-dotdot"),
        pytest.param("GET", "/bucket/" + "b" * 1025, "400", id="bucket-info-1025"),
        pytest.param("POST", "/object/" + "b" * 1025 + "/x.png", ("400", "404"), id="bucket-1025"),
        pytest.param(
            "GET",
            "/object/public/avatars/{alice}/%2e%2e/%2e%2e/{vault}/secret.txt",
            "400",
            id="public-dotdot-into-vault",
        ),
        pytest.param(
            "GET",
            "/object/sign/avatars/{alice}/../../{vault}/secret.txt?token=x",
            "400",
            id="signed-dotdot-into-vault",
        ),
        pytest.param("PATCH", "/object/avatars/{alice}/x.png", "404", id="method-patch"),
        pytest.param("GET", "/nothing/here", "404", id="no-route"),
    ],
)
def test_paths_no_frontend_sends_are_refused(
    world: World, method: str, path: str, status: str | tuple[str, ...]
) -> None:
    path = path.format(alice=world.users["alice"].id, bob=world.users["bob"].id, vault=world.vault)
    reply = world.call("alice", method, path, PNG, **{"content-type": "image/png"})
    refused(reply, status)
    assert SECRET_BYTES not in reply.body


def test_only_the_word_true_upserts(world: World) -> None:
    name = f"{uuid.uuid4().hex[:6]}.png"
    path = alice_path(world, name)
    assert world.call("alice", "POST", path, PNG, **{"content-type": "image/png"}).status == 200
    for spelling in ("TRUE", "True", "1", "yes"):
        reply = world.call(
            "alice", "POST", path, b"again", **{"content-type": "image/png", "x-upsert": spelling}
        )
        refused(reply, "409")
    assert world.get(f"avatars/{world.users['alice'].id}/{name}") == PNG
    reply = world.call("alice", "POST", path, b"again", **{"content-type": "image/png", "x-upsert": "true"})
    assert reply.status == 200


@pytest.mark.parametrize(
    ("content_type", "accepted"),
    [
        ("image/png; charset=x", True),
        ("IMAGE/PNG", True),
        ("image/png", True),
        ("image/svg+xml", False),
        ("text/html", False),
        ("image/png, text/html", False),
        ("text/html; image/png", False),
        ("image", False),
        ("", False),  # application/octet-stream
    ],
)
def test_the_content_type_is_checked_as_storage_checks_it(
    world: World, content_type: str, accepted: bool
) -> None:
    name = f"{uuid.uuid4().hex[:6]}.png"
    headers = {"content-type": content_type} if content_type else {}
    reply = world.call("alice", "POST", alice_path(world, name), PNG, **headers)
    if accepted:
        assert reply.status == 200, reply.body
        assert world.get(f"avatars/{world.users['alice'].id}/{name}") == PNG
    else:
        assert refused(reply, "415")["error"] == "invalid_mime_type"
        assert world.get(f"avatars/{world.users['alice'].id}/{name}") is None


def form(*parts: tuple[str, str | None, str, bytes], boundary: str = "b0undary", end: bool = True) -> bytes:
    body = b""
    for name, filename, content_type, content in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        body += f"--{boundary}\r\nContent-Disposition: {disposition}\r\n".encode()
        body += (f"Content-Type: {content_type}\r\n" if content_type else "").encode() + b"\r\n"
        body += content + b"\r\n"
    return body + (f"--{boundary}--\r\n".encode() if end else b"")


def test_a_form_with_two_files_stores_the_first_whole(world: World) -> None:
    name = f"{uuid.uuid4().hex[:6]}.png"
    body = form(("", "a.png", "image/png", PNG + b"first"), ("", "b.png", "image/png", PNG + b"second"))
    reply = world.call(
        "alice",
        "POST",
        alice_path(world, name),
        body,
        **{"content-type": "multipart/form-data; boundary=b0undary"},
    )
    assert reply.status == 200, reply.body
    assert world.get(f"avatars/{world.users['alice'].id}/{name}") == PNG + b"first"


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("multipart/form-data; boundary=b0undary", form(("cacheControl", None, "", b"60"))),
        ("multipart/form-data; boundary=b0undary", b""),
        ("multipart/form-data", form(("", "a.png", "image/png", PNG))),
        ("multipart/form-data; boundary=other", form(("", "a.png", "image/png", PNG))),
        ("multipart/form-data; boundary=b0undary", b"garbage without a boundary"),
        # The form ends inside the file (no closing boundary) while the client is still there.
        ("multipart/form-data; boundary=b0undary", form(("", "a.png", "image/png", PNG), end=False)[:-2]),
    ],
    ids=["no-file", "empty", "no-boundary", "wrong-boundary", "garbage", "unterminated"],
)
def test_a_form_without_a_whole_file_is_refused(world: World, content_type: str, body: bytes) -> None:
    name = f"{uuid.uuid4().hex[:6]}.png"
    reply = world.call("alice", "POST", alice_path(world, name), body, **{"content-type": content_type})
    refused(reply, "400")
    assert world.get(f"avatars/{world.users['alice'].id}/{name}") is None


NUL = "\u0000"
# Input the real clients never send, by what is wrong with it.
BAD_INPUT: dict[str, tuple[str, str, bytes | dict[str, Any] | None]] = {
    "list-not-json": ("POST", "/object/list/avatars", b"{"),
    "list-array": ("POST", "/object/list/avatars", b"[]"),
    "list-null": ("POST", "/object/list/avatars", b"null"),
    "list-prefix-number": ("POST", "/object/list/avatars", {"prefix": 5}),
    "list-limit-negative": ("POST", "/object/list/avatars", {"prefix": "", "limit": -1}),
    "list-offset-negative": ("POST", "/object/list/avatars", {"prefix": "", "offset": -1}),
    "list-limit-text": ("POST", "/object/list/avatars", {"prefix": "", "limit": "10"}),
    "list-offset-huge": ("POST", "/object/list/avatars", {"prefix": "", "offset": 10**20}),
    "list-sort-injection": (
        "POST",
        "/object/list/avatars",
        {"prefix": "", "sortBy": {"column": "name; drop table storage.objects"}},
    ),
    "list-order-injection": (
        "POST",
        "/object/list/avatars",
        {"prefix": "", "sortBy": {"column": "name", "order": "asc; select 1"}},
    ),
    "list-sort-text": ("POST", "/object/list/avatars", {"prefix": "", "sortBy": "name"}),
    "list-search-array": ("POST", "/object/list/avatars", {"prefix": "", "search": ["a"]}),
    "list-prefix-nul": ("POST", "/object/list/avatars", {"prefix": f"a{NUL}b"}),
    "list-search-nul": ("POST", "/object/list/avatars", {"prefix": "", "search": NUL}),
    "list-bucket-nul": ("POST", "/object/list/avatars%00", {"prefix": ""}),
    "list-body-over-1mib": ("POST", "/object/list/avatars", b"{" + b" " * (1024 * 1024 + 1) + b"}"),
    "move-not-json": ("POST", "/object/move", b"not json"),
    "move-no-destination": ("POST", "/object/move", {"bucketId": "avatars", "sourceKey": "a.png"}),
    "move-key-number": (
        "POST",
        "/object/move",
        {"bucketId": "avatars", "sourceKey": 1, "destinationKey": "b.png"},
    ),
    "move-bucket-dotdot": (
        "POST",
        "/object/move",
        {"bucketId": "..", "sourceKey": "a.png", "destinationKey": "b.png"},
    ),
    "move-key-dotdot": (
        "POST",
        "/object/move",
        {"bucketId": "avatars", "sourceKey": "../a.png", "destinationKey": "b.png"},
    ),
    "copy-not-json": ("POST", "/object/copy", b'{"bucketId": '),
    "copy-key-nul": (
        "POST",
        "/object/copy",
        {"bucketId": "avatars", "sourceKey": "a.png", "destinationKey": f"a{NUL}.png"},
    ),
    "copy-bucket-nul": (
        "POST",
        "/object/copy",
        {
            "bucketId": "avatars",
            "sourceKey": "a.png",
            "destinationKey": "b.png",
            "destinationBucket": f"x{NUL}",
        },
    ),
    "sign-not-json": ("POST", "/object/sign/avatars/a.png", b"]"),
    "sign-expiry-negative": ("POST", "/object/sign/avatars/a.png", {"expiresIn": -1}),
    "sign-expiry-word": ("POST", "/object/sign/avatars/a.png", {"expiresIn": "soon"}),
    "sign-expiry-fraction": ("POST", "/object/sign/avatars/a.png", {"expiresIn": 1.5}),
    "sign-expiry-huge": ("POST", "/object/sign/avatars/a.png", {"expiresIn": 10**20}),
    "sign-no-expiry": ("POST", "/object/sign/avatars/a.png", {}),
    "sign-many-paths-text": ("POST", "/object/sign/avatars", {"expiresIn": 60, "paths": "a.png"}),
    "sign-many-paths-numbers": ("POST", "/object/sign/avatars", {"expiresIn": 60, "paths": [1]}),
    "sign-many-path-nul": ("POST", "/object/sign/avatars", {"expiresIn": 60, "paths": [f"a{NUL}.png"]}),
    "remove-not-json": ("DELETE", "/object/avatars", b"{"),
    "remove-prefixes-text": ("DELETE", "/object/avatars", {"prefixes": "a.png"}),
    "remove-prefix-nul": ("DELETE", "/object/avatars", {"prefixes": [f"a{NUL}.png"]}),
    "remove-over-1000": ("DELETE", "/object/avatars", {"prefixes": ["a.png"] * 1001}),
    "bucket-named-dotdot": ("POST", "/bucket", {"name": "..", "public": True}),
    "buckets-offset-huge": ("GET", "/bucket?offset=100000000000000000000", None),
    "buckets-sort-injection": ("GET", "/bucket?limit=-1&sortColumn=name;drop", None),
    "buckets-limit-word": ("GET", "/bucket?limit=x", None),
}


@pytest.mark.parametrize("case", BAD_INPUT)
def test_bad_bodies_and_parameters_get_storages_4xx(world: World, case: str) -> None:
    method, path, body = BAD_INPUT[case]
    # As the service role: no policy refusal hides what the input itself does.
    reply = world.call("service key", method, path, body, **{"content-type": "application/json"})
    refused(reply)


def test_search_is_a_name_prefix_with_like_wildcards_taken_literally(world: World) -> None:
    alice = world.users["alice"].id
    world.put(f"avatars/{alice}/under_score.png")
    world.put(f"avatars/{alice}/underXscore.png")

    def names(search: str) -> list[str]:
        reply = world.call("alice", "POST", "/object/list/avatars", {"prefix": alice, "search": search})
        assert reply.status == 200, (search, reply.body)
        return [entry["name"] for entry in reply.json()]

    assert names("under_") == ["under_score.png"]
    assert names("underX") == ["underXscore.png"]
    for search in ("%", "_", "\\", "'", "%under"):
        assert names(search) == [], search
    assert world.call("alice", "POST", "/object/list/avatars", {"prefix": alice, "limit": 0}).json() == []
