"""/auth/v1 under configs of its own, through supabase-py's auth client: confirmations on (the emails reach a
real SMTP server on 127.0.0.1 through the outbox and the app's worker, and their links and codes are used as
a user would), sign-ups closed, password rules, a short refresh token reuse interval, a sign-in rate limit;
and bad input, which gets GoTrue's errors in the shape the client asks for, never a 500.

Each config gets a server of its own (the app with /auth/v1 only; PostgREST plays no part here) on this
module's database, with its `[auth]` written from supabase/config.toml by `write_supabase_config`.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
from supabase import ClientOptions, create_client
from supabase_auth.errors import AuthImplicitGrantRedirectError, AuthWeakPasswordError

from tests.support import ANON_KEY, SERVICE_KEY, free_port, live_server, write_supabase_config
from tests.test_local_auth import (
    API_VERSION,
    HTTP,
    PASSWORD,
    auth_error,
    claims,
    client,
    email,
    refused,
    session_of,
    signed_in,
    signed_up,
)
from tests.test_platform_email import MailServer, Received

SITE_URL = "http://127.0.0.1:3000"  # supabase/config.toml's [auth] site_url


@contextmanager
def serving(
    database: Any, directory: Path, changes: dict[str, dict[str, str]], **settings: Any
) -> Iterator[str]:
    """The app with /auth/v1 on `changes` to config.toml; its public URL is where it listens, so emailed links
    lead back to it."""
    from app import create_app

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    config = write_supabase_config(directory, changes)
    app = create_app(
        database.settings(
            rest_api=False,
            storage_api=False,
            auth_api=True,
            supabase_config=config,
            public_url=url,
            **settings,
        )
    )
    with live_server(app, port=port):
        yield url


def admin_created(url: str, password: str = PASSWORD) -> str:
    """A confirmed user made with the service key (neither a sign-up nor a sign-in: no limit counts it)."""
    address = email()
    client(url, SERVICE_KEY).auth.admin.create_user(
        {"email": address, "password": password, "email_confirm": True}
    )
    return address


# Confirmations on, the emails through SMTP --------------------------------------------------------------


@pytest.fixture(scope="module")
def smtp() -> Iterator[MailServer]:
    server = MailServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def confirming(database, smtp, tmp_path_factory) -> Iterator[str]:
    with serving(
        database,
        tmp_path_factory.mktemp("confirming"),
        # One link for an email change (GoTrue's secure change, on by default, asks both addresses).
        {"auth.email": {"enable_confirmations": "true", "double_confirm_changes": "false"}},
        run_worker=True,
        smtp_host="127.0.0.1",
        smtp_port=smtp.port,
        smtp_tls="none",
        smtp_timeout_s=5,
    ) as url:
        yield url


def mail_to(smtp: MailServer, address: str) -> Received:
    """The message to `address`, once the worker has sent it."""
    deadline = time.monotonic() + 20
    while not smtp.to(address):
        assert time.monotonic() < deadline, f"no message to {address} in 20 s"
        time.sleep(0.05)
    [message] = smtp.to(address)
    return message


def link_in(message: Received) -> str:
    found = re.search(r"http://\S+/auth/v1/verify\?\S+", message.part("plain"))
    assert found, message.part("plain")
    return found.group(0)


def code_in(message: Received) -> str:
    found = re.search(r"code: (\d{6})\b", message.part("plain"))
    assert found, message.part("plain")
    return found.group(1)


def follow(link: str) -> tuple[str, dict[str, str]]:
    """Where the link redirects (never followed: the site is not ours) and the fragment's values."""
    response = HTTP.get(link, follow_redirects=False)
    assert response.status_code == 303
    location = response.headers["location"]
    base, _, fragment = location.partition("#")
    return base, {key: values[0] for key, values in parse_qs(fragment).items()} | {"location": location}


