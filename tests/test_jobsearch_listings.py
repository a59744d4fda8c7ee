"""Job listings: the public job board, its search, saved listings and saved searches.

Four parts:
- The RLS and grant matrices of `listings`, `saved_listings` and `saved_searches` (every action, plain and
  `insert ... returning`, under every actor), and what a visitor may read: the public columns of the open
  postings of verified companies, nothing of `role_postings`. One world per module, built in a transaction
  that is never committed; each test runs in a savepoint of it (the `db` fixture), acting through
  `tests.support` actors, as in test_matching.py.
- The board's upkeep: postings opening and closing, edits, skills, published compensation, companies
  verified, renamed, deleted and restored, and two races between transactions (committed data).
- `search_jobs`: relevance on a fixed set of listings, filters combined against a model of their meaning,
  pagination with the total, bad input. Every listing carries a word of its test's own, so that what other
  tests committed never matches.
- Through real PostgREST with supabase-py, as a frontend meets it: filters, sorting and pages with exact
  counts, the search, saving listings and searches, HTTP statuses and messages; and the SQL way and
  PostgREST agreeing on a sample of the matrices.
"""

from __future__ import annotations

import json
import random
import string
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, LiteralString

import httpx
import psycopg
import pytest
from postgrest.exceptions import APIError
from psycopg import sql
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from supabase import Client

from tests.conftest import Database
from tests.support import (
    Actor,
    Company,
    Outcome,
    Skill,
    User,
    actor,
    add_member,
    as_anon,
    as_user,
    make_company,
    make_role,
    make_user,
    rest_outcome,
    sql_outcome,
    value,
)
from tests.test_local_rest import ANON_KEY, anon_client, client_for, service_client

COMPANY_ROLES = ("owner", "admin", "recruiter", "interviewer")
SIGNED_IN = ("seeker", "other_seeker", *COMPANY_ROLES, "zeta_owner", "platform_admin")
EVERYONE = ("anon", *SIGNED_IN, "service")

REFUSED = "refused"  # an outcome: the statement failed for lack of privilege (42501)
INSUFFICIENT_PRIVILEGE = "42501"
CHECK_VIOLATION = "23514"
UNIQUE_VIOLATION = "23505"
INVALID_PARAMETER = "22023"
INVALID_TEXT = "22P02"
UNDEFINED_COLUMN = "42703"

# supabase-py passes its own deprecated options to its sub-clients on every call; nothing here to fix.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:supabase")


def tag() -> str:
    """A word of a test's own: lower-case letters ending in x, one lexeme that no stemmer changes."""
    return "".join(random.choices(string.ascii_lowercase, k=10)) + "x"


def taxonomy(conn: psycopg.Connection, *slugs: str) -> list[Skill]:
    """Skills of the seeded ontology. Tests write no skills: a new skill queues its embedding under a
    queueing lock, so one uncommitted (this module's world) would hold up every other."""
    rows = conn.execute(
        "select id, slug, name from public.skills where slug = any(%s) order by array_position(%s, slug)",
        (list(slugs), list(slugs)),
    ).fetchall()
    assert len(rows) == len(slugs), slugs
    return [Skill(*row) for row in rows]


def listing(conn: psycopg.Connection, role_id: str) -> dict[str, Any] | None:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute("select * from public.listings where role_posting_id = %s", (role_id,)).fetchone()


# The world of the RLS tests ---------------------------------------------------------------------------


@dataclass
class World:
    """Acme (verified; a member of each company role) and Zeta (not verified), two job seekers, a platform
    admin. Acme has two open postings, one publishing its pay and one not, a draft and a closed one; Zeta an
    open one. Each seeker saved one listing and one search."""

    users: dict[str, User]
    acme: Company
    zeta: Company
    finance: Skill
    ids: dict[str, Any] = field(default_factory=dict)

    def __getattr__(self, name: str) -> Any:
        try:
            return self.users[name]
        except KeyError:
            raise AttributeError(name) from None

    def names(self, rows: list[dict[str, Any]]) -> set[str]:
        """Rows of ids as the world's names: one name per row, `a/b` for a row of two ids."""
        by_id = {str(v): k for k, v in self.ids.items()}
        return {"/".join(by_id.get(str(v), str(v)) for v in row.values()) for row in rows}


def build_world(conn: psycopg.Connection) -> World:
    [finance] = taxonomy(conn, "fp-and-a")
    users = {
        "seeker": make_user(conn, roles=("job_seeker",)),
        "other_seeker": make_user(conn, roles=("job_seeker",)),
        "owner": make_user(conn, roles=("employer",)),
        "zeta_owner": make_user(conn, roles=("employer",)),
        "platform_admin": make_user(conn, roles=("admin",)),
    }
    acme = make_company(conn, users["owner"], name="Acme", verified=True)
    for role in ("admin", "recruiter", "interviewer"):
        users[role] = make_user(conn)
        add_member(conn, acme, users[role], role)
    zeta = make_company(conn, users["zeta_owner"], name="Zeta")
    pay = {"compensation_currency": "EUR", "compensation_unit": "day"}
    postings = {
        "acme_open": make_role(
            conn,
            acme,
            wants={finance: False},
            **pay,
            compensation_min=800,
            compensation_max=1200,
            compensation_published=True,
        ),
        "acme_quiet": make_role(
            conn, acme, title="Interim COO", **pay, compensation_min=900, compensation_max=1500
        ),
        "acme_draft": make_role(conn, acme, status="draft"),
        "acme_closed": make_role(conn, acme, status="closed"),
        "zeta_open": make_role(conn, zeta),
    }
    for who, role_id in (("seeker", "acme_open"), ("other_seeker", "acme_quiet")):
        conn.execute(
            "insert into public.saved_listings (user_id, role_posting_id) values (%s, %s)",
            (users[who].id, postings[role_id]),
        )
    searches = {
        f"{who}_search": value(
            conn,
            "insert into public.saved_searches (user_id, name, filters) values (%s, 'CFO roles', %s)"
            " returning id::text",
            (users[who].id, Jsonb({"query": "cfo", "engagement_types": ["fractional"]})),
        )
        for who in ("seeker", "other_seeker")
    }
    world = World(users, acme, zeta, finance)
    world.ids = {
        **{name: user.id for name, user in users.items()},
        "acme": acme.id,
        "zeta": zeta.id,
        **postings,
        **searches,
    }
    return world


