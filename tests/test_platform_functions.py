"""Edge-style function plumbing: the supabase-py client, errors, CORS, request ids, rate limits, health,
and the caller contract of rpc/db.py."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import uuid
from collections.abc import Iterator

import httpx
import msgspec
import psycopg
import pytest
from litestar import Litestar, post
from litestar.params import JSONBody
from litestar.testing import AsyncTestClient
from supabase_functions import SyncFunctionsClient
from supabase_functions.errors import FunctionsHttpError

from rpc.local.tokens import api_key
from rpc.platform.auth import Caller
from rpc.platform.db import SERVICE, Database
from rpc.platform.errors import exception_handlers, pg_error, raised_by_us
from rpc.platform.migrations import local_migrations
from rpc.platform.web import JsonFormatter, LoopBatchingHandler
from tests.support import SECRET, add_member, bearer, live_server, make_company, make_user, token_for


def functions_client(base_url: str, token: str) -> SyncFunctionsClient:
    return SyncFunctionsClient(
        url=f"{base_url}/functions/v1",
        headers={"Authorization": f"Bearer {token}", "apikey": api_key(SECRET, "anon")},
    )


# Through supabase-py's own functions client, against the app under uvicorn --------------------------


def test_whoami_through_supabase_functions_client(app, committed):
    bob = make_user(committed, full_name="Bob Employer", roles=("employer", "interviewer"))
    acme = make_company(committed, bob, name="Acme")
    other = make_company(committed, make_user(committed), name="Zeta")
    add_member(committed, other, bob, "recruiter")
    with live_server(app) as base_url:
        client = functions_client(base_url, token_for(bob))
        response = client.invoke("whoami", {"body": {}})
    body = msgspec.json.decode(response)
    assert body["id"] == bob.id
    assert body["email"] == bob.email
    assert body["profile"] == {"full_name": "Bob Employer", "avatar_url": None}
    assert body["roles"] == ["employer", "interviewer"]
    assert [(c["id"], c["role"]) for c in body["companies"]] == [(acme.id, "owner"), (other.id, "recruiter")]


def test_refused_call_raises_functions_http_error(app):
    with live_server(app) as base_url:
        client = functions_client(base_url, api_key(SECRET, "anon"))
        with pytest.raises(FunctionsHttpError) as refused:
            client.invoke("whoami", {"body": {}})
    # supabase-py surfaces our error code as the message.
    assert refused.value.status == 403
    assert refused.value.message == "insufficient_role"


async def test_whoami_for_a_deleted_user_is_404(client, committed):
    ghost = make_user(committed)
    committed.execute("delete from auth.users where id = %s", (ghost.id,))
    response = await client.post("/functions/v1/whoami", headers=bearer(token_for(ghost)))
    assert response.status_code == 404
    assert response.json()["error"] == "user_not_found"


# One error shape ------------------------------------------------------------------------------------


class Interval(msgspec.Struct):
    start: int
    end: int


@post("/functions/v1/probe", status_code=200)
async def probe(data: JSONBody[Interval]) -> dict[str, int]:
    if data.end < data.start:
        raise ValueError("unexpected")
    return {"length": data.end - data.start}


async def test_validation_errors_are_422_with_field_names():
    async with AsyncTestClient(Litestar([probe], exception_handlers=exception_handlers)) as client:
        response = await client.post("/functions/v1/probe", json={"start": "x"})
        assert response.status_code == 422
        body = response.json()
        assert body["error"] == "validation_failed"
        assert "start" in body["message"] or any(f["field"] for f in body["fields"])
        malformed = await client.post(
            "/functions/v1/probe", content=b"{not json", headers={"content-type": "application/json"}
        )
        assert malformed.status_code in {400, 422}
        assert set(malformed.json()) >= {"error", "message"}
        # An unexpected exception is a 500 in our shape, without internals.
        crashed = await client.post("/functions/v1/probe", json={"start": 2, "end": 1})
        assert crashed.status_code == 500
        assert crashed.json() == {"error": "internal_error", "message": "something went wrong on our side"}


async def test_unknown_function_and_wrong_method(client):
    missing = await client.post("/functions/v1/nope")
    assert missing.status_code == 404
    assert missing.json()["error"] == "not_found"
    wrong = await client.delete("/functions/v1/whoami")
    assert wrong.status_code == 405
    assert wrong.json()["error"] == "method_not_allowed"


# CORS, request ids, Server-Timing ----------------------------------------------------------------------


async def test_cors_preflight_as_supabase_functions_answer_it(client):
    # The headers of supabase-js's `corsHeaders` (Supabase's CORS guide for functions); any other passes too
    # (tests/test_platform_cors.py).
    requested = (
        "authorization, x-client-info, apikey, content-type, x-retry-count, traceparent, tracestate, baggage"
    )
    response = await client.options(
        "/functions/v1/whoami",
        headers={
            "Origin": "http://localhost:3000",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": requested,
        },
    )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "*"
    assert response.headers["access-control-allow-headers"] == requested
    assert "POST" in response.headers["access-control-allow-methods"].split(",")


async def test_request_id_and_server_timing(client, committed):
    user = make_user(committed)
    response = await client.post(
        "/functions/v1/whoami", headers={**bearer(token_for(user)), "x-request-id": "abc-123"}
    )
    assert response.headers["x-request-id"] == "abc-123"
    assert response.headers["server-timing"].startswith("app;dur=")
    assert "db;dur=" in response.headers["server-timing"]
    generated = await client.post("/functions/v1/whoami", headers={"x-request-id": "bad id\twith spaces"})
    assert generated.headers["x-request-id"] != "bad id\twith spaces"
    assert len(generated.headers["x-request-id"]) == 32
    again = await client.post("/functions/v1/whoami")
    assert again.headers["x-request-id"] not in (generated.headers["x-request-id"], "abc-123")


@pytest.fixture
def access_log() -> Iterator[io.StringIO]:
    """What `rpc.access` writes through the app's own handler and JSON formatter."""
    stream = io.StringIO()
    handler = LoopBatchingHandler()
    handler.setStream(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("rpc.access")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield stream
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


async def test_access_log_is_one_json_line_per_request_with_its_id(client, committed, access_log):
    user = make_user(committed)
    token = token_for(user)
    response = await client.post(
        "/functions/v1/whoami", headers={**bearer(token), "x-request-id": "log-me-1"}
    )
    # The test client serves the app on a loop of its own, which logs after the response has gone out.
    for _ in range(100):
        lines = [json.loads(line) for line in access_log.getvalue().splitlines()]
        if logged := [line for line in lines if line.get("request_id") == "log-me-1"]:
            break
        await asyncio.sleep(0.01)
    [line] = logged
    assert response.status_code == 200
    assert line["logger"] == "rpc.access"
    assert (line["method"], line["path"], line["status"]) == ("POST", "/functions/v1/whoami", 200)
    assert line["duration_ms"] > 0
    assert token not in access_log.getvalue()


async def test_log_lines_of_one_loop_iteration_are_written_together_in_order():
    stream = io.StringIO()
    handler = LoopBatchingHandler(stream)
    logger = logging.Logger("batching-test")
    logger.addHandler(handler)
    for n in range(3):
        logger.warning("line %d", n)
    assert stream.getvalue() == ""
    await asyncio.sleep(0)
    assert stream.getvalue() == "line 0\nline 1\nline 2\n"
    # A thread has no loop of its own: its lines go out at once.
    await asyncio.to_thread(logger.warning, "from a thread")
    assert stream.getvalue().endswith("from a thread\n")
    # And what is pending at shutdown is flushed (logging.shutdown() calls flush()).
    logger.warning("last words")
    handler.flush()
    assert stream.getvalue().endswith("last words\n")


async def test_a_broken_log_stream_never_fails_the_caller(capsys):
    class Broken(io.StringIO):
        def write(self, text: str) -> int:
            raise OSError("disk full")

    handler = LoopBatchingHandler(Broken())
    logger = logging.Logger("broken-stream-test")
    logger.addHandler(handler)
    logger.warning("one")
    logger.warning("two")
    await asyncio.sleep(0)  # the flush at the end of the iteration fails, and says so on stderr
    assert "log lines lost: 2" in capsys.readouterr().err
    await asyncio.to_thread(logger.warning, "three")  # and a thread's line, written at once
    assert "log lines lost: 1" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("method", "path", "headers", "status"),
    [
        ("POST", "/functions/v1/no-such-function", {}, 404),
        ("DELETE", "/functions/v1/whoami", {}, 405),
        ("POST", "/functions/v1/whoami", {}, 401),
        ("GET", "/health", {}, 200),
        (
            "OPTIONS",
            "/functions/v1/whoami",
            {"Origin": "http://localhost:3000", "Access-Control-Request-Method": "POST"},
            200,
        ),
    ],
)
async def test_every_response_has_a_request_id_and_a_log_line(
    client, access_log, method, path, headers, status
):
    # Routing, CORS preflights and errors included: the request context wraps all of Litestar.
    request_id = f"every-{uuid.uuid4().hex[:8]}"
    response = await client.request(method, path, headers={**headers, "x-request-id": request_id})
    assert response.status_code == status
    assert response.headers["x-request-id"] == request_id
    assert response.headers["server-timing"].startswith("app;dur=")
    for _ in range(100):
        lines = [json.loads(line) for line in access_log.getvalue().splitlines()]
        if logged := [line for line in lines if line.get("request_id") == request_id]:
            break
        await asyncio.sleep(0.01)
    [line] = logged
    assert (line["method"], line["path"], line["status"]) == (method, path, status)


