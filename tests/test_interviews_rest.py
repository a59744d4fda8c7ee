"""The interview platform through real PostgREST, as a frontend meets it (supabase-py behind `/rest/v1`).

Three parts: a sample of test_interviews' matrices run both ways, the SQL way (an actor in a rolled-back
transaction) and through PostgREST, which must give the same rows and the same refusals; demo requests
from anonymous visitors with the anon key (minimal returns, messages, the daily limits per address and
per client, the email to sales); and the soft deletes and the HTTP statuses a frontend sees.

Data is written as the superuser with autocommit (`committed`) so that PostgREST sees it. The module's
database is shared by its tests: each builds its own world and filters on its ids, and the demo request
tests start from an empty table, since the limit per client counts every request from 127.0.0.1.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, LiteralString

import httpx
import psycopg
import pytest
from postgrest.exceptions import APIError
from supabase import Client

from tests.support import Outcome, rest_outcome, sql_outcome, token_for, value
from tests.test_interviews import (
    ACME_MEMBERS,
    CHECK_VIOLATION,
    CONFLICT,
    INSUFFICIENT_PRIVILEGE,
    NOT_FOUND,
    World,
    actor,
    make_world,
)
from tests.test_local_rest import ANON_KEY, anon_client, client_as, client_for, keys


@pytest.fixture
def world(committed: psycopg.Connection) -> World:
    return make_world(committed)


# The SQL way and PostgREST agree ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    who: str
    sql: LiteralString  # text columns, in the order the REST query selects them; params: World.params
    rest: Callable[[Client, dict[str, Any]], Any]


def ids(params: dict[str, Any]) -> list[str]:
    return params["all"]


AGREEMENT = [
    # select
    pytest.param(
        Case(
            "anon",
            "select id::text from public.interviews where id = any(%(all)s::uuid[])",
            lambda c, p: c.table("interviews").select("id").in_("id", ids(p)),
        ),
        id="anon-interviews",
    ),
    pytest.param(
        Case(
            "anon",
            "select id::text from public.interview_notes",
            lambda c, p: c.table("interview_notes").select("id"),
        ),
        id="anon-interview_notes",
    ),
    pytest.param(
        Case(
            "anon",
            "select id::text from public.interviewer_availability",
            lambda c, p: c.table("interviewer_availability").select("id"),
        ),
        id="anon-interviewer_availability",
    ),
    pytest.param(
        Case(
            "candidate",
            "select id::text, status::text from public.interviews where id = any(%(all)s::uuid[])",
            lambda c, p: c.table("interviews").select("id, status").in_("id", ids(p)),
        ),
        id="candidate-interviews",
    ),
    pytest.param(
        Case(
            "candidate",
            "select id::text from public.interview_notes where interview_id = any(%(all)s::uuid[])",
            lambda c, p: c.table("interview_notes").select("id").in_("interview_id", ids(p)),
        ),
        id="candidate-interview_notes",
    ),
    pytest.param(
        Case(
            "candidate",
            # Embedding the notes in the interview they may read brings none either.
            "select x.id::text, coalesce((select json_agg(n.id) from public.interview_notes n"
            " where n.interview_id = x.id), '[]') as notes from public.interviews x where x.id = %(upcoming)s",
            lambda c, p: c.table("interviews").select("id, interview_notes(id)").eq("id", p["upcoming"]),
        ),
        id="candidate-embeds-notes",
    ),
    pytest.param(
        Case(
            "interviewer",
            "select id::text, body from public.interview_notes where interview_id = any(%(all)s::uuid[])",
            lambda c, p: c.table("interview_notes").select("id, body").in_("interview_id", ids(p)),
        ),
        id="interviewer-interview_notes",
    ),
    pytest.param(
        Case(
            "recruiter",
            "select id::text, display_name from public.interviewers where id = any(%(all)s::uuid[])",
            lambda c, p: c.table("interviewers").select("id, display_name").in_("id", ids(p)),
        ),
        id="recruiter-interviewers",
    ),
    pytest.param(
        Case(
            "zeta_owner",
            "select interviewer_id::text, weekday from public.interviewer_availability"
            " where interviewer_id = any(%(all)s::uuid[])",
            lambda c, p: (
                c.table("interviewer_availability")
                .select("interviewer_id, weekday")
                .in_("interviewer_id", ids(p))
            ),
        ),
        id="zeta_owner-interviewer_availability",
    ),
    pytest.param(
        Case(
            "stranger",
            "select id::text from public.scheduling_invitations where id = any(%(all)s::uuid[])",
            lambda c, p: c.table("scheduling_invitations").select("id").in_("id", ids(p)),
        ),
        id="stranger-scheduling_invitations",
    ),
    pytest.param(
        Case(
            "platform_admin",
            "select id::text, status::text from public.demo_requests where id = %(demo)s",
            lambda c, p: c.table("demo_requests").select("id, status").eq("id", p["demo"]),
        ),
        id="platform_admin-demo_requests",
    ),
    pytest.param(
        Case(
            "owner",
            "select id::text from public.demo_requests where id = %(demo)s",
            lambda c, p: c.table("demo_requests").select("id").eq("id", p["demo"]),
        ),
        id="owner-demo_requests",
    ),
    pytest.param(
        Case(
            "platform_admin",
            "select id::text from public.interview_notes where interview_id = any(%(all)s::uuid[])",
            lambda c, p: c.table("interview_notes").select("id").in_("interview_id", ids(p)),
        ),
        id="platform_admin-interview_notes",
    ),
    # insert, update, delete
    pytest.param(
        Case(
            "recruiter",
            "update public.interviews set starts_at = starts_at + interval '1 hour' where id = %(upcoming)s"
            " returning id::text",
            lambda c, p: (
                c.table("interviews").update({"starts_at": "2030-01-01T10:00:00Z"}).eq("id", p["upcoming"])
            ),
        ),
        id="recruiter-moves-interview-directly",
    ),
    pytest.param(
        Case(
            "recruiter",
            "update public.interviews set status = 'completed' where id = %(upcoming)s returning id::text",
            lambda c, p: c.table("interviews").update({"status": "completed"}).eq("id", p["upcoming"]),
        ),
        id="recruiter-sets-status-directly",
    ),
    pytest.param(
        Case(
            "recruiter",
            "update public.interviews set meeting_link = 'https://meet.example/r' where id = %(upcoming)s"
            " returning id::text, meeting_link",
            lambda c, p: (
                c.table("interviews")
                .update({"meeting_link": "https://meet.example/r"})
                .eq("id", p["upcoming"])
                .select("id, meeting_link")
            ),
        ),
        id="recruiter-sets-meeting-link",
    ),
    pytest.param(
        Case(
            "candidate",
            "update public.interviews set meeting_link = 'https://evil.example' where id = %(upcoming)s"
            " returning id::text",
            lambda c, p: (
                c.table("interviews")
                .update({"meeting_link": "https://evil.example"})
                .eq("id", p["upcoming"])
                .select("id")
            ),
        ),
        id="candidate-sets-meeting-link",
    ),
    pytest.param(
        Case(
            "recruiter",
            "insert into public.interviewers (company_id, display_name, time_zone) values (%(acme)s, 'Nia', 'UTC')"
            " returning display_name",
            lambda c, p: (
                c.table("interviewers")
                .insert({"company_id": p["acme"], "display_name": "Nia", "time_zone": "UTC"})
                .select("display_name")
            ),
        ),
        id="recruiter-adds-interviewer",
    ),
    pytest.param(
        Case(
            "owner",
            "insert into public.interviewers (company_id, display_name, time_zone) values (%(acme)s, 'Nia', 'UTC')"
            " returning display_name, time_zone",
            lambda c, p: (
                c.table("interviewers")
                .insert({"company_id": p["acme"], "display_name": "Nia", "time_zone": "UTC"})
                .select("display_name, time_zone")
            ),
        ),
        id="owner-adds-interviewer",
    ),
    pytest.param(
        Case(
            "owner",
            "update public.interviewers set time_zone = 'Mars/Base' where id = %(ivy)s returning id::text",
            lambda c, p: c.table("interviewers").update({"time_zone": "Mars/Base"}).eq("id", p["ivy"]),
        ),
        id="owner-sets-unknown-time-zone",
    ),
    pytest.param(
        Case(
            "interviewer",
            "insert into public.interviewer_availability (interviewer_id, weekday, start_time, end_time)"
            " values (%(ivy)s, 3, '18:00', '19:00') returning weekday, start_time::text",
            lambda c, p: (
                c.table("interviewer_availability")
                .insert(
                    {"interviewer_id": p["ivy"], "weekday": 3, "start_time": "18:00", "end_time": "19:00"}
                )
                .select("weekday, start_time")
            ),
        ),
        id="interviewer-adds-own-hours",
    ),
    pytest.param(
        Case(
            "interviewer",
            "insert into public.interviewer_availability (interviewer_id, weekday, start_time, end_time)"
            " values (%(rex)s, 3, '18:00', '19:00') returning weekday",
            lambda c, p: (
                c.table("interviewer_availability")
                .insert(
                    {"interviewer_id": p["rex"], "weekday": 3, "start_time": "18:00", "end_time": "19:00"}
                )
                .select("weekday")
            ),
        ),
        id="interviewer-adds-colleagues-hours",
    ),
    pytest.param(
        Case(
            "stranger",
            "delete from public.interviewer_availability where interviewer_id = %(ivy)s returning id::text",
            lambda c, p: (
                c.table("interviewer_availability").delete().eq("interviewer_id", p["ivy"]).select("id")
            ),
        ),
        id="stranger-deletes-hours",
    ),
    pytest.param(
        Case(
            "interviewer",
            "delete from public.interview_notes where id = %(ivy_note)s returning id::text",
            lambda c, p: c.table("interview_notes").delete().eq("id", p["ivy_note"]).select("id"),
        ),
        id="interviewer-deletes-own-note",
    ),
    pytest.param(
        Case(
            "recruiter",
            "delete from public.interview_notes where id = %(ivy_note)s returning id::text",
            lambda c, p: c.table("interview_notes").delete().eq("id", p["ivy_note"]).select("id"),
        ),
        id="recruiter-deletes-colleagues-note",
    ),
    pytest.param(
        Case(
            "candidate",
            "insert into public.interview_notes (interview_id, body) values (%(upcoming)s, 'Hire me') returning id",
            lambda c, p: c.table("interview_notes").insert(
                {"interview_id": p["upcoming"], "body": "Hire me"}
            ),
        ),
        id="candidate-writes-note",
    ),
    pytest.param(
        Case(
            "stranger",
            "insert into public.demo_requests (name, email, company_name) values ('S', 's@example.com', 'S')"
            " returning id",
            lambda c, p: c.table("demo_requests").insert(
                {"name": "S", "email": "s@example.com", "company_name": "S"}
            ),
        ),
        id="stranger-reads-back-demo-request",
    ),
    pytest.param(
        Case(
            "stranger",
            "update public.demo_requests set status = 'closed' where id = %(demo)s returning id::text",
            lambda c, p: (
                c.table("demo_requests").update({"status": "closed"}).eq("id", p["demo"]).select("id")
            ),
        ),
        id="stranger-handles-demo-request",
    ),
    # functions
    pytest.param(
        Case(
            "candidate",
            "select status::text from public.cancel_interview(%(upcoming)s, 'Found a job')",
            lambda c, p: c.rpc(
                "cancel_interview", {"interview_id": p["upcoming"], "reason": "Found a job"}
            ).select("status"),
        ),
        id="candidate-cancels",
    ),
    pytest.param(
        Case(
            "candidate",
            "select id::text from public.reschedule_interview(%(upcoming)s, %(starts_at)s)",
            lambda c, p: c.rpc(
                "reschedule_interview",
                {"interview_id": p["upcoming"], "starts_at": p["starts_at"].isoformat()},
            ).select("id"),
        ),
        id="candidate-reschedules",
    ),
    pytest.param(
        Case(
            "interviewer",
            "select status::text from public.record_interview_outcome(%(past_ivy)s, 'completed')",
            lambda c, p: c.rpc(
                "record_interview_outcome", {"interview_id": p["past_ivy"], "outcome": "completed"}
            ).select("status"),
        ),
        id="interviewer-records-outcome",
    ),
    pytest.param(
        Case(
            "interviewer",
            "select id::text from public.delete_interviewer(%(rex)s)",
            lambda c, p: c.rpc("delete_interviewer", {"interviewer_id": p["rex"]}).select("id"),
        ),
        id="interviewer-retires-colleague",
    ),
    pytest.param(
        Case(
            "owner",
            "select public.delete_company(%(acme)s)::text",
            lambda c, p: c.rpc("delete_company", {"company_id": p["acme"]}),
        ),
        id="owner-deletes-company-with-upcoming-interview",
    ),
    pytest.param(
        Case(
            "owner",
            "select id::text from public.restore_company(%(acme)s)",
            lambda c, p: c.rpc("restore_company", {"company_id": p["acme"]}).select("id"),
        ),
        id="owner-restores-company",
    ),
    pytest.param(
        Case(
            "stranger",
            "select starts_at from public.available_slots(%(ivy)s, now(), now() + interval '1 day')",
            lambda c, p: c.rpc(
                "available_slots",
                {
                    "interviewer_id": p["ivy"],
                    "from_at": "2020-01-01T00:00:00Z",
                    "to_at": "2020-01-02T00:00:00Z",
                },
            ),
        ),
        id="stranger-lists-free-slots",
    ),
    pytest.param(
        Case(
            "service",
            "select id::text from public.book_interview(%(ivy)s, %(starts_at)s, 60, 'x@example.com')",
            lambda c, p: c.rpc(
                "book_interview",
                {
                    "interviewer_id": p["ivy"],
                    "starts_at": p["starts_at"].isoformat(),
                    "candidate_email": "x@example.com",
                },
            ).select("id"),
        ),
        id="service-books",
    ),
]


def case_sql(conn: psycopg.Connection, world: World, case: Case) -> Outcome:
    return sql_outcome(conn, actor(conn, world, case.who), case.sql, world.params(case.who))


@pytest.mark.parametrize("case", AGREEMENT)
def test_the_sql_way_and_postgrest_agree(api_url, world, conn, case):
    expected = case_sql(conn, world, case)
    assert rest_outcome(case.rest(client_as(api_url, world, case.who), world.params(case.who))) == expected


def test_the_agreement_cases_cover_rows_empty_answers_and_refusals(world, conn):
    # Agreement alone would pass if both sides refused everything: the cases must show each outcome.
    found = [case_sql(conn, world, param.values[0]) for param in AGREEMENT]
    assert any(kind == "rows" and rows for kind, rows in found)
    assert ("rows", []) in found
    assert {code for kind, code in found if kind == "refused"} == {
        INSUFFICIENT_PRIVILEGE,
        CHECK_VIOLATION,
        NOT_FOUND,
        CONFLICT,
    }


# HTTP statuses a frontend sees ------------------------------------------------------------------------------


def headers_as(world: World, who: str, **extra: str) -> dict[str, str]:
    """The anon key, with a signed-in user's token unless `who` is anon, as supabase-js sends them."""
    headers = keys(extra, key=ANON_KEY)
    if who != "anon":
        headers["Authorization"] = f"Bearer {token_for(getattr(world, who))}"
    return headers


