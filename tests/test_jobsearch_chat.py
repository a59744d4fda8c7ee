"""Careers chat: conversations and messages under RLS, the turn the chat function stores, and
`POST /functions/v1/ai/chat` streaming answers from the local OpenAI-compatible server through the real SDK.

The data plane runs as `tests.support` actors inside the test's rolled-back transaction; the route runs
the app under uvicorn (with real PostgREST behind /rest/v1) against tests/ai_server.py, read by httpx as a
fetch reader would, by supabase-py and by supabase-js.
"""

from __future__ import annotations

import json
import re
import socket
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, LiteralString

import httpx
import psycopg
import pytest
from litestar.testing import AsyncTestClient
from postgrest.exceptions import APIError
from psycopg.rows import dict_row
from supabase import Client, ClientOptions, create_client

from app import create_app
from rpc.jobsearch.chat import SYSTEM_PROMPT
from rpc.jobsearch.settings import get_jobsearch_settings
from rpc.local.rest import HOW_TO_GET_IT, find_postgrest
from tests.ai_server import AIServer, Reply, choice, chunk
from tests.conftest import Database
from tests.support import (
    ANON_KEY,
    Actor,
    User,
    actor,
    as_anon,
    as_service,
    as_user,
    bearer,
    live_server,
    make_company,
    make_executive,
    make_role,
    make_skill,
    make_user,
    run_node_tests,
    token_for,
    value,
)

INSUFFICIENT_PRIVILEGE = "42501"
FOREIGN_KEY_VIOLATION = "23503"
CHECK_VIOLATION = "23514"

TURN: LiteralString = "select private.chat_turn(%s, %s, %s, %s, %s) as turn"


# A world: an owner with a conversation of two finished turns, another user, a platform admin ----------------


@dataclass(frozen=True)
class World:
    owner: User
    other: User
    platform_admin: User
    conversation: str  # the owner's
    messages: tuple[str, ...]  # its four messages, in order


ACTORS = ("anon", "owner", "other", "platform_admin", "service")


def the_function(conn: psycopg.Connection, user: User) -> Actor:
    """The chat function's session: the user's claims under service_role (`Session.privileged()`)."""
    return Actor(conn, "service_role", user.claims)


def turn(
    conn: psycopg.Connection,
    user: User,
    message: str,
    conversation: str | None = None,
    *,
    history_chars: int = 100_000,
    context_chars: int = 100_000,
    listings: int = 20,
) -> dict[str, Any] | None:
    return the_function(conn, user).one(
        TURN, (conversation, message, history_chars, context_chars, listings)
    )["turn"]


def finish(conn: psycopg.Connection, message_id: str, content: str, status: str = "complete") -> None:
    """What the function writes when an answer ends."""
    conn.execute(
        "update public.chat_messages set content = %s, status = %s, completed_at = clock_timestamp()"
        " where id = %s",
        (content, status, message_id),
    )


def make_world(conn: psycopg.Connection) -> World:
    owner = make_user(conn, full_name="Olive Owner")
    first = turn(conn, owner, "How do I move   from finance\ninto operations?")
    assert first is not None
    finish(conn, first["message_id"], "Start with a project that spans both.")
    second = turn(conn, owner, "Which certifications help?", first["conversation_id"])
    assert second is not None
    finish(conn, second["message_id"], "APICS CPIM is a common one.")
    return World(
        owner=owner,
        other=make_user(conn, full_name="Oscar Other"),
        platform_admin=make_user(conn, full_name="Pat Platform", roles=("admin",)),
        conversation=first["conversation_id"],
        messages=(
            first["user_message_id"],
            first["message_id"],
            second["user_message_id"],
            second["message_id"],
        ),
    )


@pytest.fixture
def world(conn: psycopg.Connection) -> World:
    return make_world(conn)


