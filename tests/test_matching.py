"""Executive matching, tested as an attacker would and as an employer would.

Two parts:
- the RLS matrix of the skills ontology, executives, role postings, matches, introductions and feedback
  (every table, action and actor), then the rules behind it: who sees an executive and their contact
  details, the role status machine, `post_role`, introductions (consent, one open request, daily limit,
  expiry) and feedback. One world is built per module in a transaction that is never committed; each test
  runs in a savepoint on top of it, rolled back afterwards, and acts through `tests.support` actors. As in
  test_identity.py, a refusal is an error (42501: a missing grant, a failed `with check`) or, for a row
  that a `using` clause hides, simply 0 rows.
- the `matching` functions on hand-built cases where the right order is obvious, their refusals and bad
  input. They need committed data (the app has its own connections), so every test builds its own skills
  with unique slugs: candidates are found through skills, so nothing another test committed joins in.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, LiteralString

import psycopg
import pytest
from psycopg.types.json import Jsonb

from rpc.local.tokens import api_key
from rpc.matching.settings import get_matching_settings
from tests.support import (
    SECRET,
    Actor,
    Company,
    Skill,
    User,
    actor,
    add_contacts,
    add_introduction,
    add_match,
    add_member,
    as_anon,
    as_service,
    as_user,
    bearer,
    make_company,
    make_executive,
    make_role,
    make_skill,
    make_user,
    token_for,
    value,
)

COMPANY_ROLES = ("owner", "admin", "recruiter", "interviewer")
MANAGERS = ("owner", "admin", "recruiter")  # who may post roles and request introductions
SIGNED_IN = (
    "executive",  # owns the profile under test
    "other_executive",
    "stranger",  # signed in, no platform role, member of nothing
    *COMPANY_ROLES,  # Acme's members
    "zeta_owner",  # a member of another company
    "platform_admin",
)
EVERYONE = ("anon", *SIGNED_IN, "service")

REFUSED = "refused"  # an outcome: the statement failed for lack of privilege (42501)
INSUFFICIENT_PRIVILEGE = "42501"
CHECK_VIOLATION = "23514"
UNIQUE_VIOLATION = "23505"
NOT_NULL_VIOLATION = "23502"
INVALID_PARAMETER = "22023"
INVALID_TEXT = "22P02"


def set_config(conn: psycopg.Connection, key: str, setting: Any) -> None:
    conn.execute("update private.config set value = %s where key = %s", (Jsonb(setting), key))


# The world of the RLS tests ---------------------------------------------------------------------------


@dataclass
class World:
    """Acme (four members, one per company role; verified by a platform admin) and Zeta (its owner; not
    verified: anyone who signs up can make one), three executives, a stranger and a platform admin. Acme has an open, a draft and a closed role, Zeta an open and a draft one. The executive
    is matched to Acme's open and draft roles and was asked for an introduction by Acme's recruiter; the
    other executive is matched to Zeta's draft and was asked by Zeta; the closed executive (is_open = false)
    is matched to nothing. The executive and Acme's owner have each left feedback."""

    users: dict[str, User]
    acme: Company
    zeta: Company
    finance: Skill  # an umbrella skill
    fpa: Skill  # its specialisation
    ids: dict[str, Any] = field(default_factory=dict)  # every named object's id, for statements' parameters

    def __getattr__(self, name: str) -> Any:
        try:
            return self.users[name]
        except KeyError:
            raise AttributeError(name) from None

    def names(self, rows: list[dict[str, Any]]) -> set[str]:
        """Rows of ids as the world's names: one name per row, `a/b` for a row of two ids."""
        by_id = {str(v): k for k, v in self.ids.items()}
        return {"/".join(by_id.get(str(v), str(v)) for v in row.values()) for row in rows}


@pytest.fixture(scope="module")
def world(module_conn: psycopg.Connection) -> World:
    """Built once per module (it costs more than most tests), inside the uncommitted transaction."""
    return build_world(module_conn)


@pytest.fixture
def conn(module_conn: psycopg.Connection, world: World) -> Iterator[psycopg.Connection]:
    """This module's `conn`: a savepoint on top of the world, rolled back after the test, so that every
    test starts from the same world without building it again."""
    with module_conn.transaction(force_rollback=True):
        yield module_conn


def build_world(conn: psycopg.Connection) -> World:
    finance = make_skill(conn, "finance", aliases=("money",))
    fpa = make_skill(conn, "fpa", parent=finance)
    users = {
        "executive": make_executive(conn, skills={finance: 4}),
        "other_executive": make_executive(conn, skills={finance: 3}),
        "closed_executive": make_executive(conn, skills={finance: 5}, is_open=False),
        "stranger": make_user(conn),
        "owner": make_user(conn, roles=("employer",)),
        "zeta_owner": make_user(conn, roles=("employer",)),
        "platform_admin": make_user(conn, roles=("admin",)),
    }
    for name in ("executive", "other_executive", "closed_executive"):
        add_contacts(conn, users[name])
    acme = make_company(conn, users["owner"], name="Acme", verified=True)
    for role in ("admin", "recruiter", "interviewer"):
        users[role] = make_user(conn)
        add_member(conn, acme, users[role], role)
    zeta = make_company(conn, users["zeta_owner"], name="Zeta")
    roles = {
        "acme_open": make_role(conn, acme, wants={finance: True}),
        "acme_draft": make_role(conn, acme, wants={finance: True}, status="draft"),
        "acme_closed": make_role(conn, acme, wants={finance: True}, status="closed"),
        "zeta_open": make_role(conn, zeta, wants={finance: True}),
        "zeta_draft": make_role(conn, zeta, wants={finance: True}, status="draft"),
    }
    add_match(conn, roles["acme_open"], users["executive"])
    add_match(conn, roles["acme_draft"], users["executive"])
    add_match(conn, roles["zeta_draft"], users["other_executive"])
    introductions = {
        "acme_intro": add_introduction(conn, roles["acme_open"], users["executive"], users["recruiter"]),
        "zeta_intro": add_introduction(
            conn, roles["zeta_open"], users["other_executive"], users["zeta_owner"]
        ),
    }
    feedback = {
        f"{who}_feedback": value(
            conn,
            "insert into public.feedback (user_id, subject, rating) values (%s, 'product', 4)"
            " returning id::text",
            (users[who].id,),
        )
        for who in ("executive", "owner")
    }
    world = World(users, acme, zeta, finance, fpa)
    world.ids = {
        **{name: user.id for name, user in users.items()},
        "acme": acme.id,
        "zeta": zeta.id,
        "finance": finance.id,
        "fpa": fpa.id,
        **roles,
        **introductions,
        **feedback,
    }
    return world


def outcome(user: Actor, statement: LiteralString, params: Any = None) -> int | str:
    """Rows affected (or returned), or REFUSED when a grant or a policy's `with check` stops the statement.
    Any other error (a constraint, a typo) fails the test instead of passing for a refusal."""
    try:
        return user.count(statement, params)
    except psycopg.errors.InsufficientPrivilege:
        return REFUSED


def expect(default: Any, **outcomes: Any) -> dict[str, Any]:
    """The outcome for every actor: `default` unless named."""
    unknown = set(outcomes) - set(EVERYONE)
    assert not unknown, unknown
    return {who: outcomes.get(who, default) for who in EVERYONE}


# Reads: what each actor sees ----------------------------------------------------------------------------

ALL_EXECUTIVES = {"executive", "other_executive", "closed_executive"}
# Executives are seen by themselves, admins, and verified companies that matched or were introduced to them:
# Zeta matched and asked for the other executive, but nobody verified Zeta.
PROFILE_VIEW = expect(
    set(),
    anon=REFUSED,
    executive={"executive"},
    other_executive={"other_executive"},
    owner={"executive"},
    admin={"executive"},
    recruiter={"executive"},
    interviewer={"executive"},
    platform_admin=ALL_EXECUTIVES,
    service=ALL_EXECUTIVES,
)
# No introduction in the world is accepted yet, so contact details are each executive's own.
CONTACT_VIEW = expect(
    set(),
    anon=REFUSED,
    executive={"executive"},
    other_executive={"other_executive"},
    platform_admin=ALL_EXECUTIVES,
    service=ALL_EXECUTIVES,
)
ALL_ROLES = {"acme_open", "acme_draft", "acme_closed", "zeta_open", "zeta_draft"}
ACME_VIEW = {"acme_open", "acme_draft", "acme_closed", "zeta_open"}
# Open roles for every signed-in user; drafts and closed roles inside their company.
ROLE_VIEW = expect(
    {"acme_open", "zeta_open"},
    anon=REFUSED,
    **dict.fromkeys(COMPANY_ROLES, ACME_VIEW),
    zeta_owner={"acme_open", "zeta_open", "zeta_draft"},
    platform_admin=ALL_ROLES,
    service=ALL_ROLES,
)
ALL_MATCHES = {"acme_open/executive", "acme_draft/executive", "zeta_draft/other_executive"}
# A verified company sees its roles' matches (drafts too); an executive theirs on roles they may see (open
# ones). Zeta is not verified: its stored match shows it nothing.
MATCH_VIEW = expect(
    set(),
    anon=REFUSED,
    executive={"acme_open/executive"},
    **{who: {"acme_open/executive", "acme_draft/executive"} for who in COMPANY_ROLES},
    platform_admin=ALL_MATCHES,
    service=ALL_MATCHES,
)
INTRODUCTION_VIEW = expect(
    set(),
    anon=REFUSED,
    executive={"acme_intro"},
    other_executive={"zeta_intro"},
    **{who: {"acme_intro"} for who in COMPANY_ROLES},
    zeta_owner={"zeta_intro"},
    platform_admin={"acme_intro", "zeta_intro"},
    service={"acme_intro", "zeta_intro"},
)
FEEDBACK_VIEW = expect(
    set(),
    anon=REFUSED,
    executive={"executive_feedback"},
    owner={"owner_feedback"},
    platform_admin={"executive_feedback", "owner_feedback"},
    service={"executive_feedback", "owner_feedback"},
)

READS: list[tuple[str, LiteralString, dict[str, Any]]] = [
    (
        "skills",
        "select id::text from public.skills where id in (%(finance)s, %(fpa)s)",
        expect({"finance", "fpa"}),
    ),
    (
        "skill_aliases",
        "select skill_id::text from public.skill_aliases where skill_id = %(finance)s",
        expect({"finance"}),
    ),
    (
        "executive_profiles",
        "select user_id::text from public.executive_profiles where user_id = any(%(executives)s)",
        PROFILE_VIEW,
    ),
    (
        "executive_contacts",
        "select user_id::text from public.executive_contacts where user_id = any(%(executives)s)",
        CONTACT_VIEW,
    ),
    (
        "executive_skills",
        "select executive_id::text from public.executive_skills where executive_id = any(%(executives)s)",
        PROFILE_VIEW,
    ),
    (
        "role_postings",
        "select id::text from public.role_postings where company_id in (%(acme)s, %(zeta)s)",
        ROLE_VIEW,
    ),
    (
        "role_skills",
        "select rs.role_id::text from public.role_skills rs where rs.skill_id = %(finance)s",
        ROLE_VIEW,
    ),
    (
        "matches",
        "select role_id::text, executive_id::text from public.matches"
        " where executive_id = any(%(executives)s)",
        MATCH_VIEW,
    ),
    (
        "introductions",
        "select id::text from public.introductions where company_id in (%(acme)s, %(zeta)s)",
        INTRODUCTION_VIEW,
    ),
    (
        "feedback",
        "select id::text from public.feedback where id in (%(executive_feedback)s, %(owner_feedback)s)",
        FEEDBACK_VIEW,
    ),
]


