"""Identity: `whoami`, the signed-in caller as the products see them (profile, platform roles, companies)."""

from __future__ import annotations

from typing import LiteralString
from uuid import UUID

import msgspec
from litestar import Controller, HttpMethod, route
from litestar.di import NamedDependency

from rpc.db import Session
from rpc.errors import ApiError

# One statement under the caller's RLS: it sees exactly what the frontend would see through PostgREST.
WHOAMI: LiteralString = """
select
  p.id,
  auth.email() as email,
  jsonb_build_object('full_name', p.full_name, 'avatar_url', p.avatar_url) as profile,
  coalesce((select jsonb_agg(r.role order by r.role) from public.user_roles r where r.user_id = p.id), '[]')
    as roles,
  coalesce((
    select jsonb_agg(jsonb_build_object('id', c.id, 'name', c.name, 'slug', c.slug, 'role', m.role) order by c.name)
    from public.company_members m join public.companies c on c.id = m.company_id
    where m.user_id = p.id
  ), '[]') as companies
from public.profiles p
where p.id = auth.uid()
"""


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