@pytest.fixture(scope="module")
def world(module_conn: psycopg.Connection) -> World:
    """Built once per module, inside the uncommitted transaction."""
    return build_world(module_conn)


@pytest.fixture
def db(module_conn: psycopg.Connection, world: World) -> Iterator[psycopg.Connection]:
    """A savepoint on top of the world, rolled back after the test."""
    with module_conn.transaction(force_rollback=True):
        yield module_conn


def expect(default: Any, **outcomes: Any) -> dict[str, Any]:
    """The outcome for every actor: `default` unless named."""
    unknown = set(outcomes) - set(EVERYONE)
    assert not unknown, unknown
    return {who: outcomes.get(who, default) for who in EVERYONE}


def outcome(user: Actor, statement: LiteralString, params: Any = None) -> int | str:
    """Rows affected (or returned), or REFUSED when a grant or a policy's `with check` stops the statement.
    Any other error fails the test instead of passing for a refusal."""
    try:
        return user.count(statement, params)
    except psycopg.errors.InsufficientPrivilege:
        return REFUSED


# Reads ------------------------------------------------------------------------------------------------

# The board is the same for everyone: Acme's two open postings; not its draft or closed one, nothing of
# unverified Zeta.
BOARD = expect({"acme_open", "acme_quiet"})
# Saved listings and searches are their owner's: not the company's, not a platform admin's.
SAVED_LISTINGS = expect(
    set(),
    anon=REFUSED,
    seeker={"seeker/acme_open"},
    other_seeker={"other_seeker/acme_quiet"},
    service={"seeker/acme_open", "other_seeker/acme_quiet"},
)
SAVED_SEARCHES = expect(
    set(),
    anon=REFUSED,
    seeker={"seeker_search"},
    other_seeker={"other_seeker_search"},
    service={"seeker_search", "other_seeker_search"},
)

READS: list[tuple[str, LiteralString, dict[str, Any]]] = [
    (
        "listings",
        "select role_posting_id from public.listings where company_id in (%(acme)s, %(zeta)s)",
        BOARD,
    ),
    (
        "search_jobs",
        "select role_posting_id from public.search_jobs(page_size => 100)"
        " where company_id in (%(acme)s, %(zeta)s)",
        BOARD,
    ),
    (
        "saved_listings",
        "select user_id, role_posting_id from public.saved_listings"
        " where user_id in (%(seeker)s, %(other_seeker)s)",
        SAVED_LISTINGS,
    ),
    (
        "saved_searches",
        "select id from public.saved_searches where user_id in (%(seeker)s, %(other_seeker)s)",
        SAVED_SEARCHES,
    ),
]


@pytest.mark.parametrize(
    ("statement", "who", "expected"),
    [
        pytest.param(statement, who, view[who], id=f"{name}-{who}")
        for name, statement, view in READS
        for who in EVERYONE
    ],
)
def test_select_matrix(db, world, statement, who, expected):
    user = actor(db, world, who)
    if expected == REFUSED:
        user.refused(statement, world.ids, sqlstate=INSUFFICIENT_PRIVILEGE)
    else:
        assert world.names(user.rows(statement, world.ids)) == expected


# Writes -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Write:
    table: str
    action: str
    statement: LiteralString
    outcomes: dict[str, Any]


def inserts(table: str, statement: LiteralString, outcomes: dict[str, Any]) -> list[Write]:
    """The same insert twice: plain, and with `returning *` (which the select policy must let through too)."""
    return [
        Write(table, "insert", statement, outcomes),
        Write(table, "insert-returning", statement + " returning *", outcomes),
    ]


NOBODY = expect(REFUSED)  # not even the service role: only the triggers write the board
SEEKERS_OWN = expect(0, anon=REFUSED, seeker=1, service=1)
SEEKERS_INSERT = expect(REFUSED, seeker=1, service=1)

WRITES: list[Write] = [
    *inserts(
        "listings",
        "insert into public.listings (role_posting_id, company_id, company_name, title, description,"
        " engagement_type, industries, remote_policy, skill_ids, opened_at)"
        " values (%(acme_draft)s, %(acme)s, 'Acme', 'Forged', '', 'interim', '{}', 'remote', '{}', now())",
        NOBODY,
    ),
    Write(
        "listings",
        "update",
        "update public.listings set title = 'Forged' where company_id = %(acme)s",
        NOBODY,
    ),
    Write("listings", "delete", "delete from public.listings where company_id = %(acme)s", NOBODY),
    # Saving for someone else is refused by the policy; the seeker saves for themselves.
    *inserts(
        "saved_listings",
        "insert into public.saved_listings (user_id, role_posting_id) values (%(seeker)s, %(acme_quiet)s)",
        SEEKERS_INSERT,
    ),
    # Nothing to change in a saved listing: no update grant.
    Write(
        "saved_listings",
        "update",
        "update public.saved_listings set created_at = now() where user_id = %(seeker)s",
        expect(REFUSED, service=1),
    ),
    Write(
        "saved_listings",
        "delete",
        "delete from public.saved_listings where user_id = %(seeker)s",
        SEEKERS_OWN,
    ),
    *inserts(
        "saved_searches",
        "insert into public.saved_searches (user_id, name, filters)"
        " values (%(seeker)s, 'Interim roles', '{\"engagement_types\": [\"interim\"]}')",
        SEEKERS_INSERT,
    ),
    Write(
        "saved_searches",
        "update",
        "update public.saved_searches set name = 'Renamed' where user_id = %(seeker)s",
        SEEKERS_OWN,
    ),
    Write(
        "saved_searches",
        "delete",
        "delete from public.saved_searches where user_id = %(seeker)s",
        SEEKERS_OWN,
    ),
]


@pytest.mark.parametrize(
    ("write", "who"),
    [
        pytest.param(write, who, id=f"{write.table}-{write.action}-{who}")
        for write in WRITES
        for who in EVERYONE
    ],
)
def test_write_matrix(db, world, write, who):
    assert outcome(actor(db, world, who), write.statement, world.ids) == write.outcomes[who]


