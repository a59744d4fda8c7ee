"""The AI layer: the real OpenAI SDK against the local OpenAI-compatible server (tests/ai_server.py), usage
and budgets in the module's own database."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import aclosing, asynccontextmanager
from typing import Any
from uuid import UUID

import psycopg
import pytest
from litestar import Litestar, get
from litestar.params import FromPath
from litestar.testing import AsyncTestClient
from pydantic import BaseModel

from app import create_app
from rpc.platform import db as platform_db
from rpc.platform.ai import (
    AI,
    AIBudgetExceeded,
    AINotConfigured,
    AIProviderError,
    AITimeout,
    estimated_tokens,
)
from rpc.platform.errors import exception_handlers
from rpc.platform.settings import Settings
from tests.ai_server import AIServer, Reply, choice, chunk
from tests.conftest import Database
from tests.support import make_user

HELLO = [{"role": "user", "content": "hello world"}]


class Person(BaseModel):
    name: str
    age: int
    skills: list[str]


@pytest.fixture(autouse=True)
def fresh(ai: AIServer) -> AIServer:
    ai.reset()
    return ai


@pytest.fixture
async def pool(database: Database) -> AsyncIterator[platform_db.Database]:
    """The request pool the app gives its AI."""
    db = platform_db.Database(database.authenticator, max_size=4)
    await db.open()
    yield db
    await db.close()


@pytest.fixture
def make_ai(
    database: Database, ai: AIServer, pool: platform_db.Database, new_ai: Callable[..., AI]
) -> Callable[..., AI]:
    def make(**overrides: Any) -> AI:
        settings = database.settings(
            openai_api_key="sk-test", openai_base_url=ai.url, **{"openai_timeout_s": 5, **overrides}
        )
        return new_ai(settings, pool)

    return make


@pytest.fixture
def user(committed: psycopg.Connection) -> UUID:
    return UUID(make_user(committed).id)


def usage(conn: psycopg.Connection, user_id: UUID | None) -> tuple[int, int, int] | None:
    """(requests, prompt tokens, completion tokens) of today."""
    row = conn.execute(
        "select requests, prompt_tokens, completion_tokens from private.ai_usage"
        " where user_id is not distinct from %s and day = (now() at time zone 'utc')::date",
        (user_id,),
    ).fetchone()
    return None if row is None else (row[0], row[1], row[2])


async def deltas(ai: AI, user_id: UUID | None, messages: list[dict[str, Any]] = HELLO) -> list[str]:
    async with aclosing(await ai.stream_chat(messages, user_id=user_id)) as stream:
        return [delta async for delta in stream]


# Chat, whole and streamed -------------------------------------------------------------------------------


async def test_chat_answers_and_records_the_providers_usage(make_ai, fresh, committed, user) -> None:
    ai = make_ai(chat_model="chat-model-x")
    assert await ai.chat(HELLO, user_id=user, max_tokens=50) == "You said: hello world"
    [request] = fresh.requests
    assert (request["model"], request["max_tokens"], request["messages"]) == ("chat-model-x", 50, HELLO)
    # The server counts words: two in the prompt, four in the answer.
    assert usage(committed, user) == (1, 2, 4)


async def test_a_closed_ai_answers_again_with_a_new_client(make_ai) -> None:
    # The app closes its AI when its lifespan ends, and may be served again.
    ai = make_ai()
    first = ai.client
    assert await ai.chat(HELLO, user_id=None) == "You said: hello world"
    await ai.close()
    assert first is not None
    assert first.is_closed()
    assert ai.client is not first
    assert await ai.chat(HELLO, user_id=None) == "You said: hello world"


async def test_a_stream_yields_the_words_in_order_and_records_the_providers_usage(
    make_ai, fresh, committed, user
) -> None:
    fresh.script(Reply(content="one two three four five", chunk_delay_s=0.01))
    assert await deltas(make_ai(), user) == ["one", " two", " three", " four", " five"]
    assert fresh.requests[0]["stream_options"] == {"include_usage": True}
    assert usage(committed, user) == (1, 2, 5)


async def test_a_stream_asks_for_the_chat_model_with_the_messages_and_limit(make_ai, fresh, user) -> None:
    async with aclosing(
        await make_ai(chat_model="chat-model-x").stream_chat(HELLO, user_id=user, max_tokens=50)
    ) as stream:
        assert [delta async for delta in stream] == ["You", " said:", " hello", " world"]
    [request] = fresh.requests
    assert (request["model"], request["messages"], request["max_tokens"], request["stream"]) == (
        "chat-model-x",
        HELLO,
        50,
        True,
    )


async def test_a_stream_left_early_records_what_was_received(make_ai, fresh, committed, user) -> None:
    fresh.script(Reply(content="one two three four five", chunk_delay_s=0.05))
    async with aclosing(await make_ai().stream_chat(HELLO, user_id=user)) as stream:
        deltas = aiter(stream)
        received = [await anext(deltas), await anext(deltas)]
    assert received == ["one", " two"]
    # No usage chunk came: what was sent and received, estimated.
    assert usage(committed, user) == (1, estimated_tokens("hello world"), estimated_tokens("one two"))


async def test_a_stream_closed_unread_records_what_was_sent(make_ai, fresh, committed, user) -> None:
    fresh.script(Reply(content="one two three four five", chunk_delay_s=0.05))
    stream = await make_ai().stream_chat(HELLO, user_id=user)
    await stream.aclose()
    await stream.aclose()  # once is what counts
    assert [delta async for delta in stream] == []
    assert usage(committed, user) == (1, estimated_tokens("hello world"), 0)


async def test_a_stream_cut_in_half_raises_from_the_iterator(make_ai, fresh, committed, user) -> None:
    fresh.script(Reply(content="one two three four five", cut_after=2))
    received = []
    with pytest.raises(AIProviderError) as raised:
        async with aclosing(await make_ai().stream_chat(HELLO, user_id=user)) as stream:
            async for delta in stream:
                received.append(delta)
    assert received == ["one", " two"]
    assert raised.value.status == 502
    assert len(fresh.requests) == 1  # a stream under way is not retried: its words were delivered
    assert usage(committed, user) == (1, estimated_tokens("hello world"), estimated_tokens("one two"))


USAGE = {"prompt_tokens": 7, "completion_tokens": 2, "total_tokens": 9}


async def test_a_stream_reads_the_chunks_json_as_a_provider_may_send_it(
    make_ai, fresh, committed, user
) -> None:
    # A role-only first chunk, a delta of null, a finish without a delta, the usage in a chunk of its own.
    fresh.script(
        Reply(
            chunks=[
                chunk([{"index": 0, "delta": {"role": "assistant"}, "finish_reason": None}]),
                chunk([choice("one")]),
                chunk([{"index": 0, "delta": None, "finish_reason": None}]),
                chunk([choice(" two")]),
                chunk([{"index": 0, "finish_reason": "stop"}]),
                chunk([], usage=USAGE),
            ]
        )
    )
    assert await deltas(make_ai(), user) == ["one", " two"]
    assert usage(committed, user) == (1, 7, 2)


@pytest.mark.parametrize(
    "malformed",
    [
        ["a list"],
        chunk("not a list"),
        chunk([choice(3)]),
        chunk(["a choice of text"]),
        chunk([{"delta": "text"}]),
    ],
    ids=[
        "not-an-object",
        "choices-not-a-list",
        "content-not-text",
        "choice-not-an-object",
        "delta-not-an-object",
    ],
)
async def test_a_chunk_of_another_shape_breaks_the_stream_off_as_the_providers_error(
    make_ai, fresh, committed, user, malformed
) -> None:
    fresh.script(
        Reply(chunks=[chunk([choice("one")]), malformed, chunk([choice(" two", "stop")], usage=USAGE)])
    )
    received = []
    with pytest.raises(AIProviderError) as raised:
        async with aclosing(await make_ai().stream_chat(HELLO, user_id=user)) as stream:
            async for delta in stream:
                received.append(delta)
    assert (received, raised.value.status, raised.value.code) == (["one"], 502, "ai_provider_error")
    # The provider's usage never came: what was sent and received, estimated.
    assert usage(committed, user) == (1, estimated_tokens("hello world"), estimated_tokens("one"))


async def test_a_usage_without_its_counts_is_estimated(make_ai, fresh, committed, user) -> None:
    fresh.script(
        Reply(chunks=[chunk([choice("one two", "stop")]), chunk([], usage={"prompt_tokens": "seven"})])
    )
    assert await deltas(make_ai(), user) == ["one two"]
    assert usage(committed, user) == (1, estimated_tokens("hello world"), estimated_tokens("one two"))


async def test_a_stream_that_stalls_between_chunks_times_out(make_ai, fresh) -> None:
    fresh.script(Reply(content="one two", chunk_delay_s=3))
    with pytest.raises(AITimeout) as raised:
        await deltas(make_ai(openai_timeout_s=0.5), None)
    assert raised.value.status == 504
    assert len(fresh.requests) == 1


async def test_concurrent_calls_each_count(make_ai, committed, user) -> None:
    ai = make_ai()
    await asyncio.gather(*(ai.chat(HELLO, user_id=user) for _ in range(5)))
    assert usage(committed, user) == (5, 10, 20)


# Budgets -----------------------------------------------------------------------------------------------


async def test_a_user_over_the_daily_budget_is_refused_until_midnight(
    make_ai, fresh, committed, user
) -> None:
    ai = make_ai(ai_daily_tokens_per_user=10)
    await ai.chat(HELLO, user_id=user)  # 6 tokens
    await ai.chat(HELLO, user_id=user)  # 12: over, but checked before
    asked = len(fresh.requests)
    with pytest.raises(AIBudgetExceeded) as raised:
        await ai.chat(HELLO, user_id=user)
    with pytest.raises(AIBudgetExceeded):
        await deltas(ai, user)
    with pytest.raises(AIBudgetExceeded):
        await ai.structured(HELLO, Person, user_id=user)
    assert len(fresh.requests) == asked  # the provider was not asked
    assert usage(committed, user) == (2, 4, 8)
    assert raised.value.status == 429
    assert 0 < int(raised.value.headers["Retry-After"]) <= 24 * 3600
    # Others and the platform's own work are not held by one user's budget.
    assert await ai.chat(HELLO, user_id=UUID(make_user(committed).id))
    assert await ai.chat(HELLO, user_id=None)


async def test_a_stream_takes_what_its_caller_read_of_the_days_spending(
    make_ai, fresh, committed, user
) -> None:
    ai = make_ai(ai_daily_tokens_per_user=10)
    with pytest.raises(AIBudgetExceeded):
        await ai.stream_chat(HELLO, user_id=user, spent_today=10)
    assert fresh.requests == []
    async with aclosing(await ai.stream_chat(HELLO, user_id=user, spent_today=9)) as stream:
        assert [delta async for delta in stream]


async def test_a_budget_of_zero_is_no_limit(make_ai, committed, user) -> None:
    committed.execute("select private.record_ai_usage(%s, 10000000, 0)", (user,))
    assert await make_ai(ai_daily_tokens_per_user=0).chat(HELLO, user_id=user)


# Provider failures ---------------------------------------------------------------------------------------


async def test_a_500_is_retried(make_ai, fresh, committed, user) -> None:
    fresh.script(Reply(status=500))
    assert await make_ai().chat(HELLO, user_id=user) == "You said: hello world"
    assert len(fresh.requests) == 2
    assert usage(committed, user) == (1, 2, 4)


async def test_a_429_is_retried_after_its_retry_after(make_ai, fresh) -> None:
    fresh.script(Reply(status=429, headers={"Retry-After": "1"}))
    assert await deltas(make_ai(), None) == ["You", " said:", " hello", " world"]
    assert len(fresh.requests) == 2
    # The SDK's own backoff would be under 0.5 s: it waited as told.
    assert fresh.arrivals[1] - fresh.arrivals[0] >= 0.95


async def test_a_persistent_500_is_a_provider_error(make_ai, fresh, committed, user) -> None:
    fresh.script(*[Reply(status=500)] * 3)
    with pytest.raises(AIProviderError) as raised:
        await make_ai(openai_max_retries=2).chat(HELLO, user_id=user)
    assert len(fresh.requests) == 3
    assert (raised.value.status, raised.value.code) == (502, "ai_provider_error")
    assert "internal detail" not in raised.value.message
    assert usage(committed, user) is None  # the provider answered nothing


async def test_a_provider_that_does_not_answer_in_time_times_out(make_ai, fresh, user) -> None:
    fresh.script(Reply(delay_s=3), Reply(delay_s=3))
    with pytest.raises(AITimeout):
        await make_ai(openai_timeout_s=0.5, openai_max_retries=1).chat(HELLO, user_id=user)
    assert len(fresh.requests) == 2  # the timeout was retried once


# Structured output ----------------------------------------------------------------------------------------


async def test_structured_output_is_asked_for_by_schema_and_validated(
    make_ai, fresh, committed, user
) -> None:
    fresh.script(Reply(content='{"name": "Ada", "age": 36, "skills": ["maths"]}'))
    person = await make_ai(structured_model="structured-x").structured(HELLO, Person, user_id=user)
    assert person == Person(name="Ada", age=36, skills=["maths"])
    [request] = fresh.requests
    assert request["model"] == "structured-x"
    assert request["response_format"]["type"] == "json_schema"
    assert request["response_format"]["json_schema"]["strict"] is True
    assert request["response_format"]["json_schema"]["schema"]["required"] == ["name", "age", "skills"]
    assert usage(committed, user) is not None


@pytest.mark.parametrize(
    "content",
    [
        pytest.param('{"name": "Ada", "age": "thirty-six", "skills": []}', id="wrong-type"),
        pytest.param('{"name": "Ada"}', id="missing-fields"),
        pytest.param('{"name": "Ada", "age": 36, "skil', id="cut-off"),
        pytest.param("Sure! Here is the JSON you asked for.", id="not-json"),
    ],
)
async def test_structured_output_that_does_not_match_is_a_provider_error(
    make_ai, fresh, committed, user, content
) -> None:
    fresh.script(Reply(content=content))
    with pytest.raises(AIProviderError) as raised:
        await make_ai().structured(HELLO, Person, user_id=user)
    assert raised.value.status == 502
    assert "Ada" not in raised.value.message
    assert usage(committed, user) is not None  # the tokens were spent all the same


# Embeddings ----------------------------------------------------------------------------------------------


async def test_embeddings_count_as_the_platforms_own_usage(make_ai, committed) -> None:
    before = usage(committed, None) or (0, 0, 0)
    vectors = await make_ai().embed(["finance leader", "supply chain"], dimensions=8)
    assert [len(vector) for vector in vectors] == [8, 8]
    assert usage(committed, None) == (before[0] + 1, before[1] + 4, before[2])


# Not configured ------------------------------------------------------------------------------------------


async def test_without_a_key_every_call_says_not_configured(database, pool, fresh, user) -> None:
    ai = AI(database.settings(), pool)
    assert ai.enabled is False
    calls = [
        ai.chat(HELLO, user_id=user),
        deltas(ai, user),
        ai.structured(HELLO, Person, user_id=user),
        ai.embed(["x"], dimensions=8),
    ]
    for call in calls:
        with pytest.raises(AINotConfigured) as raised:
            await call
        assert (raised.value.status, raised.value.code) == (503, "ai_not_configured")
    assert not fresh.requests


# Through the app's error handlers ----------------------------------------------------------------------------


def asking_app(settings: Settings) -> Litestar:
    """A function that asks the AI and lets its errors through, under the platform's exception handlers (the
    test client serves it on a loop of its own, where its pool opens)."""
    db = platform_db.Database(settings.api_dsn, max_size=2)
    ai = AI(settings, db)

    @asynccontextmanager
    async def lifespan(_: Litestar) -> AsyncIterator[None]:
        await db.open()
        try:
            yield
        finally:
            await ai.close()
            await db.close()

    @get("/ask/{user_id:uuid}")
    async def ask(user_id: FromPath[UUID]) -> dict[str, str]:
        return {"answer": await ai.chat(HELLO, user_id=user_id)}

    return Litestar([ask], exception_handlers=exception_handlers, lifespan=[lifespan], logging_config=None)


async def test_the_app_answers_each_ai_error_in_its_shape(database, fresh, user) -> None:
    settings = database.settings(
        openai_api_key="sk-test",
        openai_base_url=fresh.url,
        openai_timeout_s=0.5,
        openai_max_retries=0,
        ai_daily_tokens_per_user=7,
    )
    fresh.script(Reply(status=500), Reply(delay_s=2))
    async with AsyncTestClient(app=asking_app(settings)) as client:
        # A 500, a timeout, then 6 tokens and 12 (each checked before: under 7), then over.
        responses = [await client.get(f"/ask/{user}") for _ in range(5)]
    async with AsyncTestClient(app=asking_app(database.settings())) as client:
        responses.append(await client.get(f"/ask/{user}"))
    assert [(r.status_code, r.json().get("error")) for r in responses] == [
        (502, "ai_provider_error"),
        (504, "ai_timeout"),
        (200, None),
        (200, None),
        (429, "ai_budget_exceeded"),
        (503, "ai_not_configured"),
    ]
    assert all(set(r.json()) == {"error", "message"} for r in responses if r.status_code != 200)
    assert all("internal detail" not in r.text for r in responses)
    assert int(responses[4].headers["Retry-After"]) > 0


def test_the_apps_ai_records_in_the_apps_database(database) -> None:
    app = create_app(database.settings(openai_api_key="sk-test"))
    assert app.state.ai.db is app.state.db
