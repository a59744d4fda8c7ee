"""Storage in SQL: the schema the local stack recreates from Supabase Storage's migrations, our buckets (the
migration and config.toml agree), and the RLS matrix of storage.objects under every actor.

Every actor's statement runs as PostgREST (and the Storage server) would run it: role and claims set
locally, in a savepoint of the test's rolled-back transaction (tests.support). A refused insert or a row
failing `with check` is an error (42501); a row that `using` hides is simply not touched (0 rows).
"""

from __future__ import annotations

import json
import re
import tomllib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, LiteralString

import psycopg
import pytest

from rpc.local.embedded import SUPERUSER, bootstrap, recreate_database
from rpc.platform.migrations import MIGRATIONS_DIR, PROJECT_ROOT, execute_file
from tests.conftest import Database, cluster_dsn, drop_database, value_in
from tests.support import (
    Company,
    User,
    actor,
    add_member,
    as_anon,
    as_user,
    make_company,
    make_user,
    value,
)

INSUFFICIENT_PRIVILEGE = "42501"
BUCKETS_MIGRATION = MIGRATIONS_DIR / "20261130100000_storage_buckets.sql"
IMAGES = ["image/png", "image/jpeg", "image/webp", "image/gif"]
RESUMES = [
    "application/pdf",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "text/plain",
]
ALLOW_DELETE: LiteralString = "select set_config('storage.allow_delete_query', 'true', true)"

# The shape ---------------------------------------------------------------------------------------------

COLUMNS: LiteralString = """
select a.attname::text, format_type(a.atttypid, a.atttypmod), a.attnotnull,
       pg_get_expr(d.adbin, d.adrelid), a.attgenerated::text
from pg_attribute a
left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
where a.attrelid = %s::regclass and a.attnum > 0 and not a.attisdropped
order by a.attnum
"""
NOW = "now()"
BUCKET_COLUMNS = [
    ("id", "text", True, None, ""),
    ("name", "text", True, None, ""),
    ("owner", "uuid", False, None, ""),
    ("owner_id", "text", False, None, ""),
    ("public", "boolean", False, "false", ""),
    ("file_size_limit", "bigint", False, None, ""),
    ("allowed_mime_types", "text[]", False, None, ""),
    ("created_at", "timestamp with time zone", False, NOW, ""),
    ("updated_at", "timestamp with time zone", False, NOW, ""),
]
OBJECT_COLUMNS = [
    ("id", "uuid", True, "gen_random_uuid()", ""),
    ("bucket_id", "text", False, None, ""),
    ("name", "text", False, None, ""),
    ("owner", "uuid", False, None, ""),
    ("owner_id", "text", False, None, ""),
    ("metadata", "jsonb", False, None, ""),
    ("user_metadata", "jsonb", False, None, ""),
    ("path_tokens", "text[]", False, "string_to_array(name, '/'::text)", "s"),
    ("version", "text", False, None, ""),
    ("created_at", "timestamp with time zone", False, NOW, ""),
    ("updated_at", "timestamp with time zone", False, NOW, ""),
    ("last_accessed_at", "timestamp with time zone", False, NOW, ""),
]


@pytest.mark.parametrize(
    ("table", "expected"), [("storage.buckets", BUCKET_COLUMNS), ("storage.objects", OBJECT_COLUMNS)]
)
def test_columns_are_supabases(conn: psycopg.Connection, table: str, expected: list[tuple[Any, ...]]) -> None:
    assert conn.execute(COLUMNS, (table,)).fetchall() == expected


def test_tables_are_storages_with_rls_on(conn: psycopg.Connection) -> None:
    rows = conn.execute(
        "select relname::text, relowner::regrole::text, relrowsecurity from pg_class"
        " where oid in ('storage.buckets'::regclass, 'storage.objects'::regclass) order by 1"
    ).fetchall()
    assert rows == [("buckets", "supabase_storage_admin", True), ("objects", "supabase_storage_admin", True)]
    assert value(conn, "select nspowner::regrole::text from pg_namespace where nspname = 'storage'") == (
        "supabase_storage_admin"
    )


