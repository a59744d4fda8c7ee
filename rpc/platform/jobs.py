"""Background jobs: procrastinate, in this database's `procrastinate` schema.

Each capability declares its tasks on a `procrastinate.Blueprint` (its `tasks`), which app.py hands to
`Queue` with the platform's own (the email sender, maintenance). Jobs are deferred in the same transaction
as the row that causes them (from SQL, or from a trigger), so nothing is lost if a process dies between
the two. Delivery is at least once: every side effect needs an idempotency key. `python app.py` runs one
worker in-process; in production `litestar worker` runs them as processes of their own, as many as needed.
Either way the worker is supervised: procrastinate's stops for good when its database connection dies.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import signal
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import procrastinate
import psycopg
from procrastinate import builtin_tasks
from procrastinate.exceptions import ConnectorException
from procrastinate.worker import Worker

from rpc.platform import email
from rpc.platform.ai import AI
from rpc.platform.capabilities import Capability, email_template_dirs, name_of
from rpc.platform.db import Database, LivePool
from rpc.platform.settings import Settings, get_settings

log = logging.getLogger(__name__)

HEARTBEAT_S = 10.0
# A worker whose heartbeat is older than this is reported dead by /health.
WORKER_STALE_S = 6 * HEARTBEAT_S
# Seconds before replacing a worker that stopped, by how many stopped in a row; one that ran for
# HEALTHY_RUN_S starts the count afresh.
RESTART_BACKOFF_S = (0.5, 1.0, 2.0, 5.0)
HEALTHY_RUN_S = 60.0
WORKER_POOL_TIMEOUT_S = 10.0

maintenance = procrastinate.Blueprint()


@maintenance.periodic(cron="17 3 * * *", periodic_id="prune_finished_jobs")
@maintenance.task(
    name="prune_finished_jobs", queue="maintenance", queueing_lock="prune_finished_jobs", pass_context=True
)
async def prune_finished_jobs(context: procrastinate.JobContext, timestamp: int) -> None:
    """Finished jobs are kept two weeks for inspection, then removed (failed ones stay until handled)."""
    await builtin_tasks.remove_old_jobs(
        context, max_hours=24 * 14, remove_cancelled=True, remove_aborted=True
    )


@maintenance.periodic(cron="* * * * *", periodic_id="retry_stalled_jobs")
@maintenance.task(
    name="retry_stalled_jobs", queue="maintenance", queueing_lock="retry_stalled_jobs", pass_context=True
)
async def retry_stalled_jobs(context: procrastinate.JobContext, timestamp: int) -> None:
    """Jobs a dead worker left `doing` back to the queue, whatever their queue: their status (and lock)
    would hold them for ever. Delivery is at least once, so every task is written to run twice safely."""
    manager = context.app.job_manager
    for job in await manager.get_stalled_jobs(seconds_since_heartbeat=WORKER_STALE_S):
        log.warning("retrying %s of a dead worker", job.call_string)
        await manager.retry_job(job)


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


def worker_pool(**options: Any) -> LivePool[Any]:
    """procrastinate's pool, minus the round-trip `check=` it asks for: LivePool drops dead connections
    itself, at once, where that check would make the worker sleep after each (up to 15 s after a
    restart, its jobs' outcomes unrecorded meanwhile)."""
    options.pop("check", None)
    return LivePool(**options)


def job_settings(context: procrastinate.JobContext) -> Settings:
    """The worker's settings when it was given them (`additional_context["settings"]`), else the process's."""
    settings = context.additional_context.get("settings")
    return settings if isinstance(settings, Settings) else get_settings()


async def embed_periodically(
    context: procrastinate.JobContext,
    embed: Callable[[psycopg.AsyncConnection[Any], AI], Awaitable[int]],
    what: str,
) -> None:
    """A periodic embedding task's run: nothing without a provider; else `embed` on a connection that logs in
    as `postgres` (embeddings live outside the API roles' reach), and how many `what` it wrote, logged."""
    ai: AI = context.additional_context["ai"]
    if not ai.enabled:
        return
    async with await psycopg.AsyncConnection.connect(
        job_settings(context).admin_dsn, autocommit=True
    ) as conn:
        written = await embed(conn, ai)
    if written:
        log.info("embedded %d %s", written, what)


class Queue:
    """The job queue of one set of capabilities: procrastinate apps to defer jobs with and run workers."""

    def __init__(
        self, settings: Settings, capabilities: Sequence[Capability], email_templates: Sequence[Path] = ()
    ) -> None:
        """`email_templates`: folders of templates beyond the capabilities' (the local stack's auth emails)."""
        self.settings = settings
        self.tasks = combined_tasks(tuple(capabilities))
        self.template_dirs = [*email_template_dirs(capabilities), *email_templates]
        # Where the AI calls jobs make on a user's behalf are metered (their budget, their usage), as the
        # app's are; open while a worker runs.
        self.db = Database(settings.api_dsn, min_size=0, max_size=2, timeout_s=settings.db_pool_timeout_s)

    def context(self, settings: Settings | None = None) -> dict[str, Any]:
        """What every task finds in `context.additional_context`."""
        settings = settings or self.settings
        return {
            "settings": settings,
            "mailer": email.Mailer(settings, self.template_dirs),
            "ai": AI(settings, self.db),
        }

    @contextlib.asynccontextmanager
    async def opened(self, app: procrastinate.App) -> AsyncIterator[procrastinate.App]:
        """`app` open, and the jobs' own pool with it; the AI of its tasks' context closed after them."""
        await self.db.open()
        try:
            async with app.open_async():
                yield app
        finally:
            await app.worker_defaults["additional_context"]["ai"].close()
            await self.db.close()

    def app(self) -> procrastinate.App:
        connector = procrastinate.PsycopgConnector(
            pool_factory=worker_pool,
            conninfo=self.settings.admin_dsn,
            min_size=1,
            max_size=4,
            # How long a job's query (recording its outcome too) waits for the database, and so how soon
            # the pool reconnects after an outage (see LivePool); a worker that gives up is restarted.
            timeout=WORKER_POOL_TIMEOUT_S,
            kwargs={"options": "-c search_path=procrastinate", "application_name": "talentbase-worker"},
        )
        app = procrastinate.App(connector=connector, worker_defaults={"additional_context": self.context()})
        app.add_tasks_from(self.tasks, namespace="")
        return app

    async def supervise(self, app: procrastinate.App, **options: Any) -> None:
        """Run workers on an open `app`, one after another, until cancelled (which stops the one running
        gracefully).

        procrastinate's worker stops for good when a connection of its dies (a database restart): its
        listener fails to reconnect, or a query fails, and it stops. So each worker that stops is replaced,
        after a wait that grows while replacements keep stopping. Its jobs are not lost: one that failed
        with the connection is retried as any failed job; one whose failure could not be recorded (the
        server gone in between) stays `doing`, which `retry_stalled_jobs` puts back within a minute of its
        worker unregistering as it stopped (or, if the server was gone for that too, of its heartbeat
        going stale).
        """
        loop = asyncio.get_running_loop()
        options = {"install_signal_handlers": False, "update_heartbeat_interval": HEARTBEAT_S, **options}
        failures = 0
        while True:
            worker = Worker(app, **{**app.worker_defaults, **options})
            started = loop.time()
            try:
                await worker.run()
                problem = "a task of its failed, logged above"  # how it stops unasked: a lost listener
            except ConnectorException as exc:
                problem = f"database error: {exc.__cause__ or exc}"
            except Exception as exc:
                log.exception("the job worker failed", exc_info=exc)
                problem = f"{type(exc).__name__}: {exc}"
            failures = 1 if loop.time() - started >= HEALTHY_RUN_S else failures + 1
            delay = RESTART_BACKOFF_S[min(failures, len(RESTART_BACKOFF_S)) - 1]
            log.warning("the job worker stopped (%s); restarting it in %.1f s", problem, delay)
            await asyncio.sleep(delay)

    @contextlib.asynccontextmanager
    async def running_worker(self) -> AsyncIterator[procrastinate.App]:
        """A supervised worker in this process (the local stack); cancelled gracefully on exit."""
        async with self.opened(self.app()) as app:
            task = asyncio.create_task(
                self.supervise(app, name="in-process", shutdown_graceful_timeout=5),
                name="procrastinate-worker",
            )
            try:
                yield app
            finally:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def work(self) -> None:
        """A worker process's whole life (`litestar worker`): supervised until SIGINT or SIGTERM, which let
        the jobs at hand finish."""
        loop = asyncio.get_running_loop()
        async with self.opened(self.app()) as app:
            supervisor = asyncio.create_task(self.supervise(app), name="procrastinate-worker")
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(signum, supervisor.cancel)
            try:
                await supervisor
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if current is not None and current.cancelling():  # cancelled from outside, not by a signal
                    raise
            finally:
                for signum in (signal.SIGINT, signal.SIGTERM):
                    loop.remove_signal_handler(signum)
