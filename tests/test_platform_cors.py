"""CORS as a frontend on another origin meets it, on every path (the functions and the local stack's
/rest/v1), the way Supabase's gateway (Kong's `cors` plugin) answers: a preflight allows whatever headers
it asks for (tracing libraries add their own), CORS_ORIGINS decides the origin, and a proxied PostgREST
response never carries CORS headers of its own. The last tests drive headless Chromium with supabase-js.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest

from rpc.local.tokens import api_key
from tests.conftest import Database
from tests.support import SECRET, User, live_server, make_user, run_page, token_for

ANON_KEY = api_key(SECRET, "anon")
ORIGIN = "http://localhost:3000"
# What supabase-js sends (postgrest-js, auth-js, functions-js with a region, storage-js, retries) and what
# tracing libraries add.
REQUESTED = (
    "apikey, authorization, x-client-info, accept-profile, content-profile, prefer, range, content-type,"
    " x-retry-count, x-supabase-api-version, x-region, x-upsert, cache-control, x-metadata, traceparent,"
    " tracestate, baggage, sentry-trace"
)
PATHS = ["/rest/v1/profiles", "/functions/v1/whoami"]
ALLOWED = "https://app.example.com"
CORS_ORIGINS = [ALLOWED, "https://*.preview.example.com"]
CALLS = ("table", "rpc", "invoke", "apiVersion", "simple")  # the page's, below


def preflight(url: str, origin: str = ORIGIN, requested: str | None = REQUESTED) -> httpx.Response:
    headers = {"Origin": origin, "Access-Control-Request-Method": "POST"}
    if requested is not None:
        headers["Access-Control-Request-Headers"] = requested
    return httpx.options(url, headers=headers)


def cors_headers(response: httpx.Response) -> dict[str, str]:
    return {name: value for name, value in response.headers.items() if name.startswith("access-control-")}


def exposed(response: httpx.Response) -> set[str]:
    return {name.strip() for name in response.headers["access-control-expose-headers"].split(",")}


@pytest.fixture
def user(committed: psycopg.Connection) -> User:
    return make_user(committed, full_name="Cross Origin")


def signed_in(user: User, origin: str = ORIGIN) -> dict[str, str]:
    return {"Origin": origin, "apikey": ANON_KEY, "Authorization": f"Bearer {token_for(user)}"}


@pytest.fixture(scope="module")
def restricted_url(database: Database, api_url: str) -> Iterator[str]:
    """The same stack with CORS_ORIGINS naming the frontends (`api_url` first: it skips without PostgREST)."""
    from app import create_app

    with live_server(create_app(database.settings(cors_origins=CORS_ORIGINS, rest_api=True))) as url:
        yield url


# Any origin (CORS_ORIGINS' default) --------------------------------------------------------------------


@pytest.mark.parametrize("path", PATHS)
def test_a_preflight_allows_every_header_it_asks_for(api_url, path):
    response = preflight(api_url + path)
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "*"
    assert response.headers["access-control-allow-headers"] == REQUESTED
    methods = set(response.headers["access-control-allow-methods"].split(","))
    assert methods >= {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}
    assert int(response.headers["access-control-max-age"]) > 0
    assert "vary" not in response.headers  # the answer is the same for every origin
    # Asking for no header, it is allowed none, as Kong answers.
    bare = preflight(api_url + path, requested=None)
    assert bare.status_code == 200
    assert "access-control-allow-headers" not in bare.headers


def test_an_options_without_a_requested_method_is_no_preflight(api_url):
    # PostgREST answers it (with the methods the table allows), not the CORS layer.
    response = httpx.options(f"{api_url}/rest/v1/profiles", headers={"Origin": ORIGIN})
    assert response.status_code == 200
    assert "GET" in response.headers["allow"]
    assert "access-control-allow-methods" not in response.headers
    assert response.headers["access-control-allow-origin"] == "*"


def test_a_rest_response_has_one_allowed_origin_and_exposes_content_range(api_url, user):
    response = httpx.get(
        f"{api_url}/rest/v1/profiles?select=id&id=eq.{user.id}",
        headers={**signed_in(user), "Prefer": "count=exact"},
    )
    assert response.status_code == 200
    assert response.headers["content-range"] == "0-0/1"
    # PostgREST adds its own when it sees an Origin; the gateway's replaces it, as Kong's does.
    assert response.headers.get_list("access-control-allow-origin") == ["*"]
    assert exposed(response) >= {"content-range", "x-request-id", "server-timing", "range-unit"}


def test_a_function_response_exposes_what_clients_read(api_url, user):
    response = httpx.post(f"{api_url}/functions/v1/whoami", headers=signed_in(user))
    assert response.status_code == 200
    assert response.json()["id"] == user.id
    assert response.headers.get_list("access-control-allow-origin") == ["*"]
    assert exposed(response) >= {"x-request-id", "server-timing", "retry-after"}


def test_a_request_without_an_origin_gets_no_cors_headers(api_url, user):
    headers = {"apikey": ANON_KEY, "Authorization": f"Bearer {token_for(user)}"}
    response = httpx.post(f"{api_url}/functions/v1/whoami", headers=headers)
    assert response.status_code == 200
    assert cors_headers(response) == {}


# CORS_ORIGINS naming the frontends ---------------------------------------------------------------------


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("origin", [ALLOWED, "https://pr-42.preview.example.com"])
def test_an_allowed_origin_is_echoed_with_vary(restricted_url, path, origin):
    response = preflight(restricted_url + path, origin)
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == origin
    assert response.headers["vary"] == "Origin"
    assert response.headers["access-control-allow-headers"] == REQUESTED


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize(
    "origin",
    [
        "https://evil.example.com",
        "http://app.example.com",  # another scheme is another origin
        "https://app.example.com.evil.test",
        "https://preview.example.com",  # the pattern needs a subdomain
        "null",  # a sandboxed frame or a file:// page
    ],
)
def test_another_origin_is_refused_with_no_cors_headers(restricted_url, path, origin):
    refused = preflight(restricted_url + path, origin)
    assert refused.status_code == 403
    assert refused.json()["error"] == "origin_not_allowed"
    assert cors_headers(refused) == {}


def test_a_rest_response_to_an_allowed_origin(restricted_url, user):
    response = httpx.get(
        f"{restricted_url}/rest/v1/profiles?select=id&id=eq.{user.id}", headers=signed_in(user, ALLOWED)
    )
    assert response.json() == [{"id": user.id}]
    assert response.headers.get_list("access-control-allow-origin") == [ALLOWED]
    assert "Origin" in response.headers.get_list("vary")
    assert "content-range" in exposed(response)


@pytest.mark.parametrize("path", PATHS)
def test_a_response_to_another_origin_has_no_cors_headers(restricted_url, user, path):
    # The server still answers (only a browser enforces CORS), but with nothing that lets a browser read
    # it: not even PostgREST's own `Access-Control-Allow-Origin: *`.
    method = "GET" if path.startswith("/rest/") else "POST"
    response = httpx.request(
        method, restricted_url + path, headers=signed_in(user, "https://evil.example.com")
    )
    assert response.status_code == 200
    assert cors_headers(response) == {}


# A real browser: supabase-js in headless Chromium, on a page of another origin --------------------------

PAGE = """<!doctype html>
<meta charset="utf-8">
<title>CORS</title>
<script src="/supabase.js"></script>
<script>
const config = __CONFIG__;

