"""`/auth/v1`: the part of GoTrue's HTTP API that supabase-js's and supabase-py's auth clients call.

Routes, bodies, answers and error codes follow supabase/auth's `internal/api` (signup.go, token.go,
user.go, logout.go, recover.go, verify.go, admin.go, settings.go). Handlers parse their own JSON so that
every refusal has GoTrue's shape (errors.py), never Litestar's.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import msgspec
import psycopg
import psycopg_pool
from litestar import Request, Response, Router, delete, get, post, put
from litestar.di import NamedDependency, Provide
from litestar.exceptions import HTTPException
from litestar.params import FromPath
from litestar.response import Redirect
from psycopg import sql

from rpc.local.auth import errors
from rpc.local.auth.config import AuthConfig
from rpc.local.auth.errors import (
    AuthError,
    bad_request,
    invalid_credentials,
    unprocessable,
    validation_failed,
)
from rpc.local.auth.passwords import Hasher, check_strength
from rpc.local.auth.service import (
    LINK_COLUMNS,
    PKCE_PREFIX,
    AuthService,
    Challenge,
    Connection,
    now,
    token_hash,
    user_json,
)
from rpc.platform.auth import Caller, TokenVerifier
from rpc.platform.errors import ApiError
from rpc.platform.web import RateLimiter

log = logging.getLogger(__name__)

# GoTrue's validateEmail (checkmail's format): a local part, an @, a domain (`localhost` too); at most 255
# characters.
EMAIL = re.compile(
    r"^[a-zA-Z0-9.!#$%&'*+/=?^_`{|}~-]+@[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$"
)
MAX_BODY_BYTES = 64 * 1024
LOGOUT_SCOPES = ("global", "local", "others")
# How a session began, as GoTrue names it in amr and the hook's `authentication_method`.
METHODS = {"signup": "otp", "recovery": "recovery", "email_change": "email_change"}
VERIFY_TYPES = ("signup", "recovery", "email_change", "email", "magiclink")


@dataclass
class Auth:
    """What the handlers share: the config, the store, the hasher, the token verifier and rate limits."""

    config: AuthConfig
    service: AuthService
    hasher: Hasher
    verifier: TokenVerifier
    sign_ins: RateLimiter
    refreshes: RateLimiter
    emails: RateLimiter | None

    def limit(self, limiter: RateLimiter | None, key: str) -> None:
        if limiter is not None and limiter.hit(key, time.time()):
            raise errors.rate_limited()

    async def caller(self, request: Request[Any, Any, Any], *, user: bool = True) -> Caller:
        """Who sent a request (GoTrue's requireAuthentication): a signed-in user, or with `user=False` any
        valid token or key (the admin routes then ask for the service role)."""
        authorization = request.headers.get("authorization")
        if not authorization:
            raise AuthError(401, "no_authorization", "This endpoint requires a valid Bearer token")
        try:
            caller = await self.verifier.verify(authorization)
        except ApiError as exc:
            raise AuthError(
                403, "bad_jwt", f"invalid JWT: unable to parse or verify signature, {exc.message}"
            ) from None
        if user and not caller.claims.get("sub"):
            raise AuthError(403, "bad_jwt", "invalid claim: missing sub claim")
        return caller

    async def signed_in(
        self, request: Request[Any, Any, Any], conn: Connection
    ) -> tuple[Caller, dict[str, Any]]:
        """The caller and their user row (locked), their session still alive."""
        caller = await self.caller(request)
        user = await self.service.user_by_id(conn, caller.claims["sub"], lock=True)
        if user is None:
            raise AuthError(403, "user_not_found", "User from sub claim in JWT does not exist")
        await self.require_session(conn, caller)
        return caller, user

    async def require_session(self, conn: Connection, caller: Caller) -> None:
        """The caller's session (the token's session_id) still alive: ended sessions' tokens act no more."""
        session_id = caller.claims.get("session_id")
        if session_id and not await self.service.session_exists(conn, session_id):
            raise AuthError(403, "session_not_found", "Session from session_id claim in JWT does not exist")

    async def refuse_taken_email(self, conn: Connection, email: str, user_id: Any = None) -> None:
        """GoTrue's email_exists: the address belongs to a user (other than `user_id`)."""
        taken = await self.service.user_by_email(conn, email)
        if taken is not None and taken["id"] != user_id:
            raise unprocessable("email_exists", "A user with this email address has already been registered")

    def admin(self, caller: Caller) -> None:
        if caller.role != "service_role":
            raise AuthError(403, "not_admin", "User not allowed")

    def redirect_target(self, requested: str | None) -> str:
        """GoTrue's rule: the site URL, or a requested URL on the allow list (exact, or matching its glob)."""
        if requested:
            for allowed in (self.config.site_url, *self.config.additional_redirect_urls):
                pattern = re.escape(allowed).replace(r"\*\*", ".*").replace(r"\*", "[^/]*")
                if requested == allowed or re.fullmatch(pattern + r"(/.*)?", requested):
                    return requested
        return self.config.site_url


