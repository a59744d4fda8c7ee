"""Free slots (`available_slots`, `private.free_slots`): weekly hours and date overrides in the
interviewer's time zone, daylight-saving changes, an interviewer across the date line, the company's
notice and buffers, the daily cap per local day, and the errors bad searches get (in SQL and through
real PostgREST).

Dates are in 2027 so that the company's notice never reaches them (today is earlier), except in the
notice tests, which count from the transaction's now(). Expected instants are written out in UTC by hand;
only whole days of nine-to-five are spelled in local time, read by Python's zoneinfo.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import psycopg
import pytest
from postgrest.exceptions import APIError
from supabase import Client, ClientOptions, create_client

from tests.support import (
    ANON_KEY,
    Company,
    User,
    add_member,
    as_user,
    bearer,
    make_company,
    make_user,
    token_for,
    value,
)

INVALID = "22023"  # invalid_parameter_value: HTTP 400 through PostgREST
NOT_FOUND = "PT404"
CONFLICT = "PT409"
HOUR = dt.timedelta(hours=1)

# Weekly hours: (ISO weekday, start, end) in the interviewer's zone; overrides: (date, start, end), no
# times for a day off.
Hours = Iterable[tuple[int, str, str]]
Overrides = Iterable[tuple[str, str | None, str | None]]


def every_day(start: str, end: str) -> list[tuple[int, str, str]]:
    return [(weekday, start, end) for weekday in range(1, 8)]


def utc(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)


def local(text: str, zone: str) -> dt.datetime:
    """A wall-clock time in `zone`, as an instant."""
    return dt.datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(zone))


def hourly(first: str, count: int) -> list[dt.datetime]:
    """`count` UTC instants an hour apart from `first`."""
    return [utc(first) + index * HOUR for index in range(count)]


# Factories (as the superuser) -------------------------------------------------------------------------


@dataclass(frozen=True)
class Team:
    owner: User  # staff: may list slots and book
    company: Company


def make_team(conn: psycopg.Connection, *, notice: int = 0, before: int = 0, after: int = 0) -> Team:
    """A company whose owner runs its interviews, with its notice and buffers in minutes."""
    owner = make_user(conn, full_name="Olive Owner")
    company = make_company(conn, owner, name=f"Acme {uuid.uuid4().hex[:6]}")
    conn.execute(
        "update public.companies set min_notice_minutes = %s, buffer_before_minutes = %s,"
        " buffer_after_minutes = %s where id = %s",
        (notice, before, after, company.id),
    )
    return Team(owner, company)


def make_interviewer(
    conn: psycopg.Connection,
    team: Team,
    *,
    zone: str = "UTC",
    cap: int = 4,
    hours: Hours = (),
    overrides: Overrides = (),
    user: User | None = None,
) -> str:
    """An interviewer of the team's company (linked to `user` if given) with weekly hours and overrides."""
    interviewer_id = value(
        conn,
        "insert into public.interviewers (company_id, user_id, display_name, time_zone, max_interviews_per_day)"
        " values (%s, %s, 'Ivy Interviewer', %s, %s) returning id::text",
        (team.company.id, user.id if user else None, zone, cap),
    )
    for weekday, start, end in hours:
        conn.execute(
            "insert into public.interviewer_availability (interviewer_id, weekday, start_time, end_time)"
            " values (%s, %s, %s, %s)",
            (interviewer_id, weekday, start, end),
        )
    for date, start, end in overrides:
        conn.execute(
            "insert into public.interviewer_date_overrides (interviewer_id, date, start_time, end_time)"
            " values (%s, %s, %s, %s)",
            (interviewer_id, date, start, end),
        )
    return interviewer_id


def book(
    conn: psycopg.Connection, team: Team, interviewer_id: str, starts_at: dt.datetime, minutes: int = 60
) -> str:
    """An interview booked by the team's owner, the way staff book one; returns its id."""
    return str(
        as_user(conn, team.owner).one(
            "select id from public.book_interview(%s, %s, %s, 'cara@example.com')",
            (interviewer_id, starts_at, minutes),
        )["id"]
    )


