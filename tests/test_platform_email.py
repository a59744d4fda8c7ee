"""Email: introduction triggers write the outbox, the real procrastinate worker sends it to a real SMTP
server (aiosmtpd on 127.0.0.1), through outages, retries, duplicate jobs and a worker killed mid-send."""

from __future__ import annotations

import asyncio
import contextlib
import email
import logging
import os
import sys
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import procrastinate
import psycopg
import pytest
from aiosmtpd.controller import Controller
from procrastinate.periodic import PeriodicRegistry
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from app import CAPABILITIES
from rpc.local.rest import free_port
from rpc.platform import email as outbox
from rpc.platform.capabilities import email_template_dirs
from rpc.platform.jobs import Queue
from rpc.platform.settings import Settings
from tests.support import User, as_user, make_company, make_user, work_until_idle

ROOT = Path(__file__).resolve().parents[1]
APP_URL = "https://app.example.test"
EMAIL_FROM = "Talentbase <no-reply@talentbase.example>"
PHONE = "+44 20 7946 0123"
LINKEDIN = "https://www.linkedin.com/in/ada-example"


# A real SMTP server --------------------------------------------------------------------------------------


@dataclass
class Received:
    recipients: list[str]
    message: EmailMessage

    def part(self, subtype: str) -> str:
        body = self.message.get_body((subtype,))
        assert body is not None, f"no text/{subtype} part"
        return body.get_content()

    def readable(self) -> str:
        """What a reader sees: the subject and both parts, decoded (the raw message has random MIME
        boundaries, whose digits could contain anything)."""
        return "\n".join((self.message["Subject"], self.part("plain"), self.part("html")))


class Collector:
    """aiosmtpd handler: keeps what it accepts. Holding, it lets DATA wait until released, and notes when
    the client vanished before the server accepted (aiosmtpd cancels the handler on a lost connection)."""

    def __init__(self) -> None:
        self.messages: list[Received] = []
        self.hold = False
        self.held: EmailMessage | None = None
        self.unknown: set[str] = set()  # addresses refused for good (550)
        self.busy: set[str] = set()  # addresses refused for now (450)
        self.in_flight = threading.Event()
        self.release = threading.Event()
        self.abandoned = threading.Event()

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        if address in self.unknown:
            return "550 5.1.1 No such mailbox"
        if address in self.busy:
            return "450 4.2.1 Mailbox busy, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = email.message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        if self.hold:
            self.held = parsed
            self.in_flight.set()
            try:
                # Released from the test's thread, which cannot set an asyncio.Event of this loop.
                while not self.release.is_set():  # noqa: ASYNC110
                    await asyncio.sleep(0.01)
            except asyncio.CancelledError:
                self.abandoned.set()
                raise
        self.messages.append(Received(list(envelope.rcpt_tos), parsed))
        return "250 Message accepted for delivery"


class MailServer:
    def __init__(self) -> None:
        self.port = free_port()
        self.handler = Collector()
        self._controller: Controller | None = None

    def start(self) -> None:
        self._controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    @property
    def messages(self) -> list[Received]:
        return self.handler.messages

    def to(self, address: str) -> list[Received]:
        return [m for m in self.messages if m.recipients == [address]]


@pytest.fixture
def smtp() -> Iterator[MailServer]:
    server = MailServer()
    server.start()
    yield server
    server.handler.release.set()
    server.stop()


@pytest.fixture
def settings(database, smtp: MailServer) -> Settings:
    return database.settings(
        smtp_host="127.0.0.1",
        smtp_port=smtp.port,
        smtp_tls="none",
        smtp_user=None,
        smtp_timeout_s=5,
        email_from=EMAIL_FROM,
        app_url=APP_URL,
    )


# The worker ----------------------------------------------------------------------------------------------


