"""One migration runner for every database, recording history exactly as the supabase CLI does.

`supabase/migrations/<14-digit version>_<name>.sql` are applied in version order, each in its own
transaction, and recorded in `supabase_migrations.schema_migrations (version, name, statements)`, so
`supabase migration list` and `db status` agree. `supabase/policies/*.sql` are then re-applied in one
transaction, and PostgREST is told to reload its schema cache.

The policy files are the whole truth for schema `public` and for Storage's `storage.objects` and
`storage.buckets`: applying them first drops every policy there, so a renamed or deleted policy does not
linger. `supabase db push` applies migrations only, so `snapshot_policies` copies the files into a new
migration whenever they changed since the last copy.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import psycopg

PROJECT_ROOT = Path(__file__).resolve().parents[2]
MIGRATIONS_DIR = PROJECT_ROOT / "supabase" / "migrations"
POLICIES_DIR = PROJECT_ROOT / "supabase" / "policies"
SEED_FILE = PROJECT_ROOT / "supabase" / "seed.sql"

# Any constant works as long as every runner uses the same one.
ADVISORY_LOCK_KEY = 0x7A1E_47BA5E

HISTORY_DDL = (
    "create schema if not exists supabase_migrations",
    "create table if not exists supabase_migrations.schema_migrations (version text not null primary key)",
    "alter table supabase_migrations.schema_migrations add column if not exists statements text[]",
    "alter table supabase_migrations.schema_migrations add column if not exists name text",
)
SNAPSHOT_NAME = "policies_snapshot"
# Run before the policy files, and first in every snapshot: the files then define every policy in public
# and on Storage's two tables (whose policies are the Storage API's only access rule). Only those two in
# `storage`: its other tables are Storage's own. A hosted project lets `postgres` drop and create policies
# there (supautils' policy grants) though it does not own them.
DROP_OUR_POLICIES = """\
do $$
declare
  policy record;
begin
  for policy in
    select policyname, schemaname, tablename from pg_policies
    where schemaname = 'public' or (schemaname = 'storage' and tablename in ('objects', 'buckets'))
  loop
    execute format('drop policy %I on %I.%I', policy.policyname, policy.schemaname, policy.tablename);
  end loop;
end;
$$;
"""
FILENAME = re.compile(r"^(?P<version>\d{14})_(?P<name>[A-Za-z0-9_\-]+)\.sql$")


class MigrationError(RuntimeError):
    """A SQL file failed; its message names the file, the line and Postgres's error."""


@dataclass(frozen=True)
class Statement:
    text: str  # as the CLI records it: the file's text with any comments before it, no trailing `;`
    line: int  # 1-based line in its file where the statement itself (after those comments) begins
    start: int = 0  # offset in `text` where the statement itself begins


@dataclass(frozen=True)
class Migration:
    version: str
    name: str
    path: Path

    def statements(self) -> list[Statement]:
        return split_statements(read_sql(self.path))


def read_sql(path: Path) -> str:
    """A SQL file as the CLI reads it: UTF-8, line endings untouched (`read_text` would turn CRLF into LF)."""
    return path.read_bytes().decode()


def split_statements(source: str) -> list[Statement]:
    """Split a SQL file into statements exactly as the supabase CLI does, keeping line numbers.

    `supabase db push` executes and records what its own splitter yields: the text up to and including
    each `;` outside quotes, comments, parentheses and `begin atomic` bodies, with trailing semicolons and
    surrounding whitespace trimmed, comment-only pieces kept. The states below follow the splitter of
    supabase CLI 3.1.0 one for one (quirks included), so that our history rows are the CLI's and a file
    the CLI would split badly fails here first.
    """
    statements = []
    for low, high in _cli_pieces(source):
        piece = source[low:high].rstrip(";")
        text = piece.strip(_JS_WHITESPACE)
        if not text:
            continue
        offset = low + len(piece) - len(piece.lstrip(_JS_WHITESPACE))
        lead = _leading_comments(text)
        statements.append(Statement(text, source.count("\n", 0, offset + lead) + 1, lead))
    return statements


