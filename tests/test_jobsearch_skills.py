"""Skills by meaning: `public.search_skills` (in SQL as each API role, and through real PostgREST), the skill
embeddings the worker keeps (`jobsearch:embed_skills`), the HNSW search over them, and
`POST /functions/v1/skills/search` with and without an embeddings provider: the real OpenAI SDK against
tests/ai_server.py, whose bag-of-words embeddings make texts that share words close.

Every test starts from the same small ontology, committed (the app, PostgREST and the worker have their own
connections), in place of the seeded taxonomy, so that rankings can be predicted in full.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest
from litestar.testing import AsyncTestClient
from postgrest.exceptions import APIError
from procrastinate.periodic import PeriodicRegistry
from psycopg.rows import dict_row
from supabase import Client, ClientOptions, create_client

from app import CAPABILITIES, create_app
from rpc.jobsearch.skills import DIMENSIONS, embed_skills
from rpc.platform.ai import AIProviderError
from rpc.platform.jobs import Queue
from rpc.platform.settings import Settings
from tests.ai_server import AIServer
from tests.conftest import Database
from tests.support import (
    ANON_KEY,
    SERVICE_KEY,
    Actor,
    as_anon,
    as_service,
    as_user,
    bearer,
    live_server,
    make_user,
    token_for,
    value,
    work_until_idle,
)

# supabase-py passes its own deprecated options to its sub-clients on every call; nothing here to fix.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:supabase")

# slug, name, category, parent's slug, aliases
ONTOLOGY: list[tuple[str, str, str, str | None, tuple[str, ...]]] = [
    ("cloud-infrastructure", "Cloud infrastructure", "technology", None, ("cloud ops",)),
    ("kubernetes", "Kubernetes", "technology", "cloud-infrastructure", ("k8s", "kube")),
    ("terraform", "Terraform", "technology", "cloud-infrastructure", ("infrastructure as code", "iac")),
    ("python", "Python", "technology", None, ("py", "python3")),
    ("machine-learning", "Machine learning", "data", None, ("ml",)),
    ("pytorch", "PyTorch", "data", "machine-learning", ("torch",)),
    ("financial-planning", "Financial planning and analysis", "finance", None, ("fp&a", "fpa")),
    ("financial-modelling", "Financial modelling", "finance", None, ("financial modeling", "excel models")),
    ("fundraising", "Fundraising", "finance", None, ("raising capital", "venture capital")),
    ("negotiation", "Negotiation", "sales", None, ("deal making", "closing deals")),
    ("mergers-and-acquisitions", "Mergers and acquisitions", "finance", None, ("m&a deals",)),
]
SEARCH = "select * from public.search_skills(%s, %s)"
BY_MEANING = "select * from private.search_skills_by_meaning(%s, %s::extensions.vector, %s, %s)"
JOBS = (
    "select count(*) from procrastinate.procrastinate_jobs"
    " where task_name = 'jobsearch:embed_skills' and queue_name = 'ai' and status = 'todo'"
)


@pytest.fixture
def settings(database: Database, ai: AIServer) -> Settings:
    return database.settings(openai_api_key="sk-test", openai_base_url=ai.url)


@pytest.fixture(autouse=True)
def ontology(committed: psycopg.Connection, ai: AIServer) -> None:
    """The fixed ontology, committed afresh (its embeddings go with the old rows), and no jobs queued."""
    committed.execute("delete from public.skills")
    for slug, name, category, _, aliases in ONTOLOGY:
        skill_id = value(
            committed,
            "insert into public.skills (slug, name, category) values (%s, %s, %s) returning id",
            (slug, name, category),
        )
        for alias in aliases:
            committed.execute(
                "insert into public.skill_aliases (alias, skill_id) values (%s, %s)", (alias, skill_id)
            )
    for slug, _, _, parent, _ in ONTOLOGY:
        if parent:
            committed.execute(
                "update public.skills set parent_id = (select id from public.skills where slug = %s)"
                " where slug = %s",
                (parent, slug),
            )
    committed.execute(
        "truncate procrastinate.procrastinate_jobs, procrastinate.procrastinate_events,"
        " procrastinate.procrastinate_periodic_defers"
    )
    ai.reset()


def slugs(rows: list[dict[str, Any]]) -> list[str]:
    return [row["slug"] for row in rows]


def search(actor: Actor, query: str | None, limit: int | None = 10) -> list[dict[str, Any]]:
    return actor.rows(SEARCH, (query, limit))


# public.search_skills: the ranking ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "slug", "matched"),
    [
        ("k8s", "kubernetes", "k8s"),
        ("  K8S ", "kubernetes", "k8s"),
        ("python", "python", "Python"),
        ("Machine   Learning", "machine-learning", "Machine learning"),
        ("FP&A", "financial-planning", "fp&a"),
        ("financial-planning", "financial-planning", "financial-planning"),
    ],
)
def test_an_exact_name_slug_or_alias_comes_first(conn, query, slug, matched):
    first = search(as_anon(conn), query)[0]
    assert (first["slug"], first["matched"], first["matched_by"], first["score"]) == (
        slug,
        matched,
        "exact",
        1,
    )


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("kuber", [("kubernetes", "prefix")]),
        # The more of a name the text already says, the closer: "financial modeling" before the longer name.
        ("fin", [("financial-modelling", "prefix"), ("financial-planning", "prefix")]),
        # Each way of matching outranks the next: exact, prefix, full text.
        ("py", [("python", "exact"), ("pytorch", "prefix")]),
        ("deal", [("negotiation", "prefix"), ("mergers-and-acquisitions", "text")]),
        ("financial modelling", [("financial-modelling", "exact"), ("financial-planning", "text")]),
        # Full text stems ("models", "modelling") and looks in aliases too.
        ("models", [("financial-modelling", "text")]),
        ("capital", [("fundraising", "text")]),
        # Any word of the text; a skill with more of them first.
        ("planning financial", [("financial-planning", "text"), ("financial-modelling", "text")]),
    ],
)
def test_ranking(conn, query, expected):
    rows = search(as_anon(conn), query)
    assert [(row["slug"], row["matched_by"]) for row in rows] == expected
    assert [row["score"] for row in rows] == sorted((row["score"] for row in rows), reverse=True)


def test_scores_keep_the_ways_of_matching_apart(conn):
    for query, low, high in (("kuber", 0.5, 0.9), ("fin", 0.5, 0.9), ("capital", 0, 0.5)):
        for row in search(as_anon(conn), query):
            assert low < row["score"] < high, (query, row)


def test_a_sentence_finds_each_skill_it_names(conn):
    rows = search(as_anon(conn), "Experience with Kubernetes and Terraform on the cloud")
    assert set(slugs(rows)) == {"kubernetes", "terraform", "cloud-infrastructure"}
    assert {row["matched_by"] for row in rows} == {"text"}


@pytest.mark.parametrize("query", ["zzzz", "the and of", "%", "_", "\\", "'"])
def test_nothing_found_is_an_empty_list(conn, query):
    assert search(as_anon(conn), query) == []


def test_at_most_max_results(conn):
    assert slugs(search(as_anon(conn), "fin", 1)) == ["financial-modelling"]
    assert slugs(search(as_anon(conn), "fin", 50)) == ["financial-modelling", "financial-planning"]
    assert search(as_anon(conn), "k" * 200, 50) == []  # the longest query there may be


@pytest.mark.parametrize(
    ("query", "limit"),
    [("", 10), ("   ", 10), (None, 10), ("k" * 201, 10), ("k8s", 0), ("k8s", 51), ("k8s", None)],
)
def test_bad_input_is_refused_in_our_words(conn, query, limit):
    error = as_anon(conn).refused(SEARCH, (query, limit), sqlstate="22023")
    assert error.diag.message_primary in (
        "the query must have 1 to 200 characters",
        "max_results must be between 1 and 50",
    )


@pytest.mark.parametrize("who", ["anon", "authenticated", "service_role"])
def test_every_api_role_may_search(conn, who):
    actor = {"anon": as_anon, "service_role": as_service}.get(who)
    caller = actor(conn) if actor else as_user(conn, make_user(conn))
    assert slugs(search(caller, "k8s")) == ["kubernetes"]


# Grants and RLS of what is new --------------------------------------------------------------------------

PRIVATE_FUNCTIONS = {
    "skill_embedding_source(bigint)": set(),
    "skills_to_embed(text,integer)": set(),
    "search_skills_by_meaning(text,extensions.vector,text,integer)": {"service_role"},
}


@pytest.mark.parametrize(("signature", "allowed"), PRIVATE_FUNCTIONS.items())
def test_private_functions_are_the_worker_s_and_the_functions(conn, signature, allowed):
    granted = {
        role
        for role in ("anon", "authenticated", "service_role")
        if value(conn, "select has_function_privilege(%s, %s, 'execute')", (role, f"private.{signature}"))
    }
    assert granted == allowed


def test_search_skills_is_for_every_api_role(conn):
    for role in ("anon", "authenticated", "service_role"):
        assert value(
            conn,
            "select has_function_privilege(%s, 'public.search_skills(text, integer)', 'execute')",
            (role,),
        )
    # Not through PUBLIC: a role made later (or one of Supabase's own) gets nothing unasked.
    assert not value(
        conn,
        "select bool_or(a::text like '=%%') from pg_proc p, unnest(p.proacl) a"
        " where p.oid = 'public.search_skills(text, integer)'::regprocedure",
    )


@pytest.mark.parametrize("who", ["anon", "authenticated"])
def test_the_api_roles_cannot_reach_the_embeddings(conn, who):
    caller = as_anon(conn) if who == "anon" else as_user(conn, make_user(conn, roles=("admin",)))
    caller.refused("select * from private.skill_embeddings", sqlstate="42501")
    caller.refused(BY_MEANING, ("k8s", [0.0] * DIMENSIONS, "m", 10), sqlstate="42501")


def test_the_service_role_reads_the_embeddings_and_writes_none(conn):
    assert value(conn, "select relrowsecurity from pg_class where oid = 'private.skill_embeddings'::regclass")
    service = as_service(conn)
    assert service.rows("select * from private.skill_embeddings") == []
    for statement in (
        "insert into private.skill_embeddings (skill_id, model, source, embedding)"
        " select id, 'm', '', array_fill(0.1, array[1536])::extensions.vector from public.skills limit 1",
        "update private.skill_embeddings set model = 'm'",
        "delete from private.skill_embeddings",
    ):
        service.refused(statement, sqlstate="42501")


def test_ontology_edits_queue_nothing_and_never_wait_for_each_other(conn, committed):
    # An admin's edit left open (conn is rolled back at the end), and another committed meanwhile: nothing
    # to wait for, as there would be with a job queued under a queueing lock by each.
    admin = as_user(conn, make_user(conn, roles=("admin",)))
    admin.rows(
        "insert into public.skill_aliases (alias, skill_id) select 'kubectl', id from public.skills"
        " where slug = 'kubernetes'"
    )
    with committed.transaction():
        committed.execute("set local lock_timeout = '2s'")
        committed.execute("update public.skills set name = 'Kubernetes (K8s)' where slug = 'docker'")
    assert value(conn, JOBS) == 0


def test_others_cannot_edit_the_ontology(conn):
    as_user(conn, make_user(conn)).refused(
        "insert into public.skill_aliases (alias, skill_id) select 'kubectl', id from public.skills"
        " where slug = 'kubernetes'",
        sqlstate="42501",
    )


# The embeddings: the worker's job --------------------------------------------------------------------------


def embeddings(conn: psycopg.Connection) -> dict[str, dict[str, Any]]:
    """Each embedded skill's model, source, dimensions and when it was written, by slug."""
    with conn.cursor(row_factory=dict_row) as cursor:
        rows = cursor.execute(
            "select k.slug, e.model, e.source, extensions.vector_dims(e.embedding) as dims, e.embedded_at"
            " from private.skill_embeddings e join public.skills k on k.id = e.skill_id"
        ).fetchall()
    return {row.pop("slug"): row for row in rows}


