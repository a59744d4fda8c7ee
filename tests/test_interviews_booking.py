"""Booking, moving and cancelling interviews, and candidates booking themselves with an invitation's token.

The races run each call on a connection of its own, in a transaction of its own, as its caller (the role
and claims PostgREST would set), all released together by a barrier: the interviewer's lock must leave
exactly one winner. Their data is committed (`committed`) so that every connection sees it; each test
makes its own company and interviewers and counts only their interviews. The candidate's side goes
through real PostgREST with the anon key, as the booking page would.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, LiteralString

import httpx
import psycopg
import pytest
from postgrest.exceptions import APIError
from psycopg.rows import dict_row
from supabase import Client, ClientOptions, create_client

from tests.conftest import Database
from tests.support import ANON_KEY, User, add_member, as_user, make_company, make_role, make_user, value
from tests.test_interviews_slots import (
    CONFLICT,
    HOUR,
    INVALID,
    NOT_FOUND,
    Team,
    book,
    every_day,
    make_interviewer,
    make_team,
    utc,
)

DAY = "2028-03-06"  # a Monday, far enough ahead for any notice
ANON_CLAIMS: dict[str, Any] = {"role": "anon", "iss": "supabase-demo"}
TAKEN = "that slot cannot be booked: the interviewer has another interview then (buffers included)"
MOVE_TAKEN = "the interview cannot move there: the interviewer has another interview then (buffers included)"
USED = "this invitation has been used: the interview is booked"
NO_INVITATION = "no such invitation: the link is wrong or expired; ask for a new one"

Outcome = dict[str, Any] | psycopg.Error


# Calls on connections of their own --------------------------------------------------------------------


def claims_of(caller: User | None) -> dict[str, Any]:
    return caller.claims if caller else ANON_CLAIMS


@contextmanager
def session(database: Database, caller: User | None) -> Iterator[psycopg.Connection]:
    """A connection of its own, logged in as PostgREST is, in a transaction acting as `caller` (anon if
    None); the caller commits or rolls back."""
    with psycopg.connect(database.authenticator, row_factory=dict_row) as conn:
        claims = claims_of(caller)
        conn.execute(
            "select set_config('role', %s, true), set_config('request.jwt.claims', %s, true)",
            (claims["role"], json.dumps(claims)),
        )
        yield conn


def attempt(conn: psycopg.Connection, query: LiteralString, params: Sequence[Any]) -> Outcome:
    """The row `query` returns, committed, or the error it raised, rolled back."""
    try:
        row = conn.execute(query, params).fetchone()
    except psycopg.Error as exc:
        conn.rollback()
        return exc
    conn.commit()
    assert row is not None
    return row


def race(
    database: Database, calls: Sequence[tuple[User | None, LiteralString, Sequence[Any]]]
) -> list[Outcome]:
    """The calls at once, each as its caller on its own connection and transaction; their outcomes."""
    barrier = threading.Barrier(len(calls))

    def run(call: tuple[User | None, LiteralString, Sequence[Any]]) -> Outcome:
        caller, query, params = call
        with session(database, caller) as conn:
            barrier.wait(30)
            return attempt(conn, query, params)

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(run, calls))


def split(outcomes: list[Outcome]) -> tuple[list[dict[str, Any]], list[psycopg.Error]]:
    won = [outcome for outcome in outcomes if isinstance(outcome, dict)]
    lost = [outcome for outcome in outcomes if isinstance(outcome, psycopg.Error)]
    assert len(won) + len(lost) == len(outcomes)
    return won, lost


def scheduled(conn: psycopg.Connection, interviewer_id: str) -> list[tuple[dt.datetime, dt.datetime]]:
    """The interviewer's scheduled interviews, in order, as (starts_at, ends_at)."""
    return conn.execute(
        "select starts_at, ends_at from public.interviews where interviewer_id = %s and status = 'scheduled'"
        " order by starts_at",
        (interviewer_id,),
    ).fetchall()


def assert_no_overlap(intervals: list[tuple[dt.datetime, dt.datetime]]) -> None:
    for (_, ends), (starts, _) in itertools.pairwise(intervals):
        assert ends <= starts, intervals


BOOK: LiteralString = "select * from public.book_interview(%s, %s, %s, %s)"


# Races --------------------------------------------------------------------------------------------------


