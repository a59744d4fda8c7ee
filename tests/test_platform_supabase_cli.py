"""The real supabase CLI (npm `@supabase/cli-linux-x64`, no Docker) agrees with our runner and our SQL.

It reads this repository's `supabase/` folder (config.toml, migrations) and talks to the test cluster
over TCP with `--remote=<url>`, as it would to a hosted project.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from rpc.local.embedded import bootstrap, recreate_database
from rpc.platform.migrations import Runner, local_migrations
from rpc.platform.settings import with_database
from tests.conftest import Database, cluster_dsn, drop_database

ROOT = Path(__file__).resolve().parent.parent
CLI = ROOT / "tools" / "node_modules" / "@supabase" / "cli-linux-x64" / "bin" / "supabase"

pytestmark = pytest.mark.skipif(
    not CLI.exists(), reason="the supabase CLI is installed by `make install` when npm is present"
)


def supabase(*args: str, workdir: Path = ROOT) -> tuple[Any, str]:
    """Run the CLI on this repository (or a copy); its JSON answer and what it printed on stderr."""
    result = subprocess.run(
        [str(CLI), *args, "--workdir", str(workdir), "--output-format", "json", "--agent", "no"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "DO_NOT_TRACK": "1", "SUPABASE_YES": "1"},
        check=False,
    )
    assert result.returncode == 0, f"supabase {' '.join(args)}:\n{result.stdout}\n{result.stderr}"
    return json.loads(result.stdout), result.stderr


@pytest.fixture
def fresh_database() -> Iterator[Database]:
    """A database of Supabase's shape with none of our migrations (a new hosted project)."""
    name = f"tb_fresh_{uuid.uuid4().hex[:10]}"
    recreate_database(cluster_dsn(), name)
    bootstrap(with_database(cluster_dsn(), name))
    yield Database(
        name, cluster_dsn(name), cluster_dsn(name, "postgres", "postgres"), cluster_dsn(name, "authenticator")
    )
    drop_database(name)


def policies(dsn: str) -> set[tuple[str, str, str]]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute("select schemaname, tablename, policyname from pg_policies").fetchall()
    return {tuple(row) for row in rows}  # type: ignore[misc]


def test_migration_list_shows_our_push_as_applied(database: Database) -> None:
    listed, stderr = supabase("migration", "list", f"--remote={database.admin}")
    local = [m.version for m in local_migrations()]
    assert [(m["local"], m["remote"]) for m in listed["migrations"]] == [(v, v) for v in local]
    # config.toml is the CLI's own: it loads without a warning about unknown or invalid keys.
    assert "config.toml" not in stderr


def extensions(dsn: str) -> set[str]:
    with psycopg.connect(dsn) as conn:
        return {row[0] for row in conn.execute("select extname from pg_extension").fetchall()}


def test_cli_db_push_leaves_nothing_pending_for_us(fresh_database: Database, database: Database) -> None:
    # As on a new hosted project, nothing is pre-installed: the migrations create the extensions they use.
    assert "vector" not in extensions(fresh_database.superuser)
    supabase("db", "push", f"--remote={fresh_database.admin}", "--yes")
    assert "vector" in extensions(fresh_database.superuser)

    status = Runner(fresh_database.admin).status()
    assert status.pending == []
    assert status.applied == [m.version for m in local_migrations()]
    # The policies reached the database through the latest snapshot migration, without our runner.
    assert policies(fresh_database.admin) == policies(database.admin)
    # And our runner then finds nothing to apply.
    assert Runner(fresh_database.admin).push() == []


def test_migration_list_reports_a_pending_file(database: Database, tmp_path: Path) -> None:
    # A control for the agreement test: on a copy with one more file, the CLI lists it as not applied.
    shutil.copytree(ROOT / "supabase", tmp_path / "supabase", ignore=shutil.ignore_patterns(".temp"))
    (tmp_path / "supabase" / "migrations" / "29991231000000_probe.sql").write_text("select 1;\n")
    listed, _ = supabase("migration", "list", f"--remote={database.admin}", workdir=tmp_path)
    assert listed["migrations"][-1] == {
        "local": "29991231000000",
        "remote": "",
        "time": "2999-12-31 00:00:00",
    }
    assert (
        Runner(database.admin, migrations_dir=tmp_path / "supabase" / "migrations").status().pending[0].name
        == "probe"
    )


@pytest.mark.parametrize("kind", ["security", "performance"])
def test_advisors_report_nothing_at_warn_or_above(database: Database, kind: str) -> None:
    report, _ = supabase("db", "advisors", f"--remote={database.admin}", "--type", kind, "--level", "warn")
    assert report["results"] == [], json.dumps(report["results"], indent=2)


def test_advisors_would_catch_a_table_without_rls(database: Database) -> None:
    # A control for the test above: the same command does report a real finding.
    with psycopg.connect(database.admin, autocommit=True) as conn:
        conn.execute("create table public.advisor_probe (id int primary key)")
        conn.execute("grant select on public.advisor_probe to anon")
        try:
            report, _ = supabase(
                "db", "advisors", f"--remote={database.admin}", "--type", "security", "--level", "warn"
            )
        finally:
            conn.execute("drop table public.advisor_probe")
    assert {r["name"] for r in report["results"]} >= {"rls_disabled_in_public"}