@dataclass
class Jobs:
    """rpc.platform.jobs' app on this module's database, its periodic schedule set aside: the clock plays no part
    in these tests (a sweep deferred at a random moment would make them racy), they defer sweeps themselves."""

    app: procrastinate.App
    queue: Queue
    schedule: dict[tuple[str, str], str]

    async def work(self, settings: Settings, queue: str = "email") -> None:
        """The real worker on one queue until nothing is due, then it returns."""
        await work_until_idle(self.app, self.queue, settings, [queue])

    async def sweep(self, settings: Settings) -> None:
        """What the minutely periodic jobs do (jobs of dead workers put back, pending messages without a job
        given one), then whatever they queued."""
        for task in ("maintenance:retry_stalled_jobs", "email:requeue_unsent_emails"):
            with contextlib.suppress(procrastinate.exceptions.AlreadyEnqueued):
                await self.app.configure_task(task).defer_async(timestamp=0)
        await self.work(settings, queue="maintenance")
        await self.work(settings)


@pytest.fixture(scope="module")
async def jobs(database) -> AsyncIterator[Jobs]:
    # The app as the worker runs it (other modules of this process may have made apps before).
    queue = Queue(database.settings(), CAPABILITIES)
    app = queue.app()
    assert {"email:send_email", "email:requeue_unsent_emails", "matching:expire_introductions"} <= set(
        app.tasks
    )
    schedule = {key: task.cron for key, task in app.periodic_registry.periodic_tasks.items()}
    app.periodic_registry = PeriodicRegistry()
    async with app.open_async():
        yield Jobs(app, queue, schedule)


@pytest.fixture(autouse=True)
def empty_queue(committed: psycopg.Connection) -> None:
    """Each test starts with no messages and no jobs (the module's database is shared)."""
    committed.execute(
        "truncate private.outbox, procrastinate.procrastinate_jobs, procrastinate.procrastinate_events,"
        " procrastinate.procrastinate_periodic_defers, procrastinate.procrastinate_workers"
    )


# Data ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Introduction:
    id: str
    role_id: str
    role_title: str
    company_name: str
    employer: User
    employer_name: str
    executive: User


def request_introduction(
    conn: psycopg.Connection,
    *,
    company_name: str | None = None,
    phone: str | None = PHONE,
    linkedin_url: str | None = LINKEDIN,
) -> Introduction:
    """An open executive, a company's open role, and the company's request (written as the superuser)."""
    tag = uuid.uuid4().hex[:6]
    employer_name = f"Grace Hopper {tag}"
    employer = make_user(conn, full_name=employer_name, roles=("employer",))
    company = make_company(conn, employer, name=company_name or f"Analytical Engines {tag}", verified=True)
    executive = make_user(conn, full_name=f"Ada Lovelace {tag}", roles=("executive",))
    conn.execute(
        "insert into public.executive_profiles (user_id, headline, is_open) values (%s, 'CFO', true)",
        (executive.id,),
    )
    if phone or linkedin_url:
        conn.execute(
            "insert into public.executive_contacts (user_id, phone, linkedin_url) values (%s, %s, %s)",
            (executive.id, phone, linkedin_url),
        )
    title = f"Fractional CFO {tag}"
    role = conn.execute(
        "insert into public.role_postings (company_id, created_by, title, engagement_type, status)"
        " values (%s, %s, %s, 'fractional', 'open') returning id",
        (company.id, employer.id, title),
    ).fetchone()
    assert role is not None
    row = conn.execute(
        "insert into public.introductions (role_id, executive_id, requested_by, message)"
        " values (%s, %s, %s, 'We would love to talk.') returning id",
        (role[0], executive.id, employer.id),
    ).fetchone()
    assert row is not None
    return Introduction(str(row[0]), str(role[0]), title, company.name, employer, employer_name, executive)


def respond(conn: psycopg.Connection, introduction: Introduction, *, accept: bool) -> str:
    """The executive answers, as PostgREST would run their call (committed: the worker must see it)."""
    return as_user(conn, introduction.executive).one(
        "select status::text from public.respond_to_introduction(%s, %s)", (introduction.id, accept)
    )["status"]


def outbox_rows(conn: psycopg.Connection) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute("select * from private.outbox order by id").fetchall()