async def test_cross_origin_errors_keep_cors_headers(client):
    response = await client.post("/functions/v1/whoami", headers={"Origin": "http://localhost:3000"})
    assert response.status_code == 401
    assert response.headers["access-control-allow-origin"] == "*"


# Rate limits --------------------------------------------------------------------------------------------


async def test_rate_limit_per_caller_with_retry_after(database, committed):
    from app import create_app

    limited = create_app(database.settings(rate_limit_per_minute=3))
    first, second = make_user(committed), make_user(committed)
    async with AsyncTestClient(app=limited) as client:
        statuses = [
            (await client.post("/functions/v1/whoami", headers=bearer(token_for(first)))).status_code
            for _ in range(4)
        ]
        assert statuses == [200, 200, 200, 429]
        refused = await client.post("/functions/v1/whoami", headers=bearer(token_for(first)))
        assert refused.json()["error"] == "rate_limited"
        assert int(refused.headers["retry-after"]) > 0
        # Another caller has a budget of their own; the service role is not throttled.
        assert (
            await client.post("/functions/v1/whoami", headers=bearer(token_for(second)))
        ).status_code == 200
        service = bearer(api_key(SECRET, "service_role"))
        assert {
            (await client.post("/functions/v1/whoami", headers=service)).status_code for _ in range(5)
        } == {403}
        # Health is never throttled.
        assert {(await client.get("/health")).status_code for _ in range(5)} <= {200}
    # Refused tokens count against the client's address: guessing tokens is throttled too.
    async with AsyncTestClient(app=create_app(database.settings(rate_limit_per_minute=3))) as client:
        guesses = [
            (await client.post("/functions/v1/whoami", headers=bearer(f"guess.{n}.x"))).status_code
            for n in range(4)
        ]
        assert guesses == [401, 401, 401, 429]


