"""Identity and companies, tested as an attacker would: the RLS matrix of profiles, user_roles, companies
and company_members, the policy helpers and the custom access token hook.

Every statement runs through a `tests.support` actor (role and claims set locally, as PostgREST sets
them) inside the test's one rolled-back transaction. Refusals come in two shapes: a missing grant or a
failed `with check` is an error (42501), while a row that a `using` clause hides is simply not touched
(0 rows), so those tests also read the row back as the superuser to show it did not change.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, LiteralString

import psycopg
import pytest
from psycopg import sql
from psycopg.types.json import Jsonb

from rpc.local.embedded import bootstrap, recreate_database
from rpc.platform.migrations import Runner
from rpc.platform.settings import with_database, with_login
from tests.conftest import Database
from tests.support import (
    Actor,
    Company,
    User,
    actor,
    add_member,
    as_anon,
    as_service,
    as_user,
    company_name,
    make_company,
    make_user,
    member_role,
    platform_roles,
    profile_name,
    value,
)

COMPANY_ROLES = ("owner", "admin", "recruiter", "interviewer")
INSUFFICIENT_PRIVILEGE = "42501"  # a missing grant, or a row failing a policy's `with check`
CHECK_VIOLATION = "23514"


@dataclass(frozen=True)
class World:
    me: User  # a signed-in user with one platform role, the "self" of profile and role tests
    stranger: User  # signed in, no roles, member of nothing
    owner: User  # the four company roles at Acme
    admin: User
    recruiter: User
    interviewer: User
    platform_admin: User
    zeta_owner: User  # owns Zeta, a company none of the above belong to
    acme: Company
    zeta: Company


@pytest.fixture
def world(conn: psycopg.Connection) -> World:
    owner = make_user(conn, full_name="Olive Owner", roles=("employer",))
    acme = make_company(conn, owner, name="Acme")
    members = {}
    for role in ("admin", "recruiter", "interviewer"):
        members[role] = make_user(conn, full_name=f"Acme {role.title()}")
        add_member(conn, acme, members[role], role)
    zeta_owner = make_user(conn, full_name="Zed Zeta")
    return World(
        me=make_user(conn, full_name="Me Myself", roles=("job_seeker",)),
        stranger=make_user(conn, full_name="Sam Stranger"),
        owner=owner,
        admin=members["admin"],
        recruiter=members["recruiter"],
        interviewer=members["interviewer"],
        platform_admin=make_user(conn, full_name="Pat Platform", roles=("admin",)),
        zeta_owner=zeta_owner,
        acme=acme,
        zeta=make_company(conn, zeta_owner, name="Zeta"),
    )


def as_auth_server(conn: psycopg.Connection) -> Actor:
    """Supabase Auth's own role, which runs the custom access token hook (`set local role`, as GoTrue)."""
    return Actor(conn, "supabase_auth_admin", {})


# Anonymous visitors: no grant on any of these tables, so every action is an error ------------------

ANON_STATEMENTS = [
    pytest.param("select * from public.profiles", id="profiles-select"),
    pytest.param("insert into public.profiles (id) values (gen_random_uuid())", id="profiles-insert"),
    pytest.param("update public.profiles set full_name = 'x'", id="profiles-update"),
    pytest.param("delete from public.profiles", id="profiles-delete"),
    pytest.param("select * from public.user_roles", id="user_roles-select"),
    pytest.param(
        "insert into public.user_roles (user_id, role) select id, 'admin' from auth.users limit 1",
        id="user_roles-insert",
    ),
    pytest.param("update public.user_roles set role = 'admin'", id="user_roles-update"),
    pytest.param("delete from public.user_roles", id="user_roles-delete"),
    pytest.param("select * from public.companies", id="companies-select"),
    pytest.param(
        "insert into public.companies (name) values ('Anon Inc') returning *", id="companies-insert"
    ),
    pytest.param("update public.companies set name = 'x'", id="companies-update"),
    pytest.param("delete from public.companies", id="companies-delete"),
    pytest.param("select * from public.company_members", id="company_members-select"),
    pytest.param(
        "insert into public.company_members (company_id, user_id, role)"
        " select id, gen_random_uuid(), 'owner' from public.companies limit 1",
        id="company_members-insert",
    ),
    pytest.param("update public.company_members set role = 'owner'", id="company_members-update"),
    pytest.param("delete from public.company_members", id="company_members-delete"),
    pytest.param("select private.has_role('admin')", id="has_role"),
    pytest.param("select private.is_company_member(gen_random_uuid())", id="is_company_member"),
    pytest.param(
        'select public.custom_access_token_hook(\'{"user_id": "00000000-0000-0000-0000-000000000000"}\')',
        id="custom_access_token_hook",
    ),
    pytest.param("select * from public.whoami()", id="whoami"),
]


@pytest.mark.parametrize("statement", ANON_STATEMENTS)
def test_anon_is_refused_everything(conn, world, statement):
    as_anon(conn).refused(statement, sqlstate=INSUFFICIENT_PRIVILEGE)


# profiles ---------------------------------------------------------------------------------------------


def test_profiles_are_created_from_sign_up_metadata(conn):
    email_sign_up = make_user(
        conn, full_name="Ada Lovelace", meta={"avatar_url": "https://example.com/ada.png"}
    )
    oauth = make_user(
        conn, full_name=None, meta={"name": "Grace Hopper", "avatar_url": "https://e.com/g.png"}
    )
    both = make_user(conn, full_name="Full Name Wins", meta={"name": "Provider Name"})
    bare = make_user(conn, full_name=None)
    long = make_user(conn, full_name="x" * 500, meta={"avatar_url": "https://e.com/" + "a" * 3000})
    profiles = {
        str(row["id"]): (row["full_name"], row["avatar_url"])
        for row in as_service(conn).rows("select id, full_name, avatar_url from public.profiles")
    }
    assert profiles[email_sign_up.id] == ("Ada Lovelace", "https://example.com/ada.png")
    assert profiles[oauth.id] == ("Grace Hopper", "https://e.com/g.png")
    assert profiles[both.id] == ("Full Name Wins", None)
    assert profiles[bare.id] == (None, None)
    # Too long is truncated to the columns' limits, never a failed sign-up.
    assert profiles[long.id][0] == "x" * 200
    assert len(profiles[long.id][1]) == 2048


def test_profiles_are_created_for_a_user_without_metadata(conn):
    user_id = value(conn, "insert into auth.users (id) values (gen_random_uuid()) returning id::text")
    assert value(
        conn, "select full_name is null and avatar_url is null from public.profiles where id = %s", (user_id,)
    )


@pytest.mark.parametrize("who", ["me", "stranger", "owner", "platform_admin", "service"])
def test_profiles_every_signed_in_user_reads_every_name(conn, world, who):
    rows = actor(conn, world, who).rows(
        "select id::text, full_name from public.profiles where id = any(%s::uuid[])",
        ([world.me.id, world.stranger.id, world.zeta_owner.id],),
    )
    assert {row["id"]: row["full_name"] for row in rows} == {
        world.me.id: "Me Myself",
        world.stranger.id: "Sam Stranger",
        world.zeta_owner.id: "Zed Zeta",
    }


