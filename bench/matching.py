"""Top-20 matching for a role: our one query inside Postgres against what a Flask backend would do.

Generates 100,000 executive profiles with 5-15 skills each (from the real taxonomy) and 1,000 open roles,
then times `private.match` (the query the `matching` function runs) for a sample of roles, and the naive
approach: fetch every open candidate with their skills, score them in a Python loop with the same rules,
sort. The naive side also checks ours: both must pick the same executives. Prints
`matching_p50_ms=<x>` and `matching_speedup_vs_naive=<y>`. Targets: p50 under 50 ms, speedup at least 20.
Sizes: BENCH_EXECUTIVES, BENCH_ROLES, BENCH_SAMPLES, BENCH_NAIVE_SAMPLES.
"""

from __future__ import annotations

import os
import random
import statistics
import sys
import time
from collections import defaultdict
from typing import Any

import psycopg
from _common import seeded_cluster
from psycopg.types.json import Jsonb

EXECUTIVES = int(os.environ.get("BENCH_EXECUTIVES", "100000"))
ROLES = int(os.environ.get("BENCH_ROLES", "1000"))
SAMPLES = int(os.environ.get("BENCH_SAMPLES", "50"))
NAIVE_SAMPLES = int(os.environ.get("BENCH_NAIVE_SAMPLES", "5"))
BATCH = 5000
SENIORITY = ["manager", "director", "vp", "c_level", "board"]
INDUSTRIES = [
    "fintech", "saas", "healthcare", "retail", "logistics", "energy", "media", "manufacturing",
    "insurance", "education", "gaming", "biotech", "telecom", "automotive", "real estate", "travel",
]  # fmt: skip
ENGAGEMENTS = ["fractional", "interim", "full_time", "advisory"]
CITIES = ["london", "berlin", "paris", "amsterdam", "madrid", "lisbon", "dublin", "stockholm"]


def progress(label: str, done: int, total: int) -> None:
    width = 30
    filled = width * done // total
    sys.stderr.write(f"\r{label:<24} [{'#' * filled}{'.' * (width - filled)}] {done:>7}/{total}")
    if done == total:
        sys.stderr.write("\n")
    sys.stderr.flush()


