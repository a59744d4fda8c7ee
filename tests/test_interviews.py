"""The interview platform's data plane, tested as an attacker would: the RLS matrix of demo requests,
interviewers and their hours, interviews, notes and self-scheduling invitations (and the companies'
profile columns and soft delete) under every kind of caller, the booking and soft-delete functions, the
column grants, and the messages bad input gets.

Every statement runs through a `tests.support` actor (role and claims set locally, as PostgREST sets
them) inside the test's one rolled-back transaction, so now() is that transaction's start for the whole
test. The matrices run each caller's attempt in a savepoint of its own that is rolled back afterwards, so
every caller meets the same rows; a refusal is either an error (its SQLSTATE) or, where a `using` clause
hides the row, an update or delete that touches 0 rows, read back as the superuser to show nothing moved.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, LiteralString

import psycopg
import pytest

from tests.conftest import Database
from tests.support import (
    Company,
    User,
    actor,
    add_member,
    as_anon,
    as_user,
    make_company,
    make_user,
    value,
)

INSUFFICIENT_PRIVILEGE = "42501"  # a missing grant, or a row failing a policy's `with check`
CHECK_VIOLATION = "23514"
FOREIGN_KEY_VIOLATION = "23503"
INVALID_PARAMETER = "22023"
NOT_FOUND = "PT404"  # PostgREST answers 404
CONFLICT = "PT409"  # PostgREST answers 409
TOO_MANY = "PT429"  # PostgREST answers 429
OK = "ok"

ACTORS = (
    "anon",
    "candidate",
    "interviewer",
    "owner",
    "admin",
    "recruiter",
    "zeta_owner",
    "stranger",
    "platform_admin",
    "service",
)
ACME_STAFF = ("owner", "admin", "recruiter")
ACME_MEMBERS = (*ACME_STAFF, "interviewer")


@dataclass(frozen=True)
class World:
    owner: User  # Acme's four company roles
    admin: User
    recruiter: User
    interviewer: User  # linked to the interviewer `ivy`
    candidate: User  # member of nothing; the candidate of `upcoming`, `past_ivy` and `zeta_interview`
    zeta_owner: User  # owns Zeta, which none of the others belong to
    stranger: User  # signed in, member of nothing
    platform_admin: User  # user_roles 'admin'
    acme: Company
    zeta: Company
    ids: dict[str, str]  # the rows below by name
    starts_at: dt.datetime  # when `upcoming` starts

    def user(self, who: str) -> User | None:
        return None if who in ("anon", "service") else getattr(self, who)

    def named(self) -> dict[str, str]:
        """Every row's id by name, with the companies as `acme` and `zeta`."""
        return {**self.ids, "acme": self.acme.id, "zeta": self.zeta.id}

    def params(self, who: str = "anon") -> dict[str, Any]:
        """The named ids, `all` of them, `starts_at` (of `upcoming`) and the `caller`'s id."""
        named = self.named()
        user = self.user(who)
        return {**named, "all": list(named.values()), "starts_at": self.starts_at, "caller": user and user.id}

    def names(self, ids: Iterable[str]) -> set[str]:
        by_id = {row_id: name for name, row_id in self.named().items()}
        return {by_id[row_id] for row_id in ids}


@pytest.fixture
def world(conn: psycopg.Connection) -> World:
    return make_world(conn)


def add_interviewer(conn: psycopg.Connection, company: Company, name: str, user: User | None = None) -> str:
    """An interviewer free around the clock every day (in Berlin), eight interviews a day at most."""
    interviewer_id = value(
        conn,
        "insert into public.interviewers (company_id, user_id, display_name, time_zone, max_interviews_per_day)"
        " values (%s, %s, %s, 'Europe/Berlin', 8) returning id::text",
        (company.id, user and user.id, name),
    )
    conn.execute(
        "insert into public.interviewer_availability (interviewer_id, weekday, start_time, end_time)"
        " select %s, d, '00:00', '24:00' from generate_series(1, 7) d",
        (interviewer_id,),
    )
    return interviewer_id


def add_interview(
    conn: psycopg.Connection, company: Company, interviewer_id: str, since: str, candidate: User | None = None
) -> str:
    """An hour-long interview that started `since` ago, still scheduled (written as the superuser: the
    booking functions take no time in the past)."""
    return value(
        conn,
        "insert into public.interviews (company_id, interviewer_id, candidate_id, candidate_email, starts_at, ends_at)"
        " values (%s, %s, %s, %s, now() - %s::interval, now() - %s::interval + interval '1 hour')"
        " returning id::text",
        (company.id, interviewer_id, candidate and candidate.id, "past@example.com", since, since),
    )


def book(conn: psycopg.Connection, booker: User, interviewer_id: str, starts_at: Any, candidate: User) -> str:
    return as_user(conn, booker).one(
        "select id::text from public.book_interview(%s, %s, 60, %s, %s)",
        (interviewer_id, starts_at, candidate.email, candidate.id),
    )["id"]


def add_note(conn: psycopg.Connection, interview_id: str, author: User, body: str) -> str:
    return value(
        conn,
        "insert into public.interview_notes (interview_id, author_id, body) values (%s, %s, %s) returning id::text",
        (interview_id, author.id, body),
    )


def add_invitation(conn: psycopg.Connection, company: Company, interviewer_id: str, by: User) -> str:
    return value(
        conn,
        "insert into public.scheduling_invitations (company_id, candidate_email, interviewer_ids, created_by)"
        " values (%s, 'invited@example.com', array[%s]::uuid[], %s) returning id::text",
        (company.id, interviewer_id, by.id),
    )


def demo_email(company: Company) -> str:
    return f"dee-{company.id[:8]}@example.com"


def make_world(conn: psycopg.Connection) -> World:
    """Acme (its four roles) and Zeta (its owner), both booking with no notice, and these rows by name:
    interviewers `ivy` (linked to Acme's interviewer), `rex` (no account) and `zed` (Zeta's), each free
    around the clock, `ivy` and `zed` with a date override; interviews `upcoming` (ivy, the candidate, booked
    by the recruiter, two days ahead), `past_ivy` (ivy, the candidate, started two hours ago, not yet
    marked), `past_rex` (yesterday) and `zeta_interview` (zed, the candidate); notes `ivy_note` (the
    interviewer's, on upcoming), `recruiter_note` (on past_rex) and `zeta_note`; scheduling invitations
    `invitation` and `zeta_invitation`; and a demo request `demo`."""
    owner = make_user(conn, full_name="Olive Owner", roles=("employer",))
    acme = make_company(conn, owner, name="Acme")
    members = {}
    for role in ("admin", "recruiter", "interviewer"):
        members[role] = make_user(conn, full_name=f"Acme {role.title()}")
        add_member(conn, acme, members[role], role)
    zeta_owner = make_user(conn, full_name="Zed Zeta")
    zeta = make_company(conn, zeta_owner, name="Zeta")
    candidate = make_user(conn, full_name="Cara Candidate")
    conn.execute(
        "update public.companies set min_notice_minutes = 0 where id in (%s, %s)", (acme.id, zeta.id)
    )
    ids: dict[str, str] = {
        "ivy": add_interviewer(conn, acme, "Ivy", members["interviewer"]),
        "rex": add_interviewer(conn, acme, "Rex"),
        "zed": add_interviewer(conn, zeta, "Zed"),
    }
    starts_at = value(conn, "select date_trunc('hour', now()) + interval '2 days'")
    ids["upcoming"] = book(conn, members["recruiter"], ids["ivy"], starts_at, candidate)
    ids["past_ivy"] = add_interview(conn, acme, ids["ivy"], "2 hours", candidate)
    ids["past_rex"] = add_interview(conn, acme, ids["rex"], "1 day")
    ids["zeta_interview"] = book(conn, zeta_owner, ids["zed"], starts_at, candidate)
    ids["ivy_note"] = add_note(conn, ids["upcoming"], members["interviewer"], "Sharp on cash flow")
    ids["recruiter_note"] = add_note(conn, ids["past_rex"], members["recruiter"], "Salary expectations high")
    ids["zeta_note"] = add_note(conn, ids["zeta_interview"], zeta_owner, "Zeta's own view")
    ids["invitation"] = add_invitation(conn, acme, ids["ivy"], members["recruiter"])
    ids["zeta_invitation"] = add_invitation(conn, zeta, ids["zed"], zeta_owner)
    for interviewer_id in (ids["ivy"], ids["zed"]):
        conn.execute(
            "insert into public.interviewer_date_overrides (interviewer_id, date, start_time, end_time)"
            " values (%s, (now() + interval '10 days')::date, '09:00', '12:00')",
            (interviewer_id,),
        )
    ids["demo"] = value(
        conn,
        # An address of this world's own: a committed world (test_interviews_rest) must not meet the daily limit.
        "insert into public.demo_requests (name, email, company_name) values ('Dee', %s, 'Deco') returning id::text",
        (demo_email(acme),),
    )
    return World(
        owner=owner,
        admin=members["admin"],
        recruiter=members["recruiter"],
        interviewer=members["interviewer"],
        candidate=candidate,
        zeta_owner=zeta_owner,
        stranger=make_user(conn, full_name="Sam Stranger"),
        platform_admin=make_user(conn, full_name="Pat Platform", roles=("admin",)),
        acme=acme,
        zeta=zeta,
        ids=ids,
        starts_at=starts_at,
    )