def slots(
    conn: psycopg.Connection,
    caller: User,
    interviewer_id: str,
    from_at: dt.datetime,
    to_at: dt.datetime,
    minutes: int = 60,
    step: int | None = None,
) -> list[dt.datetime]:
    """The starts of the free slots `caller` is shown; each slot lasts `minutes`."""
    rows = as_user(conn, caller).rows(
        "select starts_at, ends_at from public.available_slots(%s, %s, %s, %s, %s)",
        (interviewer_id, from_at, to_at, minutes, step),
    )
    assert all(row["ends_at"] - row["starts_at"] == dt.timedelta(minutes=minutes) for row in rows)
    return [row["starts_at"] for row in rows]


# Weekly hours and overrides -----------------------------------------------------------------------------

MONDAY = "2027-06-07"  # a Monday; Asia/Kolkata is UTC+05:30 all year


def test_several_ranges_a_day_each_aligned_to_its_own_start(conn):
    team = make_team(conn)
    interviewer = make_interviewer(
        conn, team, zone="Asia/Kolkata", hours=[(1, "09:00", "11:30"), (1, "13:15", "15:00")]
    )
    week = (local(f"{MONDAY} 00:00", "Asia/Kolkata"), local("2027-06-14 00:00", "Asia/Kolkata"))
    # 11:00 would end after 11:30 and 14:15 after 15:00; no other weekday has hours.
    assert slots(conn, team.owner, interviewer, *week) == [
        utc(f"{MONDAY} 03:30"),
        utc(f"{MONDAY} 04:30"),
        utc(f"{MONDAY} 07:45"),
    ]
    assert slots(conn, team.owner, interviewer, *week, step=30) == [
        utc(f"{MONDAY} 03:30"),
        utc(f"{MONDAY} 04:00"),
        utc(f"{MONDAY} 04:30"),
        utc(f"{MONDAY} 05:00"),
        utc(f"{MONDAY} 07:45"),
        utc(f"{MONDAY} 08:15"),
    ]
    assert slots(conn, team.owner, interviewer, *week, minutes=30, step=45) == [
        utc(f"{MONDAY} 03:30"),
        utc(f"{MONDAY} 04:15"),
        utc(f"{MONDAY} 05:00"),
        utc(f"{MONDAY} 07:45"),
        utc(f"{MONDAY} 08:30"),
    ]


def test_a_search_starting_or_ending_inside_hours_keeps_the_grid_and_whole_slots(conn):
    team = make_team(conn)
    interviewer = make_interviewer(conn, team, hours=[(1, "09:00", "17:00")])
    # From 09:10 the next slot on the hour grid is 10:00 (not 09:10); a slot must end by to_at.
    assert slots(conn, team.owner, interviewer, utc(f"{MONDAY} 09:10"), utc(f"{MONDAY} 12:30")) == [
        utc(f"{MONDAY} 10:00"),
        utc(f"{MONDAY} 11:00"),
    ]
    assert slots(conn, team.owner, interviewer, utc(f"{MONDAY} 09:10"), utc(f"{MONDAY} 11:00"), step=15) == [
        utc(f"{MONDAY} 09:15"),
        utc(f"{MONDAY} 09:30"),
        utc(f"{MONDAY} 09:45"),
        utc(f"{MONDAY} 10:00"),
    ]


