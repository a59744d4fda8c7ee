"""The REST API as a frontend meets it: supabase-py's own client against real PostgREST behind `/rest/v1`.

Three parts: the foundation's RLS matrix (profiles, user_roles, companies, company_members) seen through
`.table()` and `.rpc()` under every kind of caller; an agreement check that the SQL way (`tests.support`
actors, `set local role` + claims) and real PostgREST give the same rows and the same refusals; and the
gateway itself (bodies, streaming, errors, Prefer/Range, the apikey header, PostgREST going down).

Data is written as the superuser with autocommit (`committed`) so that PostgREST sees it on its own
connections. The module's database is shared by its tests, so each test makes its own users and
companies and filters on their ids; nothing relies on what another test left behind.
"""

from __future__ import annotations

import json
import os
import signal
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, LiteralString

import httpx
import psycopg
import pytest
from postgrest.exceptions import APIError
from supabase import Client, ClientOptions, create_client
from supabase_functions.errors import FunctionsHttpError

from rpc.local.tokens import api_key
from rpc.platform.settings import SUPABASE_CLI_PUBLISHABLE_KEY, SUPABASE_CLI_SECRET_KEY
from tests.conftest import Database
from tests.support import (
    SECRET,
    Company,
    Outcome,
    User,
    actor,
    add_member,
    as_user,
    company_name,
    live_server,
    make_company,
    make_user,
    member_role,
    platform_roles,
    profile_name,
    rest_outcome,
    sql_outcome,
    token_for,
    value,
)

ANON_KEY = api_key(SECRET, "anon")
SERVICE_KEY = api_key(SECRET, "service_role")
INSUFFICIENT_PRIVILEGE = "42501"
CHECK_VIOLATION = "23514"
COMPANY_ROLES = ("owner", "admin", "recruiter", "interviewer")
TABLES = ("profiles", "user_roles", "companies", "company_members")


# Clients, as a frontend makes them ---------------------------------------------------------------------

# One connection pool under every client, as a server-side frontend shares one (ClientOptions.httpx_client):
# supabase-py otherwise builds an HTTP/2-capable httpx client per client, ~0.1 s each, most of a test's time.
# Headers are sent per request, so clients sharing it still each speak as their own caller.
HTTP = httpx.Client(timeout=30)


def client_for(url: str, user: User) -> Client:
    """A signed-in user's client: the anon key plus the user's access token, as supabase-js sends them."""
    headers = {"Authorization": f"Bearer {token_for(user)}"}
    return create_client(url, ANON_KEY, options=ClientOptions(headers=headers, httpx_client=HTTP))


def anon_client(url: str) -> Client:
    return create_client(url, ANON_KEY, options=ClientOptions(httpx_client=HTTP))


def service_client(url: str) -> Client:
    return create_client(url, SERVICE_KEY, options=ClientOptions(httpx_client=HTTP))


def refusal(query: Any) -> APIError:
    """Runs a PostgREST query that must fail; returns PostgREST's error."""
    with pytest.raises(APIError) as error:
        query.execute()
    return error.value


def keys(headers: dict[str, str] | None = None, key: str = SERVICE_KEY) -> dict[str, str]:
    """Both headers supabase-js sends for a key (here the service role's unless told)."""
    return {"apikey": key, "Authorization": f"Bearer {key}", **(headers or {})}


# A world of callers ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class World:
    me: User  # one platform role (job_seeker): the "self" of profile and role tests
    stranger: User  # signed in, no roles, member of nothing
    owner: User  # the four company roles at Acme; the owner is also an employer
    admin: User
    recruiter: User
    interviewer: User
    platform_admin: User
    zeta_owner: User  # owns Zeta, which none of the above belong to
    acme: Company
    zeta: Company

    @property
    def users(self) -> list[User]:
        return [
            self.me,
            self.stranger,
            self.owner,
            self.admin,
            self.recruiter,
            self.interviewer,
            self.platform_admin,
            self.zeta_owner,
        ]

    @property
    def user_ids(self) -> list[str]:
        return [user.id for user in self.users]

    @property
    def company_ids(self) -> list[str]:
        return [self.acme.id, self.zeta.id]

    def team(self, company: str) -> set[tuple[str, str, str]]:
        """(company name, user id, role) of every member of `acme` or `zeta`."""
        if company == "zeta":
            return {(self.zeta.name, self.zeta_owner.id, "owner")}
        return {(self.acme.name, getattr(self, role).id, role) for role in COMPANY_ROLES}


@pytest.fixture
def world(committed: psycopg.Connection) -> World:
    tag = uuid.uuid4().hex[:8]
    owner = make_user(committed, full_name="Olive Owner", roles=("employer",))
    acme = make_company(committed, owner, name=f"Acme {tag}")
    members = {}
    for role in ("admin", "recruiter", "interviewer"):
        members[role] = make_user(committed, full_name=f"Acme {role.title()}")
        add_member(committed, acme, members[role], role)
    zeta_owner = make_user(committed, full_name="Zed Zeta")
    return World(
        me=make_user(committed, full_name="Me Myself", roles=("job_seeker",)),
        stranger=make_user(committed, full_name="Sam Stranger"),
        owner=owner,
        admin=members["admin"],
        recruiter=members["recruiter"],
        interviewer=members["interviewer"],
        platform_admin=make_user(committed, full_name="Pat Platform", roles=("admin",)),
        zeta_owner=zeta_owner,
        acme=acme,
        zeta=make_company(committed, zeta_owner, name=f"Zeta {tag}"),
    )


def client_as(url: str, world: World, who: str) -> Client:
    """`anon`, `service` or the name of one of the world's users."""
    if who == "anon":
        return anon_client(url)
    if who == "service":
        return service_client(url)
    return client_for(url, getattr(world, who))


# Anonymous visitors: no grant on any foundation table ----------------------------------------------------


