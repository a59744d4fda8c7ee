"""The local stack's /auth/v1 through supabase-py's own auth client, as a Python frontend or script uses it.

Every flow goes through `create_client(API_URL, ANON_KEY).auth` (or the service key's `auth.admin`) against
the whole stack, then on to real PostgREST and the functions with the session it got; raw HTTP only for
what the clients hide (statuses, error codes, paging headers) or never send. The expectations are
GoTrue's (supabase/auth `internal/api`), not read back from our server. Flows on a config of their own
(confirmations and their emails, rules, limits) and bad input are in test_local_auth_config.py.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import jwt
import psycopg
import pytest
from postgrest.exceptions import APIError
from supabase import Client, ClientOptions, create_client
from supabase_auth.errors import AuthApiError, AuthWeakPasswordError
from supabase_auth.types import Session

from rpc.platform.migrations import Runner
from tests.support import (
    ANON_KEY,
    SECRET,
    SERVICE_KEY,
    User,
    free_port,
    live_server,
    token_for,
    write_supabase_config,
)

HTTP = httpx.Client(timeout=30)
PASSWORD = "correct horse battery"
JWT_EXPIRY = 1800  # not the default, so a token's lifetime proves config.toml was read
API_VERSION = {"X-Supabase-Api-Version": "2024-01-01"}


# Shared with test_local_auth_config.py ----------------------------------------------------------------


def client(url: str, key: str = ANON_KEY, token: str | None = None) -> Client:
    """A frontend's client: its own session storage, no refresh timer, links in the implicit flow (tokens
    in the fragment, supabase-js's default)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return create_client(
        url,
        key,
        options=ClientOptions(
            headers=headers, httpx_client=HTTP, auto_refresh_token=False, flow_type="implicit"
        ),
    )


def email() -> str:
    return f"user-{uuid.uuid4().hex[:10]}@example.com"


def signed_up(url: str, address: str | None = None, data: dict[str, Any] | None = None) -> Client:
    frontend = client(url)
    response = frontend.auth.sign_up(
        {"email": address or email(), "password": PASSWORD, "options": {"data": data or {}}}
    )
    assert response.session is not None
    return frontend


def signed_in(url: str, address: str, password: str = PASSWORD) -> Client:
    frontend = client(url)
    frontend.auth.sign_in_with_password({"email": address, "password": password})
    return frontend


def session_of(frontend: Client) -> Session:
    session = frontend.auth.get_session()
    assert session is not None
    return session


def auth_error(call: Any) -> AuthApiError:
    with pytest.raises(AuthApiError) as raised:
        call()
    return raised.value


def refused(url: str, refresh_token: str) -> AuthApiError:
    return auth_error(lambda: client(url).auth.refresh_session(refresh_token))


def claims(access_token: str) -> dict[str, Any]:
    return jwt.decode(access_token, SECRET, algorithms=["HS256"], audience="authenticated")


# The stack --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def api_url(database, tmp_path_factory) -> Iterator[str]:
    """The whole stack (PostgREST behind /rest/v1, the functions) with /auth/v1 on a config of this module:
    its own jwt_expiry, and limits no test here reaches (every request comes from 127.0.0.1). Its public
    URL is where it listens, so tokens' `iss` and emailed links name it."""
    from app import create_app
    from rpc.local.rest import HOW_TO_GET_IT, find_postgrest

    config = write_supabase_config(
        tmp_path_factory.mktemp("auth"),
        {
            "auth": {"jwt_expiry": str(JWT_EXPIRY)},
            "auth.rate_limit": {"sign_in_sign_ups": "10000", "token_refresh": "10000"},
        },
    )
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    settings = database.settings(
        rest_api=True, storage_api=False, auth_api=True, supabase_config=config, public_url=url
    )
    if find_postgrest(settings) is None:
        pytest.skip(HOW_TO_GET_IT)
    with live_server(create_app(settings), port=port):
        yield url


@pytest.fixture(scope="module")
def committed_module(database) -> Iterator[psycopg.Connection]:
    with psycopg.connect(database.superuser, autocommit=True) as connection:
        yield connection


def grant(conn: psycopg.Connection, user_id: str, role: str) -> None:
    conn.execute("insert into public.user_roles (user_id, role) values (%s, %s)", (user_id, role))


