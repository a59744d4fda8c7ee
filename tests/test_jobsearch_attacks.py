"""An attacker's review of the job search assistant: privileges of its functions, RLS under hostile callers,
Storage paths that try to reach another user's folder, and the functions' answers to hostile input (wrong
JSON types, NUL bytes, lone surrogates, oversized values) against the real local stack: the app under
uvicorn with real PostgREST, Storage and the local OpenAI-compatible server.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any, LiteralString

import httpx
import psycopg
import pytest
from procrastinate.periodic import PeriodicRegistry

from app import CAPABILITIES, create_app
from rpc.local.rest import HOW_TO_GET_IT, find_postgrest
from rpc.platform.jobs import Queue
from tests.ai_server import AIServer, Reply
from tests.conftest import Database
from tests.support import (
    ANON_KEY,
    User,
    as_user,
    live_server,
    make_company,
    make_role,
    make_user,
    token_for,
    value,
    work_until_idle,
)
from tests.test_jobsearch_resumes import text_pdf

TEXT = "text/plain"
HTTP = httpx.Client(timeout=30)


@pytest.fixture(autouse=True)
def fresh_provider(ai: AIServer) -> None:
    ai.reset()


@pytest.fixture(scope="module")
def stack(database: Database, ai: AIServer) -> Iterator[str]:
    """The whole local stack (functions, PostgREST, Storage, Auth) with the AI server as the provider."""
    settings = database.settings(
        rest_api=True,
        storage_api=True,
        auth_api=True,
        openai_api_key="sk-test",
        openai_base_url=ai.url,  # type: ignore[attr-defined]
        openai_timeout_s=2.0,
        openai_max_retries=0,
    )
    if find_postgrest(settings) is None:
        pytest.skip(HOW_TO_GET_IT)
    with live_server(create_app(settings)) as url:
        yield url


@pytest.fixture
def alice(committed: psycopg.Connection) -> User:
    return make_user(committed, full_name="Alice Attacker")


@pytest.fixture
def bob(committed: psycopg.Connection) -> User:
    return make_user(committed, full_name="Bob Victim")


def headers(user: User | None) -> dict[str, str]:
    return {"apikey": ANON_KEY, "Authorization": f"Bearer {token_for(user) if user else ANON_KEY}"}


def post(stack: str, path: str, user: User | None, **kwargs: Any) -> httpx.Response:
    return HTTP.post(
        f"{stack}/functions/v1/{path}", headers={**headers(user), **kwargs.pop("h", {})}, **kwargs
    )


def upload_raw(
    stack: str, user: User, raw_path: str, data: bytes = b"Jane Doe, Python", content_type: str = TEXT
) -> httpx.Response:
    """An upload whose path goes on the wire as written (percent-encoding included), as curl would send it."""
    return HTTP.post(
        f"{stack}/storage/v1/object/resumes/{raw_path}",
        content=data,
        headers={**headers(user), "content-type": content_type},
    )


def client_error(response: httpx.Response) -> dict[str, Any]:
    """The platform's error shape for a client's mistake: a 4xx, a snake_case code, no Postgres text."""
    assert 400 <= response.status_code < 500, (response.status_code, response.text)
    body = response.json()
    assert set(body) >= {"error", "message"}, body
    for leak in ("violates", "psycopg", "Traceback", "SQLSTATE", "relation ", "PostgreSQL"):
        assert leak not in response.text, response.text
    return body


# Privileges of the functions -------------------------------------------------------------------------------

# Every function the job search migrations define, by schema and name.
FUNCTIONS: LiteralString = """
select p.oid::regprocedure::text as signature, p.prosecdef as definer, p.proconfig as config
from pg_proc p join pg_namespace n on n.oid = p.pronamespace
where (n.nspname, p.proname) in (
  ('private', 'record_ai_usage'), ('private', 'ai_tokens_today'), ('private', 'keep_one_primary_resume'),
  ('private', 'stamp_resume_skill_acceptance'), ('private', 'add_accepted_resume_skill'),
  ('private', 'queue_resume_processing'), ('private', 'queue_resume'), ('private', 'follow_resume_object'),
  ('private', 'resume_skills'), ('private', 'finish_resume'), ('private', 'fail_resume'),
  ('private', 'requeue_stranded_resumes'), ('private', 'refresh_listings'),
  ('private', 'role_postings_listings_changed'), ('private', 'role_skills_listings_changed'),
  ('private', 'companies_listings_changed'), ('public', 'search_jobs'), ('public', 'listing'),
  ('private', 'prepare_saved_search'), ('public', 'search_skills'), ('private', 'skill_embedding_source'),
  ('private', 'skills_to_embed'), ('private', 'search_skills_by_meaning'), ('private', 'chat_turn')
)
"""
PUBLIC_FUNCTIONS = {"search_jobs", "search_skills", "listing"}


def test_every_function_pins_its_search_path(conn):
    rows = conn.execute(FUNCTIONS).fetchall()
    assert len(rows) == 24
    unpinned = [sig for sig, _, config in rows if not any(c.startswith("search_path=") for c in config or [])]
    assert unpinned == []


@pytest.mark.parametrize("role", ["anon", "authenticated", "public"])
def test_no_api_role_executes_a_private_or_definer_function(conn, role):
    exposed = []
    for signature, definer, _ in conn.execute(FUNCTIONS).fetchall():
        if signature.split("(")[0].removeprefix("public.") in PUBLIC_FUNCTIONS and not definer:
            continue
        if role == "public":
            granted = value(
                conn,
                # No ACL at all is the default one, which grants PUBLIC execute.
                "select exists (select 1 from pg_proc p,"
                " aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a"
                " where p.oid = %s::regprocedure and a.grantee = 0 and a.privilege_type = 'EXECUTE')",
                (signature,),
            )
        else:
            granted = value(conn, "select has_function_privilege(%s, %s, 'execute')", (role, signature))
        if granted:
            exposed.append(signature)
    assert exposed == []


def test_the_ai_usage_table_is_out_of_the_api_roles_reach(conn):
    for role in ("anon", "authenticated"):
        assert not value(conn, "select has_table_privilege(%s, 'private.ai_usage', 'select')", (role,))
        assert not value(
            conn, "select has_table_privilege(%s, 'private.skill_embeddings', 'select')", (role,)
        )


# Storage paths: another user's folder by any spelling --------------------------------------------------------


@pytest.mark.parametrize(
    "shape",
    ["dotdot", "encoded_dotdot", "upper", "no_folder", "leading_slash", "double_slash", "nul"],
)
def test_no_upload_spelling_reaches_another_users_folder_or_queues_for_them(
    stack, committed, alice, bob, shape
):
    raw = {
        "dotdot": f"{alice.id}/../{bob.id}/cv.txt",
        "encoded_dotdot": f"{alice.id}/%2E%2E/{bob.id}/cv.txt",
        "upper": f"{bob.id.upper()}/cv.txt",
        "no_folder": "cv.txt",
        "leading_slash": f"%2F{bob.id}/cv.txt",
        "double_slash": f"{alice.id}//{bob.id}/cv.txt",
        "nul": f"{alice.id}/cv%00.txt",
    }[shape]
    response = upload_raw(stack, alice, raw)
    assert response.status_code >= 400, response.text
    assert response.status_code < 500, response.text
    assert value(committed, "select count(*) from public.resumes where user_id = %s", (bob.id,)) == 0
    assert value(committed, "select count(*) from public.resumes where user_id = %s", (alice.id,)) == 0
    assert (
        value(
            committed,
            "select count(*) from storage.objects where bucket_id = 'resumes'"
            " and (name like %s or name like %s)",
            (f"%{bob.id}%", f"%{bob.id.upper()}%"),
        )
        == 0
    )


def test_an_upload_into_ones_own_folder_queues_for_oneself_only(stack, committed, alice):
    response = upload_raw(stack, alice, f"{alice.id}/cv.txt")
    assert response.status_code == 200, response.text
    assert (
        value(
            committed,
            "select user_id::text from public.resumes where object_path = %s",
            (f"{alice.id}/cv.txt",),
        )
        == alice.id
    )


@pytest.fixture(scope="module")
async def work(database: Database, stack: str) -> AsyncIterator[Any]:
    """Runs the real worker on the resumes queue until nothing is due (no AI: the headings split)."""
    settings = database.settings(supabase_url=stack)
    queue = Queue(settings, CAPABILITIES)
    app = queue.app()
    app.periodic_registry = PeriodicRegistry()

    async def run() -> None:
        await work_until_idle(app, queue, settings, ["resumes"], name="attacks")

    async with queue.opened(app):
        yield run


async def test_a_pdf_whose_text_has_nul_characters_is_read(stack, committed, work, alice):
    # A string with a NUL drawn in a PDF: pypdf's text has the NUL, which Postgres text cannot hold.
    path = f"{alice.id}/nul.pdf"
    pdf = text_pdf([["Jane\x00Doe", "Skills", "Python, SQL"]])
    assert upload_raw(stack, alice, path, pdf, "application/pdf").status_code == 200
    await work()
    status, reason, text = committed.execute(
        "select status, failure_reason, text from public.resumes where object_path = %s", (path,)
    ).fetchone()
    assert (status, reason) == ("ready", None)
    assert text.startswith("JaneDoe\nSkills")


# resumes/process ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        {"path": "x\u0000y"},
        {"path": 1},
        {"path": None},
        {"path": ["a"]},
        {"path": "../../etc/passwd"},
    ],
    ids=["nul", "number", "null", "list", "dotdot"],
)
def test_process_answers_hostile_paths_with_a_client_error(stack, committed, alice, body):
    client_error(post(stack, "resumes/process", alice, json=body))
    assert value(committed, "select count(*) from public.resumes where user_id = %s", (alice.id,)) == 0


@pytest.mark.parametrize(
    "content",
    [b"", b"not json", b"null", b'"path"', b"{", b'{"path": "a"}' * 2, b'{"path": "\\ud800"}', b"\xff\xfe"],
    ids=str,
)
def test_process_answers_a_broken_body_with_a_client_error(stack, alice, content):
    client_error(
        post(stack, "resumes/process", alice, content=content, h={"content-type": "application/json"})
    )


def test_process_of_a_dotdot_path_into_another_folder_is_not_found(stack, committed, alice, bob):
    # Bob's file exists; Alice asks for it through a path that starts in her own folder.
    assert upload_raw(stack, bob, f"{bob.id}/cv.txt").status_code == 200
    response = post(stack, "resumes/process", alice, json={"path": f"{alice.id}/../{bob.id}/cv.txt"})
    assert client_error(response)["error"] in ("file_not_found", "invalid_input")
    assert value(committed, "select count(*) from public.resumes where user_id = %s", (alice.id,)) == 0


def test_process_as_the_anon_key_is_refused(stack, alice):
    assert (
        client_error(post(stack, "resumes/process", None, json={"path": f"{alice.id}/cv.txt"}))["error"]
        == "insufficient_role"
    )


# The chat --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        {"message": "hello\u0000world"},
        {"message": 5},
        {"message": None},
        {"message": ["hi"]},
        {"message": {"text": "hi"}},
        {"message": "hi", "conversation_id": 5},
        {"message": "hi", "conversation_id": "00000000-0000-0000-0000-00000000000g"},
        {"message": "hi", "conversation_id": "x" * 10000},
        {"message": "x" * 1_000_000},
    ],
    ids=["nul", "number", "null", "list", "object", "id number", "id not hex", "id huge", "huge"],
)
def test_the_chat_answers_hostile_input_with_a_client_error(stack, ai, committed, alice, body):
    client_error(post(stack, "ai/chat", alice, json=body))
    assert ai.requests == []
    assert (
        value(committed, "select count(*) from public.chat_conversations where user_id = %s", (alice.id,))
        == 0
    )


@pytest.mark.parametrize(
    "content", [b"", b"not json", b"null", b"[]", b'"hi"', b'{"message": "\\ud800"}', b"\xff\xfe"], ids=str
)
def test_the_chat_answers_a_broken_body_with_a_client_error(stack, ai, alice, content):
    client_error(post(stack, "ai/chat", alice, content=content, h={"content-type": "application/json"}))
    assert ai.requests == []


def test_someone_elses_conversation_by_any_spelling_of_its_id_is_not_found(stack, ai, committed, alice, bob):
    ai.script(Reply("Hi Bob."))
    response = post(stack, "ai/chat", bob, json={"message": "my plans"})
    assert response.status_code == 200
    conversation = value(
        committed, "select id::text from public.chat_conversations where user_id = %s", (bob.id,)
    )
    for spelling in (
        conversation,
        conversation.upper(),
        "{" + conversation + "}",
        conversation.replace("-", ""),
    ):
        refused = post(stack, "ai/chat", alice, json={"message": "let me in", "conversation_id": spelling})
        assert client_error(refused)["error"] in ("conversation_not_found", "validation_failed"), spelling
    assert (
        value(
            committed, "select count(*) from public.chat_messages where conversation_id = %s", (conversation,)
        )
        == 2
    )
    assert len(ai.requests) == 1


# skills/search ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        {"query": "py\u0000thon"},
        {"query": "python", "limit": 51},
        {"query": "python", "limit": 0},
        {"query": "python", "limit": -1},
        {"query": "python", "limit": 10**12},
        {"query": "python", "limit": 1.5},
        {"query": "python", "limit": None},
        {"query": "x" * 201},
        {"query": 7},
        {"query": None},
    ],
    ids=["nul", "51", "0", "-1", "huge", "float", "null", "long", "number", "null query"],
)
def test_skills_search_answers_hostile_input_with_a_client_error(stack, ai, alice, body):
    for user in (alice, None):
        client_error(post(stack, "skills/search", user, json=body))
    assert ai.requests == []


@pytest.mark.parametrize("content", [b"", b"not json", b"null", b"[]", b'{"query": "\\ud800"}'], ids=str)
def test_skills_search_answers_a_broken_body_with_a_client_error(stack, content):
    client_error(post(stack, "skills/search", None, content=content, h={"content-type": "application/json"}))


# Through PostgREST: rows moved to another owner, leaks through returning -----------------------------------------


def rest(stack: str, user: User | None, method: str, path: str, **kwargs: Any) -> httpx.Response:
    return HTTP.request(
        method,
        f"{stack}/rest/v1/{path}",
        headers={**headers(user), "Prefer": "return=representation", **kwargs.pop("h", {})},
        **kwargs,
    )


def test_a_saved_search_cannot_be_moved_to_another_user_or_planted_on_them(stack, committed, alice, bob):
    created = rest(stack, alice, "POST", "saved_searches", json={"name": "mine", "filters": {}})
    assert created.status_code == 201, created.text
    search = created.json()[0]["id"]
    moved = rest(stack, alice, "PATCH", f"saved_searches?id=eq.{search}", json={"user_id": bob.id})
    assert moved.status_code in (400, 401, 403), moved.text
    planted = rest(stack, alice, "POST", "saved_searches", json={"name": "yours", "user_id": bob.id})
    assert planted.status_code in (401, 403), planted.text
    assert value(committed, "select count(*) from public.saved_searches where user_id = %s", (bob.id,)) == 0


def test_a_conversation_cannot_be_planted_on_another_user(stack, committed, alice, bob):
    planted = rest(stack, alice, "POST", "chat_conversations", json={"title": "yours", "user_id": bob.id})
    assert planted.status_code in (401, 403), planted.text
    upserted = rest(
        stack,
        alice,
        "POST",
        "chat_conversations",
        json={"title": "x"},
        h={"Prefer": "return=representation,resolution=merge-duplicates"},
    )
    assert upserted.status_code in (201, 401, 403), upserted.text
    assert (
        value(committed, "select count(*) from public.chat_conversations where user_id = %s", (bob.id,)) == 0
    )


def test_a_resume_cannot_be_given_away_or_its_status_forged(conn, alice, bob, committed):
    resume = value(
        committed,
        "insert into public.resumes (user_id, object_path, status) values (%s, %s, 'queued') returning id::text",
        (alice.id, f"{alice.id}/forged.txt"),
    )
    try:
        for query in (
            "update public.resumes set user_id = %s where id = %s",
            "update public.resumes set object_path = %s where id = %s",
            "update public.resumes set text = %s where id = %s",
        ):
            as_user(conn, alice).refused(query, (bob.id, resume), sqlstate="42501")
    finally:
        committed.execute("delete from public.resumes where id = %s", (resume,))


def test_anon_reads_the_boards_public_columns_only_and_nothing_behind_it(stack):
    listings = rest(stack, None, "GET", "listings?select=*&limit=1")
    assert listings.status_code == 200, listings.text
    for hidden in (
        "role_postings",
        "role_skills",
        "saved_listings",
        "saved_searches",
        "resumes",
        "chat_conversations",
        "chat_messages",
        "resume_skill_suggestions",
    ):
        response = rest(stack, None, "GET", f"{hidden}?select=*")
        assert response.status_code in (200, 401, 403), (hidden, response.text)
        if response.status_code == 200:
            assert response.json() == [], hidden


def test_a_listing_cannot_be_saved_for_another_user(stack, committed, alice, bob):
    posting = make_role(committed, make_company(committed, make_user(committed), verified=True))
    # Saving it for herself works: only the owner is wrong below.
    mine = rest(stack, alice, "POST", "saved_listings", json={"role_posting_id": posting})
    assert mine.status_code == 201, mine.text
    planted = rest(
        stack, alice, "POST", "saved_listings", json={"user_id": bob.id, "role_posting_id": posting}
    )
    assert planted.status_code in (401, 403), planted.text
    assert value(committed, "select count(*) from public.saved_listings where user_id = %s", (bob.id,)) == 0
