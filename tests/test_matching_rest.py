"""Executive matching as the frontend meets it: supabase-py against the local stack, with real PostgREST
behind /rest/v1 and our functions at /functions/v1.

- The whole flow, step by step as the two frontends do it: an executive writes their profile, contact
  details and skills; an employer posts roles with `post_role`, lists open roles with filters and
  pagination, runs the `matching` function, reads the stored matches, asks for an introduction; the
  executive answers with `respond_to_introduction`, and only then does the employer read the contacts.
- The same answers as the SQL-level RLS matrix in test_matching.py, for a sample of its cases.
- Bad input: PostgREST's error (status, code, message) for every rpc refusal, our `{"error", "message"}`
  for the functions, never a 500.

Data is committed (PostgREST has its own connections); every skill and industry tag carries a random
suffix, so tests do not see each other's roles and candidates.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import psycopg
import pytest
from postgrest.exceptions import APIError
from supabase import Client, ClientOptions, create_client
from supabase_functions.errors import FunctionsHttpError

from rpc.local.tokens import api_key
from tests.conftest import Database
from tests.support import (
    SECRET,
    Company,
    Skill,
    User,
    add_contacts,
    add_introduction,
    add_match,
    add_member,
    bearer,
    make_company,
    make_executive,
    make_role,
    make_skill,
    make_user,
    token_for,
)

ANON_KEY = api_key(SECRET, "anon")
# supabase-py passes its own deprecated options to its sub-clients on every call; nothing here to fix.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:supabase")


def supabase(api_url: str, user: User | None = None) -> Client:
    """A supabase-py client with the anon key, signed in as `user` by a token in the Authorization header
    (there is no /auth/v1 here; supabase-js would take the same token in its accessToken option)."""
    headers = bearer(token_for(user)) if user else {}
    options = ClientOptions(headers=headers, auto_refresh_token=False, persist_session=False)
    return create_client(api_url, ANON_KEY, options)


def invoke(client: Client, name: str, body: dict[str, Any]) -> dict[str, Any]:
    return json.loads(client.functions.invoke(name, invoke_options={"body": body}))


def refused(call: Callable[[], Any]) -> APIError:
    with pytest.raises(APIError) as error:
        call()
    return error.value


def suffix() -> str:
    return uuid.uuid4().hex[:8]


# The whole flow ----------------------------------------------------------------------------------------


def test_an_executive_and_an_employer_meet_through_the_frontend(api_url, committed):
    tag = suffix()
    finance = make_skill(committed, "finance")
    fpa = make_skill(committed, "fpa", parent=finance, aliases=("fp&a",))
    exec_user = make_user(committed, full_name="Eve Executive", roles=("executive",))
    recruiter = make_user(committed, full_name="Rita Recruiter", roles=("employer",))
    acme = make_company(committed, recruiter, name=f"Acme {tag}", verified=True)
    executive, employer = supabase(api_url, exec_user), supabase(api_url, recruiter)

    # The executive's onboarding: profile, private contact details, skills resolved from free text.
    profile = (
        executive.table("executive_profiles")
        .insert(
            {
                "user_id": exec_user.id,
                "headline": "Fractional CFO for fintech scale-ups",
                "seniority": "c_level",
                "industries": [f"FinTech {tag}"],
                "engagement_types": ["fractional", "interim"],
                "is_open": True,
            }
        )
        .execute()
        .data
    )
    assert profile[0]["industries"] == [f"fintech {tag}"]
    executive.table("executive_contacts").insert(
        {"user_id": exec_user.id, "email": "eve@private.example", "phone": "+44 20 7946 0001"}
    ).execute()
    resolved = executive.rpc("resolve_skills", {"names": [fpa.aliases[0].upper(), "Juggling"]}).execute().data
    assert [(r["skill_id"], r["slug"]) for r in resolved] == [(fpa.id, fpa.slug), (None, None)]
    executive.table("executive_skills").insert(
        [{"executive_id": exec_user.id, "skill_id": fpa.id, "level": 5}]
    ).execute()

    # The employer posts roles with skills as free text: an alias and a name, weights and required flags.
    def post(title: str, status: str, industries: list[str]) -> dict[str, Any]:
        role = {
            "company_id": acme.id,
            "title": title,
            "engagement_type": "fractional",
            "seniority": "c_level",
            "industries": industries,
            "status": status,
            "skills": [
                {"name": fpa.aliases[0], "required": True, "weight": 2},
                {"name": f"  {finance.name.lower()} "},
            ],
        }
        return employer.rpc("post_role", {"role": role}).execute().data

    cfo = post("Fractional CFO", "open", [f"fintech {tag}", f"saas {tag}"])
    assert (cfo["status"], cfo["created_by"]) == ("open", recruiter.id)
    post("Interim CFO", "open", [f"fintech {tag}"])
    post("Group CFO", "open", [f"retail {tag}"])
    draft = post("Secret CFO", "draft", [f"fintech {tag}"])

    # Listing open roles: filtered by industry, newest first, one page at a time, with the total.
    def page(client: Client, start: int, end: int):
        return (
            client.table("role_postings")
            .select("id, title, industries", count="exact")
            .eq("status", "open")
            .contains("industries", [f"fintech {tag}"])
            .order("opened_at", desc=True)
            .order("id")
            .range(start, end)
            .execute()
        )

    first, second = page(employer, 0, 0), page(employer, 1, 1)
    assert (first.count, [r["title"] for r in first.data + second.data]) == (
        2,
        ["Interim CFO", "Fractional CFO"],
    )
    # The executive sees the same open roles and never the draft.
    everything = (
        executive.table("role_postings").select("id").contains("industries", [f"fintech {tag}"]).execute()
    )
    assert draft["id"] not in {r["id"] for r in everything.data}
    assert len(everything.data) == 2

    # Matching, then the stored matches read back through PostgREST.
    matches = invoke(employer, "matching", {"role_id": cfo["id"]})["matches"]
    assert [m["executive_id"] for m in matches] == [exec_user.id]
    assert matches[0]["breakdown"]["skills"]["matched_required"] == [fpa.slug]
    assert matches[0]["breakdown"]["skills"]["related"] == [finance.slug]  # holds its specialisation
    stored = (
        employer.table("matches")
        .select("executive_id, score, breakdown")
        .eq("role_id", cfo["id"])
        .order("score", desc=True)
        .execute()
        .data
    )
    assert [(m["executive_id"], m["score"]) for m in stored] == [(exec_user.id, matches[0]["score"])]
    # Matched: the employer may read the profile, but not the contact details.
    seen = employer.table("executive_profiles").select("headline").eq("user_id", exec_user.id).execute().data
    assert seen == [{"headline": "Fractional CFO for fintech scale-ups"}]
    assert employer.table("executive_contacts").select("*").eq("user_id", exec_user.id).execute().data == []

    # The introduction: requested by the employer, answered by the executive through the one function.
    request = (
        employer.table("introductions")
        .insert({"role_id": cfo["id"], "executive_id": exec_user.id, "message": "Coffee next week?"})
        .execute()
        .data[0]
    )
    assert (request["status"], request["company_id"]) == ("requested", acme.id)
    mine = executive.table("introductions").select("id, message").execute().data
    assert mine == [{"id": request["id"], "message": "Coffee next week?"}]
    error = refused(
        lambda: (
            executive.table("introductions").update({"status": "accepted"}).eq("id", request["id"]).execute()
        )
    )
    assert error.code == "42501"
    answer = executive.rpc(
        "respond_to_introduction", {"introduction_id": request["id"], "accept": True}
    ).execute()
    assert answer.data["status"] == "accepted"

    contacts = (
        employer.table("executive_contacts").select("email, phone").eq("user_id", exec_user.id).execute()
    )
    assert contacts.data == [{"email": "eve@private.example", "phone": "+44 20 7946 0001"}]

    # And the executive's own view: their best open roles, the draft never among them.
    roles = invoke(executive, "matching/roles", {"limit": 10})["matches"]
    assert {r["role_id"] for r in roles} >= {cfo["id"]}
    assert draft["id"] not in {r["role_id"] for r in roles}


# The same answers as the SQL-level matrix ------------------------------------------------------------


@dataclass(frozen=True)
class Cast:
    executive: User
    stranger: User
    owner: User
    recruiter: User
    interviewer: User
    zeta_owner: User
    acme: Company
    finance: Skill
    roles: dict[str, str]
    introduction: str

    def user(self, who: str) -> User | None:
        return None if who == "anon" else getattr(self, who)


@pytest.fixture(scope="module")
def cast(database: Database) -> Iterator[Cast]:
    """A small world, committed once for the module: Acme (owner, recruiter, interviewer; verified) with an
    open and a draft role, Zeta (not verified) with a draft; the executive matched to Acme's open role and asked for an
    introduction."""
    with psycopg.connect(database.superuser, autocommit=True) as conn:
        finance = make_skill(conn, "finance")
        executive = make_executive(conn, skills={finance: 4})
        add_contacts(conn, executive)
        owner, zeta_owner = make_user(conn), make_user(conn)
        acme, zeta = make_company(conn, owner, verified=True), make_company(conn, zeta_owner)
        recruiter, interviewer = make_user(conn), make_user(conn)
        add_member(conn, acme, recruiter, "recruiter")
        add_member(conn, acme, interviewer, "interviewer")
        roles = {
            "acme_open": make_role(conn, acme, wants={finance: True}, industries=[f"cast {suffix()}"]),
            "acme_draft": make_role(conn, acme, wants={finance: True}, status="draft"),
            "zeta_draft": make_role(conn, zeta, wants={finance: True}, status="draft"),
        }
        add_match(conn, roles["acme_open"], executive)
        introduction = add_introduction(conn, roles["acme_open"], executive, recruiter)
        yield Cast(
            executive,
            make_user(conn),
            owner,
            recruiter,
            interviewer,
            zeta_owner,
            acme,
            finance,
            roles,
            introduction,
        )


def ids(response) -> set[str]:
    return {next(iter(row.values())) for row in response.data}


Request = Callable[[Client, Cast], Any]

SAME_ANSWERS: list[Any] = [
    # Open roles for every signed-in user, drafts inside their company, nothing for anon.
    pytest.param(
        "anon", lambda c, w: c.table("role_postings").select("id").execute(), "42501", id="anon-roles"
    ),
    pytest.param(
        "stranger",
        lambda c, w: ids(c.table("role_postings").select("id").in_("id", list(w.roles.values())).execute()),
        {"acme_open"},
        id="stranger-roles",
    ),
    pytest.param(
        "interviewer",
        lambda c, w: ids(c.table("role_postings").select("id").in_("id", list(w.roles.values())).execute()),
        {"acme_open", "acme_draft"},
        id="member-roles",
    ),
    pytest.param(
        "zeta_owner",
        lambda c, w: ids(c.table("role_postings").select("id").in_("id", list(w.roles.values())).execute()),
        {"acme_open", "zeta_draft"},
        id="other-company-roles",
    ),
    # Executives: seen by matched companies only; contacts not before acceptance.
    pytest.param(
        "recruiter",
        lambda c, w: ids(
            c.table("executive_profiles").select("user_id").eq("user_id", w.executive.id).execute()
        ),
        {"executive"},
        id="matched-company-sees-profile",
    ),
    pytest.param(
        "zeta_owner",
        lambda c, w: ids(
            c.table("executive_profiles").select("user_id").eq("user_id", w.executive.id).execute()
        ),
        set(),
        id="other-company-sees-no-profile",
    ),
    pytest.param(
        "owner",
        lambda c, w: ids(
            c.table("executive_contacts").select("user_id").eq("user_id", w.executive.id).execute()
        ),
        set(),
        id="no-contacts-before-acceptance",
    ),
    pytest.param(
        "executive",
        lambda c, w: ids(c.table("executive_contacts").select("user_id").execute()),
        {"executive"},
        id="own-contacts",
    ),
    pytest.param(
        "executive",
        lambda c, w: ids(c.table("matches").select("role_id").execute()),
        {"acme_open"},
        id="executive-matches",
    ),
    pytest.param(
        "zeta_owner",
        lambda c, w: ids(c.table("matches").select("role_id").eq("executive_id", w.executive.id).execute()),
        set(),
        id="other-company-matches",
    ),
    # Writes the policies and grants refuse.
    pytest.param(
        "interviewer",
        lambda c, w: c.rpc(
            "post_role", {"role": {"company_id": w.acme.id, "title": "Nope", "engagement_type": "interim"}}
        ).execute(),
        "42501",
        id="interviewer-cannot-post",
    ),
    pytest.param(
        "recruiter",
        lambda c, w: (
            c.table("introductions").update({"status": "accepted"}).eq("id", w.introduction).execute()
        ),
        "42501",
        id="employer-cannot-accept",
    ),
    pytest.param(
        "recruiter",
        lambda c, w: (
            c.table("matches")
            .insert(
                {
                    "role_id": w.roles["acme_draft"],
                    "executive_id": w.executive.id,
                    "score": 99,
                    "breakdown": {},
                }
            )
            .execute()
        ),
        "42501",
        id="nobody-writes-matches",
    ),
    pytest.param(
        "stranger",
        lambda c, w: len(
            c.table("executive_profiles")
            .update({"headline": "Hacked"})
            .eq("user_id", w.executive.id)
            .execute()
            .data
        ),
        0,
        id="stranger-updates-nothing",
    ),
    pytest.param(
        "anon",
        lambda c, w: c.rpc(
            "respond_to_introduction", {"introduction_id": w.introduction, "accept": True}
        ).execute(),
        "42501",
        id="anon-cannot-answer",
    ),
    pytest.param(
        "anon",
        lambda c, w: ids(c.table("skills").select("id").eq("id", w.finance.id).execute()),
        {"finance"},
        id="anon-reads-skills",
    ),
]


@pytest.mark.parametrize(("who", "request_", "expected"), SAME_ANSWERS)
def test_postgrest_gives_the_same_answers_as_the_sql_matrix(api_url, cast, who, request_, expected):
    client = supabase(api_url, cast.user(who))
    names = {cast.executive.id: "executive", str(cast.finance.id): "finance"}
    names.update({role_id: name for name, role_id in cast.roles.items()})
    if isinstance(expected, str):
        assert refused(lambda: request_(client, cast)).code == expected
        return
    answer = request_(client, cast)
    assert ({names.get(str(v), v) for v in answer} if isinstance(answer, set) else answer) == expected


# Bad input: a clear 4xx from PostgREST for every rpc refusal -------------------------------------------


def rpc(api_url: str, user: User, function: str, body: Any) -> httpx.Response:
    """A raw call, to see the HTTP status the frontend gets (supabase-py keeps only the body)."""
    headers = {"apikey": ANON_KEY, **bearer(token_for(user))}
    return httpx.post(f"{api_url}/rest/v1/rpc/{function}", json=body, headers=headers)


def a_role(cast: Cast, **change: Any) -> dict[str, Any]:
    return {"company_id": cast.acme.id, "title": "Interim CFO", "engagement_type": "interim", **change}


BAD_ROLES = [
    pytest.param(lambda w: a_role(w, skills=[{"name": "no such skill"}]), 400, "22023", id="unknown-skill"),
    pytest.param(
        lambda w: a_role(
            w,
            compensation_currency="EUR",
            compensation_unit="day",
            compensation_min=900,
            compensation_max=800,
        ),
        400,
        "23514",
        id="min-above-max",
    ),
    pytest.param(lambda w: a_role(w, engagement_type="gig"), 400, "22P02", id="bad-enum"),
    pytest.param(lambda w: a_role(w, status="closed"), 400, "23514", id="born-closed"),
    pytest.param(lambda w: {"id": w.roles["acme_open"], "status": "draft"}, 400, "23514", id="back-to-draft"),
    pytest.param(lambda w: {"id": "not-a-uuid"}, 400, "22P02", id="malformed-id"),
    pytest.param(lambda w: {"id": w.roles["zeta_draft"], "title": "Mine now"}, 403, "42501", id="not-yours"),
    pytest.param(lambda w: a_role(w, skills="finance"), 400, "22023", id="skills-not-a-list"),
    pytest.param(lambda w: [1, 2], 400, "22023", id="not-an-object"),
]


@pytest.mark.parametrize(("role", "status", "code"), BAD_ROLES)
def test_post_role_refuses_bad_input_with_a_4xx(api_url, cast, role, status, code):
    response = rpc(api_url, cast.recruiter, "post_role", {"role": role(cast)})
    assert response.status_code == status, response.text
    error = response.json()
    assert (error["code"], bool(error["message"])) == (code, True)


@pytest.fixture
def introduction(committed, cast) -> tuple[str, User]:
    """A fresh request from Acme's open role to a newly matched executive."""
    executive = make_executive(committed, skills={cast.finance: 3})
    add_match(committed, cast.roles["acme_open"], executive)
    return add_introduction(committed, cast.roles["acme_open"], executive, cast.recruiter), executive


