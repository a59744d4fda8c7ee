"""Matching a role through score bounds (20261123110000_matching_bounds) gives the full scan's list.

`private.match` scores exactly only the executives whose bound (feature vectors kept by triggers) can
reach the list; `private.score_pairs(role, null, null, ...)` scores every candidate. On a few hundred
random executives, more than one probe holds, the two must agree row for row (order, scores and
breakdowns) whatever the weights, the list's length, the role's shape and the embeddings; and the
features the triggers keep must always equal features computed from scratch.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg.types.json import Jsonb

from rpc.matching.settings import MatchingWeights
from tests.support import (
    Skill,
    as_anon,
    as_service,
    as_user,
    make_company,
    make_executive,
    make_role,
    make_skill,
    make_user,
)

EXECUTIVES = 450  # more than twice the first probe (200), so that the later passes and the fallback run
SENIORITY = ["manager", "director", "vp", "c_level", "board", None]
INDUSTRIES = ["fintech", "saas", "healthcare", "retail", "energy", "media"]
CITIES = ["london", "berlin", "paris", "lisbon", None]
MODES = ["onsite", "hybrid", "remote", None]
ENGAGEMENTS = ["fractional", "interim", "full_time", "advisory"]
DEFAULT = MatchingWeights().model_dump()


@pytest.fixture(scope="module")
def roles(module_conn: psycopg.Connection) -> list[str]:
    """Executives with random profiles and 3-12 skills of the real taxonomy; 24 roles of every shape."""
    conn, rng = module_conn, random.Random(20261123)
    skills = [row[0] for row in conn.execute("select id from public.skills order by id")]
    popular = skills[::10]  # the ones many executives share, so that lists are contested
    tag = uuid.uuid4().hex[:8]
    ids = [
        row[0]
        for row in conn.execute(
            "insert into auth.users (id, email) select gen_random_uuid(), 'bounds-' || g || %s"
            " from generate_series(1, %s) g returning id",
            (f"-{tag}@example.com", EXECUTIVES),
        )
    ]
    with conn.cursor().copy(
        "copy public.executive_profiles (user_id, seniority, industries, location, remote_preference,"
        " engagement_types, compensation_currency, compensation_min, compensation_max, compensation_unit,"
        " hours_per_week, available_from, is_open) from stdin"
    ) as copy:
        for user_id in ids:
            low = rng.choice([None, rng.randrange(500, 2000, 50)])
            copy.write_row(
                (
                    user_id,
                    rng.choice(SENIORITY),
                    rng.sample(INDUSTRIES, rng.randint(0, 3)),
                    rng.choice(CITIES),
                    rng.choice(MODES),
                    rng.sample(ENGAGEMENTS, rng.randint(0, 3)),
                    None if low is None else rng.choice(["EUR", "GBP"]),
                    low,
                    None if low is None else low + 500,
                    None if low is None else "day",
                    rng.choice([None, 10, 20, 40]),
                    rng.choice([None, "2027-01-01", "2027-04-01"]),
                    rng.random() < 0.9,
                )
            )
    with conn.cursor().copy(
        "copy public.executive_skills (executive_id, skill_id, level) from stdin"
    ) as copy:
        for user_id in ids:
            held = set(rng.sample(popular, 2)) | set(rng.sample(skills, rng.randint(1, 10)))
            for skill_id in held:
                copy.write_row((user_id, skill_id, rng.randint(1, 5)))
    company = make_company(conn, make_user(conn))
    made = []
    for index in range(24):
        wants = {} if index == 0 else {Skill(s, "", ""): rng.random() < 0.4 for s in rng.sample(popular, 2)}
        wants |= {Skill(s, "", ""): rng.random() < 0.4 for s in rng.sample(skills, rng.randint(0, 6))}
        made.append(
            make_role(
                conn,
                company,
                wants={} if index == 0 else wants,  # one role asks for no skill at all
                engagement_type=rng.choice(ENGAGEMENTS),
                seniority=rng.choice(SENIORITY),
                industries=rng.sample(INDUSTRIES, rng.randint(0, 2)),
                location=rng.choice(CITIES),
                remote_policy=rng.choice(["onsite", "hybrid", "remote"]),
                compensation_currency="EUR" if index % 3 else None,
                compensation_min=600 if index % 3 else None,
                compensation_max=rng.randrange(800, 2000, 100) if index % 3 else None,
                compensation_unit="day" if index % 3 else None,
                hours_per_week=rng.choice([None, 20, 40]),
                start_date=rng.choice([None, "2027-02-15"]),
            )
        )
    return made


@pytest.fixture
def conn(module_conn: psycopg.Connection, roles: list[str]) -> Iterator[psycopg.Connection]:
    with module_conn.transaction(force_rollback=True):
        yield module_conn


def both_ways(conn: psycopg.Connection, role: str, limit: int, weights: dict[str, float]) -> tuple[Any, Any]:
    bounded = conn.execute("select * from private.match(%s, null, %s, %s)", (role, limit, Jsonb(weights)))
    full = conn.execute(
        "select * from private.score_pairs(%s, null, null, %s, %s)", (role, limit, Jsonb(weights))
    )
    return bounded.fetchall(), full.fetchall()


WEIGHTS = {
    "default": DEFAULT,
    # Compensation and availability count only at their most in a bound: heavy, the bounds are loose and
    # the first probe is rarely enough.
    "loose bounds": {**DEFAULT, "compensation": 60, "availability": 60, "skills": 10},
    "skills only": {key: (1.0 if key == "skills" else 0.0) for key in DEFAULT},
    "no skills weight": {**DEFAULT, "skills": 0},
    "location heavy": {**DEFAULT, "location": 50, "industry": 30},
}


@pytest.mark.parametrize("weights", WEIGHTS.values(), ids=WEIGHTS.keys())
@pytest.mark.parametrize("limit", [1, 20, 100])
def test_the_bounded_match_is_the_full_scans_list(conn, roles, weights, limit):
    for role in roles:
        bounded, full = both_ways(conn, role, limit, weights)
        assert bounded == full, role


def test_some_lists_are_full_and_contested(conn, roles):
    # Not a vacuous comparison: the lists are long and their scores close.
    lengths = [len(both_ways(conn, role, 20, DEFAULT)[1]) for role in roles]
    assert sum(length == 20 for length in lengths) >= 20


def test_a_role_few_executives_can_match_scores_all_who_can(conn):
    # A rare skill: the best bounds belong to executives who do not hold it, so the probe finds fewer
    # candidates than asked for and every executive with a bound is scored.
    rare = make_skill(conn, "rare")
    holders = {make_executive(conn, skills={rare: level}).id for level in (1, 3, 5)}
    role = make_role(conn, make_company(conn, make_user(conn)), wants={rare: True})
    bounded, full = both_ways(conn, role, 20, {**DEFAULT, "skills": 1})
    assert bounded == full
    assert {str(row[1]) for row in full} == holders


def unit_vector(values: list[float]) -> str:
    norm = sum(v * v for v in values) ** 0.5
    return "[" + ",".join(f"{v / norm:.6f}" for v in values) + "]"


def test_semantic_similarity_is_bounded_too(conn, roles):
    # With embeddings an executive's score has one more signal, and its weight in the denominator. Bios
    # lean more or less towards one theme the roles share, so similarities spread from 0 to 1.
    rng = random.Random(7)
    theme = [rng.gauss(0, 1) for _ in range(1536)]
    some = [row[0] for row in conn.execute("select user_id from public.executive_profiles limit 300")]
    for user_id in some:
        lean = rng.uniform(0, 3)
        bio = unit_vector([lean * t + rng.gauss(0, 1) for t in theme])
        conn.execute(
            "update public.executive_profiles set bio_embedding = %s::extensions.vector where user_id = %s",
            (bio, user_id),
        )
    for role in roles[:8]:
        conn.execute(
            "update public.role_postings set description_embedding = %s::extensions.vector where id = %s",
            (unit_vector(theme), role),
        )
        for weights in (DEFAULT, {**DEFAULT, "semantic": 80}):
            bounded, full = both_ways(conn, role, 20, weights)
            assert bounded == full, role
            assert any(row[3]["semantic"] is not None for row in full)


# The features the triggers keep ------------------------------------------------------------------------


def features(conn: psycopg.Connection) -> dict[Any, str]:
    rows = conn.execute("select executive_id::text, features::text from private.executive_features")
    return dict(rows.fetchall())


def assert_features_current(conn: psycopg.Connection) -> dict[Any, str]:
    kept = features(conn)
    with conn.transaction(force_rollback=True):
        conn.execute("delete from private.executive_features")
        conn.execute(
            "select private.refresh_executive_features(array(select user_id from public.executive_profiles))"
        )
        assert features(conn) == kept
    return kept


def test_features_follow_every_change(conn):
    umbrella = make_skill(conn, "finance")
    child = make_skill(conn, "fpa", parent=umbrella)
    other = make_skill(conn, "sales")
    alice = make_executive(conn, skills={child: 3}, seniority="vp", industries=["saas"], location="London")
    bob = make_executive(conn, skills={umbrella: 5, other: 2})
    assert {alice.id, bob.id} <= assert_features_current(conn).keys()
    changes = [
        ("update public.executive_skills set level = 5 where executive_id = %s", alice.id),
        ("delete from public.executive_skills where executive_id = %s and skill_id = %s", bob.id, other.id),
        ("insert into public.executive_skills (executive_id, skill_id, level) values (%s, %s, 1)", alice.id, other.id),
        ("update public.executive_profiles set seniority = 'board', industries = '{retail}' where user_id = %s", alice.id),
        ("update public.executive_profiles set location = null, remote_preference = 'remote' where user_id = %s", alice.id),
        ("update public.executive_profiles set engagement_types = '{interim,advisory}' where user_id = %s", bob.id),
        # The ontology changes what a held skill earns: a new parent, a new specialisation, a removal.
        ("update public.skills set parent_id = %s where id = %s", other.id, child.id),
        ("update public.skills set parent_id = null where id = %s", child.id),
        ("insert into public.skills (slug, name, category, parent_id) values (%s, 'New', 'finance', %s)",
         f"new-{uuid.uuid4().hex[:8]}", umbrella.id),
        ("delete from public.skills where id = %s", other.id),
    ]  # fmt: skip
    for statement, *params in changes:
        before = features(conn)
        conn.execute(statement, params)
        after = assert_features_current(conn)
        assert after != before, statement  # each change does change someone's features


def test_what_features_are_not_made_of_leaves_them_alone(conn):
    # The worker writes embeddings in bulk; a headline is not a signal: neither rewrites a feature row.
    skill = make_skill(conn, "audit")
    user = make_executive(conn, skills={skill: 2})
    version = "select ctid::text from private.executive_features where executive_id = %s"  # moves on update
    before = conn.execute(version, (user.id,)).fetchone()
    conn.execute(
        "update public.executive_profiles set headline = 'CFO', bio_embedding = %s::extensions.vector"
        " where user_id = %s",
        (unit_vector([1.0] * 1536), user.id),
    )
    assert conn.execute(version, (user.id,)).fetchone() == before
    conn.execute("update public.executive_profiles set seniority = 'vp' where user_id = %s", (user.id,))
    assert conn.execute(version, (user.id,)).fetchone() != before


def test_only_open_executives_have_features(conn):
    skill = make_skill(conn, "treasury")
    closed = make_executive(conn, skills={skill: 3}, is_open=False)
    assert closed.id not in features(conn)
    conn.execute("update public.executive_profiles set is_open = true where user_id = %s", (closed.id,))
    assert closed.id in assert_features_current(conn)
    conn.execute("update public.executive_profiles set is_open = false where user_id = %s", (closed.id,))
    assert closed.id not in assert_features_current(conn)
    conn.execute("update public.executive_profiles set is_open = true where user_id = %s", (closed.id,))
    conn.execute("delete from auth.users where id = %s", (closed.id,))
    assert closed.id not in assert_features_current(conn)


@pytest.mark.parametrize("who", ["anon", "user", "service"])
def test_the_features_and_the_bound_functions_are_not_for_the_api(conn, roles, who):
    actor = {"anon": as_anon, "service": as_service}.get(who)
    caller = actor(conn) if actor else as_user(conn, make_user(conn))
    for statement in (
        "select * from private.executive_features",
        "select private.refresh_executive_features('{}')",
        "select * from private.score_pairs(null, null, null, 1, '{}')",
        "select * from private.role_bounds('{}/2097152', 0, 1, null)",
    ):
        caller.refused(statement, sqlstate="42501")