def test_date_overrides_replace_the_weeks_hours_and_a_day_off_has_none(conn):
    team = make_team(conn)
    weekdays = [(weekday, "09:00", "12:00") for weekday in range(1, 6)]
    interviewer = make_interviewer(
        conn,
        team,
        zone="Europe/Berlin",  # CEST, UTC+2, in June
        hours=weekdays,
        overrides=[
            ("2027-06-08", "14:00", "16:00"),  # Tuesday: these hours instead of the morning
            ("2027-06-08", "17:00", "18:00"),
            ("2027-06-09", None, None),  # Wednesday: a day off
            ("2027-06-12", "10:00", "11:00"),  # Saturday: hours on a day without weekly hours
        ],
    )
    found = slots(conn, team.owner, interviewer, utc(f"{MONDAY} 00:00"), utc("2027-06-14 00:00"))
    assert found == [
        *hourly(f"{MONDAY} 07:00", 3),
        utc("2027-06-08 12:00"),
        utc("2027-06-08 13:00"),
        utc("2027-06-08 15:00"),
        *hourly("2027-06-10 07:00", 3),
        *hourly("2027-06-11 07:00", 3),
        utc("2027-06-12 08:00"),
    ]


def test_hours_may_end_at_midnight(conn):
    team = make_team(conn)
    interviewer = make_interviewer(conn, team, hours=[(1, "22:00", "24:00"), (2, "00:00", "01:00")])
    assert slots(conn, team.owner, interviewer, utc(f"{MONDAY} 00:00"), utc("2027-06-09 00:00")) == [
        utc(f"{MONDAY} 22:00"),
        utc(f"{MONDAY} 23:00"),
        utc("2027-06-08 00:00"),
    ]


# The daily cap --------------------------------------------------------------------------------------


def test_the_daily_cap_counts_the_interviewers_local_day_not_utcs(conn):
    team = make_team(conn)
    zone = "America/Los_Angeles"  # PST, UTC-8, in January: 09:00-21:00 local is 17:00-05:00 UTC
    interviewer = make_interviewer(conn, team, zone=zone, cap=1, hours=every_day("09:00", "21:00"))
    # Monday 20:00 local is Tuesday 04:00 UTC.
    book(conn, team, interviewer, local("2027-01-11 20:00", zone))
    found = slots(
        conn, team.owner, interviewer, local("2027-01-11 00:00", zone), local("2027-01-13 00:00", zone)
    )
    # Monday (local) is full; all of Tuesday (local) is free, though its first seven slots share a UTC
    # date with the Monday interview.
    assert found == hourly("2027-01-12 17:00", 12)


@pytest.mark.parametrize(
    ("zone", "booked_at", "search", "minutes"),
    [
        # An interview at 15:00 and a search of the morning of that day.
        ("UTC", "2027-06-07 15:00", ("2027-06-07 09:00", "2027-06-07 12:00"), 60),
        # The autumn change makes 2027-10-31 25 hours long in Berlin: its 00:15 is more than a day
        # before its 23:30.
        ("Europe/Berlin", "2027-10-31 00:15", ("2027-10-31 23:30", "2027-11-01 00:00"), 30),
    ],
    ids=["later-that-day", "earlier-on-a-25-hour-day"],
)
def test_the_daily_cap_counts_the_whole_local_day_whatever_the_search(conn, zone, booked_at, search, minutes):
    team = make_team(conn)
    interviewer = make_interviewer(
        conn, team, zone=zone, cap=1, overrides=[(booked_at[:10], "00:00", "24:00")]
    )
    book(conn, team, interviewer, local(booked_at, zone), minutes)
    from_at, to_at = (local(text, zone) for text in search)
    assert slots(conn, team.owner, interviewer, from_at, to_at, minutes) == []
    error = as_user(conn, team.owner).refused(
        "select * from public.book_interview(%s, %s, %s, 'dan@example.com')",
        (interviewer, from_at, minutes),
        sqlstate=CONFLICT,
    )
    assert error.diag.message_primary == (
        "that slot cannot be booked: the interviewer already has 1 interviews that day, their limit"
    )


def test_cancelled_interviews_block_nothing(conn):
    team = make_team(conn)
    interviewer = make_interviewer(conn, team, cap=1, hours=[(1, "09:00", "12:00")])
    day = (utc(f"{MONDAY} 00:00"), utc("2027-06-08 00:00"))
    interview = book(conn, team, interviewer, utc(f"{MONDAY} 10:00"))
    assert slots(conn, team.owner, interviewer, *day) == []  # the cap of 1 is reached
    as_user(conn, team.owner).one("select * from public.cancel_interview(%s, 'moved on')", (interview,))
    assert slots(conn, team.owner, interviewer, *day) == hourly(f"{MONDAY} 09:00", 3)