@pytest.mark.parametrize(
    ("who", "function", "body", "status", "code", "message"),
    [
        pytest.param(
            "stranger",
            "cancel_interview",
            lambda p: {"interview_id": p["upcoming"]},
            404,
            NOT_FOUND,
            "no such interview",
            id="not-yours-is-404",
        ),
        pytest.param(
            "owner",
            "delete_company",
            lambda p: {"company_id": p["acme"]},
            409,
            CONFLICT,
            "this company has upcoming interviews: cancel them first",
            id="upcoming-interview-is-409",
        ),
        pytest.param(
            "admin",
            "delete_interviewer",
            lambda p: {"interviewer_id": p["ivy"]},
            409,
            CONFLICT,
            "this interviewer has upcoming interviews: move or cancel them first",
            id="busy-interviewer-is-409",
        ),
        pytest.param(
            "recruiter",
            "book_interview",
            lambda p: {
                "interviewer_id": p["ivy"],
                "starts_at": p["starts_at"].isoformat(),
                "candidate_email": "x@example.com",
            },
            409,
            CONFLICT,
            "that slot cannot be booked: the interviewer has another interview then (buffers included)",
            id="taken-slot-is-409",
        ),
        pytest.param(
            "recruiter",
            "book_interview",
            lambda p: {
                "interviewer_id": p["ivy"],
                "starts_at": p["starts_at"].isoformat(),
                "duration_minutes": 3,
                "candidate_email": "x@example.com",
            },
            400,
            "22023",
            "duration_minutes: 5 to 480",
            id="bad-duration-is-400",
        ),
        pytest.param(
            "owner",
            "restore_company",
            lambda p: {"company_id": p["acme"]},
            403,
            INSUFFICIENT_PRIVILEGE,
            "only platform admins restore companies",
            id="owner-restoring-is-403",
        ),
        pytest.param(
            "anon",
            "cancel_interview",
            lambda p: {"interview_id": p["upcoming"]},
            401,
            INSUFFICIENT_PRIVILEGE,
            "permission denied for function cancel_interview",
            id="anon-is-401",
        ),
    ],
)
def test_functions_answer_with_http_statuses_and_our_messages(
    api_url, world, who, function, body, status, code, message
):
    response = httpx.post(
        f"{api_url}/rest/v1/rpc/{function}", json=body(world.params(who)), headers=headers_as(world, who)
    )
    assert (response.status_code, response.json()["code"], response.json()["message"]) == (
        status,
        code,
        message,
    )