def test_twenty_bookings_of_one_slot_at_once_make_one_interview(database, committed):
    team = make_team(committed)
    interviewer = make_interviewer(committed, team, hours=every_day("09:00", "17:00"))
    slot = utc(f"{DAY} 10:00")
    outcomes = race(
        database,
        [
            (team.owner, BOOK, (interviewer, slot, 60, f"candidate-{index}@example.com"))
            for index in range(20)
        ],
    )
    won, lost = split(outcomes)
    assert len(won) == 1
    assert [(error.sqlstate, error.diag.message_primary) for error in lost] == [(CONFLICT, TAKEN)] * 19
    assert scheduled(committed, interviewer) == [(slot, slot + HOUR)]


def test_bookings_of_different_slots_at_once_stop_at_the_daily_cap(database, committed):
    team = make_team(committed)
    interviewer = make_interviewer(committed, team, cap=3, hours=every_day("09:00", "17:00"))
    # One interview late in the day first: with a cap of 3, two of the ten that race may join it. (Ten
    # bookings alone would stay within the cap on this bug only if the three earliest won the lock first.)
    book(committed, team, interviewer, utc(f"{DAY} 16:30"), 30)
    slots = [utc(f"{DAY} 09:00") + index * dt.timedelta(minutes=30) for index in range(10)]
    outcomes = race(
        database,
        [(team.owner, BOOK, (interviewer, slot, 30, "cara@example.com")) for slot in reversed(slots)],
    )
    won, lost = split(outcomes)
    assert len(won) == 2
    assert {error.diag.message_primary for error in lost} == {
        "that slot cannot be booked: the interviewer already has 3 interviews that day, their limit"
    }
    assert len(scheduled(committed, interviewer)) == 3


def test_a_move_and_a_booking_into_the_same_slot_at_once_one_wins(database, committed):
    team = make_team(committed)
    recruiter = make_user(committed)
    add_member(committed, team.company, recruiter, "recruiter")
    interviewer = make_interviewer(committed, team, cap=10, hours=every_day("08:00", "18:00"))
    for round_, target in enumerate(("12:00", "13:00", "14:00", "15:00")):
        moving = book(committed, team, interviewer, utc(f"{DAY} 08:00") + round_ * HOUR)
        slot = utc(f"{DAY} {target}")
        outcomes = race(
            database,
            [
                (team.owner, "select * from public.reschedule_interview(%s, %s)", (moving, slot)),
                (recruiter, BOOK, (interviewer, slot, 60, "new@example.com")),
            ],
        )
        won, lost = split(outcomes)
        assert len(won) == 1, outcomes
        assert lost[0].sqlstate == CONFLICT
        assert lost[0].diag.message_primary in {TAKEN, MOVE_TAKEN}
        assert sum(starts == slot for starts, _ in scheduled(committed, interviewer)) == 1
    assert_no_overlap(scheduled(committed, interviewer))


# Self-scheduling --------------------------------------------------------------------------------------


@contextmanager
def anon_rest(url: str) -> Iterator[tuple[Client, list[httpx.Response]]]:
    """supabase-py with the anon key, as the candidate's booking page, and the HTTP responses it got."""
    responses: list[httpx.Response] = []
    with httpx.Client(timeout=30, event_hooks={"response": [responses.append]}) as http:
        yield create_client(url, ANON_KEY, options=ClientOptions(httpx_client=http)), responses


def refused_over_rest(
    call: Callable[[], Any], responses: list[httpx.Response]
) -> tuple[int, str | None, str | None]:
    """HTTP status, code and message of a call PostgREST refuses."""
    with pytest.raises(APIError) as refused:
        call()
    return responses[-1].status_code, refused.value.code, refused.value.message


def invite(
    conn: psycopg.Connection, staff: User, team: Team, pool: Sequence[str], **fields: Any
) -> tuple[str, str]:
    """A scheduling invitation inserted by `staff`, and the token its email carries."""
    row = {"candidate_email": "Cara@Example.com", "candidate_name": "Cara Candidate", "duration_minutes": 60}
    row.update(fields)
    invitation = as_user(conn, staff).one(
        "insert into public.scheduling_invitations"
        " (company_id, role_posting_id, candidate_email, candidate_name, interviewer_ids, duration_minutes)"
        " values (%s, %s, %s, %s, %s::uuid[], %s) returning id::text",
        (
            team.company.id,
            row.get("role_posting_id"),
            row["candidate_email"],
            row["candidate_name"],
            list(pool),
            row["duration_minutes"],
        ),
    )["id"]
    token = value(
        conn,
        "select context ->> 'token' from private.outbox"
        " where template = 'scheduling_invitation' and idempotency_key = %s",
        (f"scheduling_invitation:{invitation}",),
    )
    assert token
    return invitation, token


