"""The interview platform's emails, through the real worker to a real SMTP server: bookings, moves and
cancellations reach both sides with an iCalendar invitation parsed back here (one UID for an interview's
life, SEQUENCE counting its changes, METHOD:CANCEL at the end), demo requests reach sales, candidates get
their scheduling link, and the periodic job sends each reminder once."""

# The worker, SMTP and settings fixtures come from the email module's tests, imported by name (F811).
# ruff: noqa: F811

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

import icalendar
import psycopg
import pytest

from tests.support import User, add_member, as_anon, as_user, make_company, make_user, value
from tests.test_platform_email import (  # noqa: F401 (fixtures: the worker, SMTP, an empty queue per test)
    APP_URL,
    EMAIL_FROM,
    Jobs,
    MailServer,
    Received,
    empty_queue,
    jobs,
    outbox_rows,
    settings,
    smtp,
)


@dataclass
class Booking:
    company: str
    recruiter: User
    interviewer_user: User
    interviewer_id: str
    candidate_email: str
    starts_at: dt.datetime


def interviewer(conn: psycopg.Connection, company_id: str, owner: User, name: str) -> tuple[User, str]:
    """A member linked to a new interviewer of the company, free every day 00:00-24:00 (UTC)."""
    user = make_user(conn, full_name=name, email=f"{name.lower()}-{uuid.uuid4().hex[:6]}@example.com")
    conn.execute(
        "insert into public.company_members (company_id, user_id, role) values (%s, %s, 'interviewer')",
        (company_id, user.id),
    )
    interviewer_id = as_user(conn, owner).one(
        "insert into public.interviewers (company_id, user_id, display_name, time_zone)"
        " values (%s, %s, %s, 'UTC') returning id::text",
        (company_id, user.id, name),
    )["id"]
    for weekday in range(1, 8):
        conn.execute(
            "insert into public.interviewer_availability (interviewer_id, weekday, start_time, end_time)"
            " values (%s, %s, '00:00', '24:00')",
            (interviewer_id, weekday),
        )
    return user, interviewer_id


@pytest.fixture
def booking(committed: psycopg.Connection) -> Booking:
    """Acme (no notice, no buffers), an interviewer, and an interview booked by a recruiter tomorrow."""
    owner = make_user(committed, full_name="Olive Owner")
    company = make_company(committed, owner, name=f"Acme {uuid.uuid4().hex[:6]}")
    committed.execute("update public.companies set min_notice_minutes = 0 where id = %s", (company.id,))
    recruiter = make_user(committed, full_name="Rita Recruiter")
    add_member(committed, company, recruiter, "recruiter")
    user, interviewer_id = interviewer(committed, company.id, owner, "Ivy")
    starts_at = (dt.datetime.now(dt.UTC) + dt.timedelta(days=2)).replace(minute=0, second=0, microsecond=0)
    as_user(committed, recruiter).one(
        "select id from public.book_interview(%s, %s, 45, 'cara@example.com', null, 'Cara Candidate', null,"
        " 'https://meet.example.com/abc')",
        (interviewer_id, starts_at),
    )
    return Booking(company.name, recruiter, user, interviewer_id, "cara@example.com", starts_at)


def the_interview(conn: psycopg.Connection) -> str:
    return value(conn, "select id::text from public.interviews order by created_at desc limit 1")


def event_of(received: Received) -> tuple[icalendar.Calendar, icalendar.Event]:
    """The invite.ics part, parsed: the calendar and its one event."""
    [part] = [p for p in received.message.iter_attachments() if p.get_content_type() == "text/calendar"]
    assert part.get_filename() == "invite.ics"
    calendar = icalendar.Calendar.from_ical(part.get_payload(decode=True))
    assert part.get_param("method") == str(calendar["METHOD"])
    [event] = calendar.walk("VEVENT")
    return calendar, event


def attendees(event: icalendar.Event) -> set[str]:
    found = event.get("ATTENDEE")
    return {str(a).removeprefix("mailto:") for a in (found if isinstance(found, list) else [found])}