async def body(request: Request[Any, Any, Any]) -> dict[str, Any]:
    raw = await request.body()
    if len(raw) > MAX_BODY_BYTES:
        raise bad_request("request_too_large", "Request body too large")
    if not raw:
        return {}
    try:
        value = msgspec.json.decode(raw)
    except msgspec.DecodeError:
        raise bad_request("bad_json", "Could not parse request body as JSON") from None
    if not isinstance(value, dict):
        raise bad_request("bad_json", "Could not parse request body as JSON: expected an object")
    return value


def text(values: dict[str, Any], key: str) -> str:
    value = values.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise bad_request("bad_json", f"Could not read '{key}': expected a string")
    return value


def mapping(values: dict[str, Any], key: str) -> dict[str, Any] | None:
    value = values.get(key)
    if value is not None and not isinstance(value, dict):
        raise bad_request("bad_json", f"Could not read '{key}': expected an object")
    return value


def valid_email(email: str) -> str:
    if not email:
        raise validation_failed("An email address is required")
    if len(email) > 255:
        raise validation_failed("An email address is too long")
    if not EMAIL.match(email):
        raise validation_failed("Unable to validate email address: invalid format")
    return email.lower()


def client_address(request: Request[Any, Any, Any]) -> str:
    return request.client.host if request.client else "unknown"


def agent(request: Request[Any, Any, Any]) -> str | None:
    return request.headers.get("user-agent")


def confirmed(user: dict[str, Any]) -> bool:
    return user["email_confirmed_at"] is not None


def banned(user: dict[str, Any]) -> bool:
    return user["banned_until"] is not None and user["banned_until"] > now()


# -- sign-up and sign-in ---------------------------------------------------------------------------------


@post("/signup", status_code=200)
async def signup(request: Request[Any, Any, Any], auth: NamedDependency[Auth]) -> dict[str, Any]:
    auth.limit(auth.sign_ins, client_address(request))
    config = auth.config
    if not config.enable_signup:
        raise unprocessable("signup_disabled", "Signups not allowed for this instance")
    values = await body(request)
    if text(values, "phone") and not text(values, "email"):
        raise bad_request("phone_provider_disabled", "Phone signups are disabled")
    if not config.email_enabled:
        raise bad_request("email_provider_disabled", "Email signups are disabled")
    email = valid_email(text(values, "email"))
    password = text(values, "password")
    if not password:
        raise validation_failed("Signup requires a valid password")
    check_strength(config, password)
    data = mapping(values, "data") or {}
    password_hash = await auth.hasher.hash(password)
    async with auth.service.transaction() as conn:
        existing = await auth.service.user_by_email(conn, email, lock=True)
        if existing is not None and confirmed(existing):
            if not config.enable_confirmations:
                raise unprocessable("user_already_exists", "User already registered")
            # With confirmations on, GoTrue answers as for a new address, so sign-up tells nobody who exists.
            return obfuscated_user(email, data)
        user = existing or await auth.service.create_user(
            conn,
            email=email,
            password_hash=password_hash,
            user_metadata=data,
            confirmed=not config.enable_confirmations,
        )
        if config.enable_confirmations:
            auth.limit(auth.emails, "all")
            await email_link(request, auth, conn, user, "signup", email, values)
            fresh = await auth.service.user_by_id(conn, str(user["id"]))
            assert fresh is not None
            return await auth.service.user_json(conn, fresh)
        return await auth.service.start_session(
            conn, user, "password", user_agent=agent(request), ip=client_address(request)
        )