def test_keys_and_unique_indexes(conn: psycopg.Connection) -> None:
    rows = conn.execute(
        "select indexrelid::regclass::text, indisunique, indisprimary, pg_get_indexdef(indexrelid)"
        " from pg_index where indrelid in ('storage.buckets'::regclass, 'storage.objects'::regclass)"
        " and indisunique order by 1"
    ).fetchall()
    assert rows == [
        ("storage.bname", True, False, "CREATE UNIQUE INDEX bname ON storage.buckets USING btree (name)"),
        (
            "storage.bucketid_objname",
            True,
            False,
            "CREATE UNIQUE INDEX bucketid_objname ON storage.objects USING btree (bucket_id, name)",
        ),
        (
            "storage.buckets_pkey",
            True,
            True,
            "CREATE UNIQUE INDEX buckets_pkey ON storage.buckets USING btree (id)",
        ),
        (
            "storage.objects_pkey",
            True,
            True,
            "CREATE UNIQUE INDEX objects_pkey ON storage.objects USING btree (id)",
        ),
    ]
    assert (
        value(
            conn,
            "select pg_get_constraintdef(oid) from pg_constraint where conrelid = 'storage.objects'::regclass"
            " and contype = 'f'",
        )
        == "FOREIGN KEY (bucket_id) REFERENCES storage.buckets(id)"
    )
    conn.execute("insert into storage.objects (bucket_id, name) values ('avatars', 'a/b.png')")
    with pytest.raises(psycopg.errors.UniqueViolation, match="bucketid_objname"), conn.transaction():
        conn.execute("insert into storage.objects (bucket_id, name) values ('avatars', 'a/b.png')")
    # The same name in another bucket is another object.
    conn.execute("insert into storage.objects (bucket_id, name) values ('company-logos', 'a/b.png')")


def plan_nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from plan_nodes(child)


def test_a_folder_is_listed_from_an_index_in_name_order(conn: psycopg.Connection) -> None:
    # Enough rows that reading the whole table and sorting would be the planner's choice without the index.
    conn.execute(
        "insert into storage.objects (bucket_id, name)"
        " select 'avatars', md5(i::text) || '/' || i || '.png' from generate_series(1, 5000) i"
    )
    conn.execute("analyze storage.objects")
    prefix = value(conn, "select md5('42') || '/'")
    query: LiteralString = (
        'select name from storage.objects where bucket_id = %s and name collate "C" like %s'
        ' order by name collate "C" limit 100'
    )
    plan = value(conn, "explain (format json) " + query, ("avatars", prefix + "%"))[0]["Plan"]
    nodes = list(plan_nodes(plan))
    assert {n.get("Index Name") for n in nodes} - {None} == {"idx_objects_bucket_id_name"}, json.dumps(plan)
    assert not [n for n in nodes if n["Node Type"] in ("Sort", "Seq Scan")], json.dumps(plan)
    assert conn.execute(query, ("avatars", prefix + "%")).fetchall() == [(prefix + "42.png",)]


def privileges(conn: psycopg.Connection, table: str) -> set[tuple[str, str, bool]]:
    rows = conn.execute(
        "select grantee::regrole::text, privilege_type, is_grantable"
        " from pg_class, aclexplode(relacl) where oid = %s::regclass and grantee <> relowner",
        (table,),
    ).fetchall()
    return {tuple(row) for row in rows}  # type: ignore[misc]


ALL = ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER")


@pytest.mark.parametrize("table", ["storage.buckets", "storage.objects"])
def test_grants_are_storages(conn: psycopg.Connection, table: str) -> None:
    expected = {(role, p, False) for role in ("anon", "authenticated", "service_role") for p in ALL}
    expected |= {("postgres", p, True) for p in ALL}
    assert privileges(conn, table) == expected
    roles = conn.execute(
        "select r, has_schema_privilege(r, 'storage', 'usage') from unnest(%s::text[]) r",
        (["postgres", "anon", "authenticated", "service_role"],),
    ).fetchall()
    assert all(usage for _, usage in roles), roles


HELPERS = ["storage.foldername(text)", "storage.filename(text)", "storage.extension(text)"]


@pytest.mark.parametrize("function", HELPERS)
def test_path_helpers_are_immutable_and_callable_by_every_api_role(
    conn: psycopg.Connection, function: str
) -> None:
    row = conn.execute(
        "select provolatile::text, proowner::regrole::text from pg_proc where oid = %s::regprocedure",
        (function,),
    ).fetchone()
    assert row == ("i", "supabase_storage_admin")
    for role in ("postgres", "anon", "authenticated", "service_role"):
        assert value(conn, "select has_function_privilege(%s, %s, 'execute')", (role, function)), role


