-- =====================================================================================================
-- Executive matching: skills ontology, executive profiles, role postings, matches, introductions,
-- feedback, and the email outbox
-- =====================================================================================================
-- The frontend does the CRUD through PostgREST; what must not be left to it lives here: input cleaning
-- and status rules (constraints, triggers, `post_role`), the only way an introduction changes status
-- (`respond_to_introduction`), who sees an executive and their contact details (RLS, with contact
-- details in a table of their own because RLS works per row), and the emails an introduction causes
-- (queued by triggers in the same transaction). Scoring runs in `private.match_*`, which the API roles
-- cannot execute: the `matching` function calls it with weights that are not public.
-- Policies for these tables live in supabase/policies/matching.sql.

-- Settings the database itself needs (the API's settings live in the environment) ------------------

create table private.config (
  key text primary key,
  value jsonb not null,
  description text not null
);
comment on table private.config is 'Tunables read by triggers and functions; change them with an update as postgres.';
-- RLS on and no policies: only its owner (migrations, security definer helpers) reads it.
alter table private.config enable row level security;
revoke all on private.config from public, anon, authenticated, service_role;
insert into private.config (key, value, description) values
  ('introduction_ttl', '"14 days"', 'How long an introduction request waits for an answer before it expires.'),
  ('introduction_daily_limit', '20', 'Introduction requests one company may make per day (UTC).');

create function private.config_value(key text)
returns jsonb
language sql
stable
security definer
set search_path = ''
as $$
  select c.value from private.config c where c.key = config_value.key;
$$;
revoke execute on function private.config_value(text) from public;

-- Skills ontology ----------------------------------------------------------------------------------

create type public.skill_category as enum (
  'strategy', 'finance', 'operations', 'engineering_leadership', 'sales', 'marketing', 'people',
  'product', 'legal', 'technology', 'data', 'design'
);

create table public.skills (
  id bigint generated always as identity primary key,
  slug text not null unique check (slug ~ '^[a-z0-9]+(-[a-z0-9]+)*$'),
  name text not null check (char_length(btrim(name)) between 1 and 120),
  category public.skill_category not null,
  parent_id bigint references public.skills (id) on delete set null,
  esco_uri text unique,
  created_at timestamptz not null default now()
);
comment on table public.skills is
  'Canonical skills, a two-level tree (umbrella skills and their specialisations), linked to ESCO where it has them.';
create index skills_parent_id_idx on public.skills (parent_id);

create table public.skill_aliases (
  alias text primary key,
  skill_id bigint not null references public.skills (id) on delete cascade
);
comment on table public.skill_aliases is 'Free-text names and spellings of a skill, stored normalised.';
create index skill_aliases_skill_id_idx on public.skill_aliases (skill_id);

alter table public.skills enable row level security;
alter table public.skill_aliases enable row level security;
revoke all on public.skills, public.skill_aliases from anon, authenticated, service_role;
grant select on public.skills, public.skill_aliases to anon, authenticated;
grant select, insert, update, delete on public.skills, public.skill_aliases to authenticated, service_role;

-- The one normal form of a skill's name: what aliases are stored as and free text is compared in.
create function private.normalize_skill_name(name text)
returns text
language sql
immutable
parallel safe
set search_path = ''
as $$
  select lower(regexp_replace(btrim(name), '\s+', ' ', 'g'));
$$;
revoke execute on function private.normalize_skill_name(text) from public;

-- resolve_skills spells the same expression out: anon may call it but has no access to schema private.
create index skills_normalized_name_idx on public.skills (lower(regexp_replace(btrim(name), '\s+', ' ', 'g')));

-- Security definer: it runs as the writing caller, who may not execute the cleaning helpers in private.
create function private.normalize_skill_alias()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  new.alias := private.normalize_skill_name(new.alias);
  return new;
end;
$$;
revoke execute on function private.normalize_skill_alias() from public;

create trigger skill_aliases_normalize
  before insert or update on public.skill_aliases
  for each row execute function private.normalize_skill_alias();

-- Free text to canonical skills: each input with the skill it names (by name, slug or alias), or nulls.
create function public.resolve_skills(names text[])
returns table (input text, skill_id bigint, slug text, name text)
language sql
stable
set search_path = ''
as $$
  select n.input, s.id, s.slug, s.name
  from unnest(names) with ordinality as n (input, position)
  cross join lateral (select lower(regexp_replace(btrim(n.input), '\s+', ' ', 'g')) as normal) t
  left join lateral (
    select k.id, k.slug, k.name from public.skills k
    where lower(regexp_replace(btrim(k.name), '\s+', ' ', 'g')) = t.normal
       or k.slug = t.normal
       or k.id = (select a.skill_id from public.skill_aliases a where a.alias = t.normal)
    order by k.id
    limit 1
  ) s on true
  order by n.position;
$$;
comment on function public.resolve_skills(text[]) is
  'Resolves free text ("ReactJS", "k8s", "P&L ownership") to canonical skills; unknown inputs come back with nulls.';
revoke execute on function public.resolve_skills(text[]) from public;
grant execute on function public.resolve_skills(text[]) to anon, authenticated, service_role;

-- Vocabulary shared by executives and role postings ------------------------------------------------

create type public.seniority as enum ('manager', 'director', 'vp', 'c_level', 'board');
comment on type public.seniority is 'Ordered from least to most senior; matching counts one step apart as half a match.';
create type public.engagement_type as enum ('fractional', 'interim', 'full_time', 'advisory');
create type public.work_mode as enum ('onsite', 'hybrid', 'remote');
create type public.rate_unit as enum ('day', 'annual');

-- Lower-case, trimmed, without blanks or repeats: what industry and function tags are compared in.
create function private.clean_tags(tags text[])
returns text[]
language sql
immutable
parallel safe
set search_path = ''
as $$
  select coalesce(array_agg(distinct t order by t), '{}')
  from (select lower(regexp_replace(btrim(x), '\s+', ' ', 'g')) as t from unnest(tags) x) cleaned
  where t <> '';
$$;
revoke execute on function private.clean_tags(text[]) from public;

-- Executive profiles -------------------------------------------------------------------------------

create table public.executive_profiles (
  user_id uuid primary key references public.profiles (id) on delete cascade,
  headline text not null default '' check (char_length(headline) <= 200),
  bio text not null default '' check (char_length(bio) <= 5000),
  seniority public.seniority,
  years_experience integer check (years_experience between 0 and 70),
  industries text[] not null default '{}' check (cardinality(industries) <= 20),
  functions text[] not null default '{}' check (cardinality(functions) <= 20),
  location text check (char_length(location) <= 200),
  time_zone text check (char_length(time_zone) <= 64),
  remote_preference public.work_mode,
  engagement_types public.engagement_type[] not null default '{}',
  compensation_currency text check (compensation_currency ~ '^[A-Z]{3}$'),
  compensation_min numeric(12, 2) check (compensation_min >= 0),
  compensation_max numeric(12, 2) check (compensation_max >= 0),
  compensation_unit public.rate_unit,
  hours_per_week integer check (hours_per_week between 1 and 80),
  available_from date,
  is_open boolean not null default false,
  bio_embedding extensions.vector(1536),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint executive_profiles_compensation_range check (compensation_max >= compensation_min),
  constraint executive_profiles_compensation_complete check (
    (compensation_min is null and compensation_max is null)
    or (compensation_currency is not null and compensation_unit is not null)
  )
);
comment on table public.executive_profiles is
  'An executive''s professional profile, one per user with the executive role. No contact details: see executive_contacts.';
comment on column public.executive_profiles.is_open is 'Whether the executive may be matched and introduced.';
comment on column public.executive_profiles.bio_embedding is
  'Embedding of the bio, set by the worker when an embeddings provider is configured; adds semantic similarity to matching.';
create index executive_profiles_open_idx on public.executive_profiles (seniority) where is_open;
create index executive_profiles_bio_embedding_idx on public.executive_profiles
  using hnsw (bio_embedding extensions.vector_cosine_ops);

create table public.executive_contacts (
  user_id uuid primary key references public.executive_profiles (user_id) on delete cascade,
  email text check (email ~* '^[^@[:space:]]+@[^@[:space:]]+\.[^@[:space:]]+$' and char_length(email) <= 320),
  phone text check (phone ~ '^\+?[0-9 ().-]{6,32}$'),
  linkedin_url text check (linkedin_url ~* '^https://([a-z]+\.)?linkedin\.com/' and char_length(linkedin_url) <= 2048),
  updated_at timestamptz not null default now()
);
comment on table public.executive_contacts is
  'Contact details, visible to an employer only after the executive accepts one of its introductions.';

create table public.executive_skills (
  executive_id uuid not null references public.executive_profiles (user_id) on delete cascade,
  skill_id bigint not null references public.skills (id) on delete cascade,
  level smallint not null default 3 check (level between 1 and 5),
  years smallint check (years between 0 and 60),
  primary key (executive_id, skill_id)
);
comment on table public.executive_skills is 'An executive''s skills: level 1 (familiar) to 5 (expert).';
-- Matching walks from a role's skills to the executives who hold them.
create index executive_skills_skill_idx on public.executive_skills (skill_id, executive_id, level);

alter table public.executive_profiles enable row level security;
alter table public.executive_contacts enable row level security;
alter table public.executive_skills enable row level security;

revoke all on public.executive_profiles, public.executive_contacts, public.executive_skills
  from anon, authenticated, service_role;
grant select, delete on public.executive_profiles to authenticated;
grant insert (user_id, headline, bio, seniority, years_experience, industries, functions, location, time_zone,
              remote_preference, engagement_types, compensation_currency, compensation_min, compensation_max,
              compensation_unit, hours_per_week, available_from, is_open),
      update (headline, bio, seniority, years_experience, industries, functions, location, time_zone,
              remote_preference, engagement_types, compensation_currency, compensation_min, compensation_max,
              compensation_unit, hours_per_week, available_from, is_open)
  on public.executive_profiles to authenticated;
grant select, delete on public.executive_contacts to authenticated;
grant insert (user_id, email, phone, linkedin_url), update (email, phone, linkedin_url)
  on public.executive_contacts to authenticated;
grant select, insert, delete on public.executive_skills to authenticated;
grant update (level, years) on public.executive_skills to authenticated;
grant select, insert, update, delete on public.executive_profiles, public.executive_contacts,
  public.executive_skills to service_role;

-- Clean tags and keep updated_at; a changed bio needs a new embedding. Closing a profile withdraws it from
-- the stored matches, which would otherwise keep showing it (and its skills) to the companies matched before.
-- Security definer: it runs as the writing caller, who may not execute the cleaning helpers in private
-- (nor delete matches).
create function private.prepare_executive_profile()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  new.headline := btrim(new.headline);
  new.bio := btrim(new.bio);
  new.location := nullif(btrim(new.location), '');
  new.industries := private.clean_tags(new.industries);
  new.functions := private.clean_tags(new.functions);
  new.engagement_types := array(select distinct e from unnest(new.engagement_types) e order by e);
  if tg_op = 'UPDATE' then
    new.updated_at := now();
    if new.bio is distinct from old.bio then
      new.bio_embedding := null;
    end if;
    if old.is_open and not new.is_open then
      delete from public.matches m where m.executive_id = new.user_id;
    end if;
  end if;
  return new;
end;
$$;
revoke execute on function private.prepare_executive_profile() from public;

create trigger executive_profiles_prepare
  before insert or update on public.executive_profiles
  for each row execute function private.prepare_executive_profile();

create trigger executive_contacts_touch_updated_at
  before update on public.executive_contacts
  for each row execute function private.touch_updated_at();

-- Role postings ------------------------------------------------------------------------------------

create type public.role_status as enum ('draft', 'open', 'closed');

create table public.role_postings (
  id uuid primary key default gen_random_uuid(),
  company_id uuid not null references public.companies (id) on delete cascade,
  created_by uuid default auth.uid() references auth.users (id) on delete set null,
  title text not null check (char_length(title) between 3 and 200),
  description text not null default '' check (char_length(description) <= 20000),
  engagement_type public.engagement_type not null,
  seniority public.seniority,
  industries text[] not null default '{}' check (cardinality(industries) <= 20),
  location text check (char_length(location) <= 200),
  remote_policy public.work_mode not null default 'remote',
  compensation_currency text check (compensation_currency ~ '^[A-Z]{3}$'),
  compensation_min numeric(12, 2) check (compensation_min >= 0),
  compensation_max numeric(12, 2) check (compensation_max >= 0),
  compensation_unit public.rate_unit,
  hours_per_week integer check (hours_per_week between 1 and 80),
  start_date date,
  status public.role_status not null default 'draft',
  description_embedding extensions.vector(1536),
  opened_at timestamptz,
  closed_at timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint role_postings_compensation_range check (compensation_max >= compensation_min),
  constraint role_postings_compensation_complete check (
    (compensation_min is null and compensation_max is null)
    or (compensation_currency is not null and compensation_unit is not null)
  )
);
comment on table public.role_postings is
  'A role a company hires for. Drafts stay inside the company; open roles are listed to every signed-in user.';
-- The listing: open roles, newest first, filtered by seniority, engagement or industry.
create index role_postings_open_idx on public.role_postings (opened_at desc, id) where status = 'open';
create index role_postings_open_filters_idx on public.role_postings (seniority, engagement_type) where status = 'open';
create index role_postings_industries_idx on public.role_postings using gin (industries) where status = 'open';
create index role_postings_company_id_idx on public.role_postings (company_id, status);
create index role_postings_created_by_idx on public.role_postings (created_by);

create table public.role_skills (
  role_id uuid not null references public.role_postings (id) on delete cascade,
  skill_id bigint not null references public.skills (id) on delete cascade,
  weight numeric(3, 1) not null default 1 check (weight > 0 and weight <= 5),
  required boolean not null default false,
  primary key (role_id, skill_id)
);
comment on table public.role_skills is 'Skills a role asks for: required ones count double in matching.';
-- The reverse match walks from an executive's skills to the roles that want them.
create index role_skills_skill_id_idx on public.role_skills (skill_id, role_id);

alter table public.role_postings enable row level security;
alter table public.role_skills enable row level security;

revoke all on public.role_postings, public.role_skills from anon, authenticated, service_role;
grant select, delete on public.role_postings to authenticated;
grant insert (company_id, title, description, engagement_type, seniority, industries, location, remote_policy,
              compensation_currency, compensation_min, compensation_max, compensation_unit, hours_per_week,
              start_date, status),
      update (title, description, engagement_type, seniority, industries, location, remote_policy,
              compensation_currency, compensation_min, compensation_max, compensation_unit, hours_per_week,
              start_date, status)
  on public.role_postings to authenticated;
grant select, insert, delete on public.role_skills to authenticated;
grant update (weight, required) on public.role_skills to authenticated;
grant select, insert, update, delete on public.role_postings, public.role_skills to service_role;

-- Clean input and enforce the status machine: draft -> open -> closed, and closed -> open to reopen.
-- A role that was ever open never goes back to draft (candidates may have been introduced to it).
-- Security definer: it runs as the writing caller, who may not execute the cleaning helpers in private.
create function private.prepare_role_posting()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  new.title := regexp_replace(btrim(new.title), '\s+', ' ', 'g');
  new.description := btrim(new.description);
  new.location := nullif(btrim(new.location), '');
  new.industries := private.clean_tags(new.industries);
  if tg_op = 'INSERT' then
    if new.status = 'closed' then
      raise exception 'a new role starts as draft or open' using errcode = 'check_violation';
    end if;
  elsif new.status is distinct from old.status then
    if new.status = 'draft' then
      raise exception 'a % role cannot go back to draft', old.status using errcode = 'check_violation';
    end if;
    new.updated_at := now();
  else
    new.updated_at := now();
  end if;
  if new.status = 'open' and (tg_op = 'INSERT' or old.status <> 'open') then
    new.opened_at := now();
    new.closed_at := null;
  elsif new.status = 'closed' and old.status <> 'closed' then
    new.closed_at := now();
  end if;
  if tg_op = 'UPDATE' and new.description is distinct from old.description then
    new.description_embedding := null;
  end if;
  return new;
end;
$$;
revoke execute on function private.prepare_role_posting() from public;

create trigger role_postings_prepare
  before insert or update on public.role_postings
  for each row execute function private.prepare_role_posting();

-- Company members who may post and edit roles.
create function private.can_manage_roles(company_id uuid)
returns boolean
language sql
stable
set search_path = ''
as $$
  select private.is_company_member(company_id, '{owner,admin,recruiter}');
$$;
revoke execute on function private.can_manage_roles(uuid) from public;
grant execute on function private.can_manage_roles(uuid) to authenticated, service_role;

-- The one call that posts (or edits) a role with its skills, cleaned and validated in the database:
-- `role` is the posting's fields plus `skills`, a list of {"name": free text, "weight": 1-5,
-- "required": bool}. Unknown skills are refused by name. Runs as the caller, so RLS decides who may.
create function public.post_role(role jsonb)
returns public.role_postings
language plpgsql
set search_path = ''
as $$
declare
  posted public.role_postings;
  skills jsonb := coalesce(role -> 'skills', '[]');
  unknown text;
