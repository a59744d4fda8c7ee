"""Settings: every one is documented in .env.example, and the documented defaults are the real ones."""

from __future__ import annotations

from pathlib import Path

from dotenv import dotenv_values

from rpc.settings import Settings

EXAMPLE = Path(__file__).resolve().parent.parent / ".env.example"


def test_every_setting_is_documented() -> None:
    documented = set(dotenv_values(EXAMPLE))
    assert {name.upper() for name in Settings.model_fields} == documented


def test_the_example_file_reproduces_the_defaults() -> None:
    # Starting with .env.example copied to .env must change nothing.
    assert Settings(_env_file=EXAMPLE) == Settings(_env_file=None)
