"""The migration runner and the bootstrap, against fresh databases of the test cluster.

Expected statement lists below are what supabase CLI 3.1.0 itself recorded for the same files (checked with
`supabase migration repair --status applied`, which stores a file's statements without running them).
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, LiteralString

import psycopg
import pytest

from rpc.local.embedded import SUPERUSER, bootstrap, recreate_database
from rpc.platform.migrations import (
    HISTORY_DDL,
    MigrationError,
    Runner,
    execute_file,
    latest_snapshot,
    local_migrations,
    policies_changed,
    render_policies,
    snapshot_policies,
    split_statements,
)
from tests.conftest import cluster_dsn, drop_database


def new_name() -> str:
    return f"tb_mig_{uuid.uuid4().hex[:10]}"


@pytest.fixture
def fresh(fresh_database: str) -> str:
    """A new bootstrapped database with no migrations (conftest's); its name."""
    return fresh_database


@pytest.fixture
def folders(tmp_path: Path) -> tuple[Path, Path]:
    migrations, policies = tmp_path / "migrations", tmp_path / "policies"
    migrations.mkdir()
    policies.mkdir()
    return migrations, policies


def runner(name: str, folders: tuple[Path, Path]) -> Runner:
    return Runner(cluster_dsn(name, "postgres", "postgres"), *folders)


def write(folder: Path, filename: str, text: str) -> Path:
    path = folder / filename
    path.write_bytes(text.encode())
    return path


def scalar(name: str, query: LiteralString, params: tuple[Any, ...] = ()) -> Any:
    with psycopg.connect(cluster_dsn(name)) as conn:
        row = conn.execute(query, params).fetchone()
    assert row is not None
    return row[0]


def history(name: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(cluster_dsn(name)) as conn:
        return conn.execute(
            "select version, name, statements from supabase_migrations.schema_migrations order by version"
        ).fetchall()


def at_once(*calls: Callable[[], Any]) -> list[Any]:
    """Run the calls in threads released together (one call twice if given one); results or exceptions."""
    calls = calls if len(calls) > 1 else calls * 2
    barrier = threading.Barrier(len(calls))
    results: list[Any] = []

    def run(call: Callable[[], Any]) -> None:
        barrier.wait()
        try:
            results.append(call())
        except Exception as exc:  # the caller asserts on it
            results.append(exc)

    threads = [threading.Thread(target=run, args=(call,)) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return results


# The bootstrap ------------------------------------------------------------------------------------------

# Everything the bootstrap creates or changes, cluster-wide and in the database.
SNAPSHOT: dict[str, LiteralString] = {
    "roles": "select rolname, rolsuper, rolinherit, rolcreaterole, rolcreatedb, rolcanlogin, rolreplication,"
    " rolbypassrls, rolconfig from pg_roles order by rolname",
    "memberships": "select roleid::regrole::text, member::regrole::text, grantor::regrole::text, admin_option,"
    " inherit_option, set_option from pg_auth_members order by 1, 2, 3",
    "role settings": "select setrole::regrole::text, setconfig from pg_db_role_setting"
    " where setdatabase in (0, (select oid from pg_database where datname = current_database())) order by 1",
    "database": "select datdba::regrole::text, datacl::text from pg_database where datname = current_database()",
    "schemas": "select nspname, nspowner::regrole::text, nspacl::text from pg_namespace order by nspname",
    "extensions": "select extname, extnamespace::regnamespace::text, extversion from pg_extension order by 1",
    "auth.users": "select column_name, data_type, character_maximum_length, is_nullable, column_default,"
    " is_generated, generation_expression from information_schema.columns"
    " where table_schema = 'auth' and table_name = 'users' order by ordinal_position",
    "relations": "select c.oid::regclass::text, c.relkind, c.relowner::regrole::text, c.relacl::text,"
    " c.relrowsecurity from pg_class c join pg_namespace n on n.oid = c.relnamespace"
    " where n.nspname in ('auth', 'extensions', 'public') order by 1",
    "functions": "select p.oid::regprocedure::text, p.proowner::regrole::text, p.proacl::text, md5(p.prosrc)"
    " from pg_proc p join pg_namespace n on n.oid = p.pronamespace where n.nspname in ('auth', 'public')"
    " order by 1",
    "default privileges": "select defaclrole::regrole::text, defaclnamespace, defaclobjtype, defaclacl::text"
    " from pg_default_acl order by 1, 2, 3",
}


def snapshot(name: str) -> dict[str, list[tuple[Any, ...]]]:
    with psycopg.connect(cluster_dsn(name)) as conn:
        return {what: conn.execute(query).fetchall() for what, query in SNAPSHOT.items()}


def test_bootstrap_twice_changes_nothing(fresh: str) -> None:
    before = snapshot(fresh)
    assert before["auth.users"]  # the first run did create the shape
    assert bootstrap(cluster_dsn(fresh)) is False
    assert snapshot(fresh) == before


def test_bootstrap_leaves_a_supabase_database_alone() -> None:
    name = new_name()
    recreate_database(cluster_dsn(), name, owner=SUPERUSER)
    try:
        with psycopg.connect(cluster_dsn(name), autocommit=True) as conn:
            conn.execute("create schema auth")
            conn.execute("create table auth.users (id uuid primary key, email text)")
        before = snapshot(name)
        assert bootstrap(cluster_dsn(name)) is False
        assert snapshot(name) == before
        assert [row[0] for row in before["auth.users"]] == ["id", "email"]
        assert before["database"] == [(SUPERUSER, None)]  # not handed to postgres
        assert "extensions" not in {row[0] for row in before["schemas"]}
        assert scalar(name, "select to_regprocedure('auth.uid()')") is None
    finally:
        drop_database(name)


def test_two_bootstraps_at_once_shape_the_database_once() -> None:
    name = new_name()
    recreate_database(cluster_dsn(), name)
    try:
        results = at_once(lambda: bootstrap(cluster_dsn(name)))
        assert sorted(results, key=str) == [False, True]
    finally:
        drop_database(name)


def test_postgres_is_an_owner_not_a_superuser(fresh: str) -> None:
    with psycopg.connect(cluster_dsn(fresh)) as conn:
        row = conn.execute(
            "select rolsuper, rolcreaterole, rolcreatedb, rolbypassrls, rolcanlogin from pg_roles"
            " where rolname = 'postgres'"
        ).fetchone()
        owner = conn.execute(
            "select datdba::regrole::text from pg_database where datname = current_database()"
        ).fetchone()
    assert row == (False, True, True, True, True)
    assert owner == ("postgres",)


def test_authenticator_switches_to_the_api_roles(fresh: str) -> None:
    with psycopg.connect(cluster_dsn(fresh)) as conn:
        row = conn.execute(
            "select rolinherit, rolcanlogin, rolsuper from pg_roles where rolname = 'authenticator'"
        ).fetchone()
        members = conn.execute(
            "select r.rolname from pg_auth_members m join pg_roles r on r.oid = m.roleid"
            " where m.member = 'authenticator'::regrole order by 1"
        ).fetchall()
        service = conn.execute("select rolbypassrls from pg_roles where rolname = 'service_role'").fetchone()
    assert row == (False, True, False)
    assert [m[0] for m in members] == ["anon", "authenticated", "service_role"]
    assert service == (True,)
    with psycopg.connect(cluster_dsn(fresh, "authenticator", "postgres")) as conn:
        for role in ("anon", "authenticated", "service_role"):
            conn.execute(f"set role {role}")  # type: ignore[arg-type]  # fixed names
            assert conn.execute("select current_user").fetchone() == (role,)
            conn.execute("reset role")


TABLE_PRIVILEGES = ("select", "insert", "update", "delete", "truncate", "references", "trigger")


def test_a_new_public_table_is_exposed_to_nobody(fresh: str) -> None:
    with psycopg.connect(cluster_dsn(fresh, "postgres", "postgres"), autocommit=True) as conn:
        conn.execute("create table public.private_notes (id serial primary key, body text)")
        owner, acl = conn.execute(
            "select relowner::regrole::text, relacl from pg_class where oid = 'public.private_notes'::regclass"
        ).fetchone() or (None, None)
        granted = conn.execute(
            "select r, p from unnest(array['anon', 'authenticated']) r, unnest(%s::text[]) p"
            " where has_table_privilege(r, 'public.private_notes', p)"
            " or has_any_column_privilege(r, 'public.private_notes', p)",
            (["select", "insert", "update", "references"],),
        ).fetchall()
        granted += conn.execute(
            "select r, p from unnest(array['anon', 'authenticated']) r, unnest(%s::text[]) p"
            " where has_table_privilege(r, 'public.private_notes', p)",
            (list(TABLE_PRIVILEGES),),
        ).fetchall()
        granted += conn.execute(
            "select r, p from unnest(array['anon', 'authenticated']) r, unnest(array['usage', 'select', 'update']) p"
            " where has_sequence_privilege(r, 'public.private_notes_id_seq', p)"
        ).fetchall()
        # Only functions get default grants (as on a hosted project); tables and sequences none.
        default_acls = conn.execute(
            "select defaclobjtype::text from pg_default_acl order by defaclobjtype"
        ).fetchall()
    assert owner == "postgres"
    assert acl is None  # only the owner's implicit privileges
    assert granted == []
    assert default_acls == [("f",)]
    # And as the API would ask for it: refused, not merely empty.
    with psycopg.connect(cluster_dsn(fresh, "authenticator", "postgres")) as conn:
        for role in ("anon", "authenticated"):
            with conn.transaction():
                conn.execute(f"set local role {role}")  # type: ignore[arg-type]  # fixed names
                with pytest.raises(psycopg.errors.InsufficientPrivilege), conn.transaction():
                    conn.execute("select * from public.private_notes")


def test_auth_helpers_read_the_request_claims(fresh: str) -> None:
    user_id = str(uuid.uuid4())
    with psycopg.connect(cluster_dsn(fresh, "authenticator", "postgres")) as conn:
        with conn.transaction():
            conn.execute("set local role authenticated")
            assert conn.execute("select auth.uid(), auth.role(), auth.jwt()").fetchone() == (None, None, None)
        with conn.transaction():
            conn.execute(
                "select set_config('role', 'authenticated', true), set_config('request.jwt.claims', %s, true)",
                (f'{{"sub": "{user_id}", "role": "authenticated", "email": "a@example.com"}}',),
            )
            row = conn.execute("select auth.uid()::text, auth.role(), auth.jwt() ->> 'email'").fetchone()
        assert row == (user_id, "authenticated", "a@example.com")
        with conn.transaction():  # set locally: gone with the transaction
            conn.execute("set local role authenticated")
            assert conn.execute("select auth.uid()").fetchone() == (None,)


def test_a_migration_creates_vector_in_extensions(fresh: str, folders: tuple[Path, Path]) -> None:
    # Nothing is pre-installed: the migration creates it as on Supabase, as postgres (it is trusted here, as
    # supautils lets postgres create it there).
    assert scalar(fresh, "select count(*) from pg_extension where extname = 'vector'") == 0
    write(
        folders[0],
        "20260101000100_vectors.sql",
        "create extension if not exists vector with schema extensions;\n"
        "create table public.embeddings (id int primary key, embedding extensions.vector(3));\n"
        "insert into public.embeddings values (1, '[1,2,3]');\n",
    )
    assert [m.name for m in runner(fresh, folders).push()] == ["vectors"]
    assert scalar(fresh, "select extensions.vector_dims(embedding) from public.embeddings") == 3
    assert (
        scalar(fresh, "select extnamespace::regnamespace::text from pg_extension where extname = 'vector'")
        == "extensions"
    )


def test_alter_system_is_refused_to_postgres(fresh: str) -> None:
    with (
        psycopg.connect(cluster_dsn(fresh, "postgres", "postgres"), autocommit=True) as conn,
        pytest.raises(psycopg.errors.InsufficientPrivilege),
    ):
        conn.execute("alter system set work_mem = '8MB'")


@pytest.mark.parametrize(
    ("statement", "message"),
    [
        (
            "create event trigger no_ddl on ddl_command_start execute function pg_catalog.now()",
            'permission denied to create event trigger "no_ddl"',
        ),
        ("create function public.native() returns int language c as 'lib', 'native'", "permission denied"),
        ("create language plsample handler plpgsql_call_handler", "must be superuser"),
        ("alter system set work_mem = '8MB'", ""),  # refused too (and never inside a transaction)
    ],
)
def test_a_migration_that_needs_a_superuser_fails_here_first(
    fresh: str, folders: tuple[Path, Path], statement: str, message: str
) -> None:
    # (An untrusted extension is refused too: this build has none, see test_local_embedded.)
    write(folders[0], "20260101000000_superuser.sql", f"-- needs a superuser\n\n{statement};\n")
    with pytest.raises(MigrationError) as raised:
        runner(fresh, folders).push()
    assert str(raised.value).startswith(f"20260101000000_superuser.sql:3: {message}")
    assert history(fresh) == []


# Pushing --------------------------------------------------------------------------------------------------

FIRST = "create table public.one (id int primary key);\ninsert into public.one values (1);\n"
SECOND = "-- a second table\ncreate table public.two (id int);\n"
THIRD = "create function public.three() returns int language sql as $$ select 3; $$;\n"


def test_push_applies_only_what_is_pending(fresh: str, folders: tuple[Path, Path]) -> None:
    migrations = folders[0]
    write(migrations, "20260101000100_one.sql", FIRST)
    write(migrations, "20260101000200_two.sql", SECOND)
    run = runner(fresh, folders)
    assert run.status().applied == []
    assert [m.name for m in run.status().pending] == ["one", "two"]
    assert [m.name for m in run.push()] == ["one", "two"]
    write(migrations, "20260101000300_three.sql", THIRD)
    status = run.status()
    assert status.applied == ["20260101000100", "20260101000200"]
    assert [m.version for m in status.pending] == ["20260101000300"]
    # Re-running the first file would fail on its duplicate key: it must not run again.
    assert [m.name for m in run.push()] == ["three"]
    assert run.push() == []
    assert run.status().pending == []
    assert scalar(fresh, "select public.three()") == 3
    assert scalar(fresh, "select count(*) from public.one") == 1
    assert [row[0] for row in history(fresh)] == ["20260101000100", "20260101000200", "20260101000300"]


def test_history_is_recorded_as_the_supabase_cli_does(fresh: str, folders: tuple[Path, Path]) -> None:
    write(folders[0], "20260101000100_one.sql", FIRST)
    write(folders[0], "20260101000200_two.sql", SECOND)
    runner(fresh, folders).push()
    with psycopg.connect(cluster_dsn(fresh)) as conn:
        columns = conn.execute(
            "select column_name, data_type, udt_name, is_nullable from information_schema.columns"
            " where table_schema = 'supabase_migrations' and table_name = 'schema_migrations'"
            " order by ordinal_position"
        ).fetchall()
        primary_key = conn.execute(
            "select a.attname from pg_index i join pg_attribute a"
            " on a.attrelid = i.indrelid and a.attnum = any(i.indkey)"
            " where i.indrelid = 'supabase_migrations.schema_migrations'::regclass and i.indisprimary"
        ).fetchall()
    assert columns == [
        ("version", "text", "text", "NO"),
        ("statements", "ARRAY", "_text", "YES"),
        ("name", "text", "text", "YES"),
    ]
    assert primary_key == [("version",)]
    # One row per file; each statement as the CLI stores it: comments before it kept, `;` and blanks trimmed.
    assert history(fresh) == [
        (
            "20260101000100",
            "one",
            ["create table public.one (id int primary key)", "insert into public.one values (1)"],
        ),
        ("20260101000200", "two", ["-- a second table\ncreate table public.two (id int)"]),
    ]


def test_versions_applied_by_the_supabase_cli_count_as_applied(
    fresh: str, folders: tuple[Path, Path]
) -> None:
    with psycopg.connect(cluster_dsn(fresh, "postgres", "postgres"), autocommit=True) as conn:
        for ddl in HISTORY_DDL:  # the CLI's own statements
            conn.execute(ddl)  # type: ignore[arg-type]  # constants
        conn.execute("create table public.one (id int primary key)")
        conn.execute(
            "insert into supabase_migrations.schema_migrations(version, name, statements) values (%s, %s, %s)",
            ("20260101000100", "one", ["create table public.one (id int primary key)"]),
        )
    write(folders[0], "20260101000100_one.sql", FIRST)
    write(folders[0], "20260101000200_two.sql", SECOND)
    run = runner(fresh, folders)
    assert run.status().applied == ["20260101000100"]
    assert [m.name for m in run.push()] == ["two"]


def test_a_broken_file_names_its_line_and_leaves_nothing(fresh: str, folders: tuple[Path, Path]) -> None:
    migrations = folders[0]
    write(migrations, "20260101000100_one.sql", FIRST)
    write(
        migrations,
        "20260101000200_broken.sql",
        "create table public.half (id int);\ninsert into public.half values (1);\n\n"
        "-- then a typo\ninsert into public.half\n  values ('x');\n",
    )
    write(migrations, "20260101000300_three.sql", THIRD)
    run = runner(fresh, folders)
    with pytest.raises(MigrationError) as raised:
        run.push()
    assert str(raised.value) == '20260101000200_broken.sql:6: invalid input syntax for type integer: "x"'
    assert scalar(fresh, "select to_regclass('public.half')") is None
    assert scalar(fresh, "select to_regprocedure('public.three()')") is None  # the later file did not run
    assert [row[0] for row in history(fresh)] == ["20260101000100"]
    assert [m.name for m in run.status().pending] == ["broken", "three"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # No position from Postgres: the line where the statement (after its comments) starts.
        (
            "create table public.d (id int);\n\n-- again\ncreate table public.d (id int);\n",
            '4: relation "d" already exists',
        ),
        # A position inside a function body.
        (
            "create function public.f() returns int\nlanguage plpgsql as $$\nbegin\n  selec 1;\nend\n$$;\n",
            '4: syntax error at or near "selec"',
        ),
        # Windows line endings count as one line each.
        ("select 1;\r\n\r\nselect\r\n  nope;\r\n", '4: column "nope" does not exist'),
    ],
)
def test_errors_name_the_line(fresh: str, folders: tuple[Path, Path], text: str, expected: str) -> None:
    write(folders[0], "20260101000100_bad.sql", text)
    with pytest.raises(MigrationError) as raised:
        runner(fresh, folders).push()
    assert str(raised.value) == f"20260101000100_bad.sql:{expected}"
    assert scalar(fresh, "select to_regclass('public.d')") is None


def test_two_runners_at_once_apply_each_file_once(fresh: str, folders: tuple[Path, Path]) -> None:
    migrations = folders[0]
    write(migrations, "20260101000100_counter.sql", "create table public.counter (n int);\n")
    write(
        migrations,
        "20260101000200_count.sql",
        "insert into public.counter values (1);\nselect pg_sleep(0.3);\n",
    )
    runners = [runner(fresh, folders) for _ in range(2)]
    results = at_once(*(lambda run=run: [m.name for m in run.push()] for run in runners))
    applied = [result for result in results if isinstance(result, list)]
    assert len(applied) == 2, results
    assert sorted(applied, key=len) == [[], ["counter", "count"]]
    assert scalar(fresh, "select count(*) from public.counter") == 1
    assert [row[0] for row in history(fresh)] == ["20260101000100", "20260101000200"]


def test_policies_are_reapplied_on_every_push(fresh: str, folders: tuple[Path, Path]) -> None:
    migrations, policies = folders
    write(migrations, "20260101000100_log.sql", "create table public.policy_runs (n serial);\n")
    write(policies, "b_runs.sql", "insert into public.policy_runs default values;\n")
    write(
        policies,
        "a_grants.sql",
        "grant select on public.policy_runs to authenticated;\nrevoke select on public.policy_runs from anon;\n",
    )
    run = runner(fresh, folders)
    assert [m.name for m in run.push()] == ["log"]
    assert run.push() == []
    assert scalar(fresh, "select count(*) from public.policy_runs") == 2
    assert (
        scalar(fresh, "select has_table_privilege('authenticated', 'public.policy_runs', 'select')") is True
    )
    assert len(history(fresh)) == 1  # policies are not migrations


def test_policy_files_are_the_whole_truth_for_public(fresh: str, folders: tuple[Path, Path]) -> None:
    # A policy renamed or deleted in the files must not linger on databases migrated before.
    migrations, policies = folders
    write(
        migrations,
        "20260101000100_t.sql",
        "create table public.t (id int);\nalter table public.t enable row level security;\n",
    )
    write(
        policies, "t.sql", 'create policy "old name" on public.t for select to authenticated using (true);\n'
    )
    run = runner(fresh, folders)
    run.push()
    write(
        policies,
        "t.sql",
        'create policy "new name" on public.t for select to authenticated using (id > 0);\n',
    )
    run.push()
    assert scalar(fresh, "select array_agg(policyname) from pg_policies where tablename = 't'") == [
        "new name"
    ]


def test_a_broken_policy_rolls_back_all_policies(fresh: str, folders: tuple[Path, Path]) -> None:
    migrations, policies = folders
    write(migrations, "20260101000100_log.sql", "create table public.policy_runs (n serial);\n")
    write(policies, "a_runs.sql", "insert into public.policy_runs default values;\n")
    write(policies, "b_broken.sql", "\nselect nope;\n")
    with pytest.raises(MigrationError, match=r'^b_broken\.sql:2: column "nope" does not exist$'):
        runner(fresh, folders).push()
    assert scalar(fresh, "select count(*) from public.policy_runs") == 0


@pytest.mark.parametrize(
    "filename",
    [
        "2026_one.sql",
        "20260101000100-one.sql",
        "20260101000100_one two.sql",
        "one.sql",
        "202601010001000_x.sql",
    ],
)
def test_a_badly_named_migration_is_rejected(fresh: str, folders: tuple[Path, Path], filename: str) -> None:
    write(folders[0], "20260101000100_good.sql", FIRST)
    write(folders[0], filename, "select 1;\n")
    with pytest.raises(MigrationError) as raised:
        runner(fresh, folders).push()
    assert str(raised.value) == f"{filename}: migration files are named <14-digit version>_<name>.sql"
    assert scalar(fresh, "select to_regclass('public.one')") is None  # nothing ran


def test_local_migrations_are_in_version_order(tmp_path: Path) -> None:
    for filename in ("20260101000300_c.sql", "20260101000100_b-x.sql", "20260101000200_a.sql"):
        write(tmp_path, filename, "select 1;\n")
    write(tmp_path, "README.md", "not a migration")
    found = local_migrations(tmp_path)
    assert [(m.version, m.name) for m in found] == [
        ("20260101000100", "b-x"),
        ("20260101000200", "a"),
        ("20260101000300", "c"),
    ]


# Splitting ------------------------------------------------------------------------------------------------

SOURCE = """\
-- A header comment; with a semicolon
create table t (id int); -- trailing; comment

/* a block comment;
   over two lines */
create function f() returns text
language plpgsql as $$
begin
  return 'a;b';
end;
$$;
insert into t values (1);insert into t values (2);
select ';' as "semi;colon", $tag$ ; $tag$;
do $body$ begin perform 1; end $body$;
-- only a comment at the end;
"""


def test_split_statements_respects_quotes_and_comments() -> None:
    statements = split_statements(SOURCE)
    assert [s.text for s in statements] == [
        "-- A header comment; with a semicolon\ncreate table t (id int)",
        # A comment after a `;` belongs to the next statement, as the CLI splits it.
        "-- trailing; comment\n\n/* a block comment;\n   over two lines */\ncreate function f() returns text\n"
        "language plpgsql as $$\nbegin\n  return 'a;b';\nend;\n$$",
        "insert into t values (1)",
        "insert into t values (2)",
        "select ';' as \"semi;colon\", $tag$ ; $tag$",
        "do $body$ begin perform 1; end $body$",
        "-- only a comment at the end;",
    ]
    # Lines and offsets point past leading comments, at the statement itself.
    assert [s.line for s in statements] == [2, 6, 12, 12, 13, 14, 15]
    assert [s.text[s.start :].split("\n")[0] for s in statements] == [
        "create table t (id int)",
        "create function f() returns text",
        "insert into t values (1)",
        "insert into t values (2)",
        "select ';' as \"semi;colon\", $tag$ ; $tag$",
        "do $body$ begin perform 1; end $body$",
        "",
    ]


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("", []),
        (";;; select 7;;  ;\n", ["select 7"]),
        ("select 1;\nselect 2\n", ["select 1", "select 2"]),
        ("select 'a''b;c' ; select \"x\"\"y;\";", ["select 'a''b;c'", 'select "x""y;"']),
        (
            "select /* a /* b; */ c; */ 1; select /*/ x; */ 2;",
            ["select /* a /* b; */ c; */ 1", "select /*/ x; */ 2"],
        ),
        (
            "select $$ x; $$; select $1; select a$b; select x$$y;",
            ["select $$ x; $$", "select $1", "select a$b", "select x$$y"],
        ),
        ("select $é$ a;b $é$; select 'é;ü';", ["select $é$ a;b $é$", "select 'é;ü'"]),
        ("select E'it\\'s; x'; select E'a;'\n  'b;c';", ["select E'it\\'s; x'", "select E'a;'\n  'b;c'"]),
        # `\` escapes the next character outside strings.
        ("select 1 \\; select 2; x", ["select 1 \\; select 2", "x"]),
        # Parentheses hold `;` (create rule ... do (a; b)), though the first `)` closes them all.
        ("select (1; 2); select ((1); 2);", ["select (1; 2)", "select ((1)", "2)"]),
        (
            "create function g(a int) returns int language sql\nBEGIN   ATOMIC\n  select a + 1;\n"
            "  select case when a > 0 then 1 end;\nEND;\nselect 5;",
            [
                "create function g(a int) returns int language sql\nBEGIN   ATOMIC\n  select a + 1;\n"
                "  select case when a > 0 then 1 end;\nEND",
                "select 5",
            ],
        ),
        ("select begin_atomic; select 6;", ["select begin_atomic", "select 6"]),
        ("\ufeffselect 17;\r\n-- c\r\nselect 18;\r\n", ["select 17", "-- c\r\nselect 18"]),
        ("-- nothing here;\n/* nor; here */\n\n", ["-- nothing here;\n/* nor; here */"]),
    ],
)
def test_split_statements_as_the_cli_does(source: str, expected: list[str]) -> None:
    assert [s.text for s in split_statements(source)] == expected