begin
  if jsonb_typeof(role) is distinct from 'object' or jsonb_typeof(skills) <> 'array' then
    raise exception 'role must be an object whose skills are a list' using errcode = 'invalid_parameter_value';
  end if;
  if not role ? 'id' and role ->> 'company_id' is null then
    raise exception 'a new role needs a company_id' using errcode = 'invalid_parameter_value';
  end if;
  if jsonb_array_length(skills) > 50 then
    raise exception 'a role lists at most 50 skills' using errcode = 'invalid_parameter_value';
  end if;
  select string_agg(format('"%s"', r.input), ', ') into unknown
  from public.resolve_skills(array(select coalesce(s ->> 'name', '') from jsonb_array_elements(skills) s)) r
  where r.skill_id is null;
  if unknown is not null then
    raise exception 'unknown skills: %', unknown
      using errcode = 'invalid_parameter_value', hint = 'Use names from public.skills or their aliases.';
  end if;

  if role ? 'id' then
    update public.role_postings p set
      title = coalesce(role ->> 'title', p.title),
      description = coalesce(role ->> 'description', p.description),
      engagement_type = coalesce((role ->> 'engagement_type')::public.engagement_type, p.engagement_type),
      seniority = case when role ? 'seniority' then (role ->> 'seniority')::public.seniority else p.seniority end,
      industries = case when role ? 'industries'
                        then array(select jsonb_array_elements_text(role -> 'industries')) else p.industries end,
      location = case when role ? 'location' then role ->> 'location' else p.location end,
      remote_policy = coalesce((role ->> 'remote_policy')::public.work_mode, p.remote_policy),
      compensation_currency = case when role ? 'compensation_currency' then upper(role ->> 'compensation_currency')
                                   else p.compensation_currency end,
      compensation_min = case when role ? 'compensation_min' then (role ->> 'compensation_min')::numeric
                              else p.compensation_min end,
      compensation_max = case when role ? 'compensation_max' then (role ->> 'compensation_max')::numeric
                              else p.compensation_max end,
      compensation_unit = case when role ? 'compensation_unit' then (role ->> 'compensation_unit')::public.rate_unit
                               else p.compensation_unit end,
      hours_per_week = case when role ? 'hours_per_week' then (role ->> 'hours_per_week')::integer
                            else p.hours_per_week end,
      start_date = case when role ? 'start_date' then (role ->> 'start_date')::date else p.start_date end,
      status = coalesce((role ->> 'status')::public.role_status, p.status)
    where p.id = (role ->> 'id')::uuid
    returning * into posted;
    if posted.id is null then
      raise exception 'no such role, or not yours to edit' using errcode = 'insufficient_privilege';
    end if;
  else
    insert into public.role_postings (
      company_id, title, description, engagement_type, seniority, industries, location, remote_policy,
      compensation_currency, compensation_min, compensation_max, compensation_unit, hours_per_week,
      start_date, status
    ) values (
      (role ->> 'company_id')::uuid,
      role ->> 'title',
      coalesce(role ->> 'description', ''),
      (role ->> 'engagement_type')::public.engagement_type,
      (role ->> 'seniority')::public.seniority,
      coalesce(array(select jsonb_array_elements_text(role -> 'industries')), '{}'),
      role ->> 'location',
      coalesce((role ->> 'remote_policy')::public.work_mode, 'remote'),
      upper(role ->> 'compensation_currency'),
      (role ->> 'compensation_min')::numeric,
      (role ->> 'compensation_max')::numeric,
      (role ->> 'compensation_unit')::public.rate_unit,
      (role ->> 'hours_per_week')::integer,
      (role ->> 'start_date')::date,
      coalesce((role ->> 'status')::public.role_status, 'draft')
    )
    returning * into posted;
  end if;

  if role ? 'skills' then
    delete from public.role_skills rs where rs.role_id = posted.id;
    insert into public.role_skills (role_id, skill_id, weight, required)
    select posted.id, r.skill_id, max(coalesce((s ->> 'weight')::numeric, 1)), bool_or(coalesce((s ->> 'required')::boolean, false))
    from jsonb_array_elements(skills) with ordinality as e (s, position)
    join public.resolve_skills(array(select coalesce(x ->> 'name', '') from jsonb_array_elements(skills) x))
      with ordinality as r (input, skill_id, slug, name, position) using (position)
    group by r.skill_id;
  end if;
  return posted;