@pytest.mark.parametrize(
    ("statement", "who", "expected"),
    [
        pytest.param(statement, who, view[who], id=f"{table}-{who}")
        for table, statement, view in READS
        for who in EVERYONE
    ],
)
def test_select_matrix(conn, world, statement, who, expected):
    user = actor(conn, world, who)
    executives = [world.users[name].id for name in sorted(ALL_EXECUTIVES)]
    params = {**world.ids, "executives": executives}
    if expected == REFUSED:
        user.refused(statement, params, sqlstate=INSUFFICIENT_PRIVILEGE)
    else:
        assert world.names(user.rows(statement, params)) == expected


# Writes: insert (plain and returning), update, delete ---------------------------------------------------


@dataclass(frozen=True)
class Write:
    table: str
    action: str
    statement: LiteralString
    outcomes: dict[str, Any]
    setup: LiteralString | None = None  # run as the superuser first, so that only the rules stand in the way


def inserts(
    table: str, statement: LiteralString, outcomes: dict[str, Any], setup: LiteralString | None = None
):
    """The same insert twice: plain, and with `returning *` (which the select policy must let through too)."""
    return [
        Write(table, "insert", statement, outcomes, setup),
        Write(table, "insert-returning", statement + " returning *", outcomes, setup),
    ]


ADMINS_ONLY = expect(0, anon=REFUSED, platform_admin=1, service=1)
ADMINS_INSERT = expect(REFUSED, platform_admin=1, service=1)
EXECUTIVE_ONLY = expect(0, anon=REFUSED, executive=1, service=1)
EXECUTIVE_INSERTS = expect(REFUSED, executive=1, service=1)
MANAGERS_ONLY = expect(0, anon=REFUSED, **dict.fromkeys(MANAGERS, 1), service=1)
MANAGERS_INSERT = expect(REFUSED, **dict.fromkeys(MANAGERS, 1), service=1)
SERVICE_ONLY = expect(REFUSED, service=1)  # no grant to the API roles at all

WRITES: list[Write] = [
    *inserts(
        "skills",
        "insert into public.skills (slug, name, category)"
        " values ('brand-new-skill-7c1e', 'Brand new', 'data')",
        ADMINS_INSERT,
    ),
    Write("skills", "update", "update public.skills set name = 'Renamed' where id = %(fpa)s", ADMINS_ONLY),
    Write("skills", "delete", "delete from public.skills where id = %(fpa)s", ADMINS_ONLY),
    *inserts(
        "skill_aliases",
        "insert into public.skill_aliases (alias, skill_id) values ('brand new alias', %(fpa)s)",
        ADMINS_INSERT,
    ),
    Write(
        "skill_aliases",
        "update",
        "update public.skill_aliases set alias = 'renamed alias' where skill_id = %(finance)s",
        ADMINS_ONLY,
    ),
    Write(
        "skill_aliases",
        "delete",
        "delete from public.skill_aliases where skill_id = %(finance)s",
        ADMINS_ONLY,
    ),
    *inserts(
        "executive_profiles",
        "insert into public.executive_profiles (user_id, headline) values (%(executive)s, 'Back again')",
        EXECUTIVE_INSERTS,
        setup="delete from public.executive_profiles where user_id = %(executive)s",
    ),
    Write(
        "executive_profiles",
        "update",
        "update public.executive_profiles set headline = 'Hacked' where user_id = %(executive)s",
        EXECUTIVE_ONLY,
    ),
    Write(
        "executive_profiles",
        "delete",
        "delete from public.executive_profiles where user_id = %(executive)s",
        EXECUTIVE_ONLY,
    ),
    *inserts(
        "executive_contacts",
        "insert into public.executive_contacts (user_id, email) values (%(executive)s, 'me@example.com')",
        EXECUTIVE_INSERTS,
        setup="delete from public.executive_contacts where user_id = %(executive)s",
    ),
    Write(
        "executive_contacts",
        "update",
        "update public.executive_contacts set email = 'evil@example.com' where user_id = %(executive)s",
        EXECUTIVE_ONLY,
    ),
    Write(
        "executive_contacts",
        "delete",
        "delete from public.executive_contacts where user_id = %(executive)s",
        EXECUTIVE_ONLY,
    ),
    *inserts(
        "executive_skills",
        "insert into public.executive_skills (executive_id, skill_id, level)"
        " values (%(executive)s, %(fpa)s, 5)",
        EXECUTIVE_INSERTS,
    ),
    Write(
        "executive_skills",
        "update",
        "update public.executive_skills set level = 1 where executive_id = %(executive)s",
        EXECUTIVE_ONLY,
    ),
    Write(
        "executive_skills",
        "delete",
        "delete from public.executive_skills where executive_id = %(executive)s",
        EXECUTIVE_ONLY,
    ),
    *inserts(
        "role_postings",
        "insert into public.role_postings (company_id, title, engagement_type)"
        " values (%(acme)s, 'Interim COO', 'interim')",
        MANAGERS_INSERT,
    ),
    Write(
        "role_postings",
        "update",
        "update public.role_postings set title = 'Renamed role' where id = %(acme_draft)s",
        MANAGERS_ONLY,
    ),
    # Deleting a role (one without introductions) takes its matches with it: owners and admins only.
    Write(
        "role_postings",
        "delete",
        "delete from public.role_postings where id = %(acme_draft)s",
        expect(0, anon=REFUSED, owner=1, admin=1, service=1),
    ),
    *inserts(
        "role_skills",
        "insert into public.role_skills (role_id, skill_id, required) values (%(acme_draft)s, %(fpa)s, true)",
        MANAGERS_INSERT,
    ),
    Write(
        "role_skills",
        "update",
        "update public.role_skills set weight = 3 where role_id = %(acme_draft)s",
        MANAGERS_ONLY,
    ),
    Write(
        "role_skills",
        "delete",
        "delete from public.role_skills where role_id = %(acme_draft)s",
        MANAGERS_ONLY,
    ),
    # Matches are the matching function's output: nobody writes them through the API.
    *inserts(
        "matches",
        "insert into public.matches (role_id, executive_id, score, breakdown)"
        " values (%(zeta_open)s, %(executive)s, 100, '{}')",
        SERVICE_ONLY,
    ),
    Write(
        "matches",
        "update",
        "update public.matches set score = 100"
        " where role_id = %(acme_open)s and executive_id = %(executive)s",
        SERVICE_ONLY,
    ),
    Write(
        "matches",
        "delete",
        "delete from public.matches where role_id = %(acme_open)s and executive_id = %(executive)s",
        SERVICE_ONLY,
    ),
    # The world's request is declined first, so that the one-open-request rule does not answer instead.
    *inserts(
        "introductions",
        "insert into public.introductions (role_id, executive_id, message)"
        " values (%(acme_open)s, %(executive)s, 'Hi')",
        MANAGERS_INSERT,
        setup="update public.introductions set status = 'declined' where id = %(acme_intro)s",
    ),
    # Only the executive changes a status, and only through respond_to_introduction: no update grant at all.
    Write(
        "introductions",
        "update",
        "update public.introductions set status = 'accepted' where id = %(acme_intro)s",
        SERVICE_ONLY,
    ),
    Write(
        "introductions",
        "update-message",
        "update public.introductions set message = 'Changed' where id = %(acme_intro)s",
        SERVICE_ONLY,
    ),
    Write(
        "introductions", "delete", "delete from public.introductions where id = %(acme_intro)s", SERVICE_ONLY
    ),
    # Feedback is left as oneself (the service has no user: see test_feedback_the_service_writes_for_a_user).
    *inserts(
        "feedback",
        "insert into public.feedback (subject, rating, comment) values ('product', 5, 'Great')",
        expect(1, anon=REFUSED, service=None),
    ),
    Write(
        "feedback",
        "update",
        "update public.feedback set rating = 1 where id = %(owner_feedback)s",
        SERVICE_ONLY,
    ),
    Write("feedback", "delete", "delete from public.feedback where id = %(owner_feedback)s", SERVICE_ONLY),
]


@pytest.mark.parametrize(
    ("write", "who"),
    [
        pytest.param(write, who, id=f"{write.table}-{write.action}-{who}")
        for write in WRITES
        for who in EVERYONE
        if write.outcomes[who] is not None
    ],
)
def test_write_matrix(conn, world, write, who):
    if write.setup:
        conn.execute(write.setup, world.ids)
    assert outcome(actor(conn, world, who), write.statement, world.ids) == write.outcomes[who]


# The API's functions: who may call them, and with what outcome (1 row, or refused) -----------------------

CALLS: list[tuple[str, LiteralString, dict[str, Any]]] = [
    ("resolve_skills", "select * from public.resolve_skills(array[%(fpa_slug)s])", expect(1)),
    (
        "post_role",
        "select * from public.post_role(%(draft_role)s)",
        # The service role may call it too, as on a hosted project, whose default privileges grant it.
        expect(REFUSED, **dict.fromkeys(MANAGERS, 1), service=1),
    ),
    (
        "respond_to_introduction",
        "select * from public.respond_to_introduction(%(acme_intro)s, true)",
        expect(REFUSED, executive=1),
    ),
]


@pytest.mark.parametrize(
    ("statement", "who", "expected"),
    [
        pytest.param(statement, who, calls[who], id=f"{name}-{who}")
        for name, statement, calls in CALLS
        for who in EVERYONE
    ],
)
def test_function_matrix(conn, world, statement, who, expected):
    draft_role = {"company_id": world.acme.id, "title": "Interim COO", "engagement_type": "interim"}
    params = {**world.ids, "fpa_slug": world.fpa.slug, "draft_role": Jsonb(draft_role)}
    assert outcome(actor(conn, world, who), statement, params) == expected


def test_the_matrices_cover_every_table_action_and_function():
    tables = {
        "skills",
        "skill_aliases",
        "executive_profiles",
        "executive_contacts",
        "executive_skills",
        "role_postings",
        "role_skills",
        "matches",
        "introductions",
        "feedback",
    }
    assert {table for table, _, _ in READS} == tables
    for action in ("insert", "insert-returning", "update", "delete"):
        assert {w.table for w in WRITES if w.action == action} == tables, action
    assert {name for name, _, _ in CALLS} == {"resolve_skills", "post_role", "respond_to_introduction"}


# Executive profiles and contact details --------------------------------------------------------------