# The matrices: every caller's attempt in a savepoint of its own, rolled back ------------------------------


def matrix(default: Any, **by_who: Any) -> dict[str, Any]:
    """An expected outcome per caller: `default` unless named."""
    assert set(by_who) <= set(ACTORS), set(by_who) - set(ACTORS)
    return {who: by_who.get(who, default) for who in ACTORS}


def each(names: Iterable[str], outcome: Any) -> dict[str, Any]:
    return dict.fromkeys(names, outcome)


def attempt(
    conn: psycopg.Connection,
    world: World,
    who: str,
    statement: LiteralString,
    *,
    setup: tuple[LiteralString, ...] = (),
    check: LiteralString | None = None,
) -> tuple[list[dict[str, Any]], int, Any] | str:
    """What `statement` gives `who` (rows, rows touched, and `check` read back as the superuser right
    after), or the SQLSTATE it is refused with; undone either way. `setup` runs first, as the superuser."""
    params = world.params(who)
    with conn.transaction(force_rollback=True):
        for step in setup:
            conn.execute(step, params)
        caller = actor(conn, world, who)
        try:
            rows = caller.rows(statement, params)
        except psycopg.Error as exc:
            return exc.sqlstate or repr(exc)
        checked = value(conn, check, params) if check else None
        return rows, caller.last_rowcount, checked


def outcomes(
    conn: psycopg.Connection, world: World, statement: LiteralString, **kwargs: Any
) -> dict[str, Any]:
    return {who: attempt(conn, world, who, statement, **kwargs) for who in ACTORS}


# select: who sees which rows -----------------------------------------------------------------------------

SELECTS: dict[str, LiteralString] = {
    "demo_requests": "select id::text as key from public.demo_requests where id = any(%(all)s::uuid[])",
    "interviewers": "select id::text as key from public.interviewers where id = any(%(all)s::uuid[])",
    # Hours are keyed by their interviewer's name.
    "interviewer_availability": "select distinct interviewer_id::text as key from public.interviewer_availability"
    " where interviewer_id = any(%(all)s::uuid[])",
    "interviewer_date_overrides": "select distinct interviewer_id::text as key"
    " from public.interviewer_date_overrides where interviewer_id = any(%(all)s::uuid[])",
    "interviews": "select id::text as key from public.interviews where id = any(%(all)s::uuid[])",
    "interview_notes": "select id::text as key from public.interview_notes where id = any(%(all)s::uuid[])",
    "scheduling_invitations": "select id::text as key from public.scheduling_invitations"
    " where id = any(%(all)s::uuid[])",
    "companies": "select id::text as key from public.companies where id = any(%(all)s::uuid[])",
}
ACME_INTERVIEWS = {"upcoming", "past_ivy", "past_rex"}
ALL_INTERVIEWS = {*ACME_INTERVIEWS, "zeta_interview"}
EVERY_INTERVIEWER = {"ivy", "rex", "zed"}


def seen(**by_who: set[str]) -> dict[str, Any]:
    """Nothing unless named; anon has no grant on any of these tables."""
    return matrix(set(), anon=INSUFFICIENT_PRIVILEGE, **by_who)


VISIBLE = {
    "demo_requests": seen(platform_admin={"demo"}, service={"demo"}),
    "interviewers": seen(
        **each(ACME_MEMBERS, {"ivy", "rex"}),
        zeta_owner={"zed"},
        platform_admin=EVERY_INTERVIEWER,
        service=EVERY_INTERVIEWER,
    ),
    "interviewer_availability": seen(
        **each(ACME_MEMBERS, {"ivy", "rex"}),
        zeta_owner={"zed"},
        platform_admin=EVERY_INTERVIEWER,
        service=EVERY_INTERVIEWER,
    ),
    "interviewer_date_overrides": seen(
        **each(ACME_MEMBERS, {"ivy"}),
        zeta_owner={"zed"},
        platform_admin={"ivy", "zed"},
        service={"ivy", "zed"},
    ),
    # The interviewer sees their own interviews, the candidate theirs (at both companies).
    "interviews": seen(
        **each(ACME_STAFF, ACME_INTERVIEWS),
        interviewer={"upcoming", "past_ivy"},
        candidate={"upcoming", "past_ivy", "zeta_interview"},
        zeta_owner={"zeta_interview"},
        platform_admin=ALL_INTERVIEWS,
        service=ALL_INTERVIEWS,
    ),
    # Never the candidate; the interviewer only their own interviews'; platform admins neither.
    "interview_notes": seen(
        **each(ACME_STAFF, {"ivy_note", "recruiter_note"}),
        interviewer={"ivy_note"},
        zeta_owner={"zeta_note"},
        service={"ivy_note", "recruiter_note", "zeta_note"},
    ),
    "scheduling_invitations": seen(
        **each(ACME_STAFF, {"invitation"}),
        zeta_owner={"zeta_invitation"},
        platform_admin={"invitation", "zeta_invitation"},
        service={"invitation", "zeta_invitation"},
    ),
    "companies": seen(
        **each(ACME_MEMBERS, {"acme"}),
        zeta_owner={"zeta"},
        platform_admin={"acme", "zeta"},
        service={"acme", "zeta"},
    ),
}


@pytest.mark.parametrize("table", SELECTS)
def test_select_matrix(conn, world, table):
    found = {
        who: result if isinstance(result, str) else world.names(row["key"] for row in result[0])
        for who, result in outcomes(conn, world, SELECTS[table]).items()
    }
    assert found == VISIBLE[table]


def test_candidates_read_their_interview_but_never_its_notes(conn, world):
    candidate = as_user(conn, world.candidate)
    interview = candidate.one(
        "select candidate_email, meeting_link, status::text from public.interviews where id = %s",
        (world.ids["upcoming"],),
    )
    assert interview == {
        "candidate_email": world.candidate.email,
        "meeting_link": None,
        "status": "scheduled",
    }
    # Not by id, not through a join from the interview they may read, not by counting.
    assert (
        candidate.rows(
            "select * from public.interview_notes where interview_id = %s", (world.ids["upcoming"],)
        )
        == []
    )
    assert (
        candidate.rows(
            "select n.body from public.interviews x join public.interview_notes n on n.interview_id = x.id"
        )
        == []
    )
    assert candidate.one("select count(*) from public.interview_notes") == {"count": 0}
    assert (
        value(
            conn,
            "select count(*) from public.interview_notes where interview_id = %s",
            (world.ids["upcoming"],),
        )
        == 1
    )