@pytest.mark.parametrize(
    ("case", "status", "code"),
    [
        pytest.param("someone-elses", 403, "42501", id="someone-elses"),
        pytest.param("unknown", 403, "42501", id="unknown"),
        pytest.param("malformed", 400, "22P02", id="malformed-id"),
        pytest.param("no-answer", 400, "22023", id="accept-null"),
        pytest.param("expired", 400, "23514", id="expired"),
        pytest.param("answered", 400, "23514", id="already-answered"),
    ],
)
def test_respond_to_introduction_refuses_with_a_4xx(
    api_url, committed, cast, introduction, case, status, code
):
    introduction_id, executive = introduction
    body: dict[str, Any] = {"introduction_id": introduction_id, "accept": True}
    caller = executive
    if case == "someone-elses":
        caller = cast.executive
    elif case == "unknown":
        body["introduction_id"] = str(uuid.uuid4())
    elif case == "malformed":
        body["introduction_id"] = "intro-1"
    elif case == "no-answer":
        body["accept"] = None
    elif case == "expired":
        committed.execute(
            "update public.introductions set expires_at = now() - interval '1 minute' where id = %s",
            (introduction_id,),
        )
    elif case == "answered":
        assert rpc(api_url, executive, "respond_to_introduction", body).status_code == 200
    response = rpc(api_url, caller, "respond_to_introduction", body)
    assert response.status_code == status, response.text
    assert response.json()["code"] == code
    expected = "accepted" if case == "answered" else "requested"
    status_now = committed.execute(
        "select status::text from public.introductions where id = %s", (introduction_id,)
    ).fetchone()
    assert status_now == (expected,)