def test_bad_hours_are_a_400_with_our_message(api_url, world, committed):
    response = httpx.post(
        f"{api_url}/rest/v1/interviewer_availability",
        json={"interviewer_id": world.ids["ivy"], "weekday": 8, "start_time": "09:00", "end_time": "17:00"},
        headers=headers_as(world, "interviewer", Prefer="return=minimal"),
    )
    assert response.status_code == 400
    assert response.json() == {
        "code": CHECK_VIOLATION,
        "details": None,
        "hint": None,
        "message": "weekday: 1 (Monday) to 7 (Sunday)",
    }
    assert (
        value(
            committed,
            "select count(*) from public.interviewer_availability where interviewer_id = %s",
            (world.ids["ivy"],),
        )
        == 7
    )


# Demo requests from anonymous visitors ---------------------------------------------------------------------

DEMO_REQUESTS = "/rest/v1/demo_requests"


@pytest.fixture
def no_demo_requests(committed: psycopg.Connection) -> None:
    """An empty demo_requests table: the limit per client counts every request this module sends from
    127.0.0.1."""
    committed.execute("delete from public.demo_requests")


def demo(email: str, **fields: str) -> dict[str, str]:
    return {"name": "Ada Lovelace", "email": email, "company_name": "Analytical Engines", **fields}


