"""GoTrue's tables in the embedded shape (rpc/local/sql/auth.sql): columns, constraints and indexes as GoTrue's
newest migrations leave them, owners and grants as supabase/postgres gives them, what the auth server's role
may do, how bootstrap() brings older clusters there, and the seed's demo users as GoTrue would have written
them.

The expected shapes below are transcribed from supabase/auth's migrations/ (the final state of each column
after every `alter`), not read back from our own SQL.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any, LiteralString

import bcrypt
import psycopg
import pytest
from psycopg import sql
from psycopg.types.json import Jsonb

from rpc.local.embedded import BOOTSTRAP_FILE, STORAGE_FILE, SUPERUSER, bootstrap, recreate_database
from rpc.platform.migrations import Runner, execute_file
from tests.conftest import Database, clone_database, cluster_dsn, drop_database, value_in
from tests.support import Actor, make_user, value

INSUFFICIENT_PRIVILEGE = "42501"
DEMO_PASSWORD = b"talentbase-demo"  # supabase/seed.sql
DEMO_USERS = 11
TABLES = ("auth.users", "auth.identities", "auth.sessions", "auth.refresh_tokens", "auth.mfa_amr_claims")
NEW_TABLES = TABLES[1:]
API_ROLES = ("anon", "authenticated", "service_role")

TZ = "timestamp with time zone"
VARCHAR = "character varying(255)"
EMPTY_VARCHAR = "''::character varying"

COLUMNS: LiteralString = """
select a.attname::text, format_type(a.atttypid, a.atttypmod), a.attnotnull,
       pg_get_expr(d.adbin, d.adrelid), a.attgenerated::text
