-- =====================================================================================================
-- Companies, third pass: public profile fields, and soft delete
-- =====================================================================================================
-- A company describes itself (description, industry, address, a logo in the `company-logos` bucket), and
-- is deleted softly: interviews, introductions and role postings hang off it and are history worth
-- keeping. A deleted company (`deleted_at`) disappears for its members, whose membership no longer counts
-- anywhere (`private.is_company_member` now ignores deleted companies, so every policy built on it
-- follows), and stays visible to platform admins, who may restore it. Hard deletes are left to the
-- service role (erasure on request).
-- Policies for these tables live in supabase/policies/companies.sql.

-- Refusing a value with a message of our own: a check constraint written as `private.require(<rule>,
-- '<what is wrong>')` raises that message (check_violation, HTTP 400 through PostgREST) instead of
-- Postgres's "violates check constraint". NULL passes, as it does in any check constraint.
create function private.require(ok boolean, message text)
returns boolean
language plpgsql
immutable
set search_path = ''
as $$
begin
  if not ok then
    raise exception using errcode = 'check_violation', message = message;
  end if;
  return true;
end;
$$;
revoke execute on function private.require(boolean, text) from public;
grant execute on function private.require(boolean, text) to anon, authenticated, service_role;

alter table public.companies
  add column description text not null default ''
    check (private.require(char_length(description) <= 5000, 'description: at most 5,000 characters')),
  add column industry text
    check (private.require(char_length(btrim(industry)) between 1 and 100, 'industry: 1 to 100 characters')),
  add column address text
    check (private.require(char_length(address) <= 500, 'address: at most 500 characters')),
  add column logo_path text
    check (private.require(
      starts_with(logo_path, id::text || '/') and logo_path !~ '(^|/)\.\.?(/|$)' and char_length(logo_path) <= 1024,
      'logo_path: the name of an object in the company-logos bucket, in the company''s folder (<company id>/...)'
    )),
  add column deleted_at timestamptz,
  add column deleted_by uuid references auth.users (id) on delete set null;
comment on column public.companies.logo_path is
  'The logo''s object name in the public company-logos bucket (<company id>/<file>); its URL is the bucket''s public URL.';
comment on column public.companies.deleted_at is
  'Set by delete_company: the company vanishes for everyone but platform admins, who may restore_company it.';
create index companies_industry_idx on public.companies (industry) where deleted_at is null;
create index companies_deleted_by_idx on public.companies (deleted_by);

-- Profile fields are the members' to write (the update policy says which members); deleting goes through
-- delete_company, and history stays: no delete privilege for users any more.
grant insert (description, industry, address), update (description, industry, address, logo_path)
  on public.companies to authenticated;
revoke delete on public.companies from authenticated;

-- Membership of a deleted company counts for nothing: replaces the companies migration's definition. In
-- plpgsql, as has_role below: a security definer SQL function is never inlined, and Postgres plans its
-- query afresh at each call, where a connection keeps a plpgsql function's plan (policies call these on
-- every row they check).
create or replace function private.is_company_member(company_id uuid, roles public.company_role[] default null)
returns boolean
language plpgsql
stable
security definer
set search_path = ''
as $$
begin
  return exists (
    select 1
    from public.company_members cm
    join public.companies c on c.id = cm.company_id
    where cm.company_id = is_company_member.company_id
      and cm.user_id = (select auth.uid())
      and c.deleted_at is null
      and (is_company_member.roles is null or cm.role = any (is_company_member.roles))
  );
end;
$$;

create or replace function private.has_role(role public.app_role)
returns boolean
language plpgsql
stable
security definer
set search_path = ''
as $$
begin
  return exists (
    select 1 from public.user_roles ur
    where ur.user_id = (select auth.uid()) and ur.role = has_role.role
  );
end;
$$;

create or replace function private.is_verified_company(company_id uuid)
returns boolean
language plpgsql
stable
security definer
set search_path = ''
as $$
begin
  return exists (
    select 1 from public.companies c
    where c.id = is_verified_company.company_id and c.verified_at is not null and c.deleted_at is null
  );
end;
$$;

-- Soft delete and restore: security definer (no user may write deleted_at), each checking its caller.
create function private.delete_company(company_id uuid)
returns void
language plpgsql
security definer
set search_path = ''
as $$
begin
  if not private.is_company_member(company_id, '{owner}') then
    -- A company the caller cannot delete and one that does not exist answer alike.
    raise exception 'no such company, or you are not its owner' using errcode = 'PT404';
  end if;
  update public.companies c
  set deleted_at = now(), deleted_by = (select auth.uid())
  where c.id = delete_company.company_id;
end;
$$;
revoke execute on function private.delete_company(uuid) from public;
grant execute on function private.delete_company(uuid) to authenticated;

create function public.delete_company(company_id uuid)
returns void
language sql
set search_path = ''
as $$
  select private.delete_company(company_id);
$$;
comment on function public.delete_company(uuid) is
  'Owners delete their company: it disappears for everyone but platform admins; its history stays.';
revoke execute on function public.delete_company(uuid) from public, anon;
grant execute on function public.delete_company(uuid) to authenticated;

create function private.restore_company(company_id uuid)
returns public.companies
language plpgsql
security definer
set search_path = ''
as $$
declare
  restored public.companies;
begin
  if not private.has_role('admin') then
    raise exception 'only platform admins restore companies' using errcode = 'insufficient_privilege';
  end if;
  update public.companies c
  set deleted_at = null, deleted_by = null
  where c.id = restore_company.company_id
  returning * into restored;
  if restored.id is null then
    raise exception 'no such company' using errcode = 'PT404';
  end if;
  return restored;
end;
$$;
revoke execute on function private.restore_company(uuid) from public;
grant execute on function private.restore_company(uuid) to authenticated;

create function public.restore_company(company_id uuid)
returns public.companies
language sql
set search_path = ''
as $$
  select * from private.restore_company(company_id);
$$;
comment on function public.restore_company(uuid) is 'Platform admins bring a deleted company back.';
revoke execute on function public.restore_company(uuid) from public, anon;
grant execute on function public.restore_company(uuid) to authenticated;