# What JavaScript's String.prototype.trim() removes, as the CLI trims (Python's str.strip() differs slightly).
_JS_WHITESPACE = "\t\n\v\f\r \u00a0\u1680\u2028\u2029\u202f\u205f\u3000\ufeff" + "".join(
    map(chr, range(0x2000, 0x200B))
)
_SPACE = " \t\n\r\f\v"  # what the splitter itself counts as whitespace
_NEWLINE = re.compile(r"[\n\r]")


def _cli_pieces(source: str) -> Iterator[tuple[int, int]]:
    """(start, end) of each piece: a piece ends at a `;` that the splitter sees in its ready state."""
    state: _State = _Ready()
    piece = _Piece(source)
    for index, char in enumerate(source):
        piece.end = index + 1
        step = state.next(char, piece)
        if step is None:
            yield piece.low, piece.end
            piece.low, step = piece.end, _Ready()
        state = step
    if piece.low < len(source):
        yield piece.low, len(source)


class _Piece:
    """The current piece so far, source[low:end], seen without copying it for every character."""

    __slots__ = ("end", "low", "source")

    def __init__(self, source: str) -> None:
        self.source, self.low, self.end = source, 0, 0

    def endswith(self, suffix: str) -> bool:
        return self.end - len(suffix) >= self.low and self.source.startswith(suffix, self.end - len(suffix))

    def identifier_before(self, index: int) -> bool:
        return index > self.low and _identifier_char(self.source[index - 1])

    def ends_with_word(self, word: str, end: int | None = None) -> bool:
        """Whether the piece (or its text up to `end`) ends with `word`, in any case, as a whole word."""
        end = self.end if end is None else end
        start = end - len(word)
        if start < self.low:
            return False
        found = self.source[start:end]
        return found.isascii() and found.upper() == word and not self.identifier_before(start)


def _identifier_char(char: str) -> bool:
    return ord(char) >= 128 or (char.isascii() and (char.isalnum() or char in "_$"))


class _State:
    def next(self, char: str, piece: _Piece) -> _State | None:
        """The state after `char` (the piece's last character); None ends the piece there."""
        raise NotImplementedError


class _Ready(_State):
    def next(self, char: str, piece: _Piece) -> _State | None:
        match char:
            case "$":
                # `$` inside an identifier (`a$b`) or a parameter (`$1`) starts no dollar quote.
                return self if piece.identifier_before(piece.end - 1) else _Tag(piece.end - 1)
            case "'":
                return _Quote("'", backslash_escapes=piece.ends_with_word("E", piece.end - 1))
            case '"':
                return _Quote('"', backslash_escapes=False)
            case "-":
                return _Dash()
            case "/":
                return _Block()
            case "\\":
                return _Escape()
            case ";":
                return None
            case "(":
                return _Parenthesis(_Ready())
            case "c" | "C" if _begins_atomic(piece):
                return _Atomic(_Ready(), piece.end)
        return self


class _Dash(_State):
    def next(self, char: str, piece: _Piece) -> _State | None:
        return _LineComment() if char == "-" else _Ready().next(char, piece)


class _LineComment(_State):
    def next(self, char: str, piece: _Piece) -> _State | None:
        return _Ready() if char in "\n\r" else self


class _Block(_State):
    """After a `/`: a block comment if `*` follows; block comments nest."""

    def __init__(self) -> None:
        self.depth, self.after_delimiter = 0, False

    def next(self, char: str, piece: _Piece) -> _State | None:
        change = 0 if self.after_delimiter else _comment_delimiter(piece.source[piece.end - 2 : piece.end])
        self.after_delimiter = change != 0
        if self.depth == 0 and change == 0:
            return _Ready().next(char, piece)
        self.depth += change
        return self if self.depth else _Ready()


