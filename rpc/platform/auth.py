"""Supabase access tokens and API keys -> Caller.

HS256 tokens are checked with the project's JWT secret; ES256/RS256 ones with the project's JWKS
(fetched once, cached, refetched when a token names an unknown `kid`). A verified token is remembered
(bounded, keyed by the whole token, until its `exp`) because verification is the largest per-request cost.
The newer API keys (`sb_publishable_...`, `sb_secret_...`) are not tokens: the project's two stand for
anon and service_role, as Supabase's gateway turns them into those roles' keys.
"""

from __future__ import annotations

import hmac
import json
import re
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import httpx
import jwt

from rpc.platform.errors import ApiError

API_ROLES = frozenset({"anon", "authenticated", "service_role"})
# A user id as GoTrue writes it (and the only text form every uuid parser agrees on).
UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
API_KEY_PREFIX = "sb_"
ASYMMETRIC = frozenset({"ES256", "RS256"})
MAX_TOKEN_BYTES = 16 * 1024


def unauthorized(message: str, code: str = "missing_or_invalid_authorization") -> ApiError:
    return ApiError(401, code, message, headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})


@dataclass(frozen=True, slots=True)
class Caller:
    role: str
    claims: dict[str, Any]
    user_id: str | None = None
    email: str | None = field(default=None, repr=False)
    # What `request.jwt.claims` is set to; serialised once per verified token, not once per query.
    claims_json: str = field(default="", repr=False)

    def __post_init__(self) -> None:
        if not self.claims_json:
            object.__setattr__(self, "claims_json", json.dumps(self.claims, separators=(",", ":")))


