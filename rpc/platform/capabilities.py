"""What a capability gives the platform: `rpc/<capability>/__init__.py` exports these names, and app.py
hands the modules to the platform, which never imports a capability itself."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import procrastinate
from litestar.types import ControllerRouterHandler


class Capability(Protocol):
    __name__: str  # a module: rpc.<capability>
    # Mounted under /functions/v1.
    route_handlers: Sequence[ControllerRouterHandler]
    # Its background tasks, named `<capability>:<task>` in the queue (the name SQL defers jobs by).
    tasks: procrastinate.Blueprint
    # Its email templates (`<name>.subject.txt`, `.txt`, `.html`), or None.
    email_templates: Path | None


def name_of(capability: Capability) -> str:
    """`rpc.matching` -> "matching": the namespace of its tasks."""
    return capability.__name__.rpartition(".")[2]


def email_template_dirs(capabilities: Sequence[Capability]) -> list[Path]:
    return [c.email_templates for c in capabilities if c.email_templates is not None]