@pytest.mark.parametrize(
    ("link", "visible"), [("match", True), ("draft-match", True), ("introduction", True), ("neither", False)]
)
@pytest.mark.parametrize("who", COMPANY_ROLES)
def test_an_employer_sees_an_executive_only_through_a_match_or_an_introduction(
    conn, world, who, link, visible
):
    # The other executive has nothing to do with Acme until this test links them.
    other = world.other_executive
    if link == "match":
        add_match(conn, world.ids["acme_open"], other)
    elif link == "draft-match":
        add_match(conn, world.ids["acme_draft"], other)
    elif link == "introduction":
        add_introduction(conn, world.ids["acme_open"], other, world.owner)
    user = actor(conn, world, who)
    profile = user.rows("select 1 from public.executive_profiles where user_id = %s", (other.id,))
    skills = user.rows("select 1 from public.executive_skills where executive_id = %s", (other.id,))
    assert (bool(profile), bool(skills)) == (visible, visible)


def test_closing_a_profile_withdraws_it_from_the_stored_matches(conn, world):
    as_user(conn, world.executive).rows(
        "update public.executive_profiles set is_open = false where user_id = auth.uid()"
    )
    assert (
        value(conn, "select count(*) from public.matches where executive_id = %s", (world.executive.id,)) == 0
    )
    # Closed, the profile is hidden from Acme, which matched and asked (and so from companies whose request
    # was declined or expired); only a company whose introduction was accepted keeps seeing it.
    recruiter = as_user(conn, world.recruiter)
    query: LiteralString = "select 1 from public.executive_profiles where user_id = %s"
    assert recruiter.rows(query, (world.executive.id,)) == []
    for status in ("declined", "expired", "requested"):
        conn.execute(
            "update public.introductions set status = %s where id = %s", (status, world.ids["acme_intro"])
        )
        assert recruiter.rows(query, (world.executive.id,)) == [], status
    conn.execute(
        "update public.introductions set status = 'accepted' where id = %s", (world.ids["acme_intro"],)
    )
    assert recruiter.rows(query, (world.executive.id,)) != []
    # Other changes keep the matches.
    as_user(conn, world.other_executive).rows(
        "update public.executive_profiles set headline = 'Still here' where user_id = auth.uid()"
    )
    assert value(
        conn, "select count(*) from public.matches where executive_id = %s", (world.other_executive.id,)
    )


@pytest.mark.parametrize(
    ("status", "shared"), [("requested", False), ("declined", False), ("expired", False), ("accepted", True)]
)
def test_contact_details_only_after_the_executive_accepts(conn, world, status, shared):
    conn.execute(
        "update public.introductions set status = %s where id = %s", (status, world.ids["acme_intro"])
    )
    for who in EVERYONE:
        if who == "anon":
            continue
        rows = actor(conn, world, who).rows(
            "select email from public.executive_contacts where user_id = %s", (world.executive.id,)
        )
        sees = who in ("executive", "platform_admin", "service") or (shared and who in COMPANY_ROLES)
        assert bool(rows) is sees, who


def test_an_acceptance_shares_contact_details_with_the_requesting_company_only(conn, world):
    conn.execute(
        "update public.introductions set status = 'accepted' where id = %s", (world.ids["zeta_intro"],)
    )
    query: LiteralString = "select user_id::text from public.executive_contacts where user_id = %s"
    # While Zeta is not verified, not even an accepted introduction shows it anything.
    assert actor(conn, world, "zeta_owner").rows(query, (world.other_executive.id,)) == []
    conn.execute("update public.companies set verified_at = now() where id = %s", (world.zeta.id,))
    assert actor(conn, world, "zeta_owner").rows(query, (world.other_executive.id,)) != []
    for who in COMPANY_ROLES:
        assert actor(conn, world, who).rows(query, (world.other_executive.id,)) == [], who


def test_a_user_without_the_executive_role_cannot_create_a_profile(conn, world):
    for who in ("stranger", "owner", "platform_admin"):
        actor(conn, world, who).refused(
            "insert into public.executive_profiles (user_id) values (auth.uid())",
            sqlstate=INSUFFICIENT_PRIVILEGE,
        )
    newcomer = make_user(conn, roles=("executive",))
    row = as_user(conn, newcomer).one(
        "insert into public.executive_profiles (user_id, headline) values (auth.uid(), '  CFO  ') returning *"
    )
    assert (row["headline"], row["is_open"]) == ("CFO", False)  # trimmed; not matched until they say so


@pytest.mark.parametrize(
    "statement",
    [
        pytest.param(
            "update public.executive_profiles set user_id = %s where user_id = auth.uid()", id="user_id"
        ),
        pytest.param(
            "update public.executive_profiles set created_at = '2000-01-01' where user_id = %s",
            id="created_at",
        ),
        pytest.param(
            "update public.executive_profiles set updated_at = now() where user_id = %s", id="updated_at"
        ),
        pytest.param(
            "update public.executive_profiles set bio_embedding = null where user_id = %s", id="bio_embedding"
        ),
        pytest.param(
            "update public.executive_contacts set user_id = %s where user_id = auth.uid()",
            id="contacts-user_id",
        ),
        pytest.param(
            "update public.executive_skills set executive_id = %s where executive_id = auth.uid()",
            id="skills-executive_id",
        ),
    ],
)
def test_executives_cannot_change_what_the_database_owns(conn, world, statement):
    as_user(conn, world.executive).refused(statement, (world.stranger.id,), sqlstate=INSUFFICIENT_PRIVILEGE)


def test_executive_profiles_are_cleaned_and_checked(conn, world):
    me = as_user(conn, world.executive)
    row = me.one(
        "update public.executive_profiles set industries = '{ FinTech ,fintech,  Health   Care ,\"\"}',"
        " engagement_types = '{interim,fractional,interim}', location = '  ' where user_id = auth.uid()"
        " returning industries, engagement_types::text[], location"
    )
    assert row == {
        "industries": ["fintech", "health care"],
        "engagement_types": ["fractional", "interim"],
        "location": None,
    }


@pytest.mark.parametrize(
    "statement",
    [
        pytest.param(
            "update public.executive_profiles set compensation_currency = 'EUR', compensation_unit = 'day',"
            " compensation_min = 900, compensation_max = 800 where user_id = auth.uid()",
            id="min-above-max",
        ),
        pytest.param(
            "update public.executive_profiles set compensation_min = 100, compensation_max = 200"
            " where user_id = auth.uid()",
            id="amount-without-currency",
        ),
        pytest.param(
            "update public.executive_profiles set compensation_currency = 'euro' where user_id = auth.uid()",
            id="bad-currency",
        ),
        pytest.param(
            "update public.executive_profiles set years_experience = 71 where user_id = auth.uid()",
            id="years",
        ),
        pytest.param(
            "update public.executive_profiles set headline = repeat('x', 201) where user_id = auth.uid()",
            id="headline",
        ),
        pytest.param(
            "update public.executive_contacts set email = 'not an email' where user_id = auth.uid()",
            id="email",
        ),
        pytest.param(
            "update public.executive_contacts set linkedin_url = 'https://evil.example/in/me'"
            " where user_id = auth.uid()",
            id="linkedin",
        ),
        pytest.param(
            "update public.executive_skills set level = 6 where executive_id = auth.uid()", id="level"
        ),
    ],
)
def test_executive_input_is_checked(conn, world, statement):
    as_user(conn, world.executive).refused(statement, sqlstate=CHECK_VIOLATION)


def test_a_new_bio_drops_its_embedding(conn, world):
    conn.execute(
        "update public.executive_profiles"
        " set bio_embedding = array_fill(0.1::real, array[1536])::extensions.vector"
        " where user_id = %s",
        (world.executive.id,),
    )
    as_user(conn, world.executive).rows(
        "update public.executive_profiles set bio = 'A new story' where user_id = auth.uid()"
    )
    assert value(
        conn,
        "select bio_embedding is null from public.executive_profiles where user_id = %s",
        (world.executive.id,),
    )


# Role postings: the status machine ----------------------------------------------------------------------

SET_STATUS: LiteralString = (
    "update public.role_postings set status = %s where id = %s"
    " returning status::text, opened_at is not null as opened, closed_at is not null as closed"
)


@pytest.mark.parametrize(
    ("start", "status", "stamps"),
    [
        ("acme_draft", "open", (True, False)),
        ("acme_open", "closed", (True, True)),
        ("acme_closed", "open", (True, False)),  # reopening clears the closing time
    ],
)
@pytest.mark.parametrize("who", MANAGERS)
def test_roles_go_from_draft_to_open_to_closed_and_reopen(conn, world, who, start, status, stamps):
    row = actor(conn, world, who).one(SET_STATUS, (status, world.ids[start]))
    assert (row["status"], row["opened"], row["closed"]) == (status, *stamps)


@pytest.mark.parametrize("start", ["acme_open", "acme_closed"])
def test_a_role_never_goes_back_to_draft(conn, world, start):
    error = as_user(conn, world.owner).refused(
        SET_STATUS, ("draft", world.ids[start]), sqlstate=CHECK_VIOLATION
    )
    assert "cannot go back to draft" in str(error)
    # Not even past RLS: it is the table's rule, not a policy.
    as_service(conn).refused(SET_STATUS, ("draft", world.ids[start]), sqlstate=CHECK_VIOLATION)


def test_a_new_role_cannot_start_closed(conn, world):
    as_user(conn, world.recruiter).refused(
        "insert into public.role_postings (company_id, title, engagement_type, status)"
        " values (%s, 'Closed at birth', 'interim', 'closed')",
        (world.acme.id,),
        sqlstate=CHECK_VIOLATION,
    )


def test_reopening_a_role_stamps_a_new_opening(conn, world):
    conn.execute(
        "update public.role_postings set opened_at = now() - interval '1 day' where id = %s",
        (world.ids["acme_closed"],),
    )
    as_user(conn, world.owner).rows(SET_STATUS, ("open", world.ids["acme_closed"]))
    assert value(
        conn, "select opened_at = now() from public.role_postings where id = %s", (world.ids["acme_closed"],)
    )


@pytest.mark.parametrize(
    "statement",
    [
        pytest.param(
            "insert into public.role_postings (company_id, title, engagement_type, created_by)"
            " values (%(acme)s, 'Forged', 'interim', %(owner)s)",
            id="insert-created_by",
        ),
        pytest.param(
            "insert into public.role_postings (company_id, title, engagement_type, opened_at)"
            " values (%(acme)s, 'Backdated', 'interim', '2000-01-01')",
            id="insert-opened_at",
        ),
        pytest.param(
            "update public.role_postings set company_id = %(zeta)s where id = %(acme_open)s",
            id="update-company_id",
        ),
        pytest.param(
            "update public.role_postings set created_by = %(owner)s where id = %(acme_open)s",
            id="update-created_by",
        ),
        pytest.param(
            "update public.role_skills set role_id = %(acme_open)s where role_id = %(acme_draft)s",
            id="role_skills-role_id",
        ),
    ],
)
def test_employers_cannot_change_what_the_database_owns(conn, world, statement):
    as_user(conn, world.recruiter).refused(statement, world.ids, sqlstate=INSUFFICIENT_PRIVILEGE)


