-- =====================================================================================================
-- Job search: the job board (listings), its full-text search, saved listings and saved searches
-- =====================================================================================================
-- Open role postings of verified companies are the job board. Anonymous visitors and every signed-in
-- user list, filter, sort, page and count them through PostgREST (`public.listings`) and search them by
-- relevance (`public.search_jobs`); signed-in users keep saved listings and saved searches of their own.
--
-- The board is a table of its own, `public.listings`: one row per listed posting (open, its company
-- verified and not deleted) holding only what the public may read, and its company's name; written by
-- the triggers below, in the same transaction as the change that causes it, and by nobody else. Grants
-- on `role_postings` itself cannot do this job:
-- 1. Columns. Column grants are per role, and `authenticated` is every signed-in user: company members
--    read every column of their own postings (`select *`, `post_role`, `returning *`), so no grant there
--    could keep unpublished compensation or `created_by` from the rest. A listing has no such column.
-- 2. Search under RLS. Postgres applies a policy's condition before any operator of the query that is
--    not leakproof, and `@@`, enum equality and array containment are not (only a superuser may mark
--    them so): under a policy with a row condition ("open and verified"), none of them can use an index,
--    and a search reads every posting (a sequential scan, seen in the plan). Every row of `listings` is
--    public, so its policy is `using (true)`, which the planner drops: the indexes serve everyone.
-- 3. Matching's own rules stay as they are: visitors still see no role posting and no role_skills row.
--
-- Compensation is published by the company: `role_postings.compensation_published` (off by default, set
-- by whoever edits the posting) copies the range into the listing; otherwise the listing's compensation
-- columns are null. Matching's rule that every signed-in user reads open postings whole is unchanged.
-- Policies for these tables live in supabase/policies/jobsearch_listings.sql.

alter table public.role_postings add column compensation_published boolean not null default false;
comment on column public.role_postings.compensation_published is
  'Whether the job board (public.listings) shows the compensation range; matching uses the range either way.';
grant insert (compensation_published), update (compensation_published)
  on public.role_postings to authenticated;

-- The board ------------------------------------------------------------------------------------------

create table public.listings (
  role_posting_id uuid primary key references public.role_postings (id) on delete cascade,
  company_id uuid not null,
  company_name text not null,
  title text not null,
  description text not null,
  engagement_type public.engagement_type not null,
  seniority public.seniority,
  industries text[] not null,
  location text,
  remote_policy public.work_mode not null,
  compensation_currency text,
  compensation_min numeric(12, 2),
  compensation_max numeric(12, 2),
  compensation_unit public.rate_unit,
  hours_per_week integer,
  start_date date,
  skill_ids bigint[] not null,
  opened_at timestamptz not null,
  -- Titles weigh more than descriptions in the ranking (A against B).
  search_vector tsvector generated always as (
    setweight(to_tsvector('english', title), 'A') || setweight(to_tsvector('english', description), 'B')
  ) stored
);
comment on table public.listings is
  'The job board: the public columns of open role postings of verified companies, kept by triggers.';
comment on column public.listings.compensation_min is 'Null unless the company publishes the range.';
comment on column public.listings.skill_ids is
  'The posting''s skills (role_skills), for filters: skill_ids=cs.{1,2} (all of them).';
comment on column public.listings.search_vector is
  'Title and description for full-text search (English): ranked by search_jobs, or filtered with wfts.';

create index listings_search_idx on public.listings using gin (search_vector);
create index listings_newest_idx on public.listings (opened_at desc, role_posting_id);
create index listings_filters_idx on public.listings (engagement_type, seniority, remote_policy);
create index listings_industries_idx on public.listings using gin (industries);
create index listings_skill_ids_idx on public.listings using gin (skill_ids);
create index listings_company_id_idx on public.listings (company_id);

alter table public.listings enable row level security;
-- Every column is public; nobody but the triggers writes (the service role reads).
revoke all on public.listings from anon, authenticated, service_role;
grant select on public.listings to anon, authenticated, service_role;