def test_sign_up_with_confirmations_sends_a_link_that_confirms_and_signs_in_once(confirming, smtp):
    address = email()
    response = client(confirming).auth.sign_up({"email": address, "password": PASSWORD})
    assert response.session is None
    user = response.user
    assert user is not None
    assert user.email == address
    assert user.email_confirmed_at is None
    assert user.confirmation_sent_at is not None
    assert user.identities
    assert user.identities[0].identity_data["email_verified"] is False
    error = auth_error(lambda: signed_in(confirming, address))
    assert (error.status, error.code, error.message) == (400, "email_not_confirmed", "Email not confirmed")

    link = link_in(mail_to(smtp, address))
    assert link.startswith(f"{confirming}/auth/v1/verify?")
    base, fragment = follow(link)
    assert base == SITE_URL
    assert (fragment["type"], fragment["token_type"]) == ("signup", "bearer")
    assert claims(fragment["access_token"])["sub"] == user.id
    # supabase-py reads the session out of the redirect as a frontend does on load.
    frontend = client(confirming)
    frontend.auth.initialize(url=fragment["location"])
    confirmed = frontend.auth.get_user()
    assert confirmed is not None
    assert confirmed.user.email_confirmed_at is not None
    assert frontend.auth.refresh_session().session is not None
    assert session_of(signed_in(confirming, address)).user.id == user.id

    # The link works once.
    base, fragment = follow(link)
    assert base == SITE_URL
    assert "access_token" not in fragment
    assert (fragment["error"], fragment["error_code"]) == ("access_denied", "otp_expired")
    with pytest.raises(AuthImplicitGrantRedirectError):
        client(confirming).auth.initialize(url=fragment["location"])


def test_in_the_pkce_flow_the_link_gives_a_code_only_the_verifiers_holder_can_exchange(confirming, smtp):
    """supabase-py's default flow (and @supabase/ssr's): the link leads to `?code=`, and the client that
    signed up (it kept the verifier) exchanges it for the session; anyone else's exchange fails."""
    address = email()
    pkce = create_client(
        confirming,
        ANON_KEY,
        options=ClientOptions(httpx_client=HTTP, auto_refresh_token=False, flow_type="pkce"),
    )
    assert pkce.auth.sign_up({"email": address, "password": PASSWORD}).session is None
    link = link_in(mail_to(smtp, address))
    assert "token=pkce_" in link
    response = HTTP.get(link, follow_redirects=False)
    assert response.status_code == 303
    base, _, query = response.headers["location"].partition("?")
    assert base == SITE_URL
    code = parse_qs(query)["code"][0]
    stranger = HTTP.post(
        f"{confirming}/auth/v1/token?grant_type=pkce",
        json={"auth_code": code, "code_verifier": "x" * 43},
        headers={"apikey": ANON_KEY, "X-Supabase-Api-Version": "2024-01-01"},
    )
    assert (stranger.status_code, stranger.json()["code"]) == (400, "bad_code_verifier")
    # A wrong verifier spends nothing: the holder's exchange still works, once.
    session = pkce.auth.exchange_code_for_session({"auth_code": code}).session
    assert session is not None
    assert claims(session.access_token)["email"] == address
    again = HTTP.post(
        f"{confirming}/auth/v1/token?grant_type=pkce",
        json={"auth_code": code, "code_verifier": "y" * 43},
        headers={"apikey": ANON_KEY, "X-Supabase-Api-Version": "2024-01-01"},
    )
    assert (again.status_code, again.json()["code"]) == (404, "flow_state_not_found")


def test_the_code_in_the_confirmation_email_verifies_too(confirming, smtp):
    address = email()
    client(confirming).auth.sign_up({"email": address, "password": PASSWORD})
    code = code_in(mail_to(smtp, address))
    frontend = client(confirming)
    response = frontend.auth.verify_otp({"email": address, "token": code, "type": "signup"})
    assert response.session is not None
    assert response.user is not None
    assert response.user.email_confirmed_at is not None
    assert session_of(frontend).user.email == address
    error = auth_error(
        lambda: client(confirming).auth.verify_otp({"email": address, "token": code, "type": "signup"})
    )
    assert (error.status, error.code) == (403, "otp_expired")


def test_the_code_verifies_with_the_email_type_supabase_documents(confirming, smtp):
    """`verifyOtp({email, token, type: 'email'})`: GoTrue's verifyPost takes `email` for a code from a
    confirmation or a recovery email (internal/api/verify.go, mail.EmailOTPVerification)."""
    address = email()
    client(confirming).auth.sign_up({"email": address, "password": PASSWORD})
    code = code_in(mail_to(smtp, address))
    response = client(confirming).auth.verify_otp({"email": address, "token": code, "type": "email"})
    assert response.session is not None