def test_role_postings_are_cleaned(conn, world):
    row = as_user(conn, world.recruiter).one(
        "insert into public.role_postings (company_id, title, engagement_type, industries, location)"
        " values (%s, '  Interim   CFO ', 'interim', '{ SaaS , saas,FinTech}', '') returning *",
        (world.acme.id,),
    )
    assert (row["title"], row["industries"], row["location"], row["status"]) == (
        "Interim CFO",
        ["fintech", "saas"],
        None,
        "draft",
    )
    assert str(row["created_by"]) == world.recruiter.id
    assert row["opened_at"] is None


# post_role: a role with its skills in free text, validated in the database ----------------------------


def post_role(user: Actor, role: dict[str, Any]) -> dict[str, Any]:
    return user.one("select * from public.post_role(%s)", (Jsonb(role),))


def role_skills(conn: psycopg.Connection, role_id: Any) -> dict[int, tuple[float, bool]]:
    rows = conn.execute(
        "select skill_id, weight, required from public.role_skills where role_id = %s", (role_id,)
    ).fetchall()
    return {skill_id: (float(weight), required) for skill_id, weight, required in rows}


@pytest.mark.parametrize("who", MANAGERS)
def test_post_role_resolves_free_text_skills(conn, world, who):
    posted = post_role(
        actor(conn, world, who),
        {
            "company_id": world.acme.id,
            "title": "Fractional CFO",
            "engagement_type": "fractional",
            "industries": ["FinTech"],
            "compensation_currency": "eur",
            "compensation_min": 800,
            "compensation_max": 1200,
            "compensation_unit": "day",
            "skills": [
                # An alias in another case and spacing, the same skill by slug (merged: the higher weight,
                # required if either is), and a skill by its name.
                {"name": "  " + world.finance.aliases[0].upper() + " ", "weight": 2},
                {"name": world.finance.slug, "weight": 3, "required": True},
                {"name": world.fpa.name},
            ],
        },
    )
    assert (posted["status"], posted["industries"], posted["compensation_currency"]) == (
        "draft",
        ["fintech"],
        "EUR",
    )
    assert str(posted["created_by"]) == getattr(world, who).id
    assert role_skills(conn, posted["id"]) == {world.finance.id: (3.0, True), world.fpa.id: (1.0, False)}


def test_post_role_edits_a_role_and_replaces_its_skills_only_when_given(conn, world):
    recruiter = as_user(conn, world.recruiter)
    role_id = world.ids["acme_draft"]
    edited = post_role(recruiter, {"id": role_id, "title": "Interim CFO", "status": "open"})
    assert (edited["title"], edited["status"], edited["engagement_type"]) == (
        "Interim CFO",
        "open",
        "fractional",
    )
    assert role_skills(conn, role_id) == {world.finance.id: (1.0, True)}  # no "skills": kept as they were
    post_role(recruiter, {"id": role_id, "skills": [{"name": world.fpa.slug, "required": True}]})
    assert role_skills(conn, role_id) == {world.fpa.id: (1.0, True)}
    post_role(recruiter, {"id": role_id, "skills": []})
    assert role_skills(conn, role_id) == {}


def test_post_role_is_refused_to_who_may_not_post(conn, world):
    role = {"company_id": world.acme.id, "title": "Interim CFO", "engagement_type": "interim"}
    for who in ("interviewer", "stranger", "zeta_owner", "platform_admin", "executive"):
        actor(conn, world, who).refused(
            "select public.post_role(%s)", (Jsonb(role),), sqlstate=INSUFFICIENT_PRIVILEGE
        )
    # Editing goes through the same policies: another company's role is "not yours to edit".
    for who in ("interviewer", "zeta_owner"):
        error = actor(conn, world, who).refused(
            "select public.post_role(%s)",
            (Jsonb({"id": world.ids["acme_open"], "title": "Pwned"}),),
            sqlstate=INSUFFICIENT_PRIVILEGE,
        )
        assert "not yours to edit" in str(error)
    as_anon(conn).refused("select public.post_role(%s)", (Jsonb(role),), sqlstate=INSUFFICIENT_PRIVILEGE)
    assert value(conn, "select title from public.role_postings where id = %s", (world.ids["acme_open"],)) == (
        "Fractional CFO"
    )


BAD_ROLES = [
    pytest.param(
        {"skills": [{"name": "no such skill"}, {"name": "nor this"}]}, INVALID_PARAMETER, id="unknown-skills"
    ),
    pytest.param({"skills": [{"nom": "finance"}]}, INVALID_PARAMETER, id="skill-without-name"),
    pytest.param({"skills": "finance"}, INVALID_PARAMETER, id="skills-not-a-list"),
    pytest.param({"skills": [{"name": "x"}] * 51}, INVALID_PARAMETER, id="too-many-skills"),
    pytest.param({"skills": [{"name": "{finance}", "weight": 0}]}, CHECK_VIOLATION, id="weight-zero"),
    pytest.param({"skills": [{"name": "{finance}", "weight": 6}]}, CHECK_VIOLATION, id="weight-above-5"),
    pytest.param(
        {
            "compensation_currency": "EUR",
            "compensation_unit": "day",
            "compensation_min": 900,
            "compensation_max": 800,
        },
        CHECK_VIOLATION,
        id="min-above-max",
    ),
    pytest.param(
        {"compensation_min": 100, "compensation_max": 200}, CHECK_VIOLATION, id="amount-without-currency"
    ),
    pytest.param({"compensation_min": -1}, CHECK_VIOLATION, id="negative-amount"),
    pytest.param({"compensation_currency": "euro"}, CHECK_VIOLATION, id="bad-currency"),
    pytest.param({"hours_per_week": 81}, CHECK_VIOLATION, id="too-many-hours"),
    pytest.param({"title": "ab"}, CHECK_VIOLATION, id="short-title"),
    pytest.param({"engagement_type": "gig"}, INVALID_TEXT, id="bad-engagement"),
    pytest.param({"seniority": "intern"}, INVALID_TEXT, id="bad-seniority"),
    pytest.param({"remote_policy": "moon"}, INVALID_TEXT, id="bad-remote-policy"),
    pytest.param({"status": "archived"}, INVALID_TEXT, id="bad-status"),
    pytest.param({"status": "closed"}, CHECK_VIOLATION, id="born-closed"),
    pytest.param({"start_date": "soon"}, "22007", id="bad-date"),
    pytest.param({"company_id": "acme"}, INVALID_TEXT, id="bad-company-id"),
    pytest.param({"company_id": None}, INVALID_PARAMETER, id="no-company"),
    pytest.param({"engagement_type": None}, NOT_NULL_VIOLATION, id="no-engagement"),
    pytest.param({"industries": "fintech"}, INVALID_PARAMETER, id="industries-not-a-list"),
]


@pytest.mark.parametrize(("change", "sqlstate"), BAD_ROLES)
def test_post_role_refuses_bad_input_with_a_clear_error(conn, world, change, sqlstate):
    role = {"company_id": world.acme.id, "title": "Interim CFO", "engagement_type": "interim", **change}
    role = json.loads(json.dumps(role).replace("{finance}", world.finance.slug))
    as_user(conn, world.recruiter).refused("select public.post_role(%s)", (Jsonb(role),), sqlstate=sqlstate)
    assert (
        value(conn, "select count(*) from public.role_postings where company_id = %s", (world.acme.id,)) == 3
    )


def test_post_role_names_the_unknown_skills(conn, world):
    role = {
        "company_id": world.acme.id,
        "title": "Interim CFO",
        "engagement_type": "interim",
        "skills": [{"name": "no such skill"}, {"name": world.finance.slug}, {"name": "nor this"}],
    }
    error = as_user(conn, world.recruiter).refused(
        "select public.post_role(%s)", (Jsonb(role),), sqlstate=INVALID_PARAMETER
    )
    assert error.diag.message_primary == 'unknown skills: "no such skill", "nor this"'
    assert error.diag.message_hint == "Use names from public.skills or their aliases."


@pytest.mark.parametrize(
    ("role", "sqlstate"),
    [
        pytest.param([1, 2], INVALID_PARAMETER, id="array"),
        pytest.param("a role", INVALID_PARAMETER, id="string"),
        pytest.param(None, INVALID_PARAMETER, id="null"),
    ],
)
def test_post_role_wants_an_object(conn, world, role, sqlstate):
    as_user(conn, world.owner).refused(
        "select public.post_role(%s::jsonb)", (None if role is None else json.dumps(role),), sqlstate=sqlstate
    )


@pytest.mark.parametrize(
    ("start", "change", "sqlstate"),
    [
        ("acme_open", {"status": "draft"}, CHECK_VIOLATION),
        ("acme_closed", {"status": "draft"}, CHECK_VIOLATION),
        ("acme_open", {"id": "not-a-uuid"}, INVALID_TEXT),
        ("acme_open", {"compensation_min": 900, "compensation_max": 800}, CHECK_VIOLATION),
    ],
)
def test_post_role_edits_follow_the_same_rules(conn, world, start, change, sqlstate):
    before = value(
        conn, "select row_to_json(r)::text from public.role_postings r where id = %s", (world.ids[start],)
    )
    if "compensation_min" in change:
        change = {**change, "compensation_currency": "EUR", "compensation_unit": "day"}
    as_user(conn, world.owner).refused(
        "select public.post_role(%s)", (Jsonb({"id": world.ids[start], **change}),), sqlstate=sqlstate
    )
    after = value(
        conn, "select row_to_json(r)::text from public.role_postings r where id = %s", (world.ids[start],)
    )
    assert after == before


# resolve_skills and the private scoring functions ----------------------------------------------------


@pytest.mark.parametrize("who", ["anon", "stranger", "executive", "service"])
def test_resolve_skills_for_everyone(conn, world, who):
    alias = world.finance.aliases[0]
    rows = actor(conn, world, who).rows(
        "select input, skill_id, slug from public.resolve_skills(%s)",
        ([f"  {alias.upper()}  ", "nothing like it", world.fpa.slug, alias.replace(" ", "   ")],),
    )
    assert [(r["input"].strip(), r["skill_id"]) for r in rows] == [
        (alias.upper(), world.finance.id),
        ("nothing like it", None),
        (world.fpa.slug, world.fpa.id),
        (alias.replace(" ", "   "), world.finance.id),
    ]


@pytest.mark.parametrize(
    "statement",
    [
        pytest.param("select * from private.match(%(acme_open)s, null, 10, '{}')", id="match"),
        pytest.param(
            "select * from private.refresh_matches(%(acme_open)s, null, 10, '{}')", id="refresh_matches"
        ),
        pytest.param(
            "select * from private.refresh_matches(null, %(executive)s, 10, '{}')", id="refresh-executive"
        ),
        pytest.param("select * from private.skill_credit", id="skill_credit"),
        pytest.param("select * from private.config", id="config"),
        pytest.param("select private.config_value('introduction_ttl')", id="config_value"),
        pytest.param("select private.expire_introductions()", id="expire_introductions"),
    ],
)
@pytest.mark.parametrize("who", ["anon", *SIGNED_IN])
def test_scoring_and_settings_are_not_reachable_from_the_api(conn, world, who, statement):
    actor(conn, world, who).refused(statement, world.ids, sqlstate=INSUFFICIENT_PRIVILEGE)
    assert (
        value(conn, "select count(*) from public.matches where role_id = %s", (world.ids["acme_open"],)) == 1
    )


