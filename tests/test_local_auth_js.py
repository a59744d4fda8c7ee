"""The local stack's /auth/v1 through supabase-js from npm, the client a frontend signs in with.

`node --test tests/js/auth.test.mjs` runs against the live stack of the `api_url` fixture and against a
second app on the same database whose config.toml has a short `jwt_expiry` and reuse interval (automatic
refresh, a refresh whose answer was lost). The last test runs supabase-js's browser bundle in headless
Chromium on a page of another origin with its default storage (localStorage): the session survives a
reload, and is gone after signing out and reloading again.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import bcrypt
import psycopg
import pytest

from tests.support import (
    ANON_KEY,
    User,
    free_port,
    live_server,
    make_user,
    run_node_tests,
    run_page,
    write_supabase_config,
)

KNOWN_PASSWORD = "known-user-password"
# auth-js refreshes a session that expires within 3 ticks of 30 s (its ticker) and, when a session is
# loaded or read, one within 90 s (EXPIRY_MARGIN_MS): between the two, only the ticker refreshes it.
SHORT_JWT_EXPIRY = 100
SHORT_REUSE_INTERVAL = 1


@pytest.fixture(scope="module")
def known(database) -> User:
    """A user whose password hash is the kind GoTrue writes (bcrypt `$2a$`, cost 10), as on a hosted project
    or in the seed, so signing in does not depend on our own sign-up having written it."""
    hashed = bcrypt.hashpw(KNOWN_PASSWORD.encode(), bcrypt.gensalt(10, prefix=b"2a")).decode()
    with psycopg.connect(database.superuser, autocommit=True) as connection:
        user = make_user(
            connection, email=f"known-{uuid.uuid4().hex[:6]}@example.com", full_name="Known User"
        )
        connection.execute("update auth.users set encrypted_password = %s where id = %s", (hashed, user.id))
    return user


@pytest.fixture(scope="module")
def short_url(database, api_url, tmp_path_factory) -> Iterator[str]:
    """The stack on the same database with a config.toml whose tokens expire soon and whose refresh token
    reuse interval is short (`api_url` first: it skips without PostgREST). Its public URL is where it
    listens, so tokens' `iss` names it."""
    from app import create_app

    config = write_supabase_config(
        tmp_path_factory.mktemp("auth-js"),
        {
            "auth": {
                "jwt_expiry": str(SHORT_JWT_EXPIRY),
                "refresh_token_reuse_interval": str(SHORT_REUSE_INTERVAL),
            }
        },
    )
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    settings = database.settings(
        rest_api=True, storage_api=False, auth_api=True, supabase_config=config, public_url=url
    )
    with live_server(create_app(settings), port=port):
        yield url


def test_supabase_js_auth_in_node(api_url, short_url, known):
    run_node_tests(
        api_url,
        "auth.test.mjs",
        KNOWN_EMAIL=known.email,
        KNOWN_PASSWORD=KNOWN_PASSWORD,
        SHORT_API_URL=short_url,
        SHORT_JWT_EXPIRY=str(SHORT_JWT_EXPIRY),
        SHORT_REUSE_INTERVAL=str(SHORT_REUSE_INTERVAL),
    )


# A real browser ---------------------------------------------------------------------------------------