def test_profiles_the_owner_edits_their_name_and_avatar(conn, world):
    me = as_user(conn, world.me)
    row = me.one(
        "update public.profiles set full_name = 'New Me', avatar_url = 'https://e.com/me.png' where id = %s"
        " returning full_name, avatar_url",
        (world.me.id,),
    )
    assert row == {"full_name": "New Me", "avatar_url": "https://e.com/me.png"}
    # Without a where clause the policy still limits the update to the caller's own row.
    assert me.count("update public.profiles set full_name = 'Everyone'") == 1
    assert profile_name(conn, world.stranger) == "Sam Stranger"


@pytest.mark.parametrize("who", ["stranger", "owner", "platform_admin"])
def test_profiles_nobody_else_edits_a_profile(conn, world, who):
    hacker = actor(conn, world, who)
    assert hacker.count("update public.profiles set full_name = 'Hacked' where id = %s", (world.me.id,)) == 0
    assert profile_name(conn, world.me) == "Me Myself"


@pytest.mark.parametrize(
    "statement",
    [
        pytest.param("update public.profiles set id = gen_random_uuid() where id = %s", id="id"),
        pytest.param("update public.profiles set created_at = '2000-01-01' where id = %s", id="created_at"),
        pytest.param("update public.profiles set updated_at = '2000-01-01' where id = %s", id="updated_at"),
    ],
)
def test_profiles_id_and_timestamps_are_not_updatable(conn, world, statement):
    as_user(conn, world.me).refused(statement, (world.me.id,), sqlstate=INSUFFICIENT_PRIVILEGE)


def test_profiles_name_length_is_checked(conn, world):
    as_user(conn, world.me).refused(
        "update public.profiles set full_name = repeat('x', 201) where id = %s",
        (world.me.id,),
        sqlstate=CHECK_VIOLATION,
    )


@pytest.mark.parametrize(
    "statement",
    [
        pytest.param("insert into public.profiles (id) values (%s)", id="insert"),
        pytest.param("insert into public.profiles (id) values (%s) returning *", id="insert-returning"),
        pytest.param("delete from public.profiles where id = %s", id="delete"),
    ],
)
@pytest.mark.parametrize("who", ["me", "platform_admin"])
def test_profiles_no_insert_or_delete_for_signed_in_users(conn, world, who, statement):
    actor(conn, world, who).refused(statement, (getattr(world, who).id,), sqlstate=INSUFFICIENT_PRIVILEGE)


def test_profiles_updated_at_is_the_databases(conn, world):
    service = as_service(conn)
    row = service.one(
        "update public.profiles set updated_at = '2000-01-01' where id = %s returning updated_at = now() as fresh",
        (world.me.id,),
    )
    assert row["fresh"]


# user_roles -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("who", "expected"),
    [("me", [("me", "job_seeker")]), ("stranger", []), ("owner", [("owner", "employer")])],
)
def test_user_roles_users_read_only_their_own(conn, world, who, expected):
    rows = actor(conn, world, who).rows("select user_id::text, role::text from public.user_roles")
    assert [(row["user_id"], row["role"]) for row in rows] == [(getattr(world, u).id, r) for u, r in expected]


@pytest.mark.parametrize("who", ["platform_admin", "service"])
def test_user_roles_admins_and_the_service_read_all(conn, world, who):
    rows = actor(conn, world, who).rows("select user_id::text, role::text from public.user_roles")
    assert {
        (world.me.id, "job_seeker"),
        (world.owner.id, "employer"),
        (world.platform_admin.id, "admin"),
    } <= {(row["user_id"], row["role"]) for row in rows}


@pytest.mark.parametrize(
    ("target", "role"),
    [("me", "admin"), ("me", "employer"), ("stranger", "coach")],
    ids=["self-admin", "self-employer", "someone-else"],
)
@pytest.mark.parametrize("who", ["me", "owner"])
def test_user_roles_a_user_cannot_grant_roles(conn, world, who, target, role):
    # Even naming a real admin as the granter does not help.
    user = actor(conn, world, who)
    for granted_by in (None, getattr(world, who).id, world.platform_admin.id):
        user.refused(
            "insert into public.user_roles (user_id, role, granted_by) values (%s, %s, coalesce(%s, auth.uid()))"
            " returning *",
            (getattr(world, target).id, role, granted_by),
            sqlstate=INSUFFICIENT_PRIVILEGE,
        )
    assert "admin" not in platform_roles(conn, world.me)


def test_user_roles_an_admin_grants_roles_as_themselves(conn, world):
    admin = as_user(conn, world.platform_admin)
    row = admin.one(
        "insert into public.user_roles (user_id, role) values (%s, 'coach') returning user_id::text, granted_by::text",
        (world.stranger.id,),
    )
    assert row == {"user_id": world.stranger.id, "granted_by": world.platform_admin.id}
    admin.rows(
        "insert into public.user_roles (user_id, role, granted_by) values (%s, 'admin', %s)",
        (world.stranger.id, world.platform_admin.id),
    )
    assert platform_roles(conn, world.stranger) == ["admin", "coach"]


@pytest.mark.parametrize("forged", ["someone-else", "nobody"])
def test_user_roles_an_admin_cannot_forge_granted_by(conn, world, forged):
    granted_by = world.me.id if forged == "someone-else" else None
    as_user(conn, world.platform_admin).refused(
        "insert into public.user_roles (user_id, role, granted_by) values (%s, 'coach', %s)",
        (world.stranger.id, granted_by),
        sqlstate=INSUFFICIENT_PRIVILEGE,
    )
    assert platform_roles(conn, world.stranger) == []


@pytest.mark.parametrize("who", ["me", "platform_admin"])
def test_user_roles_nobody_signed_in_updates_a_role(conn, world, who):
    actor(conn, world, who).refused(
        "update public.user_roles set role = 'admin' where user_id = %s",
        (world.me.id,),
        sqlstate=INSUFFICIENT_PRIVILEGE,
    )


@pytest.mark.parametrize("who", ["me", "stranger", "owner"])
def test_user_roles_users_cannot_revoke_roles_even_their_own(conn, world, who):
    user = actor(conn, world, who)
    assert user.count("delete from public.user_roles where user_id = %s", (world.me.id,)) == 0
    assert platform_roles(conn, world.me) == ["job_seeker"]


def test_user_roles_an_admin_revokes_roles(conn, world):
    admin = as_user(conn, world.platform_admin)
    assert admin.count("delete from public.user_roles where user_id = %s", (world.me.id,)) == 1
    assert platform_roles(conn, world.me) == []


# companies --------------------------------------------------------------------------------------------