def send_jobs(conn: psycopg.Connection) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            "select id, status::text, attempts, scheduled_at, lock, queueing_lock, args, worker_id,"
            " scheduled_at > now() + interval '20 seconds' as backing_off"
            " from procrastinate.procrastinate_jobs where task_name in ('email:send_email', 'email:send_emails')"
            " order by id"
        ).fetchall()


# Introductions -------------------------------------------------------------------------------------------


async def test_an_introduction_request_emails_the_executive(committed, jobs, settings, smtp):
    intro = request_introduction(committed)
    [row] = outbox_rows(committed)
    assert (row["template"], row["recipient"], row["status"]) == (
        "introduction_requested",
        intro.executive.email,
        "pending",
    )
    [job] = send_jobs(committed)
    assert job["args"] == {"batch": str(row["batch"])}
    assert job["lock"] == job["queueing_lock"] == f"outbox-batch:{row['batch']}"

    await jobs.work(settings)

    [received] = smtp.messages
    assert received.recipients == [intro.executive.email]
    message = received.message
    assert message["To"] == intro.executive.email
    assert message["From"] == EMAIL_FROM
    assert intro.company_name in message["Subject"]
    assert intro.role_title in message["Subject"]
    text = received.part("plain")
    for expected in (
        intro.role_title,
        intro.company_name,
        intro.employer_name,
        "We would love to talk.",
        f"{APP_URL}/roles/{intro.role_id}",
        f"{APP_URL}/introductions/{intro.id}",
    ):
        assert expected in text
    assert f'href="{APP_URL}/roles/{intro.role_id}"' in received.part("html")
    # Private until accepted: the request carries none of the executive's contact details to anyone.
    assert PHONE not in received.readable()
    assert LINKEDIN not in received.readable()

    [row] = outbox_rows(committed)
    assert row["status"] == "sent"
    assert row["sent_at"] is not None
    assert row["attempts"] == 1
    assert row["message_id"] == message["Message-ID"]
    assert row["message_id"].endswith("@talentbase.example>")
    assert [j["status"] for j in send_jobs(committed)] == ["succeeded"]


async def test_acceptance_gives_each_side_the_other_sides_contact_details(committed, jobs, settings, smtp):
    intro = request_introduction(committed)
    await jobs.work(settings)
    assert len(smtp.messages) == 1

    assert respond(committed, intro, accept=True) == "accepted"
    await jobs.work(settings)

    assert len(smtp.messages) == 3
    [to_executive] = [m for m in smtp.to(intro.executive.email) if "introduced" in m.message["Subject"]]
    [to_employer] = smtp.to(intro.employer.email)

    executive_text = to_executive.part("plain")
    assert intro.employer.email in executive_text
    assert intro.company_name in executive_text
    assert PHONE not in executive_text  # their own details are not news to them

    employer_text = to_employer.part("plain")
    assert intro.executive.email in employer_text
    assert PHONE in employer_text
    assert LINKEDIN in employer_text
    assert "accepted" in to_employer.message["Subject"]
    assert intro.role_title in to_employer.message["Subject"]
    assert PHONE in to_employer.part("html")

    templates = {(r["template"], r["recipient"], r["status"]) for r in outbox_rows(committed)}
    assert templates == {
        ("introduction_requested", intro.executive.email, "sent"),
        ("introduction_accepted_executive", intro.executive.email, "sent"),
        ("introduction_accepted_employer", intro.employer.email, "sent"),
    }


async def test_a_decline_emails_the_employer_only(committed, jobs, settings, smtp):
    intro = request_introduction(committed)
    await jobs.work(settings)
    smtp.messages.clear()

    assert respond(committed, intro, accept=False) == "declined"
    await jobs.work(settings)

    [received] = smtp.messages
    assert received.recipients == [intro.employer.email]
    assert "declined" in received.message["Subject"]
    assert intro.role_title in received.part("plain")
    assert PHONE not in received.readable()
    assert intro.executive.email not in received.readable()