def test_the_matrices_cover_every_table_and_action():
    tables = {"listings", "saved_listings", "saved_searches"}
    assert {name for name, _, _ in READS} >= tables
    for action in ("insert", "insert-returning", "update", "delete"):
        assert {w.table for w in WRITES if w.action == action} == tables, action


@pytest.mark.parametrize("who", SIGNED_IN)
def test_every_signed_in_user_saves_listings_on_the_board_only(db, world, who):
    db.execute("delete from public.saved_listings where user_id = %s", (world.users[who].id,))
    user = actor(db, world, who)
    saved = user.one(
        "insert into public.saved_listings (role_posting_id) values (%s) returning user_id::text",
        (world.ids["acme_quiet"],),
    )
    assert saved["user_id"] == world.users[who].id
    # A draft, a closed posting, an unverified company's: their ids may be known, they are not on the board.
    for role_id in ("acme_draft", "acme_closed", "zeta_open"):
        user.refused(
            "insert into public.saved_listings (role_posting_id) values (%s)",
            (world.ids[role_id],),
            sqlstate=INSUFFICIENT_PRIVILEGE,
        )


@pytest.mark.parametrize(
    "statement",
    [
        pytest.param(
            "update public.saved_searches set user_id = %(other_seeker)s where user_id = %(seeker)s",
            id="give-a-search-away",
        ),
        pytest.param(
            "update public.saved_listings set user_id = %(other_seeker)s where user_id = %(seeker)s",
            id="give-a-listing-away",
        ),
        pytest.param(
            "insert into public.saved_searches (id, name) values (%(other_seeker_search)s, 'Taken')",
            id="choose-a-search-id",
        ),
        pytest.param(
            "insert into public.saved_listings (role_posting_id, created_at)"
            " values (%(acme_quiet)s, '2000-01-01')",
            id="backdate-a-saved-listing",
        ),
    ],
)
def test_owners_cannot_change_what_the_database_owns(db, world, statement):
    actor(db, world, "seeker").refused(statement, world.ids, sqlstate=INSUFFICIENT_PRIVILEGE)


# What a visitor reads ------------------------------------------------------------------------------------


def test_a_listing_shows_compensation_only_when_the_company_publishes_it(db, world):
    anon = as_anon(db)
    rows = anon.rows(
        "select role_posting_id::text as id, compensation_currency, compensation_min, compensation_max,"
        " compensation_unit from public.listings where company_id = %s",
        (world.acme.id,),
    )
    shown = {row.pop("id"): tuple(row.values()) for row in rows}
    assert shown[world.ids["acme_open"]] == ("EUR", 800, 1200, "day")
    assert shown[world.ids["acme_quiet"]] == (None, None, None, None)
    # The company changes its mind, both ways.
    owner = actor(db, world, "owner")
    owner.rows(
        "update public.role_postings set compensation_published = not compensation_published"
        " where id in (%(acme_open)s, %(acme_quiet)s)",
        world.ids,
    )
    assert listing(db, world.ids["acme_open"])["compensation_min"] is None  # type: ignore[index]
    assert listing(db, world.ids["acme_quiet"])["compensation_max"] == 1500  # type: ignore[index]


@pytest.mark.parametrize(
    ("statement", "sqlstate"),
    [
        # Role postings stay the companies' and signed-in users' (matching's rule): no column for visitors.
        pytest.param("select id from public.role_postings", INSUFFICIENT_PRIVILEGE, id="role_postings-id"),
        pytest.param(
            "select compensation_min from public.role_postings",
            INSUFFICIENT_PRIVILEGE,
            id="role_postings-pay",
        ),
        pytest.param("select role_id from public.role_skills", INSUFFICIENT_PRIVILEGE, id="role_skills"),
        # The listing has no column for what is not public.
        pytest.param("select created_by from public.listings", UNDEFINED_COLUMN, id="listings-created_by"),
        pytest.param(
            "select compensation_published from public.listings", UNDEFINED_COLUMN, id="listings-published"
        ),
        pytest.param("select status from public.listings", UNDEFINED_COLUMN, id="listings-status"),
    ],
)
def test_visitors_read_no_column_beyond_the_listing(db, statement, sqlstate):
    as_anon(db).refused(statement, sqlstate=sqlstate)


@pytest.mark.parametrize("who", ["anon", "seeker"])
def test_searches_under_rls_use_the_boards_indexes(db, world, who):
    # A policy's row condition runs before any operator that is not leakproof, such as `@@`, and would
    # keep these indexes from every search: the board's policy has none. With sequential scans priced out,
    # the plan shows whether the indexes may be used at all.
    db.execute("set local enable_seqscan = off")
    plan = actor(db, world, who).one(
        "explain (format json) select role_posting_id from public.listings"
        " where search_vector @@ websearch_to_tsquery('english', 'cfo') and skill_ids @> array[1::bigint]"
    )
    text = json.dumps(plan)
    assert "listings_search_idx" in text or "listings_skill_ids_idx" in text, text
    assert '"Seq Scan"' not in text, text


def test_members_still_read_their_postings_whole(db, world):
    # Publishing is the board's business: the company's own view of its posting keeps every column.
    row = actor(db, world, "recruiter").one(
        "select compensation_min, compensation_published from public.role_postings where id = %s",
        (world.ids["acme_quiet"],),
    )
    assert (row["compensation_min"], row["compensation_published"]) == (900, False)


# The board's upkeep -------------------------------------------------------------------------------------


def board(conn: psycopg.Connection, company: Company) -> set[str]:
    rows = conn.execute(
        "select role_posting_id::text from public.listings where company_id = %s", (company.id,)
    ).fetchall()
    return {row[0] for row in rows}


def test_postings_join_and_leave_the_board_with_their_status(db, world):
    recruiter = actor(db, world, "recruiter")
    draft, closed = world.ids["acme_draft"], world.ids["acme_closed"]
    recruiter.rows("update public.role_postings set status = 'open' where id in (%s, %s)", (draft, closed))
    assert {draft, closed} <= board(db, world.acme)
    recruiter.rows("update public.role_postings set status = 'closed' where id = %s", (draft,))
    assert draft not in board(db, world.acme)
    # Deleted (by an owner), a posting takes its listing and the saves of it along.
    actor(db, world, "owner").rows(
        "delete from public.role_postings where id = %s", (world.ids["acme_quiet"],)
    )
    assert board(db, world.acme) == {world.ids["acme_open"], closed}
    saves = "select count(*) from public.saved_listings where role_posting_id = %s"
    assert value(db, saves, (world.ids["acme_quiet"],)) == 0


