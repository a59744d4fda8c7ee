-- =====================================================================================================
-- Job search: resumes uploaded to Storage, read by the worker, their skills proposed to their owner
-- =====================================================================================================
-- The frontend uploads with `supabase.storage.from('resumes').upload('<user id>/<name>', file)`, within
-- the bucket's limits (10 MB; PDF, DOCX, plain text) and the policies in
-- supabase/policies/jobsearch_resumes.sql (a user's own folder only). The upload itself queues the
-- reading: triggers on storage.objects write the resume's row (status `queued`) and the worker's job in
-- the transaction that writes the object's row, whoever uploads (supabase-js, the dashboard, a script),
-- so no upload goes unread and nothing is lost if a process dies in between. The job
-- (rpc/jobsearch/resumes.py) checks the type from the bytes, extracts the text under time and memory
-- limits, splits it into sections and proposes the skills it names (resume_skill_suggestions), which
-- become the user's only when they accept them. The frontend follows a resume by reading its row through
-- PostgREST; users read their own rows only, and change only which resume is their primary one and which
-- suggestions they accept (column grants below). Deleting the file deletes its resume.

-- The bucket ---------------------------------------------------------------------------------------------
-- Private (objects are read through the policies, or with the service key by the worker). As in
-- 20261130100000_storage_buckets.sql: on a hosted project `postgres` may insert and update bucket rows, no
-- more. Keep supabase/config.toml's [storage.buckets.*] in agreement when it lists this bucket.

insert into storage.buckets (id, name, public, file_size_limit, allowed_mime_types)
values
  ('resumes', 'resumes', false, 10485760,
   array['application/pdf', 'application/vnd.openxmlformats-officedocument.wordprocessingml.document',
         'text/plain'])
on conflict (id) do update set
  name = excluded.name,
  public = excluded.public,
  file_size_limit = excluded.file_size_limit,
  allowed_mime_types = excluded.allowed_mime_types;

-- Resumes --------------------------------------------------------------------------------------------------

create table public.resumes (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null references auth.users (id) on delete cascade,
  object_path text not null unique check (char_length(object_path) <= 1024),
  content_hash text check (content_hash ~ '^[0-9a-f]{64}$'),
  media_type text check (media_type in (
    'application/pdf', 'application/vnd.openxmlformats-officedocument.wordprocessingml.document', 'text/plain'
  )),
  page_count integer check (page_count >= 0),
  text text,
  sections jsonb check (jsonb_typeof(sections) = 'array'),
  status text not null default 'queued' check (status in ('queued', 'processing', 'ready', 'failed')),
  failure_reason text check (failure_reason in (
    'empty', 'too_large', 'unsupported_type', 'executable', 'corrupt', 'encrypted', 'no_text', 'timeout',
    'missing', 'internal'
  )),
  is_primary boolean not null default false,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint resumes_failure_reason_when_failed check ((status = 'failed') = (failure_reason is not null)),
  -- The same file twice is one resume (the worker keeps the earlier row and points it at the new path).
  -- Its index also serves the owner-only policies, which filter on user_id.
  constraint resumes_one_per_content unique (user_id, content_hash)
);
comment on table public.resumes is
  'A user''s uploaded resume (bucket resumes, `<user id>/...`) and what the worker read from it; '
  'written by triggers on storage.objects and by the worker.';
comment on column public.resumes.object_path is
  'The object''s name in bucket `resumes`: `<user id>/<file name>`.';
comment on column public.resumes.content_hash is 'sha256 of the bytes, hex; unique per user.';
comment on column public.resumes.media_type is
  'The type the bytes showed, whatever the name or the upload said.';
comment on column public.resumes.page_count is
  'PDF pages; for DOCX what the document records (null when it records none); null for text.';
comment on column public.resumes.sections is
  'Array of {kind, title, content}: by structured AI output when AI is configured, else split at recognised '
  'headings.';
comment on column public.resumes.status is
  'queued -> processing -> ready | failed; a new upload to the path queues it again.';
comment on column public.resumes.failure_reason is
  'Why it failed, for the frontend to word: empty (no bytes); too_large (over 10 MB, or too large once '
  'unpacked: a zip bomb); unsupported_type (not a PDF, DOCX or UTF-8 text file, whatever its name); '
  'executable (a program); corrupt (damaged); encrypted (password protected); no_text (no text layer: a '
  'scan or images only, or blank); timeout (took too long to read); missing (the file was gone); internal '
  '(our side failed: process it again).';
comment on column public.resumes.is_primary is
  'The resume the careers chat and other features use; at most one per user, the first to be read unless '
  'the user chooses.';
create unique index resumes_one_primary_per_user on public.resumes (user_id) where is_primary;

create table public.resume_skill_suggestions (
  resume_id uuid not null references public.resumes (id) on delete cascade,
  skill_id bigint not null references public.skills (id) on delete cascade,
  user_id uuid not null references auth.users (id) on delete cascade,
  matched_text text not null check (char_length(matched_text) <= 200),
  accepted_at timestamptz,
  created_at timestamptz not null default now(),
  primary key (resume_id, skill_id)
);
comment on table public.resume_skill_suggestions is
  'Skills of the ontology a resume names, proposed to its owner; accepted by them (accepted_at), never '
  'applied for them.';
comment on column public.resume_skill_suggestions.matched_text is
  'The words of the resume (or of the AI''s reading) that named the skill.';
comment on column public.resume_skill_suggestions.accepted_at is
  'Set (to the database''s clock) when the user accepts: see private.add_accepted_resume_skill for where the '
  'skill goes.';
create index resume_skill_suggestions_user_idx on public.resume_skill_suggestions (user_id);
create index resume_skill_suggestions_skill_idx on public.resume_skill_suggestions (skill_id);

alter table public.resumes enable row level security;
alter table public.resume_skill_suggestions enable row level security;

-- Rows are written by the triggers and the worker only: users read their own, choose their primary resume
-- and accept suggestions. Removing the file removes the resume (no delete grant: one way to do it).
revoke all on public.resumes, public.resume_skill_suggestions from anon, authenticated, service_role;
grant select on public.resumes, public.resume_skill_suggestions to authenticated;
grant update (is_primary) on public.resumes to authenticated;
grant update (accepted_at) on public.resume_skill_suggestions to authenticated;
grant select, insert, update, delete on public.resumes, public.resume_skill_suggestions to service_role;

create trigger resumes_touch_updated_at
  before update on public.resumes
  for each row execute function private.touch_updated_at();

-- Choosing a primary resume unsets the previous one, so the frontend needs one update, not two in order.
-- Security invoker: it changes only the caller's own rows, which they may update themselves. (The unique
-- index accepts it: the other row's update comes first, in the same statement's transaction.)
create function private.keep_one_primary_resume()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
  update public.resumes r set is_primary = false
  where r.user_id = new.user_id and r.is_primary and r.id <> new.id;
  return new;
