-- =====================================================================================================
-- Supabase Storage's schema, for the embedded PostgreSQL
-- =====================================================================================================
-- On Supabase the Storage server's own migrations (supabase/storage, migrations/tenant/) create
-- `storage.buckets` and `storage.objects` before any migration of ours runs: our bucket migration,
-- the policies in supabase/policies/storage.sql and the local /storage/v1 server rely on them. This file
-- recreates the state those migrations leave (names, types, defaults, indexes, grants, helpers and
-- triggers as their newest versions define them), minus what we do not use (search functions,
-- multipart uploads, analytics and vector buckets, versioning). It runs as the cluster superuser, in
-- one transaction, only when `storage.objects` does not exist yet in a database the local stack shaped
-- (see bootstrap() in embedded.py), so a cluster bootstrapped before it gets it on its next start.

create schema if not exists storage authorization supabase_storage_admin;
grant usage on schema storage to postgres, anon, authenticated, service_role;

-- Tables ----------------------------------------------------------------------------------------------

create table storage.buckets (
  id text not null primary key,
  name text not null,
  owner uuid,
  owner_id text,
  public boolean default false,
  file_size_limit bigint,  -- bytes
  allowed_mime_types text[],
  created_at timestamptz default now(),
  updated_at timestamptz default now()
);
create unique index bname on storage.buckets using btree (name);
comment on column storage.buckets.owner is 'Field is deprecated, use owner_id instead';

create table storage.objects (
  id uuid not null default gen_random_uuid() primary key,
  bucket_id text constraint "objects_bucketId_fkey" references storage.buckets (id),
  name text,
  owner uuid,
  owner_id text,
  -- size, mimetype, eTag, cacheControl, lastModified, contentLength, httpStatusCode: the server's
  metadata jsonb,
  user_metadata jsonb,  -- the client's x-metadata
  path_tokens text[] generated always as (string_to_array(name, '/')) stored,
  version text,
  created_at timestamptz default now(),
  updated_at timestamptz default now(),
  last_accessed_at timestamptz default now()
);
create unique index bucketid_objname on storage.objects using btree (bucket_id, name);
-- Listing a folder (`where bucket_id = $1 and name collate "C" like 'prefix%' order by name collate "C"`,
-- as Storage's search functions query it) walks this index: byte order, whatever the database's collation.
create index idx_objects_bucket_id_name on storage.objects (bucket_id, (name collate "C"));
comment on column storage.objects.owner is 'Field is deprecated, use owner_id instead';

alter table storage.buckets enable row level security;
alter table storage.objects enable row level security;
alter table storage.buckets owner to supabase_storage_admin;
alter table storage.objects owner to supabase_storage_admin;

-- As 0046 and 0049: the API roles hold every privilege and RLS decides; `postgres` may pass them on.
grant all on storage.buckets, storage.objects to anon, authenticated, service_role;
grant all on storage.buckets, storage.objects to postgres with grant option;

-- Helpers that policies call (newest definitions: 0060, 0061) ------------------------------------------

create function storage.foldername(name text)
    returns text[]
    language plpgsql
    immutable
as $function$
declare
    _parts text[];
begin
    -- Split on "/" to get path segments
    select string_to_array(name, '/') into _parts;
    -- Return everything except the last segment
    return _parts[1 : array_length(_parts,1) - 1];
end
$function$;

create function storage.filename(name text)
    returns text
    language plpgsql
    immutable
as $function$
declare
    _parts text[];
begin
    select string_to_array(name, '/') into _parts;
    return _parts[array_length(_parts, 1)];
end
$function$;

create function storage.extension(name text)
    returns text
    language plpgsql
    immutable
as $function$
declare
    _parts text[];
    _filename text;
begin
    -- Split on "/" to get path segments
    select string_to_array(name, '/') into _parts;
    -- Get the last path segment (the actual filename)
    select _parts[array_length(_parts, 1)] into _filename;
    -- Extract extension: reverse, split on '.', then reverse again
    return reverse(split_part(reverse(_filename), '.', 1));
end
$function$;

-- Triggers (0011, 0055) ---------------------------------------------------------------------------------

create function storage.update_updated_at_column()
returns trigger as $$
begin
    new.updated_at = now();
    return new;
end;
$$ language plpgsql;

create trigger update_objects_updated_at
  before update on storage.objects
  for each row execute function storage.update_updated_at_column();

-- A bare `delete` would leave the objects' bytes behind: only the Storage server (which sets
-- storage.allow_delete_query for its own transaction) deletes rows.
create function storage.protect_delete()
returns trigger
language plpgsql
as $$
begin
    -- Check if storage.allow_delete_query is set to 'true'
    if coalesce(current_setting('storage.allow_delete_query', true), 'false') != 'true' then
        raise exception 'Direct deletion from storage tables is not allowed. Use the Storage API instead.'
            using hint = 'This prevents accidental data loss from orphaned objects.',
                  errcode = '42501';
    end if;
    return null;
end;
$$;

create trigger protect_buckets_delete
  before delete on storage.buckets
  for each statement execute function storage.protect_delete();

create trigger protect_objects_delete
  before delete on storage.objects
  for each statement execute function storage.protect_delete();

-- Storage creates its functions as supabase_storage_admin, whose default privileges in `storage` (0002)
-- give every function to these roles.
alter function storage.foldername(text) owner to supabase_storage_admin;
alter function storage.filename(text) owner to supabase_storage_admin;
alter function storage.extension(text) owner to supabase_storage_admin;
alter function storage.update_updated_at_column() owner to supabase_storage_admin;
alter function storage.protect_delete() owner to supabase_storage_admin;
grant all on function
  storage.foldername(text), storage.filename(text), storage.extension(text),
  storage.update_updated_at_column(), storage.protect_delete()
  to postgres, anon, authenticated, service_role;
