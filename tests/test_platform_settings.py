"""Settings: every one is documented in .env.example, and the documented defaults are the real ones."""

from __future__ import annotations

from pathlib import Path

import pytest
from dotenv import dotenv_values

from rpc.jobsearch.settings import JobsearchSettings
from rpc.matching.settings import MatchingSettings
from rpc.platform.settings import Settings, is_local_dsn

EXAMPLE = Path(__file__).resolve().parent.parent / ".env.example"


def test_every_setting_is_documented() -> None:
    documented = set(dotenv_values(EXAMPLE))
    fields = {*Settings.model_fields, *MatchingSettings.model_fields, *JobsearchSettings.model_fields}
    assert {name.upper() for name in fields} == documented


def test_the_example_file_reproduces_the_defaults() -> None:
    # Starting with .env.example copied to .env must change nothing.
    assert Settings(_env_file=EXAMPLE) == Settings(_env_file=None)
    assert MatchingSettings(_env_file=EXAMPLE) == MatchingSettings(_env_file=None)
    assert JobsearchSettings(_env_file=EXAMPLE) == JobsearchSettings(_env_file=None)


def test_the_clis_public_secrets_are_named() -> None:
    assert Settings(_env_file=None).public_secrets() == ["SUPABASE_JWT_SECRET", "SUPABASE_SECRET_KEY"]
    own = Settings(_env_file=None, supabase_jwt_secret="x" * 40, supabase_secret_key="sb_secret_own")
    assert own.public_secrets() == []


@pytest.mark.parametrize(
    ("dsn", "local"),
    [
        ("postgresql://postgres:postgres@127.0.0.1:54322/postgres", True),
        ("postgresql://postgres@localhost/postgres", True),
        ("postgresql://[::1]:5432/postgres", True),
        ("postgresql:///postgres", True),  # a Unix socket
        ("host=/var/run/postgresql dbname=postgres", True),
        ("dbname=postgres", True),
        ("host=localhost,127.0.0.1 dbname=postgres", True),
        ("postgresql://postgres:x@db.example.com:5432/postgres", False),
        ("host=db.example.com user=postgres", False),  # libpq's key=value form
        ("postgresql://postgres@127.0.0.1,db.example.com/postgres", False),  # any remote host
        ("host=localhost hostaddr=10.1.2.3 dbname=postgres", False),  # hostaddr is what libpq dials
        ("not a dsn ===", False),
    ],
)
def test_local_databases_are_recognised_in_every_dsn_form(dsn: str, local: bool) -> None:
    # It decides what `db reset`, dev tokens and the public secrets are allowed against.
    assert is_local_dsn(dsn) is local


def test_pghost_counts_when_the_dsn_names_no_host(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PGHOST", "db.example.com")
    assert is_local_dsn("dbname=postgres") is False