end;
$$;
comment on function public.post_role(jsonb) is
  'Posts a role (or edits the one named by "id") with its skills given as free text, validated in the database.';
revoke execute on function public.post_role(jsonb) from public;
grant execute on function public.post_role(jsonb) to authenticated;

-- Matches: what the matching function computed, kept for employers (and executives) to read ---------

create table public.matches (
  role_id uuid not null references public.role_postings (id) on delete cascade,
  executive_id uuid not null references public.executive_profiles (user_id) on delete cascade,
  score numeric(5, 2) not null check (score between 0 and 100),
  breakdown jsonb not null,
  computed_at timestamptz not null default now(),
  primary key (role_id, executive_id)
);
comment on table public.matches is
  'Scores from the last matching run: a role''s top executives, or an executive''s top roles.';
create index matches_executive_id_idx on public.matches (executive_id, score desc);

alter table public.matches enable row level security;
revoke all on public.matches from anon, authenticated, service_role;
grant select on public.matches to authenticated;
grant select, insert, update, delete on public.matches to service_role;

-- Introductions ------------------------------------------------------------------------------------

create type public.introduction_status as enum ('requested', 'accepted', 'declined', 'expired');

create table public.introductions (
  id uuid primary key default gen_random_uuid(),
  role_id uuid not null references public.role_postings (id) on delete cascade,
  company_id uuid not null references public.companies (id) on delete cascade,
  executive_id uuid not null references public.executive_profiles (user_id) on delete cascade,
  requested_by uuid default auth.uid() references auth.users (id) on delete set null,
  message text not null default '' check (char_length(message) <= 2000),
  status public.introduction_status not null default 'requested',
  expires_at timestamptz not null,
  responded_at timestamptz,
  created_at timestamptz not null default now()
);
comment on table public.introductions is
  'An employer''s request to be introduced to an executive for a role; only the executive answers it.';