# Notice and buffers ---------------------------------------------------------------------------------


def next_hour(instant: dt.datetime) -> dt.datetime:
    """The first whole hour at or after `instant`."""
    floor = instant.replace(minute=0, second=0, microsecond=0)
    return floor if floor == instant else floor + HOUR


@pytest.mark.parametrize("notice", [0, 240, 1500])
def test_minimum_notice_counts_from_now(conn, notice):
    team = make_team(conn, notice=notice)
    interviewer = make_interviewer(conn, team, hours=every_day("00:00", "24:00"))
    now = value(conn, "select now()")  # the transaction's, which the functions see too
    found = slots(conn, team.owner, interviewer, now - dt.timedelta(days=1), now + dt.timedelta(days=2))
    first = next_hour(now + dt.timedelta(minutes=notice))
    assert found == [first + index * HOUR for index in range(len(found))]
    last = (now + dt.timedelta(days=2) - HOUR).replace(minute=0, second=0, microsecond=0)
    assert found[-1] == last  # the last that ends by to_at


def test_a_booking_inside_the_notice_is_refused_with_the_reason(conn):
    team = make_team(conn, notice=240)
    interviewer = make_interviewer(conn, team, hours=every_day("00:00", "24:00"))
    too_soon = next_hour(value(conn, "select now()") + dt.timedelta(minutes=240)) - HOUR
    error = as_user(conn, team.owner).refused(
        "select * from public.book_interview(%s, %s, 60, 'cara@example.com')",
        (interviewer, too_soon),
        sqlstate=CONFLICT,
    )
    assert error.diag.message_primary == (
        "that slot cannot be booked: too soon: interviews are booked at least 240 minutes ahead"
    )
    book(conn, team, interviewer, too_soon + HOUR)


def test_buffers_keep_the_blocked_ranges_of_two_interviews_apart(conn):
    # An interview holds [start - 15 min, end + 10 min); a new one's range must not touch it.
    team = make_team(conn, before=15, after=10)
    interviewer = make_interviewer(conn, team, hours=[(1, "08:00", "18:00")])
    book(conn, team, interviewer, utc(f"{MONDAY} 12:00"))
    found = slots(conn, team.owner, interviewer, utc(f"{MONDAY} 08:00"), utc(f"{MONDAY} 18:00"), step=5)
    # Before: its end + 10 min must be at or before 11:45, so it starts by 10:35. After: its start
    # - 15 min must be at or after 13:10, so it starts at 13:25 at the earliest.
    five = dt.timedelta(minutes=5)
    assert found == [
        *(utc(f"{MONDAY} 08:00") + index * five for index in range(32)),  # 08:00 .. 10:35
        *(utc(f"{MONDAY} 13:25") + index * five for index in range(44)),  # 13:25 .. 17:00
    ]
    owner = as_user(conn, team.owner)
    for refused in ("10:40", "13:20"):
        error = owner.refused(
            "select * from public.book_interview(%s, %s, 60, 'dan@example.com')",
            (interviewer, utc(f"{MONDAY} {refused}")),
            sqlstate=CONFLICT,
        )
        assert error.diag.message_primary == (
            "that slot cannot be booked: the interviewer has another interview then (buffers included)"
        )
    book(conn, team, interviewer, utc(f"{MONDAY} 10:35"))
    book(conn, team, interviewer, utc(f"{MONDAY} 13:25"))


