-- =====================================================================================================
-- Identity policies: profiles and platform roles
-- =====================================================================================================
-- Re-applied after every migration run (drop + create, so the file is idempotent). Profiles hold no
-- contact details, so every signed-in user may read them (names and avatars appear across products).
-- Roles are granted by admins only; users see their own.

-- profiles ---------------------------------------------------------------------------------------------

drop policy if exists "Signed-in users can view profiles" on public.profiles;
create policy "Signed-in users can view profiles"
  on public.profiles for select to authenticated
  using (true);

-- Profiles are created by the on_auth_user_created trigger only: no insert policy, no insert grant.

drop policy if exists "Users can edit their own profile" on public.profiles;
create policy "Users can edit their own profile"
  on public.profiles for update to authenticated
  using (id = (select auth.uid()))
  with check (id = (select auth.uid()));

-- Profiles go away with their auth user (on delete cascade): no delete policy.

-- user_roles -------------------------------------------------------------------------------------------

drop policy if exists "Users can view their own roles, admins all roles" on public.user_roles;
create policy "Users can view their own roles, admins all roles"
  on public.user_roles for select to authenticated
  using (user_id = (select auth.uid()) or (select private.has_role('admin')));

drop policy if exists "Admins can grant roles" on public.user_roles;
create policy "Admins can grant roles"
  on public.user_roles for insert to authenticated
  with check ((select private.has_role('admin')) and granted_by = (select auth.uid()));

drop policy if exists "Admins can revoke roles" on public.user_roles;
create policy "Admins can revoke roles"
  on public.user_roles for delete to authenticated
  using ((select private.has_role('admin')));

drop policy if exists "The auth server reads roles to put them in tokens" on public.user_roles;
create policy "The auth server reads roles to put them in tokens"
  on public.user_roles for select to supabase_auth_admin
  using (true);