async def test_a_booking_sends_both_sides_a_calendar_request(committed, booking, jobs, settings, smtp):
    rows = outbox_rows(committed)
    assert sorted((r["template"], r["recipient"]) for r in rows) == [
        ("interview_scheduled", booking.candidate_email),
        ("interview_scheduled", booking.interviewer_user.email),
    ]
    await jobs.work(settings)

    for address in (booking.candidate_email, booking.interviewer_user.email):
        [received] = smtp.to(address)
        assert booking.company in received.message["Subject"]
        assert "https://meet.example.com/abc" in received.part("plain")
        calendar, event = event_of(received)
        assert str(calendar["METHOD"]) == "REQUEST"
        assert str(event["UID"]) == f"interview-{the_interview(committed)}@talentbase.example"
        assert event["SEQUENCE"] == 0
        assert event.decoded("DTSTART") == booking.starts_at
        assert event.decoded("DTEND") == booking.starts_at + dt.timedelta(minutes=45)
        assert str(event["LOCATION"]) == "https://meet.example.com/abc"
        assert str(event["ORGANIZER"]) == "mailto:no-reply@talentbase.example"
        assert attendees(event) == {booking.candidate_email, booking.interviewer_user.email}
    # A paragraph of its own, then the facts (the text part is what a plain-text reader sees).
    assert "Your interview is booked.\r\n\r\nWhen: " in smtp.to(booking.candidate_email)[0].part("plain")
    # Each side reads it from their side.
    assert "Ivy" in smtp.to(booking.candidate_email)[0].part("plain")
    assert "Cara Candidate" in smtp.to(booking.interviewer_user.email)[0].part("plain")


async def test_a_move_and_a_cancellation_update_the_same_event(committed, booking, jobs, settings, smtp):
    interview = the_interview(committed)
    later = booking.starts_at + dt.timedelta(hours=3)
    recruiter = as_user(committed, booking.recruiter)
    recruiter.one("select id from public.reschedule_interview(%s, %s)", (interview, later))
    recruiter.one("select id from public.cancel_interview(%s, 'The role is filled')", (interview,))
    await jobs.work(settings)

    # In the order of their sequence (the worker may send them in any order; calendars order by SEQUENCE).
    messages = sorted(smtp.to(booking.candidate_email), key=lambda m: event_of(m)[1]["SEQUENCE"])
    assert [m.message["Subject"].strip().split(":")[0] for m in messages] == [
        "Interview booked",
        "Interview moved",
        "Interview cancelled",
    ]
    events = [event_of(m) for m in messages]
    assert {str(event["UID"]) for _, event in events} == {f"interview-{interview}@talentbase.example"}
    assert [event["SEQUENCE"] for _, event in events] == [0, 1, 2]
    assert [str(calendar["METHOD"]) for calendar, _ in events] == ["REQUEST", "REQUEST", "CANCEL"]
    assert events[1][1].decoded("DTSTART") == later
    assert str(events[2][1]["STATUS"]) == "CANCELLED"
    assert "The role is filled" in messages[2].part("plain")
    assert len(smtp.to(booking.interviewer_user.email)) == 3


async def test_handing_an_interview_to_another_interviewer_cancels_it_for_the_first(
    committed, booking, jobs, settings, smtp
):
    owner_id = value(
        committed,
        "select user_id::text from public.company_members m join public.companies c on c.id = m.company_id"
        " where c.name = %s and m.role = 'owner'",
        (booking.company,),
    )
    company_id = value(committed, "select id::text from public.companies where name = %s", (booking.company,))
    owner = User(owner_id, "", {"sub": owner_id, "role": "authenticated"})
    other_user, other_id = interviewer(committed, company_id, owner, "Otto")
    as_user(committed, booking.recruiter).one(
        "select id from public.reschedule_interview(%s, %s, null, %s)",
        (the_interview(committed), booking.starts_at, other_id),
    )
    await jobs.work(settings)

    first = sorted(smtp.to(booking.interviewer_user.email), key=lambda m: event_of(m)[1]["SEQUENCE"])
    assert [str(event_of(m)[0]["METHOD"]) for m in first] == ["REQUEST", "CANCEL"]
    [taken_over] = smtp.to(other_user.email)
    calendar, event = event_of(taken_over)
    assert (str(calendar["METHOD"]), event["SEQUENCE"]) == ("REQUEST", 1)
    # The candidate's event keeps its UID and just moves on (here: to a new interviewer, same time).
    assert sorted(event_of(m)[1]["SEQUENCE"] for m in smtp.to(booking.candidate_email)) == [0, 1]
    assert {str(event_of(m)[0]["METHOD"]) for m in smtp.to(booking.candidate_email)} == {"REQUEST"}


