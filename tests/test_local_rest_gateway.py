"""The gateway's edges: what may reach PostgREST (only `/rest/v1` and below, only PostgREST itself), and how
PostgREST's own output is logged.

The proxy tests send their request targets with http.client, exactly as written (absolute forms, `@`,
backslashes, encoded slashes), to the app under uvicorn, while a real listener on another loopback port
waits for a connection that must never come: the gateway builds PostgREST's address from parts, so no path,
query or header can name another host.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import pytest

from rpc.local.rest import (
    HOW_TO_GET_IT,
    PostgREST,
    find_postgrest,
    free_port,
    postgrest_line,
    postgrest_messages,
)
from rpc.local.tokens import api_key
from tests.conftest import Database
from tests.support import SECRET, live_server

ANON_KEY = api_key(SECRET, "anon")
SERVICE_KEY = api_key(SECRET, "service_role")


@dataclass
class Listener:
    """A plain HTTP server on a loopback port of its own that notes every connection it accepts."""

    server: socket.socket
    connections: list[bytes] = field(default_factory=list)

    @property
    def port(self) -> int:
        return self.server.getsockname()[1]

    def serve(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:  # closed: the test is over
                return
            with conn:
                # Noted before it answers, so a client that got this answer finds the connection noted.
                self.connections.append(b"")
                conn.settimeout(5)
                with_request = conn.recv(65536)
                self.connections[-1] = with_request
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\nConnection: close\r\n\r\nlistener")


@pytest.fixture
def listener() -> Iterator[Listener]:
    server = socket.create_server(("127.0.0.1", 0))
    spy = Listener(server)
    thread = threading.Thread(target=spy.serve, daemon=True)
    thread.start()
    try:
        yield spy
    finally:
        server.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept(), which close() alone would not
        server.close()
        thread.join(5)


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def send(api_url: str, target: str, headers: dict[str, str] | None = None) -> Answer:
    """GET `target` exactly as written (http.client sends the request line as given), with a Host header
    naming the app unless `headers` name another."""
    address = urlsplit(api_url)
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=30)
    try:
        connection.putrequest("GET", target, skip_host=True, skip_accept_encoding=True)
        for name, value in {"Host": address.netloc, **(headers or {})}.items():
            connection.putheader(name, value)
        connection.endheaders()
        response = connection.getresponse()
        return Answer(response.status, response.read())
    finally:
        connection.close()


def is_ours_404(answer: Answer) -> bool:
    return answer.status == 404 and answer.json() == {"error": "not_found", "message": "Not Found"}


def test_an_unknown_path_is_the_404_that_paths_near_the_prefix_get(api_url):
    # The shape every other unknown path gets; the cases below must answer exactly this.
    assert is_ours_404(send(api_url, "/no/such/path"))


@pytest.mark.parametrize(
    "target",
    [
        pytest.param("/rest/v1@127.0.0.1:{port}/", id="at"),
        pytest.param("/rest/v1@127.0.0.1:{port}/profiles?select=id", id="at-with-query"),
        pytest.param("/rest/v1\\@127.0.0.1:{port}/", id="backslash-at"),
        pytest.param("/rest/v1%2F..%2F", id="encoded-slash-dotdot"),
        pytest.param("/rest/v1%2F%2F127.0.0.1:{port}/", id="encoded-double-slash"),
        pytest.param("/rest/v1x", id="suffix"),
        pytest.param("/rest/v10/", id="longer-version"),
        pytest.param("http://127.0.0.1:{port}/", id="absolute-form-elsewhere"),
        pytest.param("http://127.0.0.1:{api}/rest/v1@127.0.0.1:{port}/", id="absolute-form-at"),
    ],
)
def test_paths_outside_the_prefix_are_404_and_reach_nothing(api_url, listener, target):
    # No apikey, no Authorization: before the fix `@host` became the upstream's authority.
    answer = send(api_url, target.format(port=listener.port, api=urlsplit(api_url).port))
    assert listener.connections == []
    assert is_ours_404(answer), (answer.status, answer.body[:200])


def is_postgrest_error(answer: Answer, status: int, code: str) -> bool:
    body = answer.json()
    return (
        answer.status == status
        and set(body) == {"code", "details", "hint", "message"}
        and body["code"] == code
    )


def is_postgrest_openapi(answer: Answer) -> bool:
    return answer.status == 200 and answer.json()["basePath"] == "/rest/v1"


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        # PostgREST's 404 for a path it has no route for is an empty object, ours is {"error": ...}.
        pytest.param(
            "/rest/v1//127.0.0.1:{port}/", lambda a: a.status == 404 and a.json() == {}, id="slashes"
        ),
        pytest.param(
            "/rest/v1/%2F%2F127.0.0.1:{port}/",
            lambda a: a.status == 404 and a.json() == {},
            id="encoded-slashes",
        ),
        pytest.param(
            "/rest/v1/..\\..\\", lambda a: is_postgrest_error(a, 404, "42P01"), id="backslash-dotdot"
        ),
        pytest.param(
            "/rest/v1/?x=@127.0.0.1:{port}/", lambda a: is_postgrest_error(a, 400, "PGRST100"), id="query"
        ),
    ],
)
def test_odd_paths_inside_the_prefix_reach_postgrest_only(api_url, listener, target, expected):
    answer = send(api_url, target.format(port=listener.port))
    assert listener.connections == []
    assert expected(answer), (answer.status, answer.body[:200])


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({"Host": "127.0.0.1:{port}"}, id="host"),
        pytest.param({"X-Forwarded-Host": "127.0.0.1:{port}"}, id="x-forwarded-host"),
        pytest.param({"X-Original-URL": "http://127.0.0.1:{port}/"}, id="x-original-url"),
        pytest.param({"X-Original-URL": "/rest/v1@127.0.0.1:{port}/"}, id="x-original-url-at"),
        pytest.param({"Forwarded": "host=127.0.0.1:{port}"}, id="forwarded"),
    ],
)
def test_host_headers_do_not_choose_the_upstream(api_url, listener, headers):
    answer = send(
        api_url, "/rest/v1/", {name: value.format(port=listener.port) for name, value in headers.items()}
    )
    assert listener.connections == []
    assert is_postgrest_openapi(answer), (answer.status, answer.body[:200])


def test_legitimate_requests_still_pass(api_url, listener):
    assert is_postgrest_openapi(send(api_url, "/rest/v1"))
    assert is_postgrest_openapi(send(api_url, "/rest/v1/", {"apikey": ANON_KEY}))
    # The anon key is PostgREST's anon role, which may not read profiles; the service key may.
    anon = send(api_url, "/rest/v1/profiles?select=id", {"apikey": ANON_KEY})
    assert is_postgrest_error(anon, 401, "42501")
    service = send(api_url, "/rest/v1/profiles?select=id&limit=1", {"apikey": SERVICE_KEY})
    assert service.status == 200
    assert isinstance(service.json(), list)
    # The path's percent-encoding reaches PostgREST as sent: `%3F` names a table, it starts no query.
    encoded = send(api_url, "/rest/v1/profiles%3Fselect=id", {"apikey": SERVICE_KEY})
    assert is_postgrest_error(encoded, 404, "42P01")
    assert "profiles?select=id" in encoded.json()["message"]
    assert listener.connections == []


# PostgREST's output -----------------------------------------------------------------------------------------


def postgrest_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [
        record
        for record in caplog.records
        if record.name == "rpc.local.rest" and record.getMessage().startswith("postgrest: ")
    ]


def wait_for_record(caplog: pytest.LogCaptureFixture, text: str) -> None:
    """Until a PostgREST line containing `text` is logged: the relay reads its pipe in the app's loop."""
    deadline = time.monotonic() + 15
    while not any(text in record.getMessage() for record in postgrest_records(caplog)):
        assert time.monotonic() < deadline, [record.getMessage() for record in postgrest_records(caplog)]
        time.sleep(0.02)