@pytest.mark.parametrize(
    ("name", "folders", "filename", "extension"),
    [
        ("a/b/c.png", ["a", "b"], "c.png", "png"),
        ("c.png", [], "c.png", "png"),
        ("a/archive.tar.gz", ["a"], "archive.tar.gz", "gz"),
        ("a/README", ["a"], "README", "README"),  # as Supabase's: no dot, the whole name
    ],
)
def test_path_helpers_split_as_supabases(
    conn: psycopg.Connection, name: str, folders: list[str], filename: str, extension: str
) -> None:
    row = as_anon(conn).one(
        "select storage.foldername(%(n)s) as folders, storage.filename(%(n)s) as filename,"
        " storage.extension(%(n)s) as extension",
        {"n": name},
    )
    assert row == {"folders": folders, "filename": filename, "extension": extension}


def test_updated_at_follows_every_update(conn: psycopg.Connection) -> None:
    conn.execute(
        "insert into storage.objects (bucket_id, name, updated_at) values ('avatars', 'u/x.png', '2020-01-01')"
    )
    conn.execute("update storage.objects set user_metadata = '{}' where name = 'u/x.png'")
    assert value(conn, "select updated_at = now() from storage.objects where name = 'u/x.png'") is True


# Only the Storage server deletes rows ---------------------------------------------------------------------


def delete_object(conn: psycopg.Connection, statement: LiteralString = "") -> int:
    """In one transaction: insert an object, run `statement` (if any), then a bare `delete` of it; rows
    deleted."""
    with conn.transaction():
        conn.execute("insert into storage.objects (bucket_id, name) values ('avatars', 'bare/delete.png')")
        if statement:
            conn.execute(statement)
        return conn.execute("delete from storage.objects where name = 'bare/delete.png'").rowcount


BARE_DELETES = ["delete from storage.objects", "delete from storage.buckets"]


@pytest.mark.parametrize("who", ["postgres", "service_role", "superuser"])
def test_a_bare_delete_is_refused_unless_the_transaction_allows_it(database: Database, who: str) -> None:
    with psycopg.connect(
        database.admin if who == "postgres" else database.superuser, autocommit=True
    ) as conn:
        if who == "service_role":
            conn.execute("set role service_role")
        for statement in BARE_DELETES:
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="Use the Storage API instead"):
                conn.execute(statement)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            delete_object(conn)
        assert delete_object(conn, ALLOW_DELETE) == 1
        # The setting lasted only as long as that transaction.
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            delete_object(conn)
        assert value(conn, "select count(*) from storage.objects where name = 'bare/delete.png'") == 0


# The bootstrap -------------------------------------------------------------------------------------------

SHAPE: dict[str, LiteralString] = {
    "schema": "select nspowner::regrole::text, nspacl::text from pg_namespace where nspname = 'storage'",
    "relations": "select c.oid::regclass::text, c.relkind, c.relowner::regrole::text, c.relacl::text,"
    " c.relrowsecurity from pg_class c where c.relnamespace = 'storage'::regnamespace order by 1",
    "columns": "select attrelid::regclass::text, attname, format_type(atttypid, atttypmod), attnotnull,"
    " attgenerated from pg_attribute where attrelid in (select oid from pg_class"
    " where relnamespace = 'storage'::regnamespace and relkind = 'r') and attnum > 0 order by 1, attnum",
    "functions": "select oid::regprocedure::text, proowner::regrole::text, proacl::text, provolatile,"
    " md5(prosrc) from pg_proc where pronamespace = 'storage'::regnamespace order by 1",
    "triggers": "select tgrelid::regclass::text, tgname, tgfoid::regproc::text, tgtype from pg_trigger"
    " where tgrelid in ('storage.objects'::regclass, 'storage.buckets'::regclass) and not tgisinternal"
    " order by 1, 2",
    "indexes": "select indexrelid::regclass::text, pg_get_indexdef(indexrelid) from pg_index"
    " where indrelid in ('storage.objects'::regclass, 'storage.buckets'::regclass) order by 1",
}


def shape(name: str) -> dict[str, list[tuple[Any, ...]]]:
    with psycopg.connect(cluster_dsn(name)) as conn:
        return {what: conn.execute(query).fetchall() for what, query in SHAPE.items()}


def test_bootstrap_twice_changes_nothing(fresh_database: str) -> None:
    before = shape(fresh_database)
    assert before["relations"]  # the first run did create it
    assert bootstrap(cluster_dsn(fresh_database)) is False
    assert shape(fresh_database) == before


