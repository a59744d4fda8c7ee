"""`/health`: is the database reachable, which migration is the latest, is a worker alive, and (on the
local stack) does PostgREST answer."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import msgspec
import psycopg
import psycopg_pool
from litestar import Controller, Request, Response, get
from litestar.di import NamedDependency

from rpc.platform.db import SERVICE, Database
from rpc.platform.jobs import WORKER_STALE_S

HEALTH_TIMEOUT_S = 3.0


class Health(msgspec.Struct):
    status: str
    database: bool
    latest_migration: str | None = None
    worker_alive: bool = False
    worker_heartbeat: datetime | None = None
    # None where this app does not run PostgREST (production: Supabase's gateway serves /rest/v1).
    rest: bool | None = None


class HealthController(Controller):
    path = "/health"
    tags = ["operations"]

    @get(
        operation_id="health",
        summary="Database, latest migration, worker and PostgREST liveness (503 if the database is down)",
    )
    async def health(self, request: Request, db: NamedDependency[Database]) -> Response[Health]:
        postgrest, settings = request.app.state.postgrest, request.app.state.settings
        rest = None if not settings.rest_enabled else postgrest is not None and await postgrest.ready()
        try:
            rows = await asyncio.wait_for(db.fetch(SERVICE, "select private.health() as h"), HEALTH_TIMEOUT_S)
        except (psycopg.Error, psycopg_pool.PoolTimeout, TimeoutError):
            return Response(Health(status="unavailable", database=False, rest=rest), status_code=503)
        report = rows[0]["h"]
        heartbeat = datetime.fromisoformat(report["worker_heartbeat"]) if report["worker_heartbeat"] else None
        alive = heartbeat is not None and (datetime.now(UTC) - heartbeat).total_seconds() < WORKER_STALE_S
        return Response(
            Health(
                status="ok" if alive and rest is not False else "degraded",
                database=True,
                latest_migration=report["latest_migration"],
                worker_alive=alive,
                worker_heartbeat=heartbeat,
                rest=rest,
            )
        )
