"""`litestar db ...`, `litestar token` and `litestar worker`: the project's commands, on Litestar's CLI."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

import click
import psycopg
from litestar.plugins import CLIPluginProtocol

from rpc.migrations import MIGRATIONS_DIR, MigrationError, Runner, snapshot_policies
from rpc.settings import get_settings, is_local_dsn


def fail(message: str) -> NoReturn:
    click.secho(f"error: {message}", fg="red", err=True)
    sys.exit(1)


@contextmanager
def reported() -> Iterator[None]:
    """Failures a user can act on (a broken migration, a busy port, no server) end in one line, not a traceback."""
    from rpc.localstack import LocalStackError

    try:
        yield
    except (MigrationError, LocalStackError) as exc:
        fail(str(exc))
    except psycopg.OperationalError as exc:
        fail(f"cannot connect to the database: {exc}")


@click.group(name="db", help="Migrations and policies: the same runner for every database.")
def db_group() -> None:
    pass


@db_group.command(name="push", help="Apply pending migrations, re-apply policies, reload PostgREST.")
def db_push() -> None:
    from rpc.localstack import database, migrate

    with reported(), database(get_settings()) as local:
        applied = migrate(local, seed=local.created)
    click.echo("\n".join(f"applied {name}" for name in applied) or "nothing to apply")
    click.echo("policies re-applied")


@db_group.command(name="status", help="List applied and pending migrations.")
def db_status() -> None:
    from rpc.localstack import database

    with reported(), database(get_settings()) as local:
        status = Runner(local.admin_dsn).status()
    for version in status.applied:
        click.echo(f"applied  {version}")
    for migration in status.pending:
        click.echo(f"pending  {migration.version}_{migration.name}")
    if not status.pending:
        click.echo("up to date")


@db_group.command(
    name="snapshot-policies",
    help="Copy supabase/policies/*.sql into a new migration if they changed, so `supabase db push` deploys them.",
)
def db_snapshot_policies() -> None:
    with reported():
        path = snapshot_policies()
    if path is None:
        click.echo("policies unchanged since the last snapshot")
    else:
        click.echo(f"wrote {path.relative_to(MIGRATIONS_DIR.parent.parent)}")


@db_group.command(name="reset", help="Local only: rebuild the embedded database from scratch and reseed it.")
def db_reset() -> None:
    from rpc.localstack import reset

    with reported():
        reset(get_settings())
    click.echo("database rebuilt and seeded")


@click.command(name="token", help="Mint an access token for a user of the local database (dev only).")
@click.option("--email", help="An existing auth user's email (see supabase/seed.sql).")
@click.option(
    "--role",
    type=click.Choice(["authenticated", "anon", "service_role"]),
    default="authenticated",
    show_default=True,
    help="The token's role claim; anon and service_role give the project's API keys.",
)
@click.option("--expires-in", default=3600, show_default=True, type=click.IntRange(60, 7 * 24 * 3600))
def token(email: str | None, role: str, expires_in: int) -> None:
    from rpc.localstack import database
    from rpc.tokens import UnknownUser, api_key, mint_user_token

    settings = get_settings()
    if not is_local_dsn(settings.admin_dsn):
        fail(
            "tokens are minted only for the local database; a hosted project's tokens come from Supabase Auth"
        )
    if role != "authenticated":
        click.echo(api_key(settings.supabase_jwt_secret.get_secret_value(), role))
        return
    if not email:
        fail("a user token needs --email (demo users: see supabase/seed.sql)")
    try:
        with reported(), database(settings) as local:
            access_token = mint_user_token(
                local.admin_dsn,
                email,
                settings.supabase_jwt_secret.get_secret_value(),
                issuer=f"{settings.api_url}/auth/v1",
                expires_in=expires_in,
            )
    except UnknownUser:
        fail(f"no auth user has the email {email!r} (demo users: see supabase/seed.sql)")
    click.echo(access_token)


@click.command(name="worker", help="Run a background worker (production: as many processes as needed).")
def worker() -> None:
    from rpc.jobs import HEARTBEAT_S, create_job_app

    async def run() -> None:
        job_app = create_job_app(get_settings())
        async with job_app.open_async():
            await job_app.run_worker_async(update_heartbeat_interval=HEARTBEAT_S)

    asyncio.run(run())


class TalentbaseCLIPlugin(CLIPluginProtocol):
    def on_cli_init(self, cli: click.Group) -> None:
        cli.add_command(db_group)
        cli.add_command(token)
        cli.add_command(worker)
