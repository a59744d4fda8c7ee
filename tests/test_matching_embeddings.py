"""Embeddings for the semantic signal of matching: the real OpenAI SDK against a local compatible server."""

from __future__ import annotations

import json

import psycopg
import pytest
from litestar.testing import AsyncTestClient

from app import create_app
from rpc.matching.embeddings import DIMENSIONS, embed_missing
from rpc.matching.settings import MatchingWeights
from rpc.platform.ai import AI, AIProviderError
from rpc.platform.settings import Settings
from tests.ai_server import AIServer
from tests.conftest import Database
from tests.support import User, bearer, make_company, make_user, token_for

WEIGHTS = json.dumps(MatchingWeights().model_dump())


@pytest.fixture
def settings(database: Database, ai: AIServer) -> Settings:
    return database.settings(openai_api_key="sk-test", openai_base_url=ai.url)


@pytest.fixture(autouse=True)
def clean(committed: psycopg.Connection, ai: AIServer) -> None:
    # The module's database is shared: each test embeds only what it made.
    committed.execute("delete from public.role_postings")
    committed.execute("delete from public.executive_profiles")
    ai.requests.clear()
    ai.fail_next = 0


def executive(conn: psycopg.Connection, bio: str) -> User:
    user = make_user(conn, roles=("executive",))
    conn.execute(
        "insert into public.executive_profiles (user_id, bio, seniority, engagement_types, is_open)"
        " values (%s, %s, 'vp', '{fractional}', true)",
        (user.id, bio),
    )
    return user


def role(conn: psycopg.Connection, description: str) -> str:
    company = make_company(conn, make_user(conn))
    row = conn.execute(
        "insert into public.role_postings (company_id, title, description, engagement_type, seniority, status)"
        " values (%s, 'Interim CFO', %s, 'fractional', 'vp', 'open') returning id",
        (company.id, description),
    ).fetchone()
    assert row is not None
    return str(row[0])


def vector_dims(conn: psycopg.Connection, query: str, key: str) -> int | None:
    row = conn.execute(query, (key,)).fetchone()
    assert row is not None
    return row[0]


async def test_missing_embeddings_are_written_once(committed, admin, settings, ai, new_ai) -> None:
    exec_a = executive(committed, "Scaled finance teams through two acquisitions")
    executive(committed, "")  # nothing to embed
    role_id = role(committed, "We need a finance leader for acquisitions")

    assert await embed_missing(admin, new_ai(settings)) == 2
    assert (
        vector_dims(
            committed,
            "select extensions.vector_dims(bio_embedding) from public.executive_profiles where user_id = %s",
            exec_a.id,
        )
        == DIMENSIONS
    )
    assert (
        vector_dims(
            committed,
            "select extensions.vector_dims(description_embedding) from public.role_postings where id = %s",
            role_id,
        )
        == DIMENSIONS
    )
    assert ai.requests[0]["dimensions"] == DIMENSIONS

    requests = len(ai.requests)
    assert await embed_missing(admin, new_ai(settings)) == 0
    assert len(ai.requests) == requests  # nothing left to ask for


async def test_an_edited_text_is_embedded_again(committed, admin, settings, new_ai) -> None:
    user = executive(committed, "Operations leader")
    await embed_missing(admin, new_ai(settings))
    committed.execute("update public.executive_profiles set headline = 'COO' where user_id = %s", (user.id,))
    assert await embed_missing(admin, new_ai(settings)) == 0  # the bio did not change
    committed.execute(
        "update public.executive_profiles set bio = 'Operations and supply chain leader' where user_id = %s",
        (user.id,),
    )
    assert await embed_missing(admin, new_ai(settings)) == 1


async def test_a_provider_outage_writes_nothing(committed, admin, settings, ai, new_ai) -> None:
    user = executive(committed, "Marketing leader")
    ai.fail_next = 10  # more than the SDK's retries
    with pytest.raises(AIProviderError):
        await embed_missing(admin, new_ai(settings))
    assert (
        vector_dims(
            committed,
            "select extensions.vector_dims(bio_embedding) from public.executive_profiles where user_id = %s",
            user.id,
        )
        is None
    )


def test_without_a_key_nothing_is_embedded(database: Database) -> None:
    assert AI(database.settings()).enabled is False


async def test_semantic_similarity_orders_otherwise_equal_executives(
    committed, admin, settings, new_ai
) -> None:
    close = executive(committed, "Interim CFO for venture backed fintech scaleups raising series B")
    far = executive(committed, "Landscape gardener and beekeeper")
    role_id = role(committed, "Fintech scaleup raising series B needs an interim CFO")

    def ranking() -> list[tuple[str, float, float | None]]:
        rows = committed.execute(
            "select executive_id::text, score, breakdown -> 'semantic' from private.match(%s, null, 10, %s)",
            (role_id, WEIGHTS),
        ).fetchall()
        return [(r[0], float(r[1]), r[2]) for r in rows if r[0] in (close.id, far.id)]

    # Without embeddings the two are equal: the role has no skills, the rest of their profiles match.
    before = ranking()
    assert {score for _, score, _ in before} == {before[0][1]}
    assert all(semantic is None for _, _, semantic in before)

    await embed_missing(admin, new_ai(settings))
    after = ranking()
    assert [executive_id for executive_id, _, _ in after] == [close.id, far.id]
    assert after[0][2] > after[1][2]
    assert after[0][1] > after[1][1]


async def test_matching_embeds_the_role_on_its_first_run(committed, admin, settings, ai, new_ai) -> None:
    user = executive(committed, "Interim CFO for fintech scaleups raising series B")
    await embed_missing(admin, new_ai(settings))  # the bios, as the worker would have
    owner = make_user(committed)
    company = make_company(committed, owner, verified=True)
    row = committed.execute(
        "insert into public.role_postings (company_id, title, description, engagement_type, seniority, status)"
        " values (%s, 'Interim CFO', 'Series B fintech needs an interim CFO', 'fractional', 'vp', 'open')"
        " returning id::text",
        (company.id,),
    ).fetchone()
    assert row is not None

    async with AsyncTestClient(app=create_app(settings)) as client:
        response = await client.post(
            "/functions/v1/matching", json={"role_id": row[0]}, headers=bearer(token_for(owner))
        )
    assert response.status_code == 200, response.text
    [match] = [m for m in response.json()["matches"] if m["executive_id"] == user.id]
    assert match["breakdown"]["semantic"] > 0.3
    assert (
        vector_dims(
            committed,
            "select extensions.vector_dims(description_embedding) from public.role_postings where id = %s",
            row[0],
        )
        == DIMENSIONS
    )


async def test_matching_without_the_provider_still_answers(committed, database, ai) -> None:
    ai.fail_next = 10
    owner = make_user(committed)
    row = committed.execute(
        "insert into public.role_postings (company_id, title, description, engagement_type, status)"
        " values (%s, 'Interim CFO', 'Needs a CFO', 'fractional', 'open') returning id::text",
        (make_company(committed, owner, verified=True).id,),
    ).fetchone()
    assert row is not None
    settings = database.settings(openai_api_key="sk-test", openai_base_url=ai.url, openai_timeout_s=2)
    async with AsyncTestClient(app=create_app(settings)) as client:
        response = await client.post(
            "/functions/v1/matching", json={"role_id": row[0]}, headers=bearer(token_for(owner))
        )
    assert response.status_code == 200, response.text
    assert ai.requests  # it did try
