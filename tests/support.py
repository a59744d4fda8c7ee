"""Test helpers that later capabilities reuse: factories, actors that follow the PostgREST contract, tokens.

An `Actor` runs statements the way PostgREST would for a caller: `role` and `request.jwt.claims` set
locally, inside a savepoint of the test's one transaction (rolled back at the end), so a refused
statement leaves the test's data intact and the next actor starts clean.
"""

from __future__ import annotations

import json
import os
import queue
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, LiteralString

import procrastinate
import psycopg
import pytest
import uvicorn
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from rpc.local.rest import free_port
from rpc.local.tokens import api_key, sign, user_claims
from rpc.platform.jobs import Queue
from rpc.platform.settings import SUPABASE_CLI_JWT_SECRET, Settings

SECRET = SUPABASE_CLI_JWT_SECRET
# The keys `supabase start` prints, which a frontend's .env.local holds.
ANON_KEY = api_key(SECRET, "anon")
SERVICE_KEY = api_key(SECRET, "service_role")


@dataclass(frozen=True)
class User:
    id: str
    email: str
    claims: dict[str, Any] = field(default_factory=dict, repr=False)


@dataclass(frozen=True)
class Company:
    id: str
    name: str


# Factories: what Supabase Auth and an admin would create, written as the superuser -------------------


def make_user(
    conn: psycopg.Connection,
    *,
    email: str | None = None,
    full_name: str | None = "Test User",
    roles: tuple[str, ...] = (),
    meta: dict[str, Any] | None = None,
) -> User:
    """A row in auth.users (as GoTrue writes it), its profile by trigger, and platform roles."""
    user_id = str(uuid.uuid4())
    email = email or f"user-{user_id[:8]}@example.com"
    metadata = {"full_name": full_name} if full_name is not None else {}
    metadata.update(meta or {})
    conn.execute(
        "insert into auth.users (instance_id, id, aud, role, email, email_confirmed_at,"
        " raw_app_meta_data, raw_user_meta_data, created_at, updated_at)"
        " values ('00000000-0000-0000-0000-000000000000', %s, 'authenticated', 'authenticated', %s, now(),"
        " %s, %s, now(), now())",
        (user_id, email, Jsonb({"provider": "email", "providers": ["email"]}), Jsonb(metadata)),
    )
    for role in roles:
        conn.execute("insert into public.user_roles (user_id, role) values (%s, %s)", (user_id, role))
    row = {
        "id": user_id,
        "email": email,
        "phone": None,
        "raw_app_meta_data": {"provider": "email"},
        "raw_user_meta_data": metadata,
        "is_anonymous": False,
    }
    return User(user_id, email, user_claims(row, issuer="http://127.0.0.1:54321/auth/v1", expires_in=3600))


def make_company(
    conn: psycopg.Connection, owner: User | None, *, name: str | None = None, verified: bool = False
) -> Company:
    """A company created by `owner` (who becomes its owner member through the trigger), verified by a
    platform admin if asked (only verified companies match and see executives)."""
    name = name or f"Company {uuid.uuid4().hex[:6]}"
    row = conn.execute(
        "insert into public.companies (name, created_by, verified_at) values (%s, %s, %s) returning id",
        (name, owner.id if owner else None, "now" if verified else None),
    ).fetchone()
    assert row is not None
    return Company(str(row[0]), name)


def add_member(conn: psycopg.Connection, company: Company, user: User, role: str) -> None:
    conn.execute(
        "insert into public.company_members (company_id, user_id, role) values (%s, %s, %s)",
        (company.id, user.id, role),
    )


# Acting as a caller ---------------------------------------------------------------------------------


class Refused(AssertionError):
    pass


