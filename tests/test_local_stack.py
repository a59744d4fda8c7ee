"""The local stack with real processes: the embedded cluster, `python app.py` and the CLI.

Every test has its own data directory and free ports, and stops whatever it started, also when it fails.
Subprocesses run outside the project directory (with it on PYTHONPATH) so that a developer's `.env`, which
may point DATABASE_URL at a real project, never reaches them.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import jwt
import psutil
import psycopg
import pytest

from rpc.local.embedded import RELOCATED_ROOT, EmbeddedPostgres, EmbeddedPostgresError
from rpc.local.rest import HOW_TO_GET_IT, find_postgrest
from rpc.local.stack import database
from rpc.platform.cli import CommandError
from rpc.platform.migrations import local_migrations, push
from rpc.platform.settings import SUPABASE_CLI_JWT_SECRET, Settings
from tests.support import free_port

ROOT = Path(__file__).resolve().parent.parent
PYTHON = ROOT / ".venv" / "bin" / "python"
LITESTAR = ROOT / ".venv" / "bin" / "litestar"
# What `supabase start` prints with its default JWT secret.
ANON_KEY = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"
    ".eyJpc3MiOiJzdXBhYmFzZS1kZW1vIiwicm9sZSI6ImFub24iLCJleHAiOjE5ODM4MTI5OTZ9"
    ".CRXP1A7WOeoJeXxjNni43kdQwgnWNReilDMblYTn_I0"
)
SERVICE_ROLE_KEY = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"
    ".eyJpc3MiOiJzdXBhYmFzZS1kZW1vIiwicm9sZSI6InNlcnZpY2Vfcm9sZSIsImV4cCI6MTk4MzgxMjk5Nn0"
    ".EGIM96RAZx35lJzdJsyH-qQwv8Hdp7fsn3W0YpN81IU"
)
ALICE = "00000000-0000-4000-8000-000000000002"  # supabase/seed.sql
BOB = "00000000-0000-4000-8000-000000000004"
ELI = "00000000-0000-4000-8000-00000000000b"
HOSTED = "postgresql://postgres:postgres@db.example.com:5432/postgres"


@dataclass(frozen=True)
class Stack:
    root: Path  # the subprocesses' working directory
    data_dir: Path
    db_port: int
    api_port: int

    @property
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "API_DATABASE_URL"}}
        env.update(
            PYTHONPATH=str(ROOT),
            DATA_DIR=str(self.data_dir),
            DB_PORT=str(self.db_port),
            API_PORT=str(self.api_port),
            LITESTAR_APP="app:create_app",
            LOG_JSON="false",
        )
        return env

    def settings(self, **overrides: object) -> Settings:
        values: dict[str, object] = {"data_dir": self.data_dir, "db_port": self.db_port, "database_url": None}
        values.update(overrides)
        return Settings(**values)  # type: ignore[arg-type]

    @property
    def admin_dsn(self) -> str:
        return f"postgresql://postgres:postgres@127.0.0.1:{self.db_port}/postgres"

    def cluster(self) -> EmbeddedPostgres:
        return EmbeddedPostgres(self.data_dir, port=self.db_port)

    def postgres(self) -> list[psutil.Process]:
        """The postgres processes running on this data directory's cluster (which, run as root, lives in
        /var/lib/talentbase: pytest's tmp_path is in a folder only root can enter)."""
        pgdata = str(self.cluster().pgdata)
        found = []
        for proc in psutil.process_iter(["name", "cmdline"]):
            cmdline = " ".join(proc.info["cmdline"] or [])
            if proc.info["name"] == "postgres" and pgdata in cmdline:
                found.append(proc)
        return found

    def litestar(self, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(LITESTAR), *args],
            cwd=self.root,
            env=env or self.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )


def kill_tree(proc: psutil.Process) -> None:
    try:
        children = proc.children(recursive=True)
        proc.kill()
    except psutil.NoSuchProcess:
        return
    for child in children:
        with contextlib.suppress(psutil.NoSuchProcess):
            child.kill()
    psutil.wait_procs([proc, *children], timeout=10)


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    ports = {free_port(), free_port()}
    while len(ports) < 2:
        ports.add(free_port())
    db_port, api_port = sorted(ports)
    work = tmp_path / "work"
    work.mkdir()
    result = Stack(work, tmp_path / "data", db_port, api_port)
    yield result
    # Whatever a failed test left running: stopped properly if possible (which frees its shared memory).
    if result.postgres():
        leftover = result.cluster()
        leftover.started_here = True
        with contextlib.suppress(EmbeddedPostgresError):
            leftover.stop()
        for proc in result.postgres():
            kill_tree(proc)
    if result.cluster().root.is_relative_to(RELOCATED_ROOT):
        shutil.rmtree(result.cluster().root, ignore_errors=True)


def listening_socket(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", port))
    sock.listen()
    return sock


# The embedded cluster -------------------------------------------------------------------------------------


def test_database_creates_reuses_and_stops_its_cluster(stack: Stack) -> None:
    with database(stack.settings()) as local:
        assert local.seed is True  # a new cluster
        push(local)
        assert len(stack.postgres()) > 0
        with psycopg.connect(local.admin_dsn, autocommit=True) as conn:
            conn.execute("create table public.kept (note text)")
            conn.execute("insert into public.kept values ('still here')")
    assert stack.postgres() == []

    with database(stack.settings()) as local:
        assert local.seed is False
        with psycopg.connect(local.admin_dsn) as conn:
            assert conn.execute("select note from public.kept").fetchall() == [("still here",)]
    assert stack.postgres() == []


def test_database_leaves_a_cluster_it_did_not_start(stack: Stack) -> None:
    cluster = stack.cluster()
    assert cluster.start() is True
    try:
        with database(stack.settings()) as local:
            assert local.seed is True  # created by start() above, never migrated
        assert stack.postgres() != []
        with psycopg.connect(stack.admin_dsn) as conn:  # bootstrapped by database()
            assert conn.execute("select current_user").fetchone() == ("postgres",)
    finally:
        cluster.stop()
    assert stack.postgres() == []


def test_a_stale_postmaster_pid_is_recovered(stack: Stack) -> None:
    cluster = stack.cluster()
    cluster.start()
    pidfile = cluster.pgdata / "postmaster.pid"
    kill_tree(psutil.Process(int(pidfile.read_text().split("\n", 1)[0])))  # kill -9, children too
    assert pidfile.exists()
    assert stack.postgres() == []

    again = stack.cluster()
    try:
        assert again.start() is False
        assert again.started_here
        with psycopg.connect(again.dsn()) as conn:
            assert conn.execute("select 1").fetchone() == (1,)
    finally:
        again.stop()
    assert stack.postgres() == []


def test_a_db_port_in_use_is_named(stack: Stack) -> None:
    with (
        listening_socket(stack.db_port),
        pytest.raises(CommandError, match=rf"127\.0\.0\.1:{stack.db_port} is in use.*set DB_PORT"),
        database(stack.settings()),
    ):
        pytest.fail("the database should not start")
    assert stack.postgres() == []


def test_a_cluster_running_on_another_port_is_named(stack: Stack) -> None:
    cluster = stack.cluster()
    cluster.start()
    try:
        with (
            pytest.raises(
                CommandError, match=rf"already runs on port {stack.db_port}.*DB_PORT={stack.db_port}"
            ),
            database(stack.settings(db_port=free_port())),
        ):
            pytest.fail("the database should not be used")
    finally:
        cluster.stop()


@pytest.mark.parametrize("setting", ["API_PORT", "DB_PORT"])
def test_app_with_a_port_in_use_exits_naming_it(stack: Stack, setting: str) -> None:
    port = stack.api_port if setting == "API_PORT" else stack.db_port
    with listening_socket(port):
        result = subprocess.run(
            [str(PYTHON), str(ROOT / "app.py")],
            cwd=stack.root,
            env=stack.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert result.returncode == 1, result.stderr
    assert f"error: 127.0.0.1:{port} is in use by another program; set {setting}" in result.stderr
    assert "Traceback" not in result.stderr
    assert stack.postgres() == []


# `python app.py` ------------------------------------------------------------------------------------------


class App:
    """`python app.py` with its output in files (a pipe nobody reads could block it)."""

    def __init__(self, stack: Stack, logs: Path) -> None:
        self.stack, self.stdout_path, self.stderr_path = stack, logs / "stdout.txt", logs / "stderr.txt"
        with self.stdout_path.open("w") as stdout, self.stderr_path.open("w") as stderr:
            self.proc = subprocess.Popen(
                [str(PYTHON), str(ROOT / "app.py")],
                cwd=stack.root,
                env=stack.env,
                stdout=stdout,
                stderr=stderr,
                start_new_session=True,  # a group of its own, as a terminal gives it (see interrupt_group)
            )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.stack.api_port}"

    def output(self) -> tuple[str, str]:
        return self.stdout_path.read_text(), self.stderr_path.read_text()

    def wait_healthy(self, timeout: float = 60) -> httpx.Response:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"app.py exited with {self.proc.returncode}: {self.output()}")
            try:
                return httpx.get(f"{self.url}/health", timeout=5)
            except httpx.TransportError:
                time.sleep(0.1)
        pytest.fail(f"app.py did not serve /health within {timeout}s: {self.output()}")

    def interrupt(self, signum: int = signal.SIGINT) -> int:
        """Stop it as Ctrl-C (or a process manager) would; killed, with its children, if it hangs."""
        if self.proc.poll() is None:
            self.proc.send_signal(signum)
        return self.wait_exit()

    def interrupt_group(self) -> int:
        """Ctrl-C in a terminal: SIGINT to the whole foreground process group, once (a second is a force quit)."""
        os.killpg(self.proc.pid, signal.SIGINT)
        return self.wait_exit()

    def wait_exit(self) -> int:
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            kill_tree(psutil.Process(self.proc.pid))
            self.proc.wait(10)
        return self.proc.returncode