from pg_attribute a
left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
where a.attrelid = %s::regclass and a.attnum > 0 and not a.attisdropped
order by a.attnum
"""

# auth.users after every GoTrue migration (order aside: bootstrap.sql's columns come first here).
USER_COLUMNS = {
    "instance_id": ("uuid", False, None, ""),
    "id": ("uuid", True, None, ""),
    "aud": (VARCHAR, False, None, ""),
    "role": (VARCHAR, False, None, ""),
    "email": (VARCHAR, False, None, ""),
    "encrypted_password": (VARCHAR, False, None, ""),
    "email_confirmed_at": (TZ, False, None, ""),
    "invited_at": (TZ, False, None, ""),
    "confirmation_token": (VARCHAR, False, None, ""),
    "confirmation_sent_at": (TZ, False, None, ""),
    "recovery_token": (VARCHAR, False, None, ""),
    "recovery_sent_at": (TZ, False, None, ""),
    "email_change_token_new": (VARCHAR, False, None, ""),
    "email_change": (VARCHAR, False, None, ""),
    "email_change_sent_at": (TZ, False, None, ""),
    "last_sign_in_at": (TZ, False, None, ""),
    "raw_app_meta_data": ("jsonb", False, None, ""),
    "raw_user_meta_data": ("jsonb", False, None, ""),
    "is_super_admin": ("boolean", False, None, ""),
    "created_at": (TZ, False, None, ""),
    "updated_at": (TZ, False, None, ""),
    "phone": ("text", False, None, ""),
    "phone_confirmed_at": (TZ, False, None, ""),
    "phone_change": ("text", False, "''::text", ""),
    "phone_change_token": (VARCHAR, False, EMPTY_VARCHAR, ""),
    "phone_change_sent_at": (TZ, False, None, ""),
    "confirmed_at": (TZ, False, "LEAST(email_confirmed_at, phone_confirmed_at)", "s"),
    "email_change_token_current": (VARCHAR, False, EMPTY_VARCHAR, ""),
    "email_change_confirm_status": ("smallint", False, "0", ""),
    "banned_until": (TZ, False, None, ""),
    "reauthentication_token": (VARCHAR, False, EMPTY_VARCHAR, ""),
    "reauthentication_sent_at": (TZ, False, None, ""),
    "is_sso_user": ("boolean", True, "false", ""),
    "deleted_at": (TZ, False, None, ""),
    "is_anonymous": ("boolean", True, "false", ""),
}
IDENTITY_COLUMNS = [
    ("provider_id", "text", True, None, ""),
    ("user_id", "uuid", True, None, ""),
    ("identity_data", "jsonb", True, None, ""),
    ("provider", "text", True, None, ""),
    ("last_sign_in_at", TZ, False, None, ""),
    ("created_at", TZ, False, None, ""),
    ("updated_at", TZ, False, None, ""),
    ("email", "text", False, "lower((identity_data ->> 'email'::text))", "s"),
    ("id", "uuid", True, "gen_random_uuid()", ""),
]
SESSION_COLUMNS = [
    ("id", "uuid", True, None, ""),
    ("user_id", "uuid", True, None, ""),
    ("created_at", TZ, False, None, ""),
    ("updated_at", TZ, False, None, ""),
    ("factor_id", "uuid", False, None, ""),
    ("aal", "auth.aal_level", False, None, ""),
    ("not_after", TZ, False, None, ""),
    ("refreshed_at", "timestamp without time zone", False, None, ""),
    ("user_agent", "text", False, None, ""),
    ("ip", "inet", False, None, ""),
    ("tag", "text", False, None, ""),
    ("oauth_client_id", "uuid", False, None, ""),
    ("refresh_token_hmac_key", "text", False, None, ""),
    ("refresh_token_counter", "bigint", False, None, ""),
    ("scopes", "text", False, None, ""),
]
REFRESH_TOKEN_COLUMNS = [
    ("instance_id", "uuid", False, None, ""),
    ("id", "bigint", True, "nextval('auth.refresh_tokens_id_seq'::regclass)", ""),
    ("token", VARCHAR, False, None, ""),
    ("user_id", VARCHAR, False, None, ""),
    ("revoked", "boolean", False, None, ""),
    ("created_at", TZ, False, None, ""),
    ("updated_at", TZ, False, None, ""),
    ("parent", VARCHAR, False, None, ""),
    ("session_id", "uuid", False, None, ""),
]
AMR_COLUMNS = [
    ("session_id", "uuid", True, None, ""),
    ("created_at", TZ, True, None, ""),
    ("updated_at", TZ, True, None, ""),
    ("authentication_method", "text", True, None, ""),
    ("id", "uuid", True, None, ""),
]

CONSTRAINTS: LiteralString = """
select conrelid::regclass::text, conname::text, pg_get_constraintdef(oid) from pg_constraint
where conrelid = any(%s::regclass[]) and contype <> 'n' order by 1, 2
"""
EXPECTED_CONSTRAINTS = [
    ("auth.identities", "identities_pkey", "PRIMARY KEY (id)"),
    ("auth.identities", "identities_provider_id_provider_unique", "UNIQUE (provider_id, provider)"),
    (
        "auth.identities",
        "identities_user_id_fkey",
        "FOREIGN KEY (user_id) REFERENCES auth.users(id) ON DELETE CASCADE",
    ),
    ("auth.mfa_amr_claims", "amr_id_pk", "PRIMARY KEY (id)"),
    (
        "auth.mfa_amr_claims",
        "mfa_amr_claims_session_id_authentication_method_pkey",
        "UNIQUE (session_id, authentication_method)",
    ),
    (
        "auth.mfa_amr_claims",
        "mfa_amr_claims_session_id_fkey",
        "FOREIGN KEY (session_id) REFERENCES auth.sessions(id) ON DELETE CASCADE",
    ),
    ("auth.refresh_tokens", "refresh_tokens_pkey", "PRIMARY KEY (id)"),
    (
        "auth.refresh_tokens",
        "refresh_tokens_session_id_fkey",
        "FOREIGN KEY (session_id) REFERENCES auth.sessions(id) ON DELETE CASCADE",
    ),
    ("auth.refresh_tokens", "refresh_tokens_token_unique", "UNIQUE (token)"),
    ("auth.sessions", "sessions_pkey", "PRIMARY KEY (id)"),
    ("auth.sessions", "sessions_scopes_length", "CHECK ((char_length(scopes) <= 4096))"),
    (
        "auth.sessions",
        "sessions_user_id_fkey",
        "FOREIGN KEY (user_id) REFERENCES auth.users(id) ON DELETE CASCADE",
    ),
    (
        "auth.users",
        "users_email_change_confirm_status_check",
        "CHECK (((email_change_confirm_status >= 0) AND (email_change_confirm_status <= 2)))",
    ),
    ("auth.users", "users_phone_key", "UNIQUE (phone)"),
    ("auth.users", "users_pkey", "PRIMARY KEY (id)"),
]

INDEXES: LiteralString = """
select indexrelid::regclass::text, pg_get_indexdef(indexrelid) from pg_index
where indrelid = any(%s::regclass[]) order by 1
"""


def btree(name: str, table: str, columns: str, where: str = "", unique: bool = False) -> tuple[str, str]:
    kind = "UNIQUE INDEX" if unique else "INDEX"
    return f"auth.{name}", f"CREATE {kind} {name} ON auth.{table} USING btree ({columns}){where}"


def token_index(column: str) -> tuple[str, str]:
    return btree(f"{column}_idx", "users", column, f" WHERE (({column})::text !~ '^[0-9 ]*$'::text)", True)


EXPECTED_INDEXES = sorted(
    [
        token_index("confirmation_token"),
        token_index("email_change_token_current"),
        token_index("email_change_token_new"),
        btree("identities_email_idx", "identities", "email text_pattern_ops"),
        btree("identities_pkey", "identities", "id", unique=True),
        btree("identities_provider_id_provider_unique", "identities", "provider_id, provider", unique=True),
        btree("identities_user_id_idx", "identities", "user_id"),
        btree("amr_id_pk", "mfa_amr_claims", "id", unique=True),
        btree(
            "mfa_amr_claims_session_id_authentication_method_pkey",
            "mfa_amr_claims",
            "session_id, authentication_method",
            unique=True,
        ),
        token_index("reauthentication_token"),
        token_index("recovery_token"),
        btree("refresh_tokens_instance_id_idx", "refresh_tokens", "instance_id"),
        btree("refresh_tokens_instance_id_user_id_idx", "refresh_tokens", "instance_id, user_id"),
        btree("refresh_tokens_parent_idx", "refresh_tokens", "parent"),
        btree("refresh_tokens_pkey", "refresh_tokens", "id", unique=True),
        btree("refresh_tokens_session_id_revoked_idx", "refresh_tokens", "session_id, revoked"),
        btree("refresh_tokens_token_unique", "refresh_tokens", "token", unique=True),
        btree("refresh_tokens_updated_at_idx", "refresh_tokens", "updated_at DESC"),
        btree("sessions_not_after_idx", "sessions", "not_after DESC"),
        btree("sessions_oauth_client_id_idx", "sessions", "oauth_client_id"),
        btree("sessions_pkey", "sessions", "id", unique=True),
        btree("sessions_user_id_idx", "sessions", "user_id"),
        btree("user_id_created_at_idx", "sessions", "user_id, created_at"),
        btree("users_email_partial_key", "users", "email", " WHERE (is_sso_user = false)", True),
        btree("users_instance_id_email_idx", "users", "instance_id, lower((email)::text)"),
        btree("users_instance_id_idx", "users", "instance_id"),
        btree("users_is_anonymous_idx", "users", "is_anonymous"),
        btree("users_phone_key", "users", "phone", unique=True),
        btree("users_pkey", "users", "id", unique=True),
    ]
)

GRANTS: LiteralString = """
select c.oid::regclass::text, a.grantee::regrole::text, a.privilege_type::text, a.is_grantable
from pg_class c, aclexplode(c.relacl) a
where c.oid = any(%s::regclass[]) order by 1, 2, 3
"""
ALL = ("DELETE", "INSERT", "REFERENCES", "SELECT", "TRIGGER", "TRUNCATE", "UPDATE")
SEQUENCE_ALL = ("SELECT", "UPDATE", "USAGE")


def columns(conn: psycopg.Connection, table: str) -> list[tuple[Any, ...]]:
    return conn.execute(COLUMNS, (table,)).fetchall()


# The shape ---------------------------------------------------------------------------------------------


def test_users_have_every_gotrue_column(conn: psycopg.Connection) -> None:
    found = {name: rest for name, *rest in columns(conn, "auth.users")}
    assert found == {name: list(shape) for name, shape in USER_COLUMNS.items()}


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        ("auth.identities", IDENTITY_COLUMNS),
        ("auth.sessions", SESSION_COLUMNS),
        ("auth.refresh_tokens", REFRESH_TOKEN_COLUMNS),
        ("auth.mfa_amr_claims", AMR_COLUMNS),
    ],
)
def test_tables_have_gotrue_columns(conn: psycopg.Connection, table: str, expected: list[tuple]) -> None:
    assert [tuple(row) for row in columns(conn, table)] == expected


def test_aal_level_is_gotrue_enum(conn: psycopg.Connection) -> None:
    labels = value(conn, "select enum_range(null::auth.aal_level)::text[]")
    assert labels == ["aal1", "aal2", "aal3"]
    assert value(
        conn, "select typowner::regrole::text from pg_type where oid = 'auth.aal_level'::regtype"
    ) == ("supabase_auth_admin")


def test_constraints_and_indexes_are_gotrue_s(conn: psycopg.Connection) -> None:
    assert conn.execute(CONSTRAINTS, (list(TABLES),)).fetchall() == EXPECTED_CONSTRAINTS
    assert conn.execute(INDEXES, (list(TABLES),)).fetchall() == EXPECTED_INDEXES


def test_owned_by_auth_admin_with_rls_and_no_policy(conn: psycopg.Connection) -> None:
    rows = conn.execute(
        "select oid::regclass::text, relowner::regrole::text, relrowsecurity, relforcerowsecurity"
        " from pg_class where oid = any(%s::regclass[]) order by 1",
        ([*TABLES, "auth.refresh_tokens_id_seq"],),
    ).fetchall()
    assert rows == sorted(
        (name, "supabase_auth_admin", name != "auth.refresh_tokens_id_seq", False)
        for name in [*TABLES, "auth.refresh_tokens_id_seq"]
    )
    assert (
        value(conn, "select count(*) from pg_policy where polrelid = any(%s::regclass[])", (list(TABLES),))
        == 0
    )


def test_grants_are_supabase_s(conn: psycopg.Connection) -> None:
    grants = conn.execute(GRANTS, (list(NEW_TABLES),)).fetchall()
    expected = []
    for table in NEW_TABLES:
        for role in ("dashboard_user", "postgres", "supabase_auth_admin"):
            # postgres may pass select on (GoTrue's 20240612 migration).
            expected += [(table, role, p, (role, p) == ("postgres", "SELECT")) for p in ALL]
    assert grants == sorted(expected)
    users = conn.execute(GRANTS, (["auth.users"],)).fetchall()
    assert ("auth.users", "postgres", "SELECT", True) in users
    sequence = conn.execute(GRANTS, (["auth.refresh_tokens_id_seq"],)).fetchall()
    assert {(role, p) for _, role, p, _ in sequence} == {
        (role, p) for role in ("dashboard_user", "postgres", "supabase_auth_admin") for p in SEQUENCE_ALL
    }
    assert not {row[1] for row in [*grants, *users, *sequence]} & set(API_ROLES)


@pytest.mark.parametrize("role", API_ROLES)
@pytest.mark.parametrize("table", TABLES)
def test_api_roles_cannot_read(conn: psycopg.Connection, role: str, table: str) -> None:
    actor = Actor(conn, role, {"role": role})
    query = sql.SQL("select * from {} limit 1").format(sql.Identifier(*table.split(".")))
    actor.refused(query, sqlstate=INSUFFICIENT_PRIVILEGE)  # type: ignore[arg-type]


def test_auth_admin_searches_auth(database: Database) -> None:
    with psycopg.connect(cluster_dsn(database.name, "supabase_auth_admin", "postgres")) as auth:
        assert value(auth, "show search_path") == "auth"


# Deleting a user ---------------------------------------------------------------------------------------


def add_session(conn: psycopg.Connection, user_id: str) -> str:
    """An email identity, a session with a refresh token rotated once, and its AMR claim, as GoTrue writes
    them at sign-in."""
    session = str(uuid.uuid4())
    conn.execute(
        "insert into auth.identities (provider_id, user_id, identity_data, provider, last_sign_in_at,"
        " created_at, updated_at) values (%s, %s, %s, 'email', now(), now(), now())",
        (user_id, user_id, Jsonb({"sub": user_id, "email": "X@Example.com"})),
    )
    conn.execute(
        "insert into auth.sessions (id, user_id, created_at, updated_at, aal, ip, user_agent)"
        " values (%s, %s, now(), now(), 'aal1', '127.0.0.1', 'pytest')",
        (session, user_id),
    )
    conn.execute(
        "insert into auth.refresh_tokens (instance_id, token, user_id, revoked, created_at, updated_at,"
        " parent, session_id) values (%s, 'first', %s, true, now(), now(), null, %s),"
        " (%s, 'second', %s, false, now(), now(), 'first', %s)",
        (uuid.UUID(int=0), user_id, session) * 2,
    )
    conn.execute(
        "insert into auth.mfa_amr_claims (id, session_id, created_at, updated_at, authentication_method)"
        " values (gen_random_uuid(), %s, now(), now(), 'password')",
        (session,),
    )
    return session


def remaining(conn: psycopg.Connection, user_id: str, session: str) -> list[int]:
    return [
        value(conn, "select count(*) from auth.identities where user_id = %s", (user_id,)),
        value(conn, "select count(*) from auth.sessions where user_id = %s", (user_id,)),
        value(conn, "select count(*) from auth.refresh_tokens where session_id = %s", (session,)),
        value(conn, "select count(*) from auth.mfa_amr_claims where session_id = %s", (session,)),
    ]


def test_make_user_gets_gotrue_defaults_and_deleting_it_cascades(conn: psycopg.Connection) -> None:
    user = make_user(conn)
    tokens = conn.execute(
        "select phone_change, phone_change_token, email_change_token_current, reauthentication_token,"
        " email_change_confirm_status from auth.users where id = %s",
        (user.id,),
    ).fetchone()
    assert tokens == ("", "", "", "", 0)
    session = add_session(conn, user.id)
    assert value(conn, "select email from auth.identities where user_id = %s", (user.id,)) == "x@example.com"
    assert remaining(conn, user.id, session) == [1, 1, 2, 1]
    conn.execute("delete from auth.users where id = %s", (user.id,))
    assert remaining(conn, user.id, session) == [0, 0, 0, 0]


def test_one_identity_per_provider_id_and_one_account_per_email(conn: psycopg.Connection) -> None:
    user = make_user(conn)
    add_session(conn, user.id)
    with pytest.raises(psycopg.errors.UniqueViolation), conn.transaction():
        conn.execute(
            "insert into auth.identities (provider_id, user_id, identity_data, provider)"
            " values (%s, %s, '{}', 'email')",
            (user.id, user.id),
        )
    with pytest.raises(psycopg.errors.UniqueViolation), conn.transaction():
        make_user(conn, email=user.email)


# The seed ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def seeded() -> Iterator[Database]:
    """This module's own clone of the template, seeded as `make run` seeds a new cluster."""
    db = clone_database(f"tb_seed_{uuid.uuid4().hex[:10]}")
    Runner(db.admin).seed()
    yield db
    drop_database(db.name)