def test_companies_any_signed_in_user_creates_one_and_becomes_its_owner(conn, world):
    stranger = as_user(conn, world.stranger)
    row = stranger.one("insert into public.companies (name, slug) values ('Newco', 'newco') returning *")
    assert row["name"] == "Newco"
    assert str(row["created_by"]) == world.stranger.id
    members = stranger.rows(
        "select user_id::text, role::text, invited_by::text from public.company_members where company_id = %s",
        (row["id"],),
    )
    assert members == [{"user_id": world.stranger.id, "role": "owner", "invited_by": world.stranger.id}]
    edit: LiteralString = "update public.companies set website = 'https://newco.example' where id = %s"
    assert stranger.count(edit, (row["id"],)) == 1


@pytest.mark.parametrize("column", ["created_by", "id", "created_at"])
def test_companies_the_database_sets_id_creator_and_timestamps(conn, world, column):
    statements: dict[str, LiteralString] = {
        "created_by": "insert into public.companies (name, created_by) values ('Mine', %s)",
        "id": "insert into public.companies (id, name) values (%s, 'Mine')",
        "created_at": "insert into public.companies (name, created_at) values ('Mine', %s)",
    }
    values = {"created_by": world.owner.id, "id": world.acme.id, "created_at": "2000-01-01"}
    as_user(conn, world.stranger).refused(
        statements[column], (values[column],), sqlstate=INSUFFICIENT_PRIVILEGE
    )


def test_companies_names_are_checked(conn, world):
    as_user(conn, world.stranger).refused(
        "insert into public.companies (name) values ('   ')", sqlstate=CHECK_VIOLATION
    )


@pytest.mark.parametrize(
    ("who", "sees_acme"),
    [
        ("owner", True),
        ("admin", True),
        ("recruiter", True),
        ("interviewer", True),
        ("platform_admin", True),
        ("service", True),
        ("stranger", False),
        ("zeta_owner", False),
        ("me", False),
    ],
)
def test_companies_visible_to_members_and_admins_only(conn, world, who, sees_acme):
    visible = {str(row["id"]) for row in actor(conn, world, who).rows("select id from public.companies")}
    assert (world.acme.id in visible) is sees_acme
    if who in ("owner", "admin", "recruiter", "interviewer"):
        assert visible == {world.acme.id}


def test_companies_a_creator_who_left_no_longer_sees_it(conn, world):
    add_member(conn, world.acme, world.stranger, "owner")
    owner = as_user(conn, world.owner)
    assert owner.count("delete from public.company_members where user_id = %s", (world.owner.id,)) == 1
    # A later request: the company was created before this transaction.
    conn.execute(
        "update public.companies set created_at = now() - interval '1 day' where id = %s", (world.acme.id,)
    )
    assert owner.rows("select id from public.companies where id = %s", (world.acme.id,)) == []
    assert owner.count("update public.companies set name = 'Mine again' where id = %s", (world.acme.id,)) == 0


@pytest.mark.parametrize("who", ["owner", "admin"])
def test_companies_owners_and_admins_edit_their_company(conn, world, who):
    row = actor(conn, world, who).one(
        "update public.companies set name = 'Acme Ltd', slug = 'acme', website = 'https://acme.example'"
        " where id = %s returning name, slug",
        (world.acme.id,),
    )
    assert row == {"name": "Acme Ltd", "slug": "acme"}


@pytest.mark.parametrize("who", ["recruiter", "interviewer", "stranger", "zeta_owner", "platform_admin"])
def test_companies_nobody_else_edits_a_company(conn, world, who):
    hacker = actor(conn, world, who)
    assert hacker.count("update public.companies set name = 'Pwned' where id = %s", (world.acme.id,)) == 0
    assert company_name(conn, world.acme) == "Acme"


def test_companies_an_admin_cannot_edit_another_company(conn, world):
    assert as_user(conn, world.admin).count("update public.companies set name = 'Pwned'") == 1
    assert company_name(conn, world.zeta) == "Zeta"


@pytest.mark.parametrize("column", ["id", "created_by", "created_at", "updated_at"])
def test_companies_owners_cannot_change_id_creator_or_timestamps(conn, world, column):
    statements: dict[str, LiteralString] = {
        "id": "update public.companies set id = gen_random_uuid() where id = %s",
        "created_by": "update public.companies set created_by = auth.uid() where id = %s",
        "created_at": "update public.companies set created_at = now() where id = %s",
        "updated_at": "update public.companies set updated_at = now() where id = %s",
    }
    as_user(conn, world.owner).refused(statements[column], (world.acme.id,), sqlstate=INSUFFICIENT_PRIVILEGE)


def test_companies_only_owners_delete_a_company_softly_and_platform_admins_restore_it(conn, world):
    as_user(conn, world.owner).rows("select public.delete_company(%s)", (world.acme.id,))
    # Gone for every member, roles and all, while its rows (and members) stay for the record.
    for who in ("owner", "admin", "recruiter", "interviewer"):
        assert (
            actor(conn, world, who).count("select 1 from public.companies where id = %s", (world.acme.id,))
            == 0
        )
        assert actor(conn, world, who).count("select 1 from public.company_members") == 0
    assert member_role(conn, world.acme, world.recruiter) == "recruiter"
    platform_admin = actor(conn, world, "platform_admin")
    deleted = platform_admin.one(
        "select deleted_at, deleted_by from public.companies where id = %s", (world.acme.id,)
    )
    assert deleted["deleted_at"] is not None
    assert str(deleted["deleted_by"]) == world.owner.id
    # Only platform admins restore.
    as_user(conn, world.owner).refused(
        "select public.restore_company(%s)", (world.acme.id,), sqlstate=INSUFFICIENT_PRIVILEGE
    )
    restored = platform_admin.one("select * from public.restore_company(%s)", (world.acme.id,))
    assert restored["deleted_at"] is None
    assert (
        actor(conn, world, "recruiter").count(
            "select 1 from public.companies where id = %s", (world.acme.id,)
        )
        == 1
    )


@pytest.mark.parametrize(
    "who", ["owner", "admin", "recruiter", "interviewer", "stranger", "zeta_owner", "platform_admin"]
)
def test_companies_nobody_deletes_a_company_for_good(conn, world, who):
    actor(conn, world, who).refused(
        "delete from public.companies where id = %s", (world.acme.id,), sqlstate=INSUFFICIENT_PRIVILEGE
    )
    assert company_name(conn, world.acme) == "Acme"


@pytest.mark.parametrize(
    "who", ["admin", "recruiter", "interviewer", "stranger", "zeta_owner", "platform_admin"]
)
def test_companies_only_owners_soft_delete_a_company(conn, world, who):
    error = actor(conn, world, who).refused(
        "select public.delete_company(%s)", (world.acme.id,), sqlstate="PT404"
    )
    assert "not its owner" in str(error)
    assert value(conn, "select deleted_at from public.companies where id = %s", (world.acme.id,)) is None


