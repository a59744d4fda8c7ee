"""Email: the worker side of the outbox (supabase/migrations/20261123090300_email_outbox.sql).

Triggers write each message as a row of `private.outbox`, in the transaction that causes it, and queue
one `email:send_emails` job for that transaction's messages (its batch). The job renders each row's
template and hands it to SMTP, or to the log when no SMTP host is configured. It holds the row's lock from reading it until its status is committed,
so two jobs for one message never both send it; a retry of a row carries the same Message-ID, so a
receiver can drop the duplicate that at-least-once delivery allows (SMTP accepted it, then the worker died
before committing). While SMTP is down the row stays pending and the job retries with exponential backoff;
after `MAX_ATTEMPTS` the row is marked failed with its last error. A periodic sweep gives a pending row no
job is waiting for one of its own (`email:send_email`); a job whose worker died is put back in the queue by
rpc.platform.jobs.

The templates belong to the capabilities that queue them (`rpc/<capability>/templates/email/`); the
layout they extend, `base.html`, is the platform's.
"""

from __future__ import annotations

import datetime as dt
import logging
import zoneinfo
from dataclasses import dataclass
from email.errors import MessageError
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiosmtplib
import jinja2
import procrastinate
import psycopg
from psycopg.rows import dict_row

from rpc.platform.calendar import invitation
from rpc.platform.settings import Settings

log = logging.getLogger(__name__)

LAYOUTS = Path(__file__).parent / "templates" / "email"

# Attempts to hand one message to SMTP before it is marked failed. With the backoff below (30 s doubling,
# at most an hour apart) the last one comes about 13 hours after the first: an outage of an afternoon
# loses nothing.
MAX_ATTEMPTS = 20
FIRST_RETRY_S = 30
MAX_RETRY_WAIT_S = 3600


class GaveUp(Exception):
    """The message is marked failed: retrying the job would not help."""


class Backoff(procrastinate.BaseRetryStrategy):
    """Exponential backoff with a cap; never retries what `GaveUp`."""

    def get_retry_decision(
        self, *, exception: BaseException, job: procrastinate.jobs.Job
    ) -> procrastinate.RetryDecision | None:
        if isinstance(exception, GaveUp) or job.attempts + 1 >= MAX_ATTEMPTS:
            return None
        return procrastinate.RetryDecision(retry_in={"seconds": retry_wait_s(job.attempts)})


def retry_wait_s(attempts: int) -> int:
    """Seconds before the next run of a job that failed `attempts + 1` times."""
    return min(MAX_RETRY_WAIT_S, FIRST_RETRY_S * 2 ** min(attempts, 20))


# Rendering ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str
    # The row's `calendar` facts as iCalendar (attached as invite.ics), and their method.
    calendar: bytes | None = None
    calendar_method: str | None = None


def _long_date(value: str | None) -> str:
    """An ISO timestamp from the row's context (jsonb) as "7 December 2026" (UTC)."""
    if not value:
        return ""
    moment = dt.datetime.fromisoformat(value).astimezone(dt.UTC)
    return f"{moment.day} {moment:%B %Y}"


def _local_time(value: str | None, zone: str | None = None) -> str:
    """An ISO timestamp as "Monday 7 December 2026, 14:00 (Europe/Berlin)" in `zone` (UTC without one)."""
    if not value:
        return ""
    name = zone or "UTC"
    moment = dt.datetime.fromisoformat(value).astimezone(zoneinfo.ZoneInfo(name))
    return f"{moment:%A} {moment.day} {moment:%B %Y, %H:%M} ({name})"


def template_environment(directories: list[Path]) -> jinja2.Environment:
    """`.html` templates autoescaped, the plain-text and subject ones not (they are no markup, and escaping
    would show "&amp;" to the reader). `link("roles", id)` makes a link into the app, its parts quoted."""
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader([*directories, LAYOUTS]),
        autoescape=jinja2.select_autoescape(
            enabled_extensions=("html",), default_for_string=False, default=False
        ),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["long_date"] = _long_date
    environment.filters["local_time"] = _local_time
    return environment


def sender_domain(settings: Settings) -> str:
    """The domain of EMAIL_FROM: what Message-IDs and calendar UIDs are made unique in."""
    return parseaddr(settings.email_from)[1].rpartition("@")[2] or "talentbase.local"


def message_id(outbox_id: int, created_at: dt.datetime, settings: Settings) -> str:
    """The same for every attempt at one row, and unique across databases (ids restart, instants do not)."""
    moment = created_at.astimezone(dt.UTC)
    return f"<outbox.{outbox_id}.{moment:%Y%m%d%H%M%S%f}@{sender_domain(settings)}>"


