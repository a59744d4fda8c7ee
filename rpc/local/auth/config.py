"""`[auth]` of supabase/config.toml, as the supabase CLI hands it to GoTrue."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rpc.local.config import supabase_config

# The CLI's `password_requirements`, as the character sets GoTrue's GOTRUE_PASSWORD_REQUIRED_CHARACTERS gets.
LOWER, UPPER, DIGITS = "abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ", "0123456789"
SYMBOLS = "!@#$%^&*()_+-=[]{};'\\:\"|<>?,./`~"
REQUIREMENTS = {
    "": (),
    "letters_digits": (LOWER + UPPER, DIGITS),
    "lower_upper_letters_digits": (LOWER, UPPER, DIGITS),
    "lower_upper_letters_digits_symbols": (LOWER, UPPER, DIGITS, SYMBOLS),
}


@dataclass(frozen=True)
class RateLimits:
    sign_in_sign_ups: int = 30  # per 5 minutes and client address
    token_refresh: int = 150  # per 5 minutes and client address
    email_sent: int | None = None  # per hour, all addresses together; only with [auth.email.smtp] enabled


@dataclass(frozen=True)
class AuthConfig:
    site_url: str = "http://127.0.0.1:3000"
    additional_redirect_urls: tuple[str, ...] = ()
    jwt_expiry: int = 3600
    enable_signup: bool = True
    enable_refresh_token_rotation: bool = True
    refresh_token_reuse_interval: int = 10
    minimum_password_length: int = 6
    required_characters: tuple[str, ...] = ()
    email_enabled: bool = True
    enable_confirmations: bool = False
    otp_length: int = 6
    otp_expiry: int = 3600
    access_token_hook: str | None = None  # `schema.function` of a pg-functions:// hook, when enabled
    rate_limits: RateLimits = RateLimits()

    @classmethod
    def from_toml(cls, path: Path | None = None) -> AuthConfig:
        auth: dict[str, Any] = supabase_config(path).get("auth", {})
        email = auth.get("email", {})
        hook = auth.get("hook", {}).get("custom_access_token", {})
        limits = auth.get("rate_limit", {})
        requirements = auth.get("password_requirements", "")
        if requirements not in REQUIREMENTS:
            raise ValueError(f"[auth] password_requirements = {requirements!r} is not one the CLI knows")
        return cls(
            site_url=auth.get("site_url", cls.site_url),
            additional_redirect_urls=tuple(auth.get("additional_redirect_urls", ())),
            jwt_expiry=int(auth.get("jwt_expiry", cls.jwt_expiry)),
            enable_signup=bool(auth.get("enable_signup", cls.enable_signup)),
            enable_refresh_token_rotation=bool(
                auth.get("enable_refresh_token_rotation", cls.enable_refresh_token_rotation)
            ),
            refresh_token_reuse_interval=int(
                auth.get("refresh_token_reuse_interval", cls.refresh_token_reuse_interval)
            ),
            minimum_password_length=int(auth.get("minimum_password_length", cls.minimum_password_length)),
            required_characters=REQUIREMENTS[requirements],
            email_enabled=bool(email.get("enabled", cls.email_enabled)),
            enable_confirmations=bool(email.get("enable_confirmations", cls.enable_confirmations)),
            otp_length=int(email.get("otp_length", cls.otp_length)),
            otp_expiry=int(email.get("otp_expiry", cls.otp_expiry)),
            access_token_hook=hook_function(hook.get("uri", "")) if hook.get("enabled") else None,
            rate_limits=RateLimits(
                sign_in_sign_ups=int(limits.get("sign_in_sign_ups", RateLimits.sign_in_sign_ups)),
                token_refresh=int(limits.get("token_refresh", RateLimits.token_refresh)),
                email_sent=int(limits.get("email_sent", 2)) if email.get("smtp", {}).get("enabled") else None,
            ),
        )


def hook_function(uri: str) -> str:
    """`pg-functions://postgres/public/custom_access_token_hook` -> `public.custom_access_token_hook`."""
    prefix = "pg-functions://"
    parts = uri.removeprefix(prefix).split("/")
    if not uri.startswith(prefix) or len(parts) != 3 or not all(parts):
        raise ValueError(
            f"[auth.hook.custom_access_token] uri = {uri!r} is not pg-functions://<db>/<schema>/<name>"
        )
    return f"{parts[1]}.{parts[2]}"