# company_members: who sees whom -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("who", "sees"),
    [
        ("owner", {"acme"}),
        ("admin", {"acme"}),
        ("recruiter", {"acme"}),
        ("interviewer", {"acme"}),
        ("zeta_owner", {"zeta"}),
        ("stranger", set()),
        ("platform_admin", {"acme", "zeta"}),
        ("service", {"acme", "zeta"}),
    ],
)
def test_company_members_members_see_their_teammates_only(conn, world, who, sees):
    teams = {
        "acme": {(world.acme.id, getattr(world, r).id, r) for r in COMPANY_ROLES},
        "zeta": {(world.zeta.id, world.zeta_owner.id, "owner")},
    }
    rows = actor(conn, world, who).rows(
        "select company_id::text, user_id::text, role::text from public.company_members"
        " where company_id = any(%s::uuid[])",
        ([world.acme.id, world.zeta.id],),
    )
    expected = set().union(*(teams[team] for team in sees))
    assert {(row["company_id"], row["user_id"], row["role"]) for row in rows} == expected


# company_members: nobody is added, people join by accepting an invitation ---------------------------------

JOIN: LiteralString = (
    "insert into public.company_members (company_id, user_id, role) values (%s, %s, %s) returning *"
)


@pytest.mark.parametrize("role", COMPANY_ROLES)
@pytest.mark.parametrize(
    "who", ["owner", "admin", "recruiter", "interviewer", "stranger", "platform_admin", "zeta_owner"]
)
def test_company_members_nobody_adds_anyone_directly(conn, world, who, role):
    # Not even owners: an invitation the invitee accepts is the only way in (no insert grant at all).
    for target in (world.stranger, getattr(world, who)):
        actor(conn, world, who).refused(
            JOIN, (world.acme.id, target.id, role), sqlstate=INSUFFICIENT_PRIVILEGE
        )
    assert member_role(conn, world.acme, world.stranger) is None


@pytest.mark.parametrize("who", ["owner", "admin"])
def test_company_members_rights_in_one_company_do_not_open_another(conn, world, who):
    user = actor(conn, world, who)
    # Moving one's own membership row over to the other company is no way in.
    user.refused(
        "update public.company_members set company_id = %s where user_id = %s",
        (world.zeta.id, getattr(world, who).id),
        sqlstate=INSUFFICIENT_PRIVILEGE,
    )
    user.refused(INVITE, (world.zeta.id, "someone@example.com", "admin"), sqlstate=INSUFFICIENT_PRIVILEGE)
    assert member_role(conn, world.zeta, getattr(world, who)) is None


# company_invitations ----------------------------------------------------------------------------------------

INVITE: LiteralString = (
    "insert into public.company_invitations (company_id, email, role) values (%s, %s, %s)"
    " returning id::text, company_id::text, email, role::text, invited_by::text, expires_at > now() as live"
)
ACCEPT: LiteralString = (
    "select company_id::text, user_id::text, role::text from public.accept_company_invitation(%s)"
)
PT404 = "PT404"  # PostgREST answers 404


def invite(conn: psycopg.Connection, world: World, email: str, role: str, who: str = "owner") -> str:
    """An invitation made by `who`; returns the token the email carries (read from the outbox)."""
    row = actor(conn, world, who).one(INVITE, (world.acme.id, email, role))
    return value(
        conn,
        "select context ->> 'token' from private.outbox where idempotency_key = %s",
        (f"company_invitation:{row['id']}",),
    )


@pytest.mark.parametrize("role", ["admin", "recruiter", "interviewer"])
@pytest.mark.parametrize("who", ["owner", "admin"])
def test_invitations_owners_and_admins_invite(conn, world, who, role):
    row = actor(conn, world, who).one(INVITE, (world.acme.id, "  New.Person@Example.com ", role))
    assert row["role"] == role
    assert row["email"] == "new.person@example.com"
    assert row["invited_by"] == getattr(world, who).id
    assert row["live"] is True
    outbox = conn.execute(
        "select template, recipient, context from private.outbox where idempotency_key = %s",
        (f"company_invitation:{row['id']}",),
    ).fetchone()
    assert outbox is not None
    template, recipient, context = outbox
    assert (template, recipient) == ("company_invitation", "new.person@example.com")
    assert context["company_name"] == "Acme"
    assert len(context["token"]) == 64


def test_invitations_only_owners_invite_owners(conn, world):
    as_user(conn, world.admin).refused(
        INVITE, (world.acme.id, "boss@example.com", "owner"), sqlstate=INSUFFICIENT_PRIVILEGE
    )
    assert (
        as_user(conn, world.owner).one(INVITE, (world.acme.id, "boss@example.com", "owner"))["role"]
        == "owner"
    )


@pytest.mark.parametrize("who", ["recruiter", "interviewer", "stranger", "platform_admin", "zeta_owner"])
def test_invitations_nobody_else_invites(conn, world, who):
    for role in COMPANY_ROLES:
        actor(conn, world, who).refused(
            INVITE, (world.acme.id, "x@example.com", role), sqlstate=INSUFFICIENT_PRIVILEGE
        )
    assert value(conn, "select count(*) from public.company_invitations") == 0


def test_invitations_anon_can_do_nothing(conn, world):
    invite(conn, world, "someone@example.com", "recruiter")
    anon = as_anon(conn)
    for statement in (
        "select * from public.company_invitations",
        "insert into public.company_invitations (company_id, email, role) select id, 'a@b.co', 'owner'"
        " from public.companies limit 1",
        "delete from public.company_invitations",
        "select * from public.company_invitation('x')",
        "select * from public.accept_company_invitation('x')",
        "select public.decline_company_invitation('x')",
        "select * from public.set_company_verified(gen_random_uuid(), true)",
    ):
        anon.refused(statement, sqlstate=INSUFFICIENT_PRIVILEGE)


def test_invitations_inviter_token_and_times_cannot_be_forged(conn, world):
    owner = as_user(conn, world.owner)
    for column, forged in (
        ("invited_by", world.zeta_owner.id),
        ("id", "00000000-0000-4000-8000-000000000000"),
        ("expires_at", "2999-01-01"),
        ("created_at", "2000-01-01"),
    ):
        owner.refused(
            f"insert into public.company_invitations (company_id, email, role, {column}) values (%s, 'a@b.co', 'admin', %s)",  # noqa: S608 (column names from this test)
            (world.acme.id, forged),
            sqlstate=INSUFFICIENT_PRIVILEGE,
        )
    token = invite(conn, world, "a@b.co", "admin")
    # The token is in the email only: its hash and the outbox are out of every API role's reach.
    for statement in ("select * from private.company_invitation_tokens", "select * from private.outbox"):
        owner.refused(statement, sqlstate=INSUFFICIENT_PRIVILEGE)
    owner.refused("update public.company_invitations set role = 'owner'", sqlstate=INSUFFICIENT_PRIVILEGE)
    readable = owner.rows("select * from public.company_invitations")
    assert len(readable) == 1
    assert token not in str(readable)