def test_demo_users_sign_in_with_the_documented_password(seeded: Database) -> None:
    with psycopg.connect(seeded.superuser) as conn:
        users = conn.execute(
            "select id, encrypted_password, confirmation_token, recovery_token, email_change_token_new,"
            " email_change, phone_change, phone_change_token, email_change_token_current,"
            " reauthentication_token from auth.users order by id"
        ).fetchall()
    assert len(users) == DEMO_USERS
    for _, hashed, *tokens in users:
        assert hashed.startswith("$2a$10$")  # GoTrue's bcrypt format and cost
        assert bcrypt.checkpw(DEMO_PASSWORD, hashed.encode())
        assert tokens == [""] * 8


def test_demo_users_have_one_email_identity_each(seeded: Database) -> None:
    with psycopg.connect(seeded.superuser) as conn:
        rows = conn.execute(
            "select u.id, u.email, i.provider_id, i.provider, i.identity_data, i.email"
            " from auth.users u join auth.identities i on i.user_id = u.id order by u.id"
        ).fetchall()
    assert len(rows) == DEMO_USERS
    for user_id, email, provider_id, provider, data, identity_email in rows:
        assert (provider_id, provider, identity_email) == (str(user_id), "email", email)
        assert data == {"sub": str(user_id), "email": email, "email_verified": True, "phone_verified": False}


