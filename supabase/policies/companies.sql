-- =====================================================================================================
-- Company policies: companies and company_members
-- =====================================================================================================
-- Re-applied after every migration run (drop + create, so the file is idempotent). A company is visible
-- to its members and to platform admins; a deleted one (deleted_at) to platform admins only. Owners and
-- admins invite and manage members; only owners invite or manage owners. Platform admins verify
-- companies (set_company_verified).

-- companies --------------------------------------------------------------------------------------------

-- `insert ... returning` (PostgREST's return=representation) checks this policy before the trigger has
-- added the creator's owner row, so the creator needs a way in of their own. Only within the creating
-- transaction (`created_at` is that transaction's now(), and users cannot write it): created_by stays
-- on the row forever, and a creator who later leaves or is removed must lose sight of the company.
drop policy if exists "Members and admins can view a company, its creator on creation" on public.companies;
create policy "Members and admins can view a company, its creator on creation"
  on public.companies for select to authenticated
  using (
    private.is_company_member(id)
    or (select private.has_role('admin'))
    or (created_by = (select auth.uid()) and created_at = now() and deleted_at is null)
  );

drop policy if exists "Signed-in users can create companies they own" on public.companies;
create policy "Signed-in users can create companies they own"
  on public.companies for insert to authenticated
  with check (created_by = (select auth.uid()));

drop policy if exists "Owners and admins can edit their company" on public.companies;
create policy "Owners and admins can edit their company"
  on public.companies for update to authenticated
  using (private.is_company_member(id, '{owner,admin}'))
  with check (private.is_company_member(id, '{owner,admin}'));

-- No delete policy: owners delete softly (delete_company) and history stays; the grant is gone too.

-- company_members --------------------------------------------------------------------------------------

-- Their own row is among their teammates'; none of a deleted company's (is_company_member).
drop policy if exists "Members can view their teammates, admins all members" on public.company_members;
create policy "Members can view their teammates, admins all members"
  on public.company_members for select to authenticated
  using (private.is_company_member(company_id) or (select private.has_role('admin')));

-- Members join by accepting an invitation (accept_company_invitation) and creators by the companies
-- trigger: no insert policy, no insert grant.

drop policy if exists "Owners can change any role; admins change non-owner roles" on public.company_members;
create policy "Owners can change any role; admins change non-owner roles"
  on public.company_members for update to authenticated
  using (
    private.is_company_member(company_id, '{owner}')
    or (role <> 'owner' and private.is_company_member(company_id, '{admin}'))
  )
  with check (
    private.is_company_member(company_id, '{owner}')
    or (role <> 'owner' and private.is_company_member(company_id, '{admin}'))
  );

drop policy if exists "Owners and admins can remove members; anyone can leave" on public.company_members;
create policy "Owners and admins can remove members; anyone can leave"
  on public.company_members for delete to authenticated
  using (
    user_id = (select auth.uid())
    or private.is_company_member(company_id, '{owner}')
    or (role <> 'owner' and private.is_company_member(company_id, '{admin}'))
  );

-- company_invitations ----------------------------------------------------------------------------------

-- The token's hash lives in private.company_invitation_tokens; the invitee reads their invitation through
-- company_invitation(token).
drop policy if exists "Owners and admins see their company's invitations, admins all" on public.company_invitations;
create policy "Owners and admins see their company's invitations, admins all"
  on public.company_invitations for select to authenticated
  using (private.is_company_member(company_id, '{owner,admin}') or (select private.has_role('admin')));

drop policy if exists "Owners and admins invite; only owners invite owners" on public.company_invitations;
create policy "Owners and admins invite; only owners invite owners"
  on public.company_invitations for insert to authenticated
  with check (
    invited_by = (select auth.uid())
    and (
      private.is_company_member(company_id, '{owner}')
      or (role <> 'owner' and private.is_company_member(company_id, '{admin}'))
    )
  );

drop policy if exists "Owners and admins revoke invitations; only owners revoke owners'" on public.company_invitations;
create policy "Owners and admins revoke invitations; only owners revoke owners'"
  on public.company_invitations for delete to authenticated
  using (
    private.is_company_member(company_id, '{owner}')
    or (role <> 'owner' and private.is_company_member(company_id, '{admin}'))
  );