comment on column public.introductions.company_id is 'The role''s company, copied on insert so policies need no join.';
-- One open request per role and executive.
create unique index introductions_one_open_idx on public.introductions (role_id, executive_id)
  where status = 'requested';
create index introductions_executive_id_idx on public.introductions (executive_id, status);
create index introductions_company_day_idx on public.introductions (company_id, created_at);
create index introductions_requested_by_idx on public.introductions (requested_by);
create index introductions_expiry_idx on public.introductions (expires_at) where status = 'requested';

alter table public.introductions enable row level security;
revoke all on public.introductions from anon, authenticated, service_role;
grant select on public.introductions to authenticated;
grant insert (role_id, executive_id, message) on public.introductions to authenticated;
grant select, insert, update, delete on public.introductions to service_role;

-- Fill in what the requester must not choose, and hold the company to its daily limit.
create function private.prepare_introduction()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  daily_limit integer := (private.config_value('introduction_daily_limit'))::integer;
  made_today integer;
begin
  select r.company_id into new.company_id from public.role_postings r where r.id = new.role_id;
  new.status := 'requested';
  new.responded_at := null;
  new.created_at := now();
  new.expires_at := now() + (private.config_value('introduction_ttl') #>> '{}')::interval;
  if new.company_id is null then
    return new;  -- the foreign key refuses the row
  end if;
  -- Serialise one company's requests so that two at once cannot both take the last one of the day.
  perform pg_advisory_xact_lock(hashtextextended('introductions:' || new.company_id::text, 0));
  select count(*) into made_today from public.introductions i
  where i.company_id = new.company_id and i.created_at >= date_trunc('day', now() at time zone 'utc') at time zone 'utc';
  if made_today >= daily_limit then
    raise exception 'this company has made its % introduction requests for today', daily_limit
      using errcode = 'check_violation', hint = 'Try again tomorrow (UTC).';
  end if;
  -- A request for the same pair that timed out is no longer open, even before the periodic sweep marks it:
  -- mark it now, or it would hold the one-open-request index against this new one.
  update public.introductions i set status = 'expired'
  where i.role_id = new.role_id and i.executive_id = new.executive_id
    and i.status = 'requested' and i.expires_at <= now();
  return new;
end;
$$;
revoke execute on function private.prepare_introduction() from public;

create trigger introductions_prepare
  before insert on public.introductions
  for each row execute function private.prepare_introduction();

-- The only way an introduction's status changes: the executive accepts or declines a live request.
-- Security definer (there is no update grant) and private; public.respond_to_introduction is its API.
create function private.respond_to_introduction(introduction_id uuid, accept boolean)
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
  update public.introductions i
  set status = case when accept then 'accepted' else 'declined' end::public.introduction_status,
      responded_at = now()
  where i.id = answered.id
  returning * into answered;
  return answered;
end;
$$;
revoke execute on function private.respond_to_introduction(uuid, boolean) from public;
grant execute on function private.respond_to_introduction(uuid, boolean) to authenticated;

-- The API entry point (security invoker, so Supabase's advisor has no definer function to flag in public).
create function public.respond_to_introduction(introduction_id uuid, accept boolean)
returns public.introductions
language sql
set search_path = ''
as $$
  select * from private.respond_to_introduction(introduction_id, accept);
$$;
comment on function public.respond_to_introduction(uuid, boolean) is
  'The executive accepts (sharing contact details with the company) or declines an introduction request.';
revoke execute on function public.respond_to_introduction(uuid, boolean) from public;
grant execute on function public.respond_to_introduction(uuid, boolean) to authenticated;

-- Requests nobody answered in time; run by the worker's periodic task.
create function private.expire_introductions()
returns integer
language sql
security definer
set search_path = ''
as $$
  with expired as (
    update public.introductions i set status = 'expired'
    where i.status = 'requested' and i.expires_at <= now()
    returning 1
  )
  select count(*)::integer from expired;
$$;
revoke execute on function private.expire_introductions() from public;

-- Feedback -----------------------------------------------------------------------------------------

create type public.feedback_subject as enum ('match', 'introduction', 'product');

create table public.feedback (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null default auth.uid() references auth.users (id) on delete cascade,
  subject public.feedback_subject not null,
  role_id uuid references public.role_postings (id) on delete set null,
  executive_id uuid references public.executive_profiles (user_id) on delete set null,
  introduction_id uuid references public.introductions (id) on delete set null,
  rating smallint not null check (rating between 1 and 5),
  comment text not null default '' check (char_length(comment) <= 5000),
  created_at timestamptz not null default now(),
  constraint feedback_names_its_subject check (
    case subject
      when 'match' then introduction_id is null
      when 'introduction' then role_id is null and executive_id is null
      else role_id is null and executive_id is null and introduction_id is null
    end
  )
);
comment on table public.feedback is 'Ratings and comments on a match, an introduction or the product; admins read all.';
create index feedback_user_id_idx on public.feedback (user_id, created_at desc);
create index feedback_role_id_idx on public.feedback (role_id);
create index feedback_executive_id_idx on public.feedback (executive_id);
create index feedback_introduction_id_idx on public.feedback (introduction_id);

alter table public.feedback enable row level security;
revoke all on public.feedback from anon, authenticated, service_role;
grant select on public.feedback to authenticated;
grant insert (subject, role_id, executive_id, introduction_id, rating, comment) on public.feedback to authenticated;
grant select, insert, update, delete on public.feedback to service_role;

-- Visibility helpers for the policies --------------------------------------------------------------

-- The caller's company can see this executive: matched to one of its roles, or introduced.
create function private.executive_visible_to_employer(executive_id uuid)
returns boolean
language sql
stable
security definer
set search_path = ''
as $$
  select exists (
    select 1 from public.matches m join public.role_postings r on r.id = m.role_id
    where m.executive_id = executive_visible_to_employer.executive_id and private.is_company_member(r.company_id)
  ) or exists (
    select 1 from public.introductions i
    where i.executive_id = executive_visible_to_employer.executive_id and private.is_company_member(i.company_id)
  );
$$;
revoke execute on function private.executive_visible_to_employer(uuid) from public;
grant execute on function private.executive_visible_to_employer(uuid) to authenticated, service_role;

-- The executive accepted an introduction from the caller's company.
create function private.executive_contact_shared(executive_id uuid)
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
  );
$$;
revoke execute on function private.executive_contact_shared(uuid) from public;
grant execute on function private.executive_contact_shared(uuid) to authenticated, service_role;

-- Is this role one the caller may see: open, or inside their company?
create function private.role_visible(role_id uuid)
returns boolean
language sql
stable
security definer
set search_path = ''
as $$
  select exists (
    select 1 from public.role_postings r
    where r.id = role_visible.role_id and (r.status = 'open' or private.is_company_member(r.company_id))
  );
$$;
revoke execute on function private.role_visible(uuid) from public;
grant execute on function private.role_visible(uuid) to authenticated, service_role;
