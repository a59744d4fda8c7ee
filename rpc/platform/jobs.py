"""Background jobs: procrastinate, in this database's `procrastinate` schema.

Each capability declares its tasks on a `procrastinate.Blueprint` (its `tasks`), which app.py hands to
`Queue` with the platform's own (the email sender, maintenance). Jobs are deferred in the same transaction
as the row that causes them (from SQL, or from a trigger), so nothing is lost if a process dies between
the two. Delivery is at least once: every side effect needs an idempotency key. `python app.py` runs one
worker in-process; in production `litestar worker` runs them as processes of their own, as many as needed.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncIterator, Sequence
from typing import Any

import procrastinate
from procrastinate import builtin_tasks

from rpc.platform import email
from rpc.platform.ai import AI
from rpc.platform.capabilities import Capability, email_template_dirs, name_of
from rpc.platform.settings import Settings, get_settings

log = logging.getLogger(__name__)

HEARTBEAT_S = 10.0
# A worker whose heartbeat is older than this is reported dead by /health.
WORKER_STALE_S = 6 * HEARTBEAT_S

maintenance = procrastinate.Blueprint()


@maintenance.periodic(cron="17 3 * * *", periodic_id="prune_finished_jobs")
@maintenance.task(queue="maintenance", queueing_lock="prune_finished_jobs", pass_context=True)
async def prune_finished_jobs(context: procrastinate.JobContext, timestamp: int) -> None:
    """Finished jobs are kept two weeks for inspection, then removed (failed ones stay until handled)."""
    await builtin_tasks.remove_old_jobs(
        context, max_hours=24 * 14, remove_cancelled=True, remove_aborted=True
    )


@functools.cache
def combined_tasks(capabilities: tuple[Capability, ...]) -> procrastinate.Blueprint:
    """Every task under its namespace (`email:send_email`, `matching:expire_introductions`: the names SQL
    queues jobs by).

    Built once per process and set of capabilities: procrastinate renames a blueprint's tasks in place when
    it is added, so each is added exactly once, here, and apps add this combination under no namespace."""
    combined = procrastinate.Blueprint()
    blueprints = {"maintenance": maintenance, "email": email.tasks}
    blueprints.update({name_of(capability): capability.tasks for capability in capabilities})
    for namespace, blueprint in blueprints.items():
        combined.add_tasks_from(blueprint, namespace=namespace)
    return combined


def job_settings(context: procrastinate.JobContext) -> Settings:
    """The worker's settings when it was given them (`additional_context["settings"]`), else the process's."""
    settings = context.additional_context.get("settings")
    return settings if isinstance(settings, Settings) else get_settings()


class Queue:
    """The job queue of one set of capabilities: procrastinate apps to defer jobs with and run workers."""

    def __init__(self, settings: Settings, capabilities: Sequence[Capability]) -> None:
        self.settings = settings
        self.tasks = combined_tasks(tuple(capabilities))
        self.template_dirs = email_template_dirs(capabilities)

    def context(self, settings: Settings | None = None) -> dict[str, Any]:
        """What every task finds in `context.additional_context`."""
        settings = settings or self.settings
        return {
            "settings": settings,
            "mailer": email.Mailer(settings, self.template_dirs),
            "ai": AI(settings),
        }

    def app(self) -> procrastinate.App:
        connector = procrastinate.PsycopgConnector(
            conninfo=self.settings.admin_dsn,
            min_size=1,
            max_size=4,
            kwargs={"options": "-c search_path=procrastinate", "application_name": "talentbase-worker"},
        )
        app = procrastinate.App(connector=connector, worker_defaults={"additional_context": self.context()})
        app.add_tasks_from(self.tasks, namespace="")
        return app

    @contextlib.asynccontextmanager
    async def running_worker(self) -> AsyncIterator[procrastinate.App]:
        """A worker in this process (the local stack); cancelled gracefully on exit."""
        app = self.app()
        async with app.open_async():
            task = asyncio.create_task(
                app.run_worker_async(
                    name="in-process",
                    install_signal_handlers=False,
                    update_heartbeat_interval=HEARTBEAT_S,
                    shutdown_graceful_timeout=5,
                ),
                name="procrastinate-worker",
            )
            try:
                yield app
            finally:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def work(self) -> None:
        """A worker process's whole life (`litestar worker`)."""
        app = self.app()
        async with app.open_async():
            await app.run_worker_async(update_heartbeat_interval=HEARTBEAT_S)