# Health ---------------------------------------------------------------------------------------------------


async def test_health_reports_database_migration_and_worker(client):
    response = await client.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body["database"] is True
    assert body["latest_migration"] == local_migrations()[-1].version
    # This app runs no worker, and no other worker heartbeats in this database.
    assert body["worker_alive"] is False
    assert body["status"] == "degraded"


async def test_health_sees_a_live_worker(database):
    from app import CAPABILITIES
    from rpc.platform.jobs import Queue

    async with Queue(database.settings(), CAPABILITIES).running_worker():
        db = Database(database.authenticator)
        await db.open()
        try:
            from app import create_app

            async with AsyncTestClient(app=create_app(database.settings())) as client:
                for _ in range(50):
                    body = (await client.get("/health")).json()
                    if body["worker_alive"]:
                        break
                    await asyncio.sleep(0.1)
        finally:
            await db.close()
    assert body["status"] == "ok"
    assert body["worker_heartbeat"] is not None


async def test_health_is_503_when_the_database_is_unreachable(database):
    from app import create_app

    # The project's own secrets: with the supabase CLI's, the app would not start without checking the
    # database first (tests/test_platform_guard.py).
    unreachable = database.settings(
        api_database_url="postgresql://authenticator:postgres@127.0.0.1:9/postgres",
        supabase_jwt_secret="a-project-secret-of-at-least-32-characters",
        supabase_secret_key="sb_secret_own",
    )
    unreachable = unreachable.model_copy(update={"db_pool_timeout_s": 0.5})
    async with AsyncTestClient(app=create_app(unreachable)) as client:
        response = await client.get("/health")
    assert response.status_code == 503
    assert response.json()["database"] is False