# insert ... returning --------------------------------------------------------------------------------


def written(result: tuple[list[dict[str, Any]], int, Any] | str) -> str:
    if isinstance(result, str):
        return result
    rows, _, checked = result
    # One row back, and (where there is a check) the row as the caller should have written it.
    return OK if len(rows) == 1 and checked in (None, True) else f"unexpected: {result}"


def inserted(**by_who: str) -> dict[str, Any]:
    """Refused unless named: no grant for anon, a failed `with check` for signed-in users."""
    return matrix(INSUFFICIENT_PRIVILEGE, **by_who)


INSERTS: dict[str, tuple[LiteralString, dict[str, Any]]] = {
    "demo_requests-returning": (
        # Anyone may send one, but only platform admins may read one back.
        "insert into public.demo_requests (name, email, company_name) values ('Ada', 'ada@example.com', 'AE')"
        " returning id",
        inserted(platform_admin=OK, service=OK),
    ),
    "interviewers": (
        "insert into public.interviewers (company_id, display_name, time_zone) values (%(acme)s, 'New', 'UTC')"
        " returning id",
        inserted(owner=OK, admin=OK, service=OK),
    ),
    "interviewer_availability": (
        "insert into public.interviewer_availability (interviewer_id, weekday, start_time, end_time)"
        " values (%(ivy)s, 1, '18:00', '19:00') returning id",
        inserted(owner=OK, admin=OK, interviewer=OK, service=OK),
    ),
    "interviewer_availability-of-rex": (
        "insert into public.interviewer_availability (interviewer_id, weekday, start_time, end_time)"
        " values (%(rex)s, 1, '18:00', '19:00') returning id",
        inserted(owner=OK, admin=OK, service=OK),
    ),
    "interviewer_date_overrides": (
        "insert into public.interviewer_date_overrides (interviewer_id, date) values (%(ivy)s, '2030-01-01')"
        " returning id",
        inserted(owner=OK, admin=OK, interviewer=OK, service=OK),
    ),
    "interviews": (
        # Only the booking functions write interviews.
        "insert into public.interviews (company_id, interviewer_id, candidate_email, starts_at, ends_at)"
        " values (%(acme)s, %(ivy)s, 'x@example.com', %(starts_at)s::timestamptz + interval '1 day',"
        " %(starts_at)s::timestamptz + interval '25 hours') returning id",
        inserted(service=OK),
    ),
    "interview_notes": (
        "insert into public.interview_notes (interview_id, body) values (%(upcoming)s, 'Good')"
        " returning id, author_id",
        inserted(**each(ACME_MEMBERS, OK), service=OK),
    ),
    "interview_notes-not-your-interview": (
        "insert into public.interview_notes (interview_id, body) values (%(past_rex)s, 'Good') returning id",
        inserted(**each(ACME_STAFF, OK), service=OK),
    ),
    "scheduling_invitations": (
        "insert into public.scheduling_invitations (company_id, candidate_email, interviewer_ids)"
        " values (%(acme)s, 'new@example.com', array[%(ivy)s]::uuid[]) returning id",
        inserted(**each(ACME_STAFF, OK), service=OK),
    ),
}
# Read back as the superuser: a note's author is the caller, whatever they could have sent.
INSERT_CHECKS: dict[str, LiteralString] = {
    "interview_notes": "select author_id is not distinct from %(caller)s::uuid from public.interview_notes"
    " where body = 'Good'",
    "scheduling_invitations": "select created_by is not distinct from %(caller)s::uuid"
    " from public.scheduling_invitations where candidate_email = 'new@example.com'",
}


@pytest.mark.parametrize("case", INSERTS)
def test_insert_returning_matrix(conn, world, case):
    statement, expected = INSERTS[case]
    found = {
        who: written(result)
        for who, result in outcomes(conn, world, statement, check=INSERT_CHECKS.get(case)).items()
    }
    assert found == expected


def test_demo_requests_anyone_sends_one_without_reading_it_back(conn, world):
    # No `returning`: PostgREST's return=minimal. Every caller's request is written.
    statement: LiteralString = (
        "insert into public.demo_requests (name, email, company_name) values ('Ada', 'ada@example.com', 'AE')"
    )
    check: LiteralString = "select count(*) = 1 from public.demo_requests where email = 'ada@example.com'"
    found = {
        who: result if isinstance(result, str) else (result[1], result[2])
        for who, result in outcomes(conn, world, statement, check=check).items()
    }
    assert found == matrix((1, True))


# update: rows touched, and whether the row changed ---------------------------------------------------------


def changed(**by_who: Any) -> dict[str, Any]:
    """Hidden rows are not touched (0 rows, unchanged) unless named; anon has no grant."""
    return matrix((0, False), anon=INSUFFICIENT_PRIVILEGE, **by_who)


UPDATES: dict[str, tuple[LiteralString, LiteralString, dict[str, Any]]] = {
    "demo_requests": (
        "update public.demo_requests set status = 'contacted' where id = %(demo)s",
        "select status = 'contacted' from public.demo_requests where id = %(demo)s",
        changed(platform_admin=(1, True), service=(1, True)),
    ),
    "interviewers": (
        "update public.interviewers set display_name = 'Renamed' where id = %(ivy)s",
        "select display_name = 'Renamed' from public.interviewers where id = %(ivy)s",
        changed(owner=(1, True), admin=(1, True), service=(1, True)),
    ),
    "interviewer_availability": (
        "update public.interviewer_availability set end_time = '23:00' where interviewer_id = %(ivy)s and weekday = 1",
        "select end_time = '23:00' from public.interviewer_availability where interviewer_id = %(ivy)s and weekday = 1",
        changed(owner=(1, True), admin=(1, True), interviewer=(1, True), service=(1, True)),
    ),
    "interviewer_date_overrides": (
        "update public.interviewer_date_overrides set start_time = '10:00' where interviewer_id = %(ivy)s",
        "select start_time = '10:00' from public.interviewer_date_overrides where interviewer_id = %(ivy)s",
        changed(owner=(1, True), admin=(1, True), interviewer=(1, True), service=(1, True)),
    ),
    "interviews-meeting_link": (
        "update public.interviews set meeting_link = 'https://meet.example/x' where id = %(upcoming)s",
        "select meeting_link is not null from public.interviews where id = %(upcoming)s",
        changed(**each(ACME_MEMBERS, (1, True)), service=(1, True)),
    ),
    "interview_notes": (
        # Only its author edits a note, not even the author's colleagues.
        "update public.interview_notes set body = 'Edited' where id = %(ivy_note)s",
        "select body = 'Edited' from public.interview_notes where id = %(ivy_note)s",
        changed(interviewer=(1, True), service=(1, True)),
    ),
    "scheduling_invitations": (
        # No update grant at all: an invitation is withdrawn and sent anew.
        "update public.scheduling_invitations set candidate_name = 'X' where id = %(invitation)s",
        "select candidate_name = 'X' from public.scheduling_invitations where id = %(invitation)s",
        matrix(INSUFFICIENT_PRIVILEGE, service=(1, True)),
    ),
    "companies-profile": (
        "update public.companies set description = 'Ours', industry = 'Fintech', address = '1 Main St'"
        " where id = %(acme)s",
        "select description = 'Ours' from public.companies where id = %(acme)s",
        changed(owner=(1, True), admin=(1, True), service=(1, True)),
    ),
    "companies-scheduling": (
        "update public.companies set min_notice_minutes = 60, buffer_before_minutes = 15 where id = %(acme)s",
        "select min_notice_minutes = 60 from public.companies where id = %(acme)s",
        changed(owner=(1, True), admin=(1, True), service=(1, True)),
    ),
}