def generate(conn: psycopg.Connection, rng: random.Random) -> list[str]:
    """Executives and open roles written in batches; returns the role ids."""
    skill_ids = [row[0] for row in conn.execute("select id from public.skills order by id")]
    if len(skill_ids) < 50:
        sys.exit("bench/matching.py needs the skills taxonomy migration (50+ skills)")
    popular = skill_ids[: len(skill_ids) // 5]  # some skills are far more common than others

    def some_skills(low: int, high: int) -> list[int]:
        count = rng.randint(low, high)
        picked = set(rng.sample(popular, min(count // 2, len(popular))))
        while len(picked) < count:
            picked.add(rng.choice(skill_ids))
        return list(picked)

    for start in range(0, EXECUTIVES, BATCH):
        size = min(BATCH, EXECUTIVES - start)
        with conn.transaction():
            ids = [
                row[0]
                for row in conn.execute(
                    "insert into auth.users (id, email, raw_user_meta_data)"
                    " select gen_random_uuid(), 'bench-' || g || '@example.com', jsonb_build_object('full_name', 'Exec ' || g)"
                    " from generate_series(%s::int, %s::int) g returning id",
                    (start, start + size - 1),
                )
            ]
            with conn.cursor().copy(
                "copy public.executive_profiles (user_id, headline, seniority, industries, location,"
                " remote_preference, engagement_types, compensation_currency, compensation_min,"
                " compensation_max, compensation_unit, hours_per_week, available_from, is_open) from stdin"
            ) as copy:
                for user_id in ids:
                    low = rng.randrange(500, 2000, 50)
                    copy.write_row(
                        (
                            user_id,
                            "Executive",
                            rng.choice(SENIORITY),
                            rng.sample(INDUSTRIES, rng.randint(1, 4)),
                            rng.choice(CITIES),
                            rng.choice(["onsite", "hybrid", "remote"]),
                            rng.sample(ENGAGEMENTS, rng.randint(1, 3)),
                            "EUR",
                            low,
                            low + rng.randrange(0, 1000, 50),
                            "day",
                            rng.choice([10, 20, 30, 40]),
                            f"2027-0{rng.randint(1, 6)}-01",
                            rng.random() < 0.9,
                        )
                    )
            with conn.cursor().copy(
                "copy public.executive_skills (executive_id, skill_id, level) from stdin"
            ) as copy:
                for user_id in ids:
                    for skill_id in some_skills(5, 15):
                        copy.write_row((user_id, skill_id, rng.randint(1, 5)))
        progress("executives", start + size, EXECUTIVES)

    with conn.transaction():
        company = conn.execute(
            "insert into public.companies (name) values ('Bench Holdings') returning id"
        ).fetchone()[0]  # type: ignore[index]
        role_ids = []
        for index in range(ROLES):
            low = rng.randrange(600, 1800, 50)
            role_id = conn.execute(
                "insert into public.role_postings (company_id, title, engagement_type, seniority, industries,"
                " location, remote_policy, compensation_currency, compensation_min, compensation_max,"
                " compensation_unit, hours_per_week, start_date, status)"
                " values (%s, %s, %s, %s, %s, %s, %s, 'EUR', %s, %s, 'day', %s, %s, 'open') returning id",
                (
                    company,
                    f"Role {index}",
                    rng.choice(ENGAGEMENTS),
                    rng.choice(SENIORITY),
                    rng.sample(INDUSTRIES, rng.randint(1, 2)),
                    rng.choice(CITIES),
                    rng.choice(["onsite", "hybrid", "remote"]),
                    low,
                    low + 400,
                    rng.choice([20, 30, 40]),
                    f"2027-0{rng.randint(1, 6)}-15",
                ),
            ).fetchone()[0]  # type: ignore[index]
            role_ids.append(str(role_id))
            with conn.cursor().copy(
                "copy public.role_skills (role_id, skill_id, weight, required) from stdin"
            ) as copy:
                for skill_id in some_skills(4, 10):
                    copy.write_row((role_id, skill_id, rng.choice([1, 1, 2, 3]), rng.random() < 0.4))
            if (index + 1) % 100 == 0:
                progress("roles", index + 1, ROLES)
    # What autovacuum does after a bulk load: statistics, and no dead versions of the feature rows (each
    # executive's features are written with the profile, then again with the skills).
    conn.execute("vacuum analyze")
    return role_ids


def ours(conn: psycopg.Connection, role_id: str, weights: dict[str, float]) -> tuple[float, list[float]]:
    started = time.perf_counter()
    rows = conn.execute(
        "select score from private.match(%s, null, 20, %s)", (role_id, Jsonb(weights))
    ).fetchall()
    return (time.perf_counter() - started) * 1000, [float(row[0]) for row in rows]


def naive(conn: psycopg.Connection, role_id: str, weights: dict[str, float]) -> tuple[float, list[float]]:
    """What a Flask backend does: load the candidates, loop in Python, sort (no semantic signal here)."""
    started = time.perf_counter()
    role = conn.execute("select * from public.role_postings where id = %s", (role_id,)).fetchone()
    columns = [c.name for c in conn.execute("select * from public.role_postings limit 0").description or []]
    r = dict(zip(columns, role or (), strict=True))
    wanted = conn.execute(
        "select skill_id, weight * case when required then 2 else 1 end from public.role_skills where role_id = %s",
        (role_id,),
    ).fetchall()
    skills = conn.execute("select id, parent_id from public.skills").fetchall()
    parent = {sid: pid for sid, pid in skills}
    held_by: dict[Any, dict[int, int]] = defaultdict(dict)
    for executive_id, skill_id, level in conn.execute(
        "select executive_id, skill_id, level from public.executive_skills"
    ):
        held_by[executive_id][skill_id] = level
    cursor = conn.execute(
        "select user_id, seniority, industries, engagement_types, compensation_min, hours_per_week,"
        " available_from, location, remote_preference"
        " from public.executive_profiles where is_open"
    )
    total = sum(float(w) for _, w in wanted)
    scored = []
    for uid, seniority, industries, engagements, comp_min, hours, available, location, remote in cursor:
        held = held_by.get(uid, {})
        earned = 0.0
        for skill_id, weight in wanted:
            best = 0.0
            for held_id, level in held.items():
                if held_id == skill_id:
                    relation = 1.0
                elif parent.get(held_id) == skill_id:
                    relation = 0.75
                elif parent.get(skill_id) == held_id:
                    relation = 0.5
                else:
                    continue
                best = max(best, relation * (0.5 + level / 10))
            earned += float(weight) * best
        if earned == 0:
            continue  # shares no skill with the role: not a candidate, as in the query
        signals = {
            "skills": earned / total,
            "seniority": max(
                0.0, 1 - 0.5 * abs(SENIORITY.index(r["seniority"]) - SENIORITY.index(seniority))
            ),
            "industry": sum(i in industries for i in r["industries"]) / len(r["industries"]),
            "engagement": 1.0 if r["engagement_type"] in engagements else 0.0,
            "compensation": 1.0
            if comp_min <= r["compensation_max"]
            else max(0.0, 1 - float(comp_min - r["compensation_max"]) / float(r["compensation_max"])),
            "availability": (
                (
                    1.0
                    if available <= r["start_date"]
                    else max(0.0, 1 - (available - r["start_date"]).days / 90)
                )
                + min(1.0, hours / r["hours_per_week"])
            )
            / 2,
            "location": 1.0
            if r["remote_policy"] == "remote" or location == r["location"]
            else 0.25
            if r["remote_policy"] == "hybrid" and remote == "remote"
            else 0.0,
        }
        score = 100 * sum(weights[k] * v for k, v in signals.items()) / sum(weights[k] for k in signals)
        scored.append(round(score, 2))
    return (time.perf_counter() - started) * 1000, sorted(scored, reverse=True)[:20]


def main() -> None:
    from rpc.matching.settings import MatchingWeights

    weights = MatchingWeights().model_dump()
    rng = random.Random(20261123)
    with seeded_cluster() as admin_dsn, psycopg.connect(admin_dsn, autocommit=True) as conn:
        role_ids = generate(conn, rng)
        sample = rng.sample(role_ids, min(SAMPLES, len(role_ids)))
        ours(conn, sample[0], weights)  # warm-up
        timings = [ours(conn, role_id, weights)[0] for role_id in sample]
        naive_timings = []
        for role_id in sample[:NAIVE_SAMPLES]:
            naive_ms, naive_top = naive(conn, role_id, weights)
            _, our_top = ours(conn, role_id, weights)
            # The same top scores (executives may tie, so compare scores, not ids).
            if any(abs(a - b) > 0.02 for a, b in zip(our_top, naive_top, strict=True)):
                sys.exit(f"role {role_id}: the query and the Python loop disagree:\n{our_top}\n{naive_top}")
            naive_timings.append(naive_ms)
        p50 = statistics.median(timings)
        print(
            f"# {EXECUTIVES} executives, {ROLES} roles, {len(sample)} roles timed, {len(naive_timings)} naive"
        )
        print(f"matching_p95_ms={sorted(timings)[int(0.95 * (len(timings) - 1))]:.1f}")
        print(f"naive_p50_ms={statistics.median(naive_timings):.0f}")
        print(f"matching_p50_ms={p50:.1f}")
        print(f"matching_speedup_vs_naive={statistics.median(naive_timings) / p50:.1f}")


if __name__ == "__main__":
    main()
