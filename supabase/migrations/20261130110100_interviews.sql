-- =====================================================================================================
-- Interview platform: demo requests, interviewers and their hours, interviews that never collide
-- =====================================================================================================
-- Visitors ask for a demo (anonymously, rate-limited here, emailed to sales). A company's interviewers
-- keep weekly hours in their own time zone, with date overrides; interviews are booked, moved and
-- cancelled only through the functions below, which lock the interviewer and re-check everything in
-- their transaction, so two bookings of one slot, or bookings past the daily cap, cannot both succeed.
-- Candidates book themselves through an invitation's token, with no account. Every booking, move and
-- cancellation emails both sides with an iCalendar part, and a periodic job sends reminders.
--
-- No exclusion constraint backs the no-overlap rule: one would need `interviewer_id with =` beside the
-- time range in a GiST index, which takes the btree_gist extension (contrib: absent from the embedded
-- build), and it could not see the company's buffers or the daily cap anyway. The interviewer's lock is
-- the guarantee; bench/interviews.py counts overlaps after a concurrent run.
-- Policies for these tables live in supabase/policies/interviews.sql.

insert into private.config (key, value, description) values
  ('sales_email', '"sales@talentbase.local"', 'Where each new demo request is emailed.'),
  ('demo_requests_per_email_per_day', '3', 'Demo requests one email address may send in 24 hours.'),
  ('demo_requests_per_address_per_day', '10', 'Demo requests one client address may send in 24 hours.'),
  ('interview_reminder_lead', '"24 hours"', 'How long before an interview its reminder goes out.'),
  ('scheduling_invitation_ttl', '"14 days"', 'How long a candidate may use a self-scheduling invitation.');

