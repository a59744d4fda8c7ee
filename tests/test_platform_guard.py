"""The supabase CLI's published secrets serve the local stack only: the app refuses to start with them when
its API listens beyond loopback or its database is not the embedded one, and refuses requests that arrive
on a public address of this machine."""

from __future__ import annotations

import socket
from pathlib import Path

import httpx
import psycopg
import pytest
from litestar.testing import AsyncTestClient

from app import create_app
from rpc.platform.guard import EMBEDDED_MARK, PublicSecretsRefused
from rpc.platform.settings import Settings
from tests.conftest import Database, clone_database, drop_database
from tests.support import bearer, live_server, make_user, token_for

BOOTSTRAP = Path(__file__).resolve().parents[1] / "rpc" / "local" / "sql" / "bootstrap.sql"
OWN_SECRETS = {
    "supabase_jwt_secret": "a-project-secret-of-at-least-32-characters",
    "supabase_secret_key": "sb_secret_own",
}


async def refusal(settings: Settings) -> str:
    try:
        async with AsyncTestClient(app=create_app(settings)):
            pytest.fail("the app started")
    except* PublicSecretsRefused as refused:
        [error] = refused.exceptions
    return str(error)


async def test_a_remote_database_is_refused_without_asking_it() -> None:
    # db.example.com does not answer: the refusal comes before any connection is tried.
    remote = Settings(
        _env_file=None,
        database_url="postgresql://postgres:password@db.example.com:5432/postgres",
        run_worker=False,
        supabase_jwt_secret="x" * 40,
    )
    message = await refusal(remote)
    assert "not the local stack's embedded one, but SUPABASE_SECRET_KEY still has the supabase CLI" in message


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.10", "example.com"])  # noqa: S104
async def test_an_api_beyond_loopback_is_refused(database: Database, host: str) -> None:
    message = await refusal(database.settings(api_host=host))
    assert f"API_HOST={host} listens beyond this machine" in message
    assert "SUPABASE_JWT_SECRET, SUPABASE_SECRET_KEY still have" in message


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "localhost", "::1"])
async def test_the_local_stack_on_loopback_serves(database: Database, host: str) -> None:
    async with AsyncTestClient(app=create_app(database.settings(api_host=host))) as client:
        assert (await client.get("/health")).json()["database"] is True


async def test_a_local_database_that_is_not_the_embedded_one_is_refused() -> None:
    # Any local Postgres without the local stack's mark: a pooler on this machine in front of a remote
    # database, `supabase start`, a distribution's server. Here, a clone whose mark was removed.
    other = clone_database("tb_not_embedded")
    try:
        with psycopg.connect(other.superuser, autocommit=True) as conn:
            conn.execute("comment on schema auth is 'auth: the Supabase Auth schema'")
        assert "not the local stack's embedded one" in await refusal(other.settings())
        # With the project's own secrets, the same database is served.
        async with AsyncTestClient(app=create_app(other.settings(**OWN_SECRETS))) as client:
            assert (await client.get("/health")).json()["database"] is True
    finally:
        drop_database(other.name)


async def test_an_unreachable_database_cannot_be_checked_and_is_refused(database: Database) -> None:
    unreachable = database.settings(
        api_database_url="postgresql://authenticator:postgres@127.0.0.1:9/postgres",
        db_pool_timeout_s=0.5,
    )
    assert "cannot be reached to check" in await refusal(unreachable)


def test_the_bootstrap_leaves_the_mark() -> None:
    assert EMBEDDED_MARK in BOOTSTRAP.read_text()


def public_address() -> str | None:
    """An address of this machine that is not loopback, if it has one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # no packet is sent: this only picks the outgoing address
        except OSError:
            return None
        address = probe.getsockname()[0]
    return None if address.startswith("127.") else address


def test_requests_on_a_public_address_are_refused(database: Database) -> None:
    # uvicorn bound beyond loopback by its own command line: settings cannot see it, each connection can.
    address = public_address()
    if address is None:
        pytest.skip("this machine has no address but loopback")
    with psycopg.connect(database.superuser, autocommit=True) as conn:
        user = make_user(conn)
    app = create_app(database.settings())
    with live_server(app, host="0.0.0.0") as url:  # noqa: S104
        port = url.rsplit(":", 1)[1]
        response = httpx.post(f"http://{address}:{port}/functions/v1/whoami", headers=bearer(token_for(user)))
        assert response.status_code == 503
        assert response.json()["error"] == "public_secrets"
        # The same server still answers on loopback.
        assert httpx.post(f"{url}/functions/v1/whoami", headers=bearer(token_for(user))).status_code == 200