def new_email(tag: str = "ada") -> str:
    return f"{tag}-{uuid.uuid4().hex[:8]}@example.com"


def send(url: str, row: dict[str, str], **headers: str) -> httpx.Response:
    """A demo request as the website sends it: the anon key, return=minimal unless told."""
    return httpx.post(
        f"{url}{DEMO_REQUESTS}", json=row, headers=keys({"Prefer": "return=minimal", **headers}, key=ANON_KEY)
    )


def config(conn: psycopg.Connection, key: str) -> Any:
    return value(conn, "select value from private.config where key = %s", (key,))


def test_demo_request_is_written_once_and_emailed_to_sales(api_url, committed, no_demo_requests):
    email = new_email()
    result = (
        anon_client(api_url)
        .table("demo_requests")
        .insert(demo(email, company_size="11-50", message="Forty seats"), returning="minimal")
        .execute()
    )
    assert result.data == []
    stored = committed.execute(
        "select name, company_name, company_size, message, status::text, host(client_address), handled_by"
        " from public.demo_requests where email = %s",
        (email,),
    ).fetchall()
    assert stored == [
        ("Ada Lovelace", "Analytical Engines", "11-50", "Forty seats", "new", "127.0.0.1", None)
    ]
    sales = config(committed, "sales_email")
    assert sales == "sales@talentbase.local"
    emails = committed.execute(
        "select recipient, context - 'created_at' from private.outbox"
        " where template = 'demo_request' and context ->> 'email' = %s",
        (email,),
    ).fetchall()
    assert emails == [
        (
            sales,
            {
                "name": "Ada Lovelace",
                "email": email,
                "company_name": "Analytical Engines",
                "company_size": "11-50",
                "message": "Forty seats",
            },
        )
    ]