def test_postgrest_start_up_is_logged_below_warning(database: Database, caplog):
    from app import create_app

    settings = database.settings(rest_api=True)
    if find_postgrest(settings) is None:
        pytest.skip(HOW_TO_GET_IT)
    app = create_app(settings)
    # create_app puts the app's own handler in place of the root logger's, caplog's among them.
    logging.getLogger().addHandler(caplog.handler)
    with caplog.at_level(logging.INFO, logger="rpc.local.rest"), live_server(app):
        wait_for_record(caplog, "Schema cache loaded")
    started = {record.getMessage(): record.levelno for record in postgrest_records(caplog)}
    assert started.keys() >= {
        "postgrest: Attempting to connect to the database...",
        "postgrest: Connection successful",
        "postgrest: Schema cache loaded",
    }
    assert any(line.startswith("postgrest: Starting PostgREST 12.") for line in started)
    # Every line of an ordinary start, and PostgREST's timestamp left out (ours is on the record).
    assert set(started.values()) == {logging.INFO}, started


def test_postgrest_whose_port_was_taken_meanwhile_starts_on_another(database: Database):
    settings = database.settings(rest_api=True)
    binary = find_postgrest(settings)
    if binary is None:
        pytest.skip(HOW_TO_GET_IT)
    upstream = PostgREST(binary, settings)
    # Another program on the port picked for it (as a connection's own end may be), before it starts.
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", upstream.port))
        squatter.listen()
        taken = upstream.port

        async def start_and_stop() -> tuple[bool, int, int]:
            try:
                await upstream.start()
                return await upstream.ready(), upstream.port, upstream.restarts
            finally:
                await upstream.stop()

        ready, port, restarts = asyncio.run(asyncio.wait_for(start_and_stop(), 30))
    assert ready
    assert restarts >= 1
    assert port != taken