# Sign-up and sign-in ----------------------------------------------------------------------------------


def test_sign_up_returns_a_session_and_the_user_as_gotrue_has_them(api_url, committed_module):
    address = f"New.User-{uuid.uuid4().hex[:6]}@Example.com"
    before = int(time.time())
    response = client(api_url).auth.sign_up(
        {"email": address, "password": PASSWORD, "options": {"data": {"full_name": "Ada Lovelace"}}}
    )
    session, user = response.session, response.user
    assert session is not None
    assert user is not None
    assert session.token_type == "bearer"
    assert session.refresh_token
    assert abs(session.expires_in - JWT_EXPIRY) <= 2
    assert before + JWT_EXPIRY <= session.expires_at <= int(time.time()) + JWT_EXPIRY
    # GoTrue stores and answers the address lower-cased; the data is the user's metadata.
    assert user.email == address.lower()
    assert (user.aud, user.role, user.phone, user.is_anonymous) == (
        "authenticated",
        "authenticated",
        "",
        False,
    )
    assert user.app_metadata == {"provider": "email", "providers": ["email"]}
    assert user.user_metadata == {"full_name": "Ada Lovelace", "email_verified": True}
    assert user.email_confirmed_at is not None
    assert user.confirmed_at is not None
    assert user.last_sign_in_at is not None
    [identity] = user.identities or []
    assert identity.provider == "email"
    assert identity.id == user.id  # the email identity's provider id is the user's id
    assert identity.user_id == user.id
    assert identity.identity_id
    assert identity.identity_id != user.id
    assert identity.identity_data["sub"] == user.id
    assert identity.identity_data["email"] == address.lower()
    assert identity.identity_data["full_name"] == "Ada Lovelace"
    assert session.user.id == user.id
    # The profile trigger ran as it does on Supabase.
    row = committed_module.execute(
        "select full_name from public.profiles where id = %s", (user.id,)
    ).fetchone()
    assert row == ("Ada Lovelace",)
    # And the password is bcrypt, cost 10, as GoTrue writes it.
    stored = committed_module.execute(
        "select encrypted_password from auth.users where id = %s", (user.id,)
    ).fetchone()
    assert stored is not None
    assert stored[0].startswith("$2a$10$")


def test_sign_in_then_get_user(api_url):
    address = email()
    signed_up(api_url, address)
    frontend = client(api_url)
    response = frontend.auth.sign_in_with_password({"email": address.upper(), "password": PASSWORD})
    assert response.session is not None
    assert response.user is not None
    assert response.user.email == address
    got = frontend.auth.get_user()
    assert got is not None
    assert got.user.id == response.user.id
    assert got.user.identities
    assert got.user.identities[0].provider == "email"
    # A wrong password and an unknown address get the same answer.
    wrong = auth_error(
        lambda: client(api_url).auth.sign_in_with_password({"email": address, "password": "nope-nope"})
    )
    unknown = auth_error(
        lambda: client(api_url).auth.sign_in_with_password({"email": email(), "password": PASSWORD})
    )
    for error in (wrong, unknown):
        assert (error.status, error.code, error.message) == (
            400,
            "invalid_credentials",
            "Invalid login credentials",
        )


def test_an_existing_email_signing_up_again_with_confirmations_off_is_refused(api_url):
    address = email()
    signed_up(api_url, address)
    error = auth_error(lambda: client(api_url).auth.sign_up({"email": address, "password": "another one 1"}))
    assert (error.status, error.code) == (422, "user_already_exists")
    assert error.message == "User already registered"


def test_the_seeds_demo_users_sign_in_with_the_documented_password(api_url, database):
    Runner(database.admin).seed()
    for address in ("alice@example.com", "bob@example.com", "admin@example.com"):
        session = signed_in(api_url, address, "talentbase-demo").auth.get_session()
        assert session is not None
        assert session.user.email == address
    error = auth_error(
        lambda: client(api_url).auth.sign_in_with_password(
            {"email": "alice@example.com", "password": PASSWORD}
        )
    )
    assert error.code == "invalid_credentials"


# The access token -------------------------------------------------------------------------------------


