"""Embeddings of executive bios and role descriptions, for the semantic signal of matching.

Only with an AI provider configured (rpc.platform.ai). A trigger clears an embedding when its text changes;
the worker's periodic task embeds what is missing, in batches, and writes a vector only if the text is
still the one embedded. The matching function embeds a role's description on demand, so its first run
already counts it.
"""

from __future__ import annotations

from typing import LiteralString

import psycopg

from rpc.platform.ai import AI

DIMENSIONS = 1536  # the vector columns' size
BATCH = 64

# (table, key column, text column, vector column): each a text to embed and where its vector goes.
SOURCES: tuple[tuple[LiteralString, LiteralString, LiteralString, LiteralString], ...] = (
    ("public.executive_profiles", "user_id", "bio", "bio_embedding"),
    ("public.role_postings", "id", "description", "description_embedding"),
)


async def embed(ai: AI, texts: list[str]) -> list[str]:
    """Vectors in pgvector's text form, one per text, in order."""
    vectors = await ai.embed(texts, dimensions=DIMENSIONS)
    return ["[" + ",".join(map(repr, vector)) + "]" for vector in vectors]


async def embed_missing(conn: psycopg.AsyncConnection, ai: AI) -> int:
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
            vectors = await embed(ai, [row[1] for row in rows])
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