def soon(days: int, time_of_day: str) -> dt.datetime:
    """A UTC time `days` from today: invitations last 14 days, so their bookings are near."""
    return utc(f"{dt.datetime.now(dt.UTC).date() + dt.timedelta(days=days)} {time_of_day}")


def pool_of_two(conn: psycopg.Connection, team: Team) -> list[str]:
    """Two interviewers free 09:00-17:00 UTC every day, in id order (the order ties are broken in)."""
    return sorted(make_interviewer(conn, team, hours=every_day("09:00", "17:00")) for _ in range(2))


def test_a_candidate_books_through_the_token_once_with_the_least_loaded_interviewer(api_url, committed):
    team = make_team(committed)
    recruiter = make_user(committed)
    add_member(committed, team.company, recruiter, "recruiter")
    busier, freer = pool_of_two(committed, team)
    day = soon(3, "00:00")
    # Ties go to the lower id: the busier one would be chosen if load did not count.
    book(committed, team, busier, day + 9 * HOUR)
    role = make_role(committed, team.company, title="Fractional CFO")
    invitation, token = invite(committed, recruiter, team, [busier, freer], role_posting_id=role)
    with anon_rest(api_url) as (anon, responses):
        details = anon.rpc("scheduling_invitation", {"token": token}).execute().data
        assert len(details) == 1
        ttl = dt.datetime.fromisoformat(details[0]["expires_at"]) - dt.datetime.now(dt.UTC)
        assert dt.timedelta(days=13, hours=23) < ttl <= dt.timedelta(days=14)
        assert {key: details[0][key] for key in details[0] if key != "expires_at"} == {
            "company_name": team.company.name,
            "role_title": "Fractional CFO",
            "candidate_name": "Cara Candidate",
            "duration_minutes": 60,
            "booked_starts_at": None,
            "booked_ends_at": None,
        }
        span = {"token": token, "from_at": day.isoformat(), "to_at": (day + 24 * HOUR).isoformat()}
        offered = anon.rpc("invitation_slots", span).execute().data
        # The freer interviewer is free at 09:00 too: a slot is offered when anyone in the pool is free.
        assert [dt.datetime.fromisoformat(slot["starts_at"]) for slot in offered] == [
            day + hour * HOUR for hour in range(9, 17)
        ]
        starts_at = day + 14 * HOUR
        booked = (
            anon.rpc("book_invitation", {"token": token, "starts_at": starts_at.isoformat()}).execute().data
        )
        assert dt.datetime.fromisoformat(booked["starts_at"]) == starts_at
        assert dt.datetime.fromisoformat(booked["ends_at"]) == starts_at + HOUR
        interview = committed.execute(
            "select interviewer_id::text, invitation_id::text, candidate_email, candidate_name, role_posting_id::text,"
            " booked_by, status::text from public.interviews where id = %s",
            (booked["interview_id"],),
        ).fetchone()
        assert interview == (freer, invitation, "cara@example.com", "Cara Candidate", role, None, "scheduled")
        after = anon.rpc("scheduling_invitation", {"token": token}).execute().data[0]
        assert dt.datetime.fromisoformat(after["booked_starts_at"]) == starts_at
        again = {"token": token, "starts_at": (starts_at + HOUR).isoformat()}
        assert refused_over_rest(lambda: anon.rpc("book_invitation", again).execute(), responses) == (
            409,
            CONFLICT,
            USED,
        )
        assert refused_over_rest(lambda: anon.rpc("invitation_slots", span).execute(), responses) == (
            409,
            CONFLICT,
            USED,
        )
    assert (
        value(committed, "select count(*) from public.interviews where invitation_id = %s", (invitation,))
        == 1
    )