def obfuscated_user(email: str, data: dict[str, Any]) -> dict[str, Any]:
    """What GoTrue's sanitizeUser shows for an address that is taken: a user that looks new."""
    moment = now()
    return user_json(
        {
            "id": uuid.uuid4(),
            "aud": "authenticated",
            "role": "authenticated",
            "email": email,
            "phone": "",
            "confirmation_sent_at": moment,
            "raw_app_meta_data": {"provider": "email", "providers": ["email"]},
            "raw_user_meta_data": data,
            "created_at": moment,
            "updated_at": moment,
            "is_anonymous": False,
        },
        [],
    )


async def email_link(
    request: Request[Any, Any, Any],
    auth: Auth,
    conn: Connection,
    user: dict[str, Any],
    kind: str,
    email: str,
    values: dict[str, Any],
) -> None:
    """An email with a one-time link of `kind` (the caller counted it against the hourly email limit),
    leading where the request asked if that is allowed, in the PKCE flow when it brought a challenge."""
    await auth.service.send_link(
        conn,
        user,
        kind,
        email=email,
        redirect_to=auth.redirect_target(redirect_of(request, values)),
        pkce=Challenge.of(values),
    )


def redirect_of(request: Request[Any, Any, Any], values: dict[str, Any]) -> str | None:
    """Where an email link should lead: `redirect_to` in the query (supabase-js's emailRedirectTo)."""
    return request.query_params.get("redirect_to") or (
        values.get("redirect_to") if isinstance(values.get("redirect_to"), str) else None
    )


@post("/token", status_code=200)
async def token(request: Request[Any, Any, Any], auth: NamedDependency[Auth]) -> Response[Any]:
    grant = request.query_params.get("grant_type", "")
    if grant == "password":
        auth.limit(auth.sign_ins, client_address(request))
        return Response(await password_grant(request, auth))
    if grant == "refresh_token":
        auth.limit(auth.refreshes, client_address(request))
        return Response(await refresh_grant(request, auth))
    if grant == "pkce":
        auth.limit(auth.sign_ins, client_address(request))
        return Response(await pkce_grant(request, auth))
    raise bad_request("invalid_credentials", "unsupported_grant_type")


async def password_grant(request: Request[Any, Any, Any], auth: NamedDependency[Auth]) -> dict[str, Any]:
    values = await body(request)
    email, password = text(values, "email"), text(values, "password")
    if email and text(values, "phone"):
        raise validation_failed("Only an email address or phone number should be provided on login.")
    if not email:
        if text(values, "phone"):
            raise unprocessable("phone_provider_disabled", "Phone logins are disabled")
        raise validation_failed("missing email or phone")
    async with auth.service.pool.connection() as conn:  # one read (autocommit): no transaction around it
        user = await auth.service.user_by_email(conn, email)
    # Checked with no connection held (a storm of sign-ins must not starve refreshes of connections), and
    # whether the user exists or not: one answer, in about one time, for both.
    checked = user["encrypted_password"] if user else None
    if not await auth.hasher.check(password, checked) or user is None:
        raise invalid_credentials()
    async with auth.service.transaction() as conn:
        user = await auth.service.user_by_id(conn, str(user["id"]), lock=True)
        # The password checked is still the user's (not changed, nor the user deleted, meanwhile).
        if user is None or user["encrypted_password"] != checked:
            raise invalid_credentials()
        if banned(user):
            raise bad_request("user_banned", "User is banned")
        if not confirmed(user):
            raise bad_request("email_not_confirmed", "Email not confirmed")
        return await auth.service.start_session(
            conn, user, "password", user_agent=agent(request), ip=client_address(request)
        )


async def pkce_grant(request: Request[Any, Any, Any], auth: Auth) -> dict[str, Any]:
    """An email link's code and the verifier only its requester holds: the session (exchangeCodeForSession)."""
    values = await body(request)
    auth_code, verifier = text(values, "auth_code"), text(values, "code_verifier")
    if not auth_code or not verifier:
        raise validation_failed("invalid request: both auth code and code verifier should be non-empty")
    async with auth.service.transaction() as conn:
        user, method = await auth.service.exchange_code(conn, auth_code, verifier)
        return await auth.service.start_session(
            conn, user, method, user_agent=agent(request), ip=client_address(request)
        )