@pytest.mark.parametrize(
    ("who", "sees"),
    [
        ("owner", True),
        ("admin", True),
        ("platform_admin", True),
        ("recruiter", False),
        ("interviewer", False),
        ("stranger", False),
        ("zeta_owner", False),
    ],
)
def test_invitations_owners_admins_and_platform_admins_see_them(conn, world, who, sees):
    invite(conn, world, "someone@example.com", "recruiter")
    rows = actor(conn, world, who).rows("select email from public.company_invitations")
    assert [row["email"] for row in rows] == (["someone@example.com"] if sees else [])


def test_invitations_an_invitee_accepts_with_the_token(conn, world):
    token = invite(conn, world, "stranger@example.com", "recruiter", who="admin")
    stranger = as_user(conn, world.stranger)
    [shown] = stranger.rows(
        "select company_name, role::text, inviter_name, expires_at > now() as live from public.company_invitation(%s)",
        (token,),
    )
    assert shown == {"company_name": "Acme", "role": "recruiter", "inviter_name": "Acme Admin", "live": True}
    joined = stranger.one(ACCEPT, (token,))
    assert joined == {"company_id": world.acme.id, "user_id": world.stranger.id, "role": "recruiter"}
    assert member_role(conn, world.acme, world.stranger) == "recruiter"
    assert (
        value(
            conn,
            "select invited_by::text from public.company_members where user_id = %s",
            (world.stranger.id,),
        )
        == world.admin.id
    )
    # Used up: the same link works once.
    assert value(conn, "select count(*) from public.company_invitations") == 0
    stranger.refused(ACCEPT, (token,), sqlstate=PT404)
    assert stranger.rows("select * from public.company_invitation(%s)", (token,)) == []


def test_invitations_whoever_holds_the_token_joins_as_themselves(conn, world):
    # The token is the proof of the email; the invitee may sign in with another address.
    token = invite(conn, world, "work-address@example.com", "interviewer")
    joined = as_user(conn, world.me).one(ACCEPT, (token,))
    assert joined["user_id"] == world.me.id
    assert member_role(conn, world.acme, world.me) == "interviewer"


@pytest.mark.parametrize("token", ["", "wrong", "0" * 64])
def test_invitations_a_wrong_token_is_refused_alike(conn, world, token):
    invite(conn, world, "stranger@example.com", "admin")
    stranger = as_user(conn, world.stranger)
    stranger.refused(ACCEPT, (token,), sqlstate=PT404)
    stranger.refused("select public.decline_company_invitation(%s)", (token,), sqlstate=PT404)
    assert stranger.rows("select * from public.company_invitation(%s)", (token,)) == []
    assert member_role(conn, world.acme, world.stranger) is None


def test_invitations_an_expired_invitation_is_refused_and_can_be_renewed(conn, world):
    token = invite(conn, world, "stranger@example.com", "admin")
    conn.execute("update public.company_invitations set expires_at = now() - interval '1 second'")
    stranger = as_user(conn, world.stranger)
    stranger.refused(ACCEPT, (token,), sqlstate=PT404)
    assert stranger.rows("select * from public.company_invitation(%s)", (token,)) == []
    # Inviting the same address again replaces the expired invitation.
    fresh = invite(conn, world, "Stranger@example.com", "admin")
    assert value(conn, "select count(*) from public.company_invitations") == 1
    assert stranger.one(ACCEPT, (fresh,))["role"] == "admin"


def test_invitations_one_waiting_invitation_per_address(conn, world):
    invite(conn, world, "stranger@example.com", "admin")
    as_user(conn, world.owner).refused(
        INVITE, (world.acme.id, "STRANGER@example.com", "recruiter"), sqlstate="23505"
    )


def test_invitations_a_company_has_a_limit_of_waiting_invitations(conn, world):
    conn.execute("update private.config set value = '2' where key = 'company_pending_invitations_limit'")
    invite(conn, world, "one@example.com", "admin")
    invite(conn, world, "two@example.com", "admin")
    error = as_user(conn, world.owner).refused(
        INVITE, (world.acme.id, "three@example.com", "admin"), sqlstate=CHECK_VIOLATION
    )
    assert "2 invitations waiting" in str(error)
    as_user(conn, world.owner).count("delete from public.company_invitations where email = 'one@example.com'")
    assert invite(conn, world, "three@example.com", "admin")


def test_invitations_declining_uses_the_invitation_up(conn, world):
    token = invite(conn, world, "stranger@example.com", "admin")
    stranger = as_user(conn, world.stranger)
    stranger.rows("select public.decline_company_invitation(%s)", (token,))
    assert value(conn, "select count(*) from public.company_invitations") == 0
    assert member_role(conn, world.acme, world.stranger) is None
    stranger.refused(ACCEPT, (token,), sqlstate=PT404)


def test_invitations_a_member_accepting_again_is_told_so(conn, world):
    token = invite(conn, world, "recruiter@example.com", "admin")
    error = as_user(conn, world.recruiter).refused(ACCEPT, (token,), sqlstate="23505")
    assert "already a member" in str(error)
    assert member_role(conn, world.acme, world.recruiter) == "recruiter"  # not promoted by the back door


@pytest.mark.parametrize(
    ("who", "target", "revoked"),
    [
        ("owner", "admin", True),
        ("owner", "owner", True),
        ("admin", "admin", True),
        ("admin", "owner", False),
        ("recruiter", "admin", False),
        ("stranger", "admin", False),
        ("platform_admin", "admin", False),
    ],
)
def test_invitations_owners_and_admins_revoke_them(conn, world, who, target, revoked):
    invite(conn, world, "someone@example.com", target)
    assert actor(conn, world, who).count("delete from public.company_invitations") == (1 if revoked else 0)
    assert value(conn, "select count(*) from public.company_invitations") == (0 if revoked else 1)


def test_invitations_go_with_their_company(conn, world):
    invite(conn, world, "someone@example.com", "admin")
    as_service(conn).count("delete from public.companies where id = %s", (world.acme.id,))
    assert value(conn, "select count(*) from public.company_invitations") == 0


# companies: verification by platform admins --------------------------------------------------------------

VERIFY: LiteralString = (
    "select id::text, verified_at is not null as verified, verified_by::text"
    " from public.set_company_verified(%s, %s)"
)


def test_verification_platform_admins_verify_and_withdraw(conn, world):
    admin = as_user(conn, world.platform_admin)
    row = admin.one(VERIFY, (world.acme.id, True))
    assert row == {"id": world.acme.id, "verified": True, "verified_by": world.platform_admin.id}
    first = value(conn, "select verified_at from public.companies where id = %s", (world.acme.id,))
    assert admin.one(VERIFY, (world.acme.id, True))["verified"] is True
    assert value(conn, "select verified_at from public.companies where id = %s", (world.acme.id,)) == first
    assert admin.one(VERIFY, (world.acme.id, False)) == {
        "id": world.acme.id,
        "verified": False,
        "verified_by": None,
    }
    admin.refused(VERIFY, (world.acme.id, None), sqlstate="22023")
    admin.refused(VERIFY, ("00000000-0000-0000-0000-000000000000", True), sqlstate=PT404)