PAGE = """<!doctype html>
<meta charset="utf-8">
<title>Auth</title>
<script src="/supabase.js"></script>
<script>
const config = __CONFIG__;
// Each load of the page is one phase. What the phases saw is carried to the next load in localStorage,
// beside the session supabase-js keeps there.
const STATE = 'auth-test-state';
const state = JSON.parse(localStorage.getItem(STATE))
  || {phase: 'signIn', steps: {}, sent: [], loads: 0};
state.loads += 1;

// The header names of every request supabase-js makes: those outside CORS's safelist made the browser
// send a preflight asking for them, and the request went out only if the preflight allowed them.
function recording(input, init = {}) {
  const headers = [...new Headers(init.headers).keys()];
  state.sent.push({method: init.method || 'GET', url: String(input), headers});
  return fetch(input, init);
}

async function attempt(call) {
  try {
    const {data, error} = await call();
    if (error) {
      const status = error.status ?? error.context?.status;
      return {ok: false, error: {name: error.name, status, code: error.code ?? null, message: error.message}};
    }
    return {ok: true, value: data};
  } catch (e) {
    return {ok: false, error: {name: e.name, message: e.message}};
  }
}

// supabase-js's defaults in a browser: the session in localStorage, refreshed by its own timer.
const client = supabase.createClient(config.api, config.anonKey, {global: {fetch: recording}});
const storedKeys = () => Object.keys(localStorage).filter((key) => key.startsWith('sb-')).sort();
const {email, password} = config;

const phases = {
  async signIn(steps) {
    steps.signUp = await attempt(() =>
      client.auth.signUp({email, password, options: {data: {full_name: 'Browser User'}}}));
    steps.signOutAfterSignUp = await attempt(() => client.auth.signOut());
    steps.wrongPassword = await attempt(() =>
      client.auth.signInWithPassword({email, password: password + '!'}));
    steps.signIn = await attempt(() => client.auth.signInWithPassword({email, password}));
    steps.keysSignedIn = {ok: true, value: storedKeys()};
    return 'restored';
  },
  async restored(steps) {
    steps.restored = await attempt(() => client.auth.getSession());
    const session = steps.restored.value?.session;
    steps.profiles = await attempt(() =>
      client.from('profiles').select('id, full_name').eq('id', session?.user.id));
    steps.invoke = await attempt(() => client.functions.invoke('whoami'));
    steps.signOut = await attempt(() => client.auth.signOut());
    steps.tokenAfterSignOut = await attempt(() => client.auth.getUser(session?.access_token));
    return 'signedOut';
  },
  async signedOut(steps) {
    steps.afterSignOut = await attempt(() => client.auth.getSession());
    steps.keysSignedOut = {ok: true, value: storedKeys()};
    return null;
  },
};

async function run() {
  const next = await phases[state.phase](state.steps);
  if (next) {
    state.phase = next;
    localStorage.setItem(STATE, JSON.stringify(state));
    location.reload();
    return null;
  }
  return {steps: state.steps, sent: state.sent, loads: state.loads};
}

run()
  .catch((e) => ({fatal: `${e.name}: ${e.message}`, phase: state.phase, steps: state.steps}))
  .then((report) => report && fetch('/results', {method: 'POST', body: JSON.stringify(report)}));
</script>
"""


def outcome(steps: dict[str, Any], name: str) -> Any:
    step = steps[name]
    assert step["ok"], (name, step)
    return step.get("value")  # a call that returns no data (signOut) has none


def test_supabase_js_auth_in_a_browser_on_another_origin(api_url):
    email = f"browser-{uuid.uuid4().hex[:8]}@example.com"
    config = {"api": api_url, "anonKey": ANON_KEY, "email": email, "password": "browser-password"}
    report = run_page(PAGE.replace("__CONFIG__", json.dumps(config)))
    assert "fatal" not in report, report
    steps = report["steps"]
    assert report["loads"] == 3, report

    signed_up = outcome(steps, "signUp")
    user_id = signed_up["user"]["id"]
    assert signed_up["session"]["user"]["email"] == email
    outcome(steps, "signOutAfterSignUp")
    # Refused with its code: auth-js reads codes only when it can read X-Supabase-Api-Version, which a page
    # of another origin can only if the response exposes it.
    assert steps["wrongPassword"] == {
        "ok": False,
        "error": {
            "name": "AuthApiError",
            "status": 400,
            "code": "invalid_credentials",
            "message": "Invalid login credentials",
        },
    }
    signed_in = outcome(steps, "signIn")["session"]
    assert signed_in["user"]["id"] == user_id
    assert "sb-127-auth-token" in outcome(steps, "keysSignedIn")

    # After the reload: the same session, from localStorage, good for /rest/v1 and the functions.
    restored = outcome(steps, "restored")["session"]
    assert restored["access_token"] == signed_in["access_token"]
    assert restored["refresh_token"] == signed_in["refresh_token"]
    assert restored["user"]["id"] == user_id
    assert outcome(steps, "profiles") == [{"id": user_id, "full_name": "Browser User"}]
    whoami = outcome(steps, "invoke")
    assert (whoami["id"], whoami["email"], whoami["profile"]["full_name"]) == (user_id, email, "Browser User")
    outcome(steps, "signOut")
    assert steps["tokenAfterSignOut"]["error"]["name"] == "AuthSessionMissingError", steps[
        "tokenAfterSignOut"
    ]

    # After the second reload: no session.
    assert outcome(steps, "afterSignOut") == {"session": None}
    assert "sb-127-auth-token" not in outcome(steps, "keysSignedOut")

    # Every call to /auth/v1 carried auth-js's headers, which the browser sent only after a preflight
    # allowed them.
    auth_calls = [request for request in report["sent"] if "/auth/v1/" in request["url"]]
    paths = {request["url"].split("/auth/v1/", 1)[1] for request in auth_calls}
    assert {"signup", "token?grant_type=password", "logout?scope=global", "user"} <= paths, paths
    for request in auth_calls:
        assert {"x-supabase-api-version", "x-client-info", "apikey"} <= set(request["headers"]), request
