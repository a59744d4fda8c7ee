"""The supabase CLI's published secrets are for the local stack only.

`SUPABASE_JWT_SECRET` and `SUPABASE_SECRET_KEY` default to the values `supabase start` prints, which anyone
can read: with them anyone signs a `service_role` token. The app serves with them only when nothing but
this machine can reach it and its database is the embedded one: the API listens on loopback
(`API_HOST`, and every connection arrives on a loopback address), and the database answers on a loopback
address and carries the mark the local stack's bootstrap leaves (a pooler on this machine in front of a
remote database has neither).
"""

from __future__ import annotations

import ipaddress
import logging
from typing import LiteralString

import psycopg
import psycopg_pool
from litestar.types import ASGIApp, Receive, Scope, Send

from rpc.platform.db import SERVICE, Database
from rpc.platform.errors import send_error
from rpc.platform.settings import Settings, is_local_dsn, is_loopback

log = logging.getLogger(__name__)

# rpc/local/sql/bootstrap.sql comments schema auth with this; Supabase's own databases say otherwise.
EMBEDDED_MARK = "Talentbase local stack"
WHERE_THE_DATABASE_IS: LiteralString = """
select inet_server_addr()::text as address,
       coalesce(obj_description(to_regnamespace('auth'), 'pg_namespace'), '') as note
"""


class PublicSecretsRefused(RuntimeError):
    pass


async def refuse_public_secrets(settings: Settings, db: Database) -> None:
    """Raise unless the published secrets (if any are set) are safe here; call with the pool open."""
    public = settings.public_secrets()
    if not public:
        return
    named = (
        f"{', '.join(public)} still {'have' if len(public) > 1 else 'has'} the supabase CLI's public value"
    )
    fix = "set the project's own (Project Settings > API), or run the local stack on loopback"
    if not is_loopback(settings.api_host):
        raise PublicSecretsRefused(
            f"API_HOST={settings.api_host} listens beyond this machine, but {named}: {fix}"
        )
    not_embedded = f"the database is not the local stack's embedded one, but {named}: {fix}"
    if not (is_local_dsn(settings.admin_dsn) and is_local_dsn(settings.api_dsn)):
        raise PublicSecretsRefused(not_embedded)  # without asking it: it may not even answer
    try:
        [row] = await db.fetch(SERVICE, WHERE_THE_DATABASE_IS)
    except (psycopg.Error, psycopg_pool.PoolTimeout) as exc:
        raise PublicSecretsRefused(
            f"{named}, so the database must be the local stack's embedded one, and it cannot be reached to"
            f" check: {type(exc).__name__}"
        ) from exc
    local = row["address"] is None or is_loopback(row["address"].split("/")[0])
    if not (local and EMBEDDED_MARK in row["note"]):
        raise PublicSecretsRefused(not_embedded)


def loopback_only(app: ASGIApp) -> ASGIApp:
    """Refuses connections that arrive on an address other machines can reach (a server bound beyond
    loopback by its own command line, which settings cannot see). Test clients name no address: let through."""
    warned = False

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        nonlocal warned
        server = scope.get("server")
        if scope["type"] != "http" or not server or not is_public_address(server[0]):
            await app(scope, receive, send)
            return
        if not warned:
            warned = True
            log.error("refusing requests on %s: the supabase CLI's public secrets are in use", server[0])
        await send_error(
            send,
            503,
            "public_secrets",
            "this server uses the supabase CLI's public secrets and answers on loopback only",
        )

    return middleware


def is_public_address(host: str) -> bool:
    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:  # a name (test clients) or a unix socket's path
        return False