def test_recovery_answers_alike_and_its_link_signs_in_to_set_a_new_password(confirming, smtp):
    nobody = email()
    client(confirming).auth.reset_password_for_email(nobody)  # a 200 all the same
    address = admin_created(confirming)
    client(confirming).auth.reset_password_for_email(address, {"redirect_to": f"{SITE_URL}/reset"})
    message = mail_to(smtp, address)
    assert smtp.to(nobody) == []
    base, fragment = follow(link_in(message))
    assert base == f"{SITE_URL}/reset"
    assert fragment["type"] == "recovery"
    frontend = client(confirming)
    frontend.auth.initialize(url=fragment["location"])
    frontend.auth.update_user({"password": "chosen after recovery"})
    assert auth_error(lambda: signed_in(confirming, address)).code == "invalid_credentials"
    assert session_of(signed_in(confirming, address, "chosen after recovery")).user.email == address


def test_an_email_change_is_confirmed_by_the_link_sent_to_the_new_address(confirming, smtp):
    address, new_address = admin_created(confirming), email()
    frontend = signed_in(confirming, address)
    user = frontend.auth.update_user({"email": new_address}).user
    assert (user.email, user.new_email) == (address, new_address)
    base, fragment = follow(link_in(mail_to(smtp, new_address)))
    assert (base, fragment["type"]) == (SITE_URL, "email_change")
    got = client(confirming).auth.get_user(fragment["access_token"])
    assert got is not None
    assert got.user.email == new_address
    assert got.user.new_email is None
    assert session_of(signed_in(confirming, new_address)).user.id == user.id


def test_a_confirmed_address_signing_up_again_gets_a_user_that_gives_nothing_away(confirming):
    address = admin_created(confirming)
    real = session_of(signed_in(confirming, address)).user
    response = client(confirming).auth.sign_up({"email": address, "password": "someone else's 1"})
    assert response.session is None
    user = response.user
    assert user is not None
    assert user.email == address
    assert user.id != real.id
    assert user.identities == []
    assert user.email_confirmed_at is None
    assert user.confirmation_sent_at is not None
    # The account is untouched.
    assert session_of(signed_in(confirming, address)).user.id == real.id


# Sign-ups closed ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def closed(database, tmp_path_factory) -> Iterator[str]:
    with serving(database, tmp_path_factory.mktemp("closed"), {"auth": {"enable_signup": "false"}}) as url:
        yield url


def test_with_sign_ups_disabled_sign_up_is_refused_and_existing_users_sign_in(closed):
    error = auth_error(lambda: client(closed).auth.sign_up({"email": email(), "password": PASSWORD}))
    assert (error.status, error.code, error.message) == (
        422,
        "signup_disabled",
        "Signups not allowed for this instance",
    )
    address = admin_created(closed)
    assert session_of(signed_in(closed, address)).user.email == address
    assert HTTP.get(f"{closed}/auth/v1/settings").json()["disable_signup"] is True


# Password rules and a short reuse interval -------------------------------------------------------------


@pytest.fixture(scope="module")
def strict(database, tmp_path_factory) -> Iterator[str]:
    with serving(
        database,
        tmp_path_factory.mktemp("strict"),
        {
            "auth": {
                "minimum_password_length": "10",
                "password_requirements": '"lower_upper_letters_digits"',
                "refresh_token_reuse_interval": "1",
            }
        },
    ) as url:
        yield url


@pytest.mark.parametrize(
    ("password", "reasons"),
    [("Short1", ["length"]), ("alllowercase99", ["characters"]), ("short", ["length", "characters"])],
)
def test_weak_passwords_are_refused_with_gotrues_reasons(strict, password, reasons):
    with pytest.raises(AuthWeakPasswordError) as raised:
        client(strict).auth.sign_up({"email": email(), "password": password})
    assert (raised.value.status, raised.value.code, raised.value.reasons) == (422, "weak_password", reasons)
    assert ("at least 10 characters" in raised.value.message) is ("length" in reasons)


def test_a_password_meeting_the_rules_signs_up(strict):
    response = client(strict).auth.sign_up({"email": email(), "password": "Long Enough 42"})
    assert response.session is not None