def build_message(recipient: str, rendered: Rendered, msgid: str, settings: Settings) -> EmailMessage:
    message = EmailMessage()
    message["From"] = settings.email_from
    message["To"] = Address(addr_spec=recipient)
    message["Subject"] = rendered.subject
    message["Date"] = format_datetime(dt.datetime.now(dt.UTC))
    message["Message-ID"] = msgid
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(rendered.text)
    message.add_alternative(rendered.html, subtype="html")
    if rendered.calendar is not None:
        message.add_attachment(
            rendered.calendar,
            maintype="text",
            subtype="calendar",
            filename="invite.ics",
            params={"method": rendered.calendar_method, "charset": "utf-8"},
        )
    return message


# Sending --------------------------------------------------------------------------------------------

SMTP_ERRORS = (aiosmtplib.SMTPException, OSError, TimeoutError)


async def send_smtp(message: EmailMessage, settings: Settings) -> None:
    await aiosmtplib.send(
        message,
        hostname=settings.smtp_host,
        port=settings.smtp_port,
        username=settings.smtp_user,
        password=settings.smtp_password.get_secret_value() if settings.smtp_password else None,
        use_tls=settings.smtp_tls == "tls",
        start_tls=settings.smtp_tls == "starttls",  # required when asked for: never a silent downgrade
        timeout=settings.smtp_timeout_s,
    )


def _permanent(exc: BaseException) -> bool:
    """The server refused every recipient for good (5xx): no retry will change its mind."""
    return isinstance(exc, aiosmtplib.SMTPRecipientsRefused) and all(
        refusal.code >= 500 for refusal in exc.recipients
    )


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:2000]


LOCK_MESSAGE = """
select id, template, recipient, context, status, attempts, created_at
from private.outbox where id = %s for update
"""
PENDING_IN_BATCH = "select id from private.outbox where batch = %s::xid8 and status = 'pending' order by id"
MARK_DELIVERED = """
update private.outbox set status = %s, attempts = attempts + %s, sent_at = now(), message_id = %s,
  last_error = null
where id = %s
"""
MARK_ATTEMPT = "update private.outbox set status = %s, attempts = attempts + 1, last_error = %s where id = %s"
MARK_FAILED = "update private.outbox set status = 'failed', last_error = %s where id = %s"
UNRENDERABLE = (
    jinja2.TemplateError,
    MessageError,
    ValueError,
    TypeError,
    KeyError,
    zoneinfo.ZoneInfoNotFoundError,
)