def test_the_service_refreshes_matches_but_cannot_score_directly(conn, world):
    service = as_service(conn)
    rows = service.rows(
        "select executive_id::text from private.refresh_matches(%s, null, 10, '{\"skills\": 1}')",
        (world.ids["acme_open"],),
    )
    assert {r["executive_id"] for r in rows} == {world.executive.id, world.other_executive.id}
    service.refused("select * from private.match(%(acme_open)s, null, 10, '{}')", world.ids, sqlstate="42501")


def test_anon_calls_no_writing_function(conn, world):
    user = as_anon(conn)
    user.refused(
        "select public.respond_to_introduction(%s, true)", (world.ids["acme_intro"],), sqlstate="42501"
    )
    user.refused("select public.post_role('{}')", sqlstate=INSUFFICIENT_PRIVILEGE)


# Introductions -------------------------------------------------------------------------------------------

REQUEST: LiteralString = (
    "insert into public.introductions (role_id, executive_id, message) values (%s, %s, 'Hello') returning *"
)


@pytest.fixture
def open_slot(conn, world):
    """Acme's standing request to the executive, declined: Acme may ask again."""
    conn.execute(
        "update public.introductions set status = 'declined' where id = %s", (world.ids["acme_intro"],)
    )


@pytest.mark.usefixtures("open_slot")
def test_a_request_is_filled_in_by_the_database(conn, world):
    set_config(conn, "introduction_ttl", "3 days")
    row = as_user(conn, world.recruiter).one(REQUEST, (world.ids["acme_open"], world.executive.id))
    assert str(row["company_id"]) == world.acme.id
    assert str(row["requested_by"]) == world.recruiter.id
    assert (row["status"], row["responded_at"]) == ("requested", None)
    assert value(conn, "select now() + interval '3 days' = %s", (row["expires_at"],))
    # The executive hears of it by email, queued in the same transaction.
    assert (
        value(
            conn,
            "select recipient from private.outbox where idempotency_key = %s",
            (f"introduction:{row['id']}:requested:executive",),
        )
        == world.executive.email
    )


FORGED_REQUESTS = [
    pytest.param(
        "insert into public.introductions (role_id, executive_id, status) values (%s, %s, 'accepted')",
        id="status",
    ),
    pytest.param(
        "insert into public.introductions (role_id, executive_id, company_id) values (%s, %s, %s)",
        id="company_id",
    ),
    pytest.param(
        "insert into public.introductions (role_id, executive_id, requested_by) values (%s, %s, %s)",
        id="requested_by",
    ),
    pytest.param(
        "insert into public.introductions (role_id, executive_id, expires_at) values (%s, %s, '2999-01-01')",
        id="expires_at",
    ),
    pytest.param(
        "insert into public.introductions (role_id, executive_id, responded_at) values (%s, %s, now())",
        id="responded_at",
    ),
    pytest.param(
        "insert into public.introductions (role_id, executive_id, created_at) values (%s, %s, '2000-01-01')",
        id="created_at",
    ),
    pytest.param(
        "insert into public.introductions (id, role_id, executive_id) values (gen_random_uuid(), %s, %s)",
        id="id",
    ),
]


@pytest.mark.parametrize("statement", FORGED_REQUESTS)
@pytest.mark.usefixtures("open_slot")
def test_a_requester_chooses_only_role_executive_and_message(conn, world, statement):
    # Company and requester, when a statement names them, are forged as another company's and user's.
    params = (world.ids["acme_open"], world.executive.id)
    if statement.count("%s") == 3:
        params += (world.zeta.id if "company_id" in statement else world.owner.id,)
    as_user(conn, world.recruiter).refused(statement, params, sqlstate=INSUFFICIENT_PRIVILEGE)


@pytest.mark.parametrize(
    ("role", "executive"),
    [
        pytest.param("acme_draft", "executive", id="draft-role"),
        pytest.param("acme_closed", "executive", id="closed-role"),
        pytest.param("zeta_open", "executive", id="another-companys-role"),
        # Employers learn of executives through matches: one never shown to Acme cannot be asked for.
        pytest.param("acme_open", "other_executive", id="never-matched"),
        pytest.param("acme_open", "closed_executive", id="closed-profile-matched-before"),
    ],
)
@pytest.mark.usefixtures("open_slot")
def test_requests_only_for_open_roles_and_open_matched_executives(conn, world, role, executive):
    add_match(conn, world.ids["acme_closed"], world.executive)  # matched to every Acme role: not the reason
    add_match(conn, world.ids["acme_open"], world.closed_executive)
    as_user(conn, world.owner).refused(
        REQUEST, (world.ids[role], world.ids[executive]), sqlstate=INSUFFICIENT_PRIVILEGE
    )
    assert (
        value(conn, "select count(*) from public.introductions where company_id = %s", (world.acme.id,)) == 1
    )


def test_one_open_request_per_company_and_executive(conn, world):
    owner = as_user(conn, world.owner)
    owner.refused(REQUEST, (world.ids["acme_open"], world.executive.id), sqlstate=UNIQUE_VIOLATION)
    # A new role does not escape the rule: the company already asked this executive.
    another = make_role(conn, world.acme, wants={world.finance: True})
    error = owner.refused(REQUEST, (another, world.executive.id), sqlstate=UNIQUE_VIOLATION)
    assert "already has an open introduction request" in str(error)
    # Once answered (or expired), the company may ask again.
    as_user(conn, world.executive).rows(
        "select public.respond_to_introduction(%s, false)", (world.ids["acme_intro"],)
    )
    assert owner.one(REQUEST, (world.ids["acme_open"], world.executive.id))["status"] == "requested"
    owner.refused(REQUEST, (world.ids["acme_open"], world.executive.id), sqlstate=UNIQUE_VIOLATION)


def test_a_timed_out_request_does_not_block_a_new_one_before_the_sweep(conn, world):
    conn.execute(
        "update public.introductions set expires_at = now() - interval '1 second' where id = %s",
        (world.ids["acme_intro"],),
    )
    row = as_user(conn, world.owner).one(REQUEST, (world.ids["acme_open"], world.executive.id))
    assert row["status"] == "requested"
    assert value(
        conn, "select status::text from public.introductions where id = %s", (world.ids["acme_intro"],)
    ) == ("expired")


def test_a_company_makes_at_most_its_daily_limit_of_requests(conn, world):
    set_config(conn, "introduction_daily_limit", 2)
    newcomers = [make_executive(conn, skills={world.finance: 3}) for _ in range(3)]
    for newcomer in newcomers:
        add_match(conn, world.ids["acme_open"], newcomer)
        add_match(conn, world.ids["zeta_open"], newcomer)
    owner = as_user(conn, world.owner)
    owner.rows(REQUEST, (world.ids["acme_open"], newcomers[0].id))  # the second today, after the world's
    error = owner.refused(REQUEST, (world.ids["acme_open"], newcomers[1].id), sqlstate=CHECK_VIOLATION)
    assert "2 introduction requests for today" in str(error)
    # Another company has its own allowance, and yesterday's requests do not count.
    conn.execute("update public.companies set verified_at = now() where id = %s", (world.zeta.id,))
    conn.execute(
        "update public.introductions set status = 'declined' where id = %s", (world.ids["zeta_intro"],)
    )
    as_user(conn, world.zeta_owner).rows(REQUEST, (world.ids["zeta_open"], newcomers[1].id))
    conn.execute(
        "update private.introduction_requests_per_day set day = day - 1 where company_id = %s",
        (world.acme.id,),
    )
    assert owner.one(REQUEST, (world.ids["acme_open"], newcomers[2].id))["status"] == "requested"


@pytest.mark.parametrize(
    "undo",
    [
        pytest.param(
            "delete from public.introductions where company_id = %(acme)s", id="introductions-deleted"
        ),
        pytest.param(
            "delete from public.executive_profiles where user_id = %(newcomer)s", id="profile-deleted"
        ),
        pytest.param("delete from public.role_postings where id = %(role)s", id="role-deleted"),
    ],
)
def test_deleting_things_gives_no_requests_back(conn, world, undo):
    set_config(conn, "introduction_daily_limit", 2)
    role = make_role(conn, world.acme, wants={world.finance: True})
    newcomer, later = (make_executive(conn, skills={world.finance: 3}) for _ in range(2))
    for executive in (newcomer, later):
        add_match(conn, role, executive)
    owner = as_user(conn, world.owner)
    owner.rows(REQUEST, (role, newcomer.id))  # the second today, after the world's
    try:
        conn.execute("savepoint undo")
        conn.execute(undo, {**world.ids, "newcomer": newcomer.id, "role": role})
    except psycopg.errors.ForeignKeyViolation:
        conn.execute("rollback to savepoint undo")  # a role with introductions stays: see below
    error = owner.refused(REQUEST, (role, later.id), sqlstate=CHECK_VIOLATION)
    assert "2 introduction requests for today" in str(error)


@pytest.mark.parametrize("who", ["owner", "admin"])
def test_a_role_with_introductions_is_closed_not_deleted(conn, world, who):
    user = as_user(conn, getattr(world, who))
    error = user.refused(
        "delete from public.role_postings where id = %s", (world.ids["acme_open"],), sqlstate="23503"
    )
    assert "close it instead" in str(error)
    assert (
        user.count(
            "update public.role_postings set status = 'closed' where id = %s", (world.ids["acme_open"],)
        )
        == 1
    )
    # A role without introductions goes, and erasing the whole company (the service role's) still takes
    # everything with it.
    assert user.count("delete from public.role_postings where id = %s", (world.ids["acme_draft"],)) == 1
    as_service(conn).count("delete from public.companies where id = %s", (world.acme.id,))
    assert (
        value(conn, "select count(*) from public.introductions where company_id = %s", (world.acme.id,)) == 0
    )


@pytest.mark.parametrize("role", ["acme_draft", "acme_open", "no_such_role"])
@pytest.mark.parametrize("who", ["stranger", "zeta_owner", "interviewer", "executive", "platform_admin"])
def test_a_refused_request_tells_a_stranger_nothing(conn, world, role, who):
    # Acme has made its one request of the day: its own people hear that, nobody else.
    set_config(conn, "introduction_daily_limit", 1)
    add_match(conn, world.ids["acme_open"], world.other_executive)
    role_id = world.ids.get(role, str(uuid.uuid4()))
    error = actor(conn, world, who).refused(
        REQUEST, (role_id, world.other_executive.id), sqlstate=INSUFFICIENT_PRIVILEGE
    )
    assert "may not ask for this introduction" in str(error)
    as_user(conn, world.owner).refused(
        REQUEST, (world.ids["acme_open"], world.other_executive.id), sqlstate=CHECK_VIOLATION
    )