def test_demo_request_read_back_is_refused_and_leaks_nothing(api_url, world, committed, no_demo_requests):
    earlier, attempted = new_email("earlier"), new_email("attempt")
    assert send(api_url, demo(earlier)).status_code == 201
    # supabase-py's default is return=representation: refused whole, nothing written.
    with pytest.raises(APIError) as refused:
        anon_client(api_url).table("demo_requests").insert(demo(attempted)).execute()
    assert refused.value.code == INSUFFICIENT_PRIVILEGE
    response = send(api_url, demo(attempted), Prefer="return=representation")
    assert response.status_code == 401
    assert set(response.json()) == {"code", "details", "hint", "message"}
    assert earlier not in response.text
    assert attempted not in response.text
    # Nor as a signed-in user, nor by reading the table.
    with pytest.raises(APIError) as signed_in:
        client_for(api_url, world.stranger).table("demo_requests").insert(demo(attempted)).execute()
    assert signed_in.value.code == INSUFFICIENT_PRIVILEGE
    with pytest.raises(APIError) as read:
        anon_client(api_url).table("demo_requests").select("email").execute()
    assert read.value.code == INSUFFICIENT_PRIVILEGE
    assert client_for(api_url, world.stranger).table("demo_requests").select("email").execute().data == []
    assert value(committed, "select count(*) from public.demo_requests where email = %s", (attempted,)) == 0
    assert value(committed, "select count(*) from public.demo_requests where email = %s", (earlier,)) == 1


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        pytest.param(
            {"email": "ada at example.com"}, "email: an email address such as ada@example.com", id="bad-email"
        ),
        pytest.param(
            {"email": "<b>ada</b>@example.com"},
            "email: an email address such as ada@example.com",
            id="markup-email",
        ),
        pytest.param({"name": "<b>Ada</b>"}, "name: 1 to 200 characters, no markup", id="markup-name"),
        pytest.param({"name": "   "}, "name: 1 to 200 characters, no markup", id="blank-name"),
        pytest.param(
            {"company_name": "x" * 201}, "company_name: 1 to 200 characters, no markup", id="long-company"
        ),
        pytest.param(
            {"message": "x" * 2001}, "message: at most 2,000 characters, no markup", id="long-message"
        ),
        pytest.param(
            {"message": "<script>alert(1)</script>"},
            "message: at most 2,000 characters, no markup",
            id="markup-message",
        ),
        pytest.param(
            {"company_size": "huge"},
            "company_size: one of 1-10, 11-50, 51-200, 201-1000, 1001+",
            id="bad-company-size",
        ),
    ],
)
def test_demo_request_bad_input_is_a_400_with_our_message(
    api_url, committed, no_demo_requests, fields, message
):
    response = send(api_url, {**demo(new_email()), **fields})
    assert response.status_code == 400
    assert response.json() == {"code": CHECK_VIOLATION, "details": None, "hint": None, "message": message}
    assert "violates check constraint" not in response.text
    assert value(committed, "select count(*) from public.demo_requests") == 0


