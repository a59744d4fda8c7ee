"""The interview platform's background task: reminders before interviews."""

from __future__ import annotations

import logging

import procrastinate

log = logging.getLogger(__name__)

tasks = procrastinate.Blueprint()


@tasks.periodic(cron="* * * * *", periodic_id="send_interview_reminders")
@tasks.task(
    name="send_interview_reminders",
    queue="email",
    queueing_lock="send_interview_reminders",
    pass_context=True,
)
async def send_interview_reminders(context: procrastinate.JobContext, timestamp: int) -> None:
    """One reminder per interview, `interview_reminder_lead` before it (private.config): the function marks
    each interview as it queues its emails, in one transaction, so a rerun sends nothing twice."""
    row = await context.app.connector.execute_query_one_async(
        "select private.send_interview_reminders() as sent"
    )
    if row["sent"]:
        log.info("queued reminders for %s interviews", row["sent"])