class Mailer:
    """Renders outbox rows with the capabilities' templates and sends them (SMTP, or the log without it)."""

    def __init__(self, settings: Settings, template_dirs: list[Path]) -> None:
        self.settings = settings
        self.templates = template_environment(template_dirs)
        self.templates.globals["link"] = self.link

    def link(self, *parts: object) -> str:
        """A link into the frontend: `link("roles", role_id)` -> `<APP_URL>/roles/<role_id>`."""
        return "/".join([self.settings.app_url.rstrip("/"), *(quote(str(part), safe="") for part in parts)])

    def render(self, template: str, context: dict[str, Any]) -> Rendered:
        """`<template>.subject.txt`, `.txt` and `.html` (autoescaped), with the row's facts and the product's
        name."""
        values = {**context, "product_name": self.settings.product_name}
        subject = self.templates.get_template(f"{template}.subject.txt").render(values)
        facts = context.get("calendar")
        return Rendered(
            subject=" ".join(subject.split()),  # one line, whatever the data holds
            text=self.templates.get_template(f"{template}.txt").render(values),
            html=self.templates.get_template(f"{template}.html").render(values),
            calendar=invitation(
                facts,
                organizer=self.settings.email_from,
                domain=sender_domain(self.settings),
                product=self.settings.product_name,
            )
            if facts
            else None,
            calendar_method=facts.get("method") if facts else None,
        )

    async def _connect(self) -> psycopg.AsyncConnection[dict[str, Any]]:
        return await psycopg.AsyncConnection.connect(
            self.settings.admin_dsn,
            application_name="talentbase-email",
            row_factory=dict_row,
            autocommit=True,
        )

    async def deliver(self, outbox_id: int) -> str | None:
        """Send one outbox row; returns its status afterwards (None: no such row).

        Raises the SMTP error when the message is to be tried again, and `GaveUp` when the row has just been
        marked failed; either way the attempt is committed first.
        """
        async with await self._connect() as conn:
            return await self._deliver(conn, outbox_id)

    async def deliver_batch(self, batch: str) -> None:
        """Send the pending rows one transaction wrote, each as `deliver` sends one, so that one recipient's
        trouble does not hold up the others. Raises afterwards as `deliver` would: an SMTP error when any
        row is to be tried again (the rows sent are not pending any more, so a retry skips them), else
        `GaveUp` when a row was marked failed."""
        problems: list[Exception] = []
        async with await self._connect() as conn:
            rows = await (await conn.execute(PENDING_IN_BATCH, (batch,))).fetchall()
            for row in rows:
                try:
                    await self._deliver(conn, row["id"])
                except (GaveUp, *SMTP_ERRORS) as exc:
                    problems.append(exc)
        retry = [problem for problem in problems if not isinstance(problem, GaveUp)]
        if problems:
            raise (retry or problems)[0]

    async def _deliver(self, conn: psycopg.AsyncConnection[dict[str, Any]], outbox_id: int) -> str | None:
        async with conn.transaction():
            row = await (await conn.execute(LOCK_MESSAGE, (outbox_id,))).fetchone()
            if row is None:
                log.warning("email %s: no such outbox row", outbox_id)
                return None
            if row["status"] != "pending":
                return row["status"]
            status, problem = await self._attempt(conn, row)
        if problem is None:
            return status
        if status == "failed":
            raise GaveUp(f"email {outbox_id} is marked failed") from problem
        raise problem

    async def _attempt(
        self, conn: psycopg.AsyncConnection[dict[str, Any]], row: dict[str, Any]
    ) -> tuple[str, BaseException | None]:
        """One attempt at a locked pending row: its new status, and what went wrong if anything did."""
        settings = self.settings
        outbox_id = row["id"]
        msgid = message_id(outbox_id, row["created_at"], settings)
        try:
            rendered = self.render(row["template"], row["context"])
            message = build_message(row["recipient"], rendered, msgid, settings)
        except UNRENDERABLE as exc:
            await conn.execute(MARK_FAILED, (f"rendering {row['template']}: {_describe(exc)}", outbox_id))
            log.error("email %s (%s) cannot be rendered: %s", outbox_id, row["template"], exc)
            return "failed", exc

        if not settings.smtp_host:
            log.info(
                "email %s to %s (no SMTP configured: delivered to the log)\nSubject: %s\n\n%s",
                outbox_id,
                row["recipient"],
                rendered.subject,
                rendered.text,
            )
            await conn.execute(MARK_DELIVERED, ("console", 0, msgid, outbox_id))
            return "console", None

        try:
            await send_smtp(message, settings)
        except SMTP_ERRORS as exc:
            attempts = row["attempts"] + 1
            status = "failed" if _permanent(exc) or attempts >= MAX_ATTEMPTS else "pending"
            await conn.execute(MARK_ATTEMPT, (status, _describe(exc), outbox_id))
            if status == "failed":
                log.error("email %s failed for good after %s attempts: %s", outbox_id, attempts, exc)
            else:
                log.warning("email %s not sent (attempt %s), will retry: %s", outbox_id, attempts, exc)
            return status, exc
        await conn.execute(MARK_DELIVERED, ("sent", 1, msgid, outbox_id))
        log.info("email %s sent to %s as %s", outbox_id, row["recipient"], msgid)
        return "sent", None


# Tasks ----------------------------------------------------------------------------------------------

tasks = procrastinate.Blueprint()


@tasks.task(name="send_emails", queue="email", pass_context=True, retry=Backoff())
async def send_emails(context: procrastinate.JobContext, batch: str) -> None:
    """Queued by `private.send_email` (SQL), never from Python: the rows come first."""
    mailer: Mailer = context.additional_context["mailer"]
    await mailer.deliver_batch(batch)


@tasks.task(name="send_email", queue="email", pass_context=True, retry=Backoff())
async def send_email(context: procrastinate.JobContext, outbox_id: int) -> None:
    """One message's own job: queued by the sweep (`private.requeue_unsent_emails`) for a row that lost its
    batch's job."""
    mailer: Mailer = context.additional_context["mailer"]
    await mailer.deliver(outbox_id)


@tasks.periodic(cron="* * * * *", periodic_id="requeue_unsent_emails")
@tasks.task(
    name="requeue_unsent_emails", queue="email", queueing_lock="requeue_unsent_emails", pass_context=True
)
async def requeue_unsent_emails(context: procrastinate.JobContext, timestamp: int) -> None:
    """A job for every pending message without one waiting or running."""
    row = await context.app.connector.execute_query_one_async(
        "select private.requeue_unsent_emails() as requeued"
    )
    if row["requeued"]:
        log.warning("re-queued %s pending emails that had no job", row["requeued"])
