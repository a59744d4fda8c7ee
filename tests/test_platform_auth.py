"""The JWT contract of every function, tested as an attacker would: each refusal is a 401/403 with its
code, never a 500 and never a stack trace."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from litestar.testing import AsyncTestClient

from rpc.local.tokens import api_key
from rpc.platform.auth import Caller, TokenCache, TokenVerifier, gateway_authorization
from rpc.platform.errors import ApiError
from rpc.platform.settings import SUPABASE_CLI_PUBLISHABLE_KEY, SUPABASE_CLI_SECRET_KEY
from tests.support import SECRET, bearer, http_server, live_server, make_user, token_for

WHOAMI = "/functions/v1/whoami"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hand_made(header: dict[str, Any], claims: dict[str, Any], key: bytes | None) -> str:
    """A JWT built without PyJWT, which refuses to make the malicious ones."""
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    signature = hmac.new(key, signing_input.encode(), hashlib.sha256).digest() if key else b""
    return f"{signing_input}.{b64(signature)}"


async def refused(client: AsyncTestClient, headers: dict[str, str], status: int, code: str) -> None:
    response = await client.post(WHOAMI, headers=headers)
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error", "message"}
    assert body["error"] == code
    assert "Traceback" not in response.text


@pytest.fixture(scope="module")
def user(database):
    import psycopg

    with psycopg.connect(database.superuser, autocommit=True) as conn:
        return make_user(conn)


@pytest.mark.parametrize(
    "authorization",
    [None, "Basic dXNlcjpwYXNz", "Bearer ", "Bearer", "bearer"],
    ids=["missing", "basic", "empty-bearer", "bare-word", "lowercase-word"],
)
async def test_missing_or_malformed_authorization(client, authorization):
    headers = {} if authorization is None else {"Authorization": authorization}
    await refused(client, headers, 401, "missing_or_invalid_authorization")


@pytest.mark.parametrize("token", ["abc", "a.b.c", b64(b"\x00" * 40), "eyJhbGciOiJIUzI1NiJ9.e30"])
async def test_garbage_tokens(client, token):
    await refused(client, bearer(token), 401, "invalid_token")


async def test_expiry_with_leeway(client, user):
    now = int(time.time())
    await refused(client, bearer(token_for(user, exp=now - 60)), 401, "token_expired")
    # Within the 10 s leeway: accepted (clocks drift between Supabase Auth and us).
    assert (await client.post(WHOAMI, headers=bearer(token_for(user, exp=now - 5)))).status_code == 200


async def test_not_yet_valid(client, user):
    await refused(client, bearer(token_for(user, nbf=int(time.time()) + 3600)), 401, "invalid_token")


async def test_wrong_signature(client, user):
    await refused(
        client,
        bearer(token_for(user, secret="another-secret-of-at-least-32-characters")),
        401,
        "invalid_token",
    )


async def test_alg_none(client, user):
    token = hand_made({"alg": "none", "typ": "JWT"}, user.claims, None)
    await refused(client, bearer(token), 401, "invalid_token")


async def test_hs256_signed_with_a_public_key(client, user):
    """Algorithm confusion: the attacker knows the project's public key and signs HS256 with it."""
    public_pem = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    token = hand_made({"alg": "HS256", "typ": "JWT"}, user.claims, public_pem)
    await refused(client, bearer(token), 401, "invalid_token")


async def test_audience(client, user):
    await refused(client, bearer(token_for(user, aud="someone-else")), 401, "invalid_token")
    await refused(client, bearer(token_for(user, aud=None)), 401, "invalid_token")
    listed = token_for(user, aud=["authenticated", "other"])
    assert (await client.post(WHOAMI, headers=bearer(listed))).status_code == 200


async def test_user_token_without_sub(client, user):
    await refused(client, bearer(token_for(user, sub=None)), 401, "invalid_token")


@pytest.mark.parametrize(
    "sub",
    [
        "not-a-uuid",
        "",
        "urn:uuid:6e8bc430-9c3a-11d9-9669-0800200c9a66",
        "{6e8bc430-9c3a-11d9-9669-0800200c9a66}",
        "6e8bc4309c3a11d996690800200c9a66",
        "6e8bc430-9c3a-11d9-9669-0800200c9a66\n",
        42,
        ["x"],
    ],
)
@pytest.mark.parametrize("role", ["authenticated", "anon", "service_role"])
async def test_a_sub_that_is_not_a_user_id_is_refused_at_verification(client, user, sub, role):
    # Signed with the right secret, but auth.uid() would fail on it in Postgres (with Postgres's own text).
    claims = {"sub": sub, "role": role} if role != "authenticated" else {"sub": sub}
    await refused(client, bearer(token_for(user, **claims)), 401, "invalid_token")


