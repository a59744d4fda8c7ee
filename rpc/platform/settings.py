"""Settings, read once from the environment (and `.env`); every field is documented in `.env.example`."""

from __future__ import annotations

import ipaddress
import os
from functools import lru_cache
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg
from psycopg.conninfo import conninfo_to_dict
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

# The supabase CLI's local secret: with it the anon and service_role keys are the ones `supabase start` prints.
SUPABASE_CLI_JWT_SECRET = "super-secret-jwt-token-with-at-least-32-characters-long"  # noqa: S105 (public)
# And its local API keys of the newer kind, which its gateway turns into the anon and service_role keys.
SUPABASE_CLI_PUBLISHABLE_KEY = "sb_publishable_ACJWlzQHlZjBrEguHvfOxg_3BJgxAaH"
SUPABASE_CLI_SECRET_KEY = "sb_secret_N7UND0UgjKTVK-Uodkm0Hg_xSvEMPvz"  # noqa: S105 (public)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", env_ignore_empty=True)

    # Database. Empty DATABASE_URL means the embedded local stack.
    database_url: SecretStr | None = None
    api_database_url: SecretStr | None = None
    authenticator_password: SecretStr = SecretStr("postgres")
    data_dir: Path = Path(".data")
    db_host: str = "127.0.0.1"
    db_port: int = 54322
    pg_version: int = Field(16, description="16 is closest to Supabase's 15/17; 18 is a setting away")

    # Pool and statements.
    db_pool_min: int = 1
    db_pool_max: int = 10
    db_pool_timeout_s: float = 10.0
    statement_timeout_ms: int = 8000

    # The API.
    api_host: str = "127.0.0.1"
    api_port: int = 54321
    public_url: str | None = None
    cors_origins: list[str] = ["*"]
    rate_limit_per_minute: int = 600
    log_level: str = "INFO"
    log_json: bool = True
    run_worker: bool = True

    # The local stack's REST API: PostgREST behind /rest/v1 (Supabase's gateway does this in production).
    rest_api: bool | None = Field(None, description="None: on with the embedded database")
    postgrest_bin: Path | None = None
    postgrest_port: int = Field(0, description="0: a free loopback port")
    rest_schemas: str = "public"
    rest_max_rows: int = 1000
    rest_db_pool: int = 10
    # The local stack's Storage API (/storage/v1), over storage.buckets and storage.objects.
    storage_api: bool | None = Field(None, description="None: on with the embedded database")
    storage_dir: Path | None = Field(None, description="None: DATA_DIR/storage")
    # The local stack's Auth API (/auth/v1, GoTrue's contract over auth.users and its sessions).
    auth_api: bool | None = Field(None, description="None: on with the embedded database")
    # The supabase CLI's config.toml the local stack honours ([auth], [storage]); None: supabase/config.toml.
    supabase_config: Path | None = None

    # AI provider: the OpenAI SDK, or any OpenAI-compatible server through OPENAI_BASE_URL. Without a key,
    # the AI features are off.
    openai_api_key: SecretStr | None = None
    openai_base_url: str | None = None
    openai_timeout_s: float = 30.0
    openai_max_retries: int = Field(2, ge=0, description="the SDK's retries of 429s, 5xx and timeouts")
    chat_model: str = "gpt-4o-mini"
    structured_model: str = "gpt-4o-mini"
    embeddings_model: str = "text-embedding-3-small"
    ai_daily_tokens_per_user: int = Field(200_000, ge=0, description="0: no limit")

    # Email: SMTP (empty host: messages go to the log and stay in the outbox as delivered-to-console).
    smtp_host: str | None = None
    smtp_port: int = 587
    smtp_tls: str = Field("starttls", pattern="^(starttls|tls|none)$")
    smtp_user: str | None = None
    smtp_password: SecretStr | None = None
    smtp_timeout_s: float = 15.0
    email_from: str = "Talentbase <no-reply@talentbase.local>"
    product_name: str = "Talentbase"
    app_url: str = "http://localhost:3000"

    # Supabase auth.
    supabase_url: str | None = None
    supabase_jwt_secret: SecretStr = SecretStr(SUPABASE_CLI_JWT_SECRET)
    supabase_publishable_key: str = SUPABASE_CLI_PUBLISHABLE_KEY
    supabase_secret_key: SecretStr = SecretStr(SUPABASE_CLI_SECRET_KEY)
    jwt_audience: str = "authenticated"
    jwt_leeway_s: int = 10
    jwks_cache_s: int = 600
    token_cache_size: int = 10_000

    def public_secrets(self) -> list[str]:
        """The settings still holding the supabase CLI's published local values, which anyone can sign with."""
        defaults = {
            "SUPABASE_JWT_SECRET": (self.supabase_jwt_secret, SUPABASE_CLI_JWT_SECRET),
            "SUPABASE_SECRET_KEY": (self.supabase_secret_key, SUPABASE_CLI_SECRET_KEY),
        }
        return [name for name, (value, public) in defaults.items() if value.get_secret_value() == public]

    @property
    def embedded(self) -> bool:
        return self.database_url is None

    @property
    def rest_enabled(self) -> bool:
        return self.embedded if self.rest_api is None else self.rest_api

    @property
    def storage_enabled(self) -> bool:
        return self.embedded if self.storage_api is None else self.storage_api

    @property
    def auth_enabled(self) -> bool:
        return self.embedded if self.auth_api is None else self.auth_api

    @property
    def project_url(self) -> str:
        """Where the project's APIs answer (/storage/v1, /auth/v1): Supabase's URL, else the local stack's."""
        return (self.supabase_url or self.api_url).rstrip("/")

    @property
    def api_url(self) -> str:
        return self.public_url or f"http://{self.api_host}:{self.api_port}"

    @property
    def admin_dsn(self) -> str:
        """Where migrations and the worker connect: `postgres`, as the supabase CLI does."""
        if self.database_url is not None:
            return self.database_url.get_secret_value()
        return f"postgresql://postgres:postgres@{self.db_host}:{self.db_port}/postgres"

    @property
    def api_dsn(self) -> str:
        """Where the request pool connects: `authenticator`, as PostgREST does, so it has no privileges of its own."""
        if self.api_database_url is not None:
            return self.api_database_url.get_secret_value()
        return with_login(self.admin_dsn, "authenticator", self.authenticator_password.get_secret_value())

    @property
    def jwks_url(self) -> str | None:
        return f"{self.supabase_url.rstrip('/')}/auth/v1/.well-known/jwks.json" if self.supabase_url else None


def with_login(dsn: str, user: str, password: str) -> str:
    """The same database URL logged in as another role."""
    parts = urlsplit(dsn)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{quote(user, safe='')}:{quote(password, safe='')}@{host}"
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc))


def with_database(dsn: str, database: str) -> str:
    return urlunsplit(urlsplit(dsn)._replace(path=f"/{database}"))


LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1"})


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 or localhost: reachable from this machine only."""
    if host in LOOPBACK:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def is_local_dsn(dsn: str) -> bool:
    """Whether a DSN (a URL or libpq's key=value form) reaches this machine only: every `host` and
    `hostaddr` (or PGHOST/PGHOSTADDR, which libpq falls back to) a loopback address or a Unix socket
    directory (libpq's default when there is no host at all)."""
    try:
        params = conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        return False
    hosts = [
        *(params.get("host") or os.environ.get("PGHOST") or "").split(","),
        *(params.get("hostaddr") or os.environ.get("PGHOSTADDR") or "").split(","),
    ]
    return all(not host or host.startswith("/") or is_loopback(host) for host in hosts)


@lru_cache
def get_settings() -> Settings:
    return Settings()