async def test_the_same_cause_never_queues_twice(committed, jobs, settings, smtp):
    intro = request_introduction(committed)
    key = f"introduction:{intro.id}:requested:executive"
    again = "select private.send_email('introduction_requested', %s, '{}'::jsonb, %s)"
    committed.execute(again, (intro.executive.email, key))
    committed.execute("update public.introductions set status = status where id = %s", (intro.id,))
    assert len(outbox_rows(committed)) == 1
    assert len(send_jobs(committed)) == 1

    await jobs.work(settings)
    committed.execute(again, (intro.executive.email, key))  # after it went out, too
    await jobs.sweep(settings)

    assert len(smtp.messages) == 1
    assert [r["idempotency_key"] for r in outbox_rows(committed)] == [key]
    assert len(send_jobs(committed)) == 1


async def test_html_is_escaped_and_the_text_part_is_plain(committed, jobs, settings, smtp):
    name = '<script>alert("x")</script> & Sons'
    intro = request_introduction(committed, company_name=name)
    await jobs.work(settings)

    [received] = smtp.messages
    assert received.message.get_content_type() == "multipart/alternative"
    html = received.part("html")
    assert "<script>" not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; Sons" in html
    assert name in received.part("plain")
    assert name in received.message["Subject"]
    assert intro.role_title in html


# Failures ------------------------------------------------------------------------------------------------


async def test_while_smtp_is_down_the_message_waits_and_then_goes_out_once(committed, jobs, settings, smtp):
    smtp.stop()
    request_introduction(committed)

    await jobs.work(settings)
    [row] = outbox_rows(committed)
    assert row["status"] == "pending"
    assert row["attempts"] == 1
    assert row["last_error"].startswith("SMTPConnectError")
    assert row["sent_at"] is None
    [job] = send_jobs(committed)
    assert (job["status"], job["attempts"], job["backing_off"]) == ("todo", 1, True)

    await jobs.work(settings)  # not due yet: the backoff holds
    assert outbox_rows(committed)[0]["attempts"] == 1

    smtp.start()
    await jobs.sweep(settings)  # a job is waiting: the sweep adds none
    assert len(send_jobs(committed)) == 1
    assert smtp.messages == []
    committed.execute(
        "update procrastinate.procrastinate_jobs set scheduled_at = now() where id = %s", (job["id"],)
    )
    await jobs.work(settings)
    await jobs.sweep(settings)

    assert len(smtp.messages) == 1
    [row] = outbox_rows(committed)
    assert (row["status"], row["attempts"], row["last_error"]) == ("sent", 2, None)
    assert row["message_id"] == smtp.messages[0].message["Message-ID"]
    assert [j["status"] for j in send_jobs(committed)] == ["succeeded"]


async def test_after_the_last_attempt_the_message_is_failed_with_its_error(committed, jobs, settings, smtp):
    smtp.stop()
    request_introduction(committed)
    committed.execute("update private.outbox set attempts = %s", (outbox.MAX_ATTEMPTS - 1,))

    await jobs.work(settings)
    await jobs.sweep(settings)

    [row] = outbox_rows(committed)
    assert (row["status"], row["attempts"]) == ("failed", outbox.MAX_ATTEMPTS)
    assert row["last_error"].startswith("SMTPConnectError")
    assert [j["status"] for j in send_jobs(committed)] == ["failed"]


async def test_a_message_that_cannot_be_rendered_fails_at_once(committed, jobs, settings, smtp):
    committed.execute(
        "select private.send_email('introduction_requested', 'someone@example.com', '{}'::jsonb, 'broken:1')"
    )
    await jobs.work(settings)

    [row] = outbox_rows(committed)
    assert row["status"] == "failed"
    assert "company_name" in row["last_error"]  # StrictUndefined names what is missing
    assert row["attempts"] == 0
    assert [j["status"] for j in send_jobs(committed)] == ["failed"]
    assert smtp.messages == []


async def test_a_mailbox_refused_for_good_fails_without_retries(committed, jobs, settings, smtp):
    intro = request_introduction(committed)
    smtp.handler.unknown.add(intro.executive.email)

    await jobs.work(settings)

    [row] = outbox_rows(committed)
    assert (row["status"], row["attempts"]) == ("failed", 1)
    assert "No such mailbox" in row["last_error"]
    assert [j["status"] for j in send_jobs(committed)] == ["failed"]
    assert smtp.messages == []