@pytest.mark.parametrize("case", UPDATES)
def test_update_matrix(conn, world, case):
    statement, check, expected = UPDATES[case]
    found = {
        who: result if isinstance(result, str) else (result[1], result[2])
        for who, result in outcomes(conn, world, statement, check=check).items()
    }
    assert found == expected


# delete: rows touched, and whether the row is gone ----------------------------------------------------------

DELETES: dict[str, tuple[LiteralString, LiteralString, dict[str, Any]]] = {
    "demo_requests": (
        "delete from public.demo_requests where id = %(demo)s",
        "select not exists (select 1 from public.demo_requests where id = %(demo)s)",
        matrix(INSUFFICIENT_PRIVILEGE, service=(1, True)),
    ),
    "interviewers": (
        # Retired softly (delete_interviewer); the service role's hard delete meets the history it has.
        "delete from public.interviewers where id = %(rex)s",
        "select not exists (select 1 from public.interviewers where id = %(rex)s)",
        matrix(INSUFFICIENT_PRIVILEGE, service=FOREIGN_KEY_VIOLATION),
    ),
    "interviewer_availability": (
        "delete from public.interviewer_availability where interviewer_id = %(ivy)s and weekday = 1",
        "select not exists (select 1 from public.interviewer_availability where interviewer_id = %(ivy)s"
        " and weekday = 1)",
        changed(owner=(1, True), admin=(1, True), interviewer=(1, True), service=(1, True)),
    ),
    "interviewer_date_overrides": (
        "delete from public.interviewer_date_overrides where interviewer_id = %(ivy)s",
        "select not exists (select 1 from public.interviewer_date_overrides where interviewer_id = %(ivy)s)",
        changed(owner=(1, True), admin=(1, True), interviewer=(1, True), service=(1, True)),
    ),
    "interviews": (
        "delete from public.interviews where id = %(past_rex)s",
        "select not exists (select 1 from public.interviews where id = %(past_rex)s)",
        matrix(INSUFFICIENT_PRIVILEGE, service=(1, True)),
    ),
    "interview_notes": (
        "delete from public.interview_notes where id = %(ivy_note)s",
        "select not exists (select 1 from public.interview_notes where id = %(ivy_note)s)",
        changed(interviewer=(1, True), service=(1, True)),
    ),
    "scheduling_invitations": (
        "delete from public.scheduling_invitations where id = %(invitation)s",
        "select not exists (select 1 from public.scheduling_invitations where id = %(invitation)s)",
        changed(**each(ACME_STAFF, (1, True)), service=(1, True)),
    ),
    "companies": (
        # Deleted softly (delete_company) by users; hard deletes are the service role's (erasure).
        "delete from public.companies where id = %(zeta)s",
        "select not exists (select 1 from public.companies where id = %(zeta)s)",
        matrix(INSUFFICIENT_PRIVILEGE, service=(1, True)),
    ),
}


@pytest.mark.parametrize("case", DELETES)
def test_delete_matrix(conn, world, case):
    statement, check, expected = DELETES[case]
    found = {
        who: result if isinstance(result, str) else (result[1], result[2])
        for who, result in outcomes(conn, world, statement, check=check).items()
    }
    assert found == expected


# Column grants: what a caller allowed to write a row may not write in it ------------------------------------


def written_column(argument: str) -> str:
    """A test id: the caller as is, a statement as `table.column` (the last column an insert names)."""
    update = re.match(r"update public\.(\w+) set (\w+)", argument)
    insert = re.match(r"insert into public\.(\w+) \(.*?(\w+)\)", argument)
    found = update or insert
    return f"{found[1]}.{found[2]}" if found else argument


@pytest.mark.parametrize(
    ("who", "statement"),
    [
        # Times and status move only through the booking functions, never directly.
        (
            "recruiter",
            "update public.interviews set starts_at = starts_at + interval '1 hour' where id = %(upcoming)s",
        ),
        (
            "recruiter",
            "update public.interviews set ends_at = ends_at + interval '1 hour' where id = %(upcoming)s",
        ),
        ("recruiter", "update public.interviews set status = 'completed' where id = %(upcoming)s"),
        ("owner", "update public.interviews set status = 'cancelled' where id = %(upcoming)s"),
        ("interviewer", "update public.interviews set status = 'no_show' where id = %(past_ivy)s"),
        ("recruiter", "update public.interviews set interviewer_id = %(rex)s where id = %(upcoming)s"),
        (
            "recruiter",
            "update public.interviews set candidate_email = 'x@example.com' where id = %(upcoming)s",
        ),
        ("recruiter", "update public.interviews set company_id = %(zeta)s where id = %(upcoming)s"),
        ("recruiter", "update public.interviews set reminded_at = now() where id = %(upcoming)s"),
        ("owner", "update public.interviewers set deleted_at = now() where id = %(rex)s"),
        ("owner", "update public.interviewers set company_id = %(zeta)s where id = %(rex)s"),
        (
            "owner",
            "insert into public.interviewers (company_id, display_name, time_zone, deleted_at)"
            " values (%(acme)s, 'Ghost', 'UTC', now())",
        ),
        (
            "interviewer",
            "update public.interviewer_availability set interviewer_id = %(rex)s where interviewer_id = %(ivy)s",
        ),
        ("interviewer", "update public.interviewer_date_overrides set interviewer_id = %(rex)s"),
        ("owner", "update public.companies set deleted_at = now() where id = %(acme)s"),
        ("owner", "update public.companies set deleted_by = null where id = %(acme)s"),
        ("owner", "update public.companies set verified_at = now() where id = %(acme)s"),
        (
            "interviewer",
            "update public.interview_notes set author_id = %(recruiter_user)s where id = %(ivy_note)s",
        ),
        (
            "interviewer",
            "insert into public.interview_notes (interview_id, body, author_id)"
            " values (%(upcoming)s, 'As someone else', %(recruiter_user)s)",
        ),
        (
            "recruiter",
            "insert into public.scheduling_invitations (company_id, candidate_email, interviewer_ids, created_by)"
            " values (%(acme)s, 'x@example.com', array[%(ivy)s]::uuid[], %(owner_user)s)",
        ),
        (
            "recruiter",
            "insert into public.scheduling_invitations (company_id, candidate_email, interviewer_ids, expires_at)"
            " values (%(acme)s, 'x@example.com', array[%(ivy)s]::uuid[], 'infinity')",
        ),
        (
            "anon",
            "insert into public.demo_requests (name, email, company_name, status)"
            " values ('A', 'a@example.com', 'B', 'qualified')",
        ),
        (
            "anon",
            "insert into public.demo_requests (name, email, company_name, client_address)"
            " values ('A', 'a@example.com', 'B', '10.9.9.9')",
        ),
        ("platform_admin", "update public.demo_requests set handled_by = %(owner_user)s where id = %(demo)s"),
        ("platform_admin", "update public.demo_requests set email = 'x@example.com' where id = %(demo)s"),
    ],
    ids=written_column,
)
def test_column_grants_refuse_the_columns_nobody_writes(conn, world, who, statement):
    params = {**world.params(who), "recruiter_user": world.recruiter.id, "owner_user": world.owner.id}
    actor(conn, world, who).refused(statement, params, sqlstate=INSUFFICIENT_PRIVILEGE)


