"""Matching: a role's best executives for its company, and an executive's best open roles.

Scoring runs inside Postgres (`private.match`, one query) with the weights from settings, which are not
public: the API roles cannot execute it, so each handler runs one statement as `service_role` with the
caller's claims, and that statement checks the caller's right before it scores anything: a role is
matched by the owners, admins and recruiters of its company, once a platform admin has verified the
company. A role's results are kept in `public.matches`, where its company (and the executives on it) read
them later through PostgREST; an executive's own list is only returned.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Annotated, Any, LiteralString
from uuid import UUID

import msgspec
from litestar import Controller, post
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.params import JSONBody
from psycopg.types.json import Jsonb

from rpc.matching.embeddings import embed
from rpc.matching.settings import MatchingSettings, get_matching_settings
from rpc.platform.ai import AI, AIError
from rpc.platform.db import Session
from rpc.platform.errors import ApiError
from rpc.platform.functions import provide_ai

# One statement: what the caller may do with the role; then, only for those who may match it, the refreshed
# matches. The inner WHERE must stay a one-time filter, so that nothing is scored (or stored) for anyone
# else: `offset 0` keeps the planner from pulling the subquery up into the join, where the condition became
# a join filter checked after the function had already run.
MATCH_ROLE: LiteralString = """
select t.visible, t.member, t.hiring, t.verified,
       m.role_id, m.executive_id, m.score, m.breakdown, m.computed_at
from (
  select r.id, r.status = 'open' or c.member as visible, c.member, c.hiring, c.verified
  from public.role_postings r
  cross join lateral (
    select private.is_company_member(r.company_id) as member,
           private.is_company_member(r.company_id, '{owner,admin,recruiter}') as hiring,
           private.is_verified_company(r.company_id) as verified
  ) c
  where r.id = %s
) t
left join lateral (
  select * from private.refresh_matches(t.id, null, %s, %s) where t.hiring and t.verified offset 0
) m on true
"""

# A role of the caller's company whose description has no embedding yet (only asked with a provider).
UNEMBEDDED_ROLE: LiteralString = """
select r.description from public.role_postings r
where r.id = %s and r.description_embedding is null and r.description <> ''
  and private.can_hire_with(r.company_id)
"""

SET_ROLE_EMBEDDING: LiteralString = """
update public.role_postings set description_embedding = %s::extensions.vector
where id = %s and description = %s
"""

MATCH_EXECUTIVE: LiteralString = """
select e.is_open, m.role_id, m.executive_id, m.score, m.breakdown, m.computed_at
from (select p.user_id, p.is_open from public.executive_profiles p where p.user_id = (select auth.uid())) e
left join lateral (
  select * from private.refresh_matches(null, e.user_id, %s, %s) where e.is_open offset 0
) m on true
"""

log = logging.getLogger(__name__)

Limit = Annotated[int, msgspec.Meta(ge=1, le=100)]


class RoleMatchRequest(msgspec.Struct, forbid_unknown_fields=True):
    role_id: UUID
    limit: Limit | None = None


class ExecutiveMatchRequest(msgspec.Struct, forbid_unknown_fields=True):
    limit: Limit | None = None


class SkillsBreakdown(msgspec.Struct):
    score: float
    matched_required: list[str]
    matched_nice_to_have: list[str]
    related: list[str]
    missing_required: list[str]


class Breakdown(msgspec.Struct):
    skills: SkillsBreakdown | None
    seniority: float
    industry: float
    engagement: float
    compensation: float
    availability: float
    location: float
    semantic: float | None


class Match(msgspec.Struct):
    role_id: UUID
    executive_id: UUID
    score: float
    breakdown: Breakdown
    computed_at: datetime


class Matches(msgspec.Struct):
    matches: list[Match]


async def embed_role(session: Session, ai: AI, role_id: UUID) -> None:
    """Give the role's description its embedding now, so this first run already counts the semantic signal
    (the worker would within a minute). A provider failure leaves matching to the other signals."""
    if not ai.enabled:
        return
    rows = await session.privileged().fetch(UNEMBEDDED_ROLE, (role_id,))
    if not rows:
        return
    try:
        [vector] = await embed(ai, [rows[0]["description"]])
    except AIError as exc:
        log.warning("matching role %s without its embedding: %s", role_id, exc.message)
        return
    await session.privileged().fetch(SET_ROLE_EMBEDDING, (vector, role_id, rows[0]["description"]))


async def refresh(
    session: Session,
    settings: MatchingSettings,
    query: LiteralString,
    first: tuple[Any, ...],
    limit: int,
) -> list[dict[str, Any]]:
    """One matching statement as the caller's claims under service_role, with the limit and weights."""
    weights = Jsonb(settings.matching_weights.model_dump())
    return await session.privileged().fetch(query, (*first, limit, weights))


def matches_from(rows: list[dict[str, Any]]) -> Matches:
    return Matches([msgspec.convert(row, Match) for row in rows if row["role_id"] is not None])


class MatchingController(Controller):
    path = "/matching"
    tags = ["matching"]

    @post(
        operation_id="matching",
        status_code=200,
        summary="A role's top executives, scored 0-100 with a breakdown (a verified company's owners, admins and"
        " recruiters)",
    )
    async def match_role(
        self,
        data: JSONBody[RoleMatchRequest],
        user_session: NamedDependency[Session],
        state: State,
    ) -> Matches:
        matching_settings = get_matching_settings()
        await embed_role(user_session, provide_ai(state), data.role_id)
        # The stored list is never shorter than the default: a quick look at the top few must not take the
        # rest of the list (and the sight of those executives) away from the company.
        limit = data.limit or matching_settings.matching_default_limit
        stored = max(limit, matching_settings.matching_default_limit)
        rows = await refresh(user_session, matching_settings, MATCH_ROLE, (data.role_id,), stored)
        # A role the caller cannot see (another company's draft) answers as one that does not exist.
        if not rows or not rows[0]["visible"]:
            raise ApiError(404, "role_not_found", "no role has this id")
        if not rows[0]["member"]:
            raise ApiError(403, "not_a_company_member", "only the role's company may match it")
        if not rows[0]["hiring"]:
            raise ApiError(
                403,
                "insufficient_company_role",
                "matching is for the company's owners, admins and recruiters",
            )
        if not rows[0]["verified"]:
            raise ApiError(
                403,
                "company_not_verified",
                "a platform admin must verify the company before it can match executives",
            )
        return matches_from(rows[:limit])

    @post(
        "/roles",
        operation_id="matching_roles",
        status_code=200,
        summary="The calling executive's top open roles, scored 0-100 with a breakdown",
    )
    async def match_executive(
        self,
        data: JSONBody[ExecutiveMatchRequest],
        user_session: NamedDependency[Session],
    ) -> Matches:
        matching_settings = get_matching_settings()
        limit = data.limit or matching_settings.matching_default_limit
        rows = await refresh(user_session, matching_settings, MATCH_EXECUTIVE, (), limit)
        if not rows:
            raise ApiError(404, "executive_profile_not_found", "create your executive profile first")
        if not rows[0]["is_open"]:
            raise ApiError(409, "profile_not_open", "set is_open on your executive profile to be matched")
        return matches_from(rows)
