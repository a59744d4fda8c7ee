"""What GoTrue does with its tables: users and identities, sessions, rotating refresh tokens, access tokens
passed through the custom access token hook, one-time tokens for email links.

Every statement runs as `supabase_auth_admin`, GoTrue's role (the pool logs in as `postgres`, a member of
it, and `set local role`s per transaction), so the hook gets exactly the privileges it has on Supabase.
Emails are written to the outbox (`private.send_email`) in the same transaction as the change they tell
of, as `postgres`, which owns the outbox.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import string
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import msgspec
from psycopg import AsyncConnection, sql
from psycopg.rows import DictRow, dict_row
from psycopg.types.json import Jsonb, set_json_dumps, set_json_loads
from psycopg_pool import AsyncConnectionPool

from rpc.local.auth.config import AuthConfig
from rpc.local.auth.errors import AuthError, bad_request
from rpc.local.tokens import sign, user_claims

Connection = AsyncConnection[DictRow]
FIELDS = sql.SQL(
    "id, aud, role, email, encrypted_password, email_confirmed_at, invited_at, phone, phone_confirmed_at,"
    " confirmation_token, confirmation_sent_at, confirmed_at, recovery_token, recovery_sent_at, email_change,"
    " email_change_token_new, email_change_sent_at, last_sign_in_at, raw_app_meta_data, raw_user_meta_data,"
    " created_at, updated_at, banned_until, deleted_at, is_anonymous"
)
USERS = sql.SQL("select {} from auth.users").format(FIELDS)
# A new session: the session, its amr claim, its first refresh token and the sign-in times, in one statement.
START_SESSION = sql.SQL(
    "with session as (insert into auth.sessions (id, user_id, created_at, updated_at, aal, user_agent, ip)"
    " values (%(session)s, %(user)s, now(), now(), 'aal1', %(agent)s, %(ip)s)),"
    " claim as (insert into auth.mfa_amr_claims (id, session_id, created_at, updated_at, authentication_method)"
    " values (%(claim)s, %(session)s, now(), now(), %(method)s)),"
    " token as (insert into auth.refresh_tokens (instance_id, token, user_id, revoked, created_at, updated_at,"
    " parent, session_id) values ('00000000-0000-0000-0000-000000000000', %(token)s, %(user)s::text, false,"
    " now(), now(), null, %(session)s)),"
    " identity as (update auth.identities set last_sign_in_at = now()"
    " where user_id = %(user)s and provider = 'email'),"
    " signed as (update auth.users set last_sign_in_at = now(), updated_at = now() where id = %(user)s"
    " returning *)"
    " select {} from signed"
).format(FIELDS)
# A refresh token (locked), its user's ban, whether its session lives, and the session's current token.
REFRESH_TOKEN = sql.SQL(
    "select t.id, t.user_id, t.revoked, t.session_id, t.updated_at, u.banned_until,"
    " exists (select 1 from auth.sessions s where s.id = t.session_id) as has_session,"
    " c.token as current_token, c.parent as current_parent"
    " from auth.refresh_tokens t join auth.users u on u.id = t.user_id::uuid"
    " left join lateral (select token, parent from auth.refresh_tokens"
    " where session_id = t.session_id and not revoked order by id desc limit 1) c on true"
    " where t.token = %s for update of t"
)
# Rotation: the token revoked, its child issued, the session touched; the user, for the new access token.
ROTATE = sql.SQL(
    "with revoked as (update auth.refresh_tokens set revoked = true, updated_at = now() where id = %(id)s),"
    " child as (insert into auth.refresh_tokens (instance_id, token, user_id, revoked, created_at, updated_at,"
    " parent, session_id) values ('00000000-0000-0000-0000-000000000000', %(child)s, %(user)s, false, now(),"
    " now(), %(parent)s, %(session)s)),"
    " touched as (update auth.sessions set refreshed_at = now(), updated_at = now() where id = %(session)s)"
    " select {} from auth.users where id = %(user)s::uuid"
).format(FIELDS)
# The current token handed out again: only the session is touched.
TOUCH_SESSION = sql.SQL(
    "with touched as (update auth.sessions set refreshed_at = now(), updated_at = now() where id = %(session)s)"
    " select {} from auth.users where id = %(user)s::uuid"
).format(FIELDS)
# (refresh_tokens.user_id is GoTrue's varchar: cast it to the users' uuid, never the other way, so the
# primary key finds the user.)
# The usual refresh in one statement: a live, unrevoked token of a live session and an unbanned user is
# revoked and gets its child, the session is touched, and what the new access token needs comes back. Any
# other token (unknown, revoked, banned, session gone) changes nothing here: `refresh_slowly` decides.
FAST_REFRESH = sql.SQL(
    "with token as (update auth.refresh_tokens t set revoked = true, updated_at = now()"
    " where t.token = %(token)s and not t.revoked"
    " and exists (select 1 from auth.sessions s where s.id = t.session_id)"
    " and exists (select 1 from auth.users u where u.id = t.user_id::uuid"
    " and (u.banned_until is null or u.banned_until <= now()))"
    " returning t.user_id, t.session_id),"
    " child as (insert into auth.refresh_tokens (instance_id, token, user_id, revoked, created_at, updated_at,"
    " parent, session_id) select '00000000-0000-0000-0000-000000000000', %(child)s, user_id, false, now(),"
    " now(), %(token)s, session_id from token),"
    " touched as (update auth.sessions set refreshed_at = now(), updated_at = now()"
    " where id = (select session_id from token))"
    " select {fields}, {identities} as identities,"
    " {output} as output"
    " from auth.users where id = (select user_id::uuid from token)"
)
# The new access token's claims as GoTrue builds them (tokens.GenerateAccessToken; for a sign-in
# rpc.local.tokens.user_claims builds the same in Python, and a test compares the two), built here so that
# the hook runs within the refresh's one statement.
REFRESHED_CLAIMS = sql.SQL(
    "jsonb_build_object('iss', %(iss)s::text, 'aud', 'authenticated', 'sub', users.id,"
    " 'exp', %(exp)s::bigint, 'iat', %(iat)s::bigint, 'email', coalesce(users.email, ''),"
    " 'phone', coalesce(users.phone, ''), 'app_metadata', coalesce(users.raw_app_meta_data, '{{}}'),"
    " 'user_metadata', coalesce(users.raw_user_meta_data, '{{}}'), 'role', 'authenticated', 'aal', 'aal1',"
    " 'amr', {amr}::jsonb, 'session_id', (select session_id from token), 'is_anonymous', users.is_anonymous)"
)
# A session's amr claims, and a user's identities (as JSON: their times arrive as text), for a session id and a
# user id given as SQL expressions.
AMR_OF = (
    "(select coalesce(json_agg(json_build_object('method', authentication_method,"
    " 'timestamp', extract(epoch from updated_at)::bigint) order by updated_at desc), '[]'::json)"
    " from auth.mfa_amr_claims where session_id = {})"
)
IDENTITIES_OF = (
    "(select coalesce(json_agg(i order by i.created_at), '[]'::json) from (select id, provider_id, user_id,"
    " identity_data, provider, last_sign_in_at, created_at, updated_at, email from auth.identities"
    " where user_id = {}) i)"
)
AMR = sql.SQL(AMR_OF).format(sql.SQL("(select session_id from token)"))
IDENTITIES = sql.SQL(IDENTITIES_OF).format(sql.SQL("users.id"))
# What a session's tokens need besides the user.
SESSION_FACTS = sql.SQL("select {} as amr, {} as identities").format(
    sql.SQL(AMR_OF).format(sql.Placeholder()), sql.SQL(IDENTITIES_OF).format(sql.Placeholder())
)
USER_IDENTITIES = sql.SQL("select {} as identities").format(sql.SQL(IDENTITIES_OF).format(sql.Placeholder()))
FOR_UPDATE = sql.SQL(" for update")
# GoTrue's lookup, instance and all, which is what users_instance_id_email_idx serves.
USER_BY_EMAIL = USERS + sql.SQL(
    " where instance_id = '00000000-0000-0000-0000-000000000000' and lower(email) = lower(%s)"
    " and not is_sso_user"
)
USER_BY_ID = USERS + sql.SQL(" where id = %s")
# The admin API's page of users, newest first, with their identities.
USER_PAGE = sql.SQL(
    "select {}, {} as identities from auth.users order by created_at desc, id limit %s offset %s"
).format(FIELDS, IDENTITIES)
SESSION = sql.SQL("select 1 from auth.sessions where id = %s")


def rendered(query: sql.Composable) -> bytes:
    """A composed query as the bytes psycopg sends: rendered once, so psycopg's query cache knows it."""
    return query.as_bytes(None)