def messages(conn: psycopg.Connection, conversation: str) -> list[dict[str, Any]]:
    """A conversation's messages as the superuser sees them, in order."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            "select id::text, role, content, status, completed_at is not null as finished"
            " from public.chat_messages where conversation_id = %s order by created_at",
            (conversation,),
        ).fetchall()


# The turn ----------------------------------------------------------------------------------------------


def test_a_turn_without_a_conversation_starts_one_titled_by_the_message(conn, world):
    assert value(
        conn, "select title from public.chat_conversations where id = %s", (world.conversation,)
    ) == ("How do I move from finance into operations?")
    assert value(
        conn, "select user_id::text from public.chat_conversations where id = %s", (world.conversation,)
    ) == (world.owner.id)


def test_a_turn_stores_the_question_and_an_empty_unfinished_answer_after_it(conn, world):
    started = turn(conn, world.owner, "And after that?", world.conversation)
    assert started is not None
    assert started["created"] is False
    assert started["conversation_id"] == world.conversation
    stored = messages(conn, world.conversation)
    assert [m["id"] for m in stored] == [*world.messages, started["user_message_id"], started["message_id"]]
    assert stored[-2:] == [
        {
            "id": started["user_message_id"],
            "role": "user",
            "content": "And after that?",
            "status": "complete",
            "finished": True,
        },
        {
            "id": started["message_id"],
            "role": "assistant",
            "content": "",
            "status": "incomplete",
            "finished": False,
        },
    ]


def test_history_is_every_earlier_finished_message_oldest_first(conn, world):
    started = turn(conn, world.owner, "And after that?", world.conversation)
    assert started is not None
    assert started["history"] == [
        {"role": "user", "content": "How do I move   from finance\ninto operations?"},
        {"role": "assistant", "content": "Start with a project that spans both."},
        {"role": "user", "content": "Which certifications help?"},
        {"role": "assistant", "content": "APICS CPIM is a common one."},
    ]


def test_history_is_the_newest_messages_that_fit_its_budget(conn, world):
    # The last question and answer are 26 + 27 characters: they fit in 60, the answer before them does not.
    started = turn(conn, world.owner, "And after that?", world.conversation, history_chars=60)
    assert started is not None
    assert started["history"] == [
        {"role": "user", "content": "Which certifications help?"},
        {"role": "assistant", "content": "APICS CPIM is a common one."},
    ]


def test_history_leaves_out_failed_and_unfinished_answers_and_keeps_incomplete_ones(conn, world):
    failed = turn(conn, world.owner, "Q3", world.conversation)
    assert failed is not None
    finish(conn, failed["message_id"], "Half an answ", "failed")
    left = turn(conn, world.owner, "Q4", world.conversation)
    assert left is not None
    finish(conn, left["message_id"], "What the client saw", "incomplete")
    streaming = turn(conn, world.owner, "Q5", world.conversation)  # its answer is still streaming
    assert streaming is not None
    started = turn(conn, world.owner, "Q6", world.conversation)
    assert started is not None
    assert started["history"][-4:] == [
        {"role": "user", "content": "Q3"},
        {"role": "user", "content": "Q4"},
        {"role": "assistant", "content": "What the client saw"},
        {"role": "user", "content": "Q5"},
    ]


def test_two_turns_of_one_conversation_take_their_places_in_order(database, committed):
    world = make_world(committed)
    with psycopg.connect(database.superuser) as first, psycopg.connect(database.superuser) as second:
        first.execute("select 1")  # a transaction open, so the turn runs in a savepoint of it, uncommitted
        assert turn(first, world.owner, "First of two", world.conversation) is not None
        with ThreadPoolExecutor(1) as pool:
            waiting = pool.submit(turn, second, world.owner, "Second of two", world.conversation)
            waits_for_lock = eventually(
                lambda: value(
                    committed,
                    "select wait_event_type = 'Lock' from pg_stat_activity where pid = %s",
                    (second.info.backend_pid,),
                )
            )
            assert waits_for_lock, "the second turn did not wait for the first"
            first.commit()
            later = waiting.result(timeout=10)
        second.commit()
    assert later is not None
    assert later["history"][-1] == {"role": "user", "content": "First of two"}


def test_someone_elses_conversation_is_not_found_and_nothing_is_written(conn, world):
    before = value(
        conn, "select updated_at from public.chat_conversations where id = %s", (world.conversation,)
    )
    assert turn(conn, world.other, "Let me in", world.conversation) is None
    assert turn(conn, world.owner, "Nowhere", "00000000-0000-0000-0000-000000000000") is None
    assert [m["id"] for m in messages(conn, world.conversation)] == list(world.messages)
    assert value(conn, "select count(*) from public.chat_messages where user_id = %s", (world.other.id,)) == 0
    assert (
        value(conn, "select updated_at from public.chat_conversations where id = %s", (world.conversation,))
        == before
    )


@pytest.mark.parametrize("who", ["anon", "owner"])
def test_only_the_chat_function_runs_a_turn(conn, world, who):
    actor(conn, world, who).refused(TURN, (None, "hi", 100, 100, 5), sqlstate=INSUFFICIENT_PRIVILEGE)


def test_a_turn_needs_a_user(conn, world):
    as_service(conn).refused(TURN, (None, "hi", 100, 100, 5), sqlstate=INSUFFICIENT_PRIVILEGE)


def test_a_message_belongs_to_its_conversations_owner(conn, world):
    as_service(conn).refused(
        "insert into public.chat_messages (conversation_id, user_id, role, content, completed_at)"
        " values (%s, %s, 'user', 'x', now())",
        (world.conversation, world.other.id),
        sqlstate=FOREIGN_KEY_VIOLATION,
    )


def test_a_users_message_is_always_finished(conn, world):
    as_service(conn).refused(
        "insert into public.chat_messages (conversation_id, user_id, role, content, status)"
        " values (%s, %s, 'user', 'x', 'incomplete')",
        (world.conversation, world.owner.id),
        sqlstate=CHECK_VIOLATION,
    )


# RLS: conversations --------------------------------------------------------------------------------------


# Who reads a user's conversation and its messages: the owner, and service_role past RLS.
OWNER_READS = [
    ("anon", INSUFFICIENT_PRIVILEGE),
    ("owner", True),
    ("other", False),
    ("platform_admin", False),
    ("service", True),
]


def ids(rows: list[dict[str, Any]]) -> list[str]:
    return sorted(str(row["id"]) for row in rows)


@pytest.mark.parametrize(("who", "sees"), OWNER_READS)
def test_conversations_are_read_by_their_owner_only(conn, world, who, sees):
    query: LiteralString = "select id from public.chat_conversations"
    if sees == INSUFFICIENT_PRIVILEGE:
        actor(conn, world, who).refused(query, sqlstate=sees)
        return
    assert (world.conversation in ids(actor(conn, world, who).rows(query))) is sees
    if who != "service":
        assert all(world.conversation == i for i in ids(actor(conn, world, who).rows(query)))


@pytest.mark.parametrize(("who", "sees"), OWNER_READS)
def test_messages_are_read_by_their_owner_only(conn, world, who, sees):
    query: LiteralString = "select id from public.chat_messages where conversation_id = %s"
    if sees == INSUFFICIENT_PRIVILEGE:
        actor(conn, world, who).refused(query, (world.conversation,), sqlstate=sees)
        return
    assert ids(actor(conn, world, who).rows(query, (world.conversation,))) == (
        sorted(world.messages) if sees else []
    )


def test_the_owner_starts_a_conversation_and_reads_it_back(conn, world):
    row = as_user(conn, world.other).one(
        "insert into public.chat_conversations (title) values ('Salary talks') returning *"
    )
    assert (str(row["user_id"]), row["title"]) == (world.other.id, "Salary talks")


@pytest.mark.parametrize("who", ["other", "platform_admin"])
def test_nobody_starts_a_conversation_for_someone_else(conn, world, who):
    actor(conn, world, who).refused(
        "insert into public.chat_conversations (user_id, title) values (%s, 'Mine now') returning id",
        (world.owner.id,),
        sqlstate=INSUFFICIENT_PRIVILEGE,
    )


def test_anon_starts_no_conversation(conn, world):
    as_anon(conn).refused(
        "insert into public.chat_conversations (title) values ('Hello') returning id",
        sqlstate=INSUFFICIENT_PRIVILEGE,
    )


@pytest.mark.parametrize(
    "statement",
    [
        "update public.chat_conversations set id = gen_random_uuid() where id = %s",
        "update public.chat_conversations set created_at = now() where id = %s",
        "update public.chat_conversations set updated_at = now() where id = %s",
    ],
    ids=["id", "created_at", "updated_at"],
)
def test_a_conversations_id_and_times_are_the_databases(conn, world, statement):
    as_user(conn, world.owner).refused(statement, (world.conversation,), sqlstate=INSUFFICIENT_PRIVILEGE)


def test_a_conversation_cannot_be_given_away(conn, world):
    as_user(conn, world.owner).refused(
        "update public.chat_conversations set user_id = %s where id = %s",
        (world.other.id, world.conversation),
        sqlstate=INSUFFICIENT_PRIVILEGE,
    )


@pytest.mark.parametrize(("who", "renamed"), [("owner", 1), ("other", 0), ("platform_admin", 0)])
def test_the_owner_renames_a_conversation(conn, world, who, renamed):
    assert (
        actor(conn, world, who).count(
            "update public.chat_conversations set title = 'Renamed' where id = %s", (world.conversation,)
        )
        == renamed
    )


@pytest.mark.parametrize(("who", "deleted"), [("owner", 1), ("other", 0), ("platform_admin", 0)])
def test_the_owner_deletes_a_conversation_with_its_messages(conn, world, who, deleted):
    assert (
        actor(conn, world, who).count(
            "delete from public.chat_conversations where id = %s", (world.conversation,)
        )
        == deleted
    )
    assert len(messages(conn, world.conversation)) == (0 if deleted else 4)


def test_anon_changes_no_conversation(conn, world):
    anon = as_anon(conn)
    anon.refused("update public.chat_conversations set title = 'x'", sqlstate=INSUFFICIENT_PRIVILEGE)
    anon.refused("delete from public.chat_conversations", sqlstate=INSUFFICIENT_PRIVILEGE)


# RLS: messages are the function's to write -----------------------------------------------------------------


@pytest.mark.parametrize("who", ["anon", "owner", "other", "platform_admin"])
@pytest.mark.parametrize("role", ["user", "assistant"])
def test_nobody_writes_a_message_directly(conn, world, who, role):
    actor(conn, world, who).refused(
        "insert into public.chat_messages (conversation_id, user_id, role, content) values (%s, %s, %s, 'x')"
        " returning id",
        (world.conversation, world.owner.id, role),
        sqlstate=INSUFFICIENT_PRIVILEGE,
    )


@pytest.mark.parametrize("who", ["anon", "owner", "other", "platform_admin"])
@pytest.mark.parametrize(
    "statement",
    [
        "update public.chat_messages set content = 'Rewritten' where id = %s",
        "update public.chat_messages set status = 'complete' where id = %s",
        "delete from public.chat_messages where id = %s",
    ],
)
def test_nobody_edits_or_deletes_a_message(conn, world, who, statement):
    actor(conn, world, who).refused(statement, (world.messages[1],), sqlstate=INSUFFICIENT_PRIVILEGE)


# The context ---------------------------------------------------------------------------------------------


def add_resume(
    conn: psycopg.Connection, user: User, text: str, *, primary: bool, status: str = "ready"
) -> None:
    conn.execute(
        "insert into public.resumes"
        " (user_id, object_path, content_hash, media_type, text, status, is_primary)"
        " values (%s, %s, encode(sha256(convert_to(%s, 'utf8')), 'hex'), 'text/plain', %s, %s, %s)",
        (user.id, f"{user.id}/{text[:8]}.txt", text, text, status, primary),
    )


def save_listing(conn: psycopg.Connection, user: User, role_id: str, saved: str) -> None:
    conn.execute(
        "insert into public.saved_listings (user_id, role_posting_id, created_at)"
        " values (%s, %s, now() - %s::interval)",
        (user.id, role_id, saved),
    )


def test_the_context_is_the_profile_primary_resume_and_saved_listings_on_the_board(conn):
    skill = make_skill(conn, "treasury")
    user = make_executive(conn, skills={skill: 5}, seniority="vp", industries=["fintech"], location="Berlin")
    conn.execute(
        "update public.executive_profiles set headline = 'Finance leader' where user_id = %s", (user.id,)
    )
    add_resume(conn, user, "Old resume", primary=False)
    add_resume(conn, user, "Primary resume " + "x" * 500, primary=True)
    verified = make_company(conn, make_user(conn), name="Verified Co", verified=True)
    unverified = make_company(conn, make_user(conn), name="Unverified Co")
    older = make_role(conn, verified, title="Head of Treasury", location="Berlin", remote_policy="hybrid")
    newer = make_role(conn, verified, title="Interim CFO")
    save_listing(conn, user, older, "2 days")
    save_listing(conn, user, newer, "1 day")
    save_listing(conn, user, make_role(conn, verified, title="Closed role", status="closed"), "1 hour")
    save_listing(conn, user, make_role(conn, unverified, title="Unverified role"), "1 hour")
    conn.execute("update public.role_postings set description = %s where id = %s", ("d" * 400, older))

    started = turn(conn, user, "What should I apply to?", context_chars=100, listings=20)
    assert started is not None
    assert started["profile"] == {
        "full_name": "Test User",
        "headline": "Finance leader",
        "seniority": "vp",
        "industries": ["fintech"],
        "location": "Berlin",
        "engagement_types": ["fractional"],
        "skills": [skill.name],
    }
    assert started["resume"] == ("Primary resume " + "x" * 500)[:100]
    assert [(listing["title"], listing["company"]) for listing in started["listings"]] == [
        ("Interim CFO", "Verified Co"),
        ("Head of Treasury", "Verified Co"),
    ]
    assert started["listings"][1]["remote_policy"] == "hybrid"
    assert started["listings"][1]["description"] == "d" * 300

    assert [row["title"] for row in turn(conn, user, "Again", listings=1)["listings"]] == ["Interim CFO"]


def test_without_a_resume_read_or_listings_the_context_is_the_profile(conn):
    user = make_user(conn, full_name="Nell New")
    add_resume(conn, user, "Not read yet", primary=True, status="processing")
    started = turn(conn, user, "Hello")
    assert started is not None
    assert (started["profile"], started["resume"], started["listings"]) == (
        {"full_name": "Nell New"},
        None,
        [],
    )


# POST /functions/v1/ai/chat, live: the app under uvicorn, the local AI server, real clients ----------------

RETRIES = 1  # the SDK's retries here: a failure scripted twice is a failure the chat sees
TIMEOUT_S = 1.0


@pytest.fixture(scope="module")
def api(database: Database, ai: AIServer) -> Iterator[str]:
    """The local stack (functions and real PostgREST) on this module's database, with the AI server as the
    provider."""
    settings = database.settings(
        rest_api=True,
        openai_api_key="sk-test",
        openai_base_url=ai.url,  # type: ignore[attr-defined]
        openai_timeout_s=TIMEOUT_S,
        openai_max_retries=RETRIES,
    )
    if find_postgrest(settings) is None:
        pytest.skip(HOW_TO_GET_IT)
    with live_server(create_app(settings)) as url:
        yield url


@pytest.fixture(autouse=True)
def fresh_provider(request: pytest.FixtureRequest) -> None:
    if "ai" in request.fixturenames:
        request.getfixturevalue("ai").reset()


@pytest.fixture
def chat_setting(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str, str], None]]:
    """Sets a CHAT_* variable, which the app reads at its next request; undone after the test."""

    def set_variable(name: str, value: str) -> None:
        monkeypatch.setenv(name, value)
        get_jobsearch_settings.cache_clear()

    yield set_variable
    monkeypatch.undo()
    get_jobsearch_settings.cache_clear()


HTTP = httpx.Client(timeout=30)


@dataclass
class Chat:
    """One call of the chat as a fetch reader makes it: the status, and the events in order (or the JSON)."""

    status: int
    headers: httpx.Headers
    events: list[tuple[str, dict[str, Any]]]
    body: dict[str, Any] | None = None

    def names(self) -> list[str]:
        return [name for name, _ in self.events]

    def text(self) -> str:
        return "".join(data["text"] for name, data in self.events if name == "delta")

    def data(self, name: str) -> dict[str, Any]:
        [data] = [data for event_name, data in self.events if event_name == name]
        return data


def parse_events(lines: Iterable[str]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Server-Sent Events as the spec dispatches them: fields until a blank line."""
    name, data = "message", []
    for line in lines:
        if not line:
            if data:
                yield name, json.loads("\n".join(data))
            name, data = "message", []
        elif line.startswith("event:"):
            name = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].removeprefix(" "))


