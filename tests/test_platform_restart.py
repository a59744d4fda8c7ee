"""The app survives a database restart: the next request succeeds, the worker comes back, mail flows.

The suite's cluster is shared by every module, so this one runs a cluster of its own and restarts it in
the two ways a server goes away: `pg_ctl restart -m fast` (every backend sends a FATAL, then closes), and
the postmaster killed (crash recovery on start; backends waiting on a lock exit without a word). The app
runs as `make run` does, under uvicorn with real PostgREST and the in-process worker. When the server goes
away, function calls and an email job are in flight, blocked on locks a test transaction holds, and the
request pool keeps idle connections the server has closed.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil
import psycopg
import psycopg_pool
import pytest

from rpc.local.embedded import bootstrap
from rpc.local.rest import HOW_TO_GET_IT, find_postgrest, free_port
from rpc.platform.db import SERVICE, Database, alive
from rpc.platform.migrations import Runner
from rpc.platform.settings import Settings
from tests.support import bearer, live_server, make_user, token_for

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from rpc.local.embedded import EmbeddedPostgres

ROOT = Path(__file__).resolve().parent.parent
LITESTAR = ROOT / ".venv" / "bin" / "litestar"
# The project's own secrets, not the supabase CLI's published ones (which the app accepts only from the
# local stack's own database).
JWT_SECRET = f"restart-{uuid.uuid4().hex}"
SECRET_KEY = f"sb_secret_{uuid.uuid4().hex}"

# Application names: the request pool's, PostgREST's, and the email job's own connection.
API, POSTGREST, EMAIL = "talentbase-api", "PostgREST", "talentbase-email"
WHOAMI, ROLES = "/functions/v1/whoami", "/rest/v1/user_roles?select=role"
CONTEXT = {
    "requester_name": "Ann",
    "executive_name": "Eve",
    "company_name": "Acme",
    "role_title": "Fractional CFO",
    "role_id": str(uuid.uuid4()),
}


@dataclass(frozen=True)
class Stack:
    cluster: EmbeddedPostgres
    superuser: str
    settings: Settings
    url: str
    token: str


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    root = Path(tempfile.mkdtemp(prefix="talentbase-restart-"))
    cluster = EmbeddedPostgres(root, port=free_port())
    settings = Settings(
        database_url=cluster.dsn("postgres", "postgres"),  # type: ignore[arg-type]
        api_database_url=cluster.dsn("authenticator", "postgres"),  # type: ignore[arg-type]
        supabase_jwt_secret=JWT_SECRET,  # type: ignore[arg-type]
        supabase_secret_key=SECRET_KEY,  # type: ignore[arg-type]
        rest_api=True,
        smtp_host=None,  # mail goes to the log: status `console`
        log_json=False,
        db_pool_max=4,
    )
    if find_postgrest(settings) is None:
        pytest.skip(HOW_TO_GET_IT)
    try:
        cluster.start()
        bootstrap(cluster.dsn())
        Runner(settings.admin_dsn).push()
        with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
            user = make_user(conn)
        from app import create_app

        with live_server(create_app(settings, run_worker=True)) as url:
            yield Stack(cluster, cluster.dsn(), settings, url, token_for(user, JWT_SECRET))
    finally:
        cluster.stop()
        for path in {root, cluster.root}:
            shutil.rmtree(path, ignore_errors=True)


# Two ways for the server to go away --------------------------------------------------------------------


def fast_restart(cluster: EmbeddedPostgres) -> None:
    cluster._run(
        "pg_ctl", "restart", "-w", "-m", "fast", "-D", str(cluster.pgdata), "-l", str(cluster.logfile)
    )


def kill_and_start(cluster: EmbeddedPostgres) -> None:
    pid = cluster._running_pid()
    assert pid is not None
    postmaster = psutil.Process(pid)
    backends = postmaster.children()
    postmaster.kill()
    # A new postmaster refuses to start while backends of the old one still hold its shared memory.
    _, left = psutil.wait_procs([postmaster, *backends], timeout=30)
    assert not left, left
    cluster.start()


# Helpers ----------------------------------------------------------------------------------------------


def wait_until(check: Callable[[], Any], timeout_s: float, what: str) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if result := check():
            return result
        time.sleep(0.05)
    raise AssertionError(f"{what}: not within {timeout_s} s")


def waiting_on_locks(conn: psycopg.Connection, application: str) -> int:
    """Backends of `application` (a prefix) waiting on a lock."""
    row = conn.execute(
        "select count(*) from pg_stat_activity where application_name like %s and wait_event_type = 'Lock'",
        (f"{application}%",),
    ).fetchone()
    return row[0] if row else 0


def connections_of(conn: psycopg.Connection, application: str) -> int:
    row = conn.execute(
        "select count(*) from pg_stat_activity where application_name = %s", (application,)
    ).fetchone()
    return row[0] if row else 0


@dataclass(frozen=True)
class Call:
    status: int
    body: Any
    seconds: float


def call(url: str, token: str, path: str = WHOAMI) -> Call:
    started = time.monotonic()
    if path.startswith("/rest/"):
        response = httpx.get(url + path, headers=bearer(token), timeout=60)
    else:
        response = httpx.post(url + path, headers=bearer(token), timeout=60)
    try:
        body = response.json()
    except json.JSONDecodeError:
        body = response.text
    return Call(response.status_code, body, time.monotonic() - started)


def blocked_calls(
    pool: ThreadPoolExecutor, stack: Stack, conn: psycopg.Connection, count: int, path: str = WHOAMI
) -> list[Future[Call]]:
    """`count` calls, returned once each waits on the test's lock on public.user_roles."""
    application = API if path == WHOAMI else POSTGREST
    waiting = waiting_on_locks(conn, application)
    calls = [pool.submit(call, stack.url, stack.token, path) for _ in range(count)]
    wait_until(
        lambda: waiting_on_locks(conn, application) == waiting + count, 10, f"{count} calls on the lock"
    )
    return calls