def test_split_statements_runs_in_postgres(fresh: str, tmp_path: Path) -> None:
    write(tmp_path, "20260101000100_split.sql", SOURCE)
    run = runner(fresh, (tmp_path, tmp_path / "none"))
    assert [m.name for m in run.push()] == ["split"]
    assert scalar(fresh, "select f()") == "a;b"
    assert scalar(fresh, "select count(*) from t") == 2
    assert history(fresh)[0][2] == [s.text for s in split_statements(SOURCE)]


# The project's own migrations ----------------------------------------------------------------------------


def test_the_project_migrations_apply_to_a_fresh_database(fresh: str) -> None:
    run = Runner(cluster_dsn(fresh, "postgres", "postgres"))
    expected = [m.version for m in local_migrations()]
    assert expected
    assert [m.version for m in run.status().pending] == expected
    assert [m.version for m in run.push()] == expected
    status = run.status()
    assert status.pending == []
    assert status.applied == expected
    assert run.push() == []
    # Sanity: every table the API exposes is protected by RLS.
    unprotected = scalar(
        fresh,
        "select coalesce(array_agg(c.oid::regclass::text), '{}') from pg_class c"
        " join pg_namespace n on n.oid = c.relnamespace"
        " where n.nspname = 'public' and c.relkind in ('r', 'p') and not c.relrowsecurity",
    )
    assert unprotected == []