def test_demo_requests_per_email_limit_is_a_429(api_url, committed, no_demo_requests):
    limit = config(committed, "demo_requests_per_email_per_day")
    assert limit == 3
    email = new_email()
    # The same address however it is spelled.
    for spelling in [email, email.upper(), f"  {email}  "][:limit]:
        assert send(api_url, demo(spelling)).status_code == 201
    response = send(api_url, demo(email.title()))
    assert response.status_code == 429
    assert (
        response.json()["message"]
        == "too many demo requests from this email address today; we will be in touch"
    )
    assert value(committed, "select count(*) from public.demo_requests where email = %s", (email,)) == limit
    assert send(api_url, demo(new_email("grace"))).status_code == 201


def test_demo_requests_per_client_limit_is_keyed_on_the_peer_not_on_what_the_client_claims(
    api_url, committed, no_demo_requests
):
    limit = config(committed, "demo_requests_per_address_per_day")
    assert limit == 10
    for _ in range(limit):
        assert send(api_url, demo(new_email()), **{"X-Forwarded-For": "1.2.3.4"}).status_code == 201
    addresses = committed.execute(
        "select host(client_address), count(*) from public.demo_requests group by 1"
    ).fetchall()
    assert addresses == [("127.0.0.1", limit)]
    # A fresh address and any claim of another client: still the same peer, still over its limit.
    for claim in (
        {"X-Forwarded-For": "5.6.7.8"},
        {"X-Forwarded-For": "5.6.7.8, 9.9.9.9"},
        {"X-Real-IP": "9.9.9.9"},
        {"Forwarded": "for=9.9.9.9"},
        {},
    ):
        response = send(api_url, demo(new_email()), **claim)
        assert response.status_code == 429, (claim, response.text)
        assert (
            response.json()["message"] == "too many demo requests from this network today; try again tomorrow"
        )
    assert value(committed, "select count(*) from public.demo_requests") == limit


