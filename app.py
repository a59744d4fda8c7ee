"""Talentbase: the composition root. `create_app()` mounts each capability's functions and tasks on the
platform; `python app.py` runs the local stack (Supabase without Docker)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from litestar import Litestar
from litestar.datastructures import State
from litestar.openapi import OpenAPIConfig

from rpc import identity, interviews, jobsearch, matching
from rpc.platform.ai import AI
from rpc.platform.auth import TokenVerifier
from rpc.platform.capabilities import Capability
from rpc.platform.cli import TalentbaseCLIPlugin
from rpc.platform.db import Database
from rpc.platform.errors import exception_handlers
from rpc.platform.functions import DEPENDENCIES, functions_router
from rpc.platform.guard import loopback_only, refuse_public_secrets
from rpc.platform.health import HealthController
from rpc.platform.jobs import Queue
from rpc.platform.settings import Settings, get_settings, is_local_dsn
from rpc.platform.storage import Storage
from rpc.platform.web import RateLimiter, configure_logging, cors, request_context

CAPABILITIES: tuple[Capability, ...] = (identity, matching, interviews, jobsearch)


def cli_plugin(settings: Settings, queue: Queue) -> TalentbaseCLIPlugin:
    """The project's commands; against a local database, with the local stack's own."""
    if not is_local_dsn(settings.admin_dsn):
        return TalentbaseCLIPlugin(queue)
    from rpc.local import cli, stack

    return TalentbaseCLIPlugin(queue, stack.database, cli.db_commands, cli.commands)


def create_app(settings: Settings | None = None, *, run_worker: bool | None = None) -> Litestar:
    settings = settings or get_settings()
    configure_logging(settings)
    db = Database(
        settings.api_dsn,
        min_size=settings.db_pool_min,
        max_size=settings.db_pool_max,
        timeout_s=settings.db_pool_timeout_s,
        statement_timeout_ms=settings.statement_timeout_ms,
    )
    verifier = TokenVerifier(
        settings.supabase_jwt_secret.get_secret_value(),
        audience=settings.jwt_audience,
        leeway_s=settings.jwt_leeway_s,
        jwks_url=settings.jwks_url,
        jwks_cache_s=settings.jwks_cache_s,
        cache_size=settings.token_cache_size,
        api_keys={
            settings.supabase_publishable_key: "anon",
            settings.supabase_secret_key.get_secret_value(): "service_role",
        },
    )
    local_auth = None
    if settings.auth_enabled:
        # The local stack's /auth/v1 (Supabase Auth serves it in production); its emails go through the queue.
        from rpc.local.auth import EMAIL_TEMPLATES, LocalAuth

        local_auth = LocalAuth(settings, verifier)
    queue = Queue(settings, CAPABILITIES, [EMAIL_TEMPLATES] if local_auth is not None else [])
    # The functions' files, through /storage/v1 (Supabase's, or the local stack's below).
    storage_client = Storage(settings)
    ai = AI(settings, db)
    with_worker = settings.run_worker if run_worker is None else run_worker
    gateway = postgrest = None
    if settings.rest_enabled:
        # The local stack's /rest/v1 and the PostgREST behind it (Supabase's gateway serves it in production).
        from rpc.local.rest import rest_gateway

        gateway, postgrest = rest_gateway(settings)
    storage = None
    if settings.storage_enabled:
        # The local stack's /storage/v1 (Supabase Storage serves it in production).
        from rpc.local.storage import storage_api

        storage = storage_api(settings, db, verifier)

    @asynccontextmanager
    async def lifespan(_: Litestar) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            stack.push_async_callback(storage_client.close)
            stack.push_async_callback(ai.close)
            await db.open()
            stack.push_async_callback(db.close)
            await refuse_public_secrets(settings, db)
            if storage is not None:
                await storage.open()
            if local_auth is not None:
                await local_auth.open()
                stack.push_async_callback(local_auth.close)
            if postgrest is not None:
                await postgrest.start()
                stack.push_async_callback(postgrest.stop)
            if gateway is not None:
                await gateway.open()
                stack.push_async_callback(gateway.close)
            if with_worker:
                await stack.enter_async_context(queue.running_worker())
            yield

    app = Litestar(
        route_handlers=[
            HealthController,
            functions_router([handler for c in CAPABILITIES for handler in c.route_handlers]),
            *([gateway.handler()] if gateway is not None else []),
            *([storage.handler()] if storage is not None else []),
            *([local_auth.router] if local_auth is not None else []),
        ],
        dependencies=DEPENDENCIES,
        lifespan=[lifespan],
        exception_handlers=exception_handlers,
        openapi_config=OpenAPIConfig(title="Talentbase functions", version="1.0.0", path="/schema"),
        plugins=[cli_plugin(settings, queue)],
        logging_config=None,
        state=State(
            {
                "db": db,
                "verifier": verifier,
                "limiter": RateLimiter(settings.rate_limit_per_minute),
                "settings": settings,
                "postgrest": postgrest,
                "ai": ai,
                "storage": storage_client,
                "queue": queue,
            }
        ),
    )
    # Request ids, Server-Timing and the access log wrap everything Litestar does (routing, errors) and CORS
    # as the outermost layer, so 404s and preflights get them too. As app middleware they would run inside
    # each route, where Litestar adds an exception layer of its own around them: 5% of a short function.
    # CORS covers every path alike, /rest/v1 too, as Supabase's gateway does.
    app.asgi_handler = request_context(cors(app.asgi_handler, settings.cors_origins))
    if settings.public_secrets():
        app.asgi_handler = loopback_only(app.asgi_handler)
    return app


if __name__ == "__main__":
    from rpc.local.stack import main

    main(create_app)
