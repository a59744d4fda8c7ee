"""`supabase/config.toml`, which the local stack honours as `supabase start` does ([storage], [auth])."""

from __future__ import annotations

import re
import tomllib
from functools import cache
from pathlib import Path
from typing import Any

CONFIG_FILE = Path(__file__).resolve().parents[2] / "supabase" / "config.toml"

# The CLI's sizes: "50MiB", "2MB", "500KB", "3B" (binary multiples, as the CLI and Storage read them).
SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]?i?B)?\s*$", re.IGNORECASE)
UNITS = {"b": 1, "kb": 1024, "kib": 1024, "mb": 1024**2, "mib": 1024**2, "gb": 1024**3, "gib": 1024**3}
UNITS |= {"tb": 1024**4, "tib": 1024**4}


@cache
def supabase_config(path: Path | None = None) -> dict[str, Any]:
    """The project's config.toml, or the one SUPABASE_CONFIG names (read once per path)."""
    with (path or CONFIG_FILE).open("rb") as file:
        return tomllib.load(file)


def parse_size(value: int | str) -> int:
    """Bytes from a size as config.toml and Storage's bucket API write it; ValueError when it is none."""
    if isinstance(value, bool):
        raise ValueError(f"not a size: {value!r}")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"not a size: {value!r}")
        return value
    match = SIZE.match(value)
    if match is None:
        raise ValueError(f"not a size: {value!r}")
    number, unit = match.groups()
    return int(float(number) * UNITS[(unit or "b").lower()])
