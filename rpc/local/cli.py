"""The local stack's commands, offered against a local database only: `litestar db reset` and `litestar
token`. The platform's `db` commands reach the embedded cluster through `rpc.local.stack.database`, which
app.py hands them."""

from __future__ import annotations

import click

from rpc.local.stack import database, reset
from rpc.local.tokens import UnknownUser, api_key, mint_user_token
from rpc.platform.cli import fail, reported
from rpc.platform.settings import get_settings


@click.command(name="reset", help="Local only: rebuild the embedded database from scratch and reseed it.")
def db_reset() -> None:
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
    settings = get_settings()
    if role != "authenticated":
        click.echo(api_key(settings.supabase_jwt_secret.get_secret_value(), role))
        return
    if not email:
        fail("a user token needs --email (demo users: see supabase/seed.sql)")
    try:
        with reported(), database(settings) as target:
            access_token = mint_user_token(
                target.admin_dsn,
                email,
                settings.supabase_jwt_secret.get_secret_value(),
                issuer=f"{settings.api_url}/auth/v1",
                expires_in=expires_in,
            )
    except UnknownUser:
        fail(f"no auth user has the email {email!r} (demo users: see supabase/seed.sql)")
    click.echo(access_token)


db_commands = [db_reset]
commands = [token]
