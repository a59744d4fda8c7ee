-- =====================================================================================================
-- Storage buckets: avatars and company logos
-- =====================================================================================================
-- Storage's own tables are Supabase's (on the local stack, rpc/local/sql/storage.sql recreates them):
-- buckets are rows we insert, as Supabase projects do, and re-running this keeps them as written here.
-- On a hosted project `postgres` does not own storage.buckets, so this may only insert and update rows.
-- Both buckets are public (anyone may read an object by its URL) and take raster images up to 2 MiB:
-- no SVG, which can carry script. Who may write where is in supabase/policies/storage.sql; keep
-- supabase/config.toml's [storage.buckets.*] in agreement.

insert into storage.buckets (id, name, public, file_size_limit, allowed_mime_types)
values
  ('avatars', 'avatars', true, 2097152,
   array['image/png', 'image/jpeg', 'image/webp', 'image/gif']),
  ('company-logos', 'company-logos', true, 2097152,
   array['image/png', 'image/jpeg', 'image/webp', 'image/gif'])
on conflict (id) do update set
  name = excluded.name,
  public = excluded.public,
  file_size_limit = excluded.file_size_limit,
  allowed_mime_types = excluded.allowed_mime_types;