-- Writes the listings of these postings as they now are: listed ones inserted or updated, the others
-- removed. The one definition of what is listed and what a listing shows.
--
-- Concurrency (READ COMMITTED): a listing must not keep what a concurrent transaction changed. The
-- companies are share-locked first, in a statement of their own, so the statement that writes reads the
-- data after the lock: a company's verification, name or deletion waits for every uncommitted posting
-- write of that company (they hold this lock until they commit), and a posting write waits for an
-- uncommitted change of its company. Skill changes lock their postings (see below) for the same reason.
create function private.refresh_listings(role_posting_ids uuid[])
returns void
language plpgsql
security definer
set search_path = ''
as $$
begin
  if cardinality(role_posting_ids) = 0 then
    return;
  end if;
  perform 1 from public.companies c
  where c.id in (select r.company_id from public.role_postings r where r.id = any (role_posting_ids))
  order by c.id
  for share;

  with listed as (
    insert into public.listings as l (
      role_posting_id, company_id, company_name, title, description, engagement_type, seniority, industries,
      location, remote_policy, compensation_currency, compensation_min, compensation_max, compensation_unit,
      hours_per_week, start_date, skill_ids, opened_at
    )
    select r.id, r.company_id, c.name, r.title, r.description, r.engagement_type, r.seniority, r.industries,
           r.location, r.remote_policy,
           case when r.compensation_published then r.compensation_currency end,
           case when r.compensation_published then r.compensation_min end,
           case when r.compensation_published then r.compensation_max end,
           case when r.compensation_published then r.compensation_unit end,
           r.hours_per_week, r.start_date,
           array(select rs.skill_id from public.role_skills rs where rs.role_id = r.id order by rs.skill_id),
           coalesce(r.opened_at, r.created_at)
    from public.role_postings r
    join public.companies c on c.id = r.company_id
    where r.id = any (role_posting_ids)
      and r.status = 'open' and c.verified_at is not null and c.deleted_at is null
    on conflict (role_posting_id) do update set
      company_id = excluded.company_id, company_name = excluded.company_name, title = excluded.title,
      description = excluded.description, engagement_type = excluded.engagement_type,
      seniority = excluded.seniority, industries = excluded.industries, location = excluded.location,
      remote_policy = excluded.remote_policy, compensation_currency = excluded.compensation_currency,
      compensation_min = excluded.compensation_min, compensation_max = excluded.compensation_max,
      compensation_unit = excluded.compensation_unit, hours_per_week = excluded.hours_per_week,
      start_date = excluded.start_date, skill_ids = excluded.skill_ids, opened_at = excluded.opened_at
    returning l.role_posting_id
  )
  delete from public.listings l
  where l.role_posting_id = any (role_posting_ids)
    and l.role_posting_id not in (select listed.role_posting_id from listed);
end;
$$;
revoke execute on function private.refresh_listings(uuid[]) from public;

-- Statement-level triggers (one refresh per statement, so bulk loads stay bulk); one per event, as
-- triggers with transition tables must be. A deleted posting takes its listing with it (foreign key).
create function private.role_postings_listings_changed()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  if tg_op = 'INSERT' then
    perform private.refresh_listings(array(select n.id from new_rows n where n.status = 'open'));
  else
    -- What a listing is made of; not the worker's embeddings, nor updated_at.
    perform private.refresh_listings(array(
      select n.id
      from new_rows n join old_rows o on o.id = n.id
      where (n.status = 'open' or o.status = 'open')
        and (n.status, n.company_id, n.title, n.description, n.engagement_type, n.seniority,
             n.industries, n.location, n.remote_policy, n.compensation_published, n.compensation_currency,
             n.compensation_min, n.compensation_max, n.compensation_unit, n.hours_per_week, n.start_date,
             n.opened_at)
        is distinct from
            (o.status, o.company_id, o.title, o.description, o.engagement_type, o.seniority,
             o.industries, o.location, o.remote_policy, o.compensation_published, o.compensation_currency,
             o.compensation_min, o.compensation_max, o.compensation_unit, o.hours_per_week, o.start_date,
             o.opened_at)
    ));
  end if;
  return null;
end;
$$;
revoke execute on function private.role_postings_listings_changed() from public;

create trigger role_postings_list_inserted
  after insert on public.role_postings
  referencing new table as new_rows
  for each statement execute function private.role_postings_listings_changed();

create trigger role_postings_list_updated
  after update on public.role_postings
  referencing old table as old_rows new table as new_rows
  for each statement execute function private.role_postings_listings_changed();

-- A posting's skills changed: its listing's skill_ids follow. The postings are locked first, so that a
-- concurrent edit of the posting (which refreshes the listing too) is committed before this reads it.
create function private.role_skills_listings_changed()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  changed uuid[];
begin
  if tg_op = 'INSERT' then
    changed := array(select distinct n.role_id from new_rows n);
  elsif tg_op = 'DELETE' then
    changed := array(select distinct o.role_id from old_rows o);
  else
    changed := array(select n.role_id from new_rows n union select o.role_id from old_rows o);
  end if;
  perform 1 from public.role_postings r where r.id = any (changed) order by r.id for no key update;
  perform private.refresh_listings(changed);
  return null;