# Batches: the messages of one transaction ---------------------------------------------------------------

SEND_TWO = (
    "select private.send_email('introduction_declined', 'first@example.com', %(context)s, 'batch:1'),"
    " private.send_email('introduction_declined', 'second@example.com', %(context)s, 'batch:2')"
)
BATCH_CONTEXT = {
    "role_title": "CFO",
    "company_name": "Acme",
    "executive_name": "Ada",
    "requester_name": "Ann",
    "role_id": str(uuid.uuid4()),
}


def send_two(conn: psycopg.Connection) -> None:
    """Two messages written in one transaction, as a booking writes the candidate's and the interviewer's."""
    with conn.transaction():
        conn.execute(SEND_TWO, {"context": Jsonb(BATCH_CONTEXT)})


async def test_a_transactions_messages_share_one_job(committed, jobs, settings, smtp):
    send_two(committed)
    first, second = outbox_rows(committed)
    assert first["batch"] == second["batch"] is not None
    [job] = send_jobs(committed)
    assert job["args"] == {"batch": str(first["batch"])}
    send_two(committed)  # the same keys again: nothing new, no second job
    assert len(send_jobs(committed)) == 1

    await jobs.work(settings)

    assert sorted(m.recipients[0] for m in smtp.messages) == ["first@example.com", "second@example.com"]
    assert [r["status"] for r in outbox_rows(committed)] == ["sent", "sent"]
    assert [j["status"] for j in send_jobs(committed)] == ["succeeded"]


async def test_a_message_after_a_rolled_back_savepoint_still_gets_its_batch_job(
    committed, jobs, settings, smtp
):
    one = "select private.send_email('introduction_declined', %s, %s, %s)"
    with committed.transaction():
        with contextlib.suppress(psycopg.errors.RaiseException), committed.transaction():
            committed.execute(one, ("first@example.com", Jsonb(BATCH_CONTEXT), "batch:1"))
            committed.execute("do $$ begin raise exception 'undone'; end $$")
        committed.execute(one, ("second@example.com", Jsonb(BATCH_CONTEXT), "batch:2"))
    assert len(send_jobs(committed)) == 1

    await jobs.work(settings)

    assert [m.recipients for m in smtp.messages] == [["second@example.com"]]
    assert [r["recipient"] for r in outbox_rows(committed)] == ["second@example.com"]


async def test_one_busy_mailbox_does_not_hold_up_the_batch_and_only_it_is_retried(
    committed, jobs, settings, smtp
):
    smtp.handler.busy.add("first@example.com")
    send_two(committed)

    await jobs.work(settings)

    assert [m.recipients for m in smtp.messages] == [["second@example.com"]]
    first, second = outbox_rows(committed)
    assert (first["status"], first["attempts"], second["status"]) == ("pending", 1, "sent")
    [job] = send_jobs(committed)
    assert (job["status"], job["backing_off"]) == ("todo", True)

    smtp.handler.busy.clear()
    committed.execute(
        "update procrastinate.procrastinate_jobs set scheduled_at = now() where id = %s", (job["id"],)
    )
    await jobs.work(settings)

    assert [m.recipients for m in smtp.messages] == [["second@example.com"], ["first@example.com"]]
    assert [(r["status"], r["attempts"]) for r in outbox_rows(committed)] == [("sent", 2), ("sent", 1)]


async def test_a_mailbox_refused_for_good_fails_alone_and_the_batch_is_not_retried(
    committed, jobs, settings, smtp
):
    smtp.handler.unknown.add("first@example.com")
    send_two(committed)

    await jobs.work(settings)

    assert [m.recipients for m in smtp.messages] == [["second@example.com"]]
    assert [r["status"] for r in outbox_rows(committed)] == ["failed", "sent"]
    assert [j["status"] for j in send_jobs(committed)] == ["failed"]