def anon_writes(world: World) -> dict[str, tuple[dict[str, Any], dict[str, Any], str, str]]:
    """Per table: a row to insert, a change to make, and the key column and value of an existing row."""
    return {
        "profiles": ({"id": world.me.id}, {"full_name": "Anon"}, "id", world.me.id),
        "user_roles": ({"user_id": world.me.id, "role": "admin"}, {"role": "admin"}, "user_id", world.me.id),
        "companies": ({"name": "Anon Inc"}, {"name": "Anon Inc"}, "id", world.acme.id),
        "company_members": (
            {"company_id": world.acme.id, "user_id": world.me.id, "role": "owner"},
            {"role": "interviewer"},
            "company_id",
            world.acme.id,
        ),
    }


@pytest.mark.parametrize("action", ["select", "insert", "update", "delete"])
@pytest.mark.parametrize("table", TABLES)
def test_anon_is_refused_everything(api_url, world, committed, table, action):
    row, change, column, key = anon_writes(world)[table]
    query = anon_client(api_url).table(table)
    statements = {
        "select": lambda: query.select("*"),
        "insert": lambda: query.insert(row),
        "update": lambda: query.update(change).eq(column, key),
        "delete": lambda: query.delete().eq(column, key),
    }
    assert refusal(statements[action]()).code == INSUFFICIENT_PRIVILEGE
    assert company_name(committed, world.acme) == world.acme.name
    assert member_role(committed, world.acme, world.owner) == "owner"


# profiles ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["me", "stranger", "owner", "platform_admin", "service"])
def test_profiles_every_signed_in_user_reads_every_name(api_url, world, who):
    wanted = [world.me, world.stranger, world.zeta_owner]
    result = (
        client_as(api_url, world, who)
        .table("profiles")
        .select("id, full_name")
        .in_("id", [user.id for user in wanted])
        .order("full_name")
        .execute()
    )
    assert result.data == [
        {"id": world.me.id, "full_name": "Me Myself"},
        {"id": world.stranger.id, "full_name": "Sam Stranger"},
        {"id": world.zeta_owner.id, "full_name": "Zed Zeta"},
    ]


def test_profiles_the_owner_edits_their_own(api_url, world, committed):
    result = (
        client_for(api_url, world.me)
        .table("profiles")
        .update({"full_name": "New Me", "avatar_url": "https://e.com/me.png"})
        .eq("id", world.me.id)
        .execute()
    )
    assert [(row["id"], row["full_name"], row["avatar_url"]) for row in result.data] == [
        (world.me.id, "New Me", "https://e.com/me.png")
    ]
    assert profile_name(committed, world.me) == "New Me"


@pytest.mark.parametrize("who", ["stranger", "owner", "platform_admin"])
def test_profiles_nobody_else_edits_a_profile(api_url, world, committed, who):
    # A `using` clause hides the row: PostgREST answers 200 with no rows, not an error.
    result = (
        client_as(api_url, world, who)
        .table("profiles")
        .update({"full_name": "Hacked"})
        .eq("id", world.me.id)
        .execute()
    )
    assert result.data == []
    assert profile_name(committed, world.me) == "Me Myself"


@pytest.mark.parametrize(
    "action",
    [
        pytest.param(lambda t, w: t.insert({"id": w.me.id}), id="insert"),
        pytest.param(lambda t, w: t.upsert({"id": w.me.id, "full_name": "Upserted"}), id="upsert"),
        pytest.param(lambda t, w: t.delete().eq("id", w.me.id), id="delete"),
        pytest.param(lambda t, w: t.update({"created_at": "2000-01-01"}).eq("id", w.me.id), id="created_at"),
    ],
)
def test_profiles_users_neither_create_delete_nor_retime_profiles(api_url, world, committed, action):
    # Upsert needs the insert grant that users lack, even on the one row they may update.
    table = client_for(api_url, world.me).table("profiles")
    assert refusal(action(table, world)).code == INSUFFICIENT_PRIVILEGE
    assert profile_name(committed, world.me) == "Me Myself"


# user_roles -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("who", "expected"),
    [
        ("me", {("me", "job_seeker")}),
        ("stranger", set()),
        ("owner", {("owner", "employer")}),
        ("platform_admin", {("me", "job_seeker"), ("owner", "employer"), ("platform_admin", "admin")}),
        ("service", {("me", "job_seeker"), ("owner", "employer"), ("platform_admin", "admin")}),
    ],
)
def test_user_roles_users_read_their_own_admins_all(api_url, world, who, expected):
    result = (
        client_as(api_url, world, who)
        .table("user_roles")
        .select("user_id, role")
        .in_("user_id", world.user_ids)
        .execute()
    )
    assert {(row["user_id"], row["role"]) for row in result.data} == {
        (getattr(world, user).id, role) for user, role in expected
    }


def test_user_roles_an_admin_grants_and_revokes(api_url, world, committed):
    admin = client_for(api_url, world.platform_admin).table("user_roles")
    granted = admin.insert({"user_id": world.stranger.id, "role": "coach"}).execute()
    # The returned row shows the database filled granted_by with the caller.
    assert [(row["user_id"], row["role"], row["granted_by"]) for row in granted.data] == [
        (world.stranger.id, "coach", world.platform_admin.id)
    ]
    assert platform_roles(committed, world.stranger) == ["coach"]
    revoked = admin.delete().eq("user_id", world.stranger.id).execute()
    assert [row["role"] for row in revoked.data] == ["coach"]
    assert platform_roles(committed, world.stranger) == []


@pytest.mark.parametrize("who", ["me", "owner"])
def test_user_roles_a_user_cannot_grant_or_revoke(api_url, world, committed, who):
    roles = client_as(api_url, world, who).table("user_roles")
    # Naming a real admin as the granter does not help.
    for row in (
        {"user_id": world.me.id, "role": "admin"},
        {"user_id": world.me.id, "role": "admin", "granted_by": world.platform_admin.id},
    ):
        assert refusal(roles.insert(row)).code == INSUFFICIENT_PRIVILEGE
    assert roles.delete().eq("user_id", world.me.id).execute().data == []
    assert platform_roles(committed, world.me) == ["job_seeker"]


def test_user_roles_service_upserts_and_ignores_duplicates(api_url, world, committed):
    roles = service_client(api_url).table("user_roles")
    result = roles.upsert(
        [{"user_id": world.me.id, "role": "job_seeker"}, {"user_id": world.me.id, "role": "coach"}],
        ignore_duplicates=True,
    ).execute()
    # `on conflict do nothing`: only the new row comes back, the existing one is left alone.
    assert [row["role"] for row in result.data] == ["coach"]
    assert platform_roles(committed, world.me) == ["coach", "job_seeker"]