end;
$$;
revoke execute on function private.role_skills_listings_changed() from public;

create trigger role_skills_list_inserted
  after insert on public.role_skills
  referencing new table as new_rows
  for each statement execute function private.role_skills_listings_changed();

create trigger role_skills_list_updated
  after update on public.role_skills
  referencing old table as old_rows new table as new_rows
  for each statement execute function private.role_skills_listings_changed();

create trigger role_skills_list_deleted
  after delete on public.role_skills
  referencing old table as old_rows
  for each statement execute function private.role_skills_listings_changed();

-- A company verified or no longer, deleted or restored, or renamed: its open postings' listings follow.
create function private.companies_listings_changed()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  perform private.refresh_listings(array(
    select r.id from public.role_postings r where r.company_id = new.id and r.status = 'open'
  ));
  return null;
end;
$$;
revoke execute on function private.companies_listings_changed() from public;

create trigger companies_list_postings
  after update of name, verified_at, deleted_at on public.companies
  for each row
  when (
    old.name is distinct from new.name
    or (old.verified_at is null) <> (new.verified_at is null)
    or (old.deleted_at is null) <> (new.deleted_at is null)
  )
  execute function private.companies_listings_changed();

-- Postings already open when this migration runs.
select private.refresh_listings(array(select r.id from public.role_postings r where r.status = 'open'));

-- Search -----------------------------------------------------------------------------------------------

-- Full-text search of the board, ranked, with the board's filters and one page of results. Every row
-- carries the number of listings that match (total_count), for pagination; a page past the end is
-- empty. `query` takes what people type into a search box (websearch_to_tsquery: words, "a phrase",
-- or, -excluded); without one (or with stop words only) listings come newest first. Filters combine
-- (and); within one, any of the values matches, except with_skills: a listing must ask for all of them.
-- Security invoker over a table every caller may read; in plpgsql so that a connection keeps its plans.
create function public.search_jobs(
  query text default null,
  engagement_types public.engagement_type[] default null,
  seniorities public.seniority[] default null,
  remote_policies public.work_mode[] default null,
  located_in text default null,
  in_industries text[] default null,
  with_skills bigint[] default null,
  sort text default 'relevance',
  page_size integer default 20,
  page_offset integer default 0
)
returns table (
  role_posting_id uuid,
  company_id uuid,
  company_name text,
  title text,
  description text,
  engagement_type public.engagement_type,
  seniority public.seniority,
  industries text[],
  location text,
  remote_policy public.work_mode,
  compensation_currency text,
  compensation_min numeric,
  compensation_max numeric,
  compensation_unit public.rate_unit,
  hours_per_week integer,
  start_date date,
  skill_ids bigint[],
  opened_at timestamptz,
  rank real,
  total_count bigint
)
language plpgsql
stable
set search_path = ''
as $$
#variable_conflict use_column
declare
  words tsquery;
  by_rank boolean;
  wanted_industries text[];
  place_pattern text;
  unknown text;