class _Quote(_State):
    """A quoted string or identifier; a doubled delimiter stays inside, and so does `\\'` in E'...'."""

    def __init__(self, delimiter: str, *, backslash_escapes: bool) -> None:
        self.delimiter, self.backslash_escapes = delimiter, backslash_escapes
        self.closed = self.backslash = False

    def next(self, char: str, piece: _Piece) -> _State | None:
        if self.closed:
            if char == self.delimiter:
                self.closed = False
                return self
            if self.backslash_escapes:
                return _Continuation().next(char, piece)
            return _Ready().next(char, piece)
        if self.backslash:
            self.backslash = False
            return self
        if self.backslash_escapes and char == "\\":
            self.backslash = True
            return self
        if char == self.delimiter:
            self.closed = True
        return self


class _Continuation(_State):
    """After E'...': whitespace with a newline (and line comments) then `'` continues the same string."""

    def __init__(self) -> None:
        self.newline, self.dashes = False, 0

    def next(self, char: str, piece: _Piece) -> _State | None:
        if self.dashes == 2:
            if char in "\n\r":
                self.dashes, self.newline = 0, True
            return self
        if char == "-":
            self.dashes += 1
            return self
        if self.dashes == 0:
            if char in _SPACE:
                self.newline = self.newline or char in "\n\r"
                return self
            if self.newline and char == "'":
                return _Quote("'", backslash_escapes=True)
        return _Ready().next(char, piece)


class _Tag(_State):
    """After a `$`: `$tag$` opens a dollar-quoted string."""

    def __init__(self, offset: int) -> None:
        self.offset = offset

    def next(self, char: str, piece: _Piece) -> _State | None:
        if char == "$":
            return _Dollar(piece.source[self.offset : piece.end])
        return self if _identifier_char(char) else _Ready().next(char, piece)


class _Dollar(_State):
    def __init__(self, delimiter: str) -> None:
        self.delimiter = delimiter

    def next(self, char: str, piece: _Piece) -> _State | None:
        return _Ready() if piece.endswith(self.delimiter) else self


class _Escape(_State):
    def next(self, char: str, piece: _Piece) -> _State | None:
        return _Ready()


class _Parenthesis(_State):
    """Inside `(...)` a `;` ends nothing (as in `create rule ... do (a; b)`)."""

    def __init__(self, inner: _State) -> None:
        self.inner = inner

    def next(self, char: str, piece: _Piece) -> _State | None:
        step = self.inner.next(char, piece)
        if step is None:
            self.inner = _Ready()
            return self
        self.inner = step
        if not isinstance(step, _Ready):
            return self
        return _Ready() if char == ")" else self


class _Atomic(_State):
    """A `begin atomic` body: its `;`s end inner statements, and an `end` that starts one closes it."""

    def __init__(self, inner: _State, start: int) -> None:
        self.inner, self.statement_start = inner, start
        self.pending_end = self.statement_has_content = False

    def next(self, char: str, piece: _Piece) -> _State | None:
        pending, self.pending_end = self.pending_end, False
        if pending and not _identifier_char(char):
            return _Ready().next(char, piece)
        step = self.inner.next(char, piece)
        if step is None:
            self.inner, self.statement_start, self.statement_has_content = _Ready(), piece.end, False
            return self
        self.inner = step
        if not isinstance(step, _Ready):
            return self
        if not self.statement_has_content and piece.ends_with_word("END"):
            before = piece.source[self.statement_start : piece.end - 3]
            if _leading_comments(before, _SPACE) == len(before):
                self.pending_end = True
            else:
                self.statement_has_content = True
        return self


def _begins_atomic(piece: _Piece) -> bool:
    """Whether the piece ends with `begin atomic` (only whitespace between the words)."""
    if not piece.ends_with_word("ATOMIC"):
        return False
    end = piece.end - len("ATOMIC")
    while end > piece.low and piece.source[end - 1] in _SPACE:
        end -= 1
    return piece.ends_with_word("BEGIN", end)