def test_the_access_token_carries_gotrues_claims_and_the_hooks_roles(api_url, committed_module):
    address = email()
    frontend = signed_up(api_url, address, {"full_name": "Grace Hopper"})
    user_id = session_of(frontend).user.id
    grant(committed_module, user_id, "coach")
    session = client(api_url).auth.sign_in_with_password({"email": address, "password": PASSWORD}).session
    assert session is not None
    token = claims(session.access_token)
    assert token["iss"] == f"{api_url}/auth/v1"
    assert token["aud"] == "authenticated"
    assert token["exp"] - token["iat"] == JWT_EXPIRY
    assert abs(token["iat"] - time.time()) < 5
    assert (token["sub"], token["email"], token["phone"]) == (user_id, address, "")
    assert token["app_metadata"] == {"provider": "email", "providers": ["email"]}
    assert token["user_metadata"] == {"full_name": "Grace Hopper", "email_verified": True}
    assert (token["role"], token["aal"], token["is_anonymous"]) == ("authenticated", "aal1", False)
    assert [entry["method"] for entry in token["amr"]] == ["password"]
    assert abs(token["amr"][0]["timestamp"] - time.time()) < 5
    assert str(uuid.UUID(token["session_id"])) == token["session_id"]
    # public.custom_access_token_hook (the identity migration) adds the user's platform roles.
    assert token["user_roles"] == ["coach"]
    # At a refresh the hook runs again: a role granted since is in the new token, in the same session.
    grant(committed_module, user_id, "employer")
    refreshed = client(api_url).auth.refresh_session(session.refresh_token).session
    assert refreshed is not None
    again = claims(refreshed.access_token)
    assert sorted(again["user_roles"]) == ["coach", "employer"]
    assert (again["session_id"], again["sub"]) == (token["session_id"], user_id)
    assert again["exp"] - again["iat"] == JWT_EXPIRY
    # A refresh builds its claims in SQL, a sign-in in Python: the same claims, but for the times and roles.
    timeless = {"exp", "iat", "user_roles"}
    assert {k: v for k, v in again.items() if k not in timeless} == {
        k: v for k, v in token.items() if k not in timeless
    }


def test_the_session_reaches_postgrest_and_the_functions(api_url, committed_module):
    address = email()
    frontend = signed_up(api_url, address, {"full_name": "Katherine Johnson"})
    user_id = session_of(frontend).user.id
    grant(committed_module, user_id, "executive")
    frontend.auth.refresh_session()  # the new token carries the role; the client's requests use it
    profiles = frontend.table("profiles").select("id, full_name").eq("id", user_id).execute().data
    assert profiles == [{"id": user_id, "full_name": "Katherine Johnson"}]
    [me] = frontend.rpc("whoami").execute().data
    assert (me["id"], me["email"], me["roles"]) == (user_id, address, ["executive"])
    assert me["profile"]["full_name"] == "Katherine Johnson"
    invoked = frontend.functions.invoke("whoami")
    assert isinstance(invoked, bytes)
    whoami = json.loads(invoked)
    assert (whoami["id"], whoami["email"], whoami["roles"]) == (user_id, address, ["executive"])
    # Signed out, the client falls back to the anon key, which whoami does not serve.
    frontend.auth.sign_out()
    with pytest.raises(APIError):
        frontend.rpc("whoami").execute()


def test_an_expired_access_token_is_refused_by_postgrest_the_functions_and_auth(api_url):
    session = session_of(signed_up(api_url))
    now = int(time.time())
    user = User(session.user.id, session.user.email or "", claims(session.access_token))
    expired = token_for(user, exp=now - 3600, iat=now - 7200)
    frontend = client(api_url, token=expired)
    with pytest.raises(APIError) as rest:
        frontend.table("profiles").select("id").execute()
    assert rest.value.message == "JWT expired"  # PGRST301 before PostgREST 13, PGRST303 since
    # The clients hide the status (postgrest-py) or the error code (functions): read them off the wire.
    headers = {"apikey": ANON_KEY, "Authorization": f"Bearer {expired}"}
    response = HTTP.get(f"{api_url}/rest/v1/profiles", headers=headers)
    assert response.status_code == 401
    response = HTTP.post(f"{api_url}/functions/v1/whoami", headers=headers)
    assert response.status_code == 401
    assert response.json()["error"] == "token_expired"
    error = auth_error(lambda: client(api_url).auth.get_user(expired))
    assert (error.status, error.code) == (403, "bad_jwt")


