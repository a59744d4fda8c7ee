"""The REST API as part of the local stack: schema reloads after `db push`, and life without PostgREST."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from app import create_app
from rpc.local.tokens import api_key
from rpc.platform.migrations import POLICIES_DIR, Runner
from rpc.platform.settings import SUPABASE_CLI_JWT_SECRET
from tests.conftest import Database
from tests.support import bearer, live_server, make_user, token_for

SERVICE_KEY = api_key(SUPABASE_CLI_JWT_SECRET, "service_role")


def test_a_pushed_table_is_served_without_restarting_postgrest(
    database: Database, api_url: str, tmp_path: Path
) -> None:
    url = f"{api_url}/rest/v1/reload_probe"
    headers = {"apikey": SERVICE_KEY}
    before = httpx.get(url, headers=headers)
    assert before.status_code == 404, before.text  # PostgREST's schema cache does not know it yet

    (tmp_path / "29991231000000_reload_probe.sql").write_text(
        "create table public.reload_probe (id int primary key);\n"
        "alter table public.reload_probe enable row level security;\n"
        "grant select on public.reload_probe to service_role;\n"
        "insert into public.reload_probe values (7);\n"
    )
    Runner(database.admin, tmp_path, POLICIES_DIR).push()

    deadline = time.monotonic() + 10
    while (after := httpx.get(url, headers=headers)).status_code == 404 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert after.status_code == 200, after.text
    assert after.json() == [{"id": 7}]


def test_without_a_postgrest_binary_functions_still_work(
    database: Database, committed, tmp_path: Path
) -> None:
    user = make_user(committed, email=f"nobin-{tmp_path.name}@example.com")
    settings = database.settings(rest_api=True, postgrest_bin=tmp_path / "missing-postgrest")
    with live_server(create_app(settings)) as url:
        rest = httpx.get(f"{url}/rest/v1/profiles", headers={"apikey": SERVICE_KEY})
        whoami = httpx.post(f"{url}/functions/v1/whoami", headers=bearer(token_for(user)))
        health = httpx.get(f"{url}/health")
    assert rest.status_code == 503
    assert rest.json()["error"] == "rest_unavailable"
    assert "npm" in rest.json()["message"]
    assert whoami.status_code == 200, whoami.text
    assert whoami.json()["id"] == user.id
    assert health.json()["rest"] is False
    assert health.json()["status"] == "degraded"


def test_production_settings_do_not_serve_rest(database: Database) -> None:
    # With a DATABASE_URL (a hosted project) Supabase's own gateway serves /rest/v1, not us.
    with live_server(create_app(database.settings())) as url:
        response = httpx.get(f"{url}/rest/v1/profiles", headers={"apikey": SERVICE_KEY})
        health = httpx.get(f"{url}/health")
    assert health.json()["rest"] is None  # not ours to run, so neither up nor down
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


def test_the_rest_api_describes_itself_at_the_gateway(api_url: str) -> None:
    # PostgREST's OpenAPI document must send tools through /rest/v1, not to its private port.
    spec = httpx.get(f"{api_url}/rest/v1/", headers={"apikey": SERVICE_KEY}).json()
    assert spec["basePath"] == "/rest/v1"
    assert "profiles" in "".join(spec["paths"])


def test_access_log_names_the_path_the_client_asked_for(api_url: str, caplog) -> None:
    with caplog.at_level("INFO", logger="rpc.access"):
        httpx.get(f"{api_url}/rest/v1/profiles?select=id&limit=1", headers={"apikey": SERVICE_KEY})
        # The line is written once the response has gone out, in the server's thread.
        deadline = time.monotonic() + 5
        while not caplog.records and time.monotonic() < deadline:
            time.sleep(0.01)
    assert "GET /rest/v1/profiles 200" in [record.getMessage() for record in caplog.records]


def test_a_query_that_is_not_utf8_is_the_clients_mistake(api_url: str) -> None:
    # PostgREST itself would answer 500 "Something went wrong".
    response = httpx.get(f"{api_url}/rest/v1/profiles?id=eq.%ff", headers={"apikey": SERVICE_KEY})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_query"
    fine = httpx.get(f"{api_url}/rest/v1/profiles?full_name=eq.J%C3%BCrgen", headers={"apikey": SERVICE_KEY})
    assert fine.status_code == 200