def test_a_wrong_or_expired_token_is_a_404_everywhere(api_url, committed):
    team = make_team(committed)
    pool = pool_of_two(committed, team)
    invitation, token = invite(committed, team.owner, team, pool)
    committed.execute(
        "update public.scheduling_invitations set expires_at = now() - interval '1 second' where id = %s",
        (invitation,),
    )
    day = soon(3, "00:00")
    with anon_rest(api_url) as (anon, responses):
        for bad in (token, f"{token}x", "not-a-token"):
            calls = {
                "scheduling_invitation": {"token": bad},
                "invitation_slots": {
                    "token": bad,
                    "from_at": day.isoformat(),
                    "to_at": (day + HOUR).isoformat(),
                },
                "book_invitation": {"token": bad, "starts_at": (day + 10 * HOUR).isoformat()},
            }
            for function, arguments in calls.items():
                refused = refused_over_rest(
                    lambda f=function, a=arguments: anon.rpc(f, a).execute(), responses
                )
                assert refused == (404, NOT_FOUND, NO_INVITATION), (function, bad)
    assert (
        value(committed, "select count(*) from public.interviews where invitation_id = %s", (invitation,))
        == 0
    )


def test_ten_bookings_with_one_token_at_once_make_one_interview(database, committed):
    team = make_team(committed)
    pool = pool_of_two(committed, team)
    invitation, token = invite(committed, team.owner, team, pool)
    day = soon(4, "00:00")
    with session(database, None) as candidate:  # outside everyone's hours: refused, and the token stays good
        refused = attempt(candidate, "select public.book_invitation(%s, %s)", (token, day + 20 * HOUR))
    assert isinstance(refused, psycopg.Error)
    assert (refused.sqlstate, refused.diag.message_primary) == (
        CONFLICT,
        "that time is no longer free; pick another",
    )
    calls = [
        (None, "select public.book_invitation(%s, %s) as booked", (token, day + hour * HOUR))
        for hour in range(9, 14)
    ]
    won, lost = split(race(database, calls * 2))
    assert len(won) == 1
    assert [(error.sqlstate, error.diag.message_primary) for error in lost] == [(CONFLICT, USED)] * 9
    assert (
        value(committed, "select count(*) from public.interviews where invitation_id = %s", (invitation,))
        == 1
    )
    used_for = value(
        committed, "select interview_id::text from public.scheduling_invitations where id = %s", (invitation,)
    )
    assert used_for == won[0]["booked"]["interview_id"]


def wait_until_waiting_on_a_lock(committed: psycopg.Connection, pid: int) -> None:
    for _ in range(500):
        if value(committed, "select wait_event_type = 'Lock' from pg_stat_activity where pid = %s", (pid,)):
            return
        time.sleep(0.01)
    raise AssertionError(f"backend {pid} never waited on a lock")


def test_a_candidate_booking_while_a_pool_member_is_booked_gets_another_member(database, committed):
    team = make_team(committed)
    taken, free = pool_of_two(committed, team)
    invitation, token = invite(committed, team.owner, team, [taken, free])
    starts_at = soon(5, "11:00")
    outcome: list[Outcome] = []
    with session(database, team.owner) as staff, session(database, None) as candidate:
        # Staff book the lower-id interviewer (the one a tie would pick) and hold the lock uncommitted.
        pid = candidate.execute("select pg_backend_pid() as pid").fetchone()["pid"]
        staff.execute(BOOK, (taken, starts_at, 60, "dan@example.com"))
        worker = threading.Thread(
            target=lambda: outcome.append(
                attempt(candidate, "select public.book_invitation(%s, %s) as booked", (token, starts_at))
            )
        )
        worker.start()
        wait_until_waiting_on_a_lock(committed, pid)
        staff.commit()
        worker.join(30)
    assert isinstance(outcome[0], dict), outcome
    assert (
        value(
            committed,
            "select interviewer_id::text from public.interviews where invitation_id = %s",
            (invitation,),
        )
        == free
    )


# Moving, cancelling, outcomes ----------------------------------------------------------------------------