class TokenCache:
    """Verified tokens until their expiry; least recently used dropped first."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._entries: OrderedDict[str, tuple[float, Caller]] = OrderedDict()

    def get(self, token: str, now: float) -> Caller | None:
        entry = self._entries.get(token)
        if entry is None:
            return None
        expires, caller = entry
        if now >= expires:
            del self._entries[token]
            return None
        self._entries.move_to_end(token)
        return caller

    def put(self, token: str, expires: float, caller: Caller) -> None:
        self._entries[token] = (expires, caller)
        self._entries.move_to_end(token)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)


class TokenVerifier:
    def __init__(
        self,
        secret: str,
        *,
        audience: str = "authenticated",
        leeway_s: int = 10,
        jwks_url: str | None = None,
        jwks_cache_s: int = 600,
        jwks_refetch_s: float = 30,
        cache_size: int = 10_000,
        api_keys: dict[str, str] | None = None,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self.secret = secret
        self.audience = audience
        self.leeway_s = leeway_s
        self.jwks_url = jwks_url
        self.jwks_cache_s = jwks_cache_s
        # Unknown kids could make us fetch on every request: once the keys were fetched, at most one
        # fetch per this many seconds.
        self.jwks_refetch_s = jwks_refetch_s
        self.cache = TokenCache(cache_size)
        # API key -> the caller it stands for (`{publishable: "anon", secret: "service_role"}`).
        self.api_keys = {
            key: Caller(role=role, claims={"role": role}) for key, role in (api_keys or {}).items() if key
        }
        self._http = http
        self._keys: dict[str, jwt.PyJWK] = {}
        self._keys_fetched_at: float | None = None  # last successful fetch (None: never)
        self._keys_tried_at: float | None = None  # last attempt, successful or not

    def cached(self, token: str) -> Caller | None:
        return self.cache.get(token, time.time())

    async def verify(self, authorization: str | None) -> Caller:
        """The caller behind an Authorization header, or an ApiError (401/403/503)."""
        token = bearer_token(authorization)
        caller = self.cache.get(token, time.time())
        if caller is not None:
            return caller
        if token.startswith(API_KEY_PREFIX):
            return self._api_key(token)
        header = self._header(token)
        alg = header.get("alg")
        if alg == "HS256":
            return self._verify(token, self.secret, alg)
        # The header is unverified input: `alg` may be any JSON value, and a list is not hashable.
        if isinstance(alg, str) and alg in ASYMMETRIC:
            return self._verify(token, await self._jwk(header.get("kid"), alg), alg)
        raise unauthorized(f"tokens signed with {alg!r} are not accepted", "invalid_token")

    def _api_key(self, key: str) -> Caller:
        # Compared in constant time: the secret key is a password.
        for known, caller in self.api_keys.items():
            if hmac.compare_digest(key.encode(), known.encode()):
                return caller
        raise unauthorized("the API key is not this project's", "invalid_token")

    def _verify(self, token: str, key: Any, alg: str) -> Caller:
        claims = self._decode(token, key, alg)
        caller = self._caller(claims)
        # Remembered until exp (leeway included), exactly as long as jwt.decode would accept it.
        self.cache.put(token, float(claims["exp"]) + self.leeway_s, caller)
        return caller

    @staticmethod
    def _header(token: str) -> dict[str, Any]:
        try:
            return jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise unauthorized("the bearer token is not a JWT", "invalid_token") from exc

    def _decode(self, token: str, key: Any, alg: str) -> dict[str, Any]:
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[alg],
                leeway=self.leeway_s,
                options={"require": ["exp", "role"], "verify_aud": False},
            )
        except jwt.ExpiredSignatureError as exc:
            raise unauthorized("the token has expired", "token_expired") from exc
        except jwt.ImmatureSignatureError as exc:
            raise unauthorized("the token is not valid yet", "invalid_token") from exc
        except jwt.PyJWTError as exc:
            raise unauthorized(f"the token was refused: {exc}", "invalid_token") from exc
        return claims

    def _caller(self, claims: dict[str, Any]) -> Caller:
        role = claims.get("role")
        # Any JSON value may be signed here; a list or object is not hashable, so check the type first.
        if not isinstance(role, str) or role not in API_ROLES:
            raise ApiError(403, "insufficient_role", f"role {role!r} may not call functions")
        # The anon and service_role keys carry no audience; user tokens must carry ours.
        audience = claims.get("aud")
        audiences = audience if isinstance(audience, list) else [audience]
        if (role == "authenticated" or audience is not None) and self.audience not in audiences:
            raise unauthorized("the token is for another audience", "invalid_token")
        sub = claims.get("sub")
        if role == "authenticated" and not (isinstance(sub, str) and sub):
            raise unauthorized("a user token must name its user (sub)", "invalid_token")
        # auth.uid() casts `sub` to uuid in every policy: anything else would fail in Postgres instead.
        if sub is not None and not (isinstance(sub, str) and UUID.fullmatch(sub)):
            raise unauthorized("the token's user (sub) is not a user id", "invalid_token")
        return Caller(
            role=role,
            claims=claims,
            user_id=sub if role == "authenticated" else None,
            email=claims.get("email"),
        )

    async def _jwk(self, kid: str | None, alg: str) -> jwt.PyJWK:
        if self.jwks_url is None:
            raise unauthorized(
                f"{alg} tokens need SUPABASE_URL for the project's signing keys", "invalid_token"
            )
        fetched = self._keys_fetched_at
        stale = fetched is None or time.monotonic() - fetched > self.jwks_cache_s
        if stale or kid not in self._keys:
            await self._refresh_keys()
        jwk = self._keys.get(kid or "")
        if jwk is None or jwk.algorithm_name != alg:
            raise unauthorized("the token's signing key is unknown", "invalid_token")
        return jwk

    async def _refresh_keys(self) -> None:
        now = time.monotonic()
        # Throttled once a fetch has succeeded (even an empty set: projects on the legacy secret publish
        # `{"keys": []}`). Before that every attempt retries, so an outage at startup heals at once.
        if (
            self._keys_fetched_at is not None
            and self._keys_tried_at is not None
            and now - self._keys_tried_at < self.jwks_refetch_s
        ):
            return
        self._keys_tried_at = now
        http = self._http or httpx.AsyncClient(timeout=5)
        try:
            response = await http.get(self.jwks_url)  # type: ignore[arg-type]
            response.raise_for_status()
            keys = _jwks(response.json())
        except (httpx.HTTPError, ValueError) as exc:
            if self._keys_fetched_at is None:
                raise ApiError(
                    503, "auth_unavailable", "the project's signing keys could not be fetched"
                ) from exc
            return  # keep the keys we have
        finally:
            if self._http is None:
                await http.aclose()
        self._keys = keys
        self._keys_fetched_at = time.monotonic()


def _jwks(document: Any) -> dict[str, jwt.PyJWK]:
    """The usable signing keys of a JWKS document, by kid; ValueError if it is not a JWKS at all."""
    keys = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(keys, list):
        raise ValueError("not a JWK set")
    if not keys:
        return {}
    try:
        keyset = jwt.PyJWKSet(keys)
    except jwt.PyJWTError as exc:  # no usable key in it
        raise ValueError(str(exc)) from exc
    return {k.key_id: k for k in keyset.keys if k.key_id}


def gateway_authorization(authorization: str | None, apikey: str | None) -> str | None:
    """The Authorization a request gets past Supabase's gateway: its own, unless it is missing or carries
    an API key (`Bearer sb_...`, what supabase-js sends without a session); then the `apikey` header's."""
    if authorization and not authorization.startswith(f"Bearer {API_KEY_PREFIX}"):
        return authorization
    return f"Bearer {apikey}" if apikey else authorization


def bearer_token(authorization: str | None) -> str:
    if not authorization:
        raise unauthorized("send Authorization: Bearer <access token>")
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise unauthorized("send Authorization: Bearer <access token>")
    if len(token) > MAX_TOKEN_BYTES:
        raise unauthorized("the bearer token is too large", "invalid_token")
    return token