@pytest.fixture
def start_app(stack: Stack, tmp_path: Path) -> Iterator[Callable[[str], App]]:
    started: list[App] = []

    def start(name: str) -> App:
        logs = tmp_path / name
        logs.mkdir()
        app = App(stack, logs)
        started.append(app)
        return app

    yield start
    for app in started:
        app.interrupt()


def test_app_end_to_end(stack: Stack, start_app: Callable[[str], App]) -> None:
    latest = local_migrations()[-1].version
    first = start_app("first")
    response = first.wait_healthy()
    assert response.status_code == 200, response.text
    assert response.json()["database"] is True
    assert response.json()["latest_migration"] == latest

    banner, _ = first.output()
    shown = dict(line.strip().split(": ", 1) for line in banner.splitlines() if ": " in line)
    assert shown["API URL"] == f"http://127.0.0.1:{stack.api_port}"
    assert shown["DB URL"] == stack.admin_dsn
    assert shown["JWT secret"] == SUPABASE_CLI_JWT_SECRET
    assert shown["anon key"] == ANON_KEY
    assert shown["service_role key"] == SERVICE_ROLE_KEY

    postgrest = [child for child in psutil.Process(first.proc.pid).children() if child.name() == "postgrest"]
    if find_postgrest(Settings()) is None:  # no npm here: the one line that says how to get /rest/v1
        assert shown["REST URL"] == f"off: {HOW_TO_GET_IT}"
        assert postgrest == []
    else:
        assert shown["REST URL"] == f"{first.url}/rest/v1"
        assert response.json()["rest"] is True
        rows = httpx.get(
            f"{first.url}/rest/v1/profiles?select=id&limit=2", headers={"apikey": SERVICE_ROLE_KEY}
        )
        assert rows.status_code == 200, rows.text
        assert len(rows.json()) == 2
        assert len(postgrest) == 1

    # The demo data is ready to match: Bob (Acme's owner) matches Acme's open Interim CFO role; Alice, the
    # fractional CFO, comes first.
    # A fresh stack signs its demo users in as supabase-js does, with the seed's documented password.
    signed_in = httpx.post(
        f"{first.url}/auth/v1/token?grant_type=password",
        json={"email": "bob@example.com", "password": "talentbase-demo"},
        headers={"apikey": ANON_KEY, "X-Supabase-Api-Version": "2024-01-01"},
    )
    assert signed_in.status_code == 200, signed_in.text
    assert shown["Auth URL"] == f"{first.url}/auth/v1"
    bob = signed_in.json()["access_token"]
    matched = httpx.post(
        f"{first.url}/functions/v1/matching",
        headers={"Authorization": f"Bearer {bob}"},
        json={"role_id": "00000000-0000-4000-a000-000000000001"},
    )
    assert matched.status_code == 200, matched.text
    assert matched.json()["matches"][0]["executive_id"] == "00000000-0000-4000-8000-000000000002"
    assert matched.json()["matches"][0]["breakdown"]["skills"]["matched_required"] == [
        "fp-and-a",
        "fundraising",
    ]

    # Files: Bob's avatar goes up through /storage/v1 and anyone reads it at its public URL; the bytes live
    # under DATA_DIR/storage, one file per version.
    assert shown["Storage URL"] == f"{first.url}/storage/v1"
    avatar = f"avatars/{BOB}/me.png"
    uploaded = httpx.post(
        f"{first.url}/storage/v1/object/{avatar}",
        content=b"\x89PNG avatar",
        headers={"Authorization": f"Bearer {bob}", "content-type": "image/png"},
    )
    assert uploaded.status_code == 200, uploaded.text
    assert httpx.get(f"{first.url}/storage/v1/object/public/{avatar}").content == b"\x89PNG avatar"
    assert len(list((stack.data_dir / "storage" / "objects").glob("*/*"))) == 1

    with psycopg.connect(stack.admin_dsn, autocommit=True) as conn:
        users = conn.execute("select count(*) from auth.users").fetchone()
        # A trace the seed would undo if it ran again.
        conn.execute("delete from public.user_roles where user_id = %s", (ELI,))

    assert first.interrupt(signal.SIGINT) == 0
    assert stack.postgres() == []
    assert not any(process.is_running() for process in postgrest)

    second = start_app("second")
    response = second.wait_healthy()
    assert response.status_code == 200, response.text
    assert response.json()["latest_migration"] == latest
    with psycopg.connect(stack.admin_dsn) as conn:
        assert conn.execute("select count(*) from auth.users").fetchone() == users
        assert conn.execute(
            "select count(*) from public.user_roles where user_id = %s", (ELI,)
        ).fetchone() == (0,)
        history = conn.execute("select count(*) from supabase_migrations.schema_migrations").fetchone()
    assert history == (len(local_migrations()),)
    assert second.interrupt() == 0
    assert stack.postgres() == []
    assert "applied migrations" in first.output()[1]
    assert "applied migrations" not in second.output()[1]


