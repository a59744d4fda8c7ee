"""One migration runner for every database, recording history exactly as the supabase CLI does.

`supabase/migrations/<14-digit version>_<name>.sql` are applied in version order, each in its own
transaction, and recorded in `supabase_migrations.schema_migrations (version, name, statements)`, so
`supabase migration list` and `db status` agree. `supabase/policies/*.sql` (idempotent) are then
re-applied in one transaction, and PostgREST is told to reload its schema cache.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import psycopg
import sqlparse
from psycopg import sql

PROJECT_ROOT = Path(__file__).resolve().parent.parent
MIGRATIONS_DIR = PROJECT_ROOT / "supabase" / "migrations"
POLICIES_DIR = PROJECT_ROOT / "supabase" / "policies"
SEED_FILE = PROJECT_ROOT / "supabase" / "seed.sql"
BOOTSTRAP_FILE = Path(__file__).resolve().parent / "sql" / "bootstrap.sql"

# Any constant works as long as every runner uses the same one.
ADVISORY_LOCK_KEY = 0x7A1E_47BA5E

HISTORY_DDL = (
    "create schema if not exists supabase_migrations",
    "create table if not exists supabase_migrations.schema_migrations (version text not null primary key)",
    "alter table supabase_migrations.schema_migrations add column if not exists statements text[]",
    "alter table supabase_migrations.schema_migrations add column if not exists name text",
)
FILENAME = re.compile(r"^(?P<version>\d{14})_(?P<name>[A-Za-z0-9_\-]+)\.sql$")


class MigrationError(RuntimeError):
    """A SQL file failed; its message names the file, the line and Postgres's error."""


@dataclass(frozen=True)
class Statement:
    text: str
    line: int  # 1-based line of the statement's first character in its file


@dataclass(frozen=True)
class Migration:
    version: str
    name: str
    path: Path

    def statements(self) -> list[Statement]:
        return split_statements(self.path.read_text())


def split_statements(source: str) -> list[Statement]:
    """Split a SQL file into statements (dollar quotes and comments respected), keeping line numbers."""
    statements, cursor = [], 0
    for text in sqlparse.split(source):
        if not sqlparse.format(text, strip_comments=True).strip().rstrip(";").strip():
            continue
        start = source.index(text, cursor)
        cursor = start + len(text)
        statements.append(Statement(text, source.count("\n", 0, start) + 1))
    return statements


def local_migrations(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    migrations = []
    for path in sorted(directory.glob("*.sql")):
        match = FILENAME.match(path.name)
        if not match:
            raise MigrationError(f"{path.name}: migration files are named <14-digit version>_<name>.sql")
        migrations.append(Migration(match["version"], match["name"], path))
    return migrations


def execute_file(conn: psycopg.Connection, path: Path, statements: list[Statement] | None = None) -> None:
    """Run a file's statements one by one so that an error can name its line."""
    for statement in statements if statements is not None else split_statements(path.read_text()):
        try:
            conn.execute(statement.text.encode(), prepare=False)
        except psycopg.Error as exc:
            position = int(exc.diag.statement_position or 1)
            line = statement.line + statement.text.count("\n", 0, position - 1)
            detail = exc.diag.message_primary or str(exc)
            raise MigrationError(f"{path.name}:{line}: {detail}") from exc


@dataclass(frozen=True)
class Status:
    applied: list[str]
    pending: list[Migration]


class Runner:
    """Applies migrations and policies to the database at `dsn` (logged in as `postgres`)."""

    def __init__(
        self,
        dsn: str,
        migrations_dir: Path = MIGRATIONS_DIR,
        policies_dir: Path = POLICIES_DIR,
    ) -> None:
        self.dsn, self.migrations_dir, self.policies_dir = dsn, migrations_dir, policies_dir

    def connect(self) -> psycopg.Connection:
        return psycopg.connect(
            self.dsn, autocommit=True, prepare_threshold=None, application_name="talentbase-db"
        )

    def status(self) -> Status:
        with self.connect() as conn:
            applied = self._applied(conn)
        pending = [m for m in local_migrations(self.migrations_dir) if m.version not in applied]
        return Status(sorted(applied), pending)

    def push(self) -> list[Migration]:
        """Apply what is pending, then the policies; returns the migrations applied by this call."""
        local = local_migrations(self.migrations_dir)
        with self.connect() as conn:
            # Two processes starting at once queue here; the second then finds nothing pending.
            conn.execute("select pg_advisory_lock(%s)", (ADVISORY_LOCK_KEY,))
            try:
                with conn.transaction():
                    for ddl in HISTORY_DDL:
                        conn.execute(ddl)
                applied = self._applied(conn)
                done = []
                for migration in local:
                    if migration.version in applied:
                        continue
                    statements = migration.statements()
                    with conn.transaction():
                        execute_file(conn, migration.path, statements)
                        conn.execute(
                            "insert into supabase_migrations.schema_migrations (version, name, statements)"
                            " values (%s, %s, %s)",
                            (migration.version, migration.name, [s.text for s in statements]),
                        )
                    done.append(migration)
                self.apply_policies(conn)
            finally:
                conn.execute("select pg_advisory_unlock(%s)", (ADVISORY_LOCK_KEY,))
        return done

    def apply_policies(self, conn: psycopg.Connection) -> None:
        with conn.transaction():
            for path in sorted(self.policies_dir.glob("*.sql")):
                execute_file(conn, path)
            conn.execute("notify pgrst, 'reload schema'")

    def seed(self, path: Path = SEED_FILE) -> None:
        if path.exists():
            with self.connect() as conn, conn.transaction():
                execute_file(conn, path)

    @staticmethod
    def _applied(conn: psycopg.Connection) -> set[str]:
        exists = conn.execute("select to_regclass('supabase_migrations.schema_migrations')").fetchone()
        if exists is None or exists[0] is None:
            return set()
        return {row[0] for row in conn.execute("select version from supabase_migrations.schema_migrations")}


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