async def test_the_job_embeds_every_skill_once(committed, admin, settings, ai, new_ai):
    assert await embed_skills(admin, new_ai(settings)) == len(ONTOLOGY)
    stored = embeddings(committed)
    assert set(stored) == {slug for slug, *_ in ONTOLOGY}
    assert {(row["model"], row["dims"]) for row in stored.values()} == {
        (settings.embeddings_model, DIMENSIONS)
    }
    assert stored["kubernetes"]["source"] == (
        "Kubernetes. Also called k8s, kube. Part of Cloud infrastructure. Category: technology"
    )
    assert (
        stored["negotiation"]["source"]
        == "Negotiation. Also called closing deals, deal making. Category: sales"
    )
    assert ai.requests[0]["dimensions"] == DIMENSIONS

    requests = len(ai.requests)
    assert await embed_skills(admin, new_ai(settings)) == 0
    assert len(ai.requests) == requests  # nothing left to ask for


async def test_the_job_works_in_batches(committed, admin, settings, ai, new_ai):
    committed.execute(
        "insert into public.skills (slug, name, category)"
        " select 'extra-' || i, 'Extra skill ' || i, 'data' from generate_series(1, 150) i"
    )
    assert await embed_skills(admin, new_ai(settings)) == len(ONTOLOGY) + 150
    assert [len(request["input"]) for request in ai.requests] == [64, 64, 33]


