"""The request pool and the PostgREST contract: every query runs as the caller.

The pool logs in as `authenticator`, as PostgREST does, so a query that forgot to take a role has no
privileges at all. Each transaction starts the way PostgREST starts one: `role`, `request.jwt.claims`,
`request.method` and `request.path` set locally, plus a statement timeout. The setup travels in the
same message as the first statement, so `fetch()` costs one round trip. No server-side prepared
statements: safe behind Supabase's transaction pooler.

A database restart must cost no request that starts after it: the pool (`LivePool`) never hands out a
connection the server has closed, which it knows without a round trip. Nothing is ever retried: `fetch()`
sends the statement with the setup, so a failure there may mean it ran. A caller waits for a connection at
most as long as for a statement (the statement timeout caps the pool timeout): while the server is down,
requests fail with a 503 rather than hang, and a restart shorter than that is ridden out.
"""

from __future__ import annotations

import dataclasses
import select
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from contextvars import ContextVar
from typing import Any, LiteralString, cast

import psycopg
from psycopg import AsyncClientCursor, AsyncConnection
from psycopg.pq import ConnStatus
from psycopg.rows import DictRow, dict_row
from psycopg.sql import Literal
from psycopg_pool import AsyncConnectionPool, PoolTimeout
from psycopg_pool.abc import ACT

from rpc.platform.auth import Caller

# `request.jwt.claim.sub` is what PostgREST before v9 set beside the claims; Supabase's auth.uid() reads it
# first, so policies calling auth.uid() many times per query skip parsing the whole claims JSON each time
# (measured: a tenth of the throughput of a one-query function with GoTrue-sized claims).
SETUP = (
    "select set_config('role', {role}, true), set_config('request.jwt.claims', {claims}, true),"
    " set_config('request.jwt.claim.sub', {sub}, true),"
    " set_config('request.method', {method}, true), set_config('request.path', {path}, true),"
    " set_config('statement_timeout', {timeout}, true);\n"
)
# Setups kept, one per caller, method and path: a verified token's caller is reused for every request it
# makes, so its claims (about a kilobyte) are quoted once, not once per request.
SETUP_CACHE = 10_000
SERVICE = Caller(role="service_role", claims={"role": "service_role"})

Connection = AsyncConnection[DictRow]

# Seconds this request spent waiting on Postgres, for the `db` part of Server-Timing (rpc.platform.web).
DB_SECONDS: ContextVar[list[float] | None] = ContextVar("db_seconds", default=None)


def record_db_time(seconds: float) -> None:
    spent = DB_SECONDS.get()
    if spent is not None:
        spent.append(seconds)


def alive(conn: AsyncConnection[Any]) -> bool:
    """Whether an idle pooled connection still has its server, known without a round trip.

    The server writes nothing to an idle connection unless it is going away: on shutdown (`pg_ctl
    restart`, even the postmaster killed) each backend sends a FATAL and closes its socket. So a socket
    with nothing to read is alive, and one with input is read until it is empty or ends (what was read,
    a notification say, stays buffered for the next command). Measured here: 2 us a call, where
    `AsyncConnectionPool.check_connection` sends an empty query, a round trip of 170 us. poll, not select:
    a busy process may have sockets past select's limit of 1024.
    """
    pgconn = conn.pgconn
    if pgconn.status != ConnStatus.OK:
        return False
    poller = select.poll()
    poller.register(pgconn.socket, select.POLLIN)
    while poller.poll(0):
        try:
            pgconn.consume_input()
        except psycopg.OperationalError:  # end of stream: the server closed it
            return False
    return True