def test_an_unverified_company_may_not_ask_for_introductions(conn, world):
    conn.execute(
        "update public.introductions set status = 'declined' where id = %s", (world.ids["zeta_intro"],)
    )
    add_match(conn, world.ids["zeta_open"], world.other_executive)
    zeta = as_user(conn, world.zeta_owner)
    zeta.refused(REQUEST, (world.ids["zeta_open"], world.other_executive.id), sqlstate=INSUFFICIENT_PRIVILEGE)
    conn.execute("update public.companies set verified_at = now() where id = %s", (world.zeta.id,))
    assert zeta.one(REQUEST, (world.ids["zeta_open"], world.other_executive.id))["status"] == "requested"


def employer_emails(conn: psycopg.Connection, introduction_id: str) -> dict[str, str]:
    """Recipient -> template of the employer-side emails an introduction's answer queued."""
    rows = conn.execute(
        "select recipient, template from private.outbox where idempotency_key like %s",
        (f"introduction:{introduction_id}:%:employer%",),
    ).fetchall()
    return dict(rows)


@pytest.mark.parametrize("accept", [True, False])
@pytest.mark.parametrize("change", ["left", "demoted", "stays"])
def test_the_employer_side_of_an_answer_goes_to_those_who_still_hire(conn, world, accept, change):
    # The recruiter asked; before the executive answers, they leave Acme or become an interviewer.
    if change == "left":
        conn.execute("delete from public.company_members where user_id = %s", (world.recruiter.id,))
    elif change == "demoted":
        conn.execute(
            "update public.company_members set role = 'interviewer' where user_id = %s", (world.recruiter.id,)
        )
    as_user(conn, world.executive).rows(RESPOND, (world.ids["acme_intro"], accept))
    template = "introduction_accepted_employer" if accept else "introduction_declined"
    expected = {world.recruiter.email if change == "stays" else world.owner.email: template}
    assert employer_emails(conn, world.ids["acme_intro"]) == expected


def test_an_acceptance_needs_a_company_that_is_still_verified(conn, world):
    conn.execute("update public.companies set verified_at = null where id = %s", (world.acme.id,))
    executive = as_user(conn, world.executive)
    error = executive.refused(RESPOND, (world.ids["acme_intro"], True), sqlstate=CHECK_VIOLATION)
    assert "not verified" in str(error)
    assert employer_emails(conn, world.ids["acme_intro"]) == {}
    assert executive.one(RESPOND, (world.ids["acme_intro"], False))["status"] == "declined"


# respond_to_introduction: the executive answers, nobody else --------------------------------------------

RESPOND: LiteralString = "select * from public.respond_to_introduction(%s, %s)"


def status_of(conn: psycopg.Connection, introduction_id: str) -> str:
    return value(conn, "select status::text from public.introductions where id = %s", (introduction_id,))


@pytest.mark.parametrize(("accept", "status"), [(True, "accepted"), (False, "declined")])
def test_the_executive_accepts_or_declines(conn, world, accept, status):
    row = as_user(conn, world.executive).one(RESPOND, (world.ids["acme_intro"], accept))
    assert (row["status"], row["responded_at"] is not None) == (status, True)
    assert status_of(conn, world.ids["acme_intro"]) == status
    # The employer hears the answer by email; on acceptance the executive gets the employer's address too.
    keys = {
        key
        for (key,) in conn.execute(
            "select idempotency_key from private.outbox where context ->> 'introduction_id' = %s",
            (world.ids["acme_intro"],),
        )
    }
    prefix = f"introduction:{world.ids['acme_intro']}"
    expected = (
        {f"{prefix}:accepted:executive", f"{prefix}:accepted:employer"}
        if accept
        else {f"{prefix}:declined:employer"}
    )
    assert keys == {f"{prefix}:requested:executive", *expected}


@pytest.mark.parametrize("who", [w for w in SIGNED_IN if w != "executive"])
def test_nobody_else_answers_for_the_executive(conn, world, who):
    error = actor(conn, world, who).refused(
        RESPOND, (world.ids["acme_intro"], True), sqlstate=INSUFFICIENT_PRIVILEGE
    )
    assert "no such introduction for you" in str(error)
    assert status_of(conn, world.ids["acme_intro"]) == "requested"


@pytest.mark.parametrize("first", [True, False])
def test_an_answer_is_final(conn, world, first):
    me = as_user(conn, world.executive)
    me.rows(RESPOND, (world.ids["acme_intro"], first))
    for again in (True, False):
        error = me.refused(RESPOND, (world.ids["acme_intro"], again), sqlstate=CHECK_VIOLATION)
        assert "already" in str(error)
    assert status_of(conn, world.ids["acme_intro"]) == ("accepted" if first else "declined")


def test_an_expired_request_cannot_be_answered(conn, world):
    conn.execute(
        "update public.introductions set expires_at = now() - interval '1 second' where id = %s",
        (world.ids["acme_intro"],),
    )
    error = as_user(conn, world.executive).refused(
        RESPOND, (world.ids["acme_intro"], True), sqlstate=CHECK_VIOLATION
    )
    assert "expired" in str(error)
    # The sweep records it; contact details were never shared.
    assert value(conn, "select private.expire_introductions()") == 1
    assert status_of(conn, world.ids["acme_intro"]) == "expired"
    assert (
        as_user(conn, world.owner).rows(
            "select 1 from public.executive_contacts where user_id = %s", (world.executive.id,)
        )
        == []
    )


def test_a_request_expires_after_the_configured_time(conn, world):
    set_config(conn, "introduction_ttl", "0 seconds")  # expires the moment it is made
    conn.execute(
        "update public.introductions set status = 'declined' where id = %s", (world.ids["acme_intro"],)
    )
    row = as_user(conn, world.owner).one(REQUEST, (world.ids["acme_open"], world.executive.id))
    as_user(conn, world.executive).refused(RESPOND, (row["id"], True), sqlstate=CHECK_VIOLATION)


@pytest.mark.parametrize(
    ("introduction_id", "accept", "sqlstate"),
    [
        ("{acme_intro}", None, INVALID_PARAMETER),
        ("00000000-0000-0000-0000-000000000000", True, INSUFFICIENT_PRIVILEGE),
        ("not-a-uuid", True, INVALID_TEXT),
    ],
)
def test_respond_refuses_bad_input(conn, world, introduction_id, accept, sqlstate):
    introduction_id = world.ids["acme_intro"] if introduction_id == "{acme_intro}" else introduction_id
    as_user(conn, world.executive).refused(RESPOND, (introduction_id, accept), sqlstate=sqlstate)
    assert status_of(conn, world.ids["acme_intro"]) == "requested"


# Feedback ------------------------------------------------------------------------------------------------

FEEDBACK: LiteralString = (
    "insert into public.feedback (subject, role_id, executive_id, introduction_id, rating)"
    " values (%s, %s, %s, %s, %s) returning user_id::text, rating"
)


@pytest.mark.parametrize(("rating", "accepted"), [(0, False), (1, True), (5, True), (6, False)])
def test_feedback_ratings_are_one_to_five(conn, world, rating, accepted):
    user = as_user(conn, world.stranger)
    params = ("product", None, None, None, rating)
    if accepted:
        assert user.one(FEEDBACK, params) == {"user_id": world.stranger.id, "rating": rating}
    else:
        user.refused(FEEDBACK, params, sqlstate=CHECK_VIOLATION)


@pytest.mark.parametrize(
    ("subject", "names", "accepted"),
    [
        ("match", ("acme_open", "executive", None), True),
        ("introduction", (None, None, "acme_intro"), True),
        ("match", ("acme_open", "executive", "acme_intro"), False),
        ("introduction", ("acme_open", None, "acme_intro"), False),
        ("product", ("acme_open", None, None), False),
    ],
)
def test_feedback_names_its_subject(conn, world, subject, names, accepted):
    params = (subject, *(world.ids[n] if n else None for n in names), 4)
    user = as_user(conn, world.owner)
    if accepted:
        assert user.one(FEEDBACK, params)["user_id"] == world.owner.id
    else:
        user.refused(FEEDBACK, params, sqlstate=CHECK_VIOLATION)


@pytest.mark.parametrize(
    ("who", "subject", "names", "accepted"),
    [
        ("stranger", "match", ("acme_open", None, None), True),  # an open role: visible to all
        ("stranger", "match", ("acme_draft", None, None), False),  # another company's draft
        ("stranger", "introduction", (None, None, "acme_intro"), False),  # not a party to it
        ("zeta_owner", "introduction", (None, None, "zeta_intro"), True),
        ("stranger", "match", (None, "executive", None), False),  # an executive they were never shown
    ],
)
def test_feedback_is_about_what_the_user_can_see(conn, world, who, subject, names, accepted):
    # Refused like a row that does not exist, so feedback cannot probe for ids.
    params = (subject, *(world.ids[n] if n else None for n in names), 3)
    user = as_user(conn, world.users[who])
    if accepted:
        assert user.one(FEEDBACK, params)["user_id"] == world.users[who].id
    else:
        user.refused(FEEDBACK, params, sqlstate=INSUFFICIENT_PRIVILEGE)


def test_feedback_cannot_be_left_in_someone_elses_name(conn, world):
    as_user(conn, world.stranger).refused(
        "insert into public.feedback (user_id, subject, rating) values (%s, 'product', 1)",
        (world.executive.id,),
        sqlstate=INSUFFICIENT_PRIVILEGE,
    )


def test_feedback_the_service_writes_for_a_user(conn, world):
    service = as_service(conn)
    service.refused(
        "insert into public.feedback (subject, rating) values ('product', 3)", sqlstate=NOT_NULL_VIOLATION
    )
    row = service.one(
        "insert into public.feedback (user_id, subject, rating) values (%s, 'product', 3)"
        " returning user_id::text",
        (world.stranger.id,),
    )
    assert row["user_id"] == world.stranger.id


# The matching functions (committed data, the app in-process) -------------------------------------------


@dataclass(frozen=True)
class Employer:
    owner: User
    company: Company


@pytest.fixture
def employer(committed) -> Employer:
    owner = make_user(committed, roles=("employer",))
    return Employer(owner, make_company(committed, owner, verified=True))


async def match_role(client, user: User, body: dict[str, Any]):
    return await client.post("/functions/v1/matching", json=body, headers=bearer(token_for(user)))


async def matched(client, employer: Employer, role_id: str, **extra: Any) -> list[dict[str, Any]]:
    response = await match_role(client, employer.owner, {"role_id": role_id, **extra})
    assert response.status_code == 200, response.text
    return response.json()["matches"]


def ranking(matches: list[dict[str, Any]], *executives: User) -> list[str]:
    """The executives' names in the order the matches rank them (others left out)."""
    names = {e.id: f"#{i}" for i, e in enumerate(executives)}
    return [names[m["executive_id"]] for m in matches if m["executive_id"] in names]


def by_executive(matches: list[dict[str, Any]], executive: User) -> dict[str, Any]:
    (match,) = [m for m in matches if m["executive_id"] == executive.id]
    return match


def pay(currency: str, low: int, high: int) -> dict[str, Any]:
    """A day rate range, as a profile's or a role's compensation columns."""
    return {
        "compensation_currency": currency,
        "compensation_unit": "day",
        "compensation_min": low,
        "compensation_max": high,
    }