# companies --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("who", "sees"),
    [
        ("owner", {"acme"}),
        ("admin", {"acme"}),
        ("recruiter", {"acme"}),
        ("interviewer", {"acme"}),
        ("zeta_owner", {"zeta"}),
        ("platform_admin", {"acme", "zeta"}),
        ("service", {"acme", "zeta"}),
        ("stranger", set()),
        ("me", set()),
    ],
)
def test_companies_visible_to_members_and_admins_only(api_url, world, who, sees):
    result = (
        client_as(api_url, world, who).table("companies").select("id").in_("id", world.company_ids).execute()
    )
    assert {row["id"] for row in result.data} == {getattr(world, name).id for name in sees}


def test_companies_a_creator_gets_the_new_company_back_and_owns_it(api_url, world, committed):
    stranger = client_for(api_url, world.stranger)
    name = f"Newco {uuid.uuid4().hex[:8]}"
    # return=representation: RETURNING checks the select policy before the trigger adds the owner row, so
    # only the policy's creator-on-creation clause lets the creator read the new company back.
    created = stranger.table("companies").insert({"name": name, "website": "https://newco.example"}).execute()
    assert [(row["name"], row["created_by"]) for row in created.data] == [(name, world.stranger.id)]
    company = Company(created.data[0]["id"], name)
    members = (
        stranger.table("companies")
        .select("name, company_members(user_id, role, invited_by)")
        .eq("id", company.id)
        .execute()
    )
    assert members.data == [
        {
            "name": name,
            "company_members": [
                {"user_id": world.stranger.id, "role": "owner", "invited_by": world.stranger.id}
            ],
        }
    ]
    # Once they are no longer a member, a later request (a later transaction) shows them nothing.
    add_member(committed, company, world.me, "owner")
    committed.execute(
        "delete from public.company_members where company_id = %s and user_id = %s",
        (company.id, world.stranger.id),
    )
    assert stranger.table("companies").select("id").eq("id", company.id).execute().data == []


@pytest.mark.parametrize(
    ("row", "code"),
    [
        pytest.param({"name": "Mine", "created_by": "owner"}, INSUFFICIENT_PRIVILEGE, id="forged-creator"),
        pytest.param({"name": "Mine", "created_at": "2000-01-01"}, INSUFFICIENT_PRIVILEGE, id="created_at"),
        pytest.param({"name": "   "}, CHECK_VIOLATION, id="blank-name"),
    ],
)
def test_companies_refused_inserts_write_nothing(api_url, world, committed, row, code):
    row = {k: (world.owner.id if v == "owner" else v) for k, v in row.items()}
    before = value(committed, "select count(*) from public.companies")
    assert refusal(client_for(api_url, world.stranger).table("companies").insert(row)).code == code
    assert value(committed, "select count(*) from public.companies") == before


@pytest.mark.parametrize("who", ["owner", "admin"])
def test_companies_owners_and_admins_edit_their_company(api_url, world, committed, who):
    result = (
        client_as(api_url, world, who)
        .table("companies")
        .update({"name": "Acme Ltd", "website": "https://acme.example"})
        .eq("id", world.acme.id)
        .execute()
    )
    assert [(row["id"], row["name"]) for row in result.data] == [(world.acme.id, "Acme Ltd")]
    assert company_name(committed, world.acme) == "Acme Ltd"


@pytest.mark.parametrize("who", ["recruiter", "interviewer", "stranger", "zeta_owner", "platform_admin"])
def test_companies_nobody_else_edits_a_company(api_url, world, committed, who):
    result = (
        client_as(api_url, world, who)
        .table("companies")
        .update({"name": "Pwned"})
        .eq("id", world.acme.id)
        .execute()
    )
    assert result.data == []
    assert company_name(committed, world.acme) == world.acme.name


def test_companies_owners_delete_softly_through_rpc(api_url, world, committed):
    owner = client_for(api_url, world.owner)
    # A plain delete is no longer granted: the company's history stays.
    with pytest.raises(APIError) as refused:
        owner.table("companies").delete().eq("id", world.acme.id).execute()
    assert refused.value.code == INSUFFICIENT_PRIVILEGE
    owner.rpc("delete_company", {"company_id": world.acme.id}).execute()
    assert owner.table("companies").select("id").eq("id", world.acme.id).execute().data == []
    assert company_name(committed, world.acme) == world.acme.name
    assert member_role(committed, world.acme, world.recruiter) == "recruiter"
    restored = client_as(api_url, world, "platform_admin").rpc(
        "restore_company", {"company_id": world.acme.id}
    )
    assert restored.execute().data["deleted_at"] is None
    assert [
        row["id"] for row in owner.table("companies").select("id").eq("id", world.acme.id).execute().data
    ] == [world.acme.id]


@pytest.mark.parametrize(
    "who", ["admin", "recruiter", "interviewer", "stranger", "zeta_owner", "platform_admin"]
)
def test_companies_nobody_else_deletes_a_company(api_url, world, committed, who):
    with pytest.raises(APIError) as refused:
        client_as(api_url, world, who).rpc("delete_company", {"company_id": world.acme.id}).execute()
    assert refused.value.code == "PT404"
    assert value(committed, "select deleted_at from public.companies where id = %s", (world.acme.id,)) is None


# Filters, order, range and exact counts, under RLS ------------------------------------------------------


@pytest.fixture
def five_companies(world, committed) -> str:
    """Five companies owned by the world's owner and one by Zeta's, all named with a fresh prefix."""
    prefix = f"Filt{uuid.uuid4().hex[:6]}"
    for name in ("Alpha", "Bravo", "Charlie", "Delta", "Echo"):
        make_company(committed, world.owner, name=f"{prefix} {name}")
    make_company(committed, world.zeta_owner, name=f"{prefix} Foxtrot")
    return prefix