def test_seeding_again_changes_nothing(seeded: Database) -> None:
    def auth_rows() -> list[tuple[Any, ...]]:
        with psycopg.connect(seeded.superuser) as conn:
            return [
                *conn.execute("select * from auth.users order by id").fetchall(),
                *conn.execute("select * from auth.identities order by id").fetchall(),
            ]

    before = auth_rows()
    Runner(seeded.admin).seed()
    assert auth_rows() == before


def test_auth_admin_does_what_the_server_does(seeded: Database) -> None:
    # Logged in as GoTrue is (its search_path finds `users`): sign-up, sign-in, the hook, rotation,
    # sign-out, deletion.
    alice = "00000000-0000-4000-8000-000000000002"  # an executive in the seed
    user_id = str(uuid.uuid4())
    with psycopg.connect(cluster_dsn(seeded.name, "supabase_auth_admin", "postgres")) as auth:
        hashed = value(auth, "select encrypted_password from users where id = %s", (alice,))
        assert bcrypt.checkpw(DEMO_PASSWORD, hashed.encode())
        auth.execute(
            "insert into users (instance_id, id, aud, role, email, encrypted_password, email_confirmed_at,"
            " confirmation_token, recovery_token, email_change_token_new, email_change, raw_app_meta_data,"
            " raw_user_meta_data, created_at, updated_at)"
            " values (%s, %s, 'authenticated', 'authenticated', 'new@example.com', %s, now(), '', '', '', '',"
            " %s, %s, now(), now())",
            (
                uuid.UUID(int=0),
                user_id,
                bcrypt.hashpw(b"another secret", bcrypt.gensalt(10)).decode(),
                Jsonb({"provider": "email", "providers": ["email"]}),
                Jsonb({"full_name": "New Person"}),
            ),
        )
        session = add_session(auth, user_id)
        auth.execute("update users set last_sign_in_at = now() where id = %s", (user_id,))
        auth.execute("update refresh_tokens set revoked = true where token = 'second'")
        auth.execute("update sessions set refreshed_at = now(), not_after = now() where id = %s", (session,))
        event = {
            "user_id": alice,
            "claims": {"sub": alice, "role": "authenticated"},
            "authentication_method": "password",
        }
        hooked = value(auth, "select public.custom_access_token_hook(%s)", (Jsonb(event),))
        assert hooked["claims"]["user_roles"] == ["executive"]
        assert value(auth, "select count(*) from refresh_tokens where session_id = %s", (session,)) == 2
        auth.execute("delete from sessions where id = %s and user_id = %s", (session, user_id))
        assert remaining(auth, user_id, session) == [1, 0, 0, 0]
        auth.execute("delete from users where id = %s", (user_id,))
        assert remaining(auth, user_id, session) == [0, 0, 0, 0]
        auth.rollback()
    with psycopg.connect(seeded.superuser) as conn:
        assert value(conn, "select count(*) from auth.users") == DEMO_USERS