def chat(
    api: str,
    user: User | None,
    message: str,
    conversation: str | None = None,
    *,
    leave_after: int | None = None,
) -> Chat:
    """POST /functions/v1/ai/chat; with `leave_after`, the connection is closed after that many events."""
    body: dict[str, Any] = {"message": message}
    if conversation is not None:
        body["conversation_id"] = conversation
    headers = {"apikey": ANON_KEY, **bearer(token_for(user) if user else ANON_KEY)}
    with HTTP.stream("POST", f"{api}/functions/v1/ai/chat", json=body, headers=headers) as response:
        if not response.headers["content-type"].startswith("text/event-stream"):
            response.read()
            return Chat(response.status_code, response.headers, [], response.json())
        events = []
        for item in parse_events(response.iter_lines()):
            events.append(item)
            if leave_after is not None and len(events) == leave_after:
                break  # leaving the block closes the connection mid-body
        return Chat(response.status_code, response.headers, events)


def stored(conn: psycopg.Connection, conversation: str) -> list[dict[str, Any]]:
    return [{k: v for k, v in m.items() if k != "id"} for m in messages(conn, conversation)]


def conversations_of(conn: psycopg.Connection, user: User) -> int:
    return value(conn, "select count(*) from public.chat_conversations where user_id = %s", (user.id,))