# Policy snapshots: what `supabase db push` deploys ------------------------------------------------------


def test_the_latest_policy_snapshot_matches_the_policy_files() -> None:
    assert latest_snapshot() is not None
    assert not policies_changed(), (
        "supabase/policies/*.sql changed since the last snapshot migration, so `supabase db push` would "
        "deploy stale policies: run `make policies` (litestar db snapshot-policies) and commit the new file"
    )


def test_snapshot_policies_writes_a_migration_only_when_they_changed(folders: tuple[Path, Path]) -> None:
    migrations, policies = folders
    write(migrations, "20260101000100_t.sql", "create table public.t (id int);\n")
    write(policies, "t.sql", 'create policy "p" on public.t for select using (true);\n')
    first = snapshot_policies(migrations, policies, now=datetime(2026, 2, 3, 4, 5, 6, tzinfo=UTC))
    assert first is not None
    assert first.name == "20260203040506_policies_snapshot.sql"
    assert first.read_text() == render_policies(policies)
    assert 'create policy "p"' in first.read_text()
    assert snapshot_policies(migrations, policies) is None
    assert not policies_changed(migrations, policies)

    write(policies, "t.sql", 'create policy "p" on public.t for select using (id > 0);\n')
    assert policies_changed(migrations, policies)
    # A clock behind the newest migration still sorts the snapshot last.
    second = snapshot_policies(migrations, policies, now=datetime(2020, 1, 1, tzinfo=UTC))
    assert second is not None
    assert second.name == "20260203040507_policies_snapshot.sql"
    assert latest_snapshot(migrations) is not None
    assert latest_snapshot(migrations).path == second  # type: ignore[union-attr]


def test_a_policy_snapshot_deploys_the_policies_without_our_runner(
    fresh: str, folders: tuple[Path, Path]
) -> None:
    # What `supabase db push` does: migrations only. The snapshot alone must leave the same policies.
    migrations, policies = folders
    write(
        migrations,
        "20260101000100_t.sql",
        "create table public.t (id int);\nalter table public.t enable row level security;\n",
    )
    write(policies, "t.sql", 'create policy "p" on public.t for select to authenticated using (id > 0);\n')
    snapshot_policies(migrations, policies)
    with psycopg.connect(cluster_dsn(fresh, "postgres", "postgres"), autocommit=True) as conn:
        for migration in local_migrations(migrations):
            with conn.transaction():
                execute_file(conn, migration.path)
    assert scalar(fresh, "select array_agg(policyname) from pg_policies where tablename = 't'") == ["p"]
