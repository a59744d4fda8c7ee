-- =====================================================================================================
-- Supabase's shape, for the embedded PostgreSQL
-- =====================================================================================================
-- A Supabase database already has these roles, schemas and functions before any migration of ours
-- runs. This file recreates the parts our SQL relies on, as the cluster superuser `supabase_admin`,
-- so that migrations run here exactly as they run there: as `postgres`, which is not a superuser.
-- It runs in one transaction and only when `auth.users` does not exist yet (a real Supabase database,
-- or one bootstrapped before, is left alone). Names, attributes and grants follow supabase/postgres.

-- Roles -----------------------------------------------------------------------------------------------

-- `postgres` is the role a project's owner logs in as: it owns the database and may create roles
-- and bypass RLS, but it is not a superuser (so an untrusted extension or `alter system` fails here first).
do $$
begin
  if not exists (select 1 from pg_roles where rolname = 'postgres') then
    create role postgres login createrole createdb replication bypassrls password 'postgres';
  end if;
  if not exists (select 1 from pg_roles where rolname = 'anon') then
    create role anon nologin noinherit;
  end if;
  if not exists (select 1 from pg_roles where rolname = 'authenticated') then
    create role authenticated nologin noinherit;
  end if;
  if not exists (select 1 from pg_roles where rolname = 'service_role') then
    create role service_role nologin noinherit bypassrls;
  end if;
  -- PostgREST (and our own request pool) log in as `authenticator`, which has no privileges of its own
  -- and switches to one of the three API roles per request.
  if not exists (select 1 from pg_roles where rolname = 'authenticator') then
    create role authenticator login noinherit password 'postgres';
  end if;
  -- GoTrue's role: owns `auth` and runs custom access token hooks.
  if not exists (select 1 from pg_roles where rolname = 'supabase_auth_admin') then
    create role supabase_auth_admin login noinherit createrole password 'postgres';
  end if;
  if not exists (select 1 from pg_roles where rolname = 'supabase_storage_admin') then
    create role supabase_storage_admin login noinherit createrole password 'postgres';
  end if;
  if not exists (select 1 from pg_roles where rolname = 'dashboard_user') then
    create role dashboard_user nologin createrole createdb replication;
  end if;
  if not exists (select 1 from pg_roles where rolname = 'supabase_read_only_user') then
    create role supabase_read_only_user login bypassrls;
  end if;
end
$$;

grant anon, authenticated, service_role to authenticator;
grant anon, authenticated, service_role to postgres with admin option;
grant supabase_auth_admin, supabase_storage_admin to postgres;
grant pg_read_all_data to supabase_read_only_user;

-- API roles keep PostgREST's and Supabase's statement limits.
alter role anon set statement_timeout = '3s';
alter role authenticated set statement_timeout = '8s';
alter role authenticator set statement_timeout = '8s';

-- The database belongs to `postgres`, so `public` (owned by pg_database_owner) is its schema.
do $$
begin
  execute format('alter database %I owner to postgres', current_database());
end
$$;
grant usage on schema public to anon, authenticated, service_role;

-- Schemas ---------------------------------------------------------------------------------------------

create schema if not exists extensions;
grant usage on schema extensions to postgres, anon, authenticated, service_role;
grant create on schema extensions to postgres;
-- No extension is installed here: migrations create theirs, as on Supabase, so a forgotten
-- `create extension` fails here first. `postgres` may create pgvector because the cluster's copy of the
-- install marks it trusted (see TRUSTED_EXTENSIONS in embedded.py), as supautils lets it on Supabase.

create schema if not exists auth authorization supabase_auth_admin;
-- The mark the app looks for before it serves with the supabase CLI's published secrets
-- (rpc/platform/guard.py): only the local stack's embedded database carries it.
comment on schema auth is 'Supabase''s auth schema, as the Talentbase local stack shapes an embedded PostgreSQL';
grant usage on schema auth to postgres, anon, authenticated, service_role, dashboard_user;

-- auth.users: the GoTrue columns our SQL and tests use, with GoTrue's names and types.
create table if not exists auth.users (
  instance_id uuid,
  id uuid not null primary key,
  aud varchar(255),
  role varchar(255),
  email varchar(255),
  encrypted_password varchar(255),
  email_confirmed_at timestamptz,
  invited_at timestamptz,
  confirmation_token varchar(255),
  recovery_token varchar(255),
  last_sign_in_at timestamptz,
  raw_app_meta_data jsonb,
  raw_user_meta_data jsonb,
  is_super_admin boolean,
  created_at timestamptz,
  updated_at timestamptz,
  phone text unique default null,
  phone_confirmed_at timestamptz,
  confirmed_at timestamptz generated always as (least(email_confirmed_at, phone_confirmed_at)) stored,
  banned_until timestamptz,
  is_sso_user boolean not null default false,
  deleted_at timestamptz,
  is_anonymous boolean not null default false
);
create index if not exists users_instance_id_email_idx on auth.users (instance_id, lower(email::text));
create index if not exists users_instance_id_idx on auth.users (instance_id);
alter table auth.users owner to supabase_auth_admin;
alter table auth.users enable row level security;
grant all on auth.users to postgres, dashboard_user;
grant select on auth.users to supabase_read_only_user;

-- The claims helpers, as Supabase defines them: PostgREST stores the verified claims in
-- `request.jwt.claims` (and older versions in `request.jwt.claim.<name>`).
create or replace function auth.uid() returns uuid
language sql stable
as $$
  select coalesce(
    nullif(current_setting('request.jwt.claim.sub', true), ''),
    (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub')
  )::uuid
$$;

create or replace function auth.role() returns text
language sql stable
as $$
  select coalesce(
    nullif(current_setting('request.jwt.claim.role', true), ''),
    (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'role')
  )::text
$$;

create or replace function auth.email() returns text
language sql stable
as $$
  select coalesce(
    nullif(current_setting('request.jwt.claim.email', true), ''),
    (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'email')
  )::text
$$;

create or replace function auth.jwt() returns jsonb
language sql stable
as $$
  select coalesce(
    nullif(current_setting('request.jwt.claim', true), ''),
    nullif(current_setting('request.jwt.claims', true), '')
  )::jsonb
$$;

alter function auth.uid() owner to supabase_auth_admin;
alter function auth.role() owner to supabase_auth_admin;
alter function auth.email() owner to supabase_auth_admin;
alter function auth.jwt() owner to supabase_auth_admin;
grant execute on function auth.uid(), auth.role(), auth.email(), auth.jwt() to public;

-- No automatic grants on new tables in `public`: unlike older Supabase projects we add no default
-- privileges for anon/authenticated/service_role (the newer `[api] auto_expose_new_tables = false`),
-- so a migration that forgets an explicit grant fails here first. Functions get what a hosted project
-- gives them: execute for PUBLIC (Postgres's default) and, by name, for the API roles, so a migration must
-- revoke from `anon` itself wherever anonymous visitors have no business (`revoke ... from public` alone
-- leaves anon its grant there, and here too).
alter default privileges for role postgres in schema public
  grant execute on functions to anon, authenticated, service_role;