-- Who calls, as the API gateway saw them: the right-most address of X-Forwarded-For in the request's
-- headers (PostgREST's `request.headers`). The gateway adds the peer it saw (Supabase's appends to what
-- came in; the local stack's sets it alone), so anything left of it is the client's own claim. NULL
-- outside an API request.
create function private.client_address()
returns inet
language plpgsql
stable
set search_path = ''
as $$
begin
  return btrim(split_part(current_setting('request.headers', true)::json ->> 'x-forwarded-for', ',', -1))::inet;
exception when data_exception then
  return null;
end;
$$;
revoke execute on function private.client_address() from public;

-- An email address as the forms here take it (GoTrue's rules are looser; markup is never an address).
create function private.is_email(address text)
returns boolean
language sql
immutable
set search_path = ''
as $$
  select address ~* '^[^@[:space:]<>()",;]+@[^@[:space:]<>()",;]+\.[^@[:space:]<>()",;]+$'
    and char_length(address) <= 320;
$$;
revoke execute on function private.is_email(text) from public;
grant execute on function private.is_email(text) to anon, authenticated, service_role;

-- Demo requests --------------------------------------------------------------------------------------

create type public.demo_request_status as enum ('new', 'contacted', 'qualified', 'closed');

create table public.demo_requests (
  id uuid primary key default gen_random_uuid(),
  name text not null
    check (private.require(char_length(btrim(name)) between 1 and 200 and name !~ '[<>]',
                           'name: 1 to 200 characters, no markup')),
  email text not null
    check (private.require(private.is_email(email), 'email: an email address such as ada@example.com')),
  company_name text not null
    check (private.require(char_length(btrim(company_name)) between 1 and 200 and company_name !~ '[<>]',
                           'company_name: 1 to 200 characters, no markup')),
  company_size text
    check (private.require(company_size in ('1-10', '11-50', '51-200', '201-1000', '1001+'),
                           'company_size: one of 1-10, 11-50, 51-200, 201-1000, 1001+')),
  message text not null default ''
    check (private.require(char_length(message) <= 2000 and message !~ '[<>]',
                           'message: at most 2,000 characters, no markup')),
  status public.demo_request_status not null default 'new',
  client_address inet,
  handled_by uuid references auth.users (id) on delete set null,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
comment on table public.demo_requests is
  'Demo requests from the website: anyone may send one (never read it back); platform admins work through them.';
create index demo_requests_email_idx on public.demo_requests (email, created_at);
create index demo_requests_client_address_idx on public.demo_requests (client_address, created_at);
create index demo_requests_status_idx on public.demo_requests (status, created_at desc);
create index demo_requests_handled_by_idx on public.demo_requests (handled_by);

alter table public.demo_requests enable row level security;
revoke all on public.demo_requests from anon, authenticated, service_role;
-- Visitors write the form's fields and nothing else; there is no select for anon, so not even
-- `return=representation` reads a request back.
grant insert (name, email, company_name, company_size, message) on public.demo_requests to anon, authenticated;
grant select, update (status) on public.demo_requests to authenticated;
grant select, insert, update, delete on public.demo_requests to service_role;

-- What the sender may not choose, and the daily limits per address and per client. The advisory locks
-- serialise requests of one address (and of one client) so that two at once cannot both take the last
-- place; email first, then client, in every transaction, so they never deadlock.
create function private.prepare_demo_request()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  per_email integer := (private.config_value('demo_requests_per_email_per_day'))::integer;
  per_address integer := (private.config_value('demo_requests_per_address_per_day'))::integer;
begin
  new.email := lower(btrim(new.email));
  new.name := btrim(new.name);
  new.company_name := btrim(new.company_name);
  new.client_address := private.client_address();
  new.status := 'new';
  new.handled_by := null;
  new.created_at := now();
  new.updated_at := now();
  perform pg_advisory_xact_lock(hashtextextended('demo_request:email:' || new.email, 0));
  if (select count(*) from public.demo_requests d
      where d.email = new.email and d.created_at > now() - interval '1 day') >= per_email then
    raise exception 'too many demo requests from this email address today; we will be in touch'
      using errcode = 'PT429';  -- PostgREST answers 429
  end if;
  if new.client_address is not null then
    perform pg_advisory_xact_lock(hashtextextended('demo_request:client:' || host(new.client_address), 0));
    if (select count(*) from public.demo_requests d
        where d.client_address = new.client_address and d.created_at > now() - interval '1 day') >= per_address then
      raise exception 'too many demo requests from this network today; try again tomorrow'
        using errcode = 'PT429';
    end if;
  end if;
  return new;
end;
$$;
revoke execute on function private.prepare_demo_request() from public;

create trigger demo_requests_prepare
  before insert on public.demo_requests
  for each row execute function private.prepare_demo_request();

create function private.email_demo_request()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  perform private.send_email(
    'demo_request',
    private.config_value('sales_email') #>> '{}',
    jsonb_build_object('name', new.name, 'email', new.email, 'company_name', new.company_name,
                       'company_size', new.company_size, 'message', new.message, 'created_at', new.created_at),
    format('demo_request:%s', new.id)
  );
  return null;
end;
$$;
revoke execute on function private.email_demo_request() from public;

create trigger demo_requests_email_sales
  after insert on public.demo_requests
  for each row execute function private.email_demo_request();

-- Whoever moves a request's status is recorded as handling it.
create function private.record_demo_request_handler()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
  new.handled_by := (select auth.uid());
  new.updated_at := now();
  return new;
end;
$$;
revoke execute on function private.record_demo_request_handler() from public;

create trigger demo_requests_record_handler
  before update on public.demo_requests
  for each row execute function private.record_demo_request_handler();

-- Scheduling settings per company ---------------------------------------------------------------------

alter table public.companies
  add column min_notice_minutes integer not null default 240
    check (private.require(min_notice_minutes between 0 and 43200, 'min_notice_minutes: 0 to 43,200 (30 days)')),
  add column buffer_before_minutes integer not null default 0
    check (private.require(buffer_before_minutes between 0 and 240, 'buffer_before_minutes: 0 to 240')),
  add column buffer_after_minutes integer not null default 0
    check (private.require(buffer_after_minutes between 0 and 240, 'buffer_after_minutes: 0 to 240'));
comment on column public.companies.min_notice_minutes is 'How far ahead an interview must be booked.';
comment on column public.companies.buffer_before_minutes is 'Kept free before each interview.';
comment on column public.companies.buffer_after_minutes is 'Kept free after each interview.';
grant update (min_notice_minutes, buffer_before_minutes, buffer_after_minutes) on public.companies to authenticated;

-- Interviewers ---------------------------------------------------------------------------------------

-- The IANA zone names Postgres knows, as it lists them (pg_timezone_names reads the zone files on each
-- query, 20 ms; a name `at time zone` also takes, such as 'europe/berlin' or 'UTC+5', is no IANA name, and
-- the mailer's zoneinfo cannot load it).
create table private.time_zones (name text primary key);
comment on table private.time_zones is 'pg_timezone_names when this migration ran: what is_time_zone looks up first.';
insert into private.time_zones (name) select name from pg_catalog.pg_timezone_names;
alter table private.time_zones enable row level security;
revoke all on private.time_zones from public, anon, authenticated, service_role;

-- Whether a name is an IANA time zone name (e.g. Europe/Berlin). Security definer, to read the table
-- above for whoever writes the row; marked immutable for use in a check constraint: zone names come and
-- go only with a Postgres upgrade (a newer one is found in pg_timezone_names itself).
create function private.is_time_zone(name text)
returns boolean
language sql
immutable
security definer
set search_path = ''
as $$
  select exists (select 1 from private.time_zones z where z.name = is_time_zone.name)
    or exists (select 1 from pg_catalog.pg_timezone_names z where z.name = is_time_zone.name);
$$;
revoke execute on function private.is_time_zone(text) from public;
grant execute on function private.is_time_zone(text) to anon, authenticated, service_role;

create table public.interviewers (
  id uuid primary key default gen_random_uuid(),
  company_id uuid not null references public.companies (id) on delete cascade,
  user_id uuid references auth.users (id) on delete set null,
  display_name text not null
    check (private.require(char_length(btrim(display_name)) between 1 and 200, 'display_name: 1 to 200 characters')),
  email text check (private.require(private.is_email(email), 'email: an email address such as ada@example.com')),
  time_zone text not null
    check (private.require(private.is_time_zone(time_zone), 'time_zone: an IANA time zone name such as Europe/Berlin')),
  max_interviews_per_day integer not null default 4
    check (private.require(max_interviews_per_day between 1 and 24, 'max_interviews_per_day: 1 to 24')),
  deleted_at timestamptz,
  created_by uuid default auth.uid() references auth.users (id) on delete set null,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  unique (company_id, user_id)
);
comment on table public.interviewers is
  'People who run a company''s interviews: linked to a member''s account or not, with a time zone and a daily cap. Deleted softly (delete_interviewer): past interviews keep them.';
create index interviewers_company_id_idx on public.interviewers (company_id) where deleted_at is null;
create index interviewers_user_id_idx on public.interviewers (user_id);
create index interviewers_created_by_idx on public.interviewers (created_by);

alter table public.interviewers enable row level security;
revoke all on public.interviewers from anon, authenticated, service_role;
grant select on public.interviewers to authenticated;
grant insert (company_id, user_id, display_name, email, time_zone, max_interviews_per_day),
  update (user_id, display_name, email, time_zone, max_interviews_per_day)
  on public.interviewers to authenticated;
grant select, insert, update, delete on public.interviewers to service_role;

create trigger interviewers_touch_updated_at
  before update on public.interviewers
  for each row execute function private.touch_updated_at();

-- An interviewer linked to an account must be linked to a member of the company: linking is what lets
-- that person manage the interviewer's hours and see their interviews.
create function private.check_interviewer_member()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  if new.user_id is not null and not exists (
    select 1 from public.company_members cm where cm.company_id = new.company_id and cm.user_id = new.user_id
  ) then
    raise exception 'user_id: only a member of the company can be linked to its interviewer'
      using errcode = 'check_violation';
  end if;
  return new;
end;
$$;
revoke execute on function private.check_interviewer_member() from public;

create trigger interviewers_check_member
  before insert or update of user_id on public.interviewers
  for each row execute function private.check_interviewer_member();

-- The interviewer, whoever calls, for the helpers below.
create function private.interviewer_company(interviewer_id uuid)
returns uuid
language plpgsql
stable
security definer
set search_path = ''
as $$
begin
  return (select i.company_id from public.interviewers i where i.id = interviewer_company.interviewer_id);
end;
$$;
revoke execute on function private.interviewer_company(uuid) from public;

-- True when the caller is the (live) interviewer's linked member.
create function private.is_interviewer(interviewer_id uuid)
returns boolean
language plpgsql
stable
security definer
set search_path = ''
as $$
begin
  return exists (
      select 1 from public.interviewers i
      where i.id = is_interviewer.interviewer_id and i.deleted_at is null
        and i.user_id = (select auth.uid()) and private.is_company_member(i.company_id)
    );
end;
$$;
revoke execute on function private.is_interviewer(uuid) from public;
grant execute on function private.is_interviewer(uuid) to authenticated, service_role;

-- Who manages an interviewer's hours: the company's owners and admins, and the interviewer themself.
create function private.can_manage_interviewer(interviewer_id uuid)
returns boolean
language plpgsql
stable
security definer
set search_path = ''
as $$
begin
  return exists (
      select 1 from public.interviewers i
      where i.id = can_manage_interviewer.interviewer_id and i.deleted_at is null
        and (private.is_company_member(i.company_id, '{owner,admin}') or private.is_interviewer(i.id))
    );
end;
$$;
revoke execute on function private.can_manage_interviewer(uuid) from public;
grant execute on function private.can_manage_interviewer(uuid) to authenticated, service_role;

-- Who sees an interviewer's hours: as who sees the interviewer (its policy): every member of the company
-- while it is current; the owners and admins, and platform admins, also once it is retired.
create function private.can_view_interviewer(interviewer_id uuid)
returns boolean
language plpgsql
stable
security definer
set search_path = ''
as $$
begin
  return exists (
    select 1 from public.interviewers i
    where i.id = can_view_interviewer.interviewer_id
      and ((i.deleted_at is null and private.is_company_member(i.company_id))
           or private.is_company_member(i.company_id, '{owner,admin}'))
  ) or private.has_role('admin');
end;
$$;
revoke execute on function private.can_view_interviewer(uuid) from public;
grant execute on function private.can_view_interviewer(uuid) to authenticated, service_role;

-- Weekly hours and date overrides, in the interviewer's time zone. A date with overrides takes only
-- them: hours of its own, or, with an override without times, none at all (Cal.com's model).
create table public.interviewer_availability (
  id uuid primary key default gen_random_uuid(),
  interviewer_id uuid not null references public.interviewers (id) on delete cascade,
  weekday smallint not null
    check (private.require(weekday between 1 and 7, 'weekday: 1 (Monday) to 7 (Sunday)')),
  start_time time not null,
  end_time time not null,
  check (private.require(end_time > start_time and extract(second from start_time) = 0
                         and extract(second from end_time) = 0,
                         'end_time must be after start_time, both on whole minutes (24:00 ends a day)'))
);
comment on table public.interviewer_availability is
  'An interviewer''s weekly hours (several ranges a day allowed), local to their time zone.';
create index interviewer_availability_interviewer_idx on public.interviewer_availability (interviewer_id, weekday);

create table public.interviewer_date_overrides (
  id uuid primary key default gen_random_uuid(),
  interviewer_id uuid not null references public.interviewers (id) on delete cascade,
  date date not null,
  start_time time,
  end_time time,
  check (private.require(
    coalesce((start_time is null and end_time is null)
             or (end_time > start_time and extract(second from start_time) = 0 and extract(second from end_time) = 0),
             false),
    'an override is a whole day off (no times) or hours with end_time after start_time, on whole minutes'
  ))
);
comment on table public.interviewer_date_overrides is
  'Dates whose hours differ from the week''s: rows with times replace that day''s hours; a row without times makes it a day off.';
create index interviewer_date_overrides_interviewer_idx on public.interviewer_date_overrides (interviewer_id, date);

alter table public.interviewer_availability enable row level security;
alter table public.interviewer_date_overrides enable row level security;
revoke all on public.interviewer_availability, public.interviewer_date_overrides from anon, authenticated, service_role;
grant select, delete on public.interviewer_availability, public.interviewer_date_overrides to authenticated;
grant insert (interviewer_id, weekday, start_time, end_time), update (weekday, start_time, end_time)
  on public.interviewer_availability to authenticated;
grant insert (interviewer_id, date, start_time, end_time), update (date, start_time, end_time)
  on public.interviewer_date_overrides to authenticated;
grant select, insert, update, delete on public.interviewer_availability, public.interviewer_date_overrides
  to service_role;

-- Interviews -----------------------------------------------------------------------------------------

create type public.interview_status as enum ('scheduled', 'completed', 'cancelled', 'no_show');

create table public.interviews (
  id uuid primary key default gen_random_uuid(),
  company_id uuid not null references public.companies (id) on delete cascade,
  role_posting_id uuid references public.role_postings (id) on delete set null,
  interviewer_id uuid not null references public.interviewers (id) on delete restrict,
  candidate_id uuid references auth.users (id) on delete set null,
  candidate_email text not null,
  candidate_name text,
  starts_at timestamptz not null,
  ends_at timestamptz not null,
  status public.interview_status not null default 'scheduled',
  meeting_link text
    check (private.require(meeting_link ~* '^https://[^[:space:]<>"]+$' and char_length(meeting_link) <= 2048,
                           'meeting_link: an https:// URL')),
  -- iCalendar's SEQUENCE: 0 when booked, one more at each move or cancellation.
  sequence integer not null default 0,
  -- When its current time was set (booked or moved): a reminder goes out only if that was before the
  -- reminder's time.
  scheduled_at timestamptz not null default now(),
  reminded_at timestamptz,
  booked_by uuid references auth.users (id) on delete set null,
  invitation_id uuid,
  cancelled_at timestamptz,
  cancelled_by uuid references auth.users (id) on delete set null,
  cancel_reason text check (private.require(char_length(cancel_reason) <= 1000, 'reason: at most 1,000 characters')),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  -- The longest interview; free_slots relies on it to bound its search.
  check (ends_at > starts_at and ends_at - starts_at <= interval '8 hours')
);
comment on table public.interviews is
  'Booked interviews. Created and moved only by book_interview, book_invitation, reschedule_interview and cancel_interview.';
create index interviews_interviewer_time_idx on public.interviews (interviewer_id, starts_at)
  where status <> 'cancelled';
create index interviews_company_time_idx on public.interviews (company_id, starts_at desc);
create index interviews_candidate_idx on public.interviews (candidate_id);
create index interviews_role_posting_idx on public.interviews (role_posting_id);
create index interviews_reminder_idx on public.interviews (starts_at) where status = 'scheduled' and reminded_at is null;
create index interviews_booked_by_idx on public.interviews (booked_by);
create index interviews_cancelled_by_idx on public.interviews (cancelled_by);
create index interviews_invitation_idx on public.interviews (invitation_id);

alter table public.interviews enable row level security;
revoke all on public.interviews from anon, authenticated, service_role;
grant select, update (meeting_link) on public.interviews to authenticated;
grant select, insert, update, delete on public.interviews to service_role;

create trigger interviews_touch_updated_at
  before update on public.interviews
  for each row execute function private.touch_updated_at();

-- Who runs a company's interviews: its owners, admins and recruiters.
create function private.is_company_staff(company_id uuid)
returns boolean
language plpgsql
stable
set search_path = ''
as $$
begin
  return private.is_company_member(is_company_staff.company_id, '{owner,admin,recruiter}');
end;
$$;
revoke execute on function private.is_company_staff(uuid) from public;
grant execute on function private.is_company_staff(uuid) to authenticated, service_role;

-- Notes on an interview: in a table of their own because RLS works per row, and candidates see their
-- interview's row but never its notes.
create table public.interview_notes (
  id uuid primary key default gen_random_uuid(),
  interview_id uuid not null references public.interviews (id) on delete cascade,
  author_id uuid default auth.uid() references auth.users (id) on delete set null,
  body text not null check (private.require(char_length(btrim(body)) between 1 and 10000, 'body: 1 to 10,000 characters')),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
comment on table public.interview_notes is 'What the company''s side notes about an interview; never shown to the candidate.';
create index interview_notes_interview_idx on public.interview_notes (interview_id, created_at);
create index interview_notes_author_idx on public.interview_notes (author_id);

alter table public.interview_notes enable row level security;
revoke all on public.interview_notes from anon, authenticated, service_role;
grant select, delete, insert (interview_id, body), update (body) on public.interview_notes to authenticated;
grant select, insert, update, delete on public.interview_notes to service_role;

create trigger interview_notes_touch_updated_at
  before update on public.interview_notes
  for each row execute function private.touch_updated_at();

-- Who sees an interview's notes (and the interview): the company's staff and the interview's interviewer.
create function private.is_interview_team(interview_id uuid)
returns boolean
language plpgsql
stable
security definer
set search_path = ''
as $$
begin
  return exists (
      select 1 from public.interviews x
      where x.id = is_interview_team.interview_id
        and (private.is_company_staff(x.company_id) or private.is_interviewer(x.interviewer_id))
    );
end;
$$;
revoke execute on function private.is_interview_team(uuid) from public;
grant execute on function private.is_interview_team(uuid) to authenticated, service_role;

-- Free time ------------------------------------------------------------------------------------------

-- The instant a wall-clock time in `zone` names; a time an autumn change repeats is its first occurrence,
-- as calendars (RFC 5545) read it, where Postgres alone takes the second. A time a spring change skips
-- is read as Postgres reads it: the instant after the gap.
create function private.local_instant(local timestamp, zone text)
returns timestamptz
language plpgsql
stable
set search_path = ''
as $$
declare
  later timestamptz := local at time zone zone;
  -- The same wall clock read with the offset in force a few hours before: the earlier occurrence, if it
  -- names `local` too.
  before timestamptz := later - interval '3 hours';
  earlier timestamptz := (local at time zone 'UTC') - ((before at time zone zone) - (before at time zone 'UTC'));
begin
  if earlier < later and earlier at time zone zone = local then
    return earlier;
  end if;
  return later;
end;
$$;
revoke execute on function private.local_instant(timestamp, text) from public;

-- The slots of `duration` an interviewer is free for between from_at and to_at, starting every `step`
-- from the beginning of each stretch of hours: their weekly hours or that date's overrides (local to
-- their time zone, so right across daylight-saving changes: see local_instant), at least the company's notice from now, not within the company's buffers
-- of another interview (an interview holds [start - before, end + after); two must not share any of
-- it), and on a local day with fewer interviews than their cap. `ignoring`: an interview being moved.
-- No rows for a deleted interviewer or company. Checks nobody: its callers do.
create function private.free_slots(
  interviewer_id uuid, from_at timestamptz, to_at timestamptz, duration interval, step interval,
  ignoring uuid default null
)
returns table (starts_at timestamptz, ends_at timestamptz)
language plpgsql
stable
security definer
set search_path = ''
-- One plan for every call: left to choose, Postgres re-plans it each time (0.9 ms, three times the run).
set plan_cache_mode = force_generic_plan
as $$
declare
  zone text;
  cap integer;
  notice interval;
  gap interval;
begin
  select i.time_zone, i.max_interviews_per_day, make_interval(mins => c.min_notice_minutes),
         make_interval(mins => c.buffer_before_minutes + c.buffer_after_minutes)
  into zone, cap, notice, gap
  from public.interviewers i join public.companies c on c.id = i.company_id
  where i.id = free_slots.interviewer_id and i.deleted_at is null and c.deleted_at is null;
  if zone is null then
    return;
  end if;
  from_at := greatest(from_at, now() + notice);
  return query
  with days as (
    -- Local dates the range touches, and the one before (its hours may run past midnight UTC).
    select d::date as day
    from generate_series((from_at at time zone zone)::date - 1, (to_at at time zone zone)::date, interval '1 day') d
  ),
  hours as (
    select o.date as day, o.start_time, o.end_time
    from public.interviewer_date_overrides o join days on days.day = o.date
    where o.interviewer_id = free_slots.interviewer_id and o.start_time is not null
    union all
    select days.day, a.start_time, a.end_time
    from days join public.interviewer_availability a
      on a.interviewer_id = free_slots.interviewer_id and a.weekday = extract(isodow from days.day)
    where not exists (
      select 1 from public.interviewer_date_overrides o
      where o.interviewer_id = free_slots.interviewer_id and o.date = days.day
    )
  ),
  stretches as (
    select private.local_instant(h.day + h.start_time, zone) as opens,
           private.local_instant(h.day + h.end_time, zone) as closes
    from hours h
  ),
  candidates as (
    select distinct s as slot_start
    from stretches w,
      generate_series(
        w.opens + step * greatest(0, ceil(extract(epoch from from_at - w.opens) / extract(epoch from step))),
        least(w.closes, to_at) - duration,
        step
      ) s
  ),
  booked as (
    select x.starts_at, x.ends_at
    from public.interviews x
    where x.interviewer_id = free_slots.interviewer_id and x.status <> 'cancelled'
      and x.id is distinct from ignoring
      and x.starts_at < to_at + gap and x.starts_at > from_at - gap - interval '8 hours'
  ),
  -- Each candidate's whole local day, wherever the search starts or ends (a local day spans at most 26
  -- hours around any instant in it).
  per_day as (
    select (x.starts_at at time zone zone)::date as day, count(*) as taken
    from public.interviews x
    where x.interviewer_id = free_slots.interviewer_id and x.status <> 'cancelled'
      and x.id is distinct from ignoring
      and x.starts_at > from_at - interval '2 days' and x.starts_at < to_at + interval '2 days'
    group by 1
  )
  select c.slot_start, c.slot_start + duration
  from candidates c
  left join per_day p on p.day = (c.slot_start at time zone zone)::date
  where coalesce(p.taken, 0) < cap
    and not exists (
      select 1 from booked b
      where b.starts_at < c.slot_start + duration + gap and b.ends_at > c.slot_start - gap
    )
  order by c.slot_start;
end;
$$;
revoke execute on function private.free_slots(uuid, timestamptz, timestamptz, interval, interval, uuid) from public;

-- A duration as the booking and slot functions take it.
create function private.check_duration(duration_minutes integer)
returns interval
language plpgsql
immutable
set search_path = ''
as $$
begin
  if duration_minutes is null or duration_minutes not between 5 and 480 then
    raise exception 'duration_minutes: 5 to 480' using errcode = 'invalid_parameter_value';
  end if;
  return make_interval(mins => duration_minutes);
end;
$$;
revoke execute on function private.check_duration(integer) from public;

-- The arguments every slot search checks, with messages a form can show.
create function private.check_slot_search(from_at timestamptz, to_at timestamptz, duration_minutes integer, step_minutes integer)
returns void
language plpgsql
immutable
set search_path = ''
as $$
begin
  if from_at is null or to_at is null then
    raise exception 'from_at and to_at are required' using errcode = 'invalid_parameter_value';
  end if;
  if to_at <= from_at then
    raise exception 'to_at must be after from_at' using errcode = 'invalid_parameter_value';
  end if;
  if to_at - from_at > interval '62 days' then
    raise exception 'search at most 62 days at a time' using errcode = 'invalid_parameter_value';
  end if;
  perform private.check_duration(duration_minutes);
  if step_minutes is not null and step_minutes not between 5 and 480 then
    raise exception 'step_minutes: 5 to 480' using errcode = 'invalid_parameter_value';
  end if;
end;
$$;
revoke execute on function private.check_slot_search(timestamptz, timestamptz, integer, integer) from public;

create function private.available_slots(
  interviewer_id uuid, from_at timestamptz, to_at timestamptz, duration_minutes integer, step_minutes integer
)
returns table (starts_at timestamptz, ends_at timestamptz)
language plpgsql
stable
security definer
set search_path = ''
as $$
begin
  perform private.check_slot_search(from_at, to_at, duration_minutes, step_minutes);
  if not (private.is_company_staff(private.interviewer_company(available_slots.interviewer_id))
          or private.is_interviewer(available_slots.interviewer_id)
          or private.has_role('admin')) then
    raise exception 'no such interviewer' using errcode = 'PT404';
  end if;
  return query
  select * from private.free_slots(
    available_slots.interviewer_id, from_at, to_at, make_interval(mins => duration_minutes),
    make_interval(mins => coalesce(step_minutes, duration_minutes))
  );
end;
$$;
revoke execute on function private.available_slots(uuid, timestamptz, timestamptz, integer, integer) from public;
grant execute on function private.available_slots(uuid, timestamptz, timestamptz, integer, integer) to authenticated;

create function public.available_slots(
  interviewer_id uuid, from_at timestamptz, to_at timestamptz, duration_minutes integer default 60,
  step_minutes integer default null
)
returns table (starts_at timestamptz, ends_at timestamptz)
language sql
stable
set search_path = ''
as $$
  select * from private.available_slots(interviewer_id, from_at, to_at, duration_minutes, step_minutes);
$$;
comment on function public.available_slots(uuid, timestamptz, timestamptz, integer, integer) is
  'Free slots of one interviewer (for the company''s staff, the interviewer, platform admins): hours, overrides, notice, buffers and daily cap applied.';
revoke execute on function public.available_slots(uuid, timestamptz, timestamptz, integer, integer) from public, anon;
grant execute on function public.available_slots(uuid, timestamptz, timestamptz, integer, integer) to authenticated;

-- Booking, moving, cancelling --------------------------------------------------------------------------

-- Why [starts_at, starts_at + duration) is not free for a locked interviewer, or null when it is. Whether
-- it is free is free_slots' answer alone; the checks after it only name the reason for the caller.
create function private.slot_refusal(interviewer_id uuid, starts_at timestamptz, duration interval, ignoring uuid)
returns text
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  zone text;
  cap integer;
  notice integer;
  gap interval;
begin
  if exists (select 1 from private.free_slots(slot_refusal.interviewer_id, starts_at, starts_at + duration,
                                                duration, interval '1 minute', ignoring) f
             where f.starts_at = slot_refusal.starts_at) then
    return null;
  end if;
  select i.time_zone, i.max_interviews_per_day, c.min_notice_minutes,
         make_interval(mins => c.buffer_before_minutes + c.buffer_after_minutes)
  into zone, cap, notice, gap
  from public.interviewers i join public.companies c on c.id = i.company_id where i.id = slot_refusal.interviewer_id;
  if starts_at < now() + make_interval(mins => notice) then
    return format('too soon: interviews are booked at least %s minutes ahead', notice);
  end if;
  if exists (select 1 from public.interviews x
             where x.interviewer_id = slot_refusal.interviewer_id and x.status <> 'cancelled'
               and x.id is distinct from ignoring
               and x.starts_at < slot_refusal.starts_at + duration + gap
               and x.ends_at > slot_refusal.starts_at - gap) then
    return 'the interviewer has another interview then (buffers included)';
  end if;
  if (select count(*) from public.interviews x
      where x.interviewer_id = slot_refusal.interviewer_id and x.status <> 'cancelled'
        and x.id is distinct from ignoring
        and (x.starts_at at time zone zone)::date = (slot_refusal.starts_at at time zone zone)::date) >= cap then
    return format('the interviewer already has %s interviews that day, their limit', cap);
  end if;
  return 'outside the interviewer''s hours';
end;
$$;
revoke execute on function private.slot_refusal(uuid, timestamptz, interval, uuid) from public;

-- A start time as the booking functions take it: given, on a whole minute.
create function private.check_start(starts_at timestamptz)
returns void
language plpgsql
stable
set search_path = ''
as $$
begin
  if starts_at is null then
    raise exception 'starts_at is required' using errcode = 'invalid_parameter_value';
  end if;
  if starts_at <> date_trunc('minute', starts_at) then
    raise exception 'starts_at must be on a whole minute' using errcode = 'invalid_parameter_value';
  end if;
end;
$$;
revoke execute on function private.check_start(timestamptz) from public;

-- Lock interviewers (in id order, so two transactions never wait on each other in a circle) and return
-- those that are live, with their company.
create function private.lock_interviewers(interviewer_ids uuid[])
returns setof public.interviewers
language plpgsql
security definer
set search_path = ''
as $$
begin
  return query
  select i.* from public.interviewers i
  where i.id = any (lock_interviewers.interviewer_ids)
  order by i.id
  for no key update;
end;
$$;
revoke execute on function private.lock_interviewers(uuid[]) from public;


-- Insert an interview for a locked, live interviewer at a free time, or refuse with the reason (409).
create function private.insert_interview(
  interviewer public.interviewers, starts_at timestamptz, duration interval, candidate_id uuid,
  candidate_email text, candidate_name text, role_posting_id uuid, meeting_link text, invitation_id uuid
)
returns public.interviews
language plpgsql
security definer
set search_path = ''
as $$
declare
  refusal text;
  booked public.interviews;
begin
  -- Deleting a company takes its interviewers' locks first (companies_keep_upcoming_interviews): the
  -- caller holds this one, so the company is not deleted under this booking, and a deletion that got the
  -- lock first has committed by now (this statement's snapshot sees it).
  if not exists (
    select 1 from public.companies c where c.id = interviewer.company_id and c.deleted_at is null
  ) then
    raise exception 'no such interviewer' using errcode = 'PT404';
  end if;
  refusal := private.slot_refusal(interviewer.id, starts_at, duration, null);
  if refusal is not null then
    raise exception 'that slot cannot be booked: %', refusal using errcode = 'PT409';
  end if;
  insert into public.interviews (company_id, role_posting_id, interviewer_id, candidate_id, candidate_email,
    candidate_name, starts_at, ends_at, meeting_link, booked_by, invitation_id)
  values (interviewer.company_id, role_posting_id, interviewer.id, candidate_id, candidate_email,
    candidate_name, starts_at, starts_at + duration, meeting_link, (select auth.uid()), invitation_id)
  returning * into booked;
  return booked;
end;
$$;
revoke execute on function private.insert_interview(public.interviewers, timestamptz, interval, uuid, text, text, uuid, text, uuid) from public;

create function private.book_interview(
  interviewer_id uuid, starts_at timestamptz, duration_minutes integer, candidate_email text,
  candidate_id uuid, candidate_name text, role_posting_id uuid, meeting_link text
)
returns public.interviews
language plpgsql
security definer
set search_path = ''
as $$
declare
  duration interval := private.check_duration(duration_minutes);
  interviewer public.interviewers;
begin
  perform private.check_start(starts_at);
  -- An account is named by its id and its address together: staff (anyone can found a company) must not
  -- learn an address from an id, which profiles show every signed-in user.
  if candidate_id is not null and not exists (
    select 1 from auth.users u
    where u.id = book_interview.candidate_id and lower(u.email) = lower(btrim(book_interview.candidate_email))
  ) then
    raise exception 'candidate_id: give the account''s email address as candidate_email too'
      using errcode = 'invalid_parameter_value';
  end if;
  if candidate_email is null or not private.is_email(candidate_email) then
    raise exception 'a candidate_id or a candidate_email (an email address) is required'
      using errcode = 'invalid_parameter_value';
  end if;
  if char_length(candidate_name) > 200 or candidate_name ~ '[<>]' then
    raise exception 'candidate_name: at most 200 characters, no markup' using errcode = 'invalid_parameter_value';
  end if;
  select * into interviewer from private.lock_interviewers(array[book_interview.interviewer_id]);
  if interviewer.id is null or interviewer.deleted_at is not null
     or not private.is_company_staff(interviewer.company_id) then
    raise exception 'no such interviewer' using errcode = 'PT404';
  end if;
  if role_posting_id is not null and not exists (
    select 1 from public.role_postings r where r.id = book_interview.role_posting_id and r.company_id = interviewer.company_id
  ) then
    raise exception 'role_posting_id: not one of this company''s role postings' using errcode = 'invalid_parameter_value';
  end if;
  return private.insert_interview(interviewer, starts_at, duration, candidate_id, lower(btrim(candidate_email)),
                                  btrim(candidate_name), role_posting_id, meeting_link, null);
end;
$$;
revoke execute on function private.book_interview(uuid, timestamptz, integer, text, uuid, text, uuid, text) from public;
grant execute on function private.book_interview(uuid, timestamptz, integer, text, uuid, text, uuid, text) to authenticated;

create function public.book_interview(
  interviewer_id uuid, starts_at timestamptz, duration_minutes integer default 60, candidate_email text default null,
  candidate_id uuid default null, candidate_name text default null, role_posting_id uuid default null,
  meeting_link text default null
)
returns public.interviews
language sql
set search_path = ''
as $$
  select * from private.book_interview(interviewer_id, starts_at, duration_minutes, candidate_email, candidate_id,
                                       candidate_name, role_posting_id, meeting_link);
$$;
comment on function public.book_interview(uuid, timestamptz, integer, text, uuid, text, uuid, text) is
  'The company''s staff book an interview with a candidate (an account or an email) at a free time; 409 with the reason otherwise.';
revoke execute on function public.book_interview(uuid, timestamptz, integer, text, uuid, text, uuid, text) from public, anon;
grant execute on function public.book_interview(uuid, timestamptz, integer, text, uuid, text, uuid, text) to authenticated;

-- The interview to change, locked, if the caller is its company's staff (or, with `candidate_too`, its
-- candidate or interviewer) and it is still scheduled.
create function private.scheduled_interview(interview_id uuid, candidate_too boolean)
returns public.interviews
language plpgsql
security definer
set search_path = ''
as $$
declare
  found public.interviews;
begin
  select * into found from public.interviews x where x.id = scheduled_interview.interview_id for update;
  if found.id is null or not (
    private.is_company_staff(found.company_id)
    or (candidate_too and (found.candidate_id = (select auth.uid()) or private.is_interviewer(found.interviewer_id)))
  ) then
    raise exception 'no such interview' using errcode = 'PT404';
  end if;
  if found.status <> 'scheduled' then
    raise exception 'this interview is % and can no longer change', found.status using errcode = 'PT409';
  end if;
  return found;
end;
$$;
revoke execute on function private.scheduled_interview(uuid, boolean) from public;

create function private.reschedule_interview(
  interview_id uuid, starts_at timestamptz, duration_minutes integer, interviewer_id uuid
)
returns public.interviews
language plpgsql
security definer
set search_path = ''
as $$
declare
  held_by uuid;
  moving public.interviews;
  target public.interviewers;
  duration interval;
  refusal text;
  moved public.interviews;
begin
  perform private.check_start(starts_at);
  -- The interviewers first (both, in id order), then the interview: the order booking takes them in.
  select x.interviewer_id into held_by from public.interviews x where x.id = reschedule_interview.interview_id;
  interviewer_id := coalesce(interviewer_id, held_by);
  perform private.lock_interviewers(array[held_by, interviewer_id]);
  moving := private.scheduled_interview(interview_id, false);
  -- No duration given: the interview keeps its length.
  duration := case when duration_minutes is null then moving.ends_at - moving.starts_at
                   else private.check_duration(duration_minutes) end;
  select * into target from public.interviewers i where i.id = reschedule_interview.interviewer_id;
  if target.id is null or target.deleted_at is not null or target.company_id <> moving.company_id then
    raise exception 'interviewer_id: not one of this company''s interviewers' using errcode = 'invalid_parameter_value';
  end if;
  refusal := private.slot_refusal(target.id, starts_at, duration, moving.id);
  if refusal is not null then
    raise exception 'the interview cannot move there: %', refusal using errcode = 'PT409';
  end if;
  update public.interviews x
  set starts_at = reschedule_interview.starts_at, ends_at = reschedule_interview.starts_at + duration,
      interviewer_id = target.id, sequence = x.sequence + 1, scheduled_at = now(), reminded_at = null
  where x.id = moving.id
  returning * into moved;
  return moved;
end;
$$;
revoke execute on function private.reschedule_interview(uuid, timestamptz, integer, uuid) from public;
grant execute on function private.reschedule_interview(uuid, timestamptz, integer, uuid) to authenticated;

create function public.reschedule_interview(
  interview_id uuid, starts_at timestamptz, duration_minutes integer default null, interviewer_id uuid default null
)
returns public.interviews
language sql
set search_path = ''
as $$
  select * from private.reschedule_interview(interview_id, starts_at, duration_minutes, interviewer_id);
$$;
comment on function public.reschedule_interview(uuid, timestamptz, integer, uuid) is
  'The company''s staff move a scheduled interview (and may hand it to another of their interviewers); 409 with the reason when the new time is not free.';
revoke execute on function public.reschedule_interview(uuid, timestamptz, integer, uuid) from public, anon;
grant execute on function public.reschedule_interview(uuid, timestamptz, integer, uuid) to authenticated;

create function private.cancel_interview(interview_id uuid, reason text)
returns public.interviews
language plpgsql
security definer
set search_path = ''
as $$
declare
  cancelling public.interviews := private.scheduled_interview(interview_id, true);
  cancelled public.interviews;
begin
  if char_length(reason) > 1000 then
    raise exception 'reason: at most 1,000 characters' using errcode = 'invalid_parameter_value';
  end if;
  if cancelling.starts_at <= now() then
    raise exception 'this interview has started: record its outcome instead' using errcode = 'PT409';
  end if;
  update public.interviews x
  set status = 'cancelled', sequence = x.sequence + 1, cancelled_at = now(), cancelled_by = (select auth.uid()),
      cancel_reason = nullif(btrim(reason), '')
  where x.id = cancelling.id
  returning * into cancelled;
  return cancelled;
end;
$$;
revoke execute on function private.cancel_interview(uuid, text) from public;
grant execute on function private.cancel_interview(uuid, text) to authenticated;

create function public.cancel_interview(interview_id uuid, reason text default null)
returns public.interviews
language sql
set search_path = ''
as $$
  select * from private.cancel_interview(interview_id, reason);
$$;
comment on function public.cancel_interview(uuid, text) is
  'The company''s staff, the interviewer or the candidate cancel a scheduled interview; both sides are told.';
revoke execute on function public.cancel_interview(uuid, text) from public, anon;
grant execute on function public.cancel_interview(uuid, text) to authenticated;

-- After the interview: completed or no-show, by the company's staff or the interviewer.
create function private.record_interview_outcome(interview_id uuid, outcome public.interview_status)
returns public.interviews
language plpgsql
security definer
set search_path = ''
as $$
declare
  ending public.interviews;
  recorded public.interviews;
begin
  if outcome is null or outcome not in ('completed', 'no_show') then
    raise exception 'outcome: completed or no_show' using errcode = 'invalid_parameter_value';
  end if;
  select * into ending from public.interviews x where x.id = record_interview_outcome.interview_id for update;
  if ending.id is null or not private.is_interview_team(ending.id) then
    raise exception 'no such interview' using errcode = 'PT404';
  end if;
  if ending.status <> 'scheduled' then
    raise exception 'this interview is % already', ending.status using errcode = 'PT409';
  end if;
  if ending.starts_at > now() then
    raise exception 'this interview has not started yet' using errcode = 'PT409';
  end if;
  update public.interviews x set status = outcome where x.id = ending.id returning * into recorded;
  return recorded;
end;
$$;
revoke execute on function private.record_interview_outcome(uuid, public.interview_status) from public;
grant execute on function private.record_interview_outcome(uuid, public.interview_status) to authenticated;

create function public.record_interview_outcome(interview_id uuid, outcome public.interview_status)
returns public.interviews
language sql
set search_path = ''
as $$
  select * from private.record_interview_outcome(interview_id, outcome);
$$;
comment on function public.record_interview_outcome(uuid, public.interview_status) is
  'After an interview has started: completed or no_show, by the company''s staff or the interviewer.';
revoke execute on function public.record_interview_outcome(uuid, public.interview_status) from public, anon;
grant execute on function public.record_interview_outcome(uuid, public.interview_status) to authenticated;

-- Soft delete of interviewers -------------------------------------------------------------------------

create function private.set_interviewer_deleted(interviewer_id uuid, deleted boolean)
returns public.interviewers
language plpgsql
security definer
set search_path = ''
as $$
declare
  found public.interviewers;
begin
  select * into found from private.lock_interviewers(array[set_interviewer_deleted.interviewer_id]);
  if found.id is null or not (private.is_company_member(found.company_id, '{owner,admin}') or private.has_role('admin')) then
    raise exception 'no such interviewer' using errcode = 'PT404';
  end if;
  if deleted and exists (
    select 1 from public.interviews x
    where x.interviewer_id = found.id and x.status = 'scheduled' and x.ends_at > now()
  ) then
    raise exception 'this interviewer has upcoming interviews: move or cancel them first' using errcode = 'PT409';
  end if;
  update public.interviewers i
  set deleted_at = case when deleted then coalesce(i.deleted_at, now()) end
  where i.id = found.id
  returning * into found;
  return found;
end;
$$;
revoke execute on function private.set_interviewer_deleted(uuid, boolean) from public;
grant execute on function private.set_interviewer_deleted(uuid, boolean) to authenticated;

create function public.delete_interviewer(interviewer_id uuid)
returns public.interviewers
language sql
set search_path = ''
as $$
  select * from private.set_interviewer_deleted(interviewer_id, true);
$$;
comment on function public.delete_interviewer(uuid) is
  'Owners and admins retire an interviewer with no upcoming interviews; their past interviews keep them.';
revoke execute on function public.delete_interviewer(uuid) from public, anon;
grant execute on function public.delete_interviewer(uuid) to authenticated;

create function public.restore_interviewer(interviewer_id uuid)
returns public.interviewers
language sql
set search_path = ''
as $$
  select * from private.set_interviewer_deleted(interviewer_id, false);
$$;
comment on function public.restore_interviewer(uuid) is 'Owners, admins and platform admins bring a retired interviewer back.';
revoke execute on function public.restore_interviewer(uuid) from public, anon;
grant execute on function public.restore_interviewer(uuid) to authenticated;

-- A company with upcoming interviews is not deleted: they would vanish for both sides without a word.
create function private.keep_companies_with_upcoming_interviews()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  if new.deleted_at is null or old.deleted_at is not null then
    return new;
  end if;
  -- The locks every booking takes (in the order they take them): a booking under way finishes first,
  -- and the check below (a statement of its own, so a snapshot of its own) sees what it booked.
  perform 1 from public.interviewers i where i.company_id = new.id order by i.id for no key update;
  if exists (
    select 1 from public.interviews x where x.company_id = new.id and x.status = 'scheduled' and x.ends_at > now()
  ) then
    raise exception 'this company has upcoming interviews: cancel them first' using errcode = 'PT409';
  end if;
  return new;
end;
$$;
revoke execute on function private.keep_companies_with_upcoming_interviews() from public;

create trigger companies_keep_upcoming_interviews
  before update of deleted_at on public.companies
  for each row execute function private.keep_companies_with_upcoming_interviews();

-- Self-scheduling invitations -------------------------------------------------------------------------

create table public.scheduling_invitations (
  id uuid primary key default gen_random_uuid(),
  company_id uuid not null references public.companies (id) on delete cascade,
  role_posting_id uuid references public.role_postings (id) on delete set null,
  candidate_email text not null
    check (private.require(private.is_email(candidate_email), 'candidate_email: an email address such as ada@example.com')),
  candidate_name text
    check (private.require(char_length(candidate_name) <= 200 and candidate_name !~ '[<>]',
                           'candidate_name: at most 200 characters, no markup')),
  interviewer_ids uuid[] not null
    check (private.require(cardinality(interviewer_ids) between 1 and 50, 'interviewer_ids: 1 to 50 interviewers')),
  duration_minutes integer not null default 60
    check (private.require(duration_minutes between 5 and 480, 'duration_minutes: 5 to 480')),
  meeting_link text
    check (private.require(meeting_link ~* '^https://[^[:space:]<>"]+$' and char_length(meeting_link) <= 2048,
                           'meeting_link: an https:// URL')),
  created_by uuid default auth.uid() references auth.users (id) on delete set null,
  created_at timestamptz not null default now(),
  expires_at timestamptz not null,
  interview_id uuid references public.interviews (id) on delete set null,
  used_at timestamptz
);
comment on table public.scheduling_invitations is
  'A candidate''s link to book one interview with any of a pool of interviewers, without an account; emailed with a token.';
create index scheduling_invitations_company_idx on public.scheduling_invitations (company_id, created_at desc);
create index scheduling_invitations_role_posting_idx on public.scheduling_invitations (role_posting_id);
create index scheduling_invitations_created_by_idx on public.scheduling_invitations (created_by);
create index scheduling_invitations_interview_idx on public.scheduling_invitations (interview_id);
alter table public.interviews
  add constraint interviews_invitation_id_fkey
  foreign key (invitation_id) references public.scheduling_invitations (id) on delete set null;

alter table public.scheduling_invitations enable row level security;
revoke all on public.scheduling_invitations from anon, authenticated, service_role;
grant select, delete,
  insert (company_id, role_posting_id, candidate_email, candidate_name, interviewer_ids, duration_minutes, meeting_link)
  on public.scheduling_invitations to authenticated;
grant select, insert, update, delete on public.scheduling_invitations to service_role;

create table private.scheduling_invitation_tokens (
  invitation_id uuid primary key references public.scheduling_invitations (id) on delete cascade,
  token_hash bytea not null unique
);
comment on table private.scheduling_invitation_tokens is 'Which token hash opens which scheduling invitation.';
alter table private.scheduling_invitation_tokens enable row level security;
revoke all on private.scheduling_invitation_tokens from public, anon, authenticated, service_role;

create function private.prepare_scheduling_invitation()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  new.candidate_email := lower(btrim(new.candidate_email));
  new.interviewer_ids := array(select distinct unnest(new.interviewer_ids));
  new.created_at := now();
  new.expires_at := now() + (private.config_value('scheduling_invitation_ttl') #>> '{}')::interval;
  new.interview_id := null;
  new.used_at := null;
  if exists (
    select 1 from unnest(new.interviewer_ids) pool (id)
    where not exists (
      select 1 from public.interviewers i where i.id = pool.id and i.company_id = new.company_id and i.deleted_at is null
    )
  ) then
    raise exception 'interviewer_ids: every one must be a current interviewer of this company'
      using errcode = 'check_violation';
  end if;
  if new.role_posting_id is not null and not exists (
    select 1 from public.role_postings r where r.id = new.role_posting_id and r.company_id = new.company_id
  ) then
    raise exception 'role_posting_id: not one of this company''s role postings' using errcode = 'check_violation';
  end if;
  return new;
end;
$$;
revoke execute on function private.prepare_scheduling_invitation() from public;

create trigger scheduling_invitations_prepare
  before insert on public.scheduling_invitations
  for each row execute function private.prepare_scheduling_invitation();

create function private.send_scheduling_invitation()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  token text := private.new_token();
begin
  insert into private.scheduling_invitation_tokens (invitation_id, token_hash)
  values (new.id, private.token_hash(token));
  perform private.send_email(
    'scheduling_invitation',
    new.candidate_email,
    jsonb_build_object(
      'company_name', (select c.name from public.companies c where c.id = new.company_id),
      'role_title', (select r.title from public.role_postings r where r.id = new.role_posting_id),
      'candidate_name', new.candidate_name,
      'duration_minutes', new.duration_minutes,
      'token', token,
      'expires_at', new.expires_at
    ),
    format('scheduling_invitation:%s', new.id)
  );
  return null;
end;
$$;
revoke execute on function private.send_scheduling_invitation() from public;

create trigger scheduling_invitations_send
  after insert on public.scheduling_invitations
  for each row execute function private.send_scheduling_invitation();

-- The invitation behind a token, locked with `lock`; 404 for a wrong or expired token (one answer, so
-- tokens cannot be probed).
create function private.invitation_by_token(token text, lock boolean)
returns public.scheduling_invitations
language plpgsql
security definer
set search_path = ''
as $$
declare
  found public.scheduling_invitations;
begin
  if lock then
    select s.* into found
    from private.scheduling_invitation_tokens t join public.scheduling_invitations s on s.id = t.invitation_id
    where t.token_hash = private.token_hash(invitation_by_token.token)
    for update of s;
  else
    select s.* into found
    from private.scheduling_invitation_tokens t join public.scheduling_invitations s on s.id = t.invitation_id
    where t.token_hash = private.token_hash(invitation_by_token.token);
  end if;
  if found.id is null or found.expires_at <= now()
     or exists (select 1 from public.companies c where c.id = found.company_id and c.deleted_at is not null) then
    raise exception 'no such invitation: the link is wrong or expired; ask for a new one' using errcode = 'PT404';
  end if;
  return found;
end;
$$;
revoke execute on function private.invitation_by_token(text, boolean) from public;

create function public.scheduling_invitation(token text)
returns table (company_name text, role_title text, candidate_name text, duration_minutes integer,
               expires_at timestamptz, booked_starts_at timestamptz, booked_ends_at timestamptz)
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  invitation public.scheduling_invitations := private.invitation_by_token(token, false);
begin
  return query
  select c.name, r.title, invitation.candidate_name, invitation.duration_minutes, invitation.expires_at,
         x.starts_at, x.ends_at
  from public.companies c
  left join public.role_postings r on r.id = invitation.role_posting_id
  left join public.interviews x on x.id = invitation.interview_id and x.status = 'scheduled'
  where c.id = invitation.company_id;
end;
$$;
comment on function public.scheduling_invitation(text) is
  'For the candidate''s booking page (no account needed): what the emailed token invites to, and the booking once made. 404 for a wrong or expired token.';
revoke execute on function public.scheduling_invitation(text) from public;
grant execute on function public.scheduling_invitation(text) to anon, authenticated;

-- An invitation already used cannot book again (409), nor list slots.
create function private.unused_invitation(token text, lock boolean)
returns public.scheduling_invitations
language plpgsql
security definer
set search_path = ''
as $$
declare
  invitation public.scheduling_invitations := private.invitation_by_token(token, lock);
begin
  if invitation.used_at is not null then
    raise exception 'this invitation has been used: the interview is booked' using errcode = 'PT409';
  end if;
  return invitation;
end;
$$;
revoke execute on function private.unused_invitation(text, boolean) from public;

create function public.invitation_slots(token text, from_at timestamptz, to_at timestamptz, step_minutes integer default null)
returns table (starts_at timestamptz, ends_at timestamptz)
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  invitation public.scheduling_invitations := private.unused_invitation(token, false);
  duration interval := make_interval(mins => invitation.duration_minutes);
begin
  perform private.check_slot_search(from_at, to_at, invitation.duration_minutes, step_minutes);
  to_at := least(to_at, invitation.expires_at + duration);
  return query
  select distinct f.starts_at, f.ends_at
  from unnest(invitation.interviewer_ids) pool (id),
    private.free_slots(pool.id, from_at, to_at, duration,
                       make_interval(mins => coalesce(step_minutes, invitation.duration_minutes))) f
  order by f.starts_at;
end;
$$;
comment on function public.invitation_slots(text, timestamptz, timestamptz, integer) is
  'The times a candidate may book with their token: a slot where any interviewer of the pool is free.';
revoke execute on function public.invitation_slots(text, timestamptz, timestamptz, integer) from public;
grant execute on function public.invitation_slots(text, timestamptz, timestamptz, integer) to anon, authenticated;

-- Booking with the token, once: the pool's interviewers are locked (in id order), and of those free at
-- that time the one with the fewest interviews that day gets it.
create function public.book_invitation(token text, starts_at timestamptz)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  invitation public.scheduling_invitations := private.unused_invitation(token, true);
  duration interval := make_interval(mins => invitation.duration_minutes);
  chosen public.interviewers;
  booked public.interviews;
begin
  perform private.check_start(book_invitation.starts_at);
  if book_invitation.starts_at > invitation.expires_at then
    raise exception 'pick a time before the invitation expires (%)', invitation.expires_at
      using errcode = 'invalid_parameter_value';
  end if;
  -- Locked first, then chosen in a statement of its own: its snapshot sees what the bookings it waited
  -- for committed.
  perform private.lock_interviewers(invitation.interviewer_ids);
  select i.* into chosen
  from public.interviewers i
  where i.id = any (invitation.interviewer_ids) and i.deleted_at is null
    and private.slot_refusal(i.id, book_invitation.starts_at, duration, null) is null
  order by (select count(*) from public.interviews x
            where x.interviewer_id = i.id and x.status <> 'cancelled'
              and (x.starts_at at time zone i.time_zone)::date = (book_invitation.starts_at at time zone i.time_zone)::date),
           i.id
  limit 1;
  if chosen.id is null then
    raise exception 'that time is no longer free; pick another' using errcode = 'PT409';
  end if;
  booked := private.insert_interview(chosen, book_invitation.starts_at, duration, null, invitation.candidate_email,
                                     invitation.candidate_name, invitation.role_posting_id, invitation.meeting_link,
                                     invitation.id);
  update public.scheduling_invitations s set used_at = now(), interview_id = booked.id where s.id = invitation.id;
  return jsonb_build_object('interview_id', booked.id, 'starts_at', booked.starts_at, 'ends_at', booked.ends_at,
                            'meeting_link', booked.meeting_link);
end;
$$;
comment on function public.book_invitation(text, timestamptz) is
  'The candidate books one of invitation_slots with their token, once: {interview_id, starts_at, ends_at, meeting_link}; 409 when that time was just taken.';
revoke execute on function public.book_invitation(text, timestamptz) from public;
grant execute on function public.book_invitation(text, timestamptz) to anon, authenticated;

-- The outbox's queue_email, replaced by the same statement in plpgsql, whose plan a connection keeps: a
-- booking queues two emails, and a security definer SQL function is planned afresh at every call.
create or replace function private.queue_email(outbox_id bigint)
returns void
language plpgsql
security definer
set search_path = ''
as $$
begin
  insert into procrastinate.procrastinate_jobs (queue_name, task_name, lock, queueing_lock, args)
  values ('email', 'email:send_email', 'outbox:' || outbox_id, 'outbox:' || outbox_id,
          jsonb_build_object('outbox_id', outbox_id))
  on conflict (queueing_lock) where status = 'todo' do nothing;
end;
$$;

-- Emails ---------------------------------------------------------------------------------------------
-- Each booking, move and cancellation emails the candidate and the interviewer, each with the event as
-- iCalendar (the context's `calendar`, which the mailer attaches as invite.ics): one UID for the
-- interview's whole life, SEQUENCE from the row, METHOD:CANCEL when it is called off.

-- Where the interviewer's mail goes: their own address, else their account's.
create function private.interviewer_email(interviewer_id uuid)
returns text
language plpgsql
stable
security definer
set search_path = ''
as $$
begin
  return (
    select coalesce(i.email, u.email)
    from public.interviewers i left join auth.users u on u.id = i.user_id
    where i.id = interviewer_email.interviewer_id
  );
end;
$$;
revoke execute on function private.interviewer_email(uuid) from public;

-- `kind`: scheduled, rescheduled, cancelled or reminder (the template is interview_<kind>); the candidate
-- too unless `interviewer_only`.
create function private.email_interview(interview public.interviews, interviewer_id uuid, kind text,
                                        interviewer_only boolean default false)
returns void
language plpgsql
security definer
set search_path = ''
as $$
declare
  facts jsonb;
  interviewer_address text := private.interviewer_email(interviewer_id);
begin
  select jsonb_build_object(
    'interview_id', interview.id,
    'company_name', c.name,
    'role_title', r.title,
    'candidate_name', coalesce(interview.candidate_name, interview.candidate_email),
    'candidate_email', interview.candidate_email,
    'interviewer_name', i.display_name,
    'time_zone', i.time_zone,
    'starts_at', interview.starts_at,
    'ends_at', interview.ends_at,
    'meeting_link', interview.meeting_link,
    'reason', interview.cancel_reason,
    'calendar', jsonb_build_object(
      'uid', format('interview-%s', interview.id),
      'sequence', interview.sequence,
      'method', case when kind = 'cancelled' then 'CANCEL' else 'REQUEST' end,
      'starts_at', interview.starts_at,
      'ends_at', interview.ends_at,
      'summary', format('Interview: %s with %s', coalesce(r.title, c.name),
                        coalesce(interview.candidate_name, interview.candidate_email)),
      'location', interview.meeting_link,
      'attendees', jsonb_build_array(
        jsonb_build_object('email', interview.candidate_email, 'name', interview.candidate_name),
        jsonb_build_object('email', interviewer_address, 'name', i.display_name)
      )
    )
  ) into facts
  from public.companies c
  join public.interviewers i on i.id = interviewer_id
  left join public.role_postings r on r.id = interview.role_posting_id
  where c.id = interview.company_id;
  if not interviewer_only then
    perform private.send_email('interview_' || kind, interview.candidate_email,
                               facts || '{"audience": "candidate"}',
                               format('interview:%s:%s:%s:candidate', interview.id, interview.sequence, kind));
  end if;
  perform private.send_email('interview_' || kind, interviewer_address,
                             facts || '{"audience": "interviewer"}',
                             format('interview:%s:%s:%s:interviewer:%s', interview.id, interview.sequence, kind, interviewer_id));
end;
$$;
revoke execute on function private.email_interview(public.interviews, uuid, text, boolean) from public;

create function private.email_interview_change()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  taken public.interviews;
begin
  if tg_op = 'INSERT' then
    perform private.email_interview(new, new.interviewer_id, 'scheduled');
  elsif new.status = 'cancelled' and old.status <> 'cancelled' then
    perform private.email_interview(new, new.interviewer_id, 'cancelled');
  elsif new.status = 'scheduled' and (new.starts_at, new.ends_at, new.interviewer_id)
        is distinct from (old.starts_at, old.ends_at, old.interviewer_id) then
    if new.interviewer_id <> old.interviewer_id then
      -- The interviewer it was taken from: cancelled on their calendar (the old time, the new sequence).
      taken := old;
      taken.sequence := new.sequence;
      perform private.email_interview(taken, old.interviewer_id, 'cancelled', true);
    end if;
    perform private.email_interview(new, new.interviewer_id, 'rescheduled');
  end if;
  return null;
end;
$$;
revoke execute on function private.email_interview_change() from public;

create trigger interviews_email
  after insert or update of status, starts_at, ends_at, interviewer_id on public.interviews
  for each row execute function private.email_interview_change();

-- Reminders: the worker's periodic job calls this every minute. An interview gets one reminder, the
-- reminder lead before it starts, unless it was booked (or moved) after that point.
create function private.send_interview_reminders()
returns integer
language plpgsql
security definer
set search_path = ''
as $$
declare
  lead interval := (private.config_value('interview_reminder_lead') #>> '{}')::interval;
  due public.interviews;
  sent integer := 0;
begin
  for due in
    select x.* from public.interviews x
    where x.status = 'scheduled' and x.reminded_at is null
      and x.starts_at > now() and x.starts_at <= now() + lead
    for update skip locked
  loop
    if due.scheduled_at <= due.starts_at - lead then
      perform private.email_interview(due, due.interviewer_id, 'reminder');
      sent := sent + 1;
    end if;
    update public.interviews x set reminded_at = now() where x.id = due.id;
  end loop;
  return sent;
end;
$$;
revoke execute on function private.send_interview_reminders() from public;