def test_interviews_staff_and_the_interviewer_change_only_the_meeting_link(conn, world):
    upcoming = world.ids["upcoming"]
    recruiter = as_user(conn, world.recruiter)
    row = recruiter.one(
        "update public.interviews set meeting_link = 'https://meet.example/abc' where id = %s"
        " returning meeting_link, starts_at, status::text",
        (upcoming,),
    )
    assert row == {
        "meeting_link": "https://meet.example/abc",
        "starts_at": world.starts_at,
        "status": "scheduled",
    }
    error = recruiter.refused(
        "update public.interviews set meeting_link = 'javascript:alert(1)' where id = %s",
        (upcoming,),
        sqlstate=CHECK_VIOLATION,
    )
    assert error.diag.message_primary == "meeting_link: an https:// URL"
    # The candidate reads the link but cannot change it.
    candidate = as_user(conn, world.candidate)
    assert (
        candidate.count(
            "update public.interviews set meeting_link = 'https://evil.example' where id = %s", (upcoming,)
        )
        == 0
    )
    assert (
        value(conn, "select meeting_link from public.interviews where id = %s", (upcoming,))
        == "https://meet.example/abc"
    )


# The functions: who may call them ---------------------------------------------------------------------------


def called(result: tuple[list[dict[str, Any]], int, Any] | str) -> str:
    if isinstance(result, str):
        return result
    rows, _, checked = result
    # It answered, and did what it says (read back as the superuser).
    return OK if rows and checked else f"unexpected: {result}"


def calls(ok: Iterable[str], refused: str = NOT_FOUND) -> dict[str, Any]:
    """`ok` may call it; other users are refused with `refused` (404: a row they may not touch and one that
    does not exist answer alike); anon and the service role (no user) may not execute it at all."""
    return matrix(refused, anon=INSUFFICIENT_PRIVILEGE, service=INSUFFICIENT_PRIVILEGE, **each(ok, OK))


CANCEL_UPCOMING: LiteralString = "update public.interviews set status = 'cancelled' where id = %(upcoming)s"
FUNCTIONS: dict[str, tuple[tuple[LiteralString, ...], LiteralString, LiteralString, dict[str, Any]]] = {
    # name: (setup as the superuser, the call, what must hold afterwards, who may)
    "book_interview": (
        (),
        "select * from public.book_interview(%(ivy)s, %(starts_at)s::timestamptz + interval '1 day', 60,"
        " 'new@example.com')",
        "select booked_by = %(caller)s::uuid and status = 'scheduled' from public.interviews"
        " where candidate_email = 'new@example.com'",
        calls(ACME_STAFF),
    ),
    "book_interview-another-companys-interviewer": (
        (),
        "select * from public.book_interview(%(zed)s, %(starts_at)s::timestamptz + interval '1 day', 60,"
        " 'new@example.com')",
        "select booked_by = %(caller)s::uuid from public.interviews where candidate_email = 'new@example.com'",
        calls(["zeta_owner"]),
    ),
    "reschedule_interview": (
        (),
        "select * from public.reschedule_interview(%(upcoming)s, %(starts_at)s::timestamptz + interval '3 hours')",
        "select sequence = 1 and starts_at = %(starts_at)s::timestamptz + interval '3 hours'"
        " from public.interviews where id = %(upcoming)s",
        calls(ACME_STAFF),
    ),
    "cancel_interview": (
        (),
        "select * from public.cancel_interview(%(upcoming)s, 'Role filled')",
        "select status = 'cancelled' and cancelled_by = %(caller)s::uuid and cancel_reason = 'Role filled'"
        " from public.interviews where id = %(upcoming)s",
        calls([*ACME_MEMBERS, "candidate"]),
    ),
    "record_interview_outcome": (
        (),
        "select * from public.record_interview_outcome(%(past_ivy)s, 'no_show')",
        "select status = 'no_show' from public.interviews where id = %(past_ivy)s",
        calls(ACME_MEMBERS),
    ),
    "delete_interviewer": (
        (),
        "select * from public.delete_interviewer(%(rex)s)",
        "select deleted_at is not null from public.interviewers where id = %(rex)s",
        calls(["owner", "admin", "platform_admin"]),
    ),
    "restore_interviewer": (
        ("update public.interviewers set deleted_at = now() where id = %(rex)s",),
        "select * from public.restore_interviewer(%(rex)s)",
        "select deleted_at is null from public.interviewers where id = %(rex)s",
        calls(["owner", "admin", "platform_admin"]),
    ),
    "delete_company": (
        # With no upcoming interview left to keep it.
        (CANCEL_UPCOMING,),
        "select public.delete_company(%(acme)s)",
        "select deleted_at is not null and deleted_by = %(caller)s::uuid from public.companies where id = %(acme)s",
        calls(["owner"]),
    ),
    "restore_company": (
        (
            CANCEL_UPCOMING,
            "update public.companies set deleted_at = now(), deleted_by = created_by where id = %(acme)s",
        ),
        "select * from public.restore_company(%(acme)s)",
        "select deleted_at is null and deleted_by is null from public.companies where id = %(acme)s",
        calls(["platform_admin"], refused=INSUFFICIENT_PRIVILEGE),
    ),
    "available_slots": (
        (),
        "select * from public.available_slots(%(ivy)s, now(), now() + interval '1 day', 60)",
        "select true",
        calls([*ACME_MEMBERS, "platform_admin"]),
    ),
    "available_slots-of-another-interviewer": (
        # The interviewer sees their own free time, not a colleague's.
        (),
        "select * from public.available_slots(%(rex)s, now(), now() + interval '1 day', 60)",
        "select true",
        calls([*ACME_STAFF, "platform_admin"]),
    ),
}


@pytest.mark.parametrize("case", FUNCTIONS)
def test_function_matrix(conn, world, case):
    setup, statement, check, expected = FUNCTIONS[case]
    found = {
        who: called(result)
        for who, result in outcomes(conn, world, statement, setup=setup, check=check).items()
    }
    assert found == expected


# What the functions refuse, and why -------------------------------------------------------------------------


def test_booking_refusals_name_the_reason(conn, world):
    recruiter = as_user(conn, world.recruiter)
    taken = recruiter.refused(
        "select * from public.book_interview(%s, %s::timestamptz + interval '30 minutes', 60, 'x@example.com')",
        (world.ids["ivy"], world.starts_at),
        sqlstate=CONFLICT,
    )
    assert taken.diag.message_primary == (
        "that slot cannot be booked: the interviewer has another interview then (buffers included)"
    )
    # Handing an interview to another company's interviewer.
    moved = recruiter.refused(
        "select * from public.reschedule_interview(%s, %s, null, %s)",
        (world.ids["upcoming"], world.starts_at, world.ids["zed"]),
        sqlstate=INVALID_PARAMETER,
    )
    assert moved.diag.message_primary == "interviewer_id: not one of this company's interviewers"
    early = recruiter.refused(
        "select * from public.record_interview_outcome(%s, 'completed')",
        (world.ids["upcoming"],),
        sqlstate=CONFLICT,
    )
    assert early.diag.message_primary == "this interview has not started yet"
    recruiter.one("select * from public.cancel_interview(%s)", (world.ids["upcoming"],))
    again = as_user(conn, world.candidate).refused(
        "select * from public.cancel_interview(%s)", (world.ids["upcoming"],), sqlstate=CONFLICT
    )
    assert again.diag.message_primary == "this interview is cancelled and can no longer change"


# Soft delete: companies ------------------------------------------------------------------------------------

ACME_ROWS = {
    "acme",
    "ivy",
    "rex",
    "upcoming",
    "past_ivy",
    "past_rex",
    "ivy_note",
    "recruiter_note",
    "invitation",
}


def acme_rows_seen(conn: psycopg.Connection, world: World, who: str) -> dict[str, set[str]]:
    """Acme's rows `who` sees, per table (hours by their interviewer's name)."""
    seen_by_table = {}
    for table, query in SELECTS.items():
        rows = actor(conn, world, who).rows(query, world.params(who))
        seen_by_table[table] = world.names(row["key"] for row in rows) & ACME_ROWS
    return seen_by_table