async def refresh_grant(request: Request[Any, Any, Any], auth: NamedDependency[Auth]) -> dict[str, Any]:
    refresh = text(await body(request), "refresh_token")
    if not refresh:
        raise validation_failed("refresh_token required")
    session = await auth.service.refresh(refresh)
    if session is None:  # the replay was detected and its session revoked (committed)
        raise bad_request("refresh_token_already_used", "Invalid Refresh Token: Already Used")
    return session


# -- the signed-in user -----------------------------------------------------------------------------------


@get("/user")
async def get_user(request: Request[Any, Any, Any], auth: NamedDependency[Auth]) -> dict[str, Any]:
    async with auth.service.transaction() as conn:
        _, user = await auth.signed_in(request, conn)
        return await auth.service.user_json(conn, user)


@put("/user")
async def update_user(request: Request[Any, Any, Any], auth: NamedDependency[Auth]) -> dict[str, Any]:
    values = await body(request)
    data, email, password = mapping(values, "data"), text(values, "email"), text(values, "password")
    if password:
        check_strength(auth.config, password)
    new_hash = await auth.hasher.hash(password) if password else None
    current_hash = None
    if password:
        # bcrypt with no connection or lock held: the user's hash now, compared again under the lock below.
        async with auth.service.transaction() as conn:
            _, user = await auth.signed_in(request, conn)
        current_hash = user["encrypted_password"]
        if await auth.hasher.check(password, current_hash):
            raise unprocessable("same_password", "New password should be different from the old password.")
    async with auth.service.transaction() as conn:
        caller, user = await auth.signed_in(request, conn)
        user_id = str(user["id"])
        if data is not None:
            await auth.service.merge_user_metadata(conn, user_id, data)
        if password:
            if user["encrypted_password"] != current_hash:
                raise AuthError(409, "conflict", "The password changed meanwhile; try again")
            await auth.service.set_password(conn, user_id, new_hash)
            # A new password ends every other session (GoTrue's UpdatePassword with the current session kept).
            await auth.service.end_sessions(conn, user_id, caller.claims.get("session_id"), "others")
        if email and valid_email(email) != user["email"]:
            await change_email(request, auth, conn, user, email.lower(), values)
        fresh = await auth.service.user_by_id(conn, user_id)
        assert fresh is not None
        return await auth.service.user_json(conn, fresh)


async def change_email(
    request: Request[Any, Any, Any],
    auth: Auth,
    conn: Connection,
    user: dict[str, Any],
    email: str,
    values: dict[str, Any],
) -> None:
    """As GoTrue (user.go): the new address must confirm, whether sign-up confirmations are on or not; until
    then the user shows it as `new_email`. (The link to the current address that `double_confirm_changes`
    adds is not sent.)"""
    await auth.refuse_taken_email(conn, email, user["id"])
    auth.limit(auth.emails, "all")
    await conn.execute("update auth.users set email_change = %s where id = %s", (email, user["id"]))
    await email_link(request, auth, conn, user, "email_change", email, values)


async def set_email(conn: Connection, user_id: str, email: str) -> None:
    await conn.execute(
        "update auth.users set email = %s, email_change = '', email_change_token_new = '', updated_at = now()"
        " where id = %s",
        (email, user_id),
    )
    await conn.execute(
        "update auth.identities set identity_data = identity_data || jsonb_build_object('email', %s::text),"
        " updated_at = now() where user_id = %s and provider = 'email'",
        (email, user_id),
    )


@post("/logout", status_code=204)
async def logout(request: Request[Any, Any, Any], auth: NamedDependency[Auth]) -> None:
    scope = request.query_params.get("scope", "global")
    if scope not in LOGOUT_SCOPES:
        raise validation_failed(f'Unsupported logout scope "{scope}"')
    caller = await auth.caller(request)
    async with auth.service.transaction() as conn:
        await auth.require_session(conn, caller)
        await auth.service.end_sessions(conn, caller.claims["sub"], caller.claims.get("session_id"), scope)