class Actor:
    """One caller on the test's connection: every call runs in its own savepoint, as that caller."""

    def __init__(self, conn: psycopg.Connection, role: str, claims: dict[str, Any]) -> None:
        self.conn, self.role, self.claims_json = conn, role, json.dumps(claims)

    def rows(self, query: LiteralString, params: Any = None) -> list[dict[str, Any]]:
        with self.conn.transaction():
            self.conn.execute(
                "select set_config('role', %s, true), set_config('request.jwt.claims', %s, true)",
                (self.role, self.claims_json),
            )
            with self.conn.cursor(row_factory=dict_row) as cur:
                cur.execute(query, params)
                result = cur.fetchall() if cur.description else []
                count = cur.rowcount
            self.conn.execute("reset role; select set_config('request.jwt.claims', '', true)")
        self.last_rowcount = count
        return result

    def one(self, query: LiteralString, params: Any = None) -> dict[str, Any]:
        result = self.rows(query, params)
        assert len(result) == 1, f"expected one row, got {result}"
        return result[0]

    def count(self, query: LiteralString, params: Any = None) -> int:
        """Rows affected (update/delete) or returned (select)."""
        self.rows(query, params)
        return self.last_rowcount

    def refused(
        self, query: LiteralString, params: Any = None, *, sqlstate: str | None = None
    ) -> psycopg.Error:
        """Assert that the statement fails (RLS, grants, constraints); returns the error."""
        try:
            self.rows(query, params)
        except psycopg.Error as exc:
            if sqlstate is not None and exc.sqlstate != sqlstate:
                raise AssertionError(f"expected SQLSTATE {sqlstate}, got {exc.sqlstate}: {exc}") from exc
            return exc
        raise Refused(f"expected {query!r} to be refused for {self.role}")


def as_user(conn: psycopg.Connection, user: User) -> Actor:
    return Actor(conn, "authenticated", user.claims)


def as_anon(conn: psycopg.Connection) -> Actor:
    return Actor(conn, "anon", {"role": "anon", "iss": "supabase-demo"})


def as_service(conn: psycopg.Connection) -> Actor:
    return Actor(conn, "service_role", {"role": "service_role", "iss": "supabase-demo"})


def actor(conn: psycopg.Connection, world: Any, who: str) -> Actor:
    """`anon`, `service` or one of a test world's users by name: a key of its `users`, if it has them, else
    an attribute of its own."""
    if who == "anon":
        return as_anon(conn)
    if who == "service":
        return as_service(conn)
    users = getattr(world, "users", None)
    return as_user(conn, users[who] if isinstance(users, Mapping) else getattr(world, who))


# The SQL way and PostgREST, compared ------------------------------------------------------------------


Outcome = tuple[str, Any]  # ("rows", sorted tuples) or ("refused", SQLSTATE)


def sorted_rows(data: Any) -> list[tuple[Any, ...]]:
    """Rows as sorted tuples (a PostgREST function returning one row answers an object)."""
    rows = [data] if isinstance(data, dict) else data
    return sorted(tuple(row.values()) for row in rows)


def sql_outcome(conn: psycopg.Connection, actor: Actor, query: LiteralString, params: Any) -> Outcome:
    """What `query` gives `actor`, then rolled back, so that the REST call starts from the same data (and
    meets no row lock)."""
    conn.execute("select 1")  # open the test's transaction, so the actor's is a savepoint, never committed
    try:
        rows = actor.rows(query, params)
    except psycopg.Error as exc:
        return ("refused", exc.sqlstate)
    finally:
        conn.rollback()
    return ("rows", sorted_rows(rows))


def rest_outcome(request: Any) -> Outcome:
    """What a supabase-py request builder gives when executed."""
    from postgrest.exceptions import APIError

    try:
        result = request.execute()
    except APIError as exc:
        return ("refused", exc.code)
    return ("rows", sorted_rows(result.data))


# Tokens ---------------------------------------------------------------------------------------------


def token_for(user: User, secret: str = SECRET, **overrides: Any) -> str:
    claims = {**user.claims, **overrides}
    return sign({k: v for k, v in claims.items() if v is not None}, secret)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# A live server ---------------------------------------------------------------------------------------


@contextmanager
def live_server(app: Any, port: int | None = None, host: str = "127.0.0.1") -> Iterator[str]:
    """The app under uvicorn (on 127.0.0.1 unless told) in a thread; yields its base URL on loopback."""
    port = port or free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host=host,
            port=port,
            log_config=None,
            proxy_headers=False,  # as the local stack runs it: the edge, trusting no client's X-Forwarded-For
            h11_max_incomplete_event_size=256 * 1024,
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