async def test_a_changed_skill_is_embedded_again(committed, admin, settings, new_ai):
    async def embedded() -> set[str]:
        """The skills the job embeds now."""
        before = embeddings(committed)
        written = await embed_skills(admin, new_ai(settings))
        after = embeddings(committed)
        again = {slug for slug in after if after[slug]["embedded_at"] != before[slug]["embedded_at"]}
        assert written == len(again)
        return again

    await embed_skills(admin, new_ai(settings))
    committed.execute(
        "insert into public.skill_aliases (alias, skill_id) select 'kubectl', id from public.skills"
        " where slug = 'kubernetes'"
    )
    assert await embedded() == {"kubernetes"}
    assert "kubectl" in embeddings(committed)["kubernetes"]["source"]
    # An umbrella skill renamed: its specialisations say whose part they are.
    committed.execute("update public.skills set name = 'Cloud platforms' where slug = 'cloud-infrastructure'")
    assert await embedded() == {"cloud-infrastructure", "kubernetes", "terraform"}
    committed.execute("delete from public.skill_aliases where alias = 'iac'")
    assert await embedded() == {"terraform"}
    committed.execute("update public.skills set category = 'finance' where slug = 'negotiation'")
    assert await embedded() == {"negotiation"}
    committed.execute("delete from public.skills where slug = 'pytorch'")
    assert await embedded() == set()
    assert "pytorch" not in embeddings(committed)


