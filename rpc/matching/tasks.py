"""Matching's background tasks: embeddings for the semantic signal, and expiring unanswered introductions."""

from __future__ import annotations

import logging

import procrastinate

from rpc.matching.embeddings import embed_missing
from rpc.platform.jobs import embed_periodically

log = logging.getLogger(__name__)

tasks = procrastinate.Blueprint()


@tasks.periodic(cron="* * * * *", periodic_id="embed_missing")
@tasks.task(queue="ai", queueing_lock="embed_missing", name="embed_missing", pass_context=True)
async def embed_missing_task(context: procrastinate.JobContext, timestamp: int) -> None:
    await embed_periodically(context, embed_missing, "texts")


@tasks.periodic(cron="*/5 * * * *", periodic_id="expire_introductions")
@tasks.task(
    name="expire_introductions", queue="maintenance", queueing_lock="expire_introductions", pass_context=True
)
async def expire_introductions(context: procrastinate.JobContext, timestamp: int) -> None:
    """Introduction requests nobody answered before `expires_at` become expired."""
    row = await context.app.connector.execute_query_one_async(
        "select private.expire_introductions() as expired"
    )
    if row["expired"]:
        log.info("expired %s introduction requests", row["expired"])