def expected_score(app, signals: dict[str, float]) -> float:
    """The weighted average of the signals given, with the app's own weights."""
    weights = get_matching_settings().matching_weights.model_dump()
    total = sum(weights[name] for name in signals)
    return round(100 * sum(weights[name] * signal for name, signal in signals.items()) / total, 2)


async def test_a_perfect_fit_scores_the_weighted_average_of_its_signals(client, app, committed, employer):
    skill = make_skill(committed, "treasury")
    executive = make_executive(committed, skills={skill: 5})
    role_id = make_role(committed, employer.company, wants={skill: True})
    (match,) = await matched(client, employer, role_id)
    breakdown = match["breakdown"]
    # Unknown seniority and compensation are half a match; nothing asked about industry, hours or dates is a
    # full one; a remote role fits anyone; without embeddings the semantic signal leaves the average.
    assert breakdown == {
        "skills": {
            "score": 1.0,
            "matched_required": [skill.slug],
            "matched_nice_to_have": [],
            "related": [],
            "missing_required": [],
        },
        "seniority": 0.5,
        "industry": 1.0,
        "engagement": 1.0,
        "compensation": 0.5,
        "availability": 1.0,
        "location": 1.0,
        "semantic": None,
    }
    signals = {k: v for k, v in breakdown.items() if k not in ("skills", "semantic")} | {"skills": 1.0}
    assert match["score"] == expected_score(app, signals)
    assert (match["executive_id"], match["role_id"]) == (executive.id, role_id)

    # With embeddings on both sides the semantic signal joins in: identical texts are a full match.
    committed.execute(
        "update public.executive_profiles"
        " set bio_embedding = array_fill(0.3::real, array[1536])::extensions.vector"
        " where user_id = %s",
        (executive.id,),
    )
    committed.execute(
        "update public.role_postings"
        " set description_embedding = array_fill(0.7::real, array[1536])::extensions.vector"
        " where id = %s",
        (role_id,),
    )
    (match,) = await matched(client, employer, role_id)
    assert match["breakdown"]["semantic"] == 1.0
    assert match["score"] == expected_score(app, signals | {"semantic": 1.0})


async def test_exact_skills_beat_related_skills_beat_none(client, committed, employer):
    finance = make_skill(committed, "finance")
    fpa = make_skill(committed, "fpa", parent=finance)
    tax = make_skill(committed, "tax")
    exact = make_executive(committed, skills={finance: 5, tax: 5})
    related = make_executive(committed, skills={fpa: 5, tax: 5})  # a specialisation of what is wanted
    none = make_executive(committed, skills={tax: 5})
    role_id = make_role(committed, employer.company, wants={finance: True, tax: False})
    matches = await matched(client, employer, role_id)
    assert ranking(matches, exact, related, none) == ["#0", "#1", "#2"]
    skills = {
        name: by_executive(matches, e)["breakdown"]["skills"]
        for name, e in (("exact", exact), ("related", related), ("none", none))
    }
    # Required skills count double; a specialisation of the wanted skill counts three quarters.
    assert [skills[n]["score"] for n in ("exact", "related", "none")] == [
        1.0,
        round((2 * 0.75 + 1) / 3, 3),
        round(1 / 3, 3),
    ]
    assert (skills["exact"]["matched_required"], skills["exact"]["related"]) == ([finance.slug], [])
    assert (skills["related"]["matched_required"], skills["related"]["related"]) == ([], [finance.slug])
    assert skills["none"]["missing_required"] == [finance.slug]
    assert skills["none"]["matched_nice_to_have"] == [tax.slug]


async def test_the_ontology_counts_an_umbrella_skill_half_and_a_sibling_not_at_all(
    client, committed, employer
):
    finance = make_skill(committed, "finance")
    fpa = make_skill(committed, "fpa", parent=finance)
    audit = make_skill(committed, "audit", parent=finance)
    specialist = make_executive(committed, skills={fpa: 5})
    generalist = make_executive(committed, skills={finance: 5})  # holds the umbrella of what is wanted
    sibling = make_executive(committed, skills={audit: 5})  # another specialisation: no credit
    role_id = make_role(committed, employer.company, wants={fpa: True})
    matches = await matched(client, employer, role_id)
    assert ranking(matches, specialist, generalist, sibling) == ["#0", "#1"]
    assert by_executive(matches, generalist)["breakdown"]["skills"]["score"] == 0.5
    assert by_executive(matches, generalist)["breakdown"]["skills"]["related"] == [fpa.slug]


async def test_required_skills_beat_nice_to_have_and_levels_count(client, committed, employer):
    must, nice = make_skill(committed, "must"), make_skill(committed, "nice")
    expert = make_executive(committed, skills={must: 5})
    novice = make_executive(committed, skills={must: 1})
    nice_only = make_executive(committed, skills={nice: 5})
    role_id = make_role(committed, employer.company, wants={must: True, nice: False})
    matches = await matched(client, employer, role_id)
    assert ranking(matches, expert, novice, nice_only) == ["#0", "#1", "#2"]
    # Level 5 counts fully, level 1 at 0.6: 2/3 of the weight is the required skill.
    assert [
        by_executive(matches, e)["breakdown"]["skills"]["score"] for e in (expert, novice, nice_only)
    ] == [
        round(2 / 3, 3),
        round(2 / 3 * 0.6, 3),
        round(1 / 3, 3),
    ]


@pytest.mark.parametrize(
    ("role", "profiles", "signal", "expected"),
    [
        pytest.param(
            {"seniority": "vp"},
            [{"seniority": "vp"}, {"seniority": "c_level"}, {"seniority": "manager"}],
            "seniority",
            [1.0, 0.5, 0.0],
            id="seniority",
        ),
        pytest.param(
            {"engagement_type": "interim"},
            [{"engagement_types": ["interim", "advisory"]}, {"engagement_types": ["full_time"]}],
            "engagement",
            [1.0, 0.0],
            id="engagement",
        ),
        pytest.param(
            pay("EUR", 600, 1000),
            [pay("EUR", 800, 900), pay("EUR", 1500, 2000), pay("EUR", 2500, 3000)],
            "compensation",
            [1.0, 0.5, 0.0],  # within the budget; half as much again over it; further over
            id="compensation",
        ),
        pytest.param(
            {"remote_policy": "onsite", "location": "London"},
            [{"location": " london "}, {}, {"location": "Paris"}],
            "location",
            [1.0, 0.5, 0.0],
            id="location-onsite",
        ),
        pytest.param(
            {"remote_policy": "hybrid", "location": "London"},
            [
                {"location": "London"},
                {"location": "Paris", "remote_preference": "remote"},
                {"location": "Paris"},
            ],
            "location",
            [1.0, 0.25, 0.0],
            id="location-hybrid",
        ),
        pytest.param(
            {"industries": ["fintech", "saas"]},
            [
                {"industries": ["SaaS", "FinTech"]},
                {"industries": ["fintech", "retail"]},
                {"industries": ["retail"]},
            ],
            "industry",
            [1.0, 0.5, 0.0],
            id="industry",
        ),
        pytest.param(
            {"hours_per_week": 20, "start_date": "2030-01-01"},
            [
                {"hours_per_week": 20, "available_from": "2029-12-01"},
                {"hours_per_week": 10, "available_from": "2030-01-01"},
                {"hours_per_week": 10, "available_from": "2030-04-01"},
            ],
            "availability",
            [1.0, 0.75, 0.25],
            id="availability",
        ),
    ],
)
async def test_one_signal_at_a_time_decides_the_order(
    client, committed, employer, role, profiles, signal, expected
):
    skill = make_skill(committed, "leadership")
    executives = [make_executive(committed, skills={skill: 4}, **profile) for profile in profiles]
    role_id = make_role(committed, employer.company, wants={skill: True}, **role)
    matches = await matched(client, employer, role_id)
    # Everything else is equal, so this one signal sets the order: scores fall strictly as it does.
    assert [by_executive(matches, e)["breakdown"][signal] for e in executives] == expected
    scores = [by_executive(matches, e)["score"] for e in executives]
    assert scores == sorted(scores, reverse=True)
    assert len(set(scores)) == len(scores)


async def test_a_different_currency_counts_as_unknown_compensation(client, committed, employer):
    skill = make_skill(committed, "pricing")
    dollars = make_executive(committed, skills={skill: 4}, **pay("USD", 5000, 6000))
    role_id = make_role(committed, employer.company, wants={skill: True}, **pay("EUR", 500, 1000))
    (match,) = await matched(client, employer, role_id)
    assert (match["executive_id"], match["breakdown"]["compensation"]) == (dollars.id, 0.5)


async def test_closed_profiles_never_match(client, committed, employer):
    skill = make_skill(committed, "turnaround")
    open_one = make_executive(committed, skills={skill: 3})
    closed = make_executive(committed, skills={skill: 5}, is_open=False)  # the better fit on paper
    role_id = make_role(committed, employer.company, wants={skill: True})
    matches = await matched(client, employer, role_id)
    assert [m["executive_id"] for m in matches] == [open_one.id]
    assert value(committed, "select count(*) from public.matches where executive_id = %s", (closed.id,)) == 0
    # Nor can a closed executive look for roles.
    response = await client.post("/functions/v1/matching/roles", json={}, headers=bearer(token_for(closed)))
    assert (response.status_code, response.json()["error"]) == (409, "profile_not_open")


async def test_an_executive_is_matched_to_open_roles_only(client, committed, employer):
    skill = make_skill(committed, "mergers")
    executive = make_executive(committed, skills={skill: 4})
    rival_owner = make_user(committed)
    rival = Employer(rival_owner, make_company(committed, rival_owner, verified=True))
    listed = {
        make_role(committed, employer.company, wants={skill: True}),
        make_role(committed, rival.company, wants={skill: False}),
    }
    hidden = {
        make_role(committed, employer.company, wants={skill: True}, status="draft"),
        make_role(committed, rival.company, wants={skill: True}, status="draft"),
        make_role(committed, rival.company, wants={skill: True}, status="closed"),
    }
    # Even a member of a company with a draft sees only open roles here: this is the executive's view.
    add_member(committed, rival.company, executive, "recruiter")
    response = await client.post(
        "/functions/v1/matching/roles", json={}, headers=bearer(token_for(executive))
    )
    assert response.status_code == 200, response.text
    roles = {m["role_id"] for m in response.json()["matches"]}
    assert roles == listed
    assert not roles & hidden
    assert all(m["executive_id"] == executive.id for m in response.json()["matches"])
    stored = {
        str(role_id)
        for (role_id,) in committed.execute(
            "select role_id from public.matches where executive_id = %s", (executive.id,)
        )
    }
    # An executive's own list is not stored: it would show them to those companies uninvited.
    assert stored == set()