def test_app_adopts_a_cluster_left_running_and_stops_it(
    stack: Stack, start_app: Callable[[str], App]
) -> None:
    stack.cluster().start()  # as a killed run leaves it
    app = start_app("adopting")
    assert app.wait_healthy().status_code == 200
    assert app.interrupt(signal.SIGTERM) == 128 + signal.SIGTERM
    assert stack.postgres() == []
    assert "applied migrations" in app.output()[1]


def serving_with_postgrest(start_app: Callable[[str], App], name: str) -> tuple[App, psutil.Process]:
    """An app serving, and the PostgREST it started."""
    if find_postgrest(Settings()) is None:
        pytest.skip(HOW_TO_GET_IT)
    app = start_app(name)
    assert app.wait_healthy().status_code == 200
    [postgrest] = [child for child in psutil.Process(app.proc.pid).children() if child.name() == "postgrest"]
    return app, postgrest


def test_ctrl_c_in_a_terminal_stops_the_stack_without_restarting_postgrest(
    stack: Stack, start_app: Callable[[str], App]
) -> None:
    app, postgrest = serving_with_postgrest(start_app, "terminal")
    assert app.interrupt_group() == 0

    assert stack.postgres() == []
    # Stopped and reaped by the app: a zombie would mean the app exited without waiting for it.
    assert not postgrest.is_running()
    assert "PostgREST exited" not in app.output()[1]