@pytest.mark.parametrize("who", ["owner", "admin", "recruiter", "stranger", "zeta_owner", "me"])
def test_verification_nobody_else_verifies(conn, world, who):
    actor(conn, world, who).refused(VERIFY, (world.acme.id, True), sqlstate=INSUFFICIENT_PRIVILEGE)
    # Nor with a plain update: verified_at and verified_by are not theirs to write.
    actor(conn, world, who).refused(
        "update public.companies set verified_at = now() where id = %s",
        (world.acme.id,),
        sqlstate=INSUFFICIENT_PRIVILEGE,
    )
    assert value(conn, "select verified_at from public.companies where id = %s", (world.acme.id,)) is None


def test_verification_a_new_company_starts_unverified(conn, world):
    owner = as_user(conn, world.me)
    row = owner.one("insert into public.companies (name) values ('Fresh') returning verified_at, verified_by")
    assert row == {"verified_at": None, "verified_by": None}
    owner.refused(
        "insert into public.companies (name, verified_at) values ('Forged', now())",
        sqlstate=INSUFFICIENT_PRIVILEGE,
    )


# company_members: changing roles ----------------------------------------------------------------------

SET_ROLE: LiteralString = "update public.company_members set role = %s where company_id = %s and user_id = %s"


@pytest.mark.parametrize(("target", "new_role"), [("recruiter", "interviewer"), ("interviewer", "admin")])
@pytest.mark.parametrize("who", ["owner", "admin"])
def test_company_members_owners_and_admins_change_non_owner_roles(conn, world, who, target, new_role):
    assert actor(conn, world, who).count(SET_ROLE, (new_role, world.acme.id, getattr(world, target).id)) == 1
    assert member_role(conn, world.acme, getattr(world, target)) == new_role


@pytest.mark.parametrize("target", ["recruiter", "admin"])
def test_company_members_admins_cannot_make_owners(conn, world, target):
    as_user(conn, world.admin).refused(
        SET_ROLE, ("owner", world.acme.id, getattr(world, target).id), sqlstate=INSUFFICIENT_PRIVILEGE
    )
    assert member_role(conn, world.acme, getattr(world, target)) == target


def test_company_members_admins_cannot_demote_owners(conn, world):
    assert as_user(conn, world.admin).count(SET_ROLE, ("recruiter", world.acme.id, world.owner.id)) == 0
    assert member_role(conn, world.acme, world.owner) == "owner"


def test_company_members_owners_promote_and_demote_owners(conn, world):
    owner = as_user(conn, world.owner)
    assert owner.count(SET_ROLE, ("owner", world.acme.id, world.admin.id)) == 1
    assert owner.count(SET_ROLE, ("admin", world.acme.id, world.owner.id)) == 1
    assert member_role(conn, world.acme, world.owner) == "admin"


@pytest.mark.parametrize("who", ["recruiter", "interviewer", "stranger", "zeta_owner", "platform_admin"])
def test_company_members_nobody_else_changes_roles(conn, world, who):
    user = actor(conn, world, who)
    for target in COMPANY_ROLES:
        assert user.count(SET_ROLE, ("owner", world.acme.id, getattr(world, target).id)) == 0
        assert member_role(conn, world.acme, getattr(world, target)) == target


@pytest.mark.parametrize(
    "statement",
    [
        pytest.param(
            "update public.company_members set user_id = auth.uid() where user_id = %s", id="user_id"
        ),
        pytest.param(
            "update public.company_members set company_id = company_id where user_id = %s", id="company_id"
        ),
        pytest.param(
            "update public.company_members set invited_by = auth.uid() where user_id = %s", id="invited_by"
        ),
        pytest.param(
            "update public.company_members set created_at = '2000-01-01' where user_id = %s", id="created_at"
        ),
    ],
)
def test_company_members_only_the_role_is_updatable(conn, world, statement):
    as_user(conn, world.owner).refused(statement, (world.recruiter.id,), sqlstate=INSUFFICIENT_PRIVILEGE)


# company_members: leaving and removing ----------------------------------------------------------------

REMOVE: LiteralString = "delete from public.company_members where company_id = %s and user_id = %s"


@pytest.mark.parametrize("who", ["admin", "recruiter", "interviewer"])
def test_company_members_a_member_can_leave(conn, world, who):
    assert actor(conn, world, who).count(REMOVE, (world.acme.id, getattr(world, who).id)) == 1
    assert member_role(conn, world.acme, getattr(world, who)) is None


@pytest.mark.parametrize("target", ["admin", "recruiter", "interviewer"])
@pytest.mark.parametrize("who", ["owner", "admin"])
def test_company_members_owners_and_admins_remove_members(conn, world, who, target):
    assert actor(conn, world, who).count(REMOVE, (world.acme.id, getattr(world, target).id)) == 1
    assert member_role(conn, world.acme, getattr(world, target)) is None


def test_company_members_admins_cannot_remove_owners(conn, world):
    add_member(conn, world.acme, world.stranger, "owner")  # so that only the policy stands in the way
    assert as_user(conn, world.admin).count(REMOVE, (world.acme.id, world.stranger.id)) == 0
    assert member_role(conn, world.acme, world.stranger) == "owner"


@pytest.mark.parametrize("who", ["recruiter", "interviewer", "stranger", "zeta_owner", "platform_admin"])
def test_company_members_nobody_else_removes_members(conn, world, who):
    user = actor(conn, world, who)
    for target in COMPANY_ROLES:
        if target != who:
            assert user.count(REMOVE, (world.acme.id, getattr(world, target).id)) == 0
            assert member_role(conn, world.acme, getattr(world, target)) == target


# company_members: a company keeps an owner ------------------------------------------------------------


@pytest.mark.parametrize(
    "statement",
    [
        pytest.param(REMOVE, id="leave"),
        pytest.param(
            "update public.company_members set role = 'admin' where company_id = %s and user_id = %s",
            id="demote",
        ),
    ],
)
@pytest.mark.parametrize("who", ["owner", "service"])
def test_company_members_the_last_owner_cannot_leave_or_be_demoted(conn, world, who, statement):
    error = actor(conn, world, who).refused(
        statement, (world.acme.id, world.owner.id), sqlstate=CHECK_VIOLATION
    )
    assert "at least one owner" in str(error)
    assert member_role(conn, world.acme, world.owner) == "owner"


def test_company_members_an_owner_leaves_once_another_owner_exists(conn, world):
    owner = as_user(conn, world.owner)
    assert owner.count(SET_ROLE, ("owner", world.acme.id, world.admin.id)) == 1
    assert owner.count(REMOVE, (world.acme.id, world.owner.id)) == 1
    # The new owner is now the last one.
    as_user(conn, world.admin).refused(REMOVE, (world.acme.id, world.admin.id), sqlstate=CHECK_VIOLATION)