def test_demo_requests_only_platform_admins_read_and_handle_them(api_url, world, committed):
    demo_id = world.ids["demo"]
    admin = client_for(api_url, world.platform_admin).table("demo_requests")
    assert admin.select("id, status").eq("id", demo_id).execute().data == [{"id": demo_id, "status": "new"}]
    handled = admin.update({"status": "contacted"}).eq("id", demo_id).execute()
    assert [(row["status"], row["handled_by"]) for row in handled.data] == [
        ("contacted", world.platform_admin.id)
    ]
    for who in ("owner", "stranger", "candidate"):
        table = client_for(api_url, getattr(world, who)).table("demo_requests")
        assert table.select("id").eq("id", demo_id).execute().data == []
        assert table.update({"status": "closed"}).eq("id", demo_id).execute().data == []
    with pytest.raises(APIError) as anon:
        anon_client(api_url).table("demo_requests").update({"status": "closed"}).eq("id", demo_id).execute()
    assert anon.value.code == INSUFFICIENT_PRIVILEGE
    assert committed.execute(
        "select status::text, handled_by::text from public.demo_requests where id = %s", (demo_id,)
    ).fetchone() == ("contacted", world.platform_admin.id)


# Soft deletes --------------------------------------------------------------------------------------------

# Per table, the column to find a world's rows by (hours and notes by what they belong to).
KEYS = {
    "interviewers": "id",
    "interviewer_availability": "interviewer_id",
    "interviewer_date_overrides": "interviewer_id",
    "interviews": "id",
    "interview_notes": "interview_id",
    "scheduling_invitations": "id",
    "companies": "id",
}