def test_a_listing_follows_edits_of_its_posting(db, world):
    word = tag()
    actor(db, world, "recruiter").rows(
        "update public.role_postings set title = %s, description = %s, seniority = 'vp',"
        " industries = '{SaaS}',"
        " location = 'Lisbon', remote_policy = 'hybrid', hours_per_week = 20 where id = %s",
        (f"Head of {word}", f"Grow the {word} team", world.ids["acme_open"]),
    )
    row = listing(db, world.ids["acme_open"])
    assert row is not None
    assert (row["title"], row["seniority"], row["industries"], row["location"], row["remote_policy"]) == (
        f"Head of {word}",
        "vp",
        ["saas"],
        "Lisbon",
        "hybrid",
    )
    assert row["hours_per_week"] == 20
    found = as_anon(db).rows("select role_posting_id::text from public.search_jobs(query => %s)", (word,))
    assert [r["role_posting_id"] for r in found] == [world.ids["acme_open"]]


def test_a_listing_is_not_rewritten_when_only_the_embedding_changes(db, world):
    before = value(
        db, "select xmin::text from public.listings where role_posting_id = %s", (world.ids["acme_open"],)
    )
    db.execute(
        "update public.role_postings"
        " set description_embedding = array_fill(0.5::real, array[1536])::extensions.vector"
        " where id = %s",
        (world.ids["acme_open"],),
    )
    after = value(
        db, "select xmin::text from public.listings where role_posting_id = %s", (world.ids["acme_open"],)
    )
    assert after == before


def test_a_listing_carries_its_postings_skills(db, world):
    [python] = taxonomy(db, "python")
    recruiter = actor(db, world, "recruiter")
    role_id = world.ids["acme_open"]
    recruiter.rows("insert into public.role_skills (role_id, skill_id) values (%s, %s)", (role_id, python.id))
    assert listing(db, role_id)["skill_ids"] == sorted([world.finance.id, python.id])  # type: ignore[index]
    recruiter.rows(
        "delete from public.role_skills where role_id = %s and skill_id = %s", (role_id, world.finance.id)
    )
    assert listing(db, role_id)["skill_ids"] == [python.id]  # type: ignore[index]
    # post_role replaces a posting's skills in one call.
    recruiter.rows(
        "select public.post_role(%s)", (Jsonb({"id": role_id, "skills": [{"name": world.finance.slug}]}),)
    )
    assert listing(db, role_id)["skill_ids"] == [world.finance.id]  # type: ignore[index]


def test_the_board_follows_the_companys_verification_deletion_and_name(db, world):
    admin, owner = actor(db, world, "platform_admin"), actor(db, world, "owner")
    listed = {world.ids["acme_open"], world.ids["acme_quiet"]}
    admin.rows("select public.set_company_verified(%s, false)", (world.acme.id,))
    assert board(db, world.acme) == set()
    admin.rows("select public.set_company_verified(%s, true)", (world.acme.id,))
    assert board(db, world.acme) == listed
    owner.rows("select public.delete_company(%s)", (world.acme.id,))
    assert board(db, world.acme) == set()
    admin.rows("select public.restore_company(%s)", (world.acme.id,))
    assert board(db, world.acme) == listed
    owner.rows("update public.companies set name = 'Acme Holdings' where id = %s", (world.acme.id,))
    names = db.execute(
        "select distinct company_name from public.listings where company_id = %s", (world.acme.id,)
    )
    assert names.fetchall() == [("Acme Holdings",)]
    admin.rows("select public.set_company_verified(%s, true)", (world.zeta.id,))
    assert board(db, world.zeta) == {world.ids["zeta_open"]}


@pytest.fixture
def fresh_company(committed: psycopg.Connection) -> Iterator[Company]:
    """A committed, unverified company of its own, removed afterwards (with its postings and listings)."""
    company = make_company(committed, make_user(committed))
    yield company
    committed.execute("delete from public.companies where id = %s", (company.id,))


def run_blocked(
    database: Database, statement: LiteralString, params: Any
) -> tuple[threading.Thread, list[Any]]:
    """Runs `statement` (autocommit) in a thread on a connection of its own; returns the thread and a list
    that receives the backend's pid first, then the error if it fails."""
    seen: list[Any] = []

    def work() -> None:
        with psycopg.connect(database.superuser, autocommit=True) as conn:
            seen.append(conn.info.backend_pid)
            try:
                conn.execute(statement, params)
            except psycopg.Error as exc:
                seen.append(exc)

    thread = threading.Thread(target=work)
    thread.start()
    return thread, seen