def test_without_buffers_interviews_may_touch(conn):
    team = make_team(conn)
    interviewer = make_interviewer(conn, team, hours=[(1, "09:00", "13:00")])
    book(conn, team, interviewer, utc(f"{MONDAY} 10:00"))
    found = slots(conn, team.owner, interviewer, utc(f"{MONDAY} 09:00"), utc(f"{MONDAY} 13:00"), step=30)
    assert found == [
        utc(f"{MONDAY} 09:00"),
        utc(f"{MONDAY} 11:00"),
        utc(f"{MONDAY} 11:30"),
        utc(f"{MONDAY} 12:00"),
    ]


# Daylight saving --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("zone", "day", "start", "expected"),
    [
        # 01:00 CET is 00:00 UTC; 02:00-03:00 does not exist; 04:00 CEST is 02:00 UTC: two hours.
        ("Europe/Berlin", "2027-03-28", "01:00", hourly("2027-03-28 00:00", 2)),
        # 01:00 CEST is 23:00 UTC the day before; 02:00-03:00 happens twice; 04:00 CET is 03:00 UTC.
        ("Europe/Berlin", "2027-10-31", "01:00", hourly("2027-10-30 23:00", 4)),
        # 01:00 EST is 06:00 UTC; 02:00-03:00 does not exist; 04:00 EDT is 08:00 UTC.
        ("America/New_York", "2027-03-14", "01:00", hourly("2027-03-14 06:00", 2)),
        # 00:00 EDT is 04:00 UTC; 01:00-02:00 happens twice; 04:00 EST is 09:00 UTC.
        ("America/New_York", "2027-11-07", "00:00", hourly("2027-11-07 04:00", 5)),
        pytest.param(
            "America/New_York",
            "2027-11-07",
            "01:00",  # the first 01:00 (EDT) is 05:00 UTC
            hourly("2027-11-07 05:00", 4),
        ),
    ],
    ids=[
        "berlin-spring",
        "berlin-autumn",
        "new-york-spring",
        "new-york-autumn",
        "new-york-autumn-repeated-hour",
    ],
)
def test_hours_on_a_change_day_are_the_real_hours_between_the_wall_clock_times(
    conn, zone, day, start, expected
):
    team = make_team(conn)
    interviewer = make_interviewer(conn, team, zone=zone, overrides=[(day, start, "04:00")])
    around = (utc(day) - dt.timedelta(days=1), utc(day) + dt.timedelta(days=2))
    assert slots(conn, team.owner, interviewer, *around) == expected


@pytest.mark.parametrize(
    ("zone", "days", "first_before", "first_after"),
    [
        ("Europe/Berlin", ("2027-03-26", "2027-03-29"), "2027-03-26 08:00", "2027-03-29 07:00"),
        ("Europe/Berlin", ("2027-10-29", "2027-11-01"), "2027-10-29 07:00", "2027-11-01 08:00"),
        ("America/New_York", ("2027-03-12", "2027-03-15"), "2027-03-12 14:00", "2027-03-15 13:00"),
        ("America/New_York", ("2027-11-05", "2027-11-08"), "2027-11-05 13:00", "2027-11-08 14:00"),
    ],
    ids=["berlin-spring", "berlin-autumn", "new-york-spring", "new-york-autumn"],
)
def test_nine_to_five_stays_nine_to_five_local_across_a_change(conn, zone, days, first_before, first_after):
    team = make_team(conn)
    interviewer = make_interviewer(conn, team, zone=zone, hours=every_day("09:00", "17:00"))
    first_day, last_day = (dt.date.fromisoformat(day) for day in days)
    found = slots(
        conn, team.owner, interviewer, local(f"{first_day} 00:00", zone), local(f"{last_day} 23:59", zone)
    )
    # Friday to Monday, the change on the Sunday: eight slots a day from 09:00 local, each an hour long.
    dates = [first_day + dt.timedelta(days=offset) for offset in range((last_day - first_day).days + 1)]
    assert found == [local(f"{date} {hour:02}:00", zone) for date in dates for hour in range(9, 17)]
    assert found[0] == utc(first_before)  # the UTC offset moves by an hour between the two
    assert found[-8] == utc(first_after)


# Across the date line -----------------------------------------------------------------------------------