# -- email links ------------------------------------------------------------------------------------------


@post("/recover", status_code=200)
async def recover(request: Request[Any, Any, Any], auth: NamedDependency[Auth]) -> dict[str, Any]:
    values = await body(request)
    email = valid_email(text(values, "email"))
    auth.limit(auth.emails, "all")  # counted for unknown addresses too: the limit tells nobody who exists
    async with auth.service.transaction() as conn:
        user = await auth.service.user_by_email(conn, email, lock=True)
        if user is not None:
            await email_link(request, auth, conn, user, "recovery", email, values)
    # The same answer whether the address has an account or not.
    return {}


async def spend_token(
    conn: Connection, auth: Auth, kind: str, hashed: str
) -> tuple[dict[str, Any], str, bool]:
    """Spend a one-time token of `kind`: the user (confirmed, a new address applied), the kind it was, and
    whether it belongs to a PKCE flow. `email` (verifyOtp with the code from any email) and `magiclink`
    look in the confirmation token, then the recovery token, as GoTrue does."""
    kinds = ("signup", "recovery") if kind in ("email", "magiclink") else (kind,)
    if kinds[0] not in LINK_COLUMNS:
        raise validation_failed(f"Verify requires a verification type of {', '.join(VERIFY_TYPES)}")
    for found_kind in kinds:
        column, sent_at = LINK_COLUMNS[found_kind]
        user = await auth.service.user_by_token(conn, column, hashed)
        if user is not None:
            break
    if user is None or auth.service.expired(user[sent_at]):
        raise AuthError(403, "otp_expired", "Token has expired or is invalid")
    user_id = str(user["id"])
    await conn.execute(
        sql.SQL("update auth.users set {} = '' where id = %s").format(sql.Identifier(column)), (user_id,)
    )
    if found_kind == "email_change":
        await set_email(conn, user_id, user["email_change"])
    await auth.service.confirm_email(conn, user_id)
    fresh = await auth.service.user_by_id(conn, user_id)
    assert fresh is not None
    return fresh, found_kind, user[column].startswith(PKCE_PREFIX)


@get("/verify")
async def verify_link(request: Request[Any, Any, Any], auth: NamedDependency[Auth]) -> Redirect:
    """The link in the email: to the redirect URL with the session in the fragment (the implicit flow, which
    supabase-js reads on load), or in a PKCE flow with `?code=` to exchange; with GoTrue's error there if
    the link is spent or expired."""
    query = request.query_params
    kind, hashed = query.get("type", ""), query.get("token", "")
    target = auth.redirect_target(query.get("redirect_to"))
    try:
        async with auth.service.transaction() as conn:
            user, found_kind, pkce = await spend_token(conn, auth, kind, hashed)
            if pkce:
                code = await auth.service.issue_code(conn, str(user["id"]), found_kind)
                return Redirect(
                    f"{target}{'&' if '?' in target else '?'}{urlencode({'code': code})}", status_code=303
                )
            session = await auth.service.start_session(
                conn, user, METHODS[found_kind], user_agent=agent(request), ip=client_address(request)
            )
    except AuthError as exc:
        fragment = {"error": "access_denied", "error_code": exc.code, "error_description": exc.message}
        return Redirect(f"{target}#{urlencode(fragment)}", status_code=303)
    fragment = {
        "access_token": session["access_token"],
        "expires_at": session["expires_at"],
        "expires_in": session["expires_in"],
        "refresh_token": session["refresh_token"],
        "token_type": "bearer",
        "type": kind,
    }
    return Redirect(f"{target}#{urlencode(fragment)}", status_code=303)


@post("/verify", status_code=200)
async def verify_code(request: Request[Any, Any, Any], auth: NamedDependency[Auth]) -> dict[str, Any]:
    """supabase.auth.verifyOtp: a token hash from a link, or the email and the code from the message."""
    values = await body(request)
    kind, hashed = text(values, "type"), text(values, "token_hash")
    if not hashed:
        code, email = text(values, "token"), text(values, "email")
        if not code or not email:
            raise validation_failed("Verify requires either a token or a token hash")
        hashed = token_hash(email.lower(), code)
    async with auth.service.transaction() as conn:
        user, found_kind, _ = await spend_token(conn, auth, kind, hashed)
        return await auth.service.start_session(
            conn, user, METHODS[found_kind], user_agent=agent(request), ip=client_address(request)
        )


