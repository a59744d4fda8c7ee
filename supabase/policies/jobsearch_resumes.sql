-- =====================================================================================================
-- Job search policies: resumes, the skills proposed from them, and their files in bucket `resumes`
-- =====================================================================================================
-- Re-applied after every migration run (drop + create, so the file is idempotent). A resume is its
-- owner's alone: no company, recruiter or platform admin reads it here (matching has its own, consented
-- paths to what executives share). Rows are written by the triggers on storage.objects and by the worker;
-- what a user may change is named by the column grants in 20261130130100_jobsearch_resumes.sql
-- (is_primary, accepted_at). No insert or delete policy: a resume comes from an upload and goes with its
-- file.

-- resumes ----------------------------------------------------------------------------------------------

-- Their owner, who follows the status of an upload by reading its row.
drop policy if exists "Users can view their own resumes" on public.resumes;
create policy "Users can view their own resumes"
  on public.resumes for select to authenticated
  using (user_id = (select auth.uid()));

-- Their owner, choosing their primary resume (the only column granted).
drop policy if exists "Users can choose their primary resume" on public.resumes;
create policy "Users can choose their primary resume"
  on public.resumes for update to authenticated
  using (user_id = (select auth.uid()))
  with check (user_id = (select auth.uid()));

-- resume_skill_suggestions -----------------------------------------------------------------------------

-- The owner of the resume the skills were found in.
drop policy if exists "Users can view the skills proposed from their resumes" on public.resume_skill_suggestions;
create policy "Users can view the skills proposed from their resumes"
  on public.resume_skill_suggestions for select to authenticated
  using (user_id = (select auth.uid()));

-- The same owner, accepting a proposal (or taking the acceptance back): the only column granted.
drop policy if exists "Users can accept the skills proposed from their resumes" on public.resume_skill_suggestions;
create policy "Users can accept the skills proposed from their resumes"
  on public.resume_skill_suggestions for update to authenticated
  using (user_id = (select auth.uid()))
  with check (user_id = (select auth.uid()));

-- storage.objects, bucket resumes ----------------------------------------------------------------------
-- A private bucket: a path's first folder names its owner (`resumes/<user id>/...`), and only they read,
-- upload, replace or remove what is in it. Upserts need select, insert and update. No `comment on policy`:
-- on a hosted project `postgres` does not own storage.objects (see storage.sql).

-- A signed-in user, in their own folder.
drop policy if exists "Users read resumes in their own folder" on storage.objects;
create policy "Users read resumes in their own folder"
  on storage.objects for select to authenticated
  using (bucket_id = 'resumes' and (storage.foldername(name))[1] = (select auth.uid()::text));

-- A signed-in user, into their own folder.
drop policy if exists "Users upload resumes into their own folder" on storage.objects;
create policy "Users upload resumes into their own folder"
  on storage.objects for insert to authenticated
  with check (bucket_id = 'resumes' and (storage.foldername(name))[1] = (select auth.uid()::text));

-- A signed-in user, on objects in their own folder, which must stay there (a move elsewhere is refused).
drop policy if exists "Users replace resumes in their own folder" on storage.objects;
create policy "Users replace resumes in their own folder"
  on storage.objects for update to authenticated
  using (bucket_id = 'resumes' and (storage.foldername(name))[1] = (select auth.uid()::text))
  with check (bucket_id = 'resumes' and (storage.foldername(name))[1] = (select auth.uid()::text));

-- A signed-in user, on objects in their own folder (the resume read from one goes with it).
drop policy if exists "Users delete resumes in their own folder" on storage.objects;
create policy "Users delete resumes in their own folder"
  on storage.objects for delete to authenticated
  using (bucket_id = 'resumes' and (storage.foldername(name))[1] = (select auth.uid()::text));
