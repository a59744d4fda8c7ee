"""HTTP plumbing shared by every function: request ids, Server-Timing, access logs, CORS, rate limits."""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import re
import time
from contextvars import ContextVar
from typing import Any

import msgspec
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from rpc.platform.auth import Caller
from rpc.platform.db import DB_SECONDS
from rpc.platform.errors import ApiError, send_error
from rpc.platform.settings import Settings

REQUEST_ID: ContextVar[str | None] = ContextVar("request_id", default=None)
OWN_HEADERS = frozenset({b"x-request-id", b"server-timing"})  # set here, replacing any a handler set
SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

access_log = logging.getLogger("rpc.access")


class RequestIds:
    """Unique request ids without a system call each: a random per-process prefix and a counter."""

    def __init__(self) -> None:
        self.reseed()
        os.register_at_fork(after_in_child=self.reseed)  # a forked worker must not repeat its parent's ids

    def reseed(self) -> None:
        self._prefix, self._counter = os.urandom(8).hex(), itertools.count(1)

    def next(self) -> str:
        return f"{self._prefix}{next(self._counter):016x}"


request_ids = RequestIds()


def header(scope: Scope, name: bytes) -> str | None:
    """A request header's first value (`name` in lower case, as ASGI gives names)."""
    return next((value.decode("latin-1") for key, value in scope["headers"] if key == name), None)