# The signed-in user -----------------------------------------------------------------------------------


def test_update_user_merges_metadata_and_null_removes_a_key(api_url):
    frontend = signed_up(api_url, data={"full_name": "Ada", "plan": "pro"})
    user = frontend.auth.update_user({"data": {"city": "London", "plan": None}}).user
    assert user.user_metadata == {"full_name": "Ada", "city": "London", "email_verified": True}
    got = frontend.auth.get_user()
    assert got is not None
    assert got.user.user_metadata == user.user_metadata
    # The next access token carries it.
    frontend.auth.refresh_session()
    assert claims(session_of(frontend).access_token)["user_metadata"] == user.user_metadata


def test_a_new_password_ends_the_users_other_sessions_but_not_this_one(api_url):
    address = email()
    here = signed_up(api_url, address)
    elsewhere = session_of(signed_in(api_url, address))
    here.auth.update_user({"password": "a brand new secret"})
    # The other session is over: its refresh token is gone with it, its access token names no session.
    assert refused(api_url, elsewhere.refresh_token).code == "refresh_token_not_found"
    error = auth_error(lambda: client(api_url).auth.get_user(elsewhere.access_token))
    assert (error.status, error.code) == (403, "session_not_found")
    # This one goes on.
    assert here.auth.refresh_session().session is not None
    assert here.auth.get_user() is not None
    # And only the new password signs in.
    wrong = auth_error(lambda: signed_in(api_url, address))
    assert wrong.code == "invalid_credentials"
    assert session_of(signed_in(api_url, address, "a brand new secret")).user.email == address


def test_the_same_password_again_is_refused(api_url):
    frontend = signed_up(api_url)
    error = auth_error(lambda: frontend.auth.update_user({"password": PASSWORD}))
    assert (error.status, error.code) == (422, "same_password")
    assert error.message == "New password should be different from the old password."


def test_a_weak_new_password_is_refused_with_its_reasons(api_url):
    frontend = signed_up(api_url)
    with pytest.raises(AuthWeakPasswordError) as raised:
        frontend.auth.update_user({"password": "abc"})
    assert (raised.value.status, raised.value.code, raised.value.reasons) == (
        422,
        "weak_password",
        ["length"],
    )


def test_an_email_change_waits_for_the_new_address_to_confirm_even_with_confirmations_off(
    api_url, committed_module
):
    """GoTrue's UserUpdate (internal/api/user.go): only an anonymous user's address changes at once when
    the mailer autoconfirms; a permanent user's change is always sent for confirmation (sendEmailChange),
    and the user keeps the old address until the link is followed."""
    address, new_address = email(), email()
    frontend = signed_up(api_url, address)
    user = frontend.auth.update_user({"email": new_address}).user
    assert user.email == address
    assert user.new_email == new_address
    assert user.email_change_sent_at is not None
    sent = committed_module.execute(
        "select context ->> 'link' from private.outbox where template = 'auth_email_change' and recipient = %s",
        (new_address,),
    ).fetchone()
    assert sent is not None
    assert session_of(signed_in(api_url, address)).user.email == address


def test_an_email_change_to_a_taken_address_is_refused(api_url):
    taken = email()
    signed_up(api_url, taken)
    frontend = signed_up(api_url)
    error = auth_error(lambda: frontend.auth.update_user({"email": taken.upper()}))
    assert (error.status, error.code) == (422, "email_exists")


# Refresh tokens ---------------------------------------------------------------------------------------


def test_a_refresh_rotates_the_token_and_reuse_within_the_interval_gets_the_current_child(api_url):
    frontend = signed_up(api_url)
    first = session_of(frontend)
    second = frontend.auth.refresh_session().session
    assert second is not None
    assert second.refresh_token != first.refresh_token
    assert claims(second.access_token)["session_id"] == claims(first.access_token)["session_id"]
    # A client that lost the answer asks again with the used token (within refresh_token_reuse_interval,
    # 10 s): it gets the current child, not a new branch.
    again = client(api_url).auth.refresh_session(first.refresh_token).session
    assert again is not None
    assert again.refresh_token == second.refresh_token
    # The child rotates in its turn.
    third = client(api_url).auth.refresh_session(second.refresh_token).session
    assert third is not None
    assert third.refresh_token not in (first.refresh_token, second.refresh_token)