begin
  if page_size is null or page_size not between 1 and 100 then
    raise exception 'page_size: 1 to 100 listings' using errcode = 'invalid_parameter_value';
  end if;
  if page_offset is null or page_offset not between 0 and 10000 then
    raise exception 'page_offset: 0 to 10,000' using errcode = 'invalid_parameter_value',
      hint = 'Narrow the search rather than paging that far.';
  end if;
  if sort is null or sort not in ('relevance', 'newest') then
    raise exception 'sort: relevance or newest' using errcode = 'invalid_parameter_value';
  end if;
  if char_length(query) > 500 then
    raise exception 'query: at most 500 characters' using errcode = 'invalid_parameter_value';
  end if;
  if char_length(search_jobs.located_in) > 200 then
    raise exception 'located_in: at most 200 characters' using errcode = 'invalid_parameter_value';
  end if;
  if cardinality(search_jobs.in_industries) > 20 or cardinality(search_jobs.with_skills) > 20 then
    raise exception 'in_industries and with_skills: at most 20 each'
      using errcode = 'invalid_parameter_value';
  end if;
  select string_agg(coalesce(s.id::text, 'null'), ', ' order by s.id) into unknown
  from unnest(search_jobs.with_skills) s (id)
  where s.id is null or not exists (select 1 from public.skills k where k.id = s.id);
  if unknown is not null then
    raise exception 'with_skills: no such skills: %', unknown using errcode = 'invalid_parameter_value',
      hint = 'Skill ids come from public.skills (or resolve_skills for free text).';
  end if;

  if btrim(query) <> '' then
    words := websearch_to_tsquery('english', query);
    if numnode(words) = 0 then
      words := null;  -- stop words only: nothing to search for
    end if;
  end if;
  by_rank := words is not null and sort = 'relevance';
  -- Industry tags are stored clean (lower case, single spaces): compare the same way.
  wanted_industries := array(
    select lower(regexp_replace(btrim(i), '\s+', ' ', 'g')) from unnest(search_jobs.in_industries) i
  );
  -- A part of the place, any case; % and _ are the caller's letters, not wildcards. Blank: no filter.
  place_pattern :=
    '%' || regexp_replace(nullif(btrim(search_jobs.located_in), ''), '([\\%_])', '\\\1', 'g') || '%';

  -- Ranked and counted on narrow rows (id, rank, date), then the page's 20 rows read whole: carrying
  -- every match's text through the count would spill to disk on broad searches.
  return query
  with matched as materialized (
    select l.role_posting_id, l.opened_at,
           case when words is null then 0 else ts_rank(l.search_vector, words) end::real as rank
    from public.listings l
    where (words is null or l.search_vector @@ words)
      and (search_jobs.engagement_types is null or l.engagement_type = any (search_jobs.engagement_types))
      and (search_jobs.seniorities is null or l.seniority = any (search_jobs.seniorities))
      and (search_jobs.remote_policies is null or l.remote_policy = any (search_jobs.remote_policies))
      and (place_pattern is null or l.location ilike place_pattern)
      and (search_jobs.in_industries is null or l.industries && wanted_industries)
      and (search_jobs.with_skills is null or l.skill_ids @> search_jobs.with_skills)
  ),
  page as (
    select m.role_posting_id, m.opened_at, m.rank, count(*) over () as total_count
    from matched m
    order by case when by_rank then m.rank end desc nulls last, m.opened_at desc, m.role_posting_id
    limit page_size offset page_offset
  )
  select l.role_posting_id, l.company_id, l.company_name, l.title, l.description, l.engagement_type,
         l.seniority, l.industries, l.location, l.remote_policy, l.compensation_currency, l.compensation_min,
         l.compensation_max, l.compensation_unit, l.hours_per_week, l.start_date, l.skill_ids, l.opened_at,
         p.rank, p.total_count
  from page p join public.listings l on l.role_posting_id = p.role_posting_id
  order by case when by_rank then p.rank end desc nulls last, p.opened_at desc, p.role_posting_id;
end;
$$;
comment on function public.search_jobs(text, public.engagement_type[], public.seniority[],
                                       public.work_mode[], text, text[], bigint[], text, integer, integer) is
  'Full-text search of the job board with filters, ranked or newest first, a page at a time with the total.';
revoke execute on function public.search_jobs(text, public.engagement_type[], public.seniority[],
                                              public.work_mode[], text, text[], bigint[], text, integer,
                                              integer)
  from public, anon;
grant execute on function public.search_jobs(text, public.engagement_type[], public.seniority[],
                                             public.work_mode[], text, text[], bigint[], text, integer,
                                             integer)
  to anon, authenticated, service_role;

-- Saved listings -----------------------------------------------------------------------------------------

-- A saved posting stays saved when it leaves the board (closed, its company unverified): the frontend
-- shows it as gone, and it comes back if the posting reopens.
create table public.saved_listings (
  user_id uuid not null default auth.uid() references auth.users (id) on delete cascade,
  role_posting_id uuid not null references public.role_postings (id) on delete cascade,
  created_at timestamptz not null default now(),
  primary key (user_id, role_posting_id)
);
comment on table public.saved_listings is 'Listings a signed-in user keeps for later; their own only.';
-- The primary key serves the policies (user_id first); this one the foreign key's cascades.
create index saved_listings_role_posting_id_idx on public.saved_listings (role_posting_id);
create index saved_listings_newest_idx on public.saved_listings (user_id, created_at desc);

alter table public.saved_listings enable row level security;
revoke all on public.saved_listings from anon, authenticated, service_role;
grant select, delete on public.saved_listings to authenticated;
grant insert (user_id, role_posting_id) on public.saved_listings to authenticated;
grant select, insert, update, delete on public.saved_listings to service_role;

-- A saved listing's listing, as PostgREST embeds it (a computed relationship, the two tables sharing no
-- foreign key): `saved_listings?select=created_at,listing(title,company_name)`; null once off the board.
create function public.listing(saved public.saved_listings)
returns setof public.listings
rows 1
language sql
stable
set search_path = ''
as $$
  select l.* from public.listings l where l.role_posting_id = saved.role_posting_id;