async def test_the_sweep_leaves_a_batch_whose_job_is_waiting(committed, jobs, settings, smtp):
    send_two(committed)
    await jobs.sweep(settings)
    assert len(send_jobs(committed)) == 1

    committed.execute("delete from procrastinate.procrastinate_jobs where task_name = 'email:send_emails'")
    await jobs.sweep(settings)  # lost: each message gets a job of its own

    assert sorted(m.recipients[0] for m in smtp.messages) == ["first@example.com", "second@example.com"]
    assert [r["status"] for r in outbox_rows(committed)] == ["sent", "sent"]


def test_retries_back_off_exponentially_up_to_a_cap():
    waits = [outbox.retry_wait_s(n) for n in range(outbox.MAX_ATTEMPTS)]
    assert waits[:3] == [outbox.FIRST_RETRY_S, 2 * outbox.FIRST_RETRY_S, 4 * outbox.FIRST_RETRY_S]
    assert max(waits) == waits[-1] == outbox.MAX_RETRY_WAIT_S
    assert sum(waits[: outbox.MAX_ATTEMPTS - 1]) > 6 * 3600  # an afternoon's outage loses nothing

    strategy = outbox.Backoff()
    job = procrastinate.jobs.Job(
        id=1, queue="email", lock=None, queueing_lock=None, task_name="t", attempts=0
    )
    assert strategy.get_retry_decision(exception=OSError("refused"), job=job) is not None
    assert strategy.get_retry_decision(exception=outbox.GaveUp("x"), job=job) is None
    last = procrastinate.jobs.Job(
        id=1, queue="email", lock=None, queueing_lock=None, task_name="t", attempts=outbox.MAX_ATTEMPTS - 1
    )
    assert strategy.get_retry_decision(exception=OSError("refused"), job=last) is None


# Duplicates ----------------------------------------------------------------------------------------------


async def wait_for(event: threading.Event, what: str, seconds: float = 20) -> None:
    if not await asyncio.to_thread(event.wait, seconds):
        raise AssertionError(f"timed out waiting for {what}")


async def test_two_jobs_for_one_message_send_it_once(committed, settings, smtp):
    request_introduction(committed)
    [row] = outbox_rows(committed)
    smtp.handler.hold = True
    mailer = outbox.Mailer(settings, email_template_dirs(CAPABILITIES))

    first = asyncio.create_task(mailer.deliver(row["id"]))
    await wait_for(smtp.handler.in_flight, "the first send")
    second = asyncio.create_task(mailer.deliver(row["id"]))
    for _ in range(500):  # the second waits for the row's lock
        waiting = committed.execute(
            "select count(*) from pg_stat_activity"
            " where datname = current_database() and application_name = 'talentbase-email'"
            " and wait_event_type = 'Lock'"
        ).fetchone()
        if waiting and waiting[0] == 1:
            break
        await asyncio.sleep(0.01)
    else:
        raise AssertionError("the second delivery never waited for the lock")
    smtp.handler.release.set()

    assert await asyncio.gather(first, second) == ["sent", "sent"]
    assert len(smtp.messages) == 1
    assert outbox_rows(committed)[0]["attempts"] == 1


WORKER = """
import asyncio
from app import CAPABILITIES
from rpc.platform.jobs import Queue
from rpc.platform.settings import get_settings

async def main():
    app = Queue(get_settings(), CAPABILITIES).app()
    async with app.open_async():
        await app.run_worker_async(queues=["email"], name="doomed", install_signal_handlers=False)

asyncio.run(main())
"""