QUERIES = {
    name: rendered(query)
    for name, query in {
        "user_by_email": USER_BY_EMAIL,
        "user_by_email_locked": USER_BY_EMAIL + FOR_UPDATE,
        "user_by_id": USER_BY_ID,
        "user_by_id_locked": USER_BY_ID + FOR_UPDATE,
        "session": SESSION,
        "start_session": START_SESSION,
        "refresh_token": REFRESH_TOKEN,
        "rotate": ROTATE,
        "touch_session": TOUCH_SESSION,
        "session_facts": SESSION_FACTS,
        "user_identities": USER_IDENTITIES,
        "user_page": USER_PAGE,
        "user_count": sql.SQL("select count(*) as n from auth.users"),
    }.items()
}

# Claims GoTrue requires of what a hook returns (tokens.validateTokenClaims).
REQUIRED_CLAIMS = ("aud", "exp", "iat", "sub", "email", "phone", "role", "aal", "session_id", "is_anonymous")


def now() -> datetime:
    return datetime.now(UTC)


def timestamp(value: datetime | str | None) -> str | None:
    """GoTrue's times: RFC 3339 in UTC (a value read through JSON arrives as text)."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return None if value is None else value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def token_hash(email: str, otp: str) -> str:
    """GoTrue's one-time token as stored and put in links: sha224 of the email and the code, hex."""
    return hashlib.sha224(f"{email}{otp}".encode()).hexdigest()


