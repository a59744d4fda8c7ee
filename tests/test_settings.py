"""Settings: every one is documented in .env.example, and the documented defaults are the real ones."""

from __future__ import annotations

from pathlib import Path

import pytest
from dotenv import dotenv_values
from litestar.testing import AsyncTestClient

from app import create_app
from rpc.settings import Settings

EXAMPLE = Path(__file__).resolve().parent.parent / ".env.example"


def test_every_setting_is_documented() -> None:
    documented = set(dotenv_values(EXAMPLE))
    assert {name.upper() for name in Settings.model_fields} == documented


def test_the_example_file_reproduces_the_defaults() -> None:
    # Starting with .env.example copied to .env must change nothing.
    assert Settings(_env_file=EXAMPLE) == Settings(_env_file=None)


def test_the_clis_public_secrets_are_named() -> None:
    assert Settings(_env_file=None).public_secrets() == ["SUPABASE_JWT_SECRET", "SUPABASE_SECRET_KEY"]
    own = Settings(_env_file=None, supabase_jwt_secret="x" * 40, supabase_secret_key="sb_secret_own")
    assert own.public_secrets() == []


async def test_the_app_will_not_serve_a_remote_database_with_public_secrets() -> None:
    # Anyone could sign a token (or send the secret key) that the app would take as service_role.
    remote = Settings(
        _env_file=None,
        database_url="postgresql://postgres:password@db.example.com:5432/postgres",
        run_worker=False,
        supabase_jwt_secret="x" * 40,
    )
    try:
        async with AsyncTestClient(app=create_app(remote)):
            pytest.fail("the app started")
    except* RuntimeError as refusal:
        [error] = refusal.exceptions
    assert "SUPABASE_SECRET_KEY still has the supabase CLI's public local value" in str(error)
