"""Company profiles (description, industry, address, a logo in the company-logos bucket) and what soft
delete does to the rest of a company's standing: its verification, its members' rights."""

from __future__ import annotations

import psycopg
import pytest

from tests.support import add_member, as_user, make_company, make_user, value

CHECK_VIOLATION = "23514"
PROFILE = (
    "update public.companies set description = %s, industry = %s, address = %s, logo_path = %s where id = %s"
)


@pytest.fixture
def acme(conn: psycopg.Connection):
    owner = make_user(conn, full_name="Olive Owner")
    company = make_company(conn, owner, name="Acme", verified=True)
    people = {"owner": owner}
    for role in ("admin", "recruiter", "interviewer"):
        people[role] = make_user(conn, full_name=f"Acme {role}")
        add_member(conn, company, people[role], role)
    people["stranger"] = make_user(conn, full_name="Sam Stranger")
    return company, people


@pytest.mark.parametrize(
    ("who", "changes"), [("owner", 1), ("admin", 1), ("recruiter", 0), ("interviewer", 0), ("stranger", 0)]
)
def test_owners_and_admins_write_the_profile(conn, acme, who, changes):
    company, people = acme
    logo = f"{company.id}/logo.png"
    assert (
        as_user(conn, people[who]).count(PROFILE, ("Robots.", "Robotics", "Berlin", logo, company.id))
        == changes
    )
    expected = ("Robots.", "Robotics", "Berlin", logo) if changes else ("", None, None, None)
    assert (
        conn.execute(
            "select description, industry, address, logo_path from public.companies where id = %s",
            (company.id,),
        ).fetchone()
        == expected
    )


@pytest.mark.parametrize(
    ("column", "bad", "message"),
    [
        ("logo_path", "00000000-0000-0000-0000-000000000000/logo.png", "in the company's folder"),
        ("logo_path", "logo.png", "in the company's folder"),
        ("description", "x" * 5001, "description: at most 5,000 characters"),
        ("industry", "  ", "industry: 1 to 100 characters"),
        ("address", "x" * 501, "address: at most 500 characters"),
    ],
)
def test_bad_profile_values_are_refused_with_a_message_a_form_can_show(conn, acme, column, bad, message):
    company, people = acme
    values = {"description": "", "industry": None, "address": None, "logo_path": None, column: bad}
    error = as_user(conn, people["owner"]).refused(
        PROFILE,
        (values["description"], values["industry"], values["address"], values["logo_path"], company.id),
        sqlstate=CHECK_VIOLATION,
    )
    assert message in str(error)
    assert "violates" not in str(error)


def test_a_deleted_company_is_no_longer_verified_nor_anyones_company(conn, acme):
    company, people = acme
    owner = as_user(conn, people["owner"])
    assert owner.one("select private.is_verified_company(%s) as yes", (company.id,))["yes"] is True
    owner.rows("select public.delete_company(%s)", (company.id,))
    assert owner.one("select private.is_verified_company(%s) as yes", (company.id,))["yes"] is False
    assert owner.one("select private.is_company_member(%s) as yes", (company.id,))["yes"] is False
    # Its members can no longer act for it: no new role postings, no invitations.
    owner.refused(
        "insert into public.role_postings (company_id, title, engagement_type) values (%s, 'CFO', 'interim')",
        (company.id,),
    )
    assert value(conn, "select verified_at is not null from public.companies where id = %s", (company.id,))