@pytest.mark.parametrize("token", ["", "x", "not-a-real-token", "A" * 12, "' or 1=1 --", "\u00e9" * 40])
def test_garbage_refresh_tokens_are_not_found(api_url, token):
    response = HTTP.post(
        f"{api_url}/auth/v1/token",
        params={"grant_type": "refresh_token"},
        json={"refresh_token": token},
        headers={"apikey": ANON_KEY, **API_VERSION},
    )
    assert response.status_code == 400
    if token:
        assert response.json() == {
            "code": "refresh_token_not_found",
            "message": "Invalid Refresh Token: Refresh Token Not Found",
        }
    else:
        assert response.json()["code"] == "validation_failed"


# Signing out ------------------------------------------------------------------------------------------


def three_sessions(url: str) -> tuple[Client, Session, Session]:
    """A user signed in on three devices: the first as a client, the other two as their sessions."""
    address = email()
    first = signed_up(url, address)
    return first, session_of(signed_in(url, address)), session_of(signed_in(url, address))


def signed_out(url: str, session: Session) -> None:
    assert refused(url, session.refresh_token).code == "refresh_token_not_found"
    error = auth_error(lambda: client(url).auth.get_user(session.access_token))
    assert (error.status, error.code) == (403, "session_not_found")


def still_signed_in(url: str, session: Session) -> None:
    assert client(url).auth.get_user(session.access_token) is not None
    assert client(url).auth.refresh_session(session.refresh_token).session is not None


def test_sign_out_global_ends_every_session_of_the_user(api_url):
    frontend, second, third = three_sessions(api_url)
    mine = session_of(frontend)
    frontend.auth.sign_out()
    assert frontend.auth.get_session() is None
    for session in (mine, second, third):
        signed_out(api_url, session)


def test_sign_out_local_ends_this_session_only(api_url):
    frontend, second, third = three_sessions(api_url)
    mine = session_of(frontend)
    frontend.auth.sign_out({"scope": "local"})
    assert frontend.auth.get_session() is None
    signed_out(api_url, mine)
    still_signed_in(api_url, second)
    still_signed_in(api_url, third)


def test_sign_out_others_ends_the_other_sessions_and_keeps_this_one(api_url):
    frontend, second, third = three_sessions(api_url)
    frontend.auth.sign_out({"scope": "others"})
    signed_out(api_url, second)
    signed_out(api_url, third)
    assert frontend.auth.get_user() is not None
    assert frontend.auth.refresh_session().session is not None


def test_sign_out_with_an_unknown_scope_is_refused(api_url):
    token = session_of(signed_up(api_url)).access_token
    response = HTTP.post(
        f"{api_url}/auth/v1/logout",
        params={"scope": "everywhere"},
        headers={"apikey": ANON_KEY, "Authorization": f"Bearer {token}", **API_VERSION},
    )
    assert response.status_code == 400
    assert response.json()["code"] == "validation_failed"


# Administration ---------------------------------------------------------------------------------------