def outbox_row(conn: psycopg.Connection, key: str) -> int:
    """A message written as `private.send_email` writes it, its job not queued yet."""
    row = conn.execute(
        "insert into private.outbox (template, recipient, context, idempotency_key)"
        " values ('introduction_declined', %s, %s, %s) returning id",
        (f"{key}@example.com", json.dumps(CONTEXT), key),
    ).fetchone()
    assert row is not None
    return row[0]


def email_status(conn: psycopg.Connection, outbox_id: int) -> str:
    row = conn.execute("select status::text from private.outbox where id = %s", (outbox_id,)).fetchone()
    assert row is not None
    return row[0]


def job_of(conn: psycopg.Connection, outbox_id: int) -> dict[str, Any]:
    row = conn.execute(
        "select id, status::text, worker_id from procrastinate.procrastinate_jobs"
        " where task_name = 'email:send_email' and args->>'outbox_id' = %s",
        (str(outbox_id),),
    ).fetchone()
    assert row is not None
    return {"id": row[0], "status": row[1], "worker_id": row[2]}


def left_by_its_worker(conn: psycopg.Connection, outbox_id: int) -> dict[str, Any] | None:
    job = job_of(conn, outbox_id)
    return job if job["status"] != "doing" or job["worker_id"] is None else None


def run_the_sweeps(conn: psycopg.Connection) -> None:
    """Queue now what the periodic sweeps queue every minute: jobs of dead workers put back, pending
    messages without a job given one."""
    for queue, task in (("maintenance", "retry_stalled_jobs"), ("email", "requeue_unsent_emails")):
        conn.execute(
            "insert into procrastinate.procrastinate_jobs (queue_name, task_name, queueing_lock, args)"
            " values (%s, %s, %s, '{\"timestamp\": 0}')"
            " on conflict (queueing_lock) where status = 'todo' do nothing",
            (queue, f"{queue}:{task}", task),
        )


def healthy(client: httpx.Client) -> dict[str, Any] | None:
    try:
        response = client.get("/health", timeout=5)
    except httpx.HTTPError:
        return None
    body = response.json()
    return body if response.status_code == 200 and body["status"] == "ok" else None