def eventually(read: Callable[[], Any], seconds: float = 10) -> Any:
    """`read()` once it is truthy (what a background step leaves), or its last value after `seconds`."""
    deadline = time.monotonic() + seconds
    while not (result := read()) and time.monotonic() < deadline:
        time.sleep(0.02)
    return result


AI_USAGE: LiteralString = (
    "select completion_tokens from private.ai_usage"
    " where user_id = %s and day = (now() at time zone 'utc')::date"
)


ANSWER = "Lead a cross-functional project, then ask for the operations role."


def test_the_answer_streams_word_by_word_and_both_messages_are_stored(api, ai, committed):
    user = make_user(committed)
    ai.script(Reply(ANSWER))
    answer = chat(api, user, "How do I move into operations?")
    assert answer.status == 200
    assert answer.headers["content-type"].split(";")[0] == "text/event-stream"
    assert answer.headers["cache-control"] == "no-cache"
    assert answer.names() == ["start", *["delta"] * len(ANSWER.split()), "done"]
    assert [data["text"] for name, data in answer.events if name == "delta"] == re.findall(r"\s*\S+", ANSWER)
    start = answer.data("start")
    assert answer.data("done") == {"message_id": start["message_id"], "status": "complete"}
    conversation = start["conversation_id"]
    assert [m["id"] for m in messages(committed, conversation)] == [
        start["user_message_id"],
        start["message_id"],
    ]
    assert stored(committed, conversation) == [
        {"role": "user", "content": "How do I move into operations?", "status": "complete", "finished": True},
        {"role": "assistant", "content": ANSWER, "status": "complete", "finished": True},
    ]