async def test_a_worker_killed_mid_send_does_not_send_twice(committed, jobs, settings, smtp, tmp_path):
    intro = request_introduction(committed)
    smtp.handler.hold = True
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SMTP_", "EMAIL_", "DATABASE_", "APP_"))}
    env.update(
        PYTHONPATH=str(ROOT),
        DATABASE_URL=settings.admin_dsn,
        SMTP_HOST="127.0.0.1",
        SMTP_PORT=str(smtp.port),
        SMTP_TLS="none",
        EMAIL_FROM=EMAIL_FROM,
        APP_URL=APP_URL,
        LOG_JSON="false",
    )
    doomed = await asyncio.create_subprocess_exec(sys.executable, "-c", WORKER, cwd=tmp_path, env=env)
    try:
        await wait_for(smtp.handler.in_flight, "the doomed worker's send")
    finally:
        doomed.kill()  # SIGKILL: no handler, no graceful shutdown, as when a machine goes away
        await doomed.wait()
    await wait_for(smtp.handler.abandoned, "the server to see the client go")
    assert smtp.messages == []
    [row] = outbox_rows(committed)
    assert (row["status"], row["attempts"]) == ("pending", 0)
    [job] = send_jobs(committed)
    assert job["status"] == "doing"  # and holding the message's lock: no other job may start it

    smtp.handler.hold = False
    await jobs.sweep(settings)  # a live worker: the dead one's job is not stalled yet
    assert smtp.messages == []
    # A minute later, the dead worker has missed its heartbeats.
    committed.execute(
        "update procrastinate.procrastinate_workers set last_heartbeat = now() - interval '1 hour'"
        " where id = %s",
        (job["worker_id"],),
    )
    await jobs.sweep(settings)
    await jobs.sweep(settings)  # and once more: still one

    [received] = smtp.messages
    assert received.recipients == [intro.executive.email]
    [row] = outbox_rows(committed)
    assert (row["status"], row["attempts"]) == ("sent", 1)
    assert row["message_id"] == received.message["Message-ID"]
    assert smtp.handler.held is not None
    assert received.message["Message-ID"] == smtp.handler.held["Message-ID"]  # a receiver can tell
    assert [j["status"] for j in send_jobs(committed)] == ["succeeded"]


async def test_the_sweep_queues_pending_messages_that_lost_their_job(committed, jobs, settings, smtp):
    request_introduction(committed)
    committed.execute("delete from procrastinate.procrastinate_jobs where task_name = 'email:send_emails'")
    await jobs.work(settings)
    assert smtp.messages == []

    await jobs.sweep(settings)

    assert len(smtp.messages) == 1
    assert outbox_rows(committed)[0]["status"] == "sent"


# Without SMTP --------------------------------------------------------------------------------------------


async def test_without_smtp_settings_the_message_goes_to_the_log(committed, jobs, database, caplog):
    settings = database.settings(
        smtp_host=None, smtp_user="mailer", smtp_password="do-not-log-me", app_url=APP_URL
    )
    intro = request_introduction(committed)
    caplog.set_level(logging.INFO, logger="rpc.platform.email")

    await jobs.work(settings)

    [row] = outbox_rows(committed)
    assert row["status"] == "console"
    assert row["sent_at"] is not None
    assert row["message_id"]
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name == "rpc.platform.email")
    assert intro.executive.email in logged
    assert intro.role_title in logged
    assert f"{APP_URL}/introductions/{intro.id}" in logged
    assert "do-not-log-me" not in caplog.text


# Periodic work -------------------------------------------------------------------------------------------


async def test_the_periodic_expiry_marks_overdue_requests_expired(committed, jobs, settings, smtp):
    assert jobs.schedule[("email:requeue_unsent_emails", "requeue_unsent_emails")] == "* * * * *"
    assert jobs.schedule[("maintenance:retry_stalled_jobs", "retry_stalled_jobs")] == "* * * * *"
    assert jobs.schedule[("matching:expire_introductions", "expire_introductions")] == "*/5 * * * *"

    overdue, waiting = request_introduction(committed), request_introduction(committed)
    committed.execute(
        "update public.introductions set expires_at = now() - interval '1 minute' where id = %s",
        (overdue.id,),
    )
    await jobs.app.configure_task("matching:expire_introductions").defer_async(timestamp=0)
    await jobs.work(settings, queue="maintenance")

    statuses = dict(committed.execute("select id::text, status::text from public.introductions").fetchall())
    assert statuses[overdue.id] == "expired"
    assert statuses[waiting.id] == "requested"
    assert len(outbox_rows(committed)) == 2  # expiry writes no email