# -- administration (the service role) --------------------------------------------------------------------


@get("/admin/users")
async def list_users(request: Request[Any, Any, Any], auth: NamedDependency[Auth]) -> Response[Any]:
    auth.admin(await auth.caller(request, user=False))
    try:
        page = max(1, int(request.query_params.get("page") or "1"))
        per_page = min(1000, max(1, int(request.query_params.get("per_page") or "50")))
    except ValueError:
        raise validation_failed("Bad Pagination Parameters") from None
    async with auth.service.transaction() as conn:
        total, users = await auth.service.user_page(conn, per_page, (page - 1) * per_page)
    return Response(
        {"users": users, "aud": "authenticated"}, headers=paging_headers(request, page, per_page, total)
    )


def paging_headers(request: Request[Any, Any, Any], page: int, per_page: int, total: int) -> dict[str, str]:
    """GoTrue's paging: `X-Total-Count` and a `Link` with next and last pages."""
    base = str(request.url).split("?", 1)[0]
    last = max(1, -(-total // per_page))
    links = []
    if page < last:
        links.append(f'<{base}?page={page + 1}&per_page={per_page}>; rel="next"')
    links.append(f'<{base}?page={last}&per_page={per_page}>; rel="last"')
    return {"X-Total-Count": str(total), "Link": ", ".join(links)}


@post("/admin/users", status_code=200)
async def create_user(request: Request[Any, Any, Any], auth: NamedDependency[Auth]) -> dict[str, Any]:
    auth.admin(await auth.caller(request, user=False))
    values = await body(request)
    email = valid_email(text(values, "email"))
    password = text(values, "password")
    if password:
        check_strength(auth.config, password)
    password_hash = await auth.hasher.hash(password) if password else None
    async with auth.service.transaction() as conn:
        await auth.refuse_taken_email(conn, email)
        user = await auth.service.create_user(
            conn,
            email=email,
            password_hash=password_hash,
            user_metadata=mapping(values, "user_metadata") or {},
            app_metadata=mapping(values, "app_metadata"),
            confirmed=values.get("email_confirm") is True,
        )
        await ban(conn, str(user["id"]), values)
        fresh = await auth.service.user_by_id(conn, str(user["id"]))
        assert fresh is not None
        return await auth.service.user_json(conn, fresh)


async def ban(conn: Connection, user_id: str, values: dict[str, Any]) -> None:
    """`ban_duration`: a Go duration in hours ("24h"), or "none" to lift a ban."""
    duration = values.get("ban_duration")
    if duration is None:
        return
    if duration == "none":
        await conn.execute("update auth.users set banned_until = null where id = %s", (user_id,))
        return
    match = re.fullmatch(r"(\d+)h", str(duration))
    if match is None:
        raise validation_failed("invalid format for ban duration")
    await conn.execute(
        "update auth.users set banned_until = now() + make_interval(hours => %s) where id = %s",
        (int(match.group(1)), user_id),
    )


def user_id_of(value: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise AuthError(404, "user_not_found", "User not found") from None


@get("/admin/users/{user_id:str}")
async def get_user_admin(
    request: Request[Any, Any, Any], auth: NamedDependency[Auth], user_id: FromPath[str]
) -> dict[str, Any]:
    auth.admin(await auth.caller(request, user=False))
    async with auth.service.transaction() as conn:
        user = await auth.service.user_by_id(conn, user_id_of(user_id))
        if user is None:
            raise AuthError(404, "user_not_found", "User not found")
        return await auth.service.user_json(conn, user)


@put("/admin/users/{user_id:str}")
async def update_user_admin(
    request: Request[Any, Any, Any], auth: NamedDependency[Auth], user_id: FromPath[str]
) -> dict[str, Any]:
    auth.admin(await auth.caller(request, user=False))
    values = await body(request)
    password = text(values, "password")
    if password:
        check_strength(auth.config, password)
    password_hash = await auth.hasher.hash(password) if password else None
    async with auth.service.transaction() as conn:
        user = await auth.service.user_by_id(conn, user_id_of(user_id), lock=True)
        if user is None:
            raise AuthError(404, "user_not_found", "User not found")
        uid = str(user["id"])
        if (user_metadata := mapping(values, "user_metadata")) is not None:
            await auth.service.merge_user_metadata(conn, uid, user_metadata)
        if (app_metadata := mapping(values, "app_metadata")) is not None:
            await auth.service.merge_app_metadata(conn, uid, app_metadata)
        if password_hash:
            await auth.service.set_password(conn, uid, password_hash)
        if email := text(values, "email"):
            email = valid_email(email)
            await auth.refuse_taken_email(conn, email, user["id"])
            await set_email(conn, uid, email)
        if values.get("email_confirm") is True:
            await auth.service.confirm_email(conn, uid)
        await ban(conn, uid, values)
        fresh = await auth.service.user_by_id(conn, uid)
        assert fresh is not None
        return await auth.service.user_json(conn, fresh)


@delete("/admin/users/{user_id:str}", status_code=200)
async def delete_user_admin(
    request: Request[Any, Any, Any], auth: NamedDependency[Auth], user_id: FromPath[str]
) -> dict[str, Any]:
    auth.admin(await auth.caller(request, user=False))
    async with auth.service.transaction() as conn:
        cursor = await conn.execute(
            "delete from auth.users where id = %s returning id", (user_id_of(user_id),)
        )
        if await cursor.fetchone() is None:
            raise AuthError(404, "user_not_found", "User not found")
    return {}


# -- about the server -------------------------------------------------------------------------------------


@get("/settings")
async def settings(auth: NamedDependency[Auth]) -> dict[str, Any]:
    return {
        "external": {"email": auth.config.email_enabled, "phone": False, "anonymous_users": False},
        "disable_signup": not auth.config.enable_signup,
        "mailer_autoconfirm": not auth.config.enable_confirmations,
        "phone_autoconfirm": False,
        "sms_provider": "",
        "saml_enabled": False,
    }


@get("/health")
async def health() -> dict[str, Any]:
    return {
        "version": "talentbase-local",
        "name": "GoTrue",
        "description": "GoTrue is a user registration and authentication API",
    }


@get("/.well-known/jwks.json")
async def jwks() -> dict[str, Any]:
    # Tokens are signed with the project's shared secret (HS256), which a JWKS never publishes.
    return {"keys": []}


def not_found(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    return errors.render(
        request, AuthError(exc.status_code, "not_found" if exc.status_code == 404 else "unknown", exc.detail)
    )


def database_error(
    request: Request[Any, Any, Any], exc: psycopg.Error | psycopg_pool.PoolTimeout
) -> Response[Any]:
    """GoTrue's 500 for a failed query (its text stays in the log), a 503 while the database is away, and a
    400 for a value no column can hold (a NUL in a text or JSON string: refused by psycopg before it is
    sent, or by Postgres as a data exception)."""
    if isinstance(exc, psycopg.DataError):
        return errors.render(
            request, AuthError(400, "validation_failed", "A value contains a character that is not allowed")
        )
    if isinstance(exc, psycopg_pool.PoolTimeout) or getattr(exc, "sqlstate", None) is None:
        log.warning("auth: database unavailable: %s", exc)
        return errors.render(
            request, AuthError(503, "unexpected_failure", "The database is not answering; try again")
        )
    log.error("auth: database error on %s: %s", request.url.path, exc)
    return errors.render(request, AuthError(500, "unexpected_failure", "Database error"))


def auth_router(auth: Auth) -> Router:
    return Router(
        path="/auth/v1",
        route_handlers=[
            signup,
            token,
            get_user,
            update_user,
            logout,
            recover,
            verify_link,
            verify_code,
            list_users,
            create_user,
            get_user_admin,
            update_user_admin,
            delete_user_admin,
            settings,
            health,
            jwks,
        ],
        dependencies={"auth": Provide(lambda: auth, use_cache=True, sync_to_thread=False)},
        exception_handlers={
            AuthError: errors.render,
            HTTPException: not_found,
            psycopg.Error: database_error,
            psycopg_pool.PoolTimeout: database_error,
        },
        include_in_schema=False,
    )