@pytest.mark.parametrize(
    ("who", "count", "page"),
    [
        ("owner", 5, ["Delta", "Charlie"]),
        ("platform_admin", 6, ["Echo", "Delta"]),
        ("service", 6, ["Echo", "Delta"]),
        ("zeta_owner", 1, []),  # an offset at the end is an empty page...
        ("stranger", 0, None),  # ...one past it is 416, Range Not Satisfiable
    ],
)
def test_filter_order_range_and_exact_count(api_url, world, five_companies, who, count, page):
    # The count is of the rows the caller may see (Content-Range's total), not of the table.
    query = (
        client_as(api_url, world, who)
        .table("companies")
        .select("name", count="exact")
        .ilike("name", f"{five_companies.lower()} %")
        .order("name", desc=True)
        .range(1, 2)
    )
    if page is None:
        error = refusal(query)
        assert (error.code, error.details) == (
            "PGRST103",
            f"An offset of 1 was requested, but there are only {count} rows.",
        )
        return
    result = query.execute()
    assert result.count == count
    assert [row["name"] for row in result.data] == [f"{five_companies} {name}" for name in page]


def test_head_count_and_in_and_neq_filters(api_url, world, five_companies):
    owner = client_for(api_url, world.owner).table("companies")
    head = owner.select("id", count="exact", head=True).like("name", f"{five_companies} %").execute()
    assert head.count == 5
    assert not head.data
    picked = (
        owner.select("name")
        .in_("name", [f"{five_companies} Alpha", f"{five_companies} Echo", f"{five_companies} Foxtrot"])
        .neq("name", f"{five_companies} Echo")
        .execute()
    )
    assert [row["name"] for row in picked.data] == [f"{five_companies} Alpha"]


def test_filters_on_names_with_reserved_characters(api_url, world, committed):
    # Commas, parentheses, ampersands, percent signs and non-ASCII reach PostgREST as the client encoded them.
    name = f"Ünïcødé & Söhne, (50%) {uuid.uuid4().hex[:6]}"
    company = make_company(committed, world.owner, name=name)
    owner = client_for(api_url, world.owner).table("companies")
    assert owner.select("id, name").eq("name", name).execute().data == [{"id": company.id, "name": name}]
    assert [row["id"] for row in owner.select("id").in_("name", [name, "x,y"]).execute().data] == [company.id]
    # ilike: ASCII letters in another case, `_` for the percent sign.
    pattern = name.replace("Söhne", "SöHNE").replace("%", "_")
    assert [row["id"] for row in owner.select("id").ilike("name", pattern).execute().data] == [company.id]


# company_members --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("who", "sees"),
    [
        ("owner", {"acme"}),
        ("admin", {"acme"}),
        ("recruiter", {"acme"}),
        ("interviewer", {"acme"}),
        ("zeta_owner", {"zeta"}),
        ("platform_admin", {"acme", "zeta"}),
        ("service", {"acme", "zeta"}),
        ("stranger", set()),
    ],
)
def test_company_members_with_their_company_embedded(api_url, world, who, sees):
    result = (
        client_as(api_url, world, who)
        .table("company_members")
        .select("user_id, role, companies(name)")
        .in_("company_id", world.company_ids)
        .execute()
    )
    expected = set().union(*(world.team(team) for team in sees))
    assert {(row["companies"]["name"], row["user_id"], row["role"]) for row in result.data} == expected


@pytest.mark.parametrize(("who", "sees"), [("interviewer", {"acme"}), ("platform_admin", {"acme", "zeta"})])
def test_companies_with_their_members_embedded(api_url, world, who, sees):
    result = (
        client_as(api_url, world, who)
        .table("companies")
        .select("name, company_members(user_id, role)")
        .in_("id", world.company_ids)
        .execute()
    )
    members = {
        (company["name"], member["user_id"], member["role"])
        for company in result.data
        for member in company["company_members"]
    }
    assert members == set().union(*(world.team(team) for team in sees))


@pytest.mark.parametrize("who", ["owner", "admin", "recruiter", "stranger", "platform_admin", "zeta_owner"])
def test_company_members_nobody_adds_members_directly(api_url, world, committed, who):
    members = client_as(api_url, world, who).table("company_members")
    row = {"company_id": world.acme.id, "user_id": world.me.id, "role": "recruiter"}
    assert refusal(members.insert(row)).code == INSUFFICIENT_PRIVILEGE
    assert member_role(committed, world.acme, world.me) is None


def test_company_members_join_by_accepting_an_invitation(api_url, world, committed):
    owner = client_for(api_url, world.owner)
    [invitation] = (
        owner.table("company_invitations")
        .insert({"company_id": world.acme.id, "email": world.me.email, "role": "recruiter"})
        .execute()
        .data
    )
    assert (invitation["role"], invitation["invited_by"]) == ("recruiter", world.owner.id)
    assert "token_hash" not in invitation
    token = value(
        committed,
        "select context ->> 'token' from private.outbox where idempotency_key = %s",
        (f"company_invitation:{invitation['id']}",),
    )
    me = client_for(api_url, world.me)
    [shown] = me.rpc("company_invitation", {"token": token}).execute().data
    assert (shown["company_name"], shown["role"]) == (company_name(committed, world.acme), "recruiter")
    joined = me.rpc("accept_company_invitation", {"token": token}).execute().data
    assert (joined["user_id"], joined["role"]) == (world.me.id, "recruiter")
    assert member_role(committed, world.acme, world.me) == "recruiter"
    # Used up: PostgREST answers the second try with our PT404 as a 404.
    again = refusal(me.rpc("accept_company_invitation", {"token": token}))
    assert again.code == "PT404"


@pytest.mark.parametrize(
    ("who", "target", "new_role", "changed"),
    [
        ("owner", "recruiter", "admin", True),
        ("owner", "admin", "owner", True),
        ("admin", "interviewer", "recruiter", True),
        ("admin", "owner", "recruiter", False),  # admins do not touch owners
        ("recruiter", "interviewer", "admin", False),
        ("platform_admin", "recruiter", "owner", False),
    ],
)
def test_company_members_changing_roles(api_url, world, committed, who, target, new_role, changed):
    result = (
        client_as(api_url, world, who)
        .table("company_members")
        .update({"role": new_role})
        .eq("company_id", world.acme.id)
        .eq("user_id", getattr(world, target).id)
        .execute()
    )
    assert [row["role"] for row in result.data] == ([new_role] if changed else [])
    assert member_role(committed, world.acme, getattr(world, target)) == (new_role if changed else target)