def test_a_conversation_moves_up_its_owners_list_when_its_answer_is_stored(api, ai, committed):
    user = make_user(committed)

    def newest_first() -> list[str]:
        return [
            str(row[0])
            for row in committed.execute(
                "select id from public.chat_conversations where user_id = %s order by updated_at desc",
                (user.id,),
            )
        ]

    older = chat(api, user, "First question?").data("start")["conversation_id"]
    newer = chat(api, user, "Another subject?").data("start")["conversation_id"]
    assert newest_first() == [newer, older]
    chat(api, user, "Back to the first?", older)
    assert newest_first() == [older, newer]


def test_the_provider_hears_the_conversation_so_far(api, ai, committed):
    user = make_user(committed)
    ai.script(Reply("First answer."), Reply("Second answer."))
    first = chat(api, user, "First question?")
    conversation = first.data("start")["conversation_id"]
    second = chat(api, user, "Second question?", conversation)
    assert second.data("start")["conversation_id"] == conversation
    assert second.text() == "Second answer."
    sent = ai.requests[-1]["messages"]
    assert sent[0]["role"] == "system"
    assert sent[1:] == [
        {"role": "user", "content": "First question?"},
        {"role": "assistant", "content": "First answer."},
        {"role": "user", "content": "Second question?"},
    ]
    assert ai.requests[-1]["stream"] is True
    assert len(messages(committed, conversation)) == 4