def twice_refreshed(url: str) -> tuple[str, str, str]:
    """A session's first refresh token, its child and grandchild (the current one)."""
    first = session_of(signed_in(url, admin_created(url, "Long Enough 42"), "Long Enough 42"))
    second = client(url).auth.refresh_session(first.refresh_token).session
    assert second is not None
    third = client(url).auth.refresh_session(second.refresh_token).session
    assert third is not None
    return first.refresh_token, second.refresh_token, third.refresh_token


def test_a_token_reused_after_the_interval_revokes_its_whole_session(strict):
    first, _, current = twice_refreshed(strict)
    time.sleep(2.1)  # refresh_token_reuse_interval = 1
    error = refused(strict, first)
    assert (error.status, error.code) == (400, "refresh_token_already_used")
    assert error.message == "Invalid Refresh Token: Already Used"
    # Someone replayed a token: the session's current token is no longer honoured either.
    assert refused(strict, current).status == 400


def test_the_parent_of_the_current_token_still_gets_it_after_the_interval(strict):
    """GoTrue's RefreshTokenGrant (internal/tokens/service.go): a revoked token whose child is the session's
    active token is a client that lost the answer, not a replay; it gets the active token whatever the
    interval. Only older tokens are held to refresh_token_reuse_interval."""
    _, parent, current = twice_refreshed(strict)
    time.sleep(2.1)
    again = client(strict).auth.refresh_session(parent).session
    assert again is not None
    assert again.refresh_token == current


# A sign-in rate limit -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def limited(database, tmp_path_factory) -> Iterator[str]:
    with serving(
        database, tmp_path_factory.mktemp("limited"), {"auth.rate_limit": {"sign_in_sign_ups": "3"}}
    ) as url:
        yield url


def test_the_fourth_sign_in_from_one_address_is_over_the_limit(limited):
    address = admin_created(limited)
    session = session_of(signed_in(limited, address))
    assert auth_error(lambda: signed_in(limited, address, "not the password")).code == "invalid_credentials"
    signed_in(limited, address)
    error = auth_error(lambda: signed_in(limited, address))
    assert (error.status, error.code) == (429, "over_request_rate_limit")
    # Sign-ups share the limit; refreshes have their own.
    error = auth_error(lambda: client(limited).auth.sign_up({"email": email(), "password": PASSWORD}))
    assert error.code == "over_request_rate_limit"
    assert client(limited).auth.refresh_session(session.refresh_token).session is not None


@pytest.fixture(scope="module")
def lenient(database, tmp_path_factory) -> Iterator[str]:
    """The defaults but for limits no test here reaches (every request comes from 127.0.0.1)."""
    with serving(
        database,
        tmp_path_factory.mktemp("lenient"),
        {"auth.rate_limit": {"sign_in_sign_ups": "10000", "token_refresh": "10000"}},
    ) as url:
        yield url


# Bad input: GoTrue's errors, never a 500 --------------------------------------------------------------


@pytest.mark.parametrize(
    "address",
    [
        "plainaddress",
        "no-domain@",
        "@example.com",
        "two@@example.com",
        "a b@example.com",
        "\u00e9@example.com",
        "x" * 250 + "@example.com",
    ],
)
def test_malformed_emails_are_refused(lenient, address):
    error = auth_error(lambda: client(lenient).auth.sign_up({"email": address, "password": PASSWORD}))
    assert (error.status, error.code) == (400, "validation_failed")


def test_an_address_on_a_dotless_domain_signs_up_as_on_gotrue(lenient):
    """GoTrue's validateEmail is checkmail.ValidateFormat (badoux/checkmail d0a7596), whose domain is labels
    joined by dots, one label allowed: `dev@localhost` is an address to it."""
    address = f"dev-{uuid.uuid4().hex[:6]}@localhost"
    assert session_of(signed_up(lenient, address)).user.email == address


@pytest.mark.parametrize("password", ["a" * 73, "\u00e9" * 37, "p" * 10 * 1024])
def test_passwords_over_72_bytes_are_refused(lenient, password):
    """bcrypt reads 72 bytes; GoTrue refuses more (checkPasswordStrength), counting bytes, not characters."""
    error = auth_error(lambda: client(lenient).auth.sign_up({"email": email(), "password": password}))
    assert (error.status, error.code) == (400, "validation_failed")
    assert error.message == "Password cannot be longer than 72 characters"