# The caller contract (rpc/db.py) ----------------------------------------------------------------------------


@pytest.fixture
async def db(database):
    pool = Database(database.authenticator, statement_timeout_ms=300)
    await pool.open()
    yield pool
    await pool.close()


def caller_for(user_id: str) -> Caller:
    return Caller(role="authenticated", claims={"sub": user_id, "role": "authenticated"}, user_id=user_id)


async def test_the_pool_has_no_privileges_without_a_role(db):
    async with db.pool.connection() as conn:
        row = await (await conn.execute("select current_user as who")).fetchone()
        assert row["who"] == "authenticator"
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            await conn.execute("select * from public.profiles")


async def test_as_caller_sets_what_postgrest_sets(db, committed):
    user = make_user(committed)
    async with db.as_caller(caller_for(user.id), method="POST", path="/functions/v1/x") as conn:
        row = await (
            await conn.execute(
                "select current_user as role, auth.uid()::text as uid, current_setting('request.method') as method,"
                " current_setting('request.path') as path, current_setting('statement_timeout') as timeout"
            )
        ).fetchone()
    assert row == {
        "role": "authenticated",
        "uid": user.id,
        "method": "POST",
        "path": "/functions/v1/x",
        "timeout": "300ms",
    }
    # Nothing leaks into the next use of the connection.
    async with db.pool.connection() as conn:
        after = await (
            await conn.execute(
                "select current_user as role, current_setting('request.jwt.claims', true) as c"
            )
        ).fetchone()
    assert after["role"] == "authenticator"
    assert after["c"] in (None, "")


@pytest.mark.parametrize("text", ["O'Brien", "back\\slash\\", "100% %s %(x)s", "é 中 🙂", "';--"])
async def test_claims_paths_and_parameters_reach_postgres_as_sent(db, committed, text):
    # The setup is quoted client-side and cached per caller: any character must arrive intact.
    user = make_user(committed)
    claims = {"sub": user.id, "role": "authenticated", "user_metadata": {"name": text}}
    caller = Caller(role="authenticated", claims=claims, user_id=user.id)
    query = (
        "select auth.jwt() -> 'user_metadata' ->> 'name' as claim, current_setting('request.path') as path,"
        " %s::text as param"
    )
    for _ in range(2):  # quoted on the first call, from the cache on the second
        rows = await db.fetch(caller, query, (text,), method="GET", path=f"/functions/v1/{text}")
        assert rows == [{"claim": text, "path": f"/functions/v1/{text}", "param": text}]
    async with db.as_caller(caller, path=text) as conn:
        row = await (await conn.execute("select current_setting('request.path') as path")).fetchone()
    assert row == {"path": text}


async def test_fetch_and_as_caller_see_the_same_rows_under_rls(db, committed):
    owner, outsider = make_user(committed), make_user(committed)
    company = make_company(committed, owner)
    query = "select id::text from public.companies where id = %s"
    assert await db.fetch(caller_for(owner.id), query, (company.id,)) == [{"id": company.id}]
    assert await db.fetch(caller_for(outsider.id), query, (company.id,)) == []
    async with db.as_caller(caller_for(outsider.id)) as conn:
        assert await (await conn.execute(query, (company.id,))).fetchall() == []
    assert await db.fetch(SERVICE, query, (company.id,)) == [{"id": company.id}]


async def test_as_caller_rolls_back_on_error(db, committed):
    owner = make_user(committed)
    company = make_company(committed, owner, name="Before")
    with pytest.raises(psycopg.errors.CheckViolation):
        async with db.as_caller(caller_for(owner.id)) as conn:
            await conn.execute("update public.companies set name = 'After' where id = %s", (company.id,))
            await conn.execute("update public.companies set name = '' where id = %s", (company.id,))
    name = committed.execute("select name from public.companies where id = %s", (company.id,)).fetchone()
    assert name == ("Before",)


async def test_statement_timeout_applies(db, committed):
    user = make_user(committed)
    with pytest.raises(psycopg.errors.QueryCanceled):
        await db.fetch(caller_for(user.id), "select pg_sleep(2)")