def a_job_seeker(conn: psycopg.Connection, resume: str) -> User:
    """A user with a primary resume and a saved listing on the board."""
    user = make_user(conn, full_name="Jo Seeker")
    add_resume(conn, user, resume, primary=True)
    company = make_company(conn, make_user(conn), name="Acme Verified", verified=True)
    save_listing(conn, user, make_role(conn, company, title="Head of Operations"), "1 hour")
    return user


def test_the_assistant_knows_the_profile_saved_listings_and_resume(api, ai, committed):
    user = a_job_seeker(committed, "Ran supply chain for a 200-person manufacturer.")
    chat(api, user, "What fits me?")
    system = ai.requests[-1]["messages"][0]["content"]
    assert "Name: Jo Seeker" in system
    assert "- Head of Operations at Acme Verified (remote; fractional)" in system
    assert system.endswith("Primary resume:\nRan supply chain for a 200-person manufacturer.")


def test_the_context_is_cut_to_its_token_budget(api, ai, committed, chat_setting):
    user = a_job_seeker(committed, "Ran supply chain. " * 200)
    chat_setting("CHAT_CONTEXT_TOKENS", "60")  # 240 characters
    chat(api, user, "What fits me?")
    system = ai.requests[-1]["messages"][0]["content"]
    about = system.removeprefix(SYSTEM_PROMPT + "\n\n")
    assert len(about) <= 240
    assert about.startswith("About the user:\nName: Jo Seeker\n\nSaved job listings:\n- Head of Operations")
    assert about.endswith("Ran supply [...]") or about.endswith("chain. [...]")


def test_history_is_cut_to_its_token_budget(api, ai, committed, chat_setting):
    user = make_user(committed)
    ai.script(Reply("A" * 100), Reply("B" * 100))
    conversation = chat(api, user, "q1").data("start")["conversation_id"]
    chat(api, user, "q2", conversation)
    chat_setting("CHAT_HISTORY_TOKENS", "25")  # 100 characters: the last answer fills them
    chat(api, user, "q3", conversation)
    assert ai.requests[-1]["messages"][1:] == [
        {"role": "assistant", "content": "B" * 100},
        {"role": "user", "content": "q3"},
    ]


def test_a_client_that_leaves_mid_answer_leaves_an_incomplete_message(api, ai, committed):
    user = make_user(committed)
    words = " ".join(f"word{i}" for i in range(40))
    ai.script(Reply(words, chunk_delay_s=0.05))
    left = chat(api, user, "Tell me a long story", leave_after=4)  # start and three deltas
    assert left.names() == ["start", "delta", "delta", "delta"]
    start = left.data("start")

    def answer() -> dict[str, Any] | None:
        [row] = [m for m in messages(committed, start["conversation_id"]) if m["id"] == start["message_id"]]
        return row if row["finished"] else None

    row = eventually(answer)
    assert row is not None, "the answer was never settled"
    assert row["status"] == "incomplete"
    assert row["content"].startswith(left.text())
    assert words.startswith(row["content"])
    assert row["content"] != words
    # The provider's stream was closed, not read to its end: its usage was recorded as an estimate of what
    # came (the provider's own count arrives only after the last word).
    used = eventually(lambda: value(committed, AI_USAGE, (user.id,)))
    assert 0 < used < len(words.split())


def test_a_client_gone_before_the_answer_started_leaves_an_incomplete_one(api, ai, committed):
    user = make_user(committed)
    # Words a twentieth of a second apart: the server learns the client is gone at its first writes.
    ai.script(Reply(ANSWER, delay_s=0.5, chunk_delay_s=0.05))
    body = json.dumps({"message": "Still there?"}).encode()
    headers = {"apikey": ANON_KEY, **bearer(token_for(user))}
    host, port = api.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as client:
        client.sendall(
            b"POST /functions/v1/ai/chat HTTP/1.1\r\nHost: "
            + host.encode()
            + b"\r\n"
            + b"".join(f"{k}: {v}\r\n".encode() for k, v in headers.items())
            + b"Content-Type: application/json\r\nContent-Length: "
            + str(len(body)).encode()
            + b"\r\n\r\n"
            + body
        )
        time.sleep(0.1)  # the turn is stored; the provider has not answered yet

    def settled() -> list[list[str]] | None:
        rows = value(
            committed,
            "select array_agg(array[m.role, m.content, m.status] order by m.created_at)"
            " from public.chat_messages m join public.chat_conversations c on c.id = m.conversation_id"
            " where c.user_id = %s and (m.role = 'user' or m.completed_at is not null)",
            (user.id,),
        )
        return rows if rows and len(rows) == 2 else None

    [question, answer] = eventually(settled)
    assert question == ["user", "Still there?", "complete"]
    assert answer[0::2] == ["assistant", "incomplete"]
    assert ANSWER.startswith(answer[1])
    assert answer[1] != ANSWER

    # The provider's stream was closed there: its usage an estimate of what was sent and received.
    def recorded() -> int | None:
        return value(committed, AI_USAGE, (user.id,))

    eventually(lambda: recorded() is not None)
    assert recorded() < len(ANSWER.split())


