"""`litestar db push|status|snapshot-policies` and `litestar worker`, on Litestar's CLI.

The commands reach the database through `open_database`, which app.py chooses: the configured
DATABASE_URL in production, the embedded cluster (started if needed) on the local stack, which also adds
its own commands (`db reset`, `token`).
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import NoReturn

import click
import psycopg
from litestar.plugins import CLIPluginProtocol

from rpc.platform.jobs import Queue
from rpc.platform.migrations import MIGRATIONS_DIR, MigrationError, Runner, Target, push, snapshot_policies
from rpc.platform.settings import Settings, get_settings

DatabaseOpener = Callable[[Settings], AbstractContextManager[Target]]


class CommandError(RuntimeError):
    """A failure the user can act on (a busy port, a database that will not start): one line, no traceback."""


def fail(message: str) -> NoReturn:
    click.secho(f"error: {message}", fg="red", err=True)
    sys.exit(1)


@contextmanager
def reported() -> Iterator[None]:
    try:
        yield
    except (MigrationError, CommandError) as exc:
        fail(str(exc))
    except psycopg.OperationalError as exc:
        fail(f"cannot connect to the database: {exc}")


@contextmanager
def configured_database(settings: Settings) -> Iterator[Target]:
    """DATABASE_URL as it is: nothing to start, nothing to seed."""
    yield Target(settings.admin_dsn)


def db_group(open_database: DatabaseOpener, extra: Sequence[click.Command]) -> click.Group:
    @click.group(name="db", help="Migrations and policies: the same runner for every database.")
    def group() -> None:
        pass

    @group.command(name="push", help="Apply pending migrations, re-apply policies, reload PostgREST.")
    def db_push() -> None:
        with reported(), open_database(get_settings()) as target:
            applied = push(target)
        click.echo("\n".join(f"applied {name}" for name in applied) or "nothing to apply")
        click.echo("policies re-applied")

    @group.command(name="status", help="List applied and pending migrations.")
    def db_status() -> None:
        with reported(), open_database(get_settings()) as target:
            status = Runner(target.admin_dsn).status()
        for version in status.applied:
            click.echo(f"applied  {version}")
        for migration in status.pending:
            click.echo(f"pending  {migration.version}_{migration.name}")
        if not status.pending:
            click.echo("up to date")

    @group.command(
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

    for command in extra:
        group.add_command(command)
    return group


class TalentbaseCLIPlugin(CLIPluginProtocol):
    """The project's commands; app.py gives it the queue and, on the local stack, the local commands."""

    def __init__(
        self,
        queue: Queue,
        open_database: DatabaseOpener = configured_database,
        db_commands: Sequence[click.Command] = (),
        commands: Sequence[click.Command] = (),
    ) -> None:
        self.queue, self.open_database = queue, open_database
        self.db_commands, self.commands = db_commands, commands

    def on_cli_init(self, cli: click.Group) -> None:
        queue = self.queue

        @click.command(
            name="worker", help="Run a background worker (production: as many processes as needed)."
        )
        def worker() -> None:
            asyncio.run(queue.work())

        cli.add_command(db_group(self.open_database, self.db_commands))
        cli.add_command(worker)
        for command in self.commands:
            cli.add_command(command)