async function attempt(call) {
  try {
    return {ok: true, value: await call()};
  } catch (e) {
    return {ok: false, error: e instanceof Error ? `${e.name}: ${e.message}` : String(e && e.message)};
  }
}

function settled({data, count, error}) {
  if (error) throw error;
  return count === undefined || count === null ? data : {data, count};
}

async function run() {
  const client = supabase.createClient(config.api, config.anonKey, {
    global: {headers: {'sentry-trace': config.sentryTrace, baggage: config.baggage}},
    accessToken: async () => config.token,
  });
  const calls = {
    table: () => client.from('profiles').select('id, full_name', {count: 'exact'}).eq('id', config.userId)
      .then(settled),
    rpc: () => client.rpc('whoami').then(settled),
    invoke: () => client.functions.invoke('whoami').then(settled),
    // auth-js sends this header on every call to /auth/v1; here it is sent to the REST API.
    apiVersion: async () => {
      const response = await fetch(`${config.api}/rest/v1/profiles?select=id&id=eq.${config.userId}`, {
        headers: {
          apikey: config.anonKey,
          authorization: `Bearer ${config.token}`,
          'x-supabase-api-version': '2024-01-01',
        },
      });
      return {status: response.status, body: await response.json(), requestId: response.headers.get('x-request-id')};
    },
    // No header of its own: no preflight, so only the response's CORS headers decide if the page reads it.
    simple: async () => (await fetch(`${config.api}/rest/v1/profiles?select=id`)).status,
  };
  const names = Object.keys(calls);
  const outcomes = await Promise.all(names.map((name) => attempt(calls[name])));
  return Object.fromEntries(names.map((name, i) => [name, outcomes[i]]));
}

run()
  .catch((e) => ({fatal: String(e)}))
  .then((results) => fetch('/results', {method: 'POST', body: JSON.stringify(results)}));
</script>
"""


def browse(api: str, user: User) -> dict[str, Any]:
    """What the page's calls to `api` returned, run by headless Chromium."""
    config = {
        "api": api,
        "anonKey": ANON_KEY,
        "token": token_for(user),
        "userId": user.id,
        "sentryTrace": "771a43a4192642f0b136d5159a501700-b7ad6b7169203331-1",
        "baggage": "sentry-environment=test,sentry-trace_id=771a43a4192642f0b136d5159a501700",
    }
    return run_page(PAGE.replace("__CONFIG__", json.dumps(config)))


def test_supabase_js_in_a_browser_on_another_origin(api_url, user):
    results = browse(api_url, user)
    assert {name: outcome["ok"] for name, outcome in results.items()} == dict.fromkeys(CALLS, True), results
    assert results["table"]["value"] == {"data": [{"id": user.id, "full_name": "Cross Origin"}], "count": 1}
    [whoami] = results["rpc"]["value"]
    assert (whoami["id"], whoami["email"]) == (user.id, user.email)
    assert results["invoke"]["value"] == whoami
    api_version = results["apiVersion"]["value"]
    assert (api_version["status"], api_version["body"]) == (200, [{"id": user.id}])
    assert api_version["requestId"]  # exposed to the page
    assert results["simple"]["value"] == 401  # anon is refused profiles, and the page may read that


def test_supabase_js_in_a_browser_on_an_origin_not_allowed(restricted_url, user):
    # The page is on 127.0.0.1 at another port, not in CORS_ORIGINS: the browser keeps every answer from
    # it, even the one that needed no preflight (PostgREST's own CORS header would have let it through).
    results = browse(restricted_url, user)
    assert set(results) == set(CALLS), results
    assert not any(outcome["ok"] for outcome in results.values()), results
    for raw in ("apiVersion", "simple"):
        assert results[raw]["error"].startswith("TypeError: Failed to fetch"), results
    for client_call in ("table", "rpc", "invoke"):
        assert "fetch" in results[client_call]["error"].lower(), results
