-- =====================================================================================================
-- Matching, second pass: only verified companies see executives; introductions counted for good
-- =====================================================================================================
-- Before this, anyone who signed up could create a company and a role, run matching, and read every open
-- executive's profile through the stored matches. Now:
-- - A company sees an executive only once a platform admin has verified it (companies.verified_at), and
--   then only an executive it was matched or introduced to while the profile is open, or one who accepted
--   its introduction. Closing a profile hides it from everyone else, past (declined, expired) requests
--   included.
-- - Matching and introductions are for a verified company's owners, admins and recruiters.
-- - A match is stored only while the executive's profile is open, whatever a run read when it began.
-- - The daily limit of introduction requests counts requests made, in a ledger nothing deletes from; a role
--   with introductions cannot be deleted (close it instead); one open request per company and executive.
-- - The employer side of an answer is emailed to the requester only while they still hire for the company,
--   otherwise to its owners; an unverified company cannot receive an acceptance.
-- - Asking for an introduction one may not ask for is refused as such (42501) before anything else is
--   looked at: no error tells a stranger whether a draft role exists or a company hit its limit.
-- Policies for these tables live in supabase/policies/matching.sql.

-- Who may do what ------------------------------------------------------------------------------------

-- The caller hires for the company (owner, admin or recruiter) and the company is verified.
create function private.can_hire_with(company_id uuid)
returns boolean
language sql
stable
set search_path = ''
as $$
  select private.is_company_member(company_id, '{owner,admin,recruiter}') and private.is_verified_company(company_id);
$$;
revoke execute on function private.can_hire_with(uuid) from public;
grant execute on function private.can_hire_with(uuid) to service_role;

-- The company may see the executive: it is verified, and either the executive accepted its introduction,
-- or the profile is open and the company matched one of its roles to them or asked for an introduction.
create function private.company_sees_executive(company_id uuid, executive_id uuid)
returns boolean
language sql
stable
security definer
set search_path = ''
as $$
  select private.is_verified_company(company_sees_executive.company_id) and (
    exists (
      select 1 from public.introductions i
      where i.company_id = company_sees_executive.company_id
        and i.executive_id = company_sees_executive.executive_id and i.status = 'accepted'
    )
    or (
      exists (
        select 1 from public.executive_profiles p
        where p.user_id = company_sees_executive.executive_id and p.is_open
      )
      and (
        exists (
          select 1 from public.matches m join public.role_postings r on r.id = m.role_id
          where m.executive_id = company_sees_executive.executive_id
            and r.company_id = company_sees_executive.company_id
        )
        or exists (
          select 1 from public.introductions i
          where i.company_id = company_sees_executive.company_id
            and i.executive_id = company_sees_executive.executive_id
        )
      )
    )
  );
$$;
-- Only the definer functions below call it: no grant.
revoke execute on function private.company_sees_executive(uuid, uuid) from public;

-- One of the caller's companies may see this executive (the policies on profiles and skills).
create or replace function private.executive_visible_to_employer(executive_id uuid)
returns boolean
language sql
stable
security definer
set search_path = ''
as $$
  select exists (
    select 1 from public.company_members cm
    where cm.user_id = (select auth.uid())
      and private.company_sees_executive(cm.company_id, executive_visible_to_employer.executive_id)
  );
$$;

-- The executive accepted an introduction from one of the caller's companies, which is still verified.
create or replace function private.executive_contact_shared(executive_id uuid)
returns boolean
language sql
stable
security definer
set search_path = ''
as $$
  select exists (
    select 1 from public.introductions i
    where i.executive_id = executive_contact_shared.executive_id
      and i.status = 'accepted'
      and private.is_company_member(i.company_id)
      and private.is_verified_company(i.company_id)
  );
$$;

-- The caller may ask to be introduced to this executive for this role: they hire for the role's company,
-- the role is open, and the company may see the executive, whose profile is open. One definition for the
-- insert policy and for the trigger that must refuse strangers before it looks at anything else.
create function private.can_request_introduction(role_id uuid, executive_id uuid)
returns boolean
language sql
stable
security definer
set search_path = ''
as $$
  select exists (
    select 1 from public.role_postings r
    where r.id = can_request_introduction.role_id and r.status = 'open'
      and private.can_hire_with(r.company_id)
      and private.company_sees_executive(r.company_id, can_request_introduction.executive_id)
      and exists (
        select 1 from public.executive_profiles p
        where p.user_id = can_request_introduction.executive_id and p.is_open
      )
  );
$$;
revoke execute on function private.can_request_introduction(uuid, uuid) from public;
grant execute on function private.can_request_introduction(uuid, uuid) to authenticated, service_role;

-- Matches: stored only for open profiles -------------------------------------------------------------