def test_company_members_admins_cannot_make_owners(api_url, world, committed):
    # Here the `with check` fails rather than the `using`: an error, not an empty answer.
    members = client_for(api_url, world.admin).table("company_members")
    query = (
        members.update({"role": "owner"}).eq("company_id", world.acme.id).eq("user_id", world.recruiter.id)
    )
    assert refusal(query).code == INSUFFICIENT_PRIVILEGE
    assert member_role(committed, world.acme, world.recruiter) == "recruiter"


def test_company_members_upsert_is_refused_to_owners(api_url, world, committed):
    # PostgREST's upsert sets every sent column on conflict, key columns included, and users may only
    # update `role`: frontends change roles with .update().
    members = client_for(api_url, world.owner).table("company_members")
    row = {"company_id": world.acme.id, "user_id": world.recruiter.id, "role": "admin"}
    assert refusal(members.upsert(row)).code == INSUFFICIENT_PRIVILEGE
    assert member_role(committed, world.acme, world.recruiter) == "recruiter"


@pytest.mark.parametrize(
    ("who", "target", "removed"),
    [
        ("interviewer", "interviewer", True),  # anyone can leave
        ("owner", "admin", True),
        ("admin", "recruiter", True),
        ("admin", "owner", False),
        ("recruiter", "interviewer", False),
        ("platform_admin", "recruiter", False),
    ],
)
def test_company_members_leaving_and_removing(api_url, world, committed, who, target, removed):
    result = (
        client_as(api_url, world, who)
        .table("company_members")
        .delete()
        .eq("company_id", world.acme.id)
        .eq("user_id", getattr(world, target).id)
        .execute()
    )
    assert [row["user_id"] for row in result.data] == ([getattr(world, target).id] if removed else [])
    assert member_role(committed, world.acme, getattr(world, target)) == (None if removed else target)


def test_company_members_the_last_owner_cannot_leave(api_url, world, committed):
    query = (
        client_for(api_url, world.owner)
        .table("company_members")
        .delete()
        .eq("company_id", world.acme.id)
        .eq("user_id", world.owner.id)
    )
    error = refusal(query)
    assert (error.code, error.message) == (CHECK_VIOLATION, "a company must keep at least one owner")
    assert member_role(committed, world.acme, world.owner) == "owner"


def test_service_role_writes_past_policies(api_url, world, committed):
    service = service_client(api_url)
    upserted = service.table("profiles").upsert({"id": world.me.id, "full_name": "Seeded"}).execute()
    assert [row["full_name"] for row in upserted.data] == ["Seeded"]
    assert profile_name(committed, world.me) == "Seeded"
    joined = (
        service.table("company_members")
        .insert({"company_id": world.zeta.id, "user_id": world.me.id, "role": "recruiter"})
        .execute()
    )
    assert [row["invited_by"] for row in joined.data] == [None]  # no user behind the service role
    assert member_role(committed, world.zeta, world.me) == "recruiter"


# .rpc() ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["anon", "me", "platform_admin", "service"])
def test_rpc_the_access_token_hook_is_refused(api_url, world, who):
    # It reads any user's roles by id: only Supabase Auth's own role may run it.
    event = {"user_id": world.platform_admin.id, "claims": {}, "authentication_method": "password"}
    error = refusal(client_as(api_url, world, who).rpc("custom_access_token_hook", {"event": event}))
    assert error.code == INSUFFICIENT_PRIVILEGE


@pytest.mark.parametrize(
    ("function", "params"),
    [
        ("has_role", {"role": "admin"}),
        ("is_company_member", {"company_id": str(uuid.uuid4())}),
        ("health", {}),
    ],
)
@pytest.mark.parametrize("who", ["anon", "platform_admin", "service"])
def test_rpc_private_functions_are_not_endpoints(api_url, world, who, function, params):
    # `private` is not an exposed schema: PostgREST does not know these functions (PGRST202, a 404).
    assert refusal(client_as(api_url, world, who).rpc(function, params)).code == "PGRST202"


@pytest.mark.parametrize("who", ["owner", "zeta_owner", "platform_admin"])
def test_rpc_whoami_answers_each_user_for_themselves(api_url, world, committed, who):
    user = getattr(world, who)
    rows = client_as(api_url, world, who).rpc("whoami").execute().data
    assert [row["id"] for row in rows] == [user.id]
    # The same row the SQL way (the matrix in test_identity.py) and the Litestar function give.
    sql_row = as_user(committed, user).one("select * from public.whoami()")
    assert rows[0] == {**sql_row, "id": str(sql_row["id"])}


def test_rpc_whoami_is_refused_to_anon(api_url):
    assert refusal(anon_client(api_url).rpc("whoami")).code == INSUFFICIENT_PRIVILEGE


def test_rpc_an_exposed_function_answers_anon(api_url):
    # resolve_skills (matching) is granted to anon; an unknown name comes back with nulls.
    result = anon_client(api_url).rpc("resolve_skills", {"names": ["no such skill zq"]}).execute()
    assert result.data == [{"input": "no such skill zq", "skill_id": None, "slug": None, "name": None}]


# The newer API keys: a frontend created with sb_publishable_... (or a server with sb_secret_...) ---------


def key_client(url: str, key: str, user: User | None = None) -> Client:
    headers = {"Authorization": f"Bearer {token_for(user)}"} if user else {}
    return create_client(url, key, options=ClientOptions(headers=headers, httpx_client=HTTP))


def test_the_publishable_key_is_anon(api_url, world):
    client = key_client(api_url, SUPABASE_CLI_PUBLISHABLE_KEY)
    assert len(client.table("skills").select("slug").limit(3).execute().data) == 3
    assert refusal(client.table("profiles").select("id")).code == INSUFFICIENT_PRIVILEGE
    with pytest.raises(FunctionsHttpError) as refused:
        client.functions.invoke("whoami")
    assert (refused.value.status, refused.value.message) == (403, "insufficient_role")