def request_context(app: ASGIApp) -> ASGIApp:
    """Tags each request with an id (the caller's `x-request-id` if sane) and times it.

    Every log line of the request carries the id; the response carries it back with `Server-Timing`
    (`app` for the whole handler, `db` for time spent waiting on Postgres).
    """

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        incoming = header(scope, b"x-request-id") or ""
        request_id = incoming if SAFE_REQUEST_ID.match(incoming) else request_ids.next()
        # The path as the client sent it: routing rewrites a mount's `path` (/rest/v1/x -> /x/) in place.
        method = scope["method"]
        path = scope["raw_path"].decode("latin-1") if scope.get("raw_path") else scope["path"]
        id_token, db_token = REQUEST_ID.set(request_id), DB_SECONDS.set([])
        started = time.perf_counter()
        status = 500

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                db_ms = sum(DB_SECONDS.get() or ()) * 1000
                app_ms = (time.perf_counter() - started) * 1000
                message["headers"] = [
                    *(h for h in message.get("headers", ()) if h[0].lower() not in OWN_HEADERS),
                    (b"x-request-id", request_id.encode()),
                    (b"server-timing", f"app;dur={app_ms:.1f}, db;dur={db_ms:.1f}".encode()),
                ]
            await send(message)

        try:
            await app(scope, receive, send_with_headers)
        finally:
            access_log.info(
                "%s %s %s",
                method,
                path,
                status,
                extra={
                    "fields": {
                        "method": method,
                        "path": path,
                        "status": status,
                        "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                    }
                },
            )
            REQUEST_ID.reset(id_token)
            DB_SECONDS.reset(db_token)

    return middleware


class JsonFormatter(logging.Formatter):
    """One JSON object per line, with the request id; never the Authorization header or settings."""

    def __init__(self) -> None:
        super().__init__()
        self._second, self._stamp = -1, ""
        self._encoder = msgspec.json.Encoder(enc_hook=str)

    def format(self, record: logging.LogRecord) -> str:
        # One access line per request: the timestamp is formatted once per second, not per line.
        second = int(record.created)
        if second != self._second:
            self._second, self._stamp = second, time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(second))
        entry: dict[str, Any] = {
            "ts": self._stamp,
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = REQUEST_ID.get()
        if request_id:
            entry["request_id"] = request_id
        entry.update(getattr(record, "fields", {}))
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return self._encoder.encode(entry).decode()


class LoopBatchingHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A StreamHandler that writes the lines of one event-loop iteration with one write.

    Every request logs a line, and a write plus a flush per line cost about a tenth of a short function's
    throughput. Lines logged on the event loop's thread wait for the end of the current iteration (well
    under a millisecond); lines from any other thread, or with no loop running, are written at once.
    `logging.shutdown()` flushes what is pending.
    """

    def __init__(self, stream: Any = None) -> None:
        super().__init__(stream)
        self._pending: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:  # runs under the handler's lock
        try:
            self._pending.append(self.format(record))
        except Exception:
            self.handleError(record)
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # another thread, or no loop at all
            self._write_pending()
            return
        if len(self._pending) == 1:
            loop.call_soon(self.flush)

    def flush(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            self._write_pending()
            super().flush()

    def _write_pending(self) -> None:
        if self._pending:
            lines, self._pending = self._pending, []
            try:
                self.stream.write("\n".join(lines) + "\n")
            except Exception:  # as StreamHandler does: report on stderr, never fail the caller
                self.handleError(logging.makeLogRecord({"msg": f"log lines lost: {len(lines)}"}))


def configure_logging(settings: Settings) -> None:
    # The logging HOWTO's "Optimization" knobs: records need none of these, and collecting them costs a
    # measurable share of a short request (the caller, via a stack walk, above all).
    logging._srcfile = None
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    handler = LoopBatchingHandler()
    if settings.log_json:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level.upper())
    # uvicorn's own access log would repeat ours without the request id.
    logging.getLogger("uvicorn.access").disabled = True
    for noisy in ("psycopg.pool", "procrastinate", "httpx"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


# Kong's `cors` plugin, on every service of Supabase's gateway, allows these to every preflight.
PREFLIGHT_METHODS = b"GET,HEAD,PUT,PATCH,POST,DELETE,OPTIONS,TRACE,CONNECT"
# What a browser's script may read: PostgREST's own list (Content-Range for supabase-js's counts) and ours.
EXPOSED_HEADERS = ", ".join(
    (
        "content-encoding",
        "content-location",
        "content-range",
        "content-type",
        "date",
        "location",
        "server",
        "transfer-encoding",
        "range-unit",
        "preference-applied",
        "x-request-id",
        "server-timing",
        "retry-after",
        "ratelimit-limit",
        "ratelimit-remaining",
        "x-supabase-api-version",
        # GoTrue's admin paging, and what Storage's downloads tell beyond the safelisted headers.
        "x-total-count",
        "link",
        "etag",
        "content-disposition",
    )
).encode()
PREFLIGHT_MAX_AGE = b"86400"  # Kong sends none; browsers cap it (Chromium at 2 h): fewer preflights


def cors(app: ASGIApp, origins: list[str]) -> ASGIApp:
    """CORS for every path (functions and the local stack's /rest/v1), as Supabase's gateway answers it.

    A preflight (OPTIONS with Origin and Access-Control-Request-Method) is answered here, 200, allowing
    whatever headers it asks for: frontends and tracing libraries add their own (sentry-trace, baggage,
    x-supabase-api-version), and Kong lets them all through. `origins` is CORS_ORIGINS: "*" allows any,
    else an origin on the list (`*` within an entry matches any run of characters but `/`) is echoed with
    `Vary: Origin`, and any other gets no CORS header at all, so the browser refuses it.

    Litestar's CORSConfig falls short of this: it answers 204 to any OPTIONS with an Origin, overwrites
    Vary, and leaves an upstream's own Access-Control-Allow-Origin (PostgREST sends `*`) on a response to
    an origin not on the list. Here the upstream's Access-Control-* headers are always replaced.
    """
    any_origin = "*" in origins
    allowed = [re.compile(re.escape(entry).replace(r"\*", "[^/]*")) for entry in origins]

    def allow(origin: str) -> list[tuple[bytes, bytes]] | None:
        if any_origin:
            return [(b"access-control-allow-origin", b"*")]
        if any(pattern.fullmatch(origin) for pattern in allowed):
            return [(b"access-control-allow-origin", origin.encode("latin-1")), (b"vary", b"Origin")]
        return None

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        origin = header(scope, b"origin") if scope["type"] == "http" else None
        if origin is None:
            await app(scope, receive, send)
            return
        allowed_origin = allow(origin)
        if scope["method"] == "OPTIONS" and header(scope, b"access-control-request-method") is not None:
            await preflight(send, origin, allowed_origin, header(scope, b"access-control-request-headers"))
            return
        added = (
            [*allowed_origin, (b"access-control-expose-headers", EXPOSED_HEADERS)] if allowed_origin else []
        )

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [
                    *(
                        h
                        for h in message.get("headers", ())
                        if not h[0].lower().startswith(b"access-control-")
                    ),
                    *added,
                ]
            await send(message)

        await app(scope, receive, send_with_cors)

    return middleware


async def preflight(
    send: Send, origin: str, allowed_origin: list[tuple[bytes, bytes]] | None, requested: str | None
) -> None:
    if allowed_origin is None:
        await send_error(send, 403, "origin_not_allowed", f"the origin {origin} is not in CORS_ORIGINS")
        return
    headers = [
        *allowed_origin,
        (b"access-control-allow-methods", PREFLIGHT_METHODS),
        (b"access-control-max-age", PREFLIGHT_MAX_AGE),
        (b"content-length", b"0"),
    ]
    if requested is not None:
        headers.append((b"access-control-allow-headers", requested.encode("latin-1")))
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b""})


class RateLimiter:
    """Fixed-window counts per caller: `limit` calls per `window_s`, per process.

    Litestar's RateLimitMiddleware keeps a timestamp history per key in a Store, decoded and re-encoded on
    every request: measured here, it took a third of the throughput of a one-query function. This keeps
    one counter per caller and window. With N web processes a caller gets up to N x the limit; a limit
    that must hold across processes belongs in Postgres.
    """

    def __init__(self, limit: int, window_s: int = 60) -> None:
        self.limit, self.window_s = limit, window_s
        self._window = 0
        self._counts: dict[str, int] = {}

    def hit(self, key: str, now: float) -> int:
        """Counts a call; 0 if allowed, else the seconds until the window resets."""
        window = int(now // self.window_s)
        if window != self._window:
            self._window, self._counts = window, {}
        count = self._counts.get(key, 0) + 1
        self._counts[key] = count
        if count <= self.limit:
            return 0
        return max(1, int((window + 1) * self.window_s - now))

    def check(self, caller: Caller | None, scope: Scope) -> None:
        """Counts a call against the verified user, else the client address (the service role is not
        limited); 429 `rate_limited` with Retry-After once over the limit."""
        if caller is not None and caller.role == "service_role":
            return
        if caller is not None and caller.user_id:
            key = f"user:{caller.user_id}"
        else:
            client = scope.get("client")
            key = f"ip:{client[0] if client else 'unknown'}"
        retry_after = self.hit(key, time.time())
        if retry_after:
            raise ApiError(
                429,
                "rate_limited",
                f"too many calls: at most {self.limit} a minute, try again in {retry_after} s",
                {"Retry-After": str(retry_after)},
            )
