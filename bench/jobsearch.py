"""The job search assistant under load: measurements of bench/jobsearch.py, one function each.

search:  200,000 role postings (BENCH_LISTINGS) of 2,000 companies, nine in ten verified; 85% open, 10%
         closed, 5% drafts, three skills each, titles from twenty, descriptions of words every posting
         uses and a few topics (some on a third of the postings, most on 2 or 3 in a hundred), copied in:
         about 150,000 listings on the board. Then `public.search_jobs` with a query (one to three words,
         from common to rare; about 900 matches after the filters at the median, 8,000 at most), two
         filters (remote work, VP or C-level) and a page of 20, BENCH_SEARCH_CALLS times for each caller,
         the callers taking turns on each query: as a visitor (anon) and as a signed-in user, with RLS, each
         call in a transaction of its own set up as PostgREST sets one up (role and claims, then the
         call), on one connection as authenticator; and as service_role, which bypasses RLS, the same way.
         Times are the call's own, client-side. `search_p50_ms` and `search_p95_ms` are the visitor's;
         `search_rls_ratio` is the slower of the two RLS callers' p50 over the bypassing caller's.

chat:    the careers chat's added latency to the first streamed token over the provider's own. The
         provider is tests/ai_server.py in a process of its own, sending its first byte, with the first
         word, after a fixed delay (BENCH_CHAT_PROVIDER_DELAY_MS, 50), then the other words at a fast
         model's pace (BENCH_CHAT_PROVIDER_WORDS_PER_S, 100; 0 sends them all at once, as no model does:
         on this machine's two CPUs that burst and the app relaying it then keep both busy while the
         client is to read the first word); the app (one uvicorn worker) uses it. Alice has a resume
         longer than the context's budget, five saved listings and a conversation of ten turns for each
         of the BENCH_CHAT_CALLS messages (and the warm-up's), which each message continues once, so every
         prompt holds twenty earlier messages, as the direct one does (a conversation continued again and
         again would grow its prompt, and the provider's work, past the direct one's). Each round asks the
         provider directly (a prompt of the chat's size) and the chat (`POST /functions/v1/ai/chat`, read
         to its `done`), each first in turn, timing each from the request to its first token,
         client-side. `chat_ttft_overhead_ms` is the median of the rounds' differences: token check, the
         turn's statement, the budget check, the SDK and the stream's start.

Targets: `search_p50_ms` under 20, `search_rls_ratio` at most 1.2, `chat_ttft_overhead_ms` at most 10.

Each measurement takes the `postgres` DSN of a migrated, seeded cluster of its own (bench/_common.py) and
returns its name=value lines; `main` prints them. A measurement is added by appending its function to
MEASUREMENTS.
"""

from __future__ import annotations

import json
import os
import random
import re
import statistics
import time
from collections.abc import Callable

import httpx
import psycopg
from _common import ALICE, run_app, seeded_cluster, wait_ready

LISTINGS = int(os.environ.get("BENCH_LISTINGS", "200000"))
SEARCH_CALLS = int(os.environ.get("BENCH_SEARCH_CALLS", "300"))
COMPANIES = 2000
TARGET_SEARCH_P50_MS = 20.0
TARGET_SEARCH_RLS_RATIO = 1.2

Lines = list[tuple[str, str]]