-- A matching run reads profiles when its statement starts; an executive who closes their profile meanwhile
-- deletes their matches (prepare_executive_profile) and must not be stored again by the run. The share
-- lock waits for a closing transaction and then sees its result (READ COMMITTED re-checks the locked
-- row), and it holds off a close until the run commits, whose delete then sees the stored rows.
create function private.store_matches_of_open_profiles()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  perform 1 from public.executive_profiles p where p.user_id = new.executive_id and p.is_open for share;
  if not found then
    return null;  -- closed (or gone): skip the row
  end if;
  return new;
end;
$$;
revoke execute on function private.store_matches_of_open_profiles() from public;

create trigger matches_only_open_profiles
  before insert or update on public.matches
  for each row execute function private.store_matches_of_open_profiles();

-- Introductions --------------------------------------------------------------------------------------

-- Requests each company made each day (UTC). Written by the introduction trigger, never decreased: deleting
-- a role, a profile or an introduction does not give a company its requests back.
create table private.introduction_requests_per_day (
  company_id uuid not null references public.companies (id) on delete cascade,
  day date not null,
  requests integer not null check (requests >= 0),
  primary key (company_id, day)
);
comment on table private.introduction_requests_per_day is
  'How many introduction requests each company made each day (UTC); what introduction_daily_limit counts.';
alter table private.introduction_requests_per_day enable row level security;
revoke all on private.introduction_requests_per_day from public, anon, authenticated, service_role;

insert into private.introduction_requests_per_day (company_id, day, requests)
select i.company_id, (i.created_at at time zone 'utc')::date, count(*)
from public.introductions i
group by 1, 2;

-- One open request per company and executive (it was per role, so a new role escaped it). Requests that
-- break the new rule are older duplicates of a company's open request: they become expired.
update public.introductions i set status = 'expired'
where i.status = 'requested'
  and exists (
    select 1 from public.introductions newer
    where newer.company_id = i.company_id and newer.executive_id = i.executive_id
      and newer.status = 'requested' and (newer.created_at, newer.id) > (i.created_at, i.id)
  );
drop index public.introductions_one_open_idx;
create unique index introductions_one_open_idx on public.introductions (company_id, executive_id)
  where status = 'requested';

create or replace function private.prepare_introduction()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  daily_limit integer := (private.config_value('introduction_daily_limit'))::integer;
  made_today integer;