def invitation_token(conn: psycopg.Connection, invitation_id: str) -> str:
    return value(
        conn,
        "select context ->> 'token' from private.outbox where idempotency_key = %s",
        (f"scheduling_invitation:{invitation_id}",),
    )


def test_a_company_with_an_upcoming_interview_is_not_deleted(conn, world):
    owner = as_user(conn, world.owner)
    refused = owner.refused("select public.delete_company(%s)", (world.acme.id,), sqlstate=CONFLICT)
    assert refused.diag.message_primary == "this company has upcoming interviews: cancel them first"
    # One under way counts too; one that ended (past_ivy, never marked) does not.
    as_user(conn, world.recruiter).one("select * from public.cancel_interview(%s)", (world.ids["upcoming"],))
    under_way = add_interview(conn, world.acme, world.ids["rex"], "30 minutes")
    owner.refused("select public.delete_company(%s)", (world.acme.id,), sqlstate=CONFLICT)
    conn.execute("update public.interviews set status = 'completed' where id = %s", (under_way,))
    owner.rows("select public.delete_company(%s)", (world.acme.id,))
    assert value(conn, "select deleted_at is not null from public.companies where id = %s", (world.acme.id,))


def test_a_deleted_company_vanishes_for_its_members_and_stays_for_platform_admins(conn, world):
    before = {who: acme_rows_seen(conn, world, who) for who in (*ACME_MEMBERS, "platform_admin")}
    assert before["recruiter"]["interviews"] == {"upcoming", "past_ivy", "past_rex"}
    token = invitation_token(conn, world.ids["invitation"])
    anon = as_anon(conn)
    assert anon.one("select company_name from public.scheduling_invitation(%s)", (token,)) == {
        "company_name": "Acme"
    }
    as_user(conn, world.recruiter).one("select * from public.cancel_interview(%s)", (world.ids["upcoming"],))
    as_user(conn, world.owner).rows("select public.delete_company(%s)", (world.acme.id,))

    nothing: dict[str, set[str]] = {table: set() for table in SELECTS}
    for who in ACME_MEMBERS:
        assert acme_rows_seen(conn, world, who) == nothing, who
    assert acme_rows_seen(conn, world, "platform_admin") == before["platform_admin"]
    # The rows are all still there, the company marked.
    assert (
        value(
            conn,
            "select deleted_by::text from public.companies where id = %s and deleted_at is not null",
            (world.acme.id,),
        )
        == world.owner.id
    )
    assert value(conn, "select count(*) from public.interviews where company_id = %s", (world.acme.id,)) == 3
    assert (
        value(conn, "select count(*) from public.interviewers where company_id = %s", (world.acme.id,)) == 2
    )
    assert (
        value(
            conn, "select count(*) from public.scheduling_invitations where company_id = %s", (world.acme.id,)
        )
        == 1
    )
    # Nothing works for its former members, nor for the invited candidate.
    owner, admin, recruiter = (as_user(conn, getattr(world, who)) for who in ACME_STAFF)
    assert (
        owner.count("update public.companies set description = 'Back' where id = %s", (world.acme.id,)) == 0
    )
    owner.refused("select public.delete_company(%s)", (world.acme.id,), sqlstate=NOT_FOUND)
    owner.refused(
        "select * from public.restore_company(%s)", (world.acme.id,), sqlstate=INSUFFICIENT_PRIVILEGE
    )
    recruiter.refused(
        "select * from public.book_interview(%s, %s, 60, 'x@example.com')",
        (world.ids["rex"], world.starts_at),
        sqlstate=NOT_FOUND,
    )
    admin.refused(
        "insert into public.interviewers (company_id, display_name, time_zone) values (%s, 'New', 'UTC')",
        (world.acme.id,),
        sqlstate=INSUFFICIENT_PRIVILEGE,
    )
    as_user(conn, world.interviewer).refused(
        "insert into public.interviewer_availability (interviewer_id, weekday, start_time, end_time)"
        " values (%s, 1, '08:00', '09:00')",
        (world.ids["ivy"],),
        sqlstate=INSUFFICIENT_PRIVILEGE,
    )
    anon.refused("select * from public.scheduling_invitation(%s)", (token,), sqlstate=NOT_FOUND)

    restored = as_user(conn, world.platform_admin).one(
        "select deleted_at, deleted_by from public.restore_company(%s)", (world.acme.id,)
    )
    assert restored == {"deleted_at": None, "deleted_by": None}
    for who in ACME_MEMBERS:
        assert acme_rows_seen(conn, world, who) == before[who], who
    assert anon.one("select company_name from public.scheduling_invitation(%s)", (token,)) == {
        "company_name": "Acme"
    }


# Soft delete: interviewers ---------------------------------------------------------------------------------


def interviewers_seen(conn: psycopg.Connection, world: World, who: str) -> set[str]:
    rows = actor(conn, world, who).rows(SELECTS["interviewers"], world.params(who))
    return world.names(row["key"] for row in rows) & {"ivy", "rex"}


def test_an_interviewer_with_upcoming_interviews_is_not_retired(conn, world):
    refused = as_user(conn, world.owner).refused(
        "select * from public.delete_interviewer(%s)", (world.ids["ivy"],), sqlstate=CONFLICT
    )
    assert (
        refused.diag.message_primary == "this interviewer has upcoming interviews: move or cancel them first"
    )
    assert value(
        conn, "select deleted_at is null from public.interviewers where id = %s", (world.ids["ivy"],)
    )


def test_a_retired_interviewer_leaves_members_lists_and_keeps_their_history(conn, world):
    rex, past_rex = world.ids["rex"], world.ids["past_rex"]
    retired = as_user(conn, world.admin).one("select deleted_at from public.delete_interviewer(%s)", (rex,))
    assert retired["deleted_at"] is not None
    # Gone for recruiters and interviewers; owners, admins and platform admins may still restore them.
    assert {who: interviewers_seen(conn, world, who) for who in (*ACME_MEMBERS, "platform_admin")} == {
        "owner": {"ivy", "rex"},
        "admin": {"ivy", "rex"},
        "recruiter": {"ivy"},
        "interviewer": {"ivy"},
        "platform_admin": {"ivy", "rex"},
    }
    # Their hours go with them (seen by whoever sees the interviewer).
    hours = "select count(*) as n from public.interviewer_availability where interviewer_id = %s"
    assert {
        who: actor(conn, world, who).one(hours, (rex,))["n"] > 0 for who in (*ACME_MEMBERS, "platform_admin")
    } == {"owner": True, "admin": True, "recruiter": False, "interviewer": False, "platform_admin": True}
    recruiter, owner = as_user(conn, world.recruiter), as_user(conn, world.owner)
    # Their past interview keeps them.
    assert recruiter.one("select interviewer_id::text from public.interviews where id = %s", (past_rex,)) == {
        "interviewer_id": rex
    }
    # A retired interviewer takes no bookings, no edits, no hours, no invitations, and has no free time.
    recruiter.refused(
        "select * from public.book_interview(%s, %s, 60, 'x@example.com')",
        (rex, world.starts_at),
        sqlstate=NOT_FOUND,
    )
    assert owner.count("update public.interviewers set display_name = 'Rex II' where id = %s", (rex,)) == 0
    owner.refused(
        "insert into public.interviewer_availability (interviewer_id, weekday, start_time, end_time)"
        " values (%s, 1, '08:00', '09:00')",
        (rex,),
        sqlstate=INSUFFICIENT_PRIVILEGE,
    )
    invited = recruiter.refused(
        "insert into public.scheduling_invitations (company_id, candidate_email, interviewer_ids)"
        " values (%s, 'x@example.com', array[%s]::uuid[])",
        (world.acme.id, rex),
        sqlstate=CHECK_VIOLATION,
    )
    assert (
        invited.diag.message_primary
        == "interviewer_ids: every one must be a current interviewer of this company"
    )
    assert (
        owner.rows("select * from public.available_slots(%s, now(), now() + interval '1 day')", (rex,)) == []
    )

    as_user(conn, world.owner).one("select id from public.restore_interviewer(%s)", (rex,))
    assert interviewers_seen(conn, world, "recruiter") == {"ivy", "rex"}
    assert recruiter.one(
        "select interviewer_id::text from public.book_interview(%s, %s, 60, 'x@example.com')",
        (rex, world.starts_at),
    ) == {"interviewer_id": rex}