def test_the_secret_key_is_the_service_role(api_url, world):
    client = key_client(api_url, SUPABASE_CLI_SECRET_KEY)
    ids = {row["id"] for row in client.table("profiles").select("id").execute().data}
    assert {world.me.id, world.zeta_owner.id} <= ids


def test_a_signed_in_user_with_the_publishable_key(api_url, world):
    client = key_client(api_url, SUPABASE_CLI_PUBLISHABLE_KEY, world.owner)
    assert client.table("user_roles").select("user_id, role").execute().data == [
        {"user_id": world.owner.id, "role": "employer"}
    ]
    assert json.loads(client.functions.invoke("whoami"))["id"] == world.owner.id


def test_an_unknown_api_key_is_refused_by_both_apis(api_url):
    client = key_client(api_url, "sb_publishable_" + "x" * 31)
    assert refusal(client.table("skills").select("slug")).code == "PGRST301"  # not a JWT, says PostgREST
    with pytest.raises(FunctionsHttpError) as refused:
        client.functions.invoke("whoami")
    assert (refused.value.status, refused.value.message) == (401, "invalid_token")


# Functions through the same client ---------------------------------------------------------------------


def test_whoami_through_the_same_client(api_url, world, committed):
    add_member(committed, world.zeta, world.owner, "interviewer")
    client = client_for(api_url, world.owner)
    # One client, both APIs, one caller: RLS shows the table's caller their own roles only.
    assert client.table("user_roles").select("user_id, role").execute().data == [
        {"user_id": world.owner.id, "role": "employer"}
    ]
    body = json.loads(client.functions.invoke("whoami"))
    assert body["id"] == world.owner.id
    assert body["email"] == world.owner.email
    assert body["profile"] == {"full_name": "Olive Owner", "avatar_url": None}
    assert body["roles"] == ["employer"]
    assert [(c["id"], c["role"]) for c in body["companies"]] == [
        (world.acme.id, "owner"),
        (world.zeta.id, "interviewer"),
    ]


@pytest.mark.parametrize(
    ("who", "status", "code"),
    [
        ("anon", 403, "insufficient_role"),
        ("service", 403, "insufficient_role"),
        ("forged", 401, "invalid_token"),
    ],
)
def test_a_refused_function_call_raises_functions_http_error(api_url, world, who, status, code):
    if who == "forged":  # a user's token signed with another secret
        headers = {"Authorization": f"Bearer {token_for(world.me, 'x' * 40)}"}
        client = create_client(api_url, ANON_KEY, options=ClientOptions(headers=headers, httpx_client=HTTP))
    else:
        client = client_as(api_url, world, who)
    with pytest.raises(FunctionsHttpError) as refused:
        client.functions.invoke("whoami")
    # supabase-py surfaces our error code as the message.
    assert (refused.value.status, refused.value.message) == (status, code)


# The SQL way and PostgREST agree -----------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    who: str
    sql: LiteralString  # text columns only, in the order the REST query selects them
    rest: Callable[[Client, World], Any]


def params_of(world: World) -> dict[str, Any]:
    return {
        "users": world.user_ids,
        "companies": world.company_ids,
        "me": world.me.id,
        "stranger": world.stranger.id,
        "acme": world.acme.id,
        "owner": world.owner.id,
        "recruiter": world.recruiter.id,
    }