def one_time_code(length: int) -> str:
    return "".join(secrets.choice(string.digits) for _ in range(length))


def refresh_token() -> str:
    """GoTrue's refresh token: 12 characters of lowercase base32 (60 random bits, one read of urandom)."""
    return base64.b32encode(secrets.token_bytes(10)).decode().lower()[:12]


async def act_as_gotrue(conn: Connection) -> None:
    """Each pooled connection logs in as `postgres` and acts as GoTrue's role from then on; its JSON goes
    through msgspec (metadata, claims and the hook's event are JSON on every sign-in and refresh)."""
    set_json_loads(msgspec.json.decode, conn)
    set_json_dumps(msgspec.json.encode, conn)
    await conn.execute("set role supabase_auth_admin")


class AuthService:
    def __init__(
        self, admin_dsn: str, config: AuthConfig, *, secret: str, issuer: str, pool_size: int
    ) -> None:
        self.config, self.secret, self.issuer = config, secret, issuer
        claims = REFRESHED_CLAIMS.format(amr=AMR)
        output: sql.Composable = sql.SQL("jsonb_build_object('claims', {})").format(claims)
        if config.access_token_hook:
            schema, name = config.access_token_hook.split(".", 1)
            hook = sql.Identifier(schema, name)
            self.hook_query = rendered(sql.SQL("select {}(%s) as output").format(hook))
            output = sql.SQL(
                "{}(jsonb_build_object('user_id', users.id, 'claims', {}, 'authentication_method', 'token_refresh'))"
            ).format(hook, claims)
        self.fast_refresh = rendered(FAST_REFRESH.format(fields=FIELDS, identities=IDENTITIES, output=output))
        self.pool: AsyncConnectionPool[Connection] = AsyncConnectionPool(
            admin_dsn,
            # Every refresh and sign-in commits, and a commit waits for its WAL flush: commits overlap (and
            # share flushes) only across connections, so as many as the API's pool has (measured: 4 held
            # refreshes to 400/s here, 16 let them reach 490/s).
            min_size=1,
            max_size=pool_size,
            open=False,
            name="auth",
            connection_class=AsyncConnection[DictRow],
            kwargs={"autocommit": True, "row_factory": dict_row, "application_name": "talentbase-auth"},
            configure=act_as_gotrue,
        )

    async def open(self) -> None:
        await self.pool.open(wait=False)

    async def close(self) -> None:
        await self.pool.close()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Connection]:
        async with self.pool.connection() as conn, conn.transaction():
            yield conn

    # -- users -------------------------------------------------------------------------------------------

    async def user_by_email(
        self, conn: Connection, email: str, *, lock: bool = False
    ) -> dict[str, Any] | None:
        query = QUERIES["user_by_email_locked" if lock else "user_by_email"]
        return await (await conn.execute(query, (email,))).fetchone()

    async def user_by_id(
        self, conn: Connection, user_id: str, *, lock: bool = False
    ) -> dict[str, Any] | None:
        query = QUERIES["user_by_id_locked" if lock else "user_by_id"]
        return await (await conn.execute(query, (user_id,))).fetchone()

    async def user_by_token(self, conn: Connection, column: str, hashed: str) -> dict[str, Any] | None:
        """The user a one-time token was issued to, whether in a PKCE flow or not (a token column never
        matches an empty one)."""
        bare = hashed.removeprefix(PKCE_PREFIX)
        query = (
            USERS + sql.SQL(" where {} in (%s, %s) and %s <> ''").format(sql.Identifier(column)) + FOR_UPDATE
        )
        return await (await conn.execute(query, (bare, PKCE_PREFIX + bare, bare))).fetchone()

    async def create_user(
        self,
        conn: Connection,
        *,
        email: str,
        password_hash: str | None,
        user_metadata: dict[str, Any],
        app_metadata: dict[str, Any] | None = None,
        confirmed: bool,
    ) -> dict[str, Any]:
        """A user with an email identity, as GoTrue's sign-up and admin create write them."""
        user_id = str(uuid.uuid4())
        email = email.lower()
        app = {"provider": "email", "providers": ["email"], **(app_metadata or {})}
        await conn.execute(
            "insert into auth.users (instance_id, id, aud, role, email, encrypted_password, email_confirmed_at,"
            " raw_app_meta_data, raw_user_meta_data, created_at, updated_at, confirmation_token, recovery_token,"
            " email_change_token_new, email_change, email_change_token_current, phone_change, phone_change_token,"
            " reauthentication_token, is_sso_user, is_anonymous)"
            " values ('00000000-0000-0000-0000-000000000000', %s, 'authenticated', 'authenticated', %s, %s, %s,"
            " %s, %s, now(), now(), '', '', '', '', '', '', '', '', false, false)",
            (
                user_id,
                email,
                password_hash or "",
                now() if confirmed else None,
                Jsonb(app),
                Jsonb(user_metadata),
            ),
        )
        identity_data = {"sub": user_id, "email": email, "email_verified": confirmed, "phone_verified": False}
        identity_data.update({k: v for k, v in user_metadata.items() if k not in identity_data})
        await conn.execute(
            "insert into auth.identities (id, provider_id, user_id, identity_data, provider, last_sign_in_at,"
            " created_at, updated_at) values (%s, %s, %s, %s, 'email', now(), now(), now())",
            (str(uuid.uuid4()), user_id, user_id, Jsonb(identity_data)),
        )
        if confirmed:
            await self.merge_user_metadata(conn, user_id, {"email_verified": True})
        user = await self.user_by_id(conn, user_id)
        assert user is not None
        return user

    async def set_password(self, conn: Connection, user_id: str, password_hash: str) -> None:
        await conn.execute(
            "update auth.users set encrypted_password = %s, updated_at = now() where id = %s",
            (password_hash, user_id),
        )

    async def merge_user_metadata(self, conn: Connection, user_id: str, data: dict[str, Any]) -> None:
        """GoTrue's merge: keys given replace theirs, keys given as null are removed."""
        await conn.execute(
            "update auth.users set raw_user_meta_data = jsonb_strip_nulls(coalesce(raw_user_meta_data, '{}')"
            " || %s), updated_at = now() where id = %s",
            (Jsonb(data), user_id),
        )

    async def merge_app_metadata(self, conn: Connection, user_id: str, data: dict[str, Any]) -> None:
        await conn.execute(
            "update auth.users set raw_app_meta_data = jsonb_strip_nulls(coalesce(raw_app_meta_data, '{}')"
            " || %s), updated_at = now() where id = %s",
            (Jsonb(data), user_id),
        )

    async def confirm_email(self, conn: Connection, user_id: str) -> None:
        await conn.execute(
            "update auth.users set email_confirmed_at = coalesce(email_confirmed_at, now()), confirmation_token = '',"
            " updated_at = now() where id = %s",
            (user_id,),
        )
        await self.merge_user_metadata(conn, user_id, {"email_verified": True})
        await conn.execute(
            "update auth.identities set identity_data = identity_data || '{\"email_verified\": true}',"
            " updated_at = now() where user_id = %s and provider = 'email'",
            (user_id,),
        )

    async def user_page(self, conn: Connection, limit: int, offset: int) -> tuple[int, list[dict[str, Any]]]:
        """How many users there are, and a page of them (newest first) as GoTrue's user objects."""
        count = await (await conn.execute(QUERIES["user_count"])).fetchone()
        rows = await (await conn.execute(QUERIES["user_page"], (limit, offset))).fetchall()
        return (count or {"n": 0})["n"], [user_json(row, row["identities"]) for row in rows]

    async def user_json(self, conn: Connection, user: dict[str, Any]) -> dict[str, Any]:
        row = await (await conn.execute(QUERIES["user_identities"], (user["id"],))).fetchone()
        assert row is not None
        return user_json(user, row["identities"])

    # -- sessions and tokens -----------------------------------------------------------------------------

    async def start_session(
        self, conn: Connection, user: dict[str, Any], method: str, *, user_agent: str | None, ip: str | None
    ) -> dict[str, Any]:
        """A new session with its first refresh token, and the access token for it: GoTrue's session object.
        One statement writes the session, its amr claim, the refresh token and the sign-in times."""
        session_id, token = str(uuid.uuid4()), refresh_token()
        signed = await (
            await conn.execute(
                QUERIES["start_session"],
                {
                    "session": session_id,
                    "user": user["id"],
                    "agent": user_agent,
                    "ip": ip,
                    "claim": str(uuid.uuid4()),
                    "method": method,
                    "token": token,
                },
            )
        ).fetchone()
        assert signed is not None
        return await self.session_response(conn, signed, session_id, token, method)

    async def session_response(
        self, conn: Connection, user: dict[str, Any], session_id: str, refresh: str, method: str
    ) -> dict[str, Any]:
        """The session object."""
        facts = await (await conn.execute(QUERIES["session_facts"], (session_id, user["id"]))).fetchone()
        assert facts is not None
        access_token, expires_at = await self.access_token(conn, user, session_id, method, facts["amr"])
        return session_object(user, facts["identities"], access_token, expires_at, refresh)

    async def access_token(
        self, conn: Connection, user: dict[str, Any], session_id: str, method: str, amr: list[dict[str, Any]]
    ) -> tuple[str, int]:
        """GoTrue's access token for the session, through the custom access token hook when it is on."""
        claims = user_claims(
            user,
            issuer=self.issuer,
            expires_in=self.config.jwt_expiry,
            session_id=session_id,
            amr=amr,
        )
        if self.config.access_token_hook:
            claims = await self.run_hook(conn, claims, method)
        return sign(claims, self.secret), int(claims["exp"])

    async def run_hook(self, conn: Connection, claims: dict[str, Any], method: str) -> dict[str, Any]:
        """GoTrue's Postgres hook call: the event in, `{claims}` or `{error}` out."""
        assert self.config.access_token_hook is not None
        query = self.hook_query
        event = {"user_id": claims["sub"], "claims": claims, "authentication_method": method}
        row = await (await conn.execute(query, (Jsonb(event),))).fetchone()
        return hooked(row["output"] if row else None)

    async def refresh(self, token: str) -> dict[str, Any] | None:
        """GoTrue's rotation (tokens.RefreshTokenGrant): a used token is revoked and gets a child. A revoked
        token whose child is the session's current one gets that child again, however late (a client that
        lost the answer retries with the same token); another revoked token within the reuse interval gets a
        new child (two tabs at once); later, it is a replay, and the whole session is revoked: None then
        (committed). The usual case takes one statement (and the hook's); the rest a transaction."""
        child, issued = refresh_token(), int(time.time())
        params = {
            "token": token,
            "child": child,
            "iss": self.issuer,
            "iat": issued,
            "exp": issued + self.config.jwt_expiry,
        }
        async with self.pool.connection() as conn:
            row = await (await conn.execute(self.fast_refresh, params)).fetchone()
        if row is not None:
            claims = hooked(row.pop("output"))
            return session_object(
                row,
                row.pop("identities"),
                sign(claims, self.secret),
                int(claims["exp"]),
                child,
            )
        async with self.transaction() as conn:
            return await self.refresh_slowly(conn, token)

    async def refresh_slowly(self, conn: Connection, token: str) -> dict[str, Any] | None:
        row = await (await conn.execute(QUERIES["refresh_token"], (token,))).fetchone()
        if row is None:
            raise bad_request("refresh_token_not_found", "Invalid Refresh Token: Refresh Token Not Found")
        if row["banned_until"] is not None and row["banned_until"] > now():
            raise bad_request("user_banned", "Invalid Refresh Token: User Banned")
        if not row["has_session"]:
            raise bad_request("session_not_found", "Invalid Refresh Token: No Valid Session Found")
        session_id = str(row["session_id"])
        child = refresh_token()
        if row["revoked"]:
            if row["current_parent"] == token:
                child = row["current_token"]
            elif now() > row["updated_at"] + timedelta(seconds=self.config.refresh_token_reuse_interval):
                if self.config.enable_refresh_token_rotation:
                    await conn.execute("delete from auth.sessions where id = %s", (session_id,))
                return None
        rotate = {
            "id": row["id"],
            "user": row["user_id"],
            "session": session_id,
            "parent": token,
            "child": child,
        }
        query = QUERIES["touch_session" if child == row["current_token"] else "rotate"]
        user = await (await conn.execute(query, rotate)).fetchone()
        assert user is not None
        return await self.session_response(conn, user, session_id, child, "token_refresh")

    async def end_sessions(self, conn: Connection, user_id: str, session_id: str | None, scope: str) -> None:
        if scope == "local":
            await conn.execute("delete from auth.sessions where id = %s", (session_id,))
        elif scope == "others":
            await conn.execute(
                "delete from auth.sessions where user_id = %s and id is distinct from %s",
                (user_id, session_id),
            )
        else:
            await conn.execute("delete from auth.sessions where user_id = %s", (user_id,))

    async def session_exists(self, conn: Connection, session_id: str) -> bool:
        row = await (await conn.execute(QUERIES["session"], (session_id,))).fetchone()
        return row is not None

    # -- email links ----------------------------------------------------------------------------------------

    async def send_link(
        self,
        conn: Connection,
        user: dict[str, Any],
        kind: str,
        *,
        email: str,
        redirect_to: str | None,
        pkce: Challenge | None = None,
    ) -> None:
        """A one-time token for `kind` (signup, recovery, email_change) stored hashed on the user, and its
        email in the outbox, in this transaction. With a PKCE challenge the link's token says so (`pkce_`)
        and leads to a code, which only the holder of the verifier can exchange for the session."""
        code = one_time_code(self.config.otp_length)
        hashed = token_hash(email, code)
        column, sent_at = LINK_COLUMNS[kind]
        if pkce is not None:
            hashed = PKCE_PREFIX + hashed
            await conn.execute(
                "insert into auth.flow_state (id, user_id, auth_code, code_challenge_method, code_challenge,"
                " provider_type, created_at, updated_at, authentication_method)"
                " values (%s, %s, %s, %s, %s, 'email', now(), now(), %s)",
                (
                    str(uuid.uuid4()),
                    user["id"],
                    str(uuid.uuid4()),
                    pkce.method,
                    pkce.challenge,
                    FLOW_METHODS[kind],
                ),
            )
        await conn.execute(
            sql.SQL("update auth.users set {} = %s, {} = now(), updated_at = now() where id = %s").format(
                sql.Identifier(column), sql.Identifier(sent_at)
            ),
            (hashed, user["id"]),
        )
        link = f"{self.issuer}/verify?token={hashed}&type={kind}"
        if redirect_to:
            link += "&redirect_to=" + quote_component(redirect_to)
        # The outbox belongs to `postgres`: leave GoTrue's role for this one call.
        await conn.execute("set local role postgres")
        await conn.execute(
            "select private.send_email(%s, %s, %s, %s)",
            (
                f"auth_{kind}",
                email,
                Jsonb(
                    {
                        "link": link,
                        "code": code,
                        "email": email,
                        "expires_in_minutes": self.config.otp_expiry // 60,
                    }
                ),
                f"auth:{kind}:{user['id']}:{hashed}",
            ),
        )
        await conn.execute("set local role supabase_auth_admin")

    def expired(self, sent_at: datetime | None) -> bool:
        return sent_at is None or now() > sent_at + timedelta(seconds=self.config.otp_expiry)

    async def issue_code(self, conn: Connection, user_id: str, kind: str) -> str:
        """The PKCE flow's code, once its link was followed: the newest flow of the user for `kind`."""
        row = await (
            await conn.execute(
                "update auth.flow_state set auth_code_issued_at = now(), updated_at = now() where id = ("
                " select id from auth.flow_state where user_id = %s and authentication_method = %s"
                " order by created_at desc limit 1) returning auth_code",
                (user_id, FLOW_METHODS[kind]),
            )
        ).fetchone()
        if row is None:
            raise AuthError(404, "flow_state_not_found", "invalid flow state, no valid flow state found")
        return str(row["auth_code"])

    async def exchange_code(
        self, conn: Connection, auth_code: str, verifier: str
    ) -> tuple[dict[str, Any], str]:
        """GoTrue's PKCE grant: the user a code was issued to, and how they signed in."""
        flow = await (
            await conn.execute(
                "select id, user_id, code_challenge_method::text as method, code_challenge, authentication_method,"
                " coalesce(auth_code_issued_at, created_at) as issued_at from auth.flow_state"
                " where auth_code = %s and user_id is not null for update",
                (auth_code,),
            )
        ).fetchone()
        if flow is None:
            raise AuthError(404, "flow_state_not_found", "invalid flow state, no valid flow state found")
        if now() > flow["issued_at"] + timedelta(seconds=FLOW_STATE_EXPIRY_S):
            raise AuthError(422, "flow_state_expired", "invalid flow state, flow state has expired")
        if not Challenge(flow["method"], flow["code_challenge"]).verified_by(verifier):
            raise bad_request(
                "bad_code_verifier", "code challenge does not match previously saved code verifier"
            )
        user = await self.user_by_id(conn, str(flow["user_id"]))
        if user is None:
            raise AuthError(404, "flow_state_not_found", "invalid flow state, no valid flow state found")
        # Spent only when exchanged: a wrong verifier must not let a stranger void the holder's code.
        await conn.execute("delete from auth.flow_state where id = %s", (flow["id"],))
        return user, flow["authentication_method"]