# Bad input on table writes: our message, SQLSTATE 23514 (HTTP 400 through PostgREST) ----------------------


# SQL bug: the override check is `(no times) or (end_time > start_time and ...)`; with one time NULL the
# second half is NULL, so the whole check is NULL and private.require passes it (NULL passes a check).
@pytest.mark.parametrize(
    ("who", "statement", "message"),
    [
        pytest.param(
            "owner",
            "insert into public.interviewers (company_id, display_name, time_zone) values (%(acme)s, 'Ivy', 'Mars/Base')",
            "time_zone: an IANA time zone name such as Europe/Berlin",
            id="unknown-time-zone",
        ),
        pytest.param(
            "admin",
            "update public.interviewers set time_zone = 'Not/AZone' where id = %(ivy)s",
            "time_zone: an IANA time zone name such as Europe/Berlin",
            id="unknown-time-zone-update",
        ),
        pytest.param(
            "owner",
            "insert into public.interviewers (company_id, display_name, time_zone) values (%(acme)s, '   ', 'UTC')",
            "display_name: 1 to 200 characters",
            id="blank-name",
        ),
        pytest.param(
            "owner",
            "insert into public.interviewers (company_id, display_name, time_zone, email)"
            " values (%(acme)s, 'Ivy', 'UTC', 'ivy at example')",
            "email: an email address such as ada@example.com",
            id="bad-email",
        ),
        pytest.param(
            "owner",
            "insert into public.interviewers (company_id, display_name, time_zone, max_interviews_per_day)"
            " values (%(acme)s, 'Ivy', 'UTC', 0)",
            "max_interviews_per_day: 1 to 24",
            id="no-interviews-a-day",
        ),
        pytest.param(
            "owner",
            "update public.interviewers set user_id = %(stranger_user)s where id = %(rex)s",
            "user_id: only a member of the company can be linked to its interviewer",
            id="link-a-non-member",
        ),
        pytest.param(
            "interviewer",
            "insert into public.interviewer_availability (interviewer_id, weekday, start_time, end_time)"
            " values (%(ivy)s, 1, '17:00', '09:00')",
            "end_time must be after start_time, both on whole minutes (24:00 ends a day)",
            id="end-before-start",
        ),
        pytest.param(
            "interviewer",
            "update public.interviewer_availability set end_time = start_time where interviewer_id = %(ivy)s",
            "end_time must be after start_time, both on whole minutes (24:00 ends a day)",
            id="empty-hours-update",
        ),
        pytest.param(
            "owner",
            "insert into public.interviewer_availability (interviewer_id, weekday, start_time, end_time)"
            " values (%(ivy)s, 1, '09:00:30', '17:00')",
            "end_time must be after start_time, both on whole minutes (24:00 ends a day)",
            id="not-a-whole-minute",
        ),
        pytest.param(
            "owner",
            "insert into public.interviewer_availability (interviewer_id, weekday, start_time, end_time)"
            " values (%(ivy)s, 8, '09:00', '17:00')",
            "weekday: 1 (Monday) to 7 (Sunday)",
            id="weekday-8",
        ),
        pytest.param(
            "owner",
            "insert into public.interviewer_availability (interviewer_id, weekday, start_time, end_time)"
            " values (%(ivy)s, 0, '09:00', '17:00')",
            "weekday: 1 (Monday) to 7 (Sunday)",
            id="weekday-0",
        ),
        pytest.param(
            "interviewer",
            "insert into public.interviewer_date_overrides (interviewer_id, date, start_time)"
            " values (%(ivy)s, '2030-01-01', '09:00')",
            "an override is a whole day off (no times) or hours with end_time after start_time, on whole minutes",
            id="override-start-only",
        ),
        pytest.param(
            "interviewer",
            "insert into public.interviewer_date_overrides (interviewer_id, date, end_time)"
            " values (%(ivy)s, '2030-01-01', '09:00')",
            "an override is a whole day off (no times) or hours with end_time after start_time, on whole minutes",
            id="override-end-only",
        ),
        pytest.param(
            "admin",
            "insert into public.interviewer_date_overrides (interviewer_id, date, start_time, end_time)"
            " values (%(ivy)s, '2030-01-01', '12:00', '09:00')",
            "an override is a whole day off (no times) or hours with end_time after start_time, on whole minutes",
            id="override-end-before-start",
        ),
        pytest.param(
            "owner",
            "update public.companies set min_notice_minutes = -1 where id = %(acme)s",
            "min_notice_minutes: 0 to 43,200 (30 days)",
            id="negative-notice",
        ),
        pytest.param(
            "owner",
            "update public.companies set buffer_after_minutes = 241 where id = %(acme)s",
            "buffer_after_minutes: 0 to 240",
            id="long-buffer",
        ),
        pytest.param(
            "admin",
            "update public.companies set industry = '  ' where id = %(acme)s",
            "industry: 1 to 100 characters",
            id="blank-industry",
        ),
        pytest.param(
            "owner",
            "update public.companies set description = repeat('x', 5001) where id = %(acme)s",
            "description: at most 5,000 characters",
            id="long-description",
        ),
        pytest.param(
            "owner",
            "update public.companies set logo_path = %(zeta)s || '/logo.png' where id = %(acme)s",
            "logo_path: the name of an object in the company-logos bucket, in the company's folder"
            " (<company id>/...)",
            id="logo-in-another-companys-folder",
        ),
        pytest.param(
            "recruiter",
            "insert into public.interview_notes (interview_id, body) values (%(upcoming)s, '   ')",
            "body: 1 to 10,000 characters",
            id="blank-note",
        ),
        pytest.param(
            "recruiter",
            "insert into public.scheduling_invitations (company_id, candidate_email, interviewer_ids)"
            " values (%(acme)s, 'x@example.com', array[%(zed)s]::uuid[])",
            "interviewer_ids: every one must be a current interviewer of this company",
            id="invite-to-another-companys-interviewer",
        ),
        pytest.param(
            "recruiter",
            "insert into public.scheduling_invitations (company_id, candidate_email, interviewer_ids)"
            " values (%(acme)s, '<b>x</b>@example.com', array[%(ivy)s]::uuid[])",
            "candidate_email: an email address such as ada@example.com",
            id="invite-markup",
        ),
        pytest.param(
            "anon",
            "insert into public.demo_requests (name, email, company_name, company_size)"
            " values ('Ada', 'ada@example.com', 'AE', 'huge')",
            "company_size: one of 1-10, 11-50, 51-200, 201-1000, 1001+",
            id="demo-company-size",
        ),
    ],
)
def test_bad_input_is_refused_with_our_message(conn, world, who, statement, message):
    params = {**world.params(who), "stranger_user": world.stranger.id}
    refused = actor(conn, world, who).refused(statement, params, sqlstate=CHECK_VIOLATION)
    assert refused.diag.message_primary == message


