-- =====================================================================================================
-- Companies and their members
-- =====================================================================================================
-- Most capabilities hang off a company: role postings, interviewers, bookings. A company has members,
-- each with one company role. Whoever creates a company becomes its owner; owners and admins add and
-- remove members, so nobody joins a company uninvited; a company always keeps at least one owner.
-- Policies for these tables live in supabase/policies/companies.sql.

create type public.company_role as enum ('owner', 'admin', 'recruiter', 'interviewer');
comment on type public.company_role is
  'owner: everything; admin: members and settings; recruiter: hiring work; interviewer: interviews only.';

create table public.companies (
  id uuid primary key default gen_random_uuid(),
  name text not null check (char_length(btrim(name)) between 1 and 200),
  slug text unique check (slug ~ '^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$'),
  website text check (website ~* '^https?://[^[:space:]]+$' and char_length(website) <= 2048),
  created_by uuid default auth.uid() references auth.users (id) on delete set null,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
comment on table public.companies is 'Organisations that hire. Created by any signed-in user, who becomes its owner.';
create index companies_created_by_idx on public.companies (created_by);

alter table public.companies enable row level security;

create trigger companies_touch_updated_at
  before update on public.companies
  for each row execute function private.touch_updated_at();

-- No privileges but the ones granted here, whatever the project's defaults (see the identity migration).
revoke all on public.companies from anon, authenticated, service_role;
grant select, delete on public.companies to authenticated;
grant insert (name, slug, website), update (name, slug, website) on public.companies to authenticated;
grant select, insert, update, delete on public.companies to service_role;

create table public.company_members (
  company_id uuid not null references public.companies (id) on delete cascade,
  user_id uuid not null references auth.users (id) on delete cascade,
  role public.company_role not null,
  invited_by uuid default auth.uid() references auth.users (id) on delete set null,
  created_at timestamptz not null default now(),
  primary key (company_id, user_id)
);
comment on table public.company_members is 'Who belongs to which company, with which company role.';
-- Policies look memberships up by user; the primary key serves lookups by company.
create index company_members_user_id_idx on public.company_members (user_id, company_id, role);
create index company_members_invited_by_idx on public.company_members (invited_by);

alter table public.company_members enable row level security;

revoke all on public.company_members from anon, authenticated, service_role;
grant select, delete on public.company_members to authenticated;
grant insert (company_id, user_id, role), update (role) on public.company_members to authenticated;
grant select, insert, update, delete on public.company_members to service_role;

-- True when the caller is a member of the company, holding one of `roles` if given. Security definer so
-- that policies on company_members can call it without recursing into their own RLS.
create function private.is_company_member(company_id uuid, roles public.company_role[] default null)
returns boolean
language sql
stable
security definer
set search_path = ''
as $$
  select exists (
    select 1 from public.company_members cm
    where cm.company_id = is_company_member.company_id
      and cm.user_id = (select auth.uid())
      and (is_company_member.roles is null or cm.role = any (is_company_member.roles))
  );
$$;
revoke execute on function private.is_company_member(uuid, public.company_role[]) from public;
grant execute on function private.is_company_member(uuid, public.company_role[]) to authenticated, service_role;

-- The creator of a company becomes its owner. Security definer: no policy lets a user add themselves.
create function private.add_company_creator_as_owner()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  if new.created_by is not null then
    insert into public.company_members (company_id, user_id, role, invited_by)
    values (new.id, new.created_by, 'owner', new.created_by);
  end if;
  return new;
end;
$$;
revoke execute on function private.add_company_creator_as_owner() from public;

create trigger companies_add_creator_as_owner
  after insert on public.companies
  for each row execute function private.add_company_creator_as_owner();

-- A company never loses its last owner through a demotion or a removal. Deleting the company itself,
-- or the owner's auth user, still cascades.
create function private.keep_a_company_owner()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  if old.role <> 'owner' or (tg_op = 'UPDATE' and new.role = 'owner') then
    return coalesce(new, old);
  end if;
  -- Lock the company so that two owners removing each other at once cannot both succeed.
  perform 1 from public.companies c where c.id = old.company_id for update;
  if not found
     or not exists (select 1 from auth.users u where u.id = old.user_id) then
    return coalesce(new, old);
  end if;
  if not exists (
    select 1 from public.company_members cm
    where cm.company_id = old.company_id and cm.role = 'owner' and cm.user_id <> old.user_id
  ) then
    raise exception 'a company must keep at least one owner'
      using errcode = 'check_violation', hint = 'Make another member an owner first.';
  end if;
  return coalesce(new, old);
end;
$$;
revoke execute on function private.keep_a_company_owner() from public;

create trigger company_members_keep_an_owner
  before update of role or delete on public.company_members
  for each row execute function private.keep_a_company_owner();