PKCE_PREFIX = "pkce_"
FLOW_STATE_EXPIRY_S = 300  # GoTrue's default: a code is exchanged within five minutes of its issue
# kind -> how GoTrue names the sign-in a flow ends in
FLOW_METHODS = {"signup": "email/signup", "recovery": "recovery", "email_change": "email_change"}


@dataclass(frozen=True)
class Challenge:
    """A PKCE code challenge: `s256` (base64url of the verifier's SHA-256) or `plain`."""

    method: str
    challenge: str

    @classmethod
    def of(cls, values: dict[str, Any]) -> Challenge | None:
        challenge, method = values.get("code_challenge"), values.get("code_challenge_method")
        if not challenge:
            return None
        method = str(method or "").lower()
        if (
            method not in ("s256", "plain")
            or not isinstance(challenge, str)
            or not 43 <= len(challenge) <= 128
        ):
            raise bad_request(
                "validation_failed", "PKCE flow requires code_challenge_method and code_challenge"
            )
        return cls(method, challenge)

    def verified_by(self, verifier: str) -> bool:
        if self.method == "plain":
            return hmac.compare_digest(verifier, self.challenge)
        digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        return hmac.compare_digest(digest, self.challenge)


def session_object(
    user: dict[str, Any], identities: list[dict[str, Any]], access_token: str, expires_at: int, refresh: str
) -> dict[str, Any]:
    """GoTrue's session: the tokens and the user."""
    return {
        "access_token": access_token,
        "token_type": "bearer",
        "expires_in": expires_at - int(time.time()),
        "expires_at": expires_at,
        "refresh_token": refresh,
        "user": user_json(user, identities),
    }