async def test_another_model_embeds_everything_again(committed, admin, settings, ai, new_ai):
    await embed_skills(admin, new_ai(settings))
    other = settings.model_copy(update={"embeddings_model": "text-embedding-3-large"})
    assert await embed_skills(admin, new_ai(other)) == len(ONTOLOGY)
    assert {row["model"] for row in embeddings(committed).values()} == {"text-embedding-3-large"}
    assert ai.requests[-1]["model"] == "text-embedding-3-large"


async def test_a_provider_outage_writes_nothing(committed, admin, settings, ai, new_ai):
    ai.fail_next = 10  # more than the SDK's retries
    with pytest.raises(AIProviderError):
        await embed_skills(admin, new_ai(settings.model_copy(update={"openai_max_retries": 0})))
    assert embeddings(committed) == {}


async def run_periodic(settings: Settings) -> None:
    """What the worker does every minute: the periodic job queued (its schedule is checked below), then
    the real worker on the `ai` queue until nothing is due."""
    queue = Queue(settings, CAPABILITIES)
    app = queue.app()
    app.periodic_registry = PeriodicRegistry()
    async with queue.opened(app):
        await app.configure_task("jobsearch:embed_skills").defer_async(timestamp=0)
        await work_until_idle(app, queue, settings, ["ai"])