async def test_many_callers_at_once_never_see_each_other(db, committed):
    users = [make_user(committed) for _ in range(6)]

    async def whoami(user_id: str) -> str:
        rows = await db.fetch(caller_for(user_id), "select auth.uid()::text as uid")
        return rows[0]["uid"]

    ids = [u.id for u in users] * 5
    assert await asyncio.gather(*(whoami(i) for i in ids)) == ids


async def test_a_token_for_a_user_who_is_gone_is_a_404(client, committed):
    user = make_user(committed)
    response = await client.post(
        "/functions/v1/whoami", headers=bearer(token_for(user, sub=str(uuid.uuid4())))
    )
    assert (response.status_code, response.json()["error"]) == (404, "user_not_found")


# Real errors from Postgres: (statement, status, code, the message a client gets). Postgres's own text
# ("invalid input syntax for type uuid: ...", "new row for relation ...") never reaches a client; what our
# functions RAISE does, and PostgREST's PTxyz convention gives the status.
DATABASE_ERRORS = [
    pytest.param(
        "select 'not-a-uuid'::uuid",
        400,
        "invalid_input",
        "a value has the wrong type or is out of range",
        id="bad-uuid",
    ),
    pytest.param(
        "select 1 / 0", 400, "invalid_input", "a value has the wrong type or is out of range", id="division"
    ),
    pytest.param(
        "insert into public.skills (slug, name, category) values ('Not A Slug', 'x', 'data')",
        422,
        "check_violation",
        "a value breaks a rule (skills_slug_check)",
        id="check-constraint",
    ),
    pytest.param(
        "insert into public.skills (slug, name, category) select slug, name, category from public.skills limit 1",
        409,
        "conflict",
        "that already exists (skills_slug_key)",
        id="unique",
    ),
    pytest.param(
        "insert into public.skills (slug, category) values ('no-name', 'data')",
        422,
        "not_null_violation",
        "a required value is missing (name)",
        id="not-null",
    ),
    pytest.param(
        'select public.post_role(\'{"title": "x"}\')',
        400,
        "invalid_input",
        "a new role needs a company_id",
        id="our-raise",
    ),
    pytest.param(
        "select public.respond_to_introduction(gen_random_uuid(), true)",
        403,
        "forbidden",
        "no such introduction for you",
        id="our-raise-42501",
    ),
    pytest.param(
        "select private.config_value('x')", 403, "forbidden", "you are not allowed to do that", id="grant"
    ),
    pytest.param(
        "do $$ begin raise exception 'gone' using errcode = 'PT404'; end $$",
        404,
        "not_found",
        "gone",
        id="pt404",
    ),
]


@pytest.mark.parametrize(("statement", "status", "code", "message"), DATABASE_ERRORS)
def test_database_errors_say_what_happened_without_postgres_text(conn, statement, status, code, message):
    user = make_user(conn, roles=("admin",))  # past the skills policies, so the constraints answer
    conn.execute("savepoint before")
    try:
        conn.execute(
            "select set_config('role', 'authenticated', true), set_config('request.jwt.claims', %s, true)",
            (json.dumps({"sub": user.id, "role": "authenticated"}),),
        )
        with pytest.raises(psycopg.Error) as raised:
            conn.execute(statement)
    finally:
        conn.execute("rollback to savepoint before")
    error = pg_error(raised.value)
    assert (error.status, error.code, error.message) == (status, code, message)
    assert (raised.value.diag.message_primary or "") not in message or raised_by_us(raised.value)


async def test_a_nul_in_a_value_is_bad_input_not_our_fault(db, committed):
    # psycopg refuses it before sending (no Postgres text holds it); the caller sent it, so a 400.
    with pytest.raises(psycopg.DataError) as raised:
        await db.fetch(SERVICE, "select %s::text as value", ("a\x00b",))
    assert raised.value.sqlstate is None
    error = pg_error(raised.value)
    assert (error.status, error.code) == (400, "invalid_input")


def test_openapi_schema_lists_functions(app):
    with live_server(app) as base_url:
        schema = httpx.get(f"{base_url}/schema/openapi.json").json()
    assert "/functions/v1/whoami" in schema["paths"]
    assert schema["paths"]["/functions/v1/whoami"]["post"]["operationId"] == "whoami"