def test_a_move_keeps_the_duration_unless_told_and_bumps_the_sequence(conn):
    team = make_team(conn)
    interviewer = make_interviewer(conn, team, hours=every_day("09:00", "17:00"))
    interview = book(conn, team, interviewer, utc(f"{DAY} 10:00"), 45)
    owner = as_user(conn, team.owner)
    moved = owner.one("select * from public.reschedule_interview(%s, %s)", (interview, utc(f"{DAY} 13:00")))
    assert (moved["starts_at"], moved["ends_at"], moved["sequence"]) == (
        utc(f"{DAY} 13:00"),
        utc(f"{DAY} 13:45"),
        1,
    )
    # Half an hour later overlaps its own old time, which is not in its way.
    moved = owner.one("select * from public.reschedule_interview(%s, %s)", (interview, utc(f"{DAY} 13:30")))
    assert (moved["ends_at"], moved["sequence"]) == (utc(f"{DAY} 14:15"), 2)
    moved = owner.one(
        "select * from public.reschedule_interview(%s, %s, 30)", (interview, utc(f"{DAY} 15:00"))
    )
    assert (moved["ends_at"], moved["sequence"]) == (utc(f"{DAY} 15:30"), 3)
    error = owner.refused(
        "select * from public.reschedule_interview(%s, %s)",
        (interview, utc(f"{DAY} 16:45")),
        sqlstate=CONFLICT,
    )
    assert error.diag.message_primary == "the interview cannot move there: outside the interviewer's hours"


def test_the_candidate_may_cancel_a_stranger_is_told_no_such_interview(conn):
    team = make_team(conn)
    interviewer = make_interviewer(conn, team, hours=every_day("09:00", "17:00"))
    candidate, stranger = make_user(conn), make_user(conn)
    interview = as_user(conn, team.owner).one(
        "select * from public.book_interview(%s, %s, 60, %s, %s)",
        (interviewer, utc(f"{DAY} 10:00"), candidate.email, candidate.id),
    )
    assert interview["candidate_email"] == candidate.email
    error = as_user(conn, stranger).refused(
        "select * from public.cancel_interview(%s)", (interview["id"],), sqlstate=NOT_FOUND
    )
    assert error.diag.message_primary == "no such interview"
    cancelled = as_user(conn, candidate).one(
        "select * from public.cancel_interview(%s, '  Found another role  ')", (interview["id"],)
    )
    assert (cancelled["status"], cancelled["sequence"], cancelled["cancel_reason"]) == (
        "cancelled",
        1,
        "Found another role",
    )
    assert str(cancelled["cancelled_by"]) == candidate.id
    error = as_user(conn, candidate).refused(
        "select * from public.cancel_interview(%s)", (interview["id"],), sqlstate=CONFLICT
    )
    assert error.diag.message_primary == "this interview is cancelled and can no longer change"


def test_an_outcome_is_recorded_only_once_the_interview_has_started(conn):
    team = make_team(conn)
    interviewer = make_interviewer(conn, team, hours=every_day("09:00", "17:00"))
    interview = book(conn, team, interviewer, utc(f"{DAY} 10:00"))
    owner = as_user(conn, team.owner)
    record: LiteralString = "select * from public.record_interview_outcome(%s, %s)"
    error = owner.refused(record, (interview, "completed"), sqlstate=CONFLICT)
    assert error.diag.message_primary == "this interview has not started yet"
    error = owner.refused(record, (interview, "cancelled"), sqlstate=INVALID)
    assert error.diag.message_primary == "outcome: completed or no_show"
    error = as_user(conn, make_user(conn)).refused(record, (interview, "completed"), sqlstate=NOT_FOUND)
    assert error.diag.message_primary == "no such interview"
    # Time passes: it started a minute ago.
    conn.execute(
        "update public.interviews set starts_at = now() - interval '1 minute', ends_at = now() + interval '59 minutes'"
        " where id = %s",
        (interview,),
    )
    assert owner.one(record, (interview, "no_show"))["status"] == "no_show"
    error = owner.refused(record, (interview, "completed"), sqlstate=CONFLICT)
    assert error.diag.message_primary == "this interview is no_show already"


# Bad bookings ---------------------------------------------------------------------------------------------