def wait_until_waiting(conn: psycopg.Connection, seen: list[Any], thread: threading.Thread) -> None:
    """Until the thread's statement waits for a lock (or ends: then the test's final check decides)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and thread.is_alive():
        if seen and value(
            conn, "select wait_event_type = 'Lock' from pg_stat_activity where pid = %s", (seen[0],)
        ):
            return
        time.sleep(0.02)


def test_a_posting_opened_while_its_company_is_verified_is_listed(database, committed, fresh_company):
    # The posting is opened first (uncommitted) while the company is not verified; the verification,
    # committed after it, must see the posting: it waits for the posting's transaction.
    role_id = make_role(committed, fresh_company, status="draft")
    with psycopg.connect(database.superuser) as opener:
        opener.execute("update public.role_postings set status = 'open' where id = %s", (role_id,))
        thread, seen = run_blocked(
            database, "update public.companies set verified_at = now() where id = %s", (fresh_company.id,)
        )
        wait_until_waiting(committed, seen, thread)
        opener.commit()
    thread.join(10)
    assert len(seen) == 1, seen[1:]
    assert listing(committed, role_id) is not None


def test_a_skill_added_while_its_posting_is_edited_is_listed_with_the_edit(
    database, committed, fresh_company
):
    [skill] = taxonomy(committed, "kotlin")
    committed.execute("update public.companies set verified_at = now() where id = %s", (fresh_company.id,))
    role_id = make_role(committed, fresh_company, title="Head of Platform")
    with psycopg.connect(database.superuser) as editor:
        editor.execute("update public.role_postings set title = 'Head of Mobile' where id = %s", (role_id,))
        thread, seen = run_blocked(
            database,
            "insert into public.role_skills (role_id, skill_id) values (%s, %s)",
            (role_id, skill.id),
        )
        wait_until_waiting(committed, seen, thread)
        editor.commit()
    thread.join(10)
    assert len(seen) == 1, seen[1:]
    row = listing(committed, role_id)
    assert row is not None
    assert (row["title"], row["skill_ids"]) == ("Head of Mobile", [skill.id])


# search_jobs ----------------------------------------------------------------------------------------------


def search_call(names: Iterable[str]) -> sql.Composed:
    """`select * from public.search_jobs(a => %(a)s, ...)` for these arguments."""
    arguments = sql.SQL(", ").join(
        sql.SQL("{} => {}").format(sql.Identifier(n), sql.Placeholder(n)) for n in names
    )
    return sql.SQL("select * from public.search_jobs({})").format(arguments)


def search(user: Actor, **arguments: Any) -> list[dict[str, Any]]:
    return user.rows(search_call(arguments), arguments)  # type: ignore[arg-type]


@pytest.fixture
def verified(db: psycopg.Connection, world: World) -> Company:
    return make_company(db, world.owner, verified=True)


def test_search_ranks_title_matches_over_description_and_repeated_words_over_single(db, verified):
    word = tag()
    ids = {
        "title": make_role(db, verified, title=f"Head of {word}", description="Leads the team."),
        "thrice": make_role(
            db, verified, title="Operations lead", description=f"{word} first, {word} always, {word}."
        ),
        "once": make_role(
            db, verified, title="Finance lead", description=f"Some {word} work among much else."
        ),
        "neither": make_role(db, verified, title="Unrelated", description="Nothing to see."),
    }
    names = {v: k for k, v in ids.items()}
    rows = search(as_anon(db), query=word)
    assert [names[str(r["role_posting_id"])] for r in rows] == ["title", "thrice", "once"]
    assert rows[0]["rank"] > rows[1]["rank"] > rows[2]["rank"] > 0
    assert {r["total_count"] for r in rows} == {3}


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        # Words are all required; a phrase in quotes keeps its order; `or` and `-` as people type them.
        pytest.param("{w} budget", {"budget"}, id="and"),
        pytest.param('"{w} platform"', {"platform"}, id="phrase"),
        pytest.param("platform {w}", {"platform", "reversed"}, id="words-any-order"),
        pytest.param("{w} budget or {w} people", {"budget", "managing"}, id="or"),
        pytest.param("{w} -budget", {"platform", "reversed", "managing"}, id="not"),
        # English stems: "managed" finds "managing".
        pytest.param("{w} managed", {"managing"}, id="stemmed"),
        # Stop words alone search for nothing: every listing, newest first.
        pytest.param("the of and", None, id="stop-words"),
    ],
)
def test_search_reads_queries_as_people_type_them(db, verified, query, expected):
    word = tag()
    ids = {
        "budget": make_role(db, verified, description=f"{word} owns the budget"),
        "platform": make_role(db, verified, description=f"builds the {word} platform"),
        "reversed": make_role(db, verified, description=f"a platform for {word}"),
        "managing": make_role(db, verified, description=f"{word} managing people"),
    }
    names = {v: k for k, v in ids.items()}
    rows = search(as_anon(db), query=query.format(w=word), page_size=100)
    found = {names[str(r["role_posting_id"])] for r in rows if str(r["role_posting_id"]) in names}
    if expected is None:
        assert found == set(ids)
        assert {r["rank"] for r in rows} == {0}
    else:
        assert found == expected
        assert len(rows) == len(expected)


@dataclass(frozen=True)
class Posting:
    name: str
    engagement_type: str
    seniority: str | None
    remote_policy: str
    location: str | None
    industries: tuple[str, ...]
    skills: tuple[str, ...]  # of the test's skills: "a", "b", "c"


POSTINGS = [
    Posting("p1", "fractional", "vp", "remote", "London, UK", ("fintech",), ("a", "b")),
    Posting("p2", "fractional", "c_level", "hybrid", "Berlin", ("fintech", "saas"), ("a",)),
    Posting("p3", "interim", "vp", "onsite", "London, UK", ("retail",), ("b", "c")),
    Posting("p4", "interim", "director", "remote", "Room 101", ("saas",), ()),
    Posting("p5", "full_time", "c_level", "remote", "New London", ("energy",), ("a", "b", "c")),
    Posting("p6", "advisory", None, "hybrid", "Paris 100%_off", (), ("c",)),
    Posting("p7", "full_time", "board", "onsite", "Berlin", ("fintech",), ("a", "c")),
]


def matches(posting: Posting, filters: dict[str, Any]) -> bool:
    """What the filters mean, said independently of the SQL: all filters hold; any value of each list
    matches, except skills, which must all be asked for; the place is a part of the location, any case."""
    checks = {
        "engagement_types": lambda v: posting.engagement_type in v,
        "seniorities": lambda v: posting.seniority in v,
        "remote_policies": lambda v: posting.remote_policy in v,
        "located_in": lambda v: (
            posting.location is not None and v.strip().lower() in posting.location.lower()
        ),
        "in_industries": lambda v: bool({i.strip().lower() for i in v} & set(posting.industries)),
        "with_skills": lambda v: set(v) <= set(posting.skills),
    }
    return all(checks[name](wanted) for name, wanted in filters.items())


FILTERS = [
    {"engagement_types": ["fractional"]},
    {"engagement_types": ["fractional", "interim"], "remote_policies": ["remote"]},
    {"seniorities": ["vp", "c_level"], "remote_policies": ["remote", "hybrid"]},
    {"located_in": "london"},
    {"located_in": " LONDON, uk "},
    {"located_in": "100%_"},
    {"located_in": "0%"},
    {"located_in": "1_1"},  # a letter, not a wildcard: nothing
    {"in_industries": ["FinTech "]},
    {"in_industries": ["saas", "energy"], "seniorities": ["director", "c_level"]},
    {"with_skills": ["a", "b"]},
    {"with_skills": ["c"], "engagement_types": ["full_time", "advisory"], "located_in": "o"},
    {
        "engagement_types": ["full_time"],
        "seniorities": ["board"],
        "in_industries": ["fintech"],
        "with_skills": ["a"],
    },
    {"engagement_types": ["advisory"], "seniorities": ["vp"]},
]


@pytest.mark.parametrize("filters", FILTERS, ids=lambda f: "+".join(f))
def test_filters_combine(db, verified, filters):
    word = tag()
    skills = dict(zip("abc", taxonomy(db, "budgeting", "treasury", "valuation"), strict=True))
    ids = {
        make_role(
            db,
            verified,
            description=f"{word} role",
            engagement_type=p.engagement_type,
            seniority=p.seniority,
            remote_policy=p.remote_policy,
            location=p.location,
            industries=list(p.industries),
            wants={skills[s]: False for s in p.skills},
        ): p.name
        for p in POSTINGS
    }
    arguments = {
        name: [skills[s].id for s in wanted] if name == "with_skills" else wanted
        for name, wanted in filters.items()
    }
    rows = search(as_anon(db), query=word, **arguments)
    expected = {p.name for p in POSTINGS if matches(p, filters)}
    assert {ids[str(r["role_posting_id"])] for r in rows} == expected
    assert all(r["total_count"] == len(expected) for r in rows)


def test_the_filter_cases_keep_some_listings_and_leave_others():
    # A filter that keeps everything proves nothing; of those that keep nothing, two are enough.
    sizes = [sum(matches(p, f) for p in POSTINGS) for f in FILTERS]
    assert max(sizes) < len(POSTINGS)
    assert sizes.count(0) == 2


def test_search_pages_through_every_match_once_with_the_total(db, verified):
    word = tag()
    for index in range(25):
        # Three levels of relevance, so that pages cut through ties of rank too.
        make_role(db, verified, title=f"Role {index}", description=" ".join([word] * (1 + index % 3)))
    anon = as_anon(db)
    whole = search(anon, query=word, page_size=100)
    pages = [search(anon, query=word, page_size=10, page_offset=offset) for offset in (0, 10, 20, 30)]
    assert [len(page) for page in pages] == [10, 10, 5, 0]
    assert [r["role_posting_id"] for page in pages for r in page] == [r["role_posting_id"] for r in whole]
    assert {r["total_count"] for page in pages for r in page} == {25}
    assert [r["rank"] for r in whole] == sorted((r["rank"] for r in whole), reverse=True)


def test_newest_first_on_request_or_without_a_query(db, verified):
    word = tag()
    older = make_role(db, verified, title=f"{word} lead", description=f"{word} {word}")
    newer = make_role(db, verified, title="Lead", description=word)
    db.execute("update public.role_postings set opened_at = now() - interval '1 day' where id = %s", (older,))
    anon = as_anon(db)
    assert [str(r["role_posting_id"]) for r in search(anon, query=word)] == [older, newer]
    assert [str(r["role_posting_id"]) for r in search(anon, query=word, sort="newest")] == [newer, older]
    browse = search(anon, page_size=100)
    assert [str(r["role_posting_id"]) for r in browse if str(r["role_posting_id"]) in (older, newer)] == [
        newer,
        older,
    ]


@pytest.mark.parametrize(
    ("arguments", "sqlstate", "message"),
    [
        pytest.param({"page_size": 0}, INVALID_PARAMETER, "page_size: 1 to 100 listings", id="page-size-0"),
        pytest.param(
            {"page_size": 101}, INVALID_PARAMETER, "page_size: 1 to 100 listings", id="page-size-101"
        ),
        pytest.param(
            {"page_size": None}, INVALID_PARAMETER, "page_size: 1 to 100 listings", id="page-size-null"
        ),
        pytest.param(
            {"page_offset": -1}, INVALID_PARAMETER, "page_offset: 0 to 10,000", id="offset-negative"
        ),
        pytest.param({"page_offset": 10001}, INVALID_PARAMETER, "page_offset: 0 to 10,000", id="offset-deep"),
        pytest.param({"sort": "popular"}, INVALID_PARAMETER, "sort: relevance or newest", id="sort"),
        pytest.param(
            {"query": "x" * 501}, INVALID_PARAMETER, "query: at most 500 characters", id="query-long"
        ),
        pytest.param(
            {"located_in": "x" * 201},
            INVALID_PARAMETER,
            "located_in: at most 200 characters",
            id="place-long",
        ),
        pytest.param(
            {"in_industries": [f"i{n}" for n in range(21)]},
            INVALID_PARAMETER,
            "in_industries and with_skills: at most 20 each",
            id="industries-many",
        ),
        pytest.param(
            {"with_skills": [-1, None]},
            INVALID_PARAMETER,
            "with_skills: no such skills: -1, null",
            id="skills",
        ),
    ],
)
def test_search_refuses_bad_input_in_its_own_words(db, arguments, sqlstate, message):
    error = as_anon(db).refused(
        search_call(arguments),  # type: ignore[arg-type]
        arguments,
        sqlstate=sqlstate,
    )
    assert error.diag.message_primary == message


def test_search_refuses_an_unknown_enum_value(db):
    as_anon(db).refused(
        "select * from public.search_jobs(seniorities => array['wizard']::public.seniority[])",
        sqlstate=INVALID_TEXT,
    )


# Saved searches: what `filters` may hold ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "filters", "message"),
    [
        pytest.param(" ", {}, "name: 1 to 100 characters", id="blank-name"),
        pytest.param("x" * 101, {}, "name: 1 to 100 characters", id="long-name"),
        pytest.param("S", ["cfo"], "filters: an object of search_jobs arguments", id="not-an-object"),
        pytest.param("S", {"query": "cfo", "salary": 1}, "filters: unknown names: salary", id="unknown-name"),
        pytest.param(
            "S", {"query": 5, "with_skills": ["a"]}, "filters: wrong type for query, with_skills", id="types"
        ),
        pytest.param("S", {"seniorities": "vp"}, "filters: wrong type for seniorities", id="not-a-list"),
        pytest.param("S", {"with_skills": [1.5]}, "filters: wrong type for with_skills", id="fraction"),
        pytest.param("S", {"sort": "popular"}, "filters.sort: relevance or newest", id="sort"),
        pytest.param(
            "S",
            {"seniorities": ["wizard"]},
            "filters: engagement_types are among {fractional,interim,full_time,advisory}, seniorities among"
            " {manager,director,vp,c_level,board}, remote_policies among {onsite,hybrid,remote}",
            id="enum",
        ),
        pytest.param("S", {"query": "x" * 5000}, "filters: at most 4 KB", id="too-big"),
    ],
)
def test_saved_searches_refuse_what_search_jobs_would_not_take(db, world, name, filters, message):
    error = actor(db, world, "seeker").refused(
        "insert into public.saved_searches (name, filters) values (%s, %s)",
        (name, Jsonb(filters)),
        sqlstate=CHECK_VIOLATION,
    )
    assert error.diag.message_primary == message


def test_a_saved_search_runs_as_saved(db, world):
    seeker = actor(db, world, "seeker")
    filters = {
        "query": "cfo",
        "engagement_types": ["fractional"],
        "remote_policies": ["remote"],
        "located_in": None,
        "with_skills": [world.finance.id],
        "sort": "newest",
    }
    saved = seeker.one(
        "insert into public.saved_searches (name, filters) values (' Remote CFO ', %s)"
        " returning name, filters",
        (Jsonb(filters),),
    )
    assert saved == {"name": "Remote CFO", "filters": filters}
    rows = seeker.rows(
        "select s.role_posting_id::text from public.saved_searches f, jsonb_to_record(f.filters) as a ("
        " query text, engagement_types public.engagement_type[], remote_policies public.work_mode[],"
        " located_in text, with_skills bigint[], sort text),"
        " public.search_jobs(query => a.query, engagement_types => a.engagement_types,"
        " remote_policies => a.remote_policies, located_in => a.located_in, with_skills => a.with_skills,"
        " sort => a.sort) s where f.name = 'Remote CFO' and s.company_id = %s",
        (world.acme.id,),
    )
    assert [r["role_posting_id"] for r in rows] == [world.ids["acme_open"]]
    seeker.refused(
        "insert into public.saved_searches (name) values ('Remote CFO')", sqlstate=UNIQUE_VIOLATION
    )


# Through PostgREST ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Committed:
    """Committed data for PostgREST: a verified company with listings carrying the word `word`, a draft,
    and two signed-in users, one of whom saved a listing and a search."""

    word: str
    company: Company
    seeker: User
    other: User
    platform_admin: User
    listings: list[str]  # newest first
    draft: str
    search: str

    def client(self, api_url: str, who: str) -> Client:
        if who == "anon":
            return anon_client(api_url)
        if who == "service":
            return service_client(api_url)
        return client_for(api_url, getattr(self, who))


@pytest.fixture
def live(committed: psycopg.Connection) -> Iterator[Committed]:
    word = tag()
    owner = make_user(committed, roles=("employer",))
    company = make_company(committed, owner, name=f"Board {word}", verified=True)
    listings = []
    for index in range(12):
        role_id = make_role(
            committed,
            company,
            title=f"{('Fractional', 'Interim', 'Board')[index % 3]} CFO {index}",
            description=f"{word} finance role number {index}",
            engagement_type=("fractional", "interim", "advisory")[index % 3],
            remote_policy=("remote", "hybrid")[index % 2],
            location="London, UK" if index % 4 == 0 else "Berlin",
        )
        committed.execute(
            "update public.role_postings set opened_at = now() - make_interval(hours => %s) where id = %s",
            (index, role_id),
        )
        listings.append(role_id)
    draft = make_role(committed, company, status="draft", description=word)
    seeker, other = make_user(committed, roles=("job_seeker",)), make_user(committed, roles=("job_seeker",))
    committed.execute(
        "insert into public.saved_listings (user_id, role_posting_id) values (%s, %s)",
        (seeker.id, listings[0]),
    )
    search_id = value(
        committed,
        "insert into public.saved_searches (user_id, name, filters) values (%s, 'Remote', %s)"
        " returning id::text",
        (seeker.id, Jsonb({"query": word, "remote_policies": ["remote"]})),
    )
    yield Committed(
        word, company, seeker, other, make_user(committed, roles=("admin",)), listings, draft, search_id
    )
    committed.execute("delete from public.companies where id = %s", (company.id,))


def test_visitors_page_through_filtered_listings_with_exact_counts(api_url, live):
    def page(start: int, end: int) -> Any:
        return (
            anon_client(api_url)
            .table("listings")
            .select("role_posting_id, title, location", count="exact")
            .eq("company_id", live.company.id)
            .in_("engagement_type", ["fractional", "interim"])
            .eq("remote_policy", "remote")
            .order("opened_at", desc=True)
            .order("role_posting_id")
            .range(start, end)
            .execute()
        )

    # Posting i is fractional, interim or advisory by i % 3 and remote when even; newest first is by i.
    expected = [live.listings[i] for i in range(12) if i % 3 in (0, 1) and i % 2 == 0]
    first, second = page(0, 1), page(2, 9)
    assert (first.count, second.count) == (len(expected), len(expected))
    assert [r["role_posting_id"] for r in first.data + second.data] == expected
    london = (
        anon_client(api_url)
        .table("listings")
        .select("role_posting_id", count="exact")
        .eq("company_id", live.company.id)
        .ilike("location", "%london%")
        .filter("search_vector", "wfts(english)", f"{live.word} finance")
        .execute()
    )
    assert london.count == 3
    assert {r["role_posting_id"] for r in london.data} == {live.listings[i] for i in (0, 4, 8)}


def test_visitors_search_through_the_rpc(api_url, live):
    rows = (
        anon_client(api_url)
        .rpc(
            "search_jobs",
            {
                "query": f"{live.word} interim",
                "remote_policies": ["hybrid"],
                "page_size": 2,
                "page_offset": 1,
            },
        )
        .execute()
        .data
    )
    # Interim postings are indexes 1, 4, 7, 10; hybrid ones are odd: 1 and 7, newest first (equal ranks).
    assert [r["role_posting_id"] for r in rows] == [live.listings[7]]
    assert rows[0]["total_count"] == 2
    assert rows[0]["company_name"] == live.company.name


def test_bad_search_input_is_a_400_in_our_words(api_url, live):
    response = httpx.post(
        f"{api_url}/rest/v1/rpc/search_jobs",
        json={"query": live.word, "page_size": 500},
        headers={"apikey": ANON_KEY, "Authorization": f"Bearer {ANON_KEY}"},
    )
    assert response.status_code == 400
    assert (response.json()["code"], response.json()["message"]) == (
        INVALID_PARAMETER,
        "page_size: 1 to 100 listings",
    )


def test_visitors_get_no_hidden_column_and_no_posting(api_url, live):
    anon = anon_client(api_url)
    with pytest.raises(APIError) as hidden:
        anon.table("listings").select("created_by").execute()
    assert hidden.value.code == UNDEFINED_COLUMN
    with pytest.raises(APIError) as posting:
        anon.table("role_postings").select("id, compensation_min").eq("id", live.listings[0]).execute()
    assert posting.value.code == INSUFFICIENT_PRIVILEGE
    with pytest.raises(APIError) as saving:
        anon.table("saved_listings").insert({"role_posting_id": live.listings[1]}).execute()
    assert saving.value.code == INSUFFICIENT_PRIVILEGE


def test_a_seeker_saves_listings_and_searches_through_postgrest(api_url, live, committed):
    seeker = client_for(api_url, live.seeker)
    saved = seeker.table("saved_listings").insert({"role_posting_id": live.listings[1]}).execute().data
    assert [(r["user_id"], r["role_posting_id"]) for r in saved] == [(live.seeker.id, live.listings[1])]
    with pytest.raises(APIError) as twice:
        seeker.table("saved_listings").insert({"role_posting_id": live.listings[1]}).execute()
    assert twice.value.code == UNIQUE_VIOLATION
    with pytest.raises(APIError) as draft:
        seeker.table("saved_listings").insert({"role_posting_id": live.draft}).execute()
    assert draft.value.code == INSUFFICIENT_PRIVILEGE
    mine = seeker.table("saved_listings").select("role_posting_id").order("created_at").execute().data
    assert [r["role_posting_id"] for r in mine] == [live.listings[0], live.listings[1]]

    search = seeker.table("saved_searches").select("filters").eq("id", live.search).single().execute().data
    rows = seeker.rpc("search_jobs", search["filters"]).execute().data
    assert [r["role_posting_id"] for r in rows] == [live.listings[i] for i in range(0, 12, 2)]
    with pytest.raises(APIError) as bad:
        seeker.table("saved_searches").insert({"name": "Odd", "filters": {"salary": 1}}).execute()
    assert (bad.value.code, bad.value.message) == (CHECK_VIOLATION, "filters: unknown names: salary")

    # With their listings, in one request; a posting that left the board leaves its save without one.
    committed.execute("update public.role_postings set status = 'closed' where id = %s", (live.listings[0],))
    embedded = seeker.table("saved_listings").select("listing(title)").order("created_at").execute().data
    assert [r["listing"] for r in embedded] == [None, {"title": "Interim CFO 1"}]


AGREEMENT: list[Any] = [
    pytest.param(
        "anon",
        "select role_posting_id::text, title from public.listings where company_id = %(company)s",
        lambda c, w: c.table("listings").select("role_posting_id, title").eq("company_id", w.company.id),
        id="anon-listings",
    ),
    pytest.param(
        "other",
        "select role_posting_id::text, rank, total_count"
        " from public.search_jobs(query => %(word)s, page_size => 3)",
        lambda c, w: c.rpc("search_jobs", {"query": w.word, "page_size": 3}).select(
            "role_posting_id, rank, total_count"
        ),
        id="signed-in-search",
    ),
    pytest.param(
        "seeker",
        "select role_posting_id::text from public.saved_listings",
        lambda c, w: c.table("saved_listings").select("role_posting_id"),
        id="owner-saved_listings",
    ),
    pytest.param(
        "other",
        "select role_posting_id::text from public.saved_listings where user_id = %(seeker)s",
        lambda c, w: c.table("saved_listings").select("role_posting_id").eq("user_id", w.seeker.id),
        id="other-saved_listings",
    ),
    pytest.param(
        "platform_admin",
        "select id::text from public.saved_searches where id = %(search)s",
        lambda c, w: c.table("saved_searches").select("id").eq("id", w.search),
        id="platform_admin-saved_searches",
    ),
    pytest.param(
        "anon",
        "select id::text from public.saved_searches",
        lambda c, w: c.table("saved_searches").select("id"),
        id="anon-saved_searches",
    ),
    pytest.param(
        "other",
        "insert into public.saved_listings (user_id, role_posting_id) values (%(seeker)s, %(listing)s)",
        lambda c, w: c.table("saved_listings").insert(
            {"user_id": w.seeker.id, "role_posting_id": w.listings[2]}, returning="minimal"
        ),
        id="other-saves-for-seeker",
    ),
]


def agreement_sql(conn: psycopg.Connection, live: Committed, who: str, statement: LiteralString) -> Outcome:
    user = as_anon(conn) if who == "anon" else as_user(conn, getattr(live, who))
    params = {
        "company": live.company.id,
        "word": live.word,
        "seeker": live.seeker.id,
        "search": live.search,
        "listing": live.listings[2],
    }
    return sql_outcome(conn, user, statement, params)


@pytest.mark.parametrize(("who", "statement", "request_"), AGREEMENT)
def test_the_sql_way_and_postgrest_agree(api_url, live, conn, who, statement, request_):
    expected = agreement_sql(conn, live, who, statement)
    assert rest_outcome(request_(live.client(api_url, who), live)) == expected


def test_the_agreement_cases_cover_rows_empty_answers_and_refusals(live, conn):
    found = [agreement_sql(conn, live, case.values[0], case.values[1]) for case in AGREEMENT]
    assert any(kind == "rows" and rows for kind, rows in found)
    assert ("rows", []) in found
    assert ("refused", INSUFFICIENT_PRIVILEGE) in found