# Bad input to the functions, as supabase-py reports it ------------------------------------------------


@pytest.mark.parametrize(
    ("who", "name", "body", "status", "error"),
    [
        pytest.param(
            "owner", "matching", {"role_id": "not-a-uuid"}, 422, "validation_failed", id="malformed-id"
        ),
        pytest.param(
            "owner",
            "matching",
            {"role_id": "{acme_open}", "limit": 0},
            422,
            "validation_failed",
            id="limit-0",
        ),
        pytest.param(
            "owner",
            "matching",
            {"role_id": "{acme_open}", "limit": 101},
            422,
            "validation_failed",
            id="limit-101",
        ),
        pytest.param(
            "owner",
            "matching",
            {"role_id": "{acme_open}", "limit": "x"},
            422,
            "validation_failed",
            id="limit-x",
        ),
        pytest.param("owner", "matching", {"role_id": "{unknown}"}, 404, "role_not_found", id="unknown-role"),
        pytest.param(
            "zeta_owner", "matching", {"role_id": "{acme_open}"}, 403, "not_a_company_member", id="non-member"
        ),
        pytest.param("anon", "matching", {"role_id": "{acme_open}"}, 403, "insufficient_role", id="anon"),
        pytest.param(
            "stranger", "matching/roles", {}, 404, "executive_profile_not_found", id="roles-without-profile"
        ),
        pytest.param(
            "executive", "matching/roles", {"limit": 101}, 422, "validation_failed", id="roles-limit-101"
        ),
    ],
)
def test_functions_refuse_bad_input_in_our_error_shape(api_url, cast, who, name, body, status, error):
    body = {
        k: (cast.roles["acme_open"] if v == "{acme_open}" else str(uuid.uuid4()) if v == "{unknown}" else v)
        for k, v in body.items()
    }
    client = supabase(api_url, cast.user(who))
    with pytest.raises(FunctionsHttpError) as refusal:
        invoke(client, name, body)
    # supabase-py reports the status and our error code; the body is ours too.
    assert (refusal.value.status, refusal.value.message) == (status, error)
    raw = httpx.post(
        f"{api_url}/functions/v1/{name}",
        json=body,
        headers={"apikey": ANON_KEY, **bearer(token_for(cast.user(who)) if who != "anon" else ANON_KEY)},
    )
    assert raw.status_code == status
    assert set(raw.json()) >= {"error", "message"}