AGREEMENT = [
    pytest.param(
        Case(
            "anon",
            "select id::text from public.profiles where id = any(%(users)s::uuid[])",
            lambda c, w: c.table("profiles").select("id").in_("id", w.user_ids),
        ),
        id="anon-profiles",
    ),
    pytest.param(
        Case(
            "anon",
            "select id::text from public.companies where id = any(%(companies)s::uuid[])",
            lambda c, w: c.table("companies").select("id").in_("id", w.company_ids),
        ),
        id="anon-companies",
    ),
    pytest.param(
        Case(
            "interviewer",
            "select id::text, full_name from public.profiles where id = any(%(users)s::uuid[])",
            lambda c, w: c.table("profiles").select("id, full_name").in_("id", w.user_ids),
        ),
        id="interviewer-profiles",
    ),
    pytest.param(
        Case(
            "me",
            "select user_id::text, role::text from public.user_roles where user_id = any(%(users)s::uuid[])",
            lambda c, w: c.table("user_roles").select("user_id, role").in_("user_id", w.user_ids),
        ),
        id="me-user_roles",
    ),
    pytest.param(
        Case(
            "platform_admin",
            "select user_id::text, role::text from public.user_roles where user_id = any(%(users)s::uuid[])",
            lambda c, w: c.table("user_roles").select("user_id, role").in_("user_id", w.user_ids),
        ),
        id="platform_admin-user_roles",
    ),
    pytest.param(
        Case(
            "stranger",
            "select id::text from public.companies where id = any(%(companies)s::uuid[])",
            lambda c, w: c.table("companies").select("id").in_("id", w.company_ids),
        ),
        id="stranger-companies",
    ),
    pytest.param(
        Case(
            "recruiter",
            "select id::text, name from public.companies where id = any(%(companies)s::uuid[])",
            lambda c, w: c.table("companies").select("id, name").in_("id", w.company_ids),
        ),
        id="recruiter-companies",
    ),
    pytest.param(
        Case(
            "platform_admin",
            "select id::text from public.companies where id = any(%(companies)s::uuid[])",
            lambda c, w: c.table("companies").select("id").in_("id", w.company_ids),
        ),
        id="platform_admin-companies",
    ),
    pytest.param(
        Case(
            "zeta_owner",
            "select company_id::text, user_id::text, role::text from public.company_members"
            " where company_id = any(%(companies)s::uuid[])",
            lambda c, w: (
                c.table("company_members")
                .select("company_id, user_id, role")
                .in_("company_id", w.company_ids)
            ),
        ),
        id="zeta_owner-company_members",
    ),
    pytest.param(
        Case(
            "service",
            "select company_id::text, user_id::text, role::text from public.company_members"
            " where company_id = any(%(companies)s::uuid[])",
            lambda c, w: (
                c.table("company_members")
                .select("company_id, user_id, role")
                .in_("company_id", w.company_ids)
            ),
        ),
        id="service-company_members",
    ),
    pytest.param(
        Case(
            "me",
            "insert into public.user_roles (user_id, role) values (%(me)s, 'admin') returning user_id::text",
            lambda c, w: (
                c.table("user_roles").insert({"user_id": w.me.id, "role": "admin"}).select("user_id")
            ),
        ),
        id="me-grants-self-admin",
    ),
    pytest.param(
        Case(
            "admin",
            "insert into public.company_members (company_id, user_id, role) values (%(acme)s, %(stranger)s, 'owner')"
            " returning user_id::text",
            lambda c, w: (
                c.table("company_members")
                .insert({"company_id": w.acme.id, "user_id": w.stranger.id, "role": "owner"})
                .select("user_id")
            ),
        ),
        id="admin-adds-owner",
    ),
    pytest.param(
        Case(
            "admin",
            "insert into public.company_members (company_id, user_id, role) values (%(acme)s, %(stranger)s, 'recruiter')"
            " returning user_id::text, role::text",
            lambda c, w: (
                c.table("company_members")
                .insert({"company_id": w.acme.id, "user_id": w.stranger.id, "role": "recruiter"})
                .select("user_id, role")
            ),
        ),
        id="admin-adds-recruiter",
    ),
    pytest.param(
        Case(
            "recruiter",
            "update public.companies set name = 'Pwned' where id = %(acme)s returning id::text",
            lambda c, w: c.table("companies").update({"name": "Pwned"}).eq("id", w.acme.id).select("id"),
        ),
        id="recruiter-edits-company",
    ),
    pytest.param(
        Case(
            "owner",
            "update public.companies set name = 'Acme Ltd' where id = %(acme)s returning id::text, name",
            lambda c, w: (
                c.table("companies").update({"name": "Acme Ltd"}).eq("id", w.acme.id).select("id, name")
            ),
        ),
        id="owner-edits-company",
    ),
    pytest.param(
        Case(
            "me",
            "update public.profiles set full_name = 'Hacked' where id = %(stranger)s returning id::text",
            lambda c, w: (
                c.table("profiles").update({"full_name": "Hacked"}).eq("id", w.stranger.id).select("id")
            ),
        ),
        id="me-edits-stranger",
    ),
    pytest.param(
        Case(
            "owner",
            "delete from public.company_members where company_id = %(acme)s and user_id = %(recruiter)s"
            " returning user_id::text",
            lambda c, w: (
                c.table("company_members")
                .delete()
                .eq("company_id", w.acme.id)
                .eq("user_id", w.recruiter.id)
                .select("user_id")
            ),
        ),
        id="owner-removes-recruiter",
    ),
    pytest.param(
        Case(
            "owner",
            "delete from public.company_members where company_id = %(acme)s and user_id = %(owner)s"
            " returning user_id::text",
            lambda c, w: (
                c.table("company_members")
                .delete()
                .eq("company_id", w.acme.id)
                .eq("user_id", w.owner.id)
                .select("user_id")
            ),
        ),
        id="last-owner-leaves",
    ),
    pytest.param(
        Case(
            "interviewer",
            "delete from public.companies where id = %(acme)s returning id::text",
            lambda c, w: c.table("companies").delete().eq("id", w.acme.id).select("id"),
        ),
        id="interviewer-deletes-company",
    ),
]


def case_sql(conn: psycopg.Connection, world: World, case: Case) -> Outcome:
    return sql_outcome(conn, actor(conn, world, case.who), case.sql, params_of(world))


@pytest.mark.parametrize("case", AGREEMENT)
def test_the_sql_way_and_postgrest_agree(api_url, world, conn, case):
    expected = case_sql(conn, world, case)
    assert rest_outcome(case.rest(client_as(api_url, world, case.who), world)) == expected


def test_the_agreement_cases_cover_rows_empty_answers_and_refusals(world, conn):
    # Agreement alone would pass if both sides refused everything: the cases must show each outcome.
    outcomes = [case_sql(conn, world, param.values[0]) for param in AGREEMENT]
    assert any(kind == "rows" and rows for kind, rows in outcomes)
    assert ("rows", []) in outcomes
    assert {code for kind, code in outcomes if kind == "refused"} == {INSUFFICIENT_PRIVILEGE, CHECK_VIOLATION}


# The gateway -----------------------------------------------------------------------------------------------


def long_website(i: int) -> str:
    return f"https://example.com/{'a' * 1900}/{i}"


def test_a_large_request_body_passes_intact(api_url, committed):
    prefix = f"Bulk{uuid.uuid4().hex[:6]}"
    rows = [{"name": f"{prefix} {i:04d}", "website": long_website(i)} for i in range(500)]
    body = json.dumps(rows).encode()  # ~1 MB
    response = httpx.post(
        f"{api_url}/rest/v1/companies?select=name,website",
        content=body,
        headers=keys({"Content-Type": "application/json", "Prefer": "return=representation"}),
        timeout=30,
    )
    assert response.status_code == 201, response.text[:300]
    assert response.json() == rows
    stored = value(committed, "select count(*) from public.companies where name like %s", (f"{prefix} %",))
    assert stored == 500


def test_a_chunked_request_body_is_forwarded(api_url, committed):
    # No Content-Length: the gateway must still see a body and stream it on.
    name = f"Chunked {uuid.uuid4().hex[:6]}"
    payload = json.dumps([{"name": name}]).encode()
    response = httpx.post(
        f"{api_url}/rest/v1/companies",
        content=iter([payload[:5], payload[5:]]),
        headers=keys({"Content-Type": "application/json", "Prefer": "return=minimal"}),
    )
    assert response.request.headers.get("transfer-encoding") == "chunked"
    assert response.status_code == 201, response.text
    assert value(committed, "select count(*) from public.companies where name = %s", (name,)) == 1


@pytest.fixture
def many_companies(committed) -> str:
    """800 companies with ~2 kB each, written as the superuser; returns their name prefix."""
    prefix = f"Many{uuid.uuid4().hex[:6]}"
    committed.execute(
        "insert into public.companies (name, website)"
        " select %s || ' ' || lpad(i::text, 4, '0'), 'https://example.com/' || repeat('a', 1900) || '/' || i"
        " from generate_series(0, 799) i",
        (prefix,),
    )
    return prefix