async def test_an_uppercase_user_id_is_a_user_id(client, user):
    assert (
        await client.post(WHOAMI, headers=bearer(token_for(user, sub=user.id.upper())))
    ).status_code == 200


@pytest.mark.parametrize("role", ["postgres", "supabase_admin", "authenticator", ""])
async def test_roles_beyond_the_api_roles(client, user, role):
    await refused(client, bearer(token_for(user, role=role)), 403, "insufficient_role")


@pytest.mark.parametrize("role", ["anon", "service_role"])
async def test_api_keys_are_not_users(client, role):
    await refused(client, bearer(api_key(SECRET, role)), 403, "insufficient_role")


# The newer API keys (sb_publishable_..., sb_secret_...) ------------------------------------------------------


@pytest.mark.parametrize("key", [SUPABASE_CLI_PUBLISHABLE_KEY, SUPABASE_CLI_SECRET_KEY])
async def test_the_projects_api_keys_are_not_users_either(client, key):
    # As supabase-js sends them without a session: in both headers.
    await refused(client, {"Authorization": f"Bearer {key}", "apikey": key}, 403, "insufficient_role")
    # Or, as curl users do, in the apikey header alone (the gateway makes it the Authorization).
    await refused(client, {"apikey": key}, 403, "insufficient_role")


@pytest.mark.parametrize(
    "key",
    [
        "sb_publishable_" + "x" * 31,
        SUPABASE_CLI_SECRET_KEY[:-1],
        SUPABASE_CLI_SECRET_KEY + "x",
        "sb_",
    ],
)
async def test_other_api_keys_are_refused(client, key):
    await refused(client, {"Authorization": f"Bearer {key}", "apikey": key}, 401, "invalid_token")


async def test_a_users_token_wins_over_the_apikey(client, user):
    headers = {**bearer(token_for(user)), "apikey": SUPABASE_CLI_PUBLISHABLE_KEY}
    response = await client.post(WHOAMI, headers=headers)
    assert response.status_code == 200
    assert response.json()["id"] == user.id


async def test_api_keys_stand_for_their_roles():
    verifier = TokenVerifier(SECRET, api_keys={"sb_publishable_p": "anon", "sb_secret_s": "service_role"})
    assert (await verifier.verify("Bearer sb_publishable_p")).role == "anon"
    assert (await verifier.verify("Bearer sb_secret_s")).role == "service_role"
    with pytest.raises(ApiError) as refusal:
        await TokenVerifier(SECRET).verify("Bearer sb_secret_s")  # a verifier that knows no keys
    assert refusal.value.code == "invalid_token"


@pytest.mark.parametrize(
    ("authorization", "apikey", "expected"),
    [
        ("Bearer user.jwt.token", "sb_publishable_p", "Bearer user.jwt.token"),
        ("Bearer sb_publishable_p", "sb_publishable_p", "Bearer sb_publishable_p"),
        ("Bearer sb_publishable_p", "sb_secret_s", "Bearer sb_secret_s"),
        (None, "legacy.anon.key", "Bearer legacy.anon.key"),
        (None, None, None),
        ("Bearer sb_publishable_p", None, "Bearer sb_publishable_p"),
    ],
)
def test_the_authorization_past_the_gateway(authorization, apikey, expected):
    # What Supabase's gateway (Kong's request-transformer) makes of the two headers.
    assert gateway_authorization(authorization, apikey) == expected


async def test_a_200_kb_header_in_process(client):
    await refused(client, bearer("a" * 200_000), 401, "invalid_token")


def test_a_200_kb_header_through_uvicorn(app):
    with live_server(app) as base_url:
        response = httpx.post(f"{base_url}{WHOAMI}", headers=bearer("a" * 200_000))
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_token"


# Asymmetric keys from the project's JWKS -------------------------------------------------------------


class Jwks:
    """A project's signing keys, served as Supabase Auth serves them, on 127.0.0.1."""

    def __init__(self) -> None:
        self.keys: dict[str, tuple[str, Any]] = {}

    def add(self, kid: str, alg: str) -> None:
        private = (
            ec.generate_private_key(ec.SECP256R1())
            if alg == "ES256"
            else rsa.generate_private_key(65537, 2048)
        )
        self.keys[kid] = (alg, private)

    def document(self) -> dict[str, Any]:
        keys = []
        for kid, (alg, private) in self.keys.items():
            algorithm = jwt.algorithms.ECAlgorithm if alg == "ES256" else jwt.algorithms.RSAAlgorithm
            jwk = algorithm.to_jwk(private.public_key(), as_dict=True)
            keys.append({**jwk, "kid": kid, "alg": alg, "use": "sig"})
        return {"keys": keys}

    def sign(self, kid: str, claims: dict[str, Any]) -> str:
        alg, private = self.keys[kid]
        return jwt.encode(claims, private, algorithm=alg, headers={"kid": kid})