def test_sign_up_as_auth_admin_creates_the_profile(seeded: Database) -> None:
    user_id = str(uuid.uuid4())
    auth_admin = cluster_dsn(seeded.name, "supabase_auth_admin", "postgres")
    with psycopg.connect(auth_admin, autocommit=True) as auth:
        auth.execute(
            "insert into users (id, aud, role, email, raw_user_meta_data, created_at, updated_at)"
            " values (%s, 'authenticated', 'authenticated', 'profiled@example.com', %s, now(), now())",
            (user_id, Jsonb({"full_name": "Pro Filed"})),
        )
    try:
        with psycopg.connect(seeded.superuser) as conn:
            assert (
                value(conn, "select full_name from public.profiles where id = %s", (user_id,)) == "Pro Filed"
            )
    finally:
        with psycopg.connect(auth_admin, autocommit=True) as auth:
            auth.execute("delete from users where id = %s", (user_id,))
    with psycopg.connect(seeded.superuser) as conn:
        assert value(conn, "select count(*) from public.profiles where id = %s", (user_id,)) == 0


# bootstrap() -------------------------------------------------------------------------------------------

SHAPE: dict[str, LiteralString] = {
    "columns": "select attrelid::regclass::text, attname::text, format_type(atttypid, atttypmod), attnotnull,"
    " attgenerated::text from pg_attribute where attrelid = any(%(tables)s::regclass[]) and attnum > 0"
    " and not attisdropped order by 1, 2",
    "defaults": "select adrelid::regclass::text, adnum, pg_get_expr(adbin, adrelid) from pg_attrdef"
    " where adrelid = any(%(tables)s::regclass[]) order by 1, 2",
    "constraints": "select conrelid::regclass::text, conname::text, pg_get_constraintdef(oid) from pg_constraint"
    " where conrelid = any(%(tables)s::regclass[]) order by 1, 2",
    "indexes": "select indexrelid::regclass::text, pg_get_indexdef(indexrelid) from pg_index"
    " where indrelid = any(%(tables)s::regclass[]) order by 1",
    "classes": "select oid::regclass::text, relowner::regrole::text, relacl::text, relrowsecurity from pg_class"
    " where relnamespace = 'auth'::regnamespace order by 1",
    "types": "select typname::text, typowner::regrole::text from pg_type"
    " where typnamespace = 'auth'::regnamespace and typtype = 'e' order by 1",
    "comments": "select objoid::regclass::text, objsubid, description from pg_description"
    " where objoid = any(%(tables)s::regclass[]) order by 1, 2",
    "role": "select setconfig::text from pg_db_role_setting where setrole = 'supabase_auth_admin'::regrole",
}