def test_a_large_response_arrives_whole_with_content_range(api_url, many_companies):
    url = f"{api_url}/rest/v1/companies?select=name,website&name=like.{many_companies}*&order=name"
    whole = httpx.get(url, headers=keys({"Prefer": "count=exact"}), timeout=30)
    assert whole.status_code == 200
    assert whole.headers["content-range"] == "0-799/800"
    assert len(whole.content) > 1_500_000
    assert whole.json() == [
        {"name": f"{many_companies} {i:04d}", "website": long_website(i)} for i in range(800)
    ]
    part = httpx.get(url, headers=keys({"Prefer": "count=exact", "Range": "100-299"}), timeout=30)
    assert part.status_code == 206  # Partial Content: fewer rows than the count
    assert part.headers["content-range"] == "100-299/800"
    assert [row["name"] for row in part.json()] == [f"{many_companies} {i:04d}" for i in range(100, 300)]


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        pytest.param("/companies?nope=eq.1", 400, "42703", id="unknown-column"),
        pytest.param("/companies?id=eq.not-a-uuid", 400, "22P02", id="bad-uuid"),
        pytest.param("/companies?id=unknownop.1", 400, "PGRST100", id="bad-operator"),
        pytest.param("/no_such_table", 404, "42P01", id="unknown-table"),
        pytest.param("/rpc/no_such_function", 404, "PGRST202", id="unknown-function"),
    ],
)
def test_postgrest_errors_pass_through(api_url, path, status, code):
    response = httpx.get(f"{api_url}/rest/v1{path}", headers=keys())
    assert response.status_code == status
    assert response.headers["content-type"].startswith("application/json")
    # PostgREST's own error shape, not ours ({"error", "message"}).
    body = response.json()
    assert set(body) == {"code", "details", "hint", "message"}
    assert body["code"] == code


def test_an_invalid_token_is_postgrests_401(api_url):
    response = httpx.get(f"{api_url}/rest/v1/profiles", headers=keys(key="not-a-jwt"))
    assert response.status_code == 401
    assert response.json()["code"] == "PGRST301"


def test_prefer_return_minimal_gives_201_and_no_body(api_url, committed):
    name = f"Minimal {uuid.uuid4().hex[:6]}"
    response = httpx.post(
        f"{api_url}/rest/v1/companies", json={"name": name}, headers=keys({"Prefer": "return=minimal"})
    )
    assert response.status_code == 201
    assert response.content == b""
    assert value(committed, "select count(*) from public.companies where name = %s", (name,)) == 1


def test_the_range_header_limits_rows(api_url, world):
    ids = ",".join(world.user_ids[:3])
    url = f"{api_url}/rest/v1/profiles?select=id&id=in.({ids})&order=id"
    limited = httpx.get(url, headers=keys({"Range": "0-1"}))
    assert limited.status_code == 200
    assert limited.headers["content-range"] == "0-1/*"
    assert [row["id"] for row in limited.json()] == sorted(world.user_ids[:3])[:2]
    counted = httpx.get(url, headers=keys({"Range": "1-1", "Prefer": "count=exact"}))
    assert counted.status_code == 206
    assert counted.headers["content-range"] == "1-1/3"
    assert [row["id"] for row in counted.json()] == sorted(world.user_ids[:3])[1:2]


@pytest.mark.parametrize(
    ("key", "status"),
    [pytest.param(ANON_KEY, 401, id="anon"), pytest.param(SERVICE_KEY, 200, id="service")],
)
def test_an_apikey_alone_acts_as_its_role(api_url, world, key, status):
    response = httpx.get(f"{api_url}/rest/v1/profiles?select=id&id=eq.{world.me.id}", headers={"apikey": key})
    assert response.status_code == status
    if status == 200:
        assert response.json() == [{"id": world.me.id}]
    else:
        assert response.json()["code"] == INSUFFICIENT_PRIVILEGE


def test_authorization_wins_over_the_apikey(api_url, world):
    # supabase-js sends the anon key as apikey and the user's token as Authorization; a service apikey
    # beside a user's token must not lift the user to the service role.
    response = httpx.get(
        f"{api_url}/rest/v1/user_roles?select=user_id&user_id=in.({','.join(world.user_ids)})",
        headers={"apikey": SERVICE_KEY, "Authorization": f"Bearer {token_for(world.me)}"},
    )
    assert response.status_code == 200
    assert response.json() == [{"user_id": world.me.id}]


def test_health_reports_rest_when_it_can(api_url):
    body = httpx.get(f"{api_url}/health").json()
    if "rest" in body:  # reported by rpc/health.py once it knows about PostgREST
        assert body["rest"] is True


@pytest.fixture
def own_stack(database: Database) -> Iterator[tuple[str, Any]]:
    """A stack of this test's own, whose PostgREST it may kill: (base URL, the app)."""
    from app import create_app
    from rpc.local.rest import HOW_TO_GET_IT, find_postgrest

    settings = database.settings(rest_api=True)
    if find_postgrest(settings) is None:
        pytest.skip(HOW_TO_GET_IT)
    app = create_app(settings)
    with live_server(app) as url:
        yield url, app


def test_postgrest_down_is_503_and_the_supervisor_restarts_it(own_stack):
    url, app = own_stack
    supervisor = app.state.postgrest
    assert httpx.get(f"{url}/rest/v1/profiles?limit=1", headers=keys()).status_code == 200
    before, pid = supervisor.restarts, supervisor.pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    # Once it is reaped and before the supervisor's first backoff (0.2 s) ends, nothing listens.
    deadline = time.monotonic() + 5
    while supervisor.pid == pid and time.monotonic() < deadline:
        time.sleep(0.005)
    down = httpx.get(f"{url}/rest/v1/profiles?limit=1", headers=keys())
    assert down.status_code == 503, down.text
    assert down.json()["error"] == "rest_unavailable"
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        again = httpx.get(f"{url}/rest/v1/profiles?limit=1", headers=keys())
        if again.status_code == 200:
            break
        time.sleep(0.05)
    assert again.status_code == 200, again.text
    assert supervisor.restarts == before + 1
    assert supervisor.pid not in (None, pid)