def test_the_service_key_creates_lists_gets_updates_and_deletes_users(api_url, committed_module):
    signed_up(api_url)  # someone before, whichever tests ran earlier
    admin = client(api_url, SERVICE_KEY).auth.admin
    address = email()
    created = admin.create_user(
        {
            "email": address,
            "password": PASSWORD,
            "email_confirm": True,
            "user_metadata": {"full_name": "Alan Turing"},
            "app_metadata": {"plan": "gold"},
        }
    ).user
    assert created.email == address
    assert created.email_confirmed_at is not None
    assert created.app_metadata == {"provider": "email", "providers": ["email"], "plan": "gold"}
    assert created.identities
    assert created.identities[0].provider == "email"
    assert session_of(signed_in(api_url, address)).user.id == created.id
    profile = committed_module.execute("select full_name from public.profiles where id = %s", (created.id,))
    assert profile.fetchone() == ("Alan Turing",)
    # The newest first, a page at a time.
    [listed] = admin.list_users(page=1, per_page=1)
    assert listed.id == created.id
    assert listed.model_dump() == admin.get_user_by_id(created.id).user.model_dump()  # identities and all
    assert len(admin.list_users(page=1, per_page=2)) == 2
    assert created.id not in [user.id for user in admin.list_users(page=2, per_page=1)]
    assert admin.get_user_by_id(created.id).user.email == address
    updated = admin.update_user_by_id(
        created.id, {"user_metadata": {"title": "Dr"}, "app_metadata": {"plan": None, "tier": 2}}
    ).user
    assert updated.user_metadata == {"full_name": "Alan Turing", "title": "Dr", "email_verified": True}
    assert updated.app_metadata == {"provider": "email", "providers": ["email"], "tier": 2}
    admin.delete_user(created.id)
    error = auth_error(lambda: admin.get_user_by_id(created.id))
    assert (error.status, error.code) == (404, "user_not_found")
    assert auth_error(lambda: signed_in(api_url, address)).code == "invalid_credentials"
    profile = committed_module.execute("select 1 from public.profiles where id = %s", (created.id,))
    assert profile.fetchone() is None


def test_the_user_list_has_gotrues_paging_headers(api_url, committed_module):
    for _ in range(5):  # at least three pages of two, whichever tests ran before
        signed_up(api_url)
    [total] = committed_module.execute("select count(*) from auth.users").fetchone() or [0]
    # supabase-py returns the users only; supabase-js reads these headers for its `nextPage` and `total`.
    response = HTTP.get(
        f"{api_url}/auth/v1/admin/users",
        params={"page": 2, "per_page": 2},
        headers={"apikey": SERVICE_KEY, "Authorization": f"Bearer {SERVICE_KEY}"},
    )
    assert response.status_code == 200
    assert int(response.headers["X-Total-Count"]) == total
    assert len(response.json()["users"]) == 2
    assert response.json()["aud"] == "authenticated"
    links = {
        rel: dict(re.findall(r"[?&](page|per_page)=(\d+)", target))
        for target, rel in re.findall(r'<([^>]+)>; rel="(\w+)"', response.headers["Link"])
    }
    assert links == {
        "next": {"page": "3", "per_page": "2"},
        "last": {"page": str(-(-total // 2)), "per_page": "2"},
    }
    last = HTTP.get(
        f"{api_url}/auth/v1/admin/users",
        params={"page": -(-total // 2), "per_page": 2},
        headers={"apikey": SERVICE_KEY, "Authorization": f"Bearer {SERVICE_KEY}"},
    )
    assert 'rel="next"' not in last.headers["Link"]


def test_the_admin_api_refuses_a_user_and_anon(api_url):
    session = session_of(signed_up(api_url))
    for admin in (client(api_url, token=session.access_token).auth.admin, client(api_url).auth.admin):
        for call in (
            admin.list_users,
            lambda admin=admin: admin.get_user_by_id(session.user.id),
            lambda admin=admin: admin.create_user({"email": email(), "password": PASSWORD}),
            lambda admin=admin: admin.update_user_by_id(session.user.id, {"app_metadata": {"role": "admin"}}),
            lambda admin=admin: admin.delete_user(session.user.id),
        ):
            error = auth_error(call)
            assert (error.status, error.code, error.message) == (403, "not_admin", "User not allowed")
    assert client(api_url).auth.get_user(session.access_token) is not None


# Logs -------------------------------------------------------------------------------------------------


def test_no_password_or_token_reaches_the_log(api_url, caplog):
    address = email()
    caplog.set_level(logging.DEBUG)
    frontend = signed_up(api_url, address)
    signed_in(api_url, address)
    auth_error(lambda: signed_in(api_url, address, "the wrong one"))
    session = session_of(frontend)
    refreshed = frontend.auth.refresh_session().session
    assert refreshed is not None
    # The app's records (its access log, uvicorn, the database drivers), not the test's own HTTP client's.
    records = [r for r in caplog.records if not r.name.startswith(("httpx", "httpcore", "hpack"))]
    logged = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in records)
    assert "/auth/v1/token" in logged
    for secret in (
        PASSWORD,
        "the wrong one",
        session.access_token,
        session.refresh_token,
        refreshed.access_token,
        refreshed.refresh_token,
    ):
        assert secret not in logged