@contextmanager
def http_server(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """A small HTTP server of the test's own (a JWKS, a page on another origin) on 127.0.0.1 in a thread;
    yields its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


# A config.toml of a test's own ------------------------------------------------------------------------

SUPABASE_CONFIG = Path(__file__).resolve().parents[1] / "supabase/config.toml"


def write_supabase_config(directory: Path, changes: dict[str, dict[str, str]]) -> Path:
    """supabase/config.toml with `changes` ({section: {key: toml value}}) applied to keys it already has,
    written to `directory` (for Settings(supabase_config=...)); each change must find its key, so a renamed
    setting fails here, not silently."""
    lines = SUPABASE_CONFIG.read_text().splitlines()
    pending = {(section, key) for section, keys in changes.items() for key in keys}
    section = ""
    for index, line in enumerate(lines):
        header = re.fullmatch(r"\[([^\]]+)\]\s*", line)
        if header:
            section = header.group(1)
            continue
        key = line.split("=", 1)[0].strip()
        if (section, key) in pending:
            lines[index] = f"{key} = {changes[section][key]}"
            pending.discard((section, key))
    assert not pending, f"config.toml has no {sorted(pending)}"
    path = directory / "config.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


# A page on another origin in headless Chromium, with supabase-js's browser bundle ----------------------

SUPABASE_JS_BUNDLE = (
    Path(__file__).resolve().parents[1] / "tools/node_modules/@supabase/supabase-js/dist/umd/supabase.js"
)


@contextmanager
def page_server(page: str) -> Iterator[tuple[str, queue.Queue[dict[str, Any]]]]:
    """The frontend: `page` and supabase-js's bundle (`/supabase.js`) on 127.0.0.1 at a port of its own
    (another origin); the page POSTs its results back to `/results`."""
    results: queue.Queue[dict[str, Any]] = queue.Queue()
    files = {
        "/": (page.encode(), "text/html; charset=utf-8"),
        "/supabase.js": (SUPABASE_JS_BUNDLE.read_bytes(), "text/javascript"),
    }

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path not in files:
                self.send_error(404)
                return
            body, content_type = files[self.path]
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:
            results.put(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *_: Any) -> None:
            pass

    with http_server(Handler) as url:
        yield url, results


def run_page(page: str) -> dict[str, Any]:
    """What `page` (served by `page_server`) POSTed to `/results`, run by headless Chromium; skips when
    Chromium or supabase-js's bundle is missing."""
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("chromium is not installed (Debian: apt-get install chromium; .ci/run installs it)")
    if not SUPABASE_JS_BUNDLE.exists():
        pytest.skip("supabase-js's browser bundle is missing: run `make install` (npm ci --prefix tools)")
    with (
        page_server(page) as (url, results),
        tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as profile,
        tempfile.TemporaryFile() as log,
    ):
        browser = subprocess.Popen(
            [
                chromium,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                f"--user-data-dir={profile}",
                url,
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its group is its renderers and helpers, ended with it
        )
        try:
            return results.get(timeout=60)
        except queue.Empty:
            log.seek(0)
            pytest.fail(f"the page sent no results in 60 s; chromium said:\n{log.read()[-3000:].decode()}")
        finally:
            os.killpg(browser.pid, signal.SIGKILL)
            browser.wait(10)


# supabase-js in Node: `node --test` files under tests/js/ against a live stack ------------------------

NODE_TESTS = Path(__file__).resolve().parent / "js"
SUPABASE_JS = SUPABASE_JS_BUNDLE.parents[2] / "package.json"


def node_command() -> list[str]:
    """The command that runs node, or a skip saying how to install what is missing."""
    found = shutil.which("node")
    if found is None:
        pytest.skip(
            "node is not installed (Debian: apt-get install npm, which brings it; .ci/run installs it)"
        )
    if not SUPABASE_JS.exists():
        pytest.skip("supabase-js is not installed: run `make install` (npm ci --prefix tools)")
    version = subprocess.run([found, "--version"], capture_output=True, text=True, check=True).stdout
    major = int(version.strip().lstrip("v").split(".")[0])
    if major < 20:
        # Present but too old is a broken setup, not a missing part: fail, so CI cannot pass without these.
        pytest.fail(f"node {version.strip()} is too old for supabase-js 2 (it declares >= 22; 20 works)")
    # createClient makes a realtime client, which needs a WebSocket: built into Node 22, behind a flag in 20.
    return [found, "--experimental-websocket"] if major < 22 else [found]


def run_node_tests(api_url: str, *files: str, timeout: float = 120, **variables: str) -> None:
    """`node --test` on `files` of tests/js/ against the stack at `api_url`: the URL and the keys (see
    tests/js/stack.mjs) and `variables` in their environment. Fails with node's output unless every test
    the files declare ran and passed."""
    paths = [NODE_TESTS / name for name in files]
    env = {
        **os.environ,
        "API_URL": api_url,
        "ANON_KEY": ANON_KEY,
        "SERVICE_KEY": SERVICE_KEY,
        "NO_COLOR": "1",
        **variables,
    }
    result = subprocess.run(
        [*node_command(), "--test", "--test-reporter=spec", *map(str, paths)],
        cwd=NODE_TESTS.parents[1],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    output = result.stdout + result.stderr
    if result.returncode != 0:
        pytest.fail(
            f"node --test {' '.join(files)} failed (exit {result.returncode}):\n{output}", pytrace=False
        )
    # A run that found no test passes too: every test the files declare must have run and passed.
    declared = sum(len(re.findall(r"^test\(", path.read_text(), re.MULTILINE)) for path in paths)
    passed = re.search(r"^\S+ pass (\d+)$", output, re.MULTILINE)  # the spec reporter's summary
    assert passed is not None, output
    assert int(passed.group(1)) == declared > 0, output


# Reading back as the superuser, past every policy ------------------------------------------------------


def value(conn: psycopg.Connection, query: LiteralString, params: Any = None) -> Any:
    """One value read back as the superuser, past every policy."""
    row = conn.execute(query, params).fetchone()
    return None if row is None else row[0]


def profile_name(conn: psycopg.Connection, user: User) -> str | None:
    return value(conn, "select full_name from public.profiles where id = %s", (user.id,))


def platform_roles(conn: psycopg.Connection, user: User) -> list[str]:
    return value(
        conn,
        "select coalesce(array_agg(role::text order by role), '{}') from public.user_roles where user_id = %s",
        (user.id,),
    )


def company_name(conn: psycopg.Connection, company: Company) -> str | None:
    return value(conn, "select name from public.companies where id = %s", (company.id,))


def member_role(conn: psycopg.Connection, company: Company, user: User) -> str | None:
    return value(
        conn,
        "select role::text from public.company_members where company_id = %s and user_id = %s",
        (company.id, user.id),
    )


# Matching factories (as the superuser) ----------------------------------------------------------------------


@dataclass(frozen=True)
class Skill:
    id: int
    slug: str
    name: str
    aliases: tuple[str, ...] = ()


def make_skill(
    conn: psycopg.Connection, name: str, *, parent: Skill | None = None, aliases: tuple[str, ...] = ()
) -> Skill:
    """A skill whose slug, name and aliases end in a random suffix, so a taxonomy never collides with it."""
    suffix = uuid.uuid4().hex[:8]
    slug, title = f"{name}-{suffix}", f"{name.title()} {suffix}"
    skill_id = value(
        conn,
        "insert into public.skills (slug, name, category, parent_id) values (%s, %s, 'finance', %s)"
        " returning id",
        (slug, title, parent.id if parent else None),
    )
    spelled = tuple(f"{alias} {suffix}" for alias in aliases)
    for alias in spelled:
        conn.execute("insert into public.skill_aliases (alias, skill_id) values (%s, %s)", (alias, skill_id))
    return Skill(skill_id, slug, title, spelled)


# Neutral values: a remote fractional role without seniority, budget or dates, and an executive who wants
# fractional work and says nothing else. Each ranking test changes one thing at a time.
EXECUTIVE_DEFAULTS: dict[str, Any] = {
    "is_open": True,
    "seniority": None,
    "industries": [],
    "location": None,
    "remote_preference": None,
    "engagement_types": ["fractional"],
    "compensation_currency": None,
    "compensation_min": None,
    "compensation_max": None,
    "compensation_unit": None,
    "hours_per_week": None,
    "available_from": None,
}
PROFILE: LiteralString = """
insert into public.executive_profiles (
  user_id, is_open, seniority, industries, location, remote_preference, engagement_types,
  compensation_currency, compensation_min, compensation_max, compensation_unit, hours_per_week, available_from
) values (
  %(user_id)s, %(is_open)s, %(seniority)s::public.seniority, %(industries)s::text[], %(location)s,
  %(remote_preference)s::public.work_mode, %(engagement_types)s::public.engagement_type[],
  %(compensation_currency)s, %(compensation_min)s, %(compensation_max)s,
  %(compensation_unit)s::public.rate_unit, %(hours_per_week)s, %(available_from)s::date
)
"""

ROLE_DEFAULTS: dict[str, Any] = {
    "title": "Fractional CFO",
    "description": "",
    "engagement_type": "fractional",
    "seniority": None,
    "industries": [],
    "location": None,
    "remote_policy": "remote",
    "compensation_currency": None,
    "compensation_min": None,
    "compensation_max": None,
    "compensation_unit": None,
    "hours_per_week": None,
    "start_date": None,
    "compensation_published": False,
}
ROLE: LiteralString = """
insert into public.role_postings (
  company_id, title, description, engagement_type, seniority, industries, location, remote_policy,
  compensation_currency, compensation_min, compensation_max, compensation_unit, hours_per_week, start_date,
  compensation_published, status
) values (
  %(company_id)s, %(title)s, %(description)s, %(engagement_type)s::public.engagement_type,
  %(seniority)s::public.seniority, %(industries)s::text[], %(location)s, %(remote_policy)s::public.work_mode,
  %(compensation_currency)s, %(compensation_min)s, %(compensation_max)s, %(compensation_unit)s::public.rate_unit,
  %(hours_per_week)s, %(start_date)s::date, %(compensation_published)s, %(status)s::public.role_status
)
returning id::text
"""


def make_executive(
    conn: psycopg.Connection, *, skills: dict[Skill, int] | None = None, **profile: Any
) -> User:
    """A user with the executive role, their profile (neutral unless told) and skills at the given levels."""
    user = make_user(conn, roles=("executive",))
    conn.execute(PROFILE, {**EXECUTIVE_DEFAULTS, **profile, "user_id": user.id})
    for skill, level in (skills or {}).items():
        conn.execute(
            "insert into public.executive_skills (executive_id, skill_id, level) values (%s, %s, %s)",
            (user.id, skill.id, level),
        )
    return user


def add_contacts(conn: psycopg.Connection, user: User) -> None:
    conn.execute(
        "insert into public.executive_contacts (user_id, email, phone) values (%s, %s, '+44 20 7946 0000')",
        (user.id, f"private-{user.id[:8]}@example.com"),
    )


def make_role(
    conn: psycopg.Connection,
    company: Company,
    *,
    wants: dict[Skill, bool] | None = None,
    status: str = "open",
    **fields: Any,
) -> str:
    """A role posting with its skills (skill -> required). A closed role is opened first, as in life."""
    params = {
        **ROLE_DEFAULTS,
        **fields,
        "company_id": company.id,
        "status": "open" if status == "closed" else status,
    }
    role_id = value(conn, ROLE, params)
    for skill, required in (wants or {}).items():
        conn.execute(
            "insert into public.role_skills (role_id, skill_id, required) values (%s, %s, %s)",
            (role_id, skill.id, required),
        )
    if status == "closed":
        conn.execute("update public.role_postings set status = 'closed' where id = %s", (role_id,))
    return role_id


def add_match(conn: psycopg.Connection, role_id: str, executive: User) -> None:
    """A stored match, as the matching function would leave it."""
    conn.execute(
        "insert into public.matches (role_id, executive_id, score, breakdown) values (%s, %s, 50, '{}')",
        (role_id, executive.id),
    )


def add_introduction(conn: psycopg.Connection, role_id: str, executive: User, requested_by: User) -> str:
    """A request (the trigger fills in company, status and expiry, even for the superuser)."""
    return value(
        conn,
        "insert into public.introductions (role_id, executive_id, requested_by, message)"
        " values (%s, %s, %s, 'We would like to meet you') returning id::text",
        (role_id, executive.id, requested_by.id),
    )


async def work_until_idle(
    app: procrastinate.App, queue: Queue, settings: Settings, queues: list[str], name: str = "test"
) -> None:
    """The real worker on `queues` of an open `app` until nothing is due, its tasks' context made of
    `settings`; that context's AI closed after it, as the worker closes its own."""
    context = queue.context(settings)
    try:
        await app.run_worker_async(
            queues=queues,
            wait=False,
            name=name,
            install_signal_handlers=False,
            listen_notify=False,
            additional_context=context,
        )
    finally:
        await context["ai"].close()