def test_company_members_deleting_the_owners_auth_user_still_cascades(conn, world):
    conn.execute("delete from auth.users where id = %s", (world.owner.id,))
    assert member_role(conn, world.acme, world.owner) is None
    assert value(conn, "select created_by from public.companies where id = %s", (world.acme.id,)) is None
    assert profile_name(conn, world.owner) is None
    assert platform_roles(conn, world.owner) == []


# Policy helpers ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("who", "role", "expected"),
    [
        ("platform_admin", "admin", True),
        ("me", "admin", False),
        ("me", "job_seeker", True),
        ("owner", "employer", True),
        ("stranger", "employer", False),
    ],
)
def test_has_role_answers_for_the_caller(conn, world, who, role, expected):
    assert actor(conn, world, who).one("select private.has_role(%s) as yes", (role,))["yes"] is expected


def test_has_role_is_false_without_a_user(conn):
    signed_out = Actor(conn, "authenticated", {"role": "authenticated"})
    assert signed_out.one("select private.has_role('admin') as yes")["yes"] is False


@pytest.mark.parametrize(
    ("who", "roles", "expected"),
    [
        ("owner", None, True),
        ("owner", ["owner"], True),
        ("admin", ["owner"], False),
        ("admin", ["owner", "admin"], True),
        ("recruiter", ["owner", "admin"], False),
        ("interviewer", None, True),
        ("interviewer", ["interviewer"], True),
        ("zeta_owner", None, False),
        ("platform_admin", None, False),
        ("stranger", None, False),
    ],
)
def test_is_company_member_answers_for_the_caller(conn, world, who, roles, expected):
    row = actor(conn, world, who).one(
        "select private.is_company_member(%s, %s::public.company_role[]) as yes", (world.acme.id, roles)
    )
    assert row["yes"] is expected


PURE_VALIDATORS = {"require", "is_email", "is_time_zone"}


def test_signed_in_users_execute_only_the_policy_helpers_in_private(conn):
    rows = conn.execute(
        "select p.proname, has_function_privilege('authenticated', p.oid, 'execute'),"
        " has_function_privilege('anon', p.oid, 'execute')"
        " from pg_proc p where p.pronamespace = 'private'::regnamespace"
    ).fetchall()
    assert {name for name, authenticated, _ in rows if authenticated} == {
        "has_role",
        "is_company_member",
        "can_manage_roles",
        "executive_visible_to_employer",
        "executive_contact_shared",
        "role_visible",
        "is_verified_company",
        "can_request_introduction",
        # Each the one way something changes, checking the caller itself:
        "respond_to_introduction",  # an introduction's status
        "set_company_verified",  # a company's verification (platform admins)
        "company_invitation",  # an invitation's details, for whoever holds its token
        "answer_company_invitation",  # membership, for whoever holds an invitation's token
        "delete_company",  # a company's soft delete (owners)
        "restore_company",  # and its undoing (platform admins)
        # The interview platform's policy helpers and booking functions:
        "is_company_staff",
        "is_interviewer",
        "can_manage_interviewer",
        "can_view_interviewer",
        "is_interview_team",
        "available_slots",
        "book_interview",
        "reschedule_interview",
        "cancel_interview",
        "record_interview_outcome",
        "set_interviewer_deleted",
        *PURE_VALIDATORS,
    }
    # Check constraints call these as whoever writes the row, visitors included; they read nothing.
    assert {name for name, _, anon in rows if anon} == PURE_VALIDATORS
    assert value(conn, "select has_schema_privilege('anon', 'private', 'usage')") is False


def test_anon_executes_only_the_public_functions_meant_for_visitors(conn):
    # The embedded shape grants new public functions to the API roles by name, as a hosted project does:
    # every migration must revoke from anon itself.
    rows = conn.execute(
        "select p.proname from pg_proc p where p.pronamespace = 'public'::regnamespace"
        " and has_function_privilege('anon', p.oid, 'execute')"
    ).fetchall()
    assert {name for (name,) in rows} == {
        "resolve_skills",
        "search_jobs",  # the job board's search
        "search_skills",  # the ontology is public: free text to its closest skills
        # A candidate's self-scheduling page, with the emailed token and no account:
        "scheduling_invitation",
        "invitation_slots",
        "book_invitation",
    }
    granted = conn.execute(
        "select count(*) from pg_default_acl d join pg_namespace n on n.oid = d.defaclnamespace"
        " where n.nspname = 'public' and d.defaclobjtype = 'f' and d.defaclacl::text like '%anon=X%'"
    ).fetchone()
    assert granted == (1,)


# public.whoami() -----------------------------------------------------------------------------------------

WHOAMI = "select id::text, email, profile, roles, companies from public.whoami()"


@pytest.mark.parametrize(
    ("who", "roles", "companies"),
    [
        ("me", ["job_seeker"], []),
        ("stranger", [], []),
        ("owner", ["employer"], [("Acme", "owner")]),
        ("admin", [], [("Acme", "admin")]),
        ("recruiter", [], [("Acme", "recruiter")]),
        ("interviewer", [], [("Acme", "interviewer")]),
        ("platform_admin", ["admin"], []),
        ("zeta_owner", [], [("Zeta", "owner")]),
    ],
)
def test_whoami_returns_the_caller_and_nobody_else(conn, world, who, roles, companies):
    user: User = getattr(world, who)
    row = actor(conn, world, who).one(WHOAMI)
    assert row["id"] == user.id
    assert row["email"] == user.email
    assert row["profile"] == {"full_name": profile_name(conn, user), "avatar_url": None}
    assert row["roles"] == roles
    assert [(c["name"], c["role"]) for c in row["companies"]] == companies


def test_whoami_one_connection_many_callers(conn, world):
    # The function's plan is kept per connection: it must still answer each caller for themselves, and
    # follow membership changes at once.
    for _ in range(3):  # past the point where Postgres switches to a generic plan
        for who in ("owner", "zeta_owner", "stranger", "platform_admin"):
            assert actor(conn, world, who).one(WHOAMI)["id"] == getattr(world, who).id
    add_member(conn, world.zeta, world.stranger, "recruiter")
    assert [c["name"] for c in actor(conn, world, "stranger").one(WHOAMI)["companies"]] == ["Zeta"]
    conn.execute("delete from public.company_members where user_id = %s", (world.admin.id,))
    assert actor(conn, world, "admin").one(WHOAMI)["companies"] == []


def test_whoami_is_empty_without_a_user(conn, world):
    # The service role may call it, but has no user to describe.
    assert as_service(conn).rows(WHOAMI) == []


# The custom access token hook -------------------------------------------------------------------------


def hook_event(user: User) -> dict[str, Any]:
    return {"user_id": user.id, "claims": user.claims, "authentication_method": "password"}