def test_postgrest_failing_to_connect_is_logged_as_a_failure(database: Database, caplog):
    closed = free_port()
    settings = database.settings(
        rest_api=True, api_database_url=f"postgresql://authenticator:postgres@127.0.0.1:{closed}/postgres"
    )
    binary = find_postgrest(settings)
    if binary is None:
        pytest.skip(HOW_TO_GET_IT)
    upstream = PostgREST(binary, settings)

    async def start_and_stop() -> None:
        # start() waits up to 15 s for a readiness that cannot come; the first retry is enough.
        starting = asyncio.create_task(upstream.start())
        try:
            while not any("Attempting to reconnect" in r.getMessage() for r in postgrest_records(caplog)):
                assert not starting.done()
                await asyncio.sleep(0.02)
        finally:
            starting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await starting
            await upstream.stop()

    with caplog.at_level(logging.INFO, logger="rpc.local.rest"):
        asyncio.run(asyncio.wait_for(start_and_stop(), 15))
    levels = [(record.levelno, record.getMessage()) for record in postgrest_records(caplog)]
    failures = [(level, line) for level, line in levels if '"code":"PGRST000"' in line]
    assert failures, levels
    assert all(level == logging.ERROR for level, _ in failures), failures
    assert (logging.WARNING, "postgrest: Attempting to reconnect to the database in 0 seconds...") in levels
    assert (logging.INFO, "postgrest: Attempting to connect to the database...") in levels


@pytest.mark.parametrize(
    ("line", "level"),
    [
        # PostgREST 12.0.2's own lines (src/PostgREST/AppState.hs, App.hs, Admin.hs), as it prints them.
        ("30/Nov/2026:03:42:46 +0000: Listening on port 3000", logging.INFO),
        ("30/Nov/2026:03:42:46 +0000: Admin server listening on port 3001", logging.INFO),
        ("30/Nov/2026:03:42:46 +0000: Listening for notifications on the pgrst channel", logging.INFO),
        ("30/Nov/2026:03:42:46 +0000: Config reloaded", logging.INFO),
        (
            "30/Nov/2026:03:42:46 +0000: Retrying listening for notifications on the pgrst channel..",
            logging.WARNING,
        ),
        ("30/Nov/2026:03:42:46 +0000: An error ocurred when loading the schema cache", logging.ERROR),
        ("30/Nov/2026:03:42:46 +0000: A fatal error ocurred when loading the schema cache", logging.ERROR),
        ("30/Nov/2026:03:42:46 +0000: Automatic recovery disabled, exiting.", logging.ERROR),
        ("30/Nov/2026:03:42:46 +0000: Failed reloading config: bad", logging.ERROR),
        (
            '30/Nov/2026:03:42:46 +0000: connection to server at "127.0.0.1", port 5432 failed: FATAL:  password'
            ' authentication failed for user "authenticator"',
            logging.ERROR,
        ),
        # What GHC's runtime prints as the process dies.
        ("postgrest: thread killed", logging.ERROR),
        (
            'postgrest: FatalError {fatalErrorMessage = "Error in config Invalid logging level."}',
            logging.ERROR,
        ),
        # Its request log: 4xx at its `warn`, 5xx at its `error`.
        ('127.0.0.1 - anon [30/Nov/2026:03:45:42 +0000] "GET /x HTTP/1.1" 404 - "" ""', logging.WARNING),
        ('127.0.0.1 - anon [30/Nov/2026:03:45:42 +0000] "GET /x HTTP/1.1" 503 - "" ""', logging.ERROR),
        ('127.0.0.1 - anon [30/Nov/2026:03:45:42 +0000] "GET /x HTTP/1.1" 200 - "" ""', logging.INFO),
        ("something PostgREST has never printed", logging.WARNING),
    ],
)
def test_postgrest_lines_are_read_at_the_level_postgrest_means(line, level):
    assert postgrest_line(line, "postgrest")[0] == level


def test_postgrest_messages_written_at_once_are_told_apart():
    # Seen in a run: two of its threads' messages on one line, and the second one's newline left alone.
    line = "30/Nov/2026:09:42:31 +0000: Connection successful30/Nov/2026:09:42:31 +0000: Admin server listening on port 1"
    assert postgrest_messages(line + "\n") == [
        "30/Nov/2026:09:42:31 +0000: Connection successful",
        "30/Nov/2026:09:42:31 +0000: Admin server listening on port 1",
    ]
    assert postgrest_messages("\n") == []
    assert postgrest_messages(
        '127.0.0.1 - anon [30/Nov/2026:03:45:42 +0000] "GET /x HTTP/1.1" 200 - "" ""\n'
    ) == ['127.0.0.1 - anon [30/Nov/2026:03:45:42 +0000] "GET /x HTTP/1.1" 200 - "" ""']