# The restart ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("restart", [fast_restart, kill_and_start], ids=["fast_restart", "postmaster_killed"])
def test_the_app_survives_a_database_restart(stack: Stack, restart: Callable[[EmbeddedPostgres], None]):
    statement_timeout_s = stack.settings.statement_timeout_ms / 1000
    with (
        httpx.Client(base_url=stack.url, headers=bearer(stack.token), timeout=30) as client,
        ThreadPoolExecutor(8) as pool,
        # Closed, not committed, on the way out: the server drops them in the restart.
        closing(psycopg.connect(stack.superuser, autocommit=True)) as conn,
        closing(psycopg.connect(stack.superuser)) as blocker,  # holds locks in one open transaction
    ):
        wait_until(lambda: healthy(client), 30, "healthy before the restart")
        blocker.execute("lock table public.user_roles in access exclusive mode")
        # Four calls at once fill the request pool; released, they leave four idle connections.
        warm = blocked_calls(pool, stack, conn, 4)
        blocker.rollback()
        assert [future.result(timeout=10).status for future in warm] == [200] * 4
        assert connections_of(conn, API) == 4

        blocker.execute("lock table public.user_roles in access exclusive mode")
        functions = blocked_calls(pool, stack, conn, 2)  # and two idle connections stay in the pool
        rest = blocked_calls(pool, stack, conn, 1, ROLES)
        stuck = outbox_row(conn, f"stuck-{uuid.uuid4().hex[:8]}")
        blocker.execute("select 1 from private.outbox where id = %s for update", (stuck,))
        conn.execute("select private.queue_email(%s)", (stuck,))
        wait_until(lambda: waiting_on_locks(conn, EMAIL) == 1, 10, "the email job waiting on its row")

        restart(stack.cluster)
        back = time.monotonic()

        # Calls in flight end at once: answered, or a clean 503, never a hang or a 500.
        for future in functions + rest:
            result = future.result(timeout=statement_timeout_s + 5)
            assert result.status in (200, 503), result
            assert result.seconds < statement_timeout_s, result
        for future in functions:
            if future.result().status == 503:
                assert future.result().body["error"] == "database_unavailable", future.result()
        # The pool still holds idle connections the server closed: the next call is not given one.
        first = call(stack.url, stack.token)
        assert first.status == 200, first

        wait_until(lambda: healthy(client), back + 10 - time.monotonic(), "/health ok within 10 s")
        assert client.get("/rest/v1/profiles?select=id").status_code == 200

    with psycopg.connect(stack.superuser, autocommit=True) as conn:
        after = f"after-{uuid.uuid4().hex[:8]}"
        conn.execute(
            "select private.send_email('introduction_declined', %s, %s, %s)",
            (f"{after}@example.com", json.dumps(CONTEXT), after),
        )
        row = conn.execute("select id from private.outbox where idempotency_key = %s", (after,)).fetchone()
        assert row is not None
        wait_until(lambda: email_status(conn, row[0]) == "console", 15, "the email queued after, sent")

        # The job in flight failed with its connection. Its worker recorded the failure (a retry, due in
        # 30 s: brought forward here, the backoff is rpc.platform.email's), or, when the server was gone
        # before it could, left it `doing` and unregistered: a job of no worker, for the minutely sweep.
        job = wait_until(lambda: left_by_its_worker(conn, stuck), 15, "the stuck job left by its worker")
        if job["status"] == "todo":
            conn.execute(
                "update procrastinate.procrastinate_jobs set scheduled_at = now() where id = %s", (job["id"],)
            )
        else:
            assert job["status"] == "doing", job
            run_the_sweeps(conn)
        wait_until(lambda: email_status(conn, stuck) == "console", 15, "the email stuck in the restart, sent")