def test_a_stream_cut_in_half_ends_with_an_error_event_and_a_failed_answer(api, ai, committed):
    user = make_user(committed)
    ai.script(Reply(ANSWER, cut_after=3))
    cut_off = chat(api, user, "How do I move into operations?")
    assert cut_off.status == 200
    assert cut_off.names() == ["start", "delta", "delta", "delta", "error"]
    assert cut_off.data("error")["error"] == "ai_provider_error"
    assert cut_off.data("error")["message"].endswith("try again")  # the AI layer's words for its users
    conversation = cut_off.data("start")["conversation_id"]
    assert stored(committed, conversation)[1] == {
        "role": "assistant",
        "content": cut_off.text(),
        "status": "failed",
        "finished": True,
    }
    chat(api, user, "Try again?", conversation)
    assert ai.requests[-1]["messages"][1:] == [
        {"role": "user", "content": "How do I move into operations?"},
        {"role": "user", "content": "Try again?"},
    ]


def test_the_ids_come_as_soon_as_the_provider_starts_before_its_first_word(api, ai, committed):
    user = make_user(committed)
    ai.script(Reply("Slow answer.", chunk_delay_s=0.5))  # the first word half a second after the response
    headers = {"apikey": ANON_KEY, **bearer(token_for(user))}
    arrived: list[tuple[str, float]] = []
    body = {"message": "Anything?"}
    with HTTP.stream("POST", f"{api}/functions/v1/ai/chat", json=body, headers=headers) as response:
        began = time.monotonic()
        for name, _ in parse_events(response.iter_lines()):
            arrived.append((name, time.monotonic() - began))
    assert [name for name, _ in arrived] == ["start", "delta", "delta", "done"]
    assert arrived[0][1] < 0.3 < arrived[1][1]


def test_a_provider_that_breaks_off_before_its_first_word_ends_the_stream_with_an_error(api, ai, committed):
    user = make_user(committed)
    ai.script(Reply(ANSWER, cut_after=0))  # the response started, then nothing but a broken connection
    cut_off = chat(api, user, "How do I move into operations?")
    assert (cut_off.status, cut_off.names()) == (200, ["start", "error"])
    assert cut_off.data("error")["error"] == "ai_provider_error"
    conversation = cut_off.data("start")["conversation_id"]
    assert stored(committed, conversation) == [
        {"role": "user", "content": "How do I move into operations?", "status": "complete", "finished": True},
        {"role": "assistant", "content": "", "status": "failed", "finished": True},
    ]


def test_a_provider_chunk_of_another_shape_ends_the_stream_with_an_error(api, ai, committed):
    user = make_user(committed)
    ai.script(Reply(chunks=[chunk([choice("Start")]), chunk("no list")]))
    broken = chat(api, user, "How do I move into operations?")
    assert (broken.status, broken.names(), broken.text()) == (200, ["start", "delta", "error"], "Start")
    assert broken.data("error")["error"] == "ai_provider_error"
    assert stored(committed, broken.data("start")["conversation_id"])[1] == {
        "role": "assistant",
        "content": "Start",
        "status": "failed",
        "finished": True,
    }


@pytest.mark.parametrize(
    ("reply", "status", "code"),
    [
        (Reply(status=500), 502, "ai_provider_error"),
        (Reply(status=429, headers={"Retry-After": "0"}), 502, "ai_provider_error"),
        (Reply(delay_s=TIMEOUT_S + 0.5), 504, "ai_timeout"),
    ],
    ids=["500", "429", "timeout"],
)
def test_a_provider_failure_before_its_response_starts_is_an_error_and_stores_nothing(
    api, ai, committed, reply, status, code
):
    user = make_user(committed)
    ai.script(Reply("First answer."))
    conversation = chat(api, user, "First question?").data("start")["conversation_id"]
    before = stored(committed, conversation)
    for _ in range(RETRIES + 1):
        ai.script(reply)
    again = chat(api, user, "Second question?", conversation)
    assert (again.status, again.body and again.body["error"]) == (status, code)
    assert stored(committed, conversation) == before
    for _ in range(RETRIES + 1):
        ai.script(reply)
    new = chat(api, user, "A new conversation?")
    assert (new.status, new.body and new.body["error"]) == (status, code)
    assert conversations_of(committed, user) == 1


def test_over_the_daily_budget_is_refused_before_the_answer_and_stores_nothing(api, ai, committed):
    user = make_user(committed)
    committed.execute("select private.record_ai_usage(%s, 10000000, 0)", (user.id,))
    refused = chat(api, user, "Anything?")
    assert (refused.status, refused.body and refused.body["error"]) == (429, "ai_budget_exceeded")
    assert int(refused.headers["retry-after"]) > 0
    assert conversations_of(committed, user) == 0
    assert ai.requests == []