BAD_BOOKINGS: dict[str, tuple[dict[str, Any], str, str]] = {
    "starts-at-off-the-minute": (
        {"starts_at": utc(f"{DAY} 10:00") + dt.timedelta(seconds=30)},
        INVALID,
        "starts_at must be on a whole minute",
    ),
    "no-starts-at": ({"starts_at": None}, INVALID, "starts_at is required"),
    "duration-0": ({"duration_minutes": 0}, INVALID, "duration_minutes: 5 to 480"),
    "duration-1000": ({"duration_minutes": 1000}, INVALID, "duration_minutes: 5 to 480"),
    "no-candidate": (
        {"candidate_email": None},
        INVALID,
        "a candidate_id or a candidate_email (an email address) is required",
    ),
    "bad-email": (
        {"candidate_email": "cara at example"},
        INVALID,
        "a candidate_id or a candidate_email (an email address) is required",
    ),
    "markup-email": (
        {"candidate_email": "<b>cara</b>@example.com"},
        INVALID,
        "a candidate_id or a candidate_email (an email address) is required",
    ),
    "unknown-candidate-id": (
        {"candidate_id": str(uuid.uuid4())},
        INVALID,
        "candidate_id: give the account's email address as candidate_email too",
    ),
    "markup-name": (
        {"candidate_name": "<script>"},
        INVALID,
        "candidate_name: at most 200 characters, no markup",
    ),
    "unknown-interviewer": ({"interviewer_id": str(uuid.uuid4())}, NOT_FOUND, "no such interviewer"),
}


def booking_arguments(interviewer: str, changes: dict[str, Any]) -> dict[str, Any]:
    return {
        "interviewer_id": interviewer,
        "starts_at": utc(f"{DAY} 10:00"),
        "duration_minutes": 60,
        "candidate_email": "cara@example.com",
        "candidate_id": None,
        "candidate_name": "Cara",
        "role_posting_id": None,
        **changes,
    }


BOOK_NAMED: LiteralString = (
    "select * from public.book_interview(%(interviewer_id)s, %(starts_at)s, %(duration_minutes)s,"
    " %(candidate_email)s, %(candidate_id)s, %(candidate_name)s, %(role_posting_id)s)"
)


@pytest.mark.parametrize(("changes", "sqlstate", "message"), BAD_BOOKINGS.values(), ids=BAD_BOOKINGS.keys())
def test_bad_bookings_get_our_message(conn, changes, sqlstate, message):
    team = make_team(conn)
    interviewer = make_interviewer(conn, team, hours=every_day("09:00", "17:00"))
    error = as_user(conn, team.owner).refused(
        BOOK_NAMED, booking_arguments(interviewer, changes), sqlstate=sqlstate
    )
    assert error.diag.message_primary == message
    assert (
        value(conn, "select count(*) from public.interviews where interviewer_id = %s", (interviewer,)) == 0
    )


def test_a_role_posting_of_another_company_is_refused_and_ones_own_accepted(conn):
    team = make_team(conn)
    interviewer = make_interviewer(conn, team, hours=every_day("09:00", "17:00"))
    theirs = make_role(conn, make_company(conn, make_user(conn)))
    owner = as_user(conn, team.owner)
    error = owner.refused(
        BOOK_NAMED, booking_arguments(interviewer, {"role_posting_id": theirs}), sqlstate=INVALID
    )
    assert error.diag.message_primary == "role_posting_id: not one of this company's role postings"
    ours = make_role(conn, team.company)
    booked = owner.one(BOOK_NAMED, booking_arguments(interviewer, {"role_posting_id": ours}))
    assert str(booked["role_posting_id"]) == ours


def test_only_staff_book_and_any_whole_minute_inside_the_hours_may_be_booked(conn):
    team = make_team(conn)
    interviewer_user = make_user(conn)
    add_member(conn, team.company, interviewer_user, "interviewer")
    interviewer = make_interviewer(conn, team, hours=every_day("09:00", "17:00"), user=interviewer_user)
    # The interviewer themself sees their slots but does not book: booking is the staff's.
    error = as_user(conn, interviewer_user).refused(
        BOOK_NAMED, booking_arguments(interviewer, {}), sqlstate=NOT_FOUND
    )
    assert error.diag.message_primary == "no such interviewer"
    # Any whole minute inside the hours may be booked, not only the slots a search lists.
    booked = as_user(conn, team.owner).one(
        BOOK_NAMED, booking_arguments(interviewer, {"starts_at": utc(f"{DAY} 10:07")})
    )
    assert (booked["starts_at"], booked["ends_at"]) == (utc(f"{DAY} 10:07"), utc(f"{DAY} 11:07"))