def test_litestar_worker_comes_back_and_stops_on_sigterm(stack: Stack, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "API_DATABASE_", "SMTP_"))}
    env.update(
        PYTHONPATH=str(ROOT),
        LITESTAR_APP="app:create_app",
        DATABASE_URL=stack.settings.admin_dsn,
        API_DATABASE_URL=stack.settings.api_dsn,
        SUPABASE_JWT_SECRET=JWT_SECRET,
        SUPABASE_SECRET_KEY=SECRET_KEY,
        LOG_JSON="false",
    )
    conn = psycopg.connect(stack.superuser, autocommit=True)

    def workers(since: str = "-infinity") -> set[int]:
        rows = conn.execute(
            "select id from procrastinate.procrastinate_workers where last_heartbeat >= %s::timestamptz",
            (since,),
        ).fetchall()
        return {row[0] for row in rows}

    log = tmp_path / "worker.log"
    before = workers()
    with log.open("w") as output:
        # Run outside the project directory: a developer's .env must not reach it.
        worker = subprocess.Popen(
            [str(LITESTAR), "worker"], cwd=tmp_path, env=env, stdout=output, stderr=output
        )
    try:
        wait_until(lambda: workers() - before, 30, "the litestar worker registered")

        fast_restart(stack.cluster)
        conn.close()
        conn = psycopg.connect(stack.superuser, autocommit=True)
        back = conn.execute("select now()::text").fetchone()[0]  # type: ignore[index]
        # Both workers back (the app's in-process one and this process's), this one restarted.
        wait_until(lambda: len(workers(back)) == 2, 15, "both workers registered again")
        assert "the job worker stopped" in log.read_text()

        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=15) == 0, log.read_text()
        assert len(workers(back)) == 1  # it unregistered: a clean stop
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
        conn.close()


# The pieces -------------------------------------------------------------------------------------------


async def test_alive_tells_a_closed_connection_from_an_idle_one(stack: Stack) -> None:
    dsn = stack.cluster.dsn()
    async with (
        await psycopg.AsyncConnection.connect(dsn, autocommit=True) as idle,
        await psycopg.AsyncConnection.connect(dsn, autocommit=True) as listening,
        await psycopg.AsyncConnection.connect(dsn, autocommit=True) as doomed,
        await psycopg.AsyncConnection.connect(dsn, autocommit=True) as other,
    ):
        await listening.execute("listen restart_test")
        await other.execute("notify restart_test, 'hello'")  # input waiting, and nothing wrong
        # What a shutdown does to each backend: a FATAL, then the socket closes.
        await other.execute("select pg_terminate_backend(%s, 5000)", (doomed.info.backend_pid,))
        heard: list[str] = []
        listening.add_notify_handler(lambda notify: heard.append(notify.payload))
        assert alive(idle)
        assert alive(listening)
        assert not alive(doomed)
        assert doomed.broken
        # What was read is kept, not lost: the next command delivers the notification.
        await listening.execute("select 1")
        assert heard == ["hello"]


async def test_a_caller_waits_for_a_connection_no_longer_than_a_statement_may_run() -> None:
    nowhere = f"postgresql://authenticator:postgres@127.0.0.1:{free_port()}/postgres"  # nothing listens
    db = Database(nowhere, timeout_s=30, statement_timeout_ms=1000)
    await db.open()
    try:
        started = time.monotonic()
        with pytest.raises(psycopg_pool.PoolTimeout):
            await db.fetch(SERVICE, "select 1")
        assert time.monotonic() - started < 3  # the statement timeout, not the pool's 30 s
    finally:
        await db.close()


async def test_after_a_long_outage_the_first_call_gets_a_connection(stack: Stack) -> None:
    """psycopg_pool retries a failed connection 1, 2, 4... s apart (attempts at 0, 1, 3, 7 s): after an
    outage several times longer than a caller waits, its next attempt can come long after the server is
    back. Back at about 4 s here, the next attempt would come at about 7."""
    db = Database(stack.settings.api_dsn, timeout_s=1)  # callers wait at most a second
    await db.open()
    try:
        assert await db.fetch(SERVICE, "select 1 as one") == [{"one": 1}]
        pgdata = str(stack.cluster.pgdata)
        await asyncio.to_thread(stack.cluster._run, "pg_ctl", "stop", "-w", "-m", "fast", "-D", pgdata)
        down_until = time.monotonic() + 3.5
        while time.monotonic() < down_until:  # callers keep coming, and keep failing
            with pytest.raises(psycopg.OperationalError):  # PoolTimeout among them
                await db.fetch(SERVICE, "select 1")
            await asyncio.sleep(0.2)
        await asyncio.to_thread(stack.cluster.start)
        assert await db.fetch(SERVICE, "select 1 as one") == [{"one": 1}]
    finally:
        await db.close()