def test_a_cluster_shaped_before_storage_gets_it_on_its_next_start(fresh_database: str) -> None:
    # As a developer's cluster bootstrapped before storage.sql existed: auth (with the local mark), no storage.
    expected = shape(fresh_database)
    with psycopg.connect(cluster_dsn(fresh_database), autocommit=True) as conn:
        conn.execute("drop schema storage cascade")
    assert bootstrap(cluster_dsn(fresh_database)) is True
    assert shape(fresh_database) == expected
    assert bootstrap(cluster_dsn(fresh_database)) is False


def test_a_database_we_did_not_shape_gets_no_storage() -> None:
    # Its auth schema lacks the local stack's mark: neither auth nor storage is ours to change.
    name = f"tb_sto_{uuid.uuid4().hex[:10]}"
    recreate_database(cluster_dsn(), name, owner=SUPERUSER)
    try:
        with psycopg.connect(cluster_dsn(name), autocommit=True) as conn:
            conn.execute("create schema auth")
            conn.execute("create table auth.users (id uuid primary key)")
        assert bootstrap(cluster_dsn(name)) is False
        assert value_in(name, "select to_regnamespace('storage')") is None
    finally:
        drop_database(name)


# Our buckets: the migration and config.toml -----------------------------------------------------------------

BUCKETS: LiteralString = (
    "select id, name, public, file_size_limit, allowed_mime_types from storage.buckets order by id"
)
EXPECTED_BUCKETS = [
    ("avatars", "avatars", True, 2 * 1024 * 1024, IMAGES),
    ("company-logos", "company-logos", True, 2 * 1024 * 1024, IMAGES),
    ("resumes", "resumes", False, 10 * 1024 * 1024, RESUMES),
]


def test_the_migration_creates_our_buckets(conn: psycopg.Connection) -> None:
    assert conn.execute(BUCKETS).fetchall() == EXPECTED_BUCKETS


def size_in_bytes(text: str) -> int:
    """A size as the supabase CLI reads config.toml's: "2MiB" and "2MB" are both 2 * 1024 * 1024 bytes."""
    match = re.fullmatch(r"(\d+)\s*([KMG]?)i?B", text)
    assert match, text
    return int(match[1]) * 1024 ** " KMG".index(match[2] or " ")


def test_config_toml_agrees_with_the_migration(conn: psycopg.Connection) -> None:
    config = tomllib.loads((PROJECT_ROOT / "supabase" / "config.toml").read_text())
    configured = sorted(
        (bucket_id, bucket_id, b["public"], size_in_bytes(b["file_size_limit"]), b["allowed_mime_types"])
        for bucket_id, b in config["storage"]["buckets"].items()
    )
    assert not any("objects_path" in b for b in config["storage"]["buckets"].values())
    assert configured == conn.execute(BUCKETS).fetchall()


def test_the_migration_needs_no_ownership_and_puts_buckets_back(conn: psycopg.Connection) -> None:
    # On a hosted project `postgres` neither owns storage.buckets nor belongs to its owner's role; here it
    # does belong, so the migration runs as a role holding only what 0046/0049 give postgres.
    conn.execute("create role tb_hosted_postgres bypassrls")
    conn.execute("grant usage on schema storage to tb_hosted_postgres")
    conn.execute("grant all on storage.buckets, storage.objects to tb_hosted_postgres with grant option")
    ours = [bucket for bucket in EXPECTED_BUCKETS if bucket[0] in ("avatars", "company-logos")]
    conn.execute(
        "update storage.buckets set public = false, file_size_limit = null, allowed_mime_types = null"
        " where id in ('avatars', 'company-logos')"
    )
    conn.execute("set local role tb_hosted_postgres")
    execute_file(conn, BUCKETS_MIGRATION)
    assert [
        bucket for bucket in conn.execute(BUCKETS).fetchall() if bucket[0] in ("avatars", "company-logos")
    ] == ours
    # A control: this role could not have altered the table.
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="must be owner"), conn.transaction():
        conn.execute("alter table storage.buckets add column probe int")


# The RLS matrix ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class World:
    alice: User  # avatars: a user and their own folder
    bob: User  # another user
    owner: User  # Acme's owner, admin and recruiter
    admin: User
    recruiter: User
    zeta_owner: User  # owns Zeta, not a member of Acme
    outsider: User  # signed in, member of nothing
    platform_admin: User  # a platform admin, member of nothing
    acme: Company
    zeta: Company