def acme_rows(url: str, world: World, who: str) -> dict[str, int]:
    """How many of Acme's rows `who` reads through PostgREST, per table."""
    acme = [
        world.named()[name]
        for name in ("acme", "ivy", "rex", "upcoming", "past_ivy", "past_rex", "invitation")
    ]
    client = client_as(url, world, who)
    return {
        table: len(client.table(table).select(key).in_(key, acme).execute().data)
        for table, key in KEYS.items()
    }


def test_a_deleted_company_vanishes_for_its_members_through_rest(api_url, world, committed):
    owner = client_for(api_url, world.owner)
    with pytest.raises(APIError) as kept:
        owner.rpc("delete_company", {"company_id": world.acme.id}).execute()
    assert kept.value.code == CONFLICT
    before = {who: acme_rows(api_url, world, who) for who in (*ACME_MEMBERS, "platform_admin")}
    assert before["recruiter"]["interviews"] == 3
    client_for(api_url, world.recruiter).rpc(
        "cancel_interview", {"interview_id": world.ids["upcoming"]}
    ).execute()
    owner.rpc("delete_company", {"company_id": world.acme.id}).execute()

    for who in ACME_MEMBERS:
        assert acme_rows(api_url, world, who) == dict.fromkeys(KEYS, 0), who
    assert acme_rows(api_url, world, "platform_admin") == before["platform_admin"]
    assert (
        value(committed, "select count(*) from public.interviews where company_id = %s", (world.acme.id,))
        == 3
    )
    deleted = committed.execute(
        "select deleted_at is not null, deleted_by::text from public.companies where id = %s",
        (world.acme.id,),
    ).fetchone()
    assert deleted == (True, world.owner.id)

    restored = client_for(api_url, world.platform_admin).rpc("restore_company", {"company_id": world.acme.id})
    assert restored.execute().data["deleted_at"] is None
    for who in ACME_MEMBERS:
        assert acme_rows(api_url, world, who) == before[who], who


def test_a_retired_interviewer_through_rest(api_url, world, committed):
    rex = world.ids["rex"]

    def listed(who: str) -> set[str]:
        rows = (
            client_for(api_url, getattr(world, who))
            .table("interviewers")
            .select("id")
            .eq("company_id", world.acme.id)
        )
        return world.names(row["id"] for row in rows.execute().data)

    with pytest.raises(APIError) as busy:
        client_for(api_url, world.owner).rpc(
            "delete_interviewer", {"interviewer_id": world.ids["ivy"]}
        ).execute()
    assert busy.value.code == CONFLICT
    retired = client_for(api_url, world.admin).rpc("delete_interviewer", {"interviewer_id": rex}).execute()
    assert retired.data["deleted_at"] is not None
    assert {who: listed(who) for who in ACME_MEMBERS} == {
        "owner": {"ivy", "rex"},
        "admin": {"ivy", "rex"},
        "recruiter": {"ivy"},
        "interviewer": {"ivy"},
    }
    past = (
        client_for(api_url, world.recruiter)
        .table("interviews")
        .select("interviewer_id")
        .eq("id", world.ids["past_rex"])
    )
    assert past.execute().data == [{"interviewer_id": rex}]
    client_for(api_url, world.owner).rpc("restore_interviewer", {"interviewer_id": rex}).execute()
    assert listed("recruiter") == {"ivy", "rex"}