def _comment_delimiter(pair: str) -> int:
    return 1 if pair == "/*" else -1 if pair == "*/" else 0


def _leading_comments(text: str, space: str = _SPACE) -> int:
    """The length of the whitespace and comments before a statement's first token."""
    index = 0
    while index < len(text):
        if text[index] in space:
            index += 1
        elif text.startswith("--", index):
            newline = _NEWLINE.search(text, index)
            if newline is None:
                return len(text)
            index = newline.end()
        elif text.startswith("/*", index):
            depth, after_delimiter = 1, True
            index += 2
            while index < len(text) and depth > 0:
                change = 0 if after_delimiter else _comment_delimiter(text[index - 1 : index + 1])
                after_delimiter = change != 0
                depth += change
                index += 1
            if depth > 0:
                return len(text)
        else:
            return index
    return len(text)


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
    for statement in statements if statements is not None else split_statements(read_sql(path)):
        try:
            conn.execute(statement.text.encode(), prepare=False)
        except psycopg.Error as exc:
            # Postgres's position (1-based, in characters) points at the error; without one, the statement.
            position = int(exc.diag.statement_position or 0)
            line = statement.line + statement.text.count("\n", statement.start, max(position - 1, 0))
            detail = exc.diag.message_primary or str(exc)
            raise MigrationError(f"{path.name}:{line}: {detail}") from exc


@dataclass(frozen=True)
class Target:
    """A database to push to, logged in as `postgres`; `seed` for a new local database (supabase/seed.sql)."""

    admin_dsn: str
    seed: bool = False


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
            conn.execute(DROP_OUR_POLICIES)
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


def push(target: Target) -> list[str]:
    """Pending migrations, the policies, then the seed if the target asks for it; the names applied."""
    runner = Runner(target.admin_dsn)
    applied = [f"{m.version}_{m.name}" for m in runner.push()]
    if target.seed:
        runner.seed()
    return applied


def render_policies(policies_dir: Path = POLICIES_DIR) -> str:
    """The policy files as one migration: what `supabase db push` needs to deploy them."""
    parts = [
        "-- Generated by `litestar db snapshot-policies` (`make policies`) from supabase/policies/*.sql:\n"
        "-- edit those files, not this one. Every policy in public and on storage.objects and storage.buckets\n"
        "-- is dropped, then the files re-create them.\n\n",
        DROP_OUR_POLICIES,
    ]
    for path in sorted(policies_dir.glob("*.sql")):
        parts.append(
            f"\n-- supabase/policies/{path.name} {'-' * max(0, 80 - len(path.name))}\n\n{read_sql(path)}"
        )
    return "".join(parts)


def latest_snapshot(migrations_dir: Path = MIGRATIONS_DIR) -> Migration | None:
    snapshots = [m for m in local_migrations(migrations_dir) if m.name == SNAPSHOT_NAME]
    return snapshots[-1] if snapshots else None


def policies_changed(migrations_dir: Path = MIGRATIONS_DIR, policies_dir: Path = POLICIES_DIR) -> bool:
    snapshot = latest_snapshot(migrations_dir)
    return snapshot is None or read_sql(snapshot.path) != render_policies(policies_dir)


def snapshot_policies(
    migrations_dir: Path = MIGRATIONS_DIR, policies_dir: Path = POLICIES_DIR, now: datetime | None = None
) -> Path | None:
    """Write the policies into a new migration if they changed since the last snapshot; its path, or None.

    Its version is now (UTC), or one past the newest migration, so it always sorts last."""
    if not policies_changed(migrations_dir, policies_dir):
        return None
    version = int((now or datetime.now(UTC)).strftime("%Y%m%d%H%M%S"))
    existing = local_migrations(migrations_dir)
    if existing:
        version = max(version, int(existing[-1].version) + 1)
    path = migrations_dir / f"{version}_{SNAPSHOT_NAME}.sql"
    path.write_text(render_policies(policies_dir))
    return path
