"""Skills by meaning: free text to the closest canonical skills, and the embeddings that search uses.

`public.search_skills` ranks by name, slug, alias and full text; the frontend may call it through PostgREST
(`rpc('search_skills', {query})`). `POST /functions/v1/skills/search` answers the same and, with an
embeddings provider configured, embeds the query and merges the skills nearest in meaning into that ranking
(`private.search_skills_by_meaning`: exact names first, then reciprocal rank fusion of the two lists; see
the migration 20261130130300_jobsearch_skills.sql). Without a provider, or when it fails, the answer is the
text ranking alone, with `by_meaning` false: a search box should still find "k8s" while the provider is down.

The worker's `jobsearch:embed_skills` keeps `private.skill_embeddings` current: every minute it embeds the
skills whose text changed, or that have no embedding of the configured model yet.
"""

from __future__ import annotations

import logging
from typing import Annotated, LiteralString
from uuid import UUID

import msgspec
import procrastinate
import psycopg
from litestar import Controller, post
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.params import JSONBody

from rpc.jobsearch.tasks import tasks
from rpc.platform.ai import AI, AIError
from rpc.platform.db import Session
from rpc.platform.functions import SOME_TEXT, provide_ai
from rpc.platform.jobs import embed_periodically

log = logging.getLogger(__name__)

DIMENSIONS = 1536  # private.skill_embeddings.embedding's size
BATCH = 64

SEARCH: LiteralString = "select * from public.search_skills(%s, %s)"
SEARCH_BY_MEANING: LiteralString = """
select * from private.search_skills_by_meaning(%s, %s::extensions.vector, %s, %s)
"""

TO_EMBED: LiteralString = "select skill_id, source from private.skills_to_embed(%s, %s)"
# A skill deleted since it was read is skipped: its row went with it.
STORE_EMBEDDING: LiteralString = """
insert into private.skill_embeddings (skill_id, model, source, embedding)
select k.id, %s, %s, %s::extensions.vector from public.skills k where k.id = %s
on conflict (skill_id) do update
set model = excluded.model, source = excluded.source, embedding = excluded.embedding, embedded_at = now()
"""


async def embed_skills(conn: psycopg.AsyncConnection, ai: AI) -> int:
    """Embed every skill whose embedding is missing or stale (the connection logs in as `postgres`); how
    many were written. A skill edited meanwhile is stored with the text that was embedded, which the next
    batch (or run) finds stale again."""
    written = 0
    while True:
        rows = await (await conn.execute(TO_EMBED, (ai.embeddings_model, BATCH))).fetchall()
        if not rows:
            break
        vectors = await ai.embed([source for _, source in rows], dimensions=DIMENSIONS)
        async with conn.transaction(), conn.cursor() as cursor:
            await cursor.executemany(
                STORE_EMBEDDING,
                [
                    (ai.embeddings_model, source, vector, skill_id)
                    for (skill_id, source), vector in zip(rows, vectors, strict=True)
                ],
            )
        written += len(rows)
        if len(rows) < BATCH:
            break
    return written


@tasks.periodic(cron="* * * * *", periodic_id="embed_skills")
@tasks.task(
    name="embed_skills",
    queue="ai",
    lock="skill_embeddings",
    queueing_lock="skill_embeddings",
    pass_context=True,
)
async def embed_skills_task(context: procrastinate.JobContext, timestamp: int) -> None:
    """Every minute: the skills whose embedding is missing or stale (see private.skills_to_embed)."""
    await embed_periodically(context, embed_skills, "skills")


Query = Annotated[str, msgspec.Meta(min_length=1, max_length=200, pattern=SOME_TEXT)]
Limit = Annotated[int, msgspec.Meta(ge=1, le=50)]


class SkillSearch(msgspec.Struct, forbid_unknown_fields=True):
    query: Query
    limit: Limit = 10


class SkillHit(msgspec.Struct):
    skill_id: int
    slug: str
    name: str
    category: str
    matched: str | None  # the name, slug or alias the text matched; none for a match by meaning alone
    matched_by: str  # exact, prefix, text (search_skills' ways) or vector
    score: float | None  # search_skills' score: 1 exact, 0.5-0.9 prefix, below 0.5 full text
    similarity: float | None = None  # cosine similarity to the query, for the skills nearest in meaning


class SkillHits(msgspec.Struct):
    skills: list[SkillHit]
    by_meaning: bool  # whether the query's embedding took part (a provider configured and answering)


async def query_embedding(ai: AI, query: str, user_id: UUID | None) -> list[float] | None:
    """The query's embedding, or None without a provider or when it fails (the AI layer logs why) or the
    signed-in searcher has spent their AI budget of the day (an anonymous one's costs the platform, which the
    rate limit bounds)."""
    if not ai.enabled:
        return None
    try:
        [vector] = await ai.embed([query], dimensions=DIMENSIONS, user_id=user_id)
    except AIError as exc:
        log.warning("skills searched without meaning: %s", exc.code)
        return None
    return vector


class SkillsController(Controller):
    path = "/skills"
    tags = ["jobsearch"]

    @post(
        "/search",
        operation_id="skills_search",
        status_code=200,
        summary="Free text to the closest canonical skills: by name, alias and full text, and by meaning when an"
        " embeddings provider is configured",
    )
    async def search(
        self, data: JSONBody[SkillSearch], session: NamedDependency[Session], state: State
    ) -> SkillHits:
        ai = provide_ai(state)
        # Anyone with the project's key, as for search_skills: the ontology is public, and the rate limit
        # (per user, else per address) bounds what the embeddings cost.
        user_id = session.caller.user_id
        vector = await query_embedding(ai, data.query, UUID(user_id) if user_id else None)
        if vector is None:
            rows = await session.fetch(SEARCH, (data.query, data.limit))
        else:
            # service_role: the embeddings are in private, out of the API roles' reach.
            rows = await session.privileged().fetch(
                SEARCH_BY_MEANING, (data.query, vector, ai.embeddings_model, data.limit)
            )
        return SkillHits([msgspec.convert(row, SkillHit) for row in rows], by_meaning=vector is not None)


route_handlers = [SkillsController]