def hooked(output: Any) -> dict[str, Any]:
    """The claims a hook returned (`{claims}`), or GoTrue's error for one it refused (`{error}`) or broke."""
    if not isinstance(output, dict):
        raise AuthError(500, "hook_payload_invalid_content_type", "Invalid payload sent to hook")
    if isinstance(error := output.get("error"), dict):
        status = error.get("http_code") if isinstance(error.get("http_code"), int) else 400
        raise AuthError(status, "unexpected_failure", str(error.get("message") or "Error running hook URI"))
    returned = output.get("claims")
    if not isinstance(returned, dict) or any(claim not in returned for claim in REQUIRED_CLAIMS):
        raise AuthError(500, "unexpected_failure", "output claims do not conform to the expected schema")
    return returned


# kind -> (the token column, its sent-at column)
LINK_COLUMNS = {
    "signup": ("confirmation_token", "confirmation_sent_at"),
    "recovery": ("recovery_token", "recovery_sent_at"),
    "email_change": ("email_change_token_new", "email_change_sent_at"),
}


def quote_component(value: str) -> str:
    return quote(value, safe="")


def user_json(user: dict[str, Any], identities: list[dict[str, Any]]) -> dict[str, Any]:
    """GoTrue's user object (models.User's JSON: optional times left out when unset)."""
    body: dict[str, Any] = {
        "id": str(user["id"]),
        "aud": user["aud"] or "",
        "role": user["role"] or "",
        "email": user["email"] or "",
        "phone": user["phone"] or "",
    }
    for column, key in (
        ("email_confirmed_at", "email_confirmed_at"),
        ("phone_confirmed_at", "phone_confirmed_at"),
        ("confirmation_sent_at", "confirmation_sent_at"),
        ("confirmed_at", "confirmed_at"),
        ("recovery_sent_at", "recovery_sent_at"),
        ("email_change_sent_at", "email_change_sent_at"),
        ("last_sign_in_at", "last_sign_in_at"),
        ("invited_at", "invited_at"),
    ):
        if user.get(column) is not None:
            body[key] = timestamp(user[column])
    if user.get("email_change"):
        body["new_email"] = user["email_change"]
    body["app_metadata"] = user["raw_app_meta_data"] or {}
    body["user_metadata"] = user["raw_user_meta_data"] or {}
    body["identities"] = [identity_json(identity) for identity in identities]
    body["created_at"] = timestamp(user["created_at"])
    body["updated_at"] = timestamp(user["updated_at"])
    if user.get("banned_until") is not None:
        body["banned_until"] = timestamp(user["banned_until"])
    body["is_anonymous"] = bool(user["is_anonymous"])
    return body


def identity_json(identity: dict[str, Any]) -> dict[str, Any]:
    body = {
        "identity_id": str(identity["id"]),
        "id": identity["provider_id"],
        "user_id": str(identity["user_id"]),
        "identity_data": identity["identity_data"] or {},
        "provider": identity["provider"],
        "last_sign_in_at": timestamp(identity["last_sign_in_at"]),
        "created_at": timestamp(identity["created_at"]),
        "updated_at": timestamp(identity["updated_at"]),
    }
    if identity.get("email"):
        body["email"] = identity["email"]
    return body