# Descriptions: 40 to 80 words that every kind of posting uses, and 6 to 12 of its topics, drawn so that a
# few topics are common (on a third of the listings at most) and most are on 2 or 3 in a hundred.
FILLER = [
    "team", "lead", "build", "business", "growth", "strategy", "experience", "product", "company", "role",
    "work", "customers", "data", "management", "leadership", "operations", "results", "drive", "scale",
    "people", "culture", "plan", "execution", "process", "delivery", "partners", "stakeholders", "market",
    "quality", "performance", "reporting", "systems", "hands", "ownership", "collaborate", "ambitious",
    "fast", "paced", "mission", "impact", "values", "remote", "flexible", "benefits", "opportunity",
    "join", "help", "shape", "across", "develop", "deliver", "improve", "support", "senior", "strong",
    "proven", "track", "record",
]  # fmt: skip
TOPICS = [
    "finance", "revenue", "board", "hiring", "budget", "platform", "engineering", "sales", "marketing",
    "transformation", "international", "programme", "risk", "compliance", "governance", "investors",
    "capital", "funding", "profitability", "forecasting", "analytics", "infrastructure", "cloud",
    "security", "architecture", "roadmap", "pricing", "procurement", "logistics", "supply", "chain",
    "manufacturing", "retail", "ecommerce", "healthcare", "fintech", "saas", "payments", "banking",
    "insurance", "energy", "climate", "sustainability", "mobility", "automotive", "aerospace", "biotech",
    "pharma", "medtech", "gaming", "media", "education", "nonprofit", "government", "legal", "regulatory",
    "audit", "treasury", "tax", "accounting", "controller", "acquisitions", "integration", "restructuring",
    "turnaround", "fundraising", "exit", "ipo", "valuation", "modelling", "python", "java", "kubernetes",
    "aws", "azure", "gcp", "terraform", "postgres", "kafka", "spark", "machine", "learning", "ai", "llm",
    "devops", "sre", "frontend", "react", "typescript", "mobile", "ios", "android", "design", "research",
    "brand", "content", "seo", "partnerships", "channel", "enterprise", "smb", "negotiation", "coaching",
    "mentoring", "recruiting", "retention", "diversity", "wellbeing", "payroll", "benefits", "onboarding",
    "lean", "sixsigma", "kaizen", "warehouse", "fleet", "cybersecurity", "privacy", "gdpr", "iso", "soc2",
    "blockchain", "quantum", "robotics", "semiconductors", "telecom", "satellite", "agritech", "foodtech",
    "proptech", "insurtech", "regtech", "legaltech", "edtech", "hrtech", "martech", "adtech", "cleantech",
]  # fmt: skip
TITLES = [
    "Chief Financial Officer", "Fractional CFO", "Interim COO", "Chief Technology Officer",
    "VP Engineering", "Head of Data", "Chief Marketing Officer", "VP Sales", "Head of People",
    "General Counsel", "Chief Operating Officer", "Head of Product", "Finance Director",
    "Engineering Manager", "Board Advisor", "Chief Revenue Officer", "Head of Security",
    "Director of Operations", "Supply Chain Director", "Head of Growth",
]  # fmt: skip
CITIES = [
    "London, UK", "Berlin, Germany", "Paris, France", "Amsterdam, Netherlands", "New York, USA",
    "San Francisco, USA", "Toronto, Canada", "Singapore", "Sydney, Australia", "Madrid, Spain",
    "Stockholm, Sweden", "Zurich, Switzerland", "Dublin, Ireland", "Austin, USA", "Lisbon, Portugal",
]  # fmt: skip
INDUSTRIES = ["fintech", "saas", "healthcare", "retail", "energy", "manufacturing", "media", "logistics"]
# From words on most listings to words on few, single and paired ("a b": both).
QUERIES = [
    "finance", "cloud security", "payments", "fintech growth", "kubernetes", "supply chain",
    "restructuring turnaround", "machine learning", "ipo", "chief financial officer", "treasury", "brand",
    "governance risk", "react typescript", "insurtech", "board", "quantum", "revenue", "gdpr privacy",
    "head of data",
]  # fmt: skip
FILTERS = {"remote_policies": ["remote"], "seniorities": ["vp", "c_level"], "page_size": 20}

COMPANIES_SQL = """
insert into public.companies (name, verified_at)
select 'Bench company ' || c, case when c %% 10 <> 0 then now() end
from generate_series(1, %s) c
returning id
"""
# Drafts first: skills then cost their listings nothing, and one update puts the postings on the board.
POSTINGS_COPY = """
copy public.role_postings (company_id, title, description, engagement_type, seniority, industries, location,
  remote_policy, compensation_currency, compensation_min, compensation_max, compensation_unit,
  compensation_published, status) from stdin
"""
SKILLS_SQL = """
insert into public.role_skills (role_id, skill_id)
select r.id, s.ids[1 + ((r.n * k * 7919) % cardinality(s.ids))]
from (select id, row_number() over (order by id) as n from public.role_postings) r,
  (select array_agg(id order by id) as ids from public.skills) s,
  generate_series(1, 3) k
on conflict do nothing
"""
OPEN_SQL = """
update public.role_postings r
set status = case when h.v < 85 then 'open' when h.v < 95 then 'closed' else 'draft' end::public.role_status
from (select id, abs(hashtext(id::text)) % 100 as v from public.role_postings) h
where h.id = r.id
"""


