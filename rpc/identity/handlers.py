"""Identity: `whoami`, the signed-in caller as the products see them (profile, platform roles, companies)."""

from __future__ import annotations

from typing import LiteralString
from uuid import UUID

import msgspec
from litestar import Controller, HttpMethod, route
from litestar.di import NamedDependency

from rpc.platform.db import Session
from rpc.platform.errors import ApiError

# `public.whoami()` (plpgsql, security invoker) runs under the caller's RLS, so it returns exactly what
# the frontend's `rpc('whoami')` would; see its migration for why it is a function.
WHOAMI: LiteralString = "select * from public.whoami()"


class Profile(msgspec.Struct):
    full_name: str | None
    avatar_url: str | None


class Membership(msgspec.Struct):
    id: UUID
    name: str
    slug: str | None
    role: str


class Whoami(msgspec.Struct):
    id: UUID
    email: str | None
    profile: Profile
    roles: list[str]
    companies: list[Membership]


async def read_whoami(session: Session) -> Whoami:
    rows = await session.fetch(WHOAMI)
    if not rows:
        raise ApiError(404, "user_not_found", "the token's user no longer exists")
    return msgspec.convert(rows[0], Whoami)


class IdentityController(Controller):
    path = "/whoami"
    tags = ["identity"]

    @route(
        http_method=[HttpMethod.GET, HttpMethod.POST],
        status_code=200,
        operation_id=lambda _, method, __: (
            "whoami" if method == HttpMethod.POST else f"whoami_{method.lower()}"
        ),
        summary="The signed-in caller: profile, platform roles and company memberships",
    )
    async def whoami(self, user_session: NamedDependency[Session]) -> Whoami:
        return await read_whoami(user_session)