async def test_without_a_provider_the_chat_says_so_and_stores_nothing(database, committed):
    user = make_user(committed)
    async with AsyncTestClient(app=create_app(database.settings())) as client:
        response = await client.post(
            "/functions/v1/ai/chat", json={"message": "Hello?"}, headers=bearer(token_for(user))
        )
    assert (response.status_code, response.json()["error"]) == (503, "ai_not_configured")
    assert conversations_of(committed, user) == 0


def test_someone_elses_conversation_is_not_found(api, ai, committed):
    owner, other = make_user(committed), make_user(committed)
    conversation = chat(api, owner, "Mine").data("start")["conversation_id"]
    ai.reset()
    for conversation_id in (conversation, str(uuid.uuid4())):
        refused = chat(api, other, "Let me in", conversation_id)
        assert (refused.status, refused.body) == (
            404,
            {"error": "conversation_not_found", "message": "no conversation of yours has this id"},
        )
    assert ai.requests == []
    assert len(messages(committed, conversation)) == 2


def test_the_chat_is_for_signed_in_users(api, ai):
    refused = chat(api, None, "Hello?")
    assert (refused.status, refused.body and refused.body["error"]) == (403, "insufficient_role")
    assert ai.requests == []


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"message": ""},
        {"message": " \n "},
        {"message": "x" * 8001},
        {"message": "hi", "conversation_id": "x"},
        {"message": "hi", "extra": 1},
    ],
    ids=["no message", "empty", "blank", "too long", "bad id", "unknown field"],
)
def test_bad_input_is_a_422(api, ai, committed, body):
    response = HTTP.post(
        f"{api}/functions/v1/ai/chat", json=body, headers=bearer(token_for(make_user(committed)))
    )
    assert (response.status_code, response.json()["error"]) == (422, "validation_failed")
    assert ai.requests == []


# Through the clients a frontend uses --------------------------------------------------------------------


def client_for(api: str, user: User) -> Client:
    headers = {"Authorization": f"Bearer {token_for(user)}"}
    return create_client(api, ANON_KEY, options=ClientOptions(headers=headers, httpx_client=HTTP))


def test_supabase_py_invokes_the_chat_and_reads_the_conversation_through_postgrest(api, ai, committed):
    owner, other = make_user(committed), make_user(committed)
    ai.script(Reply(ANSWER))
    body = client_for(api, owner).functions.invoke("ai/chat", {"body": {"message": "Where next?"}})
    events = list(parse_events(body.decode().split("\n")))
    assert [name for name, _ in events][-1] == "done"
    start = events[0][1]

    rows = (
        client_for(api, owner)
        .table("chat_messages")
        .select("id, role, content, status")
        .eq("conversation_id", start["conversation_id"])
        .order("created_at")
        .execute()
        .data
    )
    assert rows == [
        {"id": start["user_message_id"], "role": "user", "content": "Where next?", "status": "complete"},
        {"id": start["message_id"], "role": "assistant", "content": ANSWER, "status": "complete"},
    ]
    assert client_for(api, other).table("chat_messages").select("id").execute().data == []
    assert client_for(api, other).table("chat_conversations").select("id").execute().data == []
    anon = create_client(api, ANON_KEY, options=ClientOptions(httpx_client=HTTP))
    with pytest.raises(APIError) as refused:
        anon.table("chat_conversations").select("id").execute()
    assert refused.value.code == INSUFFICIENT_PRIVILEGE


def test_a_frontend_starts_and_names_a_conversation_through_postgrest(api, ai, committed):
    owner, other = make_user(committed), make_user(committed)
    [row] = (
        client_for(api, owner).table("chat_conversations").insert({"title": "Salary talks"}).execute().data
    )
    assert (row["user_id"], row["title"]) == (owner.id, "Salary talks")
    with pytest.raises(APIError) as refused:
        client_for(api, other).table("chat_conversations").insert(
            {"user_id": owner.id, "title": "x"}
        ).execute()
    assert refused.value.code == INSUFFICIENT_PRIVILEGE

    ai.script(Reply("Ask for the range first."))
    answer = chat(api, owner, "How do I negotiate?", row["id"])
    assert answer.names()[-1] == "done"
    assert value(committed, "select title from public.chat_conversations where id = %s", (row["id"],)) == (
        "Salary talks"
    )


def test_supabase_js_streams_the_chat_and_can_stop_it(api, ai, committed):
    user, other = make_user(committed), make_user(committed)
    answer = " ".join(f"word{i}" for i in range(30))
    ai.default = Reply(answer, chunk_delay_s=0.03)
    run_node_tests(
        api,
        "jobsearch_chat.test.mjs",
        ANSWER=answer,
        USER_TOKEN=token_for(user),
        OTHER_TOKEN=token_for(other),
    )