$$;
revoke execute on function public.listing(public.saved_listings) from public, anon;
grant execute on function public.listing(public.saved_listings) to authenticated, service_role;

-- Saved searches ---------------------------------------------------------------------------------------

-- `filters` are search_jobs' arguments by name (what the frontend passes back to it), checked here so
-- that a saved search always runs: known names, JSON types, enum values, 4 KB at most.
create table public.saved_searches (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null default auth.uid() references auth.users (id) on delete cascade,
  name text not null
    check (private.require(char_length(name) between 1 and 100, 'name: 1 to 100 characters')),
  filters jsonb not null default '{}',
  created_at timestamptz not null default now()
);
comment on table public.saved_searches is
  'Searches a signed-in user keeps: a name and search_jobs'' arguments (filters); their own only.';
comment on column public.saved_searches.filters is
  'search_jobs'' arguments by name: query, engagement_types, seniorities, remote_policies, located_in, '
  'in_industries, with_skills, sort.';
-- One name per user; its user_id serves the policies.
create unique index saved_searches_user_name_idx on public.saved_searches (user_id, name);

alter table public.saved_searches enable row level security;
revoke all on public.saved_searches from anon, authenticated, service_role;
grant select, delete on public.saved_searches to authenticated;
grant insert (user_id, name, filters), update (name, filters) on public.saved_searches to authenticated;
grant select, insert, update, delete on public.saved_searches to service_role;

create function private.prepare_saved_search()
returns trigger
language plpgsql
set search_path = ''
as $$
declare
  unknown text;
  bad text;
begin
  new.name := btrim(new.name);
  if jsonb_typeof(new.filters) is distinct from 'object' then
    raise exception 'filters: an object of search_jobs arguments' using errcode = 'check_violation';
  end if;
  if octet_length(new.filters::text) > 4096 then
    raise exception 'filters: at most 4 KB' using errcode = 'check_violation';
  end if;
  select string_agg(k, ', ' order by k) into unknown
  from jsonb_object_keys(new.filters) k
  where k not in ('query', 'engagement_types', 'seniorities', 'remote_policies', 'located_in',
                  'in_industries', 'with_skills', 'sort');
  if unknown is not null then
    raise exception 'filters: unknown names: %', unknown using errcode = 'check_violation',
      hint = 'The names are search_jobs'' arguments: query, engagement_types, seniorities, remote_policies, '
             'located_in, in_industries, with_skills, sort.';
  end if;
  -- JSON types: text for these, lists of text or of whole numbers for the others; null means unset.
  select string_agg(f.key, ', ' order by f.key) into bad
  from jsonb_each(new.filters) f
  where jsonb_typeof(f.value) <> 'null'
    and case
      when f.key in ('query', 'located_in', 'sort') then jsonb_typeof(f.value) <> 'string'
      when jsonb_typeof(f.value) <> 'array' then true
      when f.key = 'with_skills' then exists (
        select 1 from jsonb_array_elements(f.value) e
        where jsonb_typeof(e) <> 'number' or (e #>> '{}') !~ '^[0-9]+$'
      )
      else exists (select 1 from jsonb_array_elements(f.value) e where jsonb_typeof(e) <> 'string')
    end;
  if bad is not null then
    raise exception 'filters: wrong type for %', bad using errcode = 'check_violation',
      hint = 'query, located_in and sort are text; with_skills a list of skill ids; the others lists of '
             'text.';
  end if;
  if new.filters ->> 'sort' not in ('relevance', 'newest') then
    raise exception 'filters.sort: relevance or newest' using errcode = 'check_violation';
  end if;
  begin
    perform
      array(select jsonb_array_elements_text(new.filters -> 'engagement_types'))::public.engagement_type[],
      array(select jsonb_array_elements_text(new.filters -> 'seniorities'))::public.seniority[],
      array(select jsonb_array_elements_text(new.filters -> 'remote_policies'))::public.work_mode[];
  exception when invalid_text_representation then
    raise exception 'filters: engagement_types are among %, seniorities among %, remote_policies among %',
      enum_range(null::public.engagement_type), enum_range(null::public.seniority),
      enum_range(null::public.work_mode)
      using errcode = 'check_violation';
  end;
  return new;
end;
$$;
revoke execute on function private.prepare_saved_search() from public;

create trigger saved_searches_prepare
  before insert or update on public.saved_searches
  for each row execute function private.prepare_saved_search();
