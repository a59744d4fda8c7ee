"""Embeddings of executive bios and role descriptions, for the semantic signal of matching.

Only with an AI provider configured (`OPENAI_API_KEY`, optionally `OPENAI_BASE_URL` for any
OpenAI-compatible server). A trigger clears an embedding when its text changes; the worker's periodic task
embeds what is missing, in batches, and writes a vector only if the text is still the one embedded. The
matching function embeds a role's description on demand, so its first run already counts it.
"""

from __future__ import annotations

import logging
from typing import LiteralString

import procrastinate
import psycopg
from openai import AsyncOpenAI, OpenAIError

from rpc.jobs import job_settings
from rpc.settings import Settings

log = logging.getLogger(__name__)

DIMENSIONS = 1536  # the vector columns' size
BATCH = 64

# (table, key column, text column, vector column): each a text to embed and where its vector goes.
SOURCES: tuple[tuple[LiteralString, LiteralString, LiteralString, LiteralString], ...] = (
    ("public.executive_profiles", "user_id", "bio", "bio_embedding"),
    ("public.role_postings", "id", "description", "description_embedding"),
)

embeddings = procrastinate.Blueprint()


class Embedder:
    def __init__(self, settings: Settings) -> None:
        key = settings.openai_api_key
        self.model = settings.embeddings_model
        self.client = (
            AsyncOpenAI(
                api_key=key.get_secret_value(),
                base_url=settings.openai_base_url,
                timeout=settings.openai_timeout_s,
                max_retries=2,
            )
            if key is not None
            else None
        )

    @property
    def enabled(self) -> bool:
        return self.client is not None

    async def embed(self, texts: list[str]) -> list[str]:
        """Vectors in pgvector's text form, one per text, in order."""
        assert self.client is not None
        response = await self.client.embeddings.create(model=self.model, input=texts, dimensions=DIMENSIONS)
        vectors = [item.embedding for item in sorted(response.data, key=lambda item: item.index)]
        if len(vectors) != len(texts) or any(len(v) != DIMENSIONS for v in vectors):
            raise OpenAIError(f"{self.model} did not return {len(texts)} vectors of {DIMENSIONS} dimensions")
        return ["[" + ",".join(map(repr, vector)) + "]" for vector in vectors]


async def embed_missing(conn: psycopg.AsyncConnection, embedder: Embedder) -> int:
    """Embed every text that has none yet (the connection logs in as `postgres`); how many were written."""
    written = 0
    for table, key, text, vector in SOURCES:
        while True:
            rows = await (
                await conn.execute(
                    f"select {key}, {text} from {table} where {vector} is null and {text} <> '' limit {BATCH}"  # noqa: S608 (constants)
                )
            ).fetchall()
            if not rows:
                break
            vectors = await embedder.embed([row[1] for row in rows])
            async with conn.transaction():
                for (row_key, row_text), value in zip(rows, vectors, strict=True):
                    # Only if the text is still the one embedded (an edit meanwhile cleared the vector).
                    cursor = await conn.execute(
                        f"update {table} set {vector} = %s::extensions.vector"  # noqa: S608 (constants)
                        f" where {key} = %s and {text} = %s",
                        (value, row_key, row_text),
                    )
                    written += cursor.rowcount
            if len(rows) < BATCH:
                break
    return written


@embeddings.periodic(cron="* * * * *", periodic_id="embed_missing")
@embeddings.task(queue="ai", queueing_lock="embed_missing", name="embed_missing", pass_context=True)
async def embed_missing_task(context: procrastinate.JobContext, timestamp: int) -> None:
    settings = job_settings(context)
    embedder = Embedder(settings)
    if not embedder.enabled:
        return
    async with await psycopg.AsyncConnection.connect(settings.admin_dsn, autocommit=True) as conn:
        written = await embed_missing(conn, embedder)
    if written:
        log.info("embedded %d texts", written)