@pytest.fixture
def world(conn: psycopg.Connection) -> World:
    owner = make_user(conn, roles=("employer",))
    acme = make_company(conn, owner, name="Acme")
    admin, recruiter = make_user(conn), make_user(conn)
    add_member(conn, acme, admin, "admin")
    add_member(conn, acme, recruiter, "recruiter")
    zeta_owner = make_user(conn)
    return World(
        alice=make_user(conn),
        bob=make_user(conn),
        owner=owner,
        admin=admin,
        recruiter=recruiter,
        zeta_owner=zeta_owner,
        outsider=make_user(conn),
        platform_admin=make_user(conn, roles=("admin",)),
        acme=acme,
        zeta=make_company(conn, zeta_owner, name="Zeta"),
    )


def put(conn: psycopg.Connection, bucket: str, name: str) -> None:
    """An object as the Storage server would have stored it (as the superuser, past every policy)."""
    conn.execute(
        "insert into storage.objects (bucket_id, name, metadata) values (%s, %s, '{\"size\": 1}')",
        (bucket, name),
    )


def exists(conn: psycopg.Connection, bucket: str, name: str) -> bool:
    return value(
        conn, "select exists (select from storage.objects where bucket_id = %s and name = %s)", (bucket, name)
    )


INSERT: LiteralString = (
    "insert into storage.objects (bucket_id, name, owner_id) values (%s, %s, auth.uid()::text) returning name"
)
UPDATE: LiteralString = (
    "update storage.objects set user_metadata = '{\"v\": 2}' where bucket_id = %s and name = %s"
)
MOVE: LiteralString = "update storage.objects set name = %s where bucket_id = %s and name = %s"
DELETE: LiteralString = "delete from storage.objects where bucket_id = %s and name = %s"
READ: LiteralString = "select name from storage.objects where bucket_id = %s and name = %s"


def folder_of(world: World, folder: str) -> str:
    """The path prefix a case names: `own` (alice's id), `other` (bob's), `acme`, `zeta` (company ids),
    `root` (none), `not-a-uuid`, `nested-not-a-uuid` (Acme's id one level down), `upper-own`, `upper-acme`
    (those ids in capitals)."""
    folders = {
        "own": f"{world.alice.id}/",
        "other": f"{world.bob.id}/",
        "acme": f"{world.acme.id}/",
        "zeta": f"{world.zeta.id}/",
        "root": "",
        "not-a-uuid": "not-a-uuid/",
        "nested-not-a-uuid": f"x/{world.acme.id}/",
    }
    folders["upper-own"] = folders["own"].upper()
    folders["upper-acme"] = folders["acme"].upper()
    return folders[folder]


# avatars

AVATAR_WRITERS = [
    ("alice", "own", True),
    ("service", "other", True),  # the service role bypasses RLS
    ("alice", "other", False),
    ("alice", "root", False),
    ("alice", "not-a-uuid", False),
    ("alice", "upper-own", False),
    ("bob", "own", False),
    ("anon", "own", False),
    ("anon", "root", False),
]


@pytest.mark.parametrize(("who", "folder", "allowed"), AVATAR_WRITERS)
def test_avatars_insert(conn: psycopg.Connection, world: World, who: str, folder: str, allowed: bool) -> None:
    name = folder_of(world, folder) + "avatar.png"
    caller = actor(conn, world, who)
    if allowed:
        assert caller.one(INSERT, ("avatars", name)) == {"name": name}
    else:
        caller.refused(INSERT, ("avatars", name), sqlstate=INSUFFICIENT_PRIVILEGE)
    assert exists(conn, "avatars", name) is allowed


@pytest.mark.parametrize(("who", "folder", "allowed"), AVATAR_WRITERS)
def test_avatars_update_and_delete(
    conn: psycopg.Connection, world: World, who: str, folder: str, allowed: bool
) -> None:
    name = folder_of(world, folder) + "avatar.png"
    put(conn, "avatars", name)
    caller = actor(conn, world, who)
    assert caller.count(UPDATE, ("avatars", name)) == int(allowed)
    assert value(conn, "select user_metadata is not null from storage.objects where name = %s", (name,)) is (
        allowed
    )
    conn.execute(ALLOW_DELETE)
    assert caller.count(DELETE, ("avatars", name)) == int(allowed)
    assert exists(conn, "avatars", name) is not allowed