begin
  -- Strangers first: nothing below may tell them whether the role exists or what the company did today.
  if current_setting('role', true) = 'authenticated'
     and not private.can_request_introduction(new.role_id, new.executive_id) then
    raise exception 'you may not ask for this introduction' using errcode = 'insufficient_privilege';
  end if;
  select r.company_id into new.company_id from public.role_postings r where r.id = new.role_id;
  new.status := 'requested';
  new.responded_at := null;
  new.created_at := now();
  new.expires_at := now() + (private.config_value('introduction_ttl') #>> '{}')::interval;
  if new.company_id is null then
    return new;  -- the foreign key refuses the row
  end if;
  -- A request for the same pair that timed out is no longer open, even before the periodic sweep marks it:
  -- mark it now, or it would hold the one-open-request index against this new one.
  update public.introductions i set status = 'expired'
  where i.company_id = new.company_id and i.executive_id = new.executive_id
    and i.status = 'requested' and i.expires_at <= now();
  if exists (
    select 1 from public.introductions i
    where i.company_id = new.company_id and i.executive_id = new.executive_id and i.status = 'requested'
  ) then
    raise exception 'your company already has an open introduction request to this executive'
      using errcode = 'unique_violation';
  end if;
  -- Counted in the ledger, whose row lock also serialises one company's requests, so that two at once
  -- cannot both take the last one of the day. A refused insert rolls the count back with it.
  insert into private.introduction_requests_per_day as d (company_id, day, requests)
  values (new.company_id, (now() at time zone 'utc')::date, 1)
  on conflict (company_id, day) do update set requests = d.requests + 1
  returning d.requests into made_today;
  if made_today > daily_limit then
    raise exception 'this company has made its % introduction requests for today', daily_limit
      using errcode = 'check_violation', hint = 'Try again tomorrow (UTC).';
  end if;
  return new;
end;
$$;

-- A role with introductions stays (closed, not deleted): the executives' record of those requests and the
-- emails already sent refer to it. Deleting the whole company still takes everything with it.
create function private.keep_roles_with_introductions()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  if exists (select 1 from public.introductions i where i.role_id = old.id)
     and exists (select 1 from public.companies c where c.id = old.company_id) then
    raise exception 'this role has introductions and cannot be deleted; close it instead'
      using errcode = 'foreign_key_violation';
  end if;
  return old;
end;
$$;
revoke execute on function private.keep_roles_with_introductions() from public;

create trigger role_postings_keep_with_introductions
  before delete on public.role_postings
  for each row execute function private.keep_roles_with_introductions();

-- Only a verified company may receive an acceptance: it shares the executive's contact details.
create or replace function private.respond_to_introduction(introduction_id uuid, accept boolean)
returns public.introductions
language plpgsql
security definer
set search_path = ''
as $$
declare
  answered public.introductions;
begin
  if accept is null then
    raise exception 'accept must be true or false' using errcode = 'invalid_parameter_value';
  end if;
  select * into answered from public.introductions i
  where i.id = respond_to_introduction.introduction_id and i.executive_id = (select auth.uid())
  for update;
  -- Not found and not yours are one answer (ids are not to be probed), and a 4xx through PostgREST, which
  -- answers no_data_found (P0002) with a 500.
  if answered.id is null then
    raise exception 'no such introduction for you' using errcode = 'insufficient_privilege';
  end if;
  -- Timed out but not yet swept: refused as expired (the exception below would roll back any write here,
  -- so recording the expiry is left to private.expire_introductions).
  if answered.status = 'requested' and answered.expires_at <= now() then
    answered.status := 'expired';
  end if;
  if answered.status <> 'requested' then
    raise exception 'this introduction is already %', answered.status using errcode = 'check_violation';
  end if;
  if accept and not private.is_verified_company(answered.company_id) then
    raise exception 'this company is not verified any more: you can only decline'
      using errcode = 'check_violation';
  end if;
  update public.introductions i
  set status = case when accept then 'accepted' else 'declined' end::public.introduction_status,
      responded_at = now()
  where i.id = answered.id
  returning * into answered;
  return answered;
end;
$$;

-- Emails: the employer side goes to the requester while they still hire for the company; after they left
-- (or lost their hiring role), to the company's owners, so the answer is neither lost nor leaked.
create or replace function private.queue_introduction_emails()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  facts jsonb;
  executive_email text;
  employer record;
  contacts jsonb;
begin
  if tg_op = 'UPDATE' and new.status is not distinct from old.status then
    return new;
  end if;
  select u.email into executive_email from auth.users u where u.id = new.executive_id;
  select jsonb_build_object(
    'introduction_id', new.id,
    'role_id', r.id,
    'role_title', r.title,
    'company_name', c.name,
    'message', new.message,
    'expires_at', new.expires_at,
    'executive_name', ep.full_name,
    'requester_name', rp.full_name
  ) into facts
  from public.role_postings r
  join public.companies c on c.id = r.company_id
  left join public.profiles ep on ep.id = new.executive_id
  left join public.profiles rp on rp.id = new.requested_by
  where r.id = new.role_id;

  if new.status = 'requested' then
    perform private.send_email('introduction_requested', executive_email, facts,
                               format('introduction:%s:requested:executive', new.id));
    return new;
  end if;
  if new.status not in ('accepted', 'declined') then
    return new;
  end if;
  if new.status = 'accepted' then
    perform private.send_email(
      'introduction_accepted_executive', executive_email,
      facts || jsonb_build_object('requester_email', (select u.email from auth.users u where u.id = new.requested_by)),
      format('introduction:%s:accepted:executive', new.id));
    select jsonb_build_object(
      'executive_email', coalesce(ec.email, executive_email),
      'executive_phone', ec.phone,
      'executive_linkedin_url', ec.linkedin_url)
    into contacts
    from (select 1) one left join public.executive_contacts ec on ec.user_id = new.executive_id;
  end if;
  for employer in
    select u.id, u.email from auth.users u
    where u.id = new.requested_by
      and exists (
        select 1 from public.company_members cm
        where cm.company_id = new.company_id and cm.user_id = u.id and cm.role in ('owner', 'admin', 'recruiter')
      )
    union all
    select u.id, u.email from public.company_members cm join auth.users u on u.id = cm.user_id
    where cm.company_id = new.company_id and cm.role = 'owner'
      and not exists (
        select 1 from public.company_members r
        where r.company_id = new.company_id and r.user_id = new.requested_by
          and r.role in ('owner', 'admin', 'recruiter')
      )
  loop
    perform private.send_email(
      case when new.status = 'accepted' then 'introduction_accepted_employer' else 'introduction_declined' end,
      employer.email,
      facts || coalesce(contacts, '{}'),
      -- The requester's key is the one this trigger always used, so a message is never sent twice.
      case when employer.id = new.requested_by
        then format('introduction:%s:%s:employer', new.id, new.status)
        else format('introduction:%s:%s:employer:%s', new.id, new.status, employer.id)
      end);
  end loop;
  return new;
end;
$$;