# What PostgREST runs for each request: the role and the claims, local to the transaction, then the call.
AS_CALLER = "select set_config('role', %s, true), set_config('request.jwt.claims', %s, true)"
SEARCH = """
select * from public.search_jobs(query => %(query)s,
  remote_policies => %(remote_policies)s::public.work_mode[],
  seniorities => %(seniorities)s::public.seniority[], page_size => %(page_size)s)
"""


def posting(rng: random.Random, index: int, companies: list[str]) -> tuple[object, ...]:
    """One draft posting's columns, in POSTINGS_COPY's order."""
    words = rng.choices(FILLER, k=rng.randint(40, 80))
    words += (TOPICS[int(len(TOPICS) * rng.random() ** 1.5)] for _ in range(rng.randint(6, 12)))
    rng.shuffle(words)
    return (
        companies[index % len(companies)],
        TITLES[index % len(TITLES)],
        " ".join(words),
        ("fractional", "interim", "full_time", "advisory")[index % 4],
        ("manager", "director", "vp", "c_level", "board")[index // 4 % 5],
        sorted({INDUSTRIES[index % 8], INDUSTRIES[index // 8 % 8]}),
        CITIES[index // 3 % len(CITIES)],
        ("onsite", "hybrid", "remote")[index // 7 % 3],
        "EUR",
        800,
        1400,
        "day",
        index % 2 == 0,
        "draft",
    )


def seed_listings(dsn: str) -> int:
    """Companies, postings and their skills; returns the number of listings on the board."""
    rng = random.Random(20261130)
    with psycopg.connect(dsn, autocommit=True) as conn:
        companies = [str(row[0]) for row in conn.execute(COMPANIES_SQL, (COMPANIES,))]
        with conn.cursor().copy(POSTINGS_COPY) as copy:
            for index in range(LISTINGS):
                copy.write_row(posting(rng, index, companies))
        conn.execute(SKILLS_SQL)
        conn.execute(OPEN_SQL)
        conn.execute("analyze")
        listed = conn.execute("select count(*) from public.listings").fetchone()
    assert listed is not None
    return int(listed[0])


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[round(share * (len(ordered) - 1))]


def search(dsn: str) -> Lines:
    started = time.monotonic()
    listed = seed_listings(dsn)
    print(
        f"# search: {listed} listings on the board, seeded in {time.monotonic() - started:.0f} s", flush=True
    )
    callers = {
        "anon": {"role": "anon"},
        "authenticated": {"role": "authenticated", "sub": "00000000-0000-4000-8000-00000000000a"},
        "service_role": {"role": "service_role"},
    }
    times: dict[str, list[float]] = {name: [] for name in callers}
    matches: list[int] = []
    authenticator = dsn.replace("postgresql://postgres:", "postgresql://authenticator:", 1)
    with psycopg.connect(authenticator) as conn:
        for call in range(SEARCH_CALLS):
            query = QUERIES[call % len(QUERIES)]
            # Each caller goes first in turn, so that none is always the one that finds the pages cold.
            order = list(callers)[call % 3 :] + list(callers)[: call % 3]
            for name in order:
                with conn.transaction():
                    conn.execute(AS_CALLER, (name, json.dumps(callers[name])))
                    began = time.perf_counter()
                    rows = conn.execute(SEARCH, {"query": query, **FILTERS}).fetchall()
                    times[name].append((time.perf_counter() - began) * 1000)
                if name == "anon":
                    matches.append(rows[0][-1] if rows else 0)
    print(
        f"# search: {SEARCH_CALLS} calls each; matches per query p50 {statistics.median(matches):.0f},"
        f" max {max(matches)}",
        flush=True,
    )
    p50 = {name: statistics.median(values) for name, values in times.items()}
    ratio = max(p50["anon"], p50["authenticated"]) / p50["service_role"]
    return [
        *target("search_p50_ms", p50["anon"], p50["anon"] < TARGET_SEARCH_P50_MS),
        ("search_p95_ms", f"{percentile(times['anon'], 0.95):.2f}"),
        ("search_authenticated_p50_ms", f"{p50['authenticated']:.2f}"),
        ("search_bypass_rls_p50_ms", f"{p50['service_role']:.2f}"),
        *target("search_rls_ratio", ratio, ratio <= TARGET_SEARCH_RLS_RATIO, digits=3),
    ]


def target(name: str, value: float, met: bool, digits: int = 2) -> Lines:
    return [(name, f"{value:.{digits}f}"), (f"{name}_target_met", str(met).lower())]


# Careers chat ------------------------------------------------------------------------------------------

CHAT_CALLS = int(os.environ.get("BENCH_CHAT_CALLS", "200"))
CHAT_PROVIDER_DELAY_MS = float(os.environ.get("BENCH_CHAT_PROVIDER_DELAY_MS", "50"))
CHAT_PROVIDER_WORDS_PER_S = float(os.environ.get("BENCH_CHAT_PROVIDER_WORDS_PER_S", "100"))
TARGET_CHAT_TTFT_OVERHEAD_MS = 10.0
CHAT_ANSWER = "Start with the two roles you saved, then tailor your resume to each of them."
CHAT_WARM_UP = 20
# Alice's context and history: a resume longer than the context budget, five saved listings, and a
# conversation of ten finished turns for each call.
CHAT_SEED = (
    """
insert into public.resumes (user_id, object_path, content_hash, media_type, text, status, is_primary)
values (%(alice)s, %(path)s, encode(sha256(convert_to(%(resume)s, 'utf8')), 'hex'),
        'text/plain', %(resume)s, 'ready', true)
""",
    """
insert into public.saved_listings (user_id, role_posting_id)
select %(alice)s, l.role_posting_id from public.listings l order by l.opened_at desc limit 5
""",
    """
with conversations as (
  insert into public.chat_conversations (user_id, title)
  select %(alice)s, 'Bench conversation ' || c from generate_series(1, %(conversations)s) c
  returning id
)
insert into public.chat_messages (conversation_id, user_id, role, content, status, created_at, completed_at)
select c.id, %(alice)s, case when m %% 2 = 0 then 'user' else 'assistant' end,
       repeat('A sentence of an earlier turn. ', 8), 'complete',
       now() - interval '1 hour' + m * interval '1 second', now() - interval '1 hour' + m * interval '1 second'
from conversations c, generate_series(0, 19) m
returning conversation_id
""",
)


def serve_provider(port: int, delay_s: float, word_delay_s: float) -> None:
    """tests/ai_server.py (in a child process): every chat answers CHAT_ANSWER, its first word after
    `delay_s`, the others `word_delay_s` apart."""
    import uvicorn

    from tests.ai_server import AIServer, Reply

    provider = AIServer()
    provider.default = Reply(CHAT_ANSWER, delay_s=delay_s, word_delay_s=word_delay_s)
    uvicorn.run(provider.app(), host="127.0.0.1", port=port, log_level="warning", access_log=False)


def serve_chat(port: int, dsn: str, provider_url: str) -> None:
    run_app(
        port,
        database_url=dsn,
        openai_api_key="sk-bench",
        openai_base_url=provider_url,
        ai_daily_tokens_per_user=10**12,  # checked on every call, never reached
        log_level="WARNING",
    )


def first_token_ms(
    client: httpx.Client,
    url: str,
    body: dict[str, object],
    headers: dict[str, str],
    first: Callable[[str], bool],
) -> tuple[float, str, str]:
    """Milliseconds from sending the request to reading the first line `first` accepts; the last line; and
    the Server-Timing header."""
    began = time.perf_counter()
    elapsed, last = None, ""
    with client.stream("POST", url, json=body, headers=headers) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if elapsed is None and first(line):
                elapsed = (time.perf_counter() - began) * 1000
            last = line or last
    if elapsed is None:
        raise RuntimeError(f"{url} streamed no token; its last line: {last}")
    return elapsed, last, response.headers.get("server-timing", "")


def provider_token(line: str) -> bool:
    """A chunk of the provider's stream with text in it (its first carries only the role)."""
    if not line.startswith("data: {"):
        return False
    choices = json.loads(line[6:])["choices"]
    return bool(choices and choices[0]["delta"].get("content"))


def chat(dsn: str) -> Lines:
    from multiprocessing import get_context

    from rpc.jobsearch.chat import SYSTEM_PROMPT
    from rpc.local.rest import free_port
    from rpc.local.tokens import mint_user_token
    from rpc.platform.settings import SUPABASE_CLI_JWT_SECRET

    # About 9,000 characters: more than the context's budget.
    resume = "Led finance and operations teams through growth, two acquisitions and an IPO. " * 115
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(CHAT_SEED[0], {"alice": ALICE, "path": f"{ALICE}/resume.txt", "resume": resume})
        conn.execute(CHAT_SEED[1], {"alice": ALICE})
        conversations = sorted(
            {
                str(row[0])
                for row in conn.execute(
                    CHAT_SEED[2], {"alice": ALICE, "conversations": CHAT_WARM_UP + CHAT_CALLS}
                )
            }
        )
    spawn = get_context("spawn")
    provider_port, app_port = free_port(), free_port()
    provider_url = f"http://127.0.0.1:{provider_port}/v1"
    children = [
        spawn.Process(
            target=serve_provider,
            args=(
                provider_port,
                CHAT_PROVIDER_DELAY_MS / 1000,
                1 / CHAT_PROVIDER_WORDS_PER_S if CHAT_PROVIDER_WORDS_PER_S else 0.0,
            ),
            daemon=True,
        ),
        spawn.Process(target=serve_chat, args=(app_port, dsn, provider_url), daemon=True),
    ]
    for child in children:
        child.start()
    try:
        token = mint_user_token(dsn, "alice@example.com", SUPABASE_CLI_JWT_SECRET, issuer="bench")
        wait_ready(f"http://127.0.0.1:{app_port}/health", {})
        user = {"Authorization": f"Bearer {token}"}
        # The provider asked directly with a prompt of the chat's size: the system prompt and a context
        # at its budget (about 6,000 characters), twenty earlier messages, the question.
        direct = {
            "model": "gpt-4o-mini",
            "messages": [
                {"role": "system", "content": SYSTEM_PROMPT + "\n\n" + resume[:6000]},
                *[
                    {
                        "role": "user" if m % 2 == 0 else "assistant",
                        "content": "A sentence of an earlier turn. " * 8,
                    }
                    for m in range(20)
                ],
                {"role": "user", "content": "Which of my saved roles fits me best?"},
            ],
            "max_tokens": 1024,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        provider, ours, database = [], [], []
        with httpx.Client(timeout=30) as client:
            wait_provider(client, f"{provider_url}/chat/completions", direct)
            for call in range(-CHAT_WARM_UP, CHAT_CALLS):  # warm-up rounds first
                body = {
                    "message": "Which of my saved roles fits me best?",
                    "conversation_id": conversations[call + CHAT_WARM_UP],
                }
                # Each goes first in turn.
                measured = {}
                for name in ("provider", "chat") if call % 2 else ("chat", "provider"):
                    if name == "provider":
                        measured[name], _, _ = first_token_ms(
                            client, f"{provider_url}/chat/completions", direct, {}, provider_token
                        )
                    else:
                        measured[name], last, timing = first_token_ms(
                            client,
                            f"http://127.0.0.1:{app_port}/functions/v1/ai/chat",
                            body,
                            user,
                            lambda line: line.startswith('data: {"text"'),
                        )
                        if not last.startswith('data: {"message_id"'):
                            raise RuntimeError(f"the chat did not end with done: {last}")
                        db = re.search(r"db;dur=([\d.]+)", timing)
                if call >= 0:
                    provider.append(measured["provider"])
                    ours.append(measured["chat"])
                    database.append(float(db.group(1)) if db else 0.0)
    finally:
        for child in children:
            child.terminate()
            child.join(10)
    overheads = [o - p for o, p in zip(ours, provider, strict=True)]
    overhead = statistics.median(overheads)
    print(
        f"# chat: {CHAT_CALLS} calls each, the provider's first byte after {CHAT_PROVIDER_DELAY_MS:.0f} ms,"
        f" {CHAT_PROVIDER_WORDS_PER_S:.0f} words a second after it (0: all at once);"
        f" the chat's time in Postgres before its first token, p50 {statistics.median(database):.2f} ms",
        flush=True,
    )
    return [
        ("chat_provider_ttft_p50_ms", f"{statistics.median(provider):.2f}"),
        ("chat_ttft_p50_ms", f"{statistics.median(ours):.2f}"),
        *target("chat_ttft_overhead_ms", overhead, overhead <= TARGET_CHAT_TTFT_OVERHEAD_MS),
        ("chat_ttft_overhead_p95_ms", f"{percentile(overheads, 0.95):.2f}"),
    ]


def wait_provider(client: httpx.Client, url: str, body: dict[str, object], timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            first_token_ms(client, url, body, {}, provider_token)
            return
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


MEASUREMENTS: list[Callable[[str], Lines]] = [search, chat]


def main() -> None:
    for measure in MEASUREMENTS:
        with seeded_cluster() as admin_dsn:
            for name, value in measure(admin_dsn):
                print(f"{name}={value}", flush=True)


if __name__ == "__main__":
    main()