def job_statuses(conn: psycopg.Connection) -> list[str]:
    rows = conn.execute(
        "select status::text from procrastinate.procrastinate_jobs where task_name = 'jobsearch:embed_skills'"
    ).fetchall()
    return [status for (status,) in rows]


def test_the_job_runs_every_minute(settings):
    periodic = Queue(settings, CAPABILITIES).app().periodic_registry.periodic_tasks
    assert periodic[("jobsearch:embed_skills", "embed_skills")].cron == "* * * * *"


async def test_the_periodic_job_embeds_a_change(committed, settings):
    committed.execute("update public.skills set name = 'K8s orchestration' where slug = 'kubernetes'")
    await run_periodic(settings)
    assert job_statuses(committed) == ["succeeded"]
    assert len(embeddings(committed)) == len(ONTOLOGY)
    assert embeddings(committed)["kubernetes"]["source"].startswith("K8s orchestration.")


async def test_without_a_provider_the_job_does_nothing(committed, database):
    committed.execute("update public.skills set name = 'K8s orchestration' where slug = 'kubernetes'")
    await run_periodic(database.settings())
    assert job_statuses(committed) == ["succeeded"]
    assert embeddings(committed) == {}


# The vector search ----------------------------------------------------------------------------------------


def test_the_vector_search_uses_the_hnsw_index(committed, database):
    definition = value(
        committed,
        "select pg_get_indexdef('private.skill_embeddings_embedding_idx'::regclass)",
    )
    assert "USING hnsw (embedding extensions.vector_cosine_ops)" in definition
    committed.execute(
        "insert into public.skills (slug, name, category)"
        " select 'extra-' || i, 'Extra skill ' || i, 'data' from generate_series(1, 60) i"
    )
    # Vectors of their own, each at less than a right angle to the query's (all positive).
    committed.execute(
        "insert into private.skill_embeddings (skill_id, model, source, embedding)"
        " select k.id, 'm', k.slug, v.embedding from public.skills k cross join lateral ("
        "   select array_agg(0.01 + abs(sin(k.id * g)))::float4[]::extensions.vector as embedding"
        "   from generate_series(1, 1536) g) v"
    )
    scans = (
        "select coalesce(sum(idx_scan), 0) from pg_stat_all_indexes"
        " where indexrelname = 'skill_embeddings_embedding_idx'"
    )
    with psycopg.connect(database.superuser, autocommit=True) as other:
        before = value(other, scans)
        # A table this small is read whole, which is cheaper; with sequential scans priced out, the
        # function's query must be one the index can answer, or the planner would still scan.
        with committed.transaction():
            committed.execute("set local enable_seqscan = off")
            rows = committed.execute(BY_MEANING, ("zzzz", [1.0] * DIMENSIONS, "m", 50)).fetchall()
        # All 50 asked for: HNSW stops at ef_search rows (40 unless the function raises it).
        assert len(rows) == 50
        committed.execute("select pg_stat_force_next_flush()")
        other.execute("select pg_stat_clear_snapshot()")
        assert value(other, scans) == before + 1


def unit(weights: dict[int, float]) -> list[float]:
    vector = [0.0] * DIMENSIONS
    for index, weight in weights.items():
        vector[index] = weight
    norm = math.sqrt(sum(x * x for x in vector))
    return [x / norm for x in vector]