def test_companies_profile_fields_on_creation(conn, world):
    stranger = as_user(conn, world.stranger)
    created = stranger.one(
        "insert into public.companies (name, description, industry, address) values ('Newco', 'We build', 'Fintech',"
        " '1 Main St') returning id::text, description, industry, address, deleted_at, min_notice_minutes"
    )
    assert {k: v for k, v in created.items() if k != "id"} == {
        "description": "We build",
        "industry": "Fintech",
        "address": "1 Main St",
        "deleted_at": None,
        "min_notice_minutes": 240,
    }
    logo = f"{created['id']}/logo.png"
    assert stranger.one(
        "update public.companies set logo_path = %s where id = %s returning logo_path", (logo, created["id"])
    ) == {"logo_path": logo}
    # What only functions, later updates or platform admins set.
    for statement in (
        "insert into public.companies (name, deleted_at) values ('Newco', now())",
        "insert into public.companies (name, min_notice_minutes) values ('Newco', 0)",
        "insert into public.companies (name, verified_at) values ('Newco', now())",
    ):
        stranger.refused(statement, sqlstate=INSUFFICIENT_PRIVILEGE)


# Demo requests ----------------------------------------------------------------------------------------------


def test_demo_requests_the_database_fills_in_what_the_sender_may_not_choose(conn, world):
    as_anon(conn).rows(
        "insert into public.demo_requests (name, email, company_name, company_size)"
        " values ('  Ada ', ' Ada@Example.COM ', ' AE ', '11-50')"
    )
    row = conn.execute(
        "select name, email, company_name, status::text, client_address, handled_by from public.demo_requests"
        " where email = 'ada@example.com'"
    ).fetchone()
    # Outside an API request there is no client address to record.
    assert row == ("Ada", "ada@example.com", "AE", "new", None, None)


def test_demo_requests_per_email_limit_ignores_case_and_spaces(conn, world):
    limit = value(
        conn, "select value::integer from private.config where key = 'demo_requests_per_email_per_day'"
    )
    assert limit == 3
    anon = as_anon(conn)
    insert: LiteralString = (
        "insert into public.demo_requests (name, email, company_name) values ('Ada', %s, 'AE')"
    )
    for spelling in ("ada@example.com", "ADA@example.com", " ada@EXAMPLE.com ")[:limit]:
        anon.rows(insert, (spelling,))
    refused = anon.refused(insert, ("Ada@Example.com",), sqlstate=TOO_MANY)
    assert (
        refused.diag.message_primary
        == "too many demo requests from this email address today; we will be in touch"
    )
    anon.rows(insert, ("grace@example.com",))


def test_demo_requests_only_platform_admins_read_and_handle_them(conn, world):
    demo = world.ids["demo"]
    admin = as_user(conn, world.platform_admin)
    assert admin.one("select name, email, status::text from public.demo_requests where id = %s", (demo,)) == {
        "name": "Dee",
        "email": demo_email(world.acme),
        "status": "new",
    }
    handled = admin.one(
        "update public.demo_requests set status = 'qualified' where id = %s"
        " returning status::text, handled_by::text, updated_at = now() as touched",
        (demo,),
    )
    assert handled == {"status": "qualified", "handled_by": world.platform_admin.id, "touched": True}
    for who in ("owner", "stranger", "candidate"):
        user = actor(conn, world, who)
        assert user.rows("select * from public.demo_requests") == []
        assert user.count("update public.demo_requests set status = 'closed' where id = %s", (demo,)) == 0
    as_anon(conn).refused("select count(*) from public.demo_requests", sqlstate=INSUFFICIENT_PRIVILEGE)
    assert value(conn, "select status::text from public.demo_requests where id = %s", (demo,)) == "qualified"


# Bugs found in the SQL, kept as regressions ------------------------------------------------------------------


@pytest.mark.parametrize("zone", ["europe/berlin", "Mars+3", "UTC+5"])
def test_time_zones_are_iana_names_the_mailer_can_load(conn, world, zone):
    refused = as_user(conn, world.owner).refused(
        "insert into public.interviewers (company_id, display_name, time_zone) values (%s, 'Ivy', %s)",
        (world.acme.id, zone),
        sqlstate=CHECK_VIOLATION,
    )
    assert refused.diag.message_primary == "time_zone: an IANA time zone name such as Europe/Berlin"


def test_booking_by_account_does_not_reveal_the_accounts_email(conn, world):
    # A stranger founds a company of their own, which makes them its staff.
    founder = as_user(conn, world.stranger)
    company = founder.one("insert into public.companies (name) values ('Front') returning id::text")["id"]
    conn.execute("update public.companies set min_notice_minutes = 0 where id = %s", (company,))
    interviewer = add_interviewer(conn, Company(company, "Front"), "Fake")
    # Profiles show every user's id to every signed-in user; the address is what they must not learn.
    try:
        booked = founder.one(
            "select candidate_email from public.book_interview(%s, %s, 60, null, %s)",
            (interviewer, world.starts_at, world.platform_admin.id),
        )
    except psycopg.Error:
        booked = {}
    assert booked.get("candidate_email") != world.platform_admin.email
    assert (
        value(conn, "select count(*) from private.outbox where recipient = %s", (world.platform_admin.email,))
        == 0
    )


def test_an_interview_that_has_started_is_not_cancelled(conn, world):
    past = world.ids["past_ivy"]  # started two hours ago, its outcome not recorded yet
    as_user(conn, world.candidate).refused(
        "select * from public.cancel_interview(%s)", (past,), sqlstate=CONFLICT
    )
    assert as_user(conn, world.recruiter).one(
        "select status::text from public.record_interview_outcome(%s, 'no_show')", (past,)
    ) == {"status": "no_show"}


def in_transaction_as(connection: psycopg.Connection, user: User) -> None:
    """Act as `user` for the rest of `connection`'s transaction, as PostgREST does for a request."""
    connection.execute(
        "select set_config('role', 'authenticated', true), set_config('request.jwt.claims', %s, true)",
        (json.dumps(user.claims),),
    )


def test_a_company_deleted_during_a_booking_keeps_no_upcoming_interview(database: Database, committed):
    owner, recruiter = make_user(committed), make_user(committed)
    company = make_company(committed, owner)
    add_member(committed, company, recruiter, "recruiter")
    committed.execute("update public.companies set min_notice_minutes = 0 where id = %s", (company.id,))
    interviewer = add_interviewer(committed, company, "Ivy")
    outcome: list[str] = []
    with psycopg.connect(database.superuser) as booking, psycopg.connect(database.superuser) as deleting:
        # The booking is made but not yet committed when the owner deletes the company.
        in_transaction_as(booking, recruiter)
        booking.execute(
            "select * from public.book_interview(%s, date_trunc('hour', now()) + interval '2 days', 60,"
            " 'x@example.com')",
            (interviewer,),
        )

        def delete() -> None:
            try:
                in_transaction_as(deleting, owner)
                deleting.execute("select public.delete_company(%s)", (company.id,))
                deleting.commit()
                outcome.append(OK)
            except psycopg.Error as exc:
                deleting.rollback()
                outcome.append(exc.sqlstate or "")

        worker = threading.Thread(target=delete)
        worker.start()
        deleting_pid = deleting.info.backend_pid
        for _ in range(300):  # until the delete is done, or waits for the booking (as it should)
            if not worker.is_alive() or value(
                committed,
                "select wait_event_type = 'Lock' from pg_stat_activity where pid = %s",
                (deleting_pid,),
            ):
                break
            time.sleep(0.01)
        booking.commit()
        worker.join(10)
    upcoming_in_deleted = value(
        committed,
        "select count(*) from public.interviews x join public.companies c on c.id = x.company_id"
        " where c.id = %s and c.deleted_at is not null and x.status = 'scheduled' and x.ends_at > now()",
        (company.id,),
    )
    assert (outcome, upcoming_in_deleted) == ([CONFLICT], 0)
