-- =====================================================================================================
-- Identity: profiles and platform roles
-- =====================================================================================================
-- Sign-up, login and tokens are Supabase Auth's. What we own is the profile each user gets (created by a
-- trigger on auth.users, so no frontend can forget it) and the platform roles the policies read. Roles
-- live in a table rather than in user_metadata, which users can edit themselves; a custom access token
-- hook copies them into the token for the frontend's convenience, but policies always read the table.
-- Policies for these tables live in supabase/policies/identity.sql.

-- Helpers that policies call live in `private`: PostgREST does not expose it, so they are not endpoints.
create schema if not exists private;
revoke all on schema private from public;
grant usage on schema private to authenticated, service_role;

create type public.app_role as enum ('admin', 'executive', 'employer', 'interviewer', 'coach', 'job_seeker');
comment on type public.app_role is 'Platform roles. Granted by admins (or the service role), never by users themselves.';

-- Keeps updated_at honest whatever the client sends.
create function private.touch_updated_at()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
  new.updated_at := now();
  return new;
end;
$$;
revoke execute on function private.touch_updated_at() from public;

-- Profiles -------------------------------------------------------------------------------------------

create table public.profiles (
  id uuid primary key references auth.users (id) on delete cascade,
  full_name text check (char_length(full_name) <= 200),
  avatar_url text check (char_length(avatar_url) <= 2048),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
comment on table public.profiles is
  'One row per auth user, created by a trigger. Public face of a user: no contact details here.';

alter table public.profiles enable row level security;

create trigger profiles_touch_updated_at
  before update on public.profiles
  for each row execute function private.touch_updated_at();

-- Start from no privileges: where new public tables are still exposed by default (self-hosted Supabase,
-- and projects without `[api] auto_expose_new_tables = false`), anon and authenticated would otherwise
-- hold every privilege, TRUNCATE included (which no policy limits), and the column grants below would
-- mean nothing. Every table here starts the same way.
revoke all on public.profiles from anon, authenticated, service_role;
-- Only the display fields are writable by their owner; id and timestamps are the database's.
grant select on public.profiles to authenticated;
grant update (full_name, avatar_url) on public.profiles to authenticated;
grant select, insert, update, delete on public.profiles to service_role;

-- Creates the profile of every new auth user from the metadata Supabase Auth stores at sign-up
-- (`full_name` or `name`, `avatar_url`: what email sign-up and the OAuth providers send). Security definer
-- because it runs as Supabase Auth's role, which has no rights on public tables.
create function private.handle_new_user()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  insert into public.profiles (id, full_name, avatar_url)
  values (
    new.id,
    left(coalesce(new.raw_user_meta_data ->> 'full_name', new.raw_user_meta_data ->> 'name'), 200),
    left(new.raw_user_meta_data ->> 'avatar_url', 2048)
  )
  on conflict (id) do nothing;
  return new;
end;
$$;
revoke execute on function private.handle_new_user() from public;

create trigger on_auth_user_created
  after insert on auth.users
  for each row execute function private.handle_new_user();

-- Platform roles -------------------------------------------------------------------------------------

create table public.user_roles (
  user_id uuid not null references auth.users (id) on delete cascade,
  role public.app_role not null,
  granted_by uuid references auth.users (id) on delete set null default auth.uid(),
  created_at timestamptz not null default now(),
  primary key (user_id, role)
);
comment on table public.user_roles is 'Platform roles per user; the source of truth for has_role().';
create index user_roles_granted_by_idx on public.user_roles (granted_by);

alter table public.user_roles enable row level security;

revoke all on public.user_roles from anon, authenticated, service_role;
grant select, insert, delete on public.user_roles to authenticated;
grant select, insert, update, delete on public.user_roles to service_role;

-- True when the caller holds a platform role. Security definer so that policies on user_roles itself
-- can call it without recursing into their own RLS.
create function private.has_role(role public.app_role)
returns boolean
language sql
stable
security definer
set search_path = ''
as $$
  select exists (
    select 1 from public.user_roles ur
    where ur.user_id = (select auth.uid()) and ur.role = has_role.role
  );
$$;
revoke execute on function private.has_role(public.app_role) from public;
grant execute on function private.has_role(public.app_role) to authenticated, service_role;

-- Supabase custom access token hook: copies the user's roles into the `user_roles` claim. Enable it in
-- the dashboard (Authentication > Hooks) or in config.toml [auth.hook.custom_access_token]. Grants are
-- the ones Supabase documents: only the auth server may run it and read the roles.
create function public.custom_access_token_hook(event jsonb)
returns jsonb
language plpgsql
stable
set search_path = ''
as $$
declare
  roles jsonb;
begin
  select coalesce(jsonb_agg(ur.role order by ur.role), '[]'::jsonb)
    into roles
    from public.user_roles ur
   where ur.user_id = (event ->> 'user_id')::uuid;
  return jsonb_set(event, '{claims,user_roles}', roles, true);
end;
$$;
revoke execute on function public.custom_access_token_hook(jsonb) from public, anon, authenticated, service_role;
grant usage on schema public to supabase_auth_admin;
grant execute on function public.custom_access_token_hook(jsonb) to supabase_auth_admin;
grant select on public.user_roles to supabase_auth_admin;