def test_meaning_merges_by_reciprocal_rank_with_exact_names_first(conn):
    # Each skill its own axis; the query closest to pytorch, then machine learning, then python.
    ids = dict(conn.execute("select slug, id from public.skills").fetchall())
    axis = {slug: position for position, slug in enumerate(sorted(ids))}
    for slug, skill_id in ids.items():
        conn.execute(
            "insert into private.skill_embeddings (skill_id, model, source, embedding)"
            " values (%s, 'm', %s, %s::extensions.vector)",
            (skill_id, slug, unit({axis[slug]: 1.0})),
        )
    query = unit({axis["pytorch"]: 1.0, axis["machine-learning"]: 0.5, axis["python"]: 0.25})
    service = as_service(conn)

    def ranking(text: str, model: str = "m") -> list[tuple[str, str, bool]]:
        rows = service.rows(BY_MEANING, (text, query, model, 3))
        return [(row["slug"], row["matched_by"], row["similarity"] is not None) for row in rows]

    # The text says python first (prefix of a shorter name), meaning says pytorch: found by both lists,
    # pytorch rises above python, which meaning ranks third; machine learning only by meaning.
    assert slugs(search(service, "pyt")) == ["python", "pytorch"]
    assert ranking("pyt") == [
        ("pytorch", "prefix", True),
        ("python", "prefix", True),
        ("machine-learning", "vector", True),
    ]
    # An exact alias is what the user meant: first, whatever the fusion says.
    assert ranking("py") == [
        ("python", "exact", True),
        ("pytorch", "prefix", True),
        ("machine-learning", "vector", True),
    ]
    # Vectors of another model are not compared.
    assert ranking("pyt", model="other") == [("python", "prefix", False), ("pytorch", "prefix", False)]


# POST /functions/v1/skills/search --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def stack_url(database: Database, ai: AIServer) -> Iterator[str]:
    """The local stack as a frontend meets it (real PostgREST behind /rest/v1), with the AI server."""
    from rpc.local.rest import HOW_TO_GET_IT, find_postgrest

    settings = database.settings(rest_api=True, openai_api_key="sk-test", openai_base_url=ai.url)
    if find_postgrest(settings) is None:
        pytest.skip(HOW_TO_GET_IT)
    with live_server(create_app(settings)) as url:
        yield url


def supabase(url: str, token: str | None = None) -> Client:
    options = ClientOptions(
        headers=bearer(token) if token else {}, auto_refresh_token=False, persist_session=False
    )
    return create_client(url, ANON_KEY, options)


def invoke(client: Client, body: dict[str, Any]) -> dict[str, Any]:
    return json.loads(client.functions.invoke("skills/search", invoke_options={"body": body}))


def hits(body: dict[str, Any]) -> list[tuple[str, str]]:
    return [(hit["slug"], hit["matched_by"]) for hit in body["skills"]]


async def test_by_meaning_finds_what_the_words_do_not_say(committed, admin, settings, stack_url, new_ai):
    await embed_skills(admin, new_ai(settings))
    client = supabase(stack_url, token_for(make_user(committed)))
    # "data" names no skill; machine learning and pytorch are data skills.
    assert client.rpc("search_skills", {"query": "data"}).execute().data == []
    body = invoke(client, {"query": "data"})
    assert body["by_meaning"] is True
    # Only skills that share something with it: none at a right angle to the query.
    assert hits(body) == [("machine-learning", "vector"), ("pytorch", "vector")]
    similarities = [hit["similarity"] for hit in body["skills"]]
    assert similarities == sorted(similarities, reverse=True)
    assert similarities[0] > 0.3
    assert body["skills"][0]["score"] is None
    assert body["skills"][0]["matched"] is None
    # The umbrella by its name, then what it is made of by meaning.
    body = invoke(supabase(stack_url), {"query": "cloud", "limit": 3})
    assert hits(body) == [
        ("cloud-infrastructure", "prefix"),
        ("kubernetes", "vector"),
        ("terraform", "vector"),
    ]
    assert body["skills"][0]["similarity"] > body["skills"][1]["similarity"]


def spent_today(conn: psycopg.Connection, user_id: str) -> int:
    row = conn.execute(
        "select total_tokens from private.ai_usage where user_id = %s and day = (now() at time zone 'utc')::date",
        (user_id,),
    ).fetchone()
    return row[0] if row else 0


