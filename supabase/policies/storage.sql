-- =====================================================================================================
-- Storage policies: who reads and writes objects in our buckets
-- =====================================================================================================
-- Re-applied after every migration run (drop + create, so the file is idempotent). The Storage API runs
-- every upload, download, list, move and removal as the caller, so these policies are its only access
-- rule. Buckets themselves are created by the migration *_storage_buckets.sql; no one but the service role
-- manages them, so storage.buckets has no policy. A path's first folder names its owner:
-- `avatars/<user id>/...`, `company-logos/<company id>/...`. Upserts need select, insert and update.
-- No `comment on policy` here: on a hosted project `postgres` does not own storage.objects, and Supabase
-- refuses it; the `--` comments say who each policy lets in.

-- avatars ----------------------------------------------------------------------------------------------

-- Anyone, signed in or not: the bucket is public.
drop policy if exists "Anyone can read avatars" on storage.objects;
create policy "Anyone can read avatars"
  on storage.objects for select to anon, authenticated
  using (bucket_id = 'avatars');

-- A signed-in user, into the folder named by their own id.
drop policy if exists "Users upload avatars into their own folder" on storage.objects;
create policy "Users upload avatars into their own folder"
  on storage.objects for insert to authenticated
  with check (bucket_id = 'avatars' and (storage.foldername(name))[1] = (select auth.uid()::text));

-- A signed-in user, on objects in their own folder, which must stay there (a move elsewhere is refused).
drop policy if exists "Users replace avatars in their own folder" on storage.objects;
create policy "Users replace avatars in their own folder"
  on storage.objects for update to authenticated
  using (bucket_id = 'avatars' and (storage.foldername(name))[1] = (select auth.uid()::text))
  with check (bucket_id = 'avatars' and (storage.foldername(name))[1] = (select auth.uid()::text));

-- A signed-in user, on objects in their own folder.
drop policy if exists "Users delete avatars in their own folder" on storage.objects;
create policy "Users delete avatars in their own folder"
  on storage.objects for delete to authenticated
  using (bucket_id = 'avatars' and (storage.foldername(name))[1] = (select auth.uid()::text));

-- company-logos ----------------------------------------------------------------------------------------

-- The first folder is cast to a company id only when it is one, written as uuid::text writes it (one
-- folder per company): CASE guarantees the cast is not evaluated otherwise, so any other folder is refused
-- rather than failing the statement with a cast error.

-- Anyone, signed in or not: the bucket is public.
drop policy if exists "Anyone can read company logos" on storage.objects;
create policy "Anyone can read company logos"
  on storage.objects for select to anon, authenticated
  using (bucket_id = 'company-logos');

-- Owners and admins of the company named by the first folder (not its recruiters, not platform admins).
drop policy if exists "Company owners and admins upload its logos" on storage.objects;
create policy "Company owners and admins upload its logos"
  on storage.objects for insert to authenticated
  with check (
    bucket_id = 'company-logos'
    and case
      when (storage.foldername(name))[1] ~ '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
        then private.is_company_member((storage.foldername(name))[1]::uuid, '{owner,admin}')
      else false
    end
  );

-- Owners and admins of the company named by the first folder, and the object stays in a folder of a
-- company they own or administer.
drop policy if exists "Company owners and admins replace its logos" on storage.objects;
create policy "Company owners and admins replace its logos"
  on storage.objects for update to authenticated
  using (
    bucket_id = 'company-logos'
    and case
      when (storage.foldername(name))[1] ~ '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
        then private.is_company_member((storage.foldername(name))[1]::uuid, '{owner,admin}')
      else false
    end
  )
  with check (
    bucket_id = 'company-logos'
    and case
      when (storage.foldername(name))[1] ~ '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
        then private.is_company_member((storage.foldername(name))[1]::uuid, '{owner,admin}')
      else false
    end
  );

-- Owners and admins of the company named by the first folder.
drop policy if exists "Company owners and admins delete its logos" on storage.objects;
create policy "Company owners and admins delete its logos"
  on storage.objects for delete to authenticated
  using (
    bucket_id = 'company-logos'
    and case
      when (storage.foldername(name))[1] ~ '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
        then private.is_company_member((storage.foldername(name))[1]::uuid, '{owner,admin}')
      else false
    end
  );