class LivePool(AsyncConnectionPool[ACT]):
    """A pool that never hands out a connection its server has closed (a restart while it sat idle), and
    that reconnects within seconds of the server's return, however long it was away.

    Dead connections are handed back, which makes the pool replace them in the background, and the next is
    taken at once. The pool's own `check=` would cost a round trip per checkout and sleep a second, then
    two, four, eight, after each dead one: up to 15 s after a restart, for a pool of four.

    A failed connection attempt is retried 1, 2, 4... s later, for `reconnect_timeout` (psycopg_pool:
    300 s), which left an outage of T seconds followed by up to T more without a connection (measured:
    every request failed for 30 s after a 34 s outage). Here attempts last no longer than a caller waits
    (`timeout`): then the next caller to wait starts one afresh, and a caller who comes after the server
    is back gets a connection within its wait.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.reconnect_timeout = self.timeout

    async def getconn(self, timeout: float | None = None) -> ACT:  # noqa: ASYNC109 (the signature it overrides)
        started = time.monotonic()
        conn = await super().getconn(timeout)
        while not alive(conn):
            await self.putconn(conn)
            left = (self.timeout if timeout is None else timeout) - (time.monotonic() - started)
            if left <= 0:
                raise PoolTimeout("couldn't get a live connection in time")
            conn = await super().getconn(left)
        return conn


def literal(value: str) -> str:
    """A SQL string literal, quoted by psycopg (E'' when it holds a backslash, so any server setting reads it)."""
    return Literal(value).as_string(None)


class Database:
    def __init__(
        self,
        dsn: str,
        *,
        min_size: int = 1,
        max_size: int = 10,
        timeout_s: float = 10.0,
        statement_timeout_ms: int = 8000,
    ) -> None:
        self.statement_timeout = literal(f"{statement_timeout_ms}ms")
        self._setups: dict[tuple[str, ...], str] = {}
        self.dsn, self.min_size, self.max_size = dsn, min_size, max_size
        # While the server is down the pool has nothing to give: no caller waits longer than a statement may
        # run (a restart of a few seconds is ridden out, a longer outage is a prompt 503).
        self.timeout_s = min(timeout_s, statement_timeout_ms / 1000)
        self._pool: LivePool[Connection] | None = None

    @property
    def pool(self) -> LivePool[Connection]:
        if self._pool is None:
            raise RuntimeError("the database pool is not open (the app's lifespan opens it)")
        return self._pool

    async def open(self) -> None:
        # A new pool per lifespan: a closed psycopg pool cannot be reopened, and an app may be served twice.
        self._pool = LivePool(
            self.dsn,
            min_size=self.min_size,
            max_size=self.max_size,
            timeout=self.timeout_s,
            open=False,
            name="api",
            connection_class=AsyncConnection[DictRow],
            kwargs={
                "autocommit": True,
                "prepare_threshold": None,
                "row_factory": dict_row,
                "application_name": "talentbase-api",
            },
        )
        await self._pool.open(wait=False)

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    def setup(self, caller: Caller, method: str, path: str) -> str:
        """The statement that starts a request as PostgREST does, values quoted client-side."""
        key = (caller.role, caller.claims_json, caller.user_id or "", method, path)
        setup = self._setups.get(key)
        if setup is None:
            if len(self._setups) >= SETUP_CACHE:
                self._setups.clear()
            role, claims, sub, method, path = map(literal, key)
            setup = self._setups[key] = SETUP.format(
                role=role, claims=claims, sub=sub, method=method, path=path, timeout=self.statement_timeout
            )
        return setup

    @asynccontextmanager
    async def as_caller(
        self, caller: Caller, *, method: str = "POST", path: str = "/"
    ) -> AsyncIterator[Connection]:
        """A transaction with the caller's role and claims; committed on exit, rolled back on error.

        BEGIN and the setup travel together; each statement inside is a round trip; COMMIT is the last.
        """
        started = time.perf_counter()
        try:
            async with self.pool.connection() as conn:
                # Simple protocol, which runs several statements in one message; values are quoted in it.
                await AsyncClientCursor(conn).execute(
                    cast(LiteralString, "begin;\n" + self.setup(caller, method, path))
                )
                try:
                    yield conn
                except BaseException:
                    await conn.execute("rollback")
                    raise
                await conn.execute("commit")
        finally:
            record_db_time(time.perf_counter() - started)

    def as_service(self, *, method: str = "POST", path: str = "/") -> Any:
        """The same as `as_caller` with role `service_role` (bypasses RLS): check authorisation first."""
        return self.as_caller(SERVICE, method=method, path=path)

    async def fetch(
        self,
        caller: Caller,
        query: LiteralString,
        params: Sequence[Any] = (),
        *,
        method: str = "POST",
        path: str = "/",
    ) -> list[dict[str, Any]]:
        """One statement as the caller in one round trip.

        The setup and the statement go as one simple-protocol message: Postgres runs them in one implicit
        transaction, so the local settings hold for the statement and vanish after it. Values are quoted
        client-side by psycopg, which also keeps the transaction pooler happy. Measured: about 1.4x the
        throughput of the same two statements pipelined over the extended protocol. A statement run on
        every request is planned on every request, RLS included: hot reads belong in plpgsql functions,
        whose plans a connection keeps (see public.whoami()).
        """
        started = time.perf_counter()
        try:
            async with self.pool.connection() as conn:
                cursor = AsyncClientCursor(conn, row_factory=dict_row)
                statement = cursor.mogrify(query, params) if params else query
                await cursor.execute(cast(LiteralString, self.setup(caller, method, path) + statement))
                cursor.nextset()
                return await cursor.fetchall() if cursor.description else []
        finally:
            record_db_time(time.perf_counter() - started)


class Session:
    """The database as one caller of one request: what function handlers receive."""

    def __init__(self, db: Database, caller: Caller, method: str, path: str) -> None:
        self.db, self.caller, self.method, self.path = db, caller, method, path

    def transaction(self) -> Any:
        return self.db.as_caller(self.caller, method=self.method, path=self.path)

    async def fetch(self, query: LiteralString, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        return await self.db.fetch(self.caller, query, params, method=self.method, path=self.path)

    def privileged(self) -> Session:
        """The same caller's claims (`auth.uid()` is still them) under role `service_role`, which may execute
        private functions and bypasses RLS: for statements that check the caller's rights themselves."""
        caller = dataclasses.replace(self.caller, role="service_role")
        return Session(self.db, caller, self.method, self.path)