@contextmanager
def serve_jwks(jwks: Jwks) -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path != "/auth/v1/.well-known/jwks.json":
                self.send_error(404)
                return
            body = json.dumps(jwks.document()).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: Any) -> None:
            pass

    with http_server(Handler) as url:
        yield url


async def test_es256_and_rs256_from_the_jwks(database, user):
    from app import create_app

    jwks = Jwks()
    jwks.add("ec-1", "ES256")
    jwks.add("rsa-1", "RS256")
    with serve_jwks(jwks) as base_url:
        async with AsyncTestClient(app=create_app(database.settings(supabase_url=base_url))) as client:
            for kid in ("ec-1", "rsa-1"):
                response = await client.post(WHOAMI, headers=bearer(jwks.sign(kid, user.claims)))
                assert response.status_code == 200, response.text
                assert response.json()["id"] == user.id
            # A key the project never published.
            stranger = Jwks()
            stranger.add("ec-unknown", "ES256")
            await refused(client, bearer(stranger.sign("ec-unknown", user.claims)), 401, "invalid_token")
            # A published kid with someone else's key behind it.
            forged = Jwks()
            forged.add("ec-1", "ES256")
            await refused(client, bearer(forged.sign("ec-1", user.claims)), 401, "invalid_token")


async def test_jwks_rotation_is_picked_up():
    jwks = Jwks()
    jwks.add("old", "ES256")
    claims = {"sub": "00000000-0000-4000-8000-000000000099", "role": "authenticated", "aud": "authenticated"}
    with serve_jwks(jwks) as base_url:
        verifier = TokenVerifier(SECRET, jwks_url=f"{base_url}/auth/v1/.well-known/jwks.json")
        first = await verifier.verify(f"Bearer {jwks.sign('old', {**claims, 'exp': int(time.time()) + 60})}")
        assert first.user_id == claims["sub"]
        jwks.add("new", "RS256")
        # Refetches are throttled (30 s by default); lift the throttle for the test.
        verifier.jwks_refetch_s = 0
        rotated = await verifier.verify(
            f"Bearer {jwks.sign('new', {**claims, 'exp': int(time.time()) + 60})}"
        )
        assert rotated.user_id == claims["sub"]


async def test_jwks_unreachable_is_503_not_500(database, user):
    from app import create_app

    jwks = Jwks()
    jwks.add("ec-1", "ES256")
    with serve_jwks(jwks) as base_url:
        pass  # the server is gone now: nothing answers at base_url
    async with AsyncTestClient(app=create_app(database.settings(supabase_url=base_url))) as client:
        await refused(client, bearer(jwks.sign("ec-1", user.claims)), 503, "auth_unavailable")


async def test_asymmetric_tokens_need_supabase_url(client, user):
    jwks = Jwks()
    jwks.add("ec-1", "ES256")
    await refused(client, bearer(jwks.sign("ec-1", user.claims)), 401, "invalid_token")


# The verified-token cache ----------------------------------------------------------------------------------


def test_token_cache_honours_expiry_and_size():
    cache = TokenCache(size=2)
    caller = Caller(role="anon", claims={"role": "anon"})
    cache.put("a", expires=100.0, caller=caller)
    assert cache.get("a", now=99.0) is caller
    assert cache.get("a", now=100.0) is None  # expired entries are dropped, not served
    cache.put("a", expires=200.0, caller=caller)
    cache.put("b", expires=200.0, caller=caller)
    assert cache.get("a", now=1.0) is caller  # a is now the most recently used
    cache.put("c", expires=200.0, caller=caller)
    assert cache.get("b", now=1.0) is None
    assert cache.get("a", now=1.0) is caller
    assert cache.get("c", now=1.0) is caller


async def test_a_cached_token_is_refused_once_expired():
    verifier = TokenVerifier(SECRET, leeway_s=0)
    token = jwt.encode({"role": "anon", "exp": int(time.time()) + 1}, SECRET, algorithm="HS256")
    assert (await verifier.verify(f"Bearer {token}")).role == "anon"
    assert verifier.cached(token) is not None
    await asyncio.sleep(1.2)
    assert verifier.cached(token) is None
    with pytest.raises(Exception, match="expired") as refusal:
        await verifier.verify(f"Bearer {token}")
    assert refusal.value.code == "token_expired"