async def test_matches_are_stored_and_replaced_on_a_rerun(client, committed, employer):
    skill = make_skill(committed, "scaling")
    leaving, staying = (
        make_executive(committed, skills={skill: 5}),
        make_executive(committed, skills={skill: 3}),
    )
    role_id = make_role(committed, employer.company, wants={skill: True})
    first = await matched(client, employer, role_id)

    def stored() -> dict[str, tuple[float, Any]]:
        rows = committed.execute(
            "select executive_id::text, score, computed_at from public.matches where role_id = %s", (role_id,)
        ).fetchall()
        return {executive_id: (float(score), computed_at) for executive_id, score, computed_at in rows}

    before = stored()
    assert {e: s for e, (s, _) in before.items()} == {m["executive_id"]: m["score"] for m in first}
    # The better fit drops the skill (no longer a candidate), the other improves, a newcomer arrives.
    committed.execute("delete from public.executive_skills where executive_id = %s", (leaving.id,))
    committed.execute("update public.executive_skills set level = 5 where executive_id = %s", (staying.id,))
    newcomer = make_executive(committed, skills={skill: 1})
    second = await matched(client, employer, role_id)
    after = stored()
    assert set(after) == {staying.id, newcomer.id} == {m["executive_id"] for m in second}
    assert after[staying.id][0] > before[staying.id][0]
    assert after[staying.id][1] > before[staying.id][1]  # computed again
    # The employer no longer sees the executive who dropped out (no match, no introduction).
    assert employer_sees_profile(committed, employer.owner, leaving) is False
    assert employer_sees_profile(committed, employer.owner, staying) is True


def employer_sees_profile(conn: psycopg.Connection, user: User, executive: User) -> bool:
    return bool(
        as_user(conn, user).rows(
            "select 1 from public.executive_profiles where user_id = %s", (executive.id,)
        )
    )


async def test_the_limit_caps_results_but_never_shortens_the_stored_list(client, committed, employer):
    skill = make_skill(committed, "growth")
    executives = [make_executive(committed, skills={skill: level}) for level in (5, 4, 3, 2)]
    role_id = make_role(committed, employer.company, wants={skill: True})

    def stored() -> int:
        return value(committed, "select count(*) from public.matches where role_id = %s", (role_id,))

    matches = await matched(client, employer, role_id, limit=2)
    assert ranking(matches, *executives) == ["#0", "#1"]
    # The list kept for the company is the default length's (here everyone): a quick look at the top two
    # takes nobody out of it.
    assert stored() == 4
    assert all(employer_sees_profile(committed, employer.owner, e) for e in executives)
    with override_default_limit(3):
        assert len(await matched(client, employer, role_id, limit=1)) == 1
        assert stored() == 3  # the default's worth, the best three
        assert len(await matched(client, employer, role_id, limit=4)) == 4
        assert stored() == 4  # a longer look keeps the longer list


@contextmanager
def override_default_limit(limit: int) -> Iterator[None]:
    settings = get_matching_settings()
    before = settings.matching_default_limit
    settings.matching_default_limit = limit
    try:
        yield
    finally:
        settings.matching_default_limit = before


@pytest.mark.parametrize("role", MANAGERS)
async def test_owners_admins_and_recruiters_match_their_roles_drafts_included(
    client, committed, employer, role
):
    skill = make_skill(committed, "audit")
    executive = make_executive(committed, skills={skill: 4})
    member = employer.owner if role == "owner" else make_user(committed)
    if role != "owner":
        add_member(committed, employer.company, member, role)
    role_id = make_role(committed, employer.company, wants={skill: True}, status="draft")
    response = await match_role(client, member, {"role_id": role_id})
    assert response.status_code == 200, response.text
    assert [m["executive_id"] for m in response.json()["matches"]] == [executive.id]


def test_a_profile_closed_during_a_matching_run_is_not_stored_again(committed, database, employer):
    skill = make_skill(committed, "restructuring")
    executive = make_executive(committed, skills={skill: 4})
    role_id = make_role(committed, employer.company, wants={skill: True})
    weights = Jsonb(get_matching_settings().matching_weights.model_dump())
    stored: list[Any] = []
    with psycopg.connect(database.superuser) as closing, psycopg.connect(database.superuser) as run:
        # The executive closes their profile; the run starts before that commits, so it reads it as open.
        closing.execute(
            "update public.executive_profiles set is_open = false where user_id = %s", (executive.id,)
        )

        def match() -> None:
            stored.extend(
                run.execute(
                    "select executive_id::text from private.refresh_matches(%s, null, 20, %s)",
                    (role_id, weights),
                ).fetchall()
            )
            run.commit()

        worker = threading.Thread(target=match)
        worker.start()
        run_pid = run.info.backend_pid
        for _ in range(200):  # the run waits for the close to finish (on old code it never does)
            waiting = value(
                committed,
                "select wait_event_type = 'Lock' from pg_stat_activity where pid = %s",
                (run_pid,),
            )
            if waiting:
                break
            time.sleep(0.01)
        closing.commit()
        worker.join(10)
    assert stored == []
    assert value(committed, "select count(*) from public.matches where role_id = %s", (role_id,)) == 0


async def test_an_interviewer_may_not_match(client, committed, employer):
    skill = make_skill(committed, "hiring")
    make_executive(committed, skills={skill: 4})
    interviewer = make_user(committed)
    add_member(committed, employer.company, interviewer, "interviewer")
    role_id = make_role(committed, employer.company, wants={skill: True})
    add_match_run = await matched(client, employer, role_id)  # the list the hiring team relies on
    response = await match_role(client, interviewer, {"role_id": role_id, "limit": 1})
    assert response.status_code == 403
    assert response.json() == {
        "error": "insufficient_company_role",
        "message": "matching is for the company's owners, admins and recruiters",
    }
    assert value(committed, "select count(*) from public.matches where role_id = %s", (role_id,)) == len(
        add_match_run
    )


async def test_an_unverified_company_may_not_match(client, committed):
    # The harvest: sign up, create a company and a role with no skills (every open executive is a candidate),
    # match with the largest limit, read the stored matches' profiles through PostgREST.
    everyone = make_executive(committed, skills={make_skill(committed, "anything"): 4})
    newcomer = make_user(committed)
    company = make_company(committed, newcomer)
    role_id = make_role(committed, company)
    response = await match_role(client, newcomer, {"role_id": role_id, "limit": 100})
    assert response.status_code == 403
    assert response.json()["error"] == "company_not_verified"
    assert value(committed, "select count(*) from public.matches where role_id = %s", (role_id,)) == 0
    assert employer_sees_profile(committed, newcomer, everyone) is False
    # Once a platform admin verifies the company, it may.
    committed.execute("update public.companies set verified_at = now() where id = %s", (company.id,))
    response = await match_role(client, newcomer, {"role_id": role_id, "limit": 100})
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("who", ["stranger", "other_company", "platform_admin", "the_executive"])
async def test_a_non_member_gets_403_and_nothing_is_computed(client, committed, employer, who):
    skill = make_skill(committed, "compliance")
    executive = make_executive(committed, skills={skill: 4})
    if who == "the_executive":
        caller = executive
    else:
        caller = make_user(committed, roles=("admin",) if who == "platform_admin" else ())
        if who == "other_company":
            make_company(committed, caller, verified=True)
    role_id = make_role(committed, employer.company, wants={skill: True})
    response = await match_role(client, caller, {"role_id": role_id})
    assert response.status_code == 403
    assert response.json() == {
        "error": "not_a_company_member",
        "message": "only the role's company may match it",
    }
    assert value(committed, "select count(*) from public.matches where role_id = %s", (role_id,)) == 0
    # Another company's draft answers as a role that does not exist.
    draft_id = make_role(committed, employer.company, wants={skill: True}, status="draft")
    response = await match_role(client, caller, {"role_id": draft_id})
    assert (response.status_code, response.json()["error"]) == (404, "role_not_found")


async def test_an_unknown_role_is_404(client, employer):
    response = await match_role(client, employer.owner, {"role_id": str(uuid.uuid4())})
    assert response.status_code == 404
    assert response.json()["error"] == "role_not_found"


BAD_BODIES = [
    pytest.param({"role_id": "not-a-uuid"}, "role_id", id="malformed-id"),
    pytest.param({"role_id": 42}, "role_id", id="numeric-id"),
    pytest.param({}, "data", id="no-role"),
    pytest.param({"role_id": "{role}", "limit": 0}, "limit", id="limit-0"),
    pytest.param({"role_id": "{role}", "limit": 101}, "limit", id="limit-101"),
    pytest.param({"role_id": "{role}", "limit": "x"}, "limit", id="limit-x"),
    pytest.param({"role_id": "{role}", "limit": 2.5}, "limit", id="limit-fraction"),
    pytest.param({"role_id": "{role}", "weights": {"skills": 100}}, "data", id="weights-are-not-public"),
]


@pytest.mark.parametrize(("body", "field_name"), BAD_BODIES)
async def test_bad_input_is_a_422_in_our_error_shape(client, committed, employer, body, field_name):
    # A draft with a skill: an open role without skills would be every open executive's match elsewhere.
    role_id = make_role(
        committed, employer.company, wants={make_skill(committed, "ethics"): True}, status="draft"
    )
    body = {k: role_id if v == "{role}" else v for k, v in body.items()}
    response = await match_role(client, employer.owner, body)
    assert response.status_code == 422, response.text
    error = response.json()
    assert error["error"] == "validation_failed"
    assert error["message"] == f"invalid {field_name}"
    assert value(committed, "select count(*) from public.matches where role_id = %s", (role_id,)) == 0


@pytest.mark.parametrize(
    ("content", "status", "code"),
    [
        (b"not json", 400, "bad_request"),
        (b"[1, 2]", 422, "validation_failed"),
        (b"null", 422, "validation_failed"),
    ],
)
async def test_a_body_that_is_not_an_object_is_a_4xx(client, employer, content, status, code):
    response = await client.post(
        "/functions/v1/matching",
        content=content,
        headers={**bearer(token_for(employer.owner)), "content-type": "application/json"},
    )
    assert (response.status_code, response.json()["error"]) == (status, code)
    assert set(response.json()) >= {"error", "message"}


@pytest.mark.parametrize("path", ["/functions/v1/matching", "/functions/v1/matching/roles"])
async def test_matching_needs_a_signed_in_user(client, path):
    body = {"role_id": str(uuid.uuid4())} if path.endswith("matching") else {}
    anon = await client.post(path, json=body, headers=bearer(api_key(SECRET, "anon")))
    assert (anon.status_code, anon.json()["error"]) == (403, "insufficient_role")
    nobody = await client.post(path, json=body)
    assert nobody.status_code == 401
    assert set(nobody.json()) >= {"error", "message"}


async def test_roles_for_a_user_without_a_profile_is_404(client, committed):
    response = await client.post(
        "/functions/v1/matching/roles", json={}, headers=bearer(token_for(make_user(committed)))
    )
    assert (response.status_code, response.json()["error"]) == (404, "executive_profile_not_found")


@pytest.mark.parametrize("body", [{"limit": 0}, {"limit": 101}, {"limit": "x"}, {"role_id": "x"}])
async def test_roles_for_an_executive_refuses_bad_input(client, committed, body):
    executive = make_executive(committed)
    response = await client.post(
        "/functions/v1/matching/roles", json=body, headers=bearer(token_for(executive))
    )
    assert (response.status_code, response.json()["error"]) == (422, "validation_failed")