KIRITIMATI = "Pacific/Kiritimati"  # UTC+14
PAGO_PAGO = "Pacific/Pago_Pago"  # UTC-11: 25 hours behind, the same wall clock a day earlier


def test_the_interviewers_monday_is_the_candidates_sunday(conn):
    team = make_team(conn)
    interviewer = make_interviewer(conn, team, zone=KIRITIMATI, hours=[(1, "09:00", "12:00")])
    sunday = (local("2027-01-03 00:00", PAGO_PAGO), local("2027-01-04 00:00", PAGO_PAGO))
    found = slots(conn, team.owner, interviewer, *sunday)
    assert found == hourly("2027-01-03 19:00", 3)  # Monday 09:00-12:00 in Kiritimati
    assert {start.astimezone(ZoneInfo(PAGO_PAGO)).strftime("%A %H:%M") for start in found} == {
        "Sunday 08:00",
        "Sunday 09:00",
        "Sunday 10:00",
    }
    assert {start.astimezone(ZoneInfo(KIRITIMATI)).strftime("%A") for start in found} == {"Monday"}


def test_across_the_date_line_the_cap_counts_the_interviewers_day(conn):
    team = make_team(conn)
    interviewer = make_interviewer(
        conn,
        team,
        zone=KIRITIMATI,
        cap=1,
        # Sunday 20:00-23:00 and Monday 09:00-12:00 fall on the same UTC date (January 3); Monday
        # 20:00-23:00 on the next (January 4).
        hours=[(7, "20:00", "23:00"), (1, "09:00", "12:00"), (1, "20:00", "23:00")],
    )
    book(conn, team, interviewer, local("2027-01-04 09:00", KIRITIMATI))  # 2027-01-03 19:00 UTC
    saturday_to_monday = (local("2027-01-02 00:00", PAGO_PAGO), local("2027-01-05 00:00", PAGO_PAGO))
    # Their Monday is full, evening included; their Sunday is not, though it shares the UTC date.
    assert slots(conn, team.owner, interviewer, *saturday_to_monday) == hourly("2027-01-03 06:00", 3)


# Who may search -----------------------------------------------------------------------------------------


def test_staff_the_interviewer_and_platform_admins_see_slots_others_are_told_no_such_interviewer(conn):
    team = make_team(conn)
    recruiter, linked, unlinked, other_interviewer = (make_user(conn) for _ in range(4))
    for user, role in (
        (recruiter, "recruiter"),
        (linked, "interviewer"),
        (unlinked, "interviewer"),
        (other_interviewer, "interviewer"),
    ):
        add_member(conn, team.company, user, role)
    admin = make_user(conn, roles=("admin",))
    stranger = make_user(conn)
    make_company(conn, stranger)  # the owner of another company
    interviewer = make_interviewer(conn, team, hours=[(1, "09:00", "11:00")], user=linked)
    make_interviewer(conn, team, user=other_interviewer)
    day = (utc(f"{MONDAY} 00:00"), utc("2027-06-08 00:00"))
    for allowed in (team.owner, recruiter, linked, admin):
        assert slots(conn, allowed, interviewer, *day) == hourly(f"{MONDAY} 09:00", 2)
    for refused in (unlinked, other_interviewer, stranger):
        error = as_user(conn, refused).refused(
            "select * from public.available_slots(%s, %s, %s)", (interviewer, *day), sqlstate=NOT_FOUND
        )
        assert error.diag.message_primary == "no such interviewer"


# Bad searches ---------------------------------------------------------------------------------------------