def gone(proc: psutil.Process) -> bool:
    """Exited: a zombie too (its parent died first, and PID 1 of a container may never reap it)."""
    try:
        return not proc.is_running() or proc.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_postgrest_does_not_outlive_a_killed_app(stack: Stack, start_app: Callable[[str], App]) -> None:
    app, postgrest = serving_with_postgrest(start_app, "killed")
    app.proc.kill()  # no shutdown at all (as uvicorn's force quit, a second Ctrl-C, skips the lifespan's)
    app.wait_exit()
    psutil.wait_procs([postgrest], timeout=10)
    assert gone(postgrest)


# The CLI --------------------------------------------------------------------------------------------------


def test_cli_db_commands_and_token(stack: Stack) -> None:
    names = [f"{m.version}_{m.name}" for m in local_migrations()]
    status = stack.litestar("db", "status")
    assert status.returncode == 0, status.stderr
    assert status.stdout.splitlines() == [f"pending  {name}" for name in names]

    # `db status` created the cluster, so this push must still seed it (alice's token below needs the seed).
    push = stack.litestar("db", "push")
    assert push.returncode == 0, push.stderr
    assert push.stdout.splitlines() == [*(f"applied {name}" for name in names), "policies re-applied"]

    status = stack.litestar("db", "status")
    assert status.returncode == 0, status.stderr
    assert status.stdout.splitlines() == [*(f"applied  {name[:14]}" for name in names), "up to date"]

    minted = stack.litestar("token", "--email", "alice@example.com")
    assert minted.returncode == 0, minted.stderr
    claims = jwt.decode(
        minted.stdout.strip(), SUPABASE_CLI_JWT_SECRET, algorithms=["HS256"], audience="authenticated"
    )
    assert claims["sub"] == ALICE
    assert claims["role"] == "authenticated"
    assert claims["aud"] == "authenticated"
    assert claims["email"] == "alice@example.com"
    assert claims["user_roles"] == ["executive"]

    unknown = stack.litestar("token", "--email", "nobody@example.com")
    assert unknown.returncode == 1
    assert "error: no auth user has the email 'nobody@example.com'" in unknown.stderr
    assert unknown.stdout == ""
    assert stack.postgres() == []  # each command stopped the cluster it started

    # `db reset` rebuilds from nothing: a stray table goes, the seed comes back.
    with database(stack.settings()) as local, psycopg.connect(local.admin_dsn, autocommit=True) as conn:
        conn.execute("create table public.scratch (id int)")
        conn.execute("delete from public.user_roles where user_id = %s", (ALICE,))
    reset = stack.litestar("db", "reset")
    assert reset.returncode == 0, reset.stderr
    assert reset.stdout.splitlines() == ["database rebuilt and seeded"]
    with database(stack.settings()) as local, psycopg.connect(local.admin_dsn) as conn:
        assert conn.execute("select to_regclass('public.scratch')").fetchone() == (None,)
        roles = conn.execute("select count(*) from public.user_roles where user_id = %s", (ALICE,)).fetchone()
        history = conn.execute("select count(*) from supabase_migrations.schema_migrations").fetchone()
    assert roles == (1,)
    assert history == (len(names),)
    assert stack.postgres() == []


@pytest.mark.parametrize(
    "command",
    [("db", "reset"), ("token", "--email", "alice@example.com"), ("token", "--role", "service_role")],
)
def test_the_local_commands_do_not_exist_for_a_hosted_database(
    stack: Stack, command: tuple[str, ...]
) -> None:
    # Not even offered: nothing connects (db.example.com does not resolve to a database), no local cluster
    # is created, and the production CLI never loads the local stack.
    result = stack.litestar(*command, env={**stack.env, "DATABASE_URL": HOSTED})
    assert result.returncode == 2
    assert "No such command" in result.stderr
    assert result.stdout == ""
    assert not stack.data_dir.exists()


def test_cli_names_a_database_it_cannot_reach(stack: Stack) -> None:
    unreachable = f"postgresql://postgres:postgres@127.0.0.1:{free_port()}/postgres"
    result = stack.litestar("db", "status", env={**stack.env, "DATABASE_URL": unreachable})
    assert result.returncode == 1
    assert result.stderr.startswith("error: cannot connect to the database:")
    assert "Traceback" not in result.stderr
