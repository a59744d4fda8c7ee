"""The local stack's `/auth/v1`: GoTrue's (Supabase Auth's) HTTP API over `auth.users`, `auth.identities`,
`auth.sessions` and `auth.refresh_tokens`, honouring `[auth]` of supabase/config.toml.

Real GoTrue (Go, shipped as a container image) cannot be installed here, so `python app.py` serves the
part of its contract supabase-js and supabase-py use; in production Supabase serves it. Its emails
(confirmation, recovery, email change) go through the outbox with the templates here.
"""

from __future__ import annotations

from pathlib import Path

from litestar import Router

from rpc.local.auth.api import Auth, auth_router
from rpc.local.auth.config import AuthConfig
from rpc.local.auth.passwords import Hasher
from rpc.local.auth.service import AuthService
from rpc.platform.auth import TokenVerifier
from rpc.platform.settings import Settings
from rpc.platform.web import RateLimiter

EMAIL_TEMPLATES = Path(__file__).parent / "templates" / "email"
FIVE_MINUTES, HOUR = 300, 3600


class LocalAuth:
    """/auth/v1 and what it holds open: its connections and the threads that hash passwords."""

    def __init__(self, settings: Settings, verifier: TokenVerifier) -> None:
        config = AuthConfig.from_toml(settings.supabase_config)
        self.service = AuthService(
            settings.admin_dsn,
            config,
            secret=settings.supabase_jwt_secret.get_secret_value(),
            issuer=f"{settings.api_url}/auth/v1",
            pool_size=settings.db_pool_max,
        )
        self.hasher = Hasher()
        limits = config.rate_limits
        self.router: Router = auth_router(
            Auth(
                config=config,
                service=self.service,
                hasher=self.hasher,
                verifier=verifier,
                sign_ins=RateLimiter(limits.sign_in_sign_ups, FIVE_MINUTES),
                refreshes=RateLimiter(limits.token_refresh, FIVE_MINUTES),
                emails=RateLimiter(limits.email_sent, HOUR) if limits.email_sent is not None else None,
            )
        )

    async def open(self) -> None:
        await self.service.open()

    async def close(self) -> None:
        await self.service.close()
        self.hasher.close()