end;
$$;
revoke execute on function private.keep_one_primary_resume() from public;

create trigger resumes_keep_one_primary
  before update of is_primary on public.resumes
  for each row when (new.is_primary and not old.is_primary)
  execute function private.keep_one_primary_resume();

-- Accepting a suggestion -----------------------------------------------------------------------------------
-- Where a user's skills live: public.executive_skills, which matching reads, keyed by an executive
-- profile (only users with the executive role have one). An accepted suggestion is added there when the
-- user has a profile, at a neutral level they may then change; it is never removed from there by
-- un-accepting (the executive edits their skills in that table). A job seeker without an executive
-- profile has no other skill list in the schema: their accepted suggestions are their skills.

-- accepted_at is the database's clock, set once, whatever the client sends; null un-accepts.
create function private.stamp_resume_skill_acceptance()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
  if new.accepted_at is not null then
    new.accepted_at := coalesce(old.accepted_at, now());
  end if;
  return new;
end;
$$;
revoke execute on function private.stamp_resume_skill_acceptance() from public;

create trigger resume_skill_suggestions_stamp_acceptance
  before update of accepted_at on public.resume_skill_suggestions
  for each row execute function private.stamp_resume_skill_acceptance();

-- Security invoker: the user adds their own skill under their own rights (executive_skills' policies).
create function private.add_accepted_resume_skill()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
  insert into public.executive_skills (executive_id, skill_id)
  select p.user_id, new.skill_id from public.executive_profiles p where p.user_id = new.user_id
  on conflict do nothing;
  return null;
end;
$$;
revoke execute on function private.add_accepted_resume_skill() from public;

create trigger resume_skill_suggestions_add_accepted
  after update of accepted_at on public.resume_skill_suggestions
  for each row when (old.accepted_at is null and new.accepted_at is not null)
  execute function private.add_accepted_resume_skill();

-- Queueing the reading -------------------------------------------------------------------------------------

-- The worker's job for one resume: at most one waiting (queueing lock) and never two running (lock), so a
-- second upload while one is read waits for it and then reads the newer bytes.
create function private.queue_resume_processing(resume_id uuid)
returns void
language plpgsql
security definer
set search_path = ''
as $$
begin
  perform private.queue_job('resumes', 'jobsearch:process_resume', 'resume:' || resume_id,
                            jsonb_build_object('resume_id', resume_id));
end;
$$;
revoke execute on function private.queue_resume_processing(uuid) from public;

-- The resume of an object in bucket `resumes`, queued: created, or queued again (`new_bytes`: what was read
-- before no longer applies); its id and status. No row for an object outside a user's folder, or for the
-- dashboard's placeholder of an empty folder. Security definer: called by the triggers below as whoever
-- uploads, and by the `resumes/process` function as the service role once it checked, as the caller, that
-- the object is theirs.
create function private.queue_resume(object_path text, new_bytes boolean)
returns table (resume_id uuid, resume_status text)
language plpgsql
security definer
set search_path = ''
as $$
declare
  folder text := (storage.foldername(object_path))[1];
  owner uuid;
  queued uuid;
begin
  if storage.filename(object_path) = '.emptyFolderPlaceholder'
     or folder !~ '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' then
    return;
  end if;
  select u.id into owner from auth.users u where u.id = folder::uuid;
  if owner is null then
    return;
  end if;
  insert into public.resumes as r (user_id, object_path) values (owner, object_path)
  on conflict on constraint resumes_object_path_key do update set
    status = 'queued',
    failure_reason = null,
    content_hash = case when new_bytes then null else r.content_hash end,
    media_type = case when new_bytes then null else r.media_type end,
    page_count = case when new_bytes then null else r.page_count end,
    text = case when new_bytes then null else r.text end,
    sections = case when new_bytes then null else r.sections end
  returning r.id into queued;
  perform private.queue_resume_processing(queued);
  return query select queued, 'queued'::text;
end;
$$;
revoke execute on function private.queue_resume(text, boolean) from public;
grant execute on function private.queue_resume(text, boolean) to service_role;

-- A resume follows its object: new bytes (an upload, an upsert) queue it, a move takes it along as a new
-- upload at the new name, a removal deletes it. Storage runs these statements as the uploading user, hence
-- security definer. Only uploads to `resumes` reach this (the triggers' WHEN clauses).
create function private.follow_resume_object()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  if tg_op <> 'INSERT' and old.bucket_id = 'resumes'
     and (tg_op = 'DELETE' or new.bucket_id is distinct from old.bucket_id
          or new.name is distinct from old.name) then
    delete from public.resumes r where r.object_path = old.name;
  end if;
  if tg_op <> 'DELETE' and new.bucket_id = 'resumes'
     and (tg_op = 'INSERT' or new.bucket_id is distinct from old.bucket_id
          or new.name is distinct from old.name or new.version is distinct from old.version) then
    perform private.queue_resume(new.name, true);
  end if;
  return null;
end;
$$;
revoke execute on function private.follow_resume_object() from public;

create trigger resumes_queue_uploads
  after insert on storage.objects
  for each row when (new.bucket_id = 'resumes')
  execute function private.follow_resume_object();

-- An upsert or an update replaces the object's version; a move changes its name.
create trigger resumes_follow_replaced_objects
  after update of bucket_id, name, version on storage.objects
  for each row when (old.bucket_id = 'resumes' or new.bucket_id = 'resumes')
  execute function private.follow_resume_object();

create trigger resumes_remove_with_objects
  after delete on storage.objects
  for each row when (old.bucket_id = 'resumes')
  execute function private.follow_resume_object();

-- The worker's side -----------------------------------------------------------------------------------------
-- The job runs as `postgres` (its queue's connection): it marks the row `processing`, reads the object, then
-- calls one of these. Both write only a row still `processing`: one queued again meanwhile (a new upload)
-- is the next job's to finish.

-- Skills named in a resume's words: `phrases` is an array of {text, start, length, exact}, runs of 1-4
-- words (start and length counted in words; the worker never lets a run cross a line or a comma), each
-- resolved as public.resolve_skills resolves free text (name, slug or alias; the lowest id if several),
-- or with `exact` only by a skill's name written the same way (a short capitalised word: "Go" the
-- language, not "Doe" the surname as the alias of design of experiments). Where runs that name skills
-- overlap, the longest wins ("machine learning", not also "learning"). One row per skill, in order of
-- first mention. Set-based (each distinct text looked up once, by index), so a long resume's tens of
-- thousands of runs cost tens of milliseconds.
create function private.resume_skills(phrases jsonb)
returns table (skill_id bigint, matched_text text, first_mention integer)
language sql
stable
set search_path = ''
as $$
  with phrase as (
    select p.text, p.start, p.start + p.length as stop, coalesce(p.exact, false) as exact,
           private.normalize_skill_name(p.text) as normal
    from jsonb_to_recordset(phrases) as p (text text, start integer, length integer, exact boolean)
  ),
  resolved as (
    select n.normal, min(m.id) as skill_id
    from (select distinct p.normal from phrase p where not p.exact) n
    cross join lateral (
      select s.id from public.skills s where lower(regexp_replace(btrim(s.name), '\s+', ' ', 'g')) = n.normal
      union all
      select s.id from public.skills s where s.slug = n.normal
      union all
      select a.skill_id from public.skill_aliases a where a.alias = n.normal
    ) m
    group by n.normal
  ),
  found as (
    select p.text, p.start, p.stop, r.skill_id
    from phrase p join resolved r on r.normal = p.normal
    where not p.exact
    union all
    select p.text, p.start, p.stop, s.id
    from phrase p
    join public.skills s
      on lower(regexp_replace(btrim(s.name), '\s+', ' ', 'g')) = p.normal and s.name = p.text
    where p.exact
  ),
  -- A run is covered when another that names a skill starts earlier and ends no earlier, or starts with it
  -- and ends later (no two runs share both start and length). Two running maxima, linear in the runs.
  covered as (
    select f.*,
           coalesce(max(f.stop) over (order by f.start range between unbounded preceding and 1 preceding), -1)
             >= f.stop
           or max(f.stop) over (partition by f.start) > f.stop as covered
    from found f
  )
  select distinct on (c.skill_id) c.skill_id, left(c.text, 200), c.start
  from covered c
  where not c.covered
  order by c.skill_id, c.start;
$$;
revoke execute on function private.resume_skills(jsonb) from public;

-- What was read: the row becomes `ready` with it, and the skills it names that the user does not hold yet
-- (in executive_skills or accepted before) are proposed, up to 50, replacing earlier proposals they had not
-- accepted. The same bytes as another resume of the user's: that earlier row is kept and now points at this
-- path (where the frontend looks for it), this one is dropped; the earlier object stays in Storage. The
-- first resume a user has read becomes their primary one. Returns the id of the row that holds the result,
-- or null when there is nothing to write.
create function private.finish_resume(
  resume_id uuid, content_hash text, media_type text, page_count integer, body text, sections jsonb,
  phrases jsonb
)
returns uuid
language plpgsql
security definer
set search_path = ''
as $$
declare
  owner uuid := (select r.user_id from public.resumes r where r.id = finish_resume.resume_id);
  path text;
  earlier uuid;
begin
  if owner is null then
    return null;
  end if;
  -- One finish per user at a time, taken before any row lock: two copies of a file read at once must not
  -- both miss each other, and no finish holds a row another waits for.
  perform pg_advisory_xact_lock(hashtextextended('resumes:' || owner, 0));
  select r.object_path into path from public.resumes r
  where r.id = finish_resume.resume_id and r.status = 'processing'
  for update;
  if not found then
    return null;
  end if;

  select r.id into earlier from public.resumes r
  where r.user_id = owner and r.content_hash = finish_resume.content_hash and r.id <> finish_resume.resume_id;
  if earlier is not null then
    delete from public.resumes r where r.id = finish_resume.resume_id;
    update public.resumes r set object_path = path where r.id = earlier;
    return earlier;
  end if;

  update public.resumes r set
    status = 'ready',
    failure_reason = null,
    content_hash = finish_resume.content_hash,
    media_type = finish_resume.media_type,
    page_count = finish_resume.page_count,
    text = finish_resume.body,
    sections = finish_resume.sections,
    is_primary = r.is_primary or not exists (
      select 1 from public.resumes p where p.user_id = owner and p.is_primary
    )
  where r.id = finish_resume.resume_id;

  delete from public.resume_skill_suggestions s
  where s.resume_id = finish_resume.resume_id and s.accepted_at is null;
  insert into public.resume_skill_suggestions (resume_id, skill_id, user_id, matched_text)
  select finish_resume.resume_id, f.skill_id, owner, f.matched_text
  from private.resume_skills(phrases) f
  where not exists (
      select 1 from public.executive_skills e where e.executive_id = owner and e.skill_id = f.skill_id
    )
    and not exists (
      select 1 from public.resume_skill_suggestions s
      where s.user_id = owner and s.skill_id = f.skill_id and s.accepted_at is not null
    )
  order by f.first_mention
  limit 50
  on conflict do nothing;
  return finish_resume.resume_id;
end;
$$;
revoke execute on function private.finish_resume(uuid, text, text, integer, text, jsonb, jsonb) from public;

-- Why it could not be read: nothing read before stays (it no longer matches the object), nor the
-- proposals the user had not accepted.
create function private.fail_resume(resume_id uuid, reason text)
returns void
language plpgsql
security definer
set search_path = ''
as $$
begin
  update public.resumes r set
    status = 'failed', failure_reason = reason,
    content_hash = null, media_type = null, page_count = null, text = null, sections = null
  where r.id = fail_resume.resume_id and r.status = 'processing';
  if found then
    delete from public.resume_skill_suggestions s
    where s.resume_id = fail_resume.resume_id and s.accepted_at is null;
  end if;
end;
$$;
revoke execute on function private.fail_resume(uuid, text) from public;

-- Resumes waiting with no job that will read them (a job cancelled when its worker stopped, or one that
-- failed before it could record why), for the worker's periodic sweep to queue again.
create index resumes_unfinished_idx on public.resumes (id) where status in ('queued', 'processing');

create function private.requeue_stranded_resumes()
returns integer
language plpgsql
security definer
set search_path = ''
as $$
declare
  stranded uuid;
  requeued integer := 0;
begin
  for stranded in
    select r.id from public.resumes r
    where r.status in ('queued', 'processing')
      and not exists (
        select 1 from procrastinate.procrastinate_jobs j
        where j.queueing_lock = 'resume:' || r.id and j.status in ('todo', 'doing')
      )
  loop
    perform private.queue_resume_processing(stranded);
    requeued := requeued + 1;
  end loop;
  return requeued;
end;
$$;
revoke execute on function private.requeue_stranded_resumes() from public;