def test_a_10_kb_password_at_sign_in_is_just_wrong(lenient):
    address = email()
    signed_up(lenient, address)
    error = auth_error(lambda: signed_in(lenient, address, PASSWORD + "p" * 10 * 1024))
    assert (error.status, error.code) == (400, "invalid_credentials")


def raw(
    url: str, path: str, body: bytes, *, version: bool = True, token: str | None = None
) -> httpx.Response:
    headers = {"apikey": ANON_KEY, "Content-Type": "application/json", **(API_VERSION if version else {})}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    method = "PUT" if path == "/user" else "POST"
    return HTTP.request(method, f"{url}/auth/v1{path}", content=body, headers=headers)


def test_an_empty_password_is_refused_at_sign_up_and_wrong_at_sign_in(lenient):
    """The clients refuse to send one; GoTrue's validateSignupParams answers it with a 400."""
    response = raw(lenient, "/signup", json.dumps({"email": email(), "password": ""}).encode())
    assert (response.status_code, response.json()["code"]) == (400, "validation_failed")
    assert response.json()["message"] == "Signup requires a valid password"
    address = email()
    signed_up(lenient, address)
    response = raw(
        lenient, "/token?grant_type=password", json.dumps({"email": address, "password": ""}).encode()
    )
    assert (response.status_code, response.json()["code"]) == (400, "invalid_credentials")


BAD_BODIES = [
    # (path, body, status, error code); the message is GoTrue's where it is fixed
    ("/token?grant_type=magic", b'{"email": "a@example.com", "password": "x"}', 400, "invalid_credentials"),
    ("/token", b'{"email": "a@example.com", "password": "x"}', 400, "invalid_credentials"),
    ("/token?grant_type=password", b"[1, 2]", 400, "bad_json"),
    ("/token?grant_type=password", b"42", 400, "bad_json"),
    ("/token?grant_type=refresh_token", b'"a token"', 400, "bad_json"),
    ("/token?grant_type=password", b"{not json", 400, "bad_json"),
    ("/signup", b"[]", 400, "bad_json"),
    ("/signup", b'{"email": "a@example.com", "password": ', 400, "bad_json"),
    ("/signup", b'{"email": 5, "password": "secret-enough"}', 400, "bad_json"),
    ("/signup", b'{"email": "a@example.com", "password": "secret-enough", "data": [1]}', 400, "bad_json"),
    ("/recover", b"[]", 400, "bad_json"),
    ("/recover", b'{"email": "not an address"}', 400, "validation_failed"),
    ("/user", b"[]", 400, "bad_json"),
    ("/user", b'{"data": "not an object"}', 400, "bad_json"),
    # A NUL, which no Postgres text can hold: refused as input, never a 500 nor "the database is down".
    (
        "/signup",
        b'{"email": "nul@example.com", "password": "secret-enough 1", "data": {"name": "a\\u0000"}}',
        400,
        "validation_failed",
    ),
    ("/user", b'{"data": {"name": "a\\u0000b"}}', 400, "validation_failed"),
]


@pytest.fixture(scope="module")
def some_token(lenient) -> str:
    return session_of(signed_up(lenient)).access_token


@pytest.mark.parametrize(("path", "body", "status", "code"), BAD_BODIES)
def test_bad_requests_get_gotrues_error_in_the_shape_asked_for(lenient, some_token, path, body, status, code):
    token = some_token if path == "/user" else None
    # supabase-js and supabase-py send X-Supabase-Api-Version: {code, message}, the version named back.
    current = raw(lenient, path, body, token=token)
    assert current.status_code == status
    assert set(current.json()) == {"code", "message"}
    assert current.json()["code"] == code
    assert current.headers["X-Supabase-Api-Version"] == "2024-01-01"
    assert current.headers["x-sb-error-code"] == code
    if code == "invalid_credentials":
        assert current.json()["message"] == "unsupported_grant_type"
    # Without it (curl, older clients): GoTrue's first shape.
    legacy = raw(lenient, path, body, version=False, token=token)
    assert legacy.status_code == status
    assert legacy.json() == {"code": status, "error_code": code, "msg": current.json()["message"]}
    assert "X-Supabase-Api-Version" not in legacy.headers
