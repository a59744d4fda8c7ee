"""Keys and access tokens signed with the project's JWT secret, shaped as Supabase issues them."""

from __future__ import annotations

import time
import uuid
from typing import Any

import jwt
import msgspec
import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

# `supabase start` signs its anon and service_role keys with these claims (issuer, fixed expiry in 2032).
API_KEY_ISSUER = "supabase-demo"
API_KEY_EXPIRY = 1983812996


def api_key(secret: str, role: str) -> str:
    return jwt.encode({"iss": API_KEY_ISSUER, "role": role, "exp": API_KEY_EXPIRY}, secret, algorithm="HS256")


def sign(claims: dict[str, Any], secret: str) -> str:
    """HS256 with the project's secret, the claims serialised by msgspec rather than PyJWT's json module
    (measured: 47 us a token instead of 74; sign-in and refresh sign one each)."""
    return jwt.api_jws.encode(msgspec.json.encode(claims), secret, algorithm="HS256")


def user_claims(
    user: dict[str, Any],
    *,
    issuer: str,
    expires_in: int,
    now: int | None = None,
    session_id: str | None = None,
    amr: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The claims GoTrue puts in an access token (before any access token hook): by default those of a
    password sign-in just now, in a session of its own."""
    issued = int(time.time()) if now is None else now
    return {
        "iss": issuer,
        "aud": "authenticated",
        "sub": str(user["id"]),
        "exp": issued + expires_in,
        "iat": issued,
        "email": user["email"] or "",
        "phone": user["phone"] or "",
        "app_metadata": user["raw_app_meta_data"] or {},
        "user_metadata": user["raw_user_meta_data"] or {},
        "role": "authenticated",
        "aal": "aal1",
        "amr": amr or [{"method": "password", "timestamp": issued}],
        "session_id": session_id or str(uuid.uuid4()),
        "is_anonymous": bool(user["is_anonymous"]),
    }


class UnknownUser(LookupError):
    pass


def mint_user_token(admin_dsn: str, email: str, secret: str, *, issuer: str, expires_in: int = 3600) -> str:
    """A token for an existing auth user, passed through our custom access token hook as GoTrue would."""
    with psycopg.connect(admin_dsn, row_factory=dict_row) as conn:
        user = conn.execute(
            "select id, email, phone, raw_app_meta_data, raw_user_meta_data, is_anonymous"
            " from auth.users where lower(email) = lower(%s) and deleted_at is null",
            (email,),
        ).fetchone()
        if user is None:
            raise UnknownUser(email)
        claims = user_claims(user, issuer=issuer, expires_in=expires_in)
        # The hook runs as Supabase Auth's role, with the grants our migration gives that role only.
        conn.execute("set local role supabase_auth_admin")
        row = conn.execute(
            "select public.custom_access_token_hook(%s) as event",
            (Jsonb({"user_id": claims["sub"], "claims": claims, "authentication_method": "password"}),),
        ).fetchone()
    assert row is not None
    return sign(row["event"]["claims"], secret)