async def test_a_demo_request_reaches_sales(committed, jobs, settings, smtp):
    as_anon(committed).rows(
        "insert into public.demo_requests (name, email, company_name, company_size, message)"
        " values ('Dee Visitor', 'Dee@Example.com', 'Globex', '51-200', 'Twice a week, & more')"
    )
    sales = value(committed, "select value #>> '{}' from private.config where key = 'sales_email'")
    await jobs.work(settings)
    [received] = smtp.to(sales)
    assert "Globex" in received.message["Subject"]
    text = received.part("plain")
    for fact in ("dee@example.com", "51-200", "Twice a week, & more"):
        assert fact in text
    assert "Twice a week, &amp; more" in received.part("html")
    assert not list(received.message.iter_attachments())


async def test_a_scheduling_invitation_emails_the_candidate_a_working_link(
    committed, booking, jobs, settings, smtp
):
    company_id = value(committed, "select id::text from public.companies where name = %s", (booking.company,))
    as_user(committed, booking.recruiter).rows(
        "insert into public.scheduling_invitations (company_id, candidate_email, candidate_name, interviewer_ids,"
        " duration_minutes) values (%s, 'Newt@Example.com', 'Newt', array[%s]::uuid[], 30)",
        (company_id, booking.interviewer_id),
    )
    await jobs.work(settings)
    [received] = smtp.to("newt@example.com")
    token = value(
        committed, "select context ->> 'token' from private.outbox where template = 'scheduling_invitation'"
    )
    assert f"{APP_URL}/schedule/{token}" in received.part("plain")
    # The link's token is the invitation's: the candidate's page reads it with no account.
    [details] = as_anon(committed).rows("select * from public.scheduling_invitation(%s)", (token,))
    assert (details["company_name"], details["duration_minutes"]) == (booking.company, 30)


async def reminders(jobs: Jobs, settings: Any) -> None:
    await jobs.app.configure_task("interviews:send_interview_reminders").defer_async(timestamp=0)
    await jobs.work(settings)


async def test_the_reminder_goes_out_once_the_lead_before(committed, booking, jobs, settings, smtp):
    assert jobs.schedule[("interviews:send_interview_reminders", "send_interview_reminders")] == "* * * * *"
    interview = the_interview(committed)
    committed.execute("update private.config set value = '\"3 days\"' where key = 'interview_reminder_lead'")
    try:
        # Booked (just now) after the point a reminder was due: the booking's own email is enough.
        await reminders(jobs, settings)
        assert [m.message["Subject"].strip().split(":")[0] for m in smtp.to(booking.candidate_email)] == [
            "Interview booked"
        ]
        assert value(
            committed, "select reminded_at is not null from public.interviews where id = %s", (interview,)
        )

        # Booked long before: one reminder to each side, and none again on the next runs.
        committed.execute(
            "update public.interviews set scheduled_at = now() - interval '7 days', reminded_at = null"
            " where id = %s",
            (interview,),
        )
        await reminders(jobs, settings)
        await reminders(jobs, settings)
        for address in (booking.candidate_email, booking.interviewer_user.email):
            subjects = [m.message["Subject"].strip().split(":")[0] for m in smtp.to(address)]
            assert subjects == ["Interview booked", "Reminder"]
            _, event = event_of(smtp.to(address)[-1])
            assert event["SEQUENCE"] == 0

        # A move gives the new time a reminder of its own.
        as_user(committed, booking.recruiter).one(
            "select id from public.reschedule_interview(%s, %s)",
            (interview, booking.starts_at + dt.timedelta(hours=1)),
        )
        committed.execute(
            "update public.interviews set scheduled_at = now() - interval '7 days' where id = %s",
            (interview,),
        )
        await reminders(jobs, settings)
        subjects = [m.message["Subject"].strip().split(":")[0] for m in smtp.to(booking.candidate_email)]
        assert subjects == ["Interview booked", "Reminder", "Interview moved", "Reminder"]
    finally:
        committed.execute(
            "update private.config set value = '\"24 hours\"' where key = 'interview_reminder_lead'"
        )