def shape(name: str) -> dict[str, list[tuple[Any, ...]]]:
    with psycopg.connect(cluster_dsn(name)) as conn:
        tables = [table for table in TABLES if value(conn, "select to_regclass(%s)", (table,)) is not None]
        return {what: conn.execute(query, {"tables": tables}).fetchall() for what, query in SHAPE.items()}


def test_bootstrap_twice_changes_nothing(fresh_database: str) -> None:
    before = shape(fresh_database)
    assert len(before["columns"]) == len(USER_COLUMNS) + len(IDENTITY_COLUMNS) + len(SESSION_COLUMNS) + len(
        REFRESH_TOKEN_COLUMNS
    ) + len(AMR_COLUMNS)
    assert bootstrap(cluster_dsn(fresh_database)) is False
    assert shape(fresh_database) == before


def test_a_cluster_shaped_before_gets_gotrue_s_tables_on_its_next_start(fresh_database: str) -> None:
    expected = shape(fresh_database)
    # As a developer's cluster shaped before auth.sql existed: bootstrap.sql's auth.users only, with a
    # user the older seed wrote (no password, NULL tokens).
    older = f"tb_auth_{uuid.uuid4().hex[:10]}"
    recreate_database(cluster_dsn(), older)
    try:
        with psycopg.connect(cluster_dsn(older)) as conn:
            execute_file(conn, BOOTSTRAP_FILE)
            execute_file(conn, STORAGE_FILE)
            conn.execute(
                "insert into auth.users (id, aud, role, email, created_at, updated_at)"
                " values (%s, 'authenticated', 'authenticated', 'old@example.com', now(), now())",
                (uuid.UUID(int=1),),
            )
            conn.commit()
        assert value_in(older, "select to_regclass('auth.sessions')") is None
        assert bootstrap(cluster_dsn(older)) is True
        assert shape(older) == expected
        assert value_in(
            older,
            "select array[phone_change, phone_change_token, email_change_token_current,"
            " reauthentication_token, coalesce(confirmation_token, 'null')] from auth.users",
        ) == ["", "", "", "", "null"]
        assert bootstrap(cluster_dsn(older)) is False
    finally:
        drop_database(older)


def test_a_database_we_did_not_shape_gets_no_auth_tables() -> None:
    # Its auth schema lacks the local stack's mark: as a real Supabase database, it is not ours to change.
    name = f"tb_auth_{uuid.uuid4().hex[:10]}"
    recreate_database(cluster_dsn(), name, owner=SUPERUSER)
    try:
        with psycopg.connect(cluster_dsn(name), autocommit=True) as conn:
            conn.execute("create schema auth")
            conn.execute("create table auth.users (id uuid primary key)")
        assert bootstrap(cluster_dsn(name)) is False
        assert value_in(name, "select to_regclass('auth.sessions')") is None
        assert [row[0] for row in shape(name)["columns"]] == ["auth.users"]
    finally:
        drop_database(name)