def test_access_token_hook_adds_the_users_roles_and_keeps_the_claims(conn):
    user = make_user(conn, roles=("job_seeker", "coach", "employer"))
    event = hook_event(user)
    result = as_auth_server(conn).one("select public.custom_access_token_hook(%s) as event", (Jsonb(event),))[
        "event"
    ]
    # In the order of public.app_role, as whoami lists them.
    assert result == {**event, "claims": {**user.claims, "user_roles": ["employer", "coach", "job_seeker"]}}


def test_access_token_hook_gives_an_empty_list_without_roles(conn):
    user = make_user(conn)
    result = as_auth_server(conn).one(
        "select public.custom_access_token_hook(%s) as event", (Jsonb(hook_event(user)),)
    )["event"]
    assert result["claims"]["user_roles"] == []
    assert result["claims"]["sub"] == user.id


def test_access_token_hook_the_auth_server_gets_nothing_else(conn, world):
    auth_server = as_auth_server(conn)
    auth_server.refused("select * from public.profiles", sqlstate=INSUFFICIENT_PRIVILEGE)
    auth_server.refused(
        "insert into public.user_roles (user_id, role) values (%s, 'admin')",
        (world.me.id,),
        sqlstate=INSUFFICIENT_PRIVILEGE,
    )
    auth_server.refused("select private.has_role('admin')", sqlstate=INSUFFICIENT_PRIVILEGE)


@pytest.mark.parametrize("who", ["me", "platform_admin", "service"])
def test_access_token_hook_is_not_callable_from_the_api(conn, world, who):
    # It reads any user's roles by id, so a caller could learn who the admins are.
    actor(conn, world, who).refused(
        "select public.custom_access_token_hook(%s)",
        (Jsonb(hook_event(world.platform_admin)),),
        sqlstate=INSUFFICIENT_PRIVILEGE,
    )


# The service role ---------------------------------------------------------------------------------------


def test_service_role_reads_every_row(conn, world):
    for query in (
        "select count(*) from public.profiles",
        "select count(*) from public.user_roles",
        "select count(*) from public.companies",
        "select count(*) from public.company_members",
    ):
        everything = value(conn, query)
        assert everything >= 2, query
        assert as_service(conn).one(query)["count"] == everything, query


def test_service_role_writes_past_policies(conn, world):
    service = as_service(conn)
    grant: LiteralString = "insert into public.user_roles (user_id, role) values (%s, 'coach')"
    assert service.count(grant, (world.stranger.id,)) == 1
    company = service.one(
        "insert into public.companies (name, created_by) values ('Seeded', %s) returning id",
        (world.stranger.id,),
    )
    assert member_role(conn, Company(str(company["id"]), "Seeded"), world.stranger) == "owner"
    assert service.count(JOIN, (world.zeta.id, world.me.id, "recruiter")) == 1
    assert service.count("update public.companies set name = 'Zeta 2' where id = %s", (world.zeta.id,)) == 1
    assert (
        service.count("update public.user_roles set role = 'coach' where user_id = %s", (world.me.id,)) == 1
    )
    assert service.count("delete from public.user_roles where user_id = %s", (world.me.id,)) == 1
    # A profile lost by accident can be restored.
    assert service.count("delete from public.profiles where id = %s", (world.me.id,)) == 1
    row = service.one(
        "insert into public.profiles (id, full_name) values (%s, 'Me Again') returning *", (world.me.id,)
    )
    assert row["full_name"] == "Me Again"


def test_service_role_is_still_bound_by_grants_and_triggers(conn, world):
    service = as_service(conn)
    for truncate in (
        "truncate public.profiles cascade",
        "truncate public.user_roles",
        "truncate public.companies cascade",
        "truncate public.company_members",
    ):
        service.refused(truncate, sqlstate=INSUFFICIENT_PRIVILEGE)
    # A profile belongs to an auth user; it cannot be pointed at another one.
    service.refused(
        "update public.profiles set id = gen_random_uuid() where id = %s", (world.me.id,), sqlstate="23503"
    )


# Grants do not depend on the project's default privileges ----------------------------------------------

# What Supabase projects without `[api] auto_expose_new_tables = false` (self-hosted, and hosted ones from
# before the change) grant on every new object that `postgres` creates in public.
OLDER_SUPABASE_DEFAULTS: LiteralString = """
alter default privileges for role postgres in schema public grant all on tables to anon, authenticated, service_role;
alter default privileges for role postgres in schema public grant all on functions to anon, authenticated, service_role;
alter default privileges for role postgres in schema public grant all on sequences to anon, authenticated, service_role;
"""

PRIVILEGES: LiteralString = """
select c.relname as object, null as column_name, a.grantee::regrole::text as grantee, a.privilege_type
  from pg_class c, aclexplode(coalesce(c.relacl, acldefault('r', c.relowner))) a
 where c.oid = any(%(tables)s::regclass[])
union all
select c.relname, att.attname, a.grantee::regrole::text, a.privilege_type
  from pg_class c join pg_attribute att on att.attrelid = c.oid, aclexplode(att.attacl) a
 where c.oid = any(%(tables)s::regclass[])
union all
select p.oid::regprocedure::text, null, a.grantee::regrole::text, a.privilege_type
  from pg_proc p, aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
 where p.oid = any(%(functions)s::regprocedure[])
order by 1, 2 nulls first, 3, 4
"""
IDENTITY_OBJECTS = {
    "tables": ["public.profiles", "public.user_roles", "public.companies", "public.company_members"],
    "functions": [
        "public.custom_access_token_hook(jsonb)",
        "private.has_role(public.app_role)",
        "private.is_company_member(uuid, public.company_role[])",
        "public.whoami()",
    ],
}


@pytest.fixture(scope="module")
def exposed_by_default(database: Database) -> Iterator[str]:
    """A database migrated under Supabase's older default privileges; yields its superuser DSN."""
    name = f"{database.name}_exposed"
    recreate_database(database.superuser, name)
    dsn = with_database(database.superuser, name)
    try:
        bootstrap(dsn)
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(OLDER_SUPABASE_DEFAULTS)
        Runner(with_login(dsn, "postgres", "postgres")).push()
        yield dsn
    finally:
        with psycopg.connect(database.superuser, autocommit=True) as conn:
            conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))


def test_grants_are_the_same_under_older_supabase_default_privileges(conn, exposed_by_default):
    with psycopg.connect(exposed_by_default) as exposed:
        older = set(exposed.execute(PRIVILEGES, IDENTITY_OBJECTS).fetchall())
    ours = set(conn.execute(PRIVILEGES, IDENTITY_OBJECTS).fetchall())
    only_older, only_ours = sorted(older - ours, key=str), sorted(ours - older, key=str)
    assert not only_older, f"granted only where new objects are exposed by default: {only_older}"
    assert not only_ours, f"granted only where they are not: {only_ours}"