FROM = utc("2027-06-07 00:00")
BAD_SEARCHES: dict[str, tuple[dict[str, Any], str, str]] = {
    "to-before-from": ({"to_at": FROM - HOUR}, INVALID, "to_at must be after from_at"),
    "zero-length": ({"to_at": FROM}, INVALID, "to_at must be after from_at"),
    "years-long": ({"to_at": FROM + dt.timedelta(days=800)}, INVALID, "search at most 62 days at a time"),
    "just-over-62-days": (
        {"to_at": FROM + dt.timedelta(days=62, minutes=1)},
        INVALID,
        "search at most 62 days at a time",
    ),
    "no-from": ({"from_at": None}, INVALID, "from_at and to_at are required"),
    "duration-0": ({"duration_minutes": 0}, INVALID, "duration_minutes: 5 to 480"),
    "duration-1000": ({"duration_minutes": 1000}, INVALID, "duration_minutes: 5 to 480"),
    "step-0": ({"step_minutes": 0}, INVALID, "step_minutes: 5 to 480"),
    "unknown-interviewer": ({"interviewer_id": str(uuid.uuid4())}, NOT_FOUND, "no such interviewer"),
}


def search_arguments(interviewer: str, changes: dict[str, Any]) -> dict[str, Any]:
    return {
        "interviewer_id": interviewer,
        "from_at": FROM,
        "to_at": FROM + dt.timedelta(days=7),
        "duration_minutes": 60,
        "step_minutes": None,
        **changes,
    }


@pytest.mark.parametrize(("changes", "sqlstate", "message"), BAD_SEARCHES.values(), ids=BAD_SEARCHES.keys())
def test_bad_searches_get_our_message(conn, changes, sqlstate, message):
    team = make_team(conn)
    interviewer = make_interviewer(conn, team, hours=every_day("09:00", "17:00"))
    error = as_user(conn, team.owner).refused(
        "select * from public.available_slots(%(interviewer_id)s, %(from_at)s, %(to_at)s,"
        " %(duration_minutes)s, %(step_minutes)s)",
        search_arguments(interviewer, changes),
        sqlstate=sqlstate,
    )
    assert error.diag.message_primary == message


def test_the_limits_themselves_are_accepted(conn):
    team = make_team(conn)
    interviewer = make_interviewer(conn, team, hours=[(1, "09:00", "17:00")])
    weeks = (FROM, FROM + dt.timedelta(days=62))  # nine Mondays
    assert len(slots(conn, team.owner, interviewer, *weeks, minutes=480)) == 9
    assert len(slots(conn, team.owner, interviewer, *weeks, minutes=5, step=480)) == 9
    assert len(slots(conn, team.owner, interviewer, FROM, FROM + dt.timedelta(days=1), minutes=5)) == 96


# Through real PostgREST --------------------------------------------------------------------------------


@contextmanager
def rest_client(url: str, user: User) -> Iterator[tuple[Client, list[httpx.Response]]]:
    """supabase-py as `user`, and the HTTP responses it received (APIError keeps no status)."""
    responses: list[httpx.Response] = []
    with httpx.Client(timeout=30, event_hooks={"response": [responses.append]}) as http:
        headers = bearer(token_for(user))
        yield (
            create_client(url, ANON_KEY, options=ClientOptions(headers=headers, httpx_client=http)),
            responses,
        )


def test_through_postgrest_slots_come_back_and_a_bad_search_is_a_400_with_our_message(api_url, committed):
    team = make_team(committed)
    interviewer = make_interviewer(committed, team, hours=[(1, "09:00", "11:00")])
    with rest_client(api_url, team.owner) as (client, responses):
        found = client.rpc(
            "available_slots",
            {
                "interviewer_id": interviewer,
                "from_at": f"{MONDAY}T00:00:00Z",
                "to_at": "2027-06-08T00:00:00Z",
            },
        ).execute()
        assert [dt.datetime.fromisoformat(row["starts_at"]) for row in found.data] == hourly(
            f"{MONDAY} 09:00", 2
        )
        with pytest.raises(APIError) as refused:
            client.rpc(
                "available_slots",
                {
                    "interviewer_id": interviewer,
                    "from_at": f"{MONDAY}T00:00:00Z",
                    "to_at": "2027-06-06T00:00:00Z",
                },
            ).execute()
    assert responses[-1].status_code == 400
    assert (refused.value.code, refused.value.message) == (INVALID, "to_at must be after from_at")