async def test_a_signed_in_search_by_meaning_is_on_the_searchers_budget(
    committed, admin, settings, ai, stack_url, new_ai
):
    await embed_skills(admin, new_ai(settings))
    user = make_user(committed)
    client = supabase(stack_url, token_for(user))
    assert invoke(client, {"query": "data"})["by_meaning"] is True
    assert spent_today(committed, user.id) > 0
    # Over their budget of the day: the text ranking, and the provider is not asked.
    committed.execute(
        "update private.ai_usage set prompt_tokens = %s where user_id = %s",
        (settings.ai_daily_tokens_per_user, user.id),
    )
    asked = len(ai.requests)
    body = invoke(client, {"query": "k8s"})
    assert (body["by_meaning"], hits(body)) == (False, [("kubernetes", "exact")])
    assert len(ai.requests) == asked


async def test_without_a_provider_the_search_is_the_text_ranking(committed, database):
    async with AsyncTestClient(app=create_app(database.settings())) as client:
        for query in ("k8s", "fin", "deal", "data"):
            response = await client.post(
                "/functions/v1/skills/search", json={"query": query}, headers={"apikey": ANON_KEY}
            )
            assert response.status_code == 200, response.text
            assert response.json()["by_meaning"] is False
            expected = committed.execute(SEARCH, (query, 10)).fetchall()
            assert [(h["skill_id"], h["slug"], h["score"]) for h in response.json()["skills"]] == [
                (row[0], row[1], row[6]) for row in expected
            ]
            assert all(hit["similarity"] is None for hit in response.json()["skills"])


async def test_a_provider_failure_leaves_the_text_ranking(committed, admin, settings, ai, new_ai):
    await embed_skills(admin, new_ai(settings))
    ai.requests.clear()
    ai.fail_next = 10
    failing = settings.model_copy(update={"openai_max_retries": 1})
    async with AsyncTestClient(app=create_app(failing)) as client:
        response = await client.post(
            "/functions/v1/skills/search", json={"query": "k8s"}, headers={"apikey": SERVICE_KEY}
        )
    assert response.status_code == 200, response.text
    assert response.json()["by_meaning"] is False
    assert hits(response.json()) == [("kubernetes", "exact")]
    assert len(ai.requests) == 2  # it did ask, and retried once


@pytest.mark.parametrize(
    "body",
    [
        {"query": ""},
        {"query": "   "},
        {"query": "k" * 201},
        {"query": "k8s", "limit": 0},
        {"query": "k8s", "limit": 51},
        {"query": "k8s", "limit": "ten"},
        {"query": 8},
        {"limit": 5},
        {"query": "k8s", "model": "gpt"},
    ],
)
async def test_bad_input_is_refused_in_our_shape(database, body):
    async with AsyncTestClient(app=create_app(database.settings())) as client:
        response = await client.post("/functions/v1/skills/search", json=body, headers={"apikey": ANON_KEY})
    assert response.status_code == 422, response.text
    assert response.json()["error"] == "validation_failed"
    assert set(response.json()) == {"error", "message", "fields"}


async def test_the_longest_query_is_accepted(database):
    async with AsyncTestClient(app=create_app(database.settings())) as client:
        response = await client.post(
            "/functions/v1/skills/search",
            json={"query": "k" * 200, "limit": 50},
            headers={"apikey": ANON_KEY},
        )
    assert (response.status_code, response.json()) == (200, {"skills": [], "by_meaning": False})


def test_the_search_needs_the_project_s_key(stack_url):
    response = httpx.post(f"{stack_url}/functions/v1/skills/search", json={"query": "k8s"})
    assert response.status_code == 401
    assert response.json()["error"] == "missing_or_invalid_authorization"


def test_search_skills_through_postgrest(stack_url):
    client = supabase(stack_url)
    assert [row["slug"] for row in client.rpc("search_skills", {"query": "K8s"}).execute().data] == [
        "kubernetes"
    ]
    rows = client.rpc("search_skills", {"query": "fin", "max_results": 1}).execute().data
    assert [(row["slug"], row["matched_by"]) for row in rows] == [("financial-modelling", "prefix")]
    with pytest.raises(APIError) as error:
        client.rpc("search_skills", {"query": " "}).execute()
    assert (error.value.code, error.value.message) == ("22023", "the query must have 1 to 200 characters")