@pytest.mark.parametrize("who", ["anon", "alice", "bob", "outsider"])
@pytest.mark.parametrize("bucket", ["avatars", "company-logos"])
def test_anyone_reads_the_public_buckets(
    conn: psycopg.Connection, world: World, who: str, bucket: str
) -> None:
    name = f"{world.alice.id if bucket == 'avatars' else world.acme.id}/picture.png"
    put(conn, bucket, name)
    assert actor(conn, world, who).rows(READ, (bucket, name)) == [{"name": name}]


def test_avatars_an_object_cannot_be_moved_into_another_users_folder(
    conn: psycopg.Connection, world: World
) -> None:
    name = folder_of(world, "own") + "avatar.png"
    put(conn, "avatars", name)
    alice = as_user(conn, world.alice)
    for target in ("other", "root", "not-a-uuid"):
        alice.refused(
            MOVE, (folder_of(world, target) + "avatar.png", "avatars", name), sqlstate=INSUFFICIENT_PRIVILEGE
        )
    # Nor into another bucket, even under her own id.
    alice.refused(
        "update storage.objects set bucket_id = 'company-logos' where bucket_id = 'avatars' and name = %s",
        (name,),
        sqlstate=INSUFFICIENT_PRIVILEGE,
    )
    # A control: within her own folder the move is hers to make.
    assert alice.count(MOVE, (folder_of(world, "own") + "renamed.png", "avatars", name)) == 1
    assert exists(conn, "avatars", folder_of(world, "own") + "renamed.png")


# company-logos

LOGO_WRITERS = [
    ("owner", "acme", True),
    ("admin", "acme", True),
    ("service", "acme", True),
    ("recruiter", "acme", False),
    ("zeta_owner", "acme", False),
    ("outsider", "acme", False),
    ("platform_admin", "acme", False),
    ("anon", "acme", False),
    ("owner", "zeta", False),
    ("owner", "root", False),
    ("owner", "not-a-uuid", False),
    ("owner", "nested-not-a-uuid", False),
    ("owner", "upper-acme", False),
    ("alice", "own", False),  # a user's own id is no company
]


@pytest.mark.parametrize(("who", "folder", "allowed"), LOGO_WRITERS)
def test_company_logos_insert(
    conn: psycopg.Connection, world: World, who: str, folder: str, allowed: bool
) -> None:
    name = folder_of(world, folder) + "logo.png"
    caller = actor(conn, world, who)
    if allowed:
        assert caller.one(INSERT, ("company-logos", name)) == {"name": name}
    else:
        # Refused by the policy (42501), never by a failed cast to uuid (22P02).
        caller.refused(INSERT, ("company-logos", name), sqlstate=INSUFFICIENT_PRIVILEGE)
    assert exists(conn, "company-logos", name) is allowed


@pytest.mark.parametrize(("who", "folder", "allowed"), LOGO_WRITERS)
def test_company_logos_update_and_delete(
    conn: psycopg.Connection, world: World, who: str, folder: str, allowed: bool
) -> None:
    name = folder_of(world, folder) + "logo.png"
    put(conn, "company-logos", name)
    caller = actor(conn, world, who)
    assert caller.count(UPDATE, ("company-logos", name)) == int(allowed)
    conn.execute(ALLOW_DELETE)
    assert caller.count(DELETE, ("company-logos", name)) == int(allowed)
    assert exists(conn, "company-logos", name) is not allowed


def test_company_logos_cannot_be_moved_to_another_companys_folder(
    conn: psycopg.Connection, world: World
) -> None:
    name = folder_of(world, "acme") + "logo.png"
    put(conn, "company-logos", name)
    owner = as_user(conn, world.owner)
    for target in ("zeta", "root", "not-a-uuid"):
        owner.refused(
            MOVE,
            (folder_of(world, target) + "logo.png", "company-logos", name),
            sqlstate=INSUFFICIENT_PRIVILEGE,
        )
    # A control: Zeta's owner, made an admin of Acme, may move Acme's logo into Zeta's folder.
    add_member(conn, world.acme, world.zeta_owner, "admin")
    target = folder_of(world, "zeta") + "logo.png"
    assert as_user(conn, world.zeta_owner).count(MOVE, (target, "company-logos", name)) == 1
    assert exists(conn, "company-logos", target)
