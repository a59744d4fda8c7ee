-- =====================================================================================================
-- Matching policies: skills, executives, role postings, matches, introductions, feedback
-- =====================================================================================================
-- Re-applied after every migration run. Executives are visible to themselves, to admins, and to the
-- members of a verified company they were matched or introduced to while their profile is open (or whose
-- introduction they accepted); their contact details only once they accept an introduction from that
-- company. Open roles are listed to every signed-in user; drafts and closed roles stay inside the company.
-- Matching and introductions are for a verified company's owners, admins and recruiters. Status changes of
-- introductions go through respond_to_introduction only (no update grant).

-- skills and skill_aliases -----------------------------------------------------------------------------

create policy "Everyone can read the skills ontology"
  on public.skills for select to anon, authenticated
  using (true);

create policy "Admins can add skills"
  on public.skills for insert to authenticated
  with check ((select private.has_role('admin')));

create policy "Admins can edit skills"
  on public.skills for update to authenticated
  using ((select private.has_role('admin')))
  with check ((select private.has_role('admin')));

create policy "Admins can delete skills"
  on public.skills for delete to authenticated
  using ((select private.has_role('admin')));

create policy "Everyone can read skill aliases"
  on public.skill_aliases for select to anon, authenticated
  using (true);

create policy "Admins can add skill aliases"
  on public.skill_aliases for insert to authenticated
  with check ((select private.has_role('admin')));

create policy "Admins can edit skill aliases"
  on public.skill_aliases for update to authenticated
  using ((select private.has_role('admin')))
  with check ((select private.has_role('admin')));

create policy "Admins can delete skill aliases"
  on public.skill_aliases for delete to authenticated
  using ((select private.has_role('admin')));

-- executive_profiles -----------------------------------------------------------------------------------

create policy "Executives, admins and verified companies they were matched or introduced to can view executive profiles"
  on public.executive_profiles for select to authenticated
  using (
    user_id = (select auth.uid())
    or (select private.has_role('admin'))
    or private.executive_visible_to_employer(user_id)
  );

create policy "Executives can create their own profile"
  on public.executive_profiles for insert to authenticated
  with check (user_id = (select auth.uid()) and (select private.has_role('executive')));

create policy "Executives can edit their own profile"
  on public.executive_profiles for update to authenticated
  using (user_id = (select auth.uid()))
  with check (user_id = (select auth.uid()));

create policy "Executives can delete their own profile"
  on public.executive_profiles for delete to authenticated
  using (user_id = (select auth.uid()));

-- executive_contacts -----------------------------------------------------------------------------------

create policy "Executives, admins and verified companies whose introduction they accepted can view contact details"
  on public.executive_contacts for select to authenticated
  using (
    user_id = (select auth.uid())
    or (select private.has_role('admin'))
    or private.executive_contact_shared(user_id)
  );

create policy "Executives can add their own contact details"
  on public.executive_contacts for insert to authenticated
  with check (user_id = (select auth.uid()));

create policy "Executives can edit their own contact details"
  on public.executive_contacts for update to authenticated
  using (user_id = (select auth.uid()))
  with check (user_id = (select auth.uid()));

create policy "Executives can delete their own contact details"
  on public.executive_contacts for delete to authenticated
  using (user_id = (select auth.uid()));

-- executive_skills -------------------------------------------------------------------------------------

create policy "Skills are visible with the executive's profile"
  on public.executive_skills for select to authenticated
  using (
    executive_id = (select auth.uid())
    or (select private.has_role('admin'))
    or private.executive_visible_to_employer(executive_id)
  );

create policy "Executives can add their own skills"
  on public.executive_skills for insert to authenticated
  with check (executive_id = (select auth.uid()));

create policy "Executives can edit their own skills"
  on public.executive_skills for update to authenticated
  using (executive_id = (select auth.uid()))
  with check (executive_id = (select auth.uid()));

create policy "Executives can remove their own skills"
  on public.executive_skills for delete to authenticated
  using (executive_id = (select auth.uid()));

-- role_postings ----------------------------------------------------------------------------------------

create policy "Signed-in users can view open roles; members their company's roles; admins all"
  on public.role_postings for select to authenticated
  using (
    status = 'open'
    or private.is_company_member(company_id)
    or (select private.has_role('admin'))
  );

create policy "Owners, admins and recruiters can post roles for their company"
  on public.role_postings for insert to authenticated
  with check (private.can_manage_roles(company_id));

create policy "Owners, admins and recruiters can edit their company's roles"
  on public.role_postings for update to authenticated
  using (private.can_manage_roles(company_id))
  with check (private.can_manage_roles(company_id));

create policy "Owners and admins can delete their company's roles"
  on public.role_postings for delete to authenticated
  using (private.is_company_member(company_id, '{owner,admin}'));

-- role_skills ------------------------------------------------------------------------------------------

create policy "A role's skills are visible with the role"
  on public.role_skills for select to authenticated
  using (private.role_visible(role_id) or (select private.has_role('admin')));

create policy "Those who edit a role can add its skills"
  on public.role_skills for insert to authenticated
  with check (
    exists (select 1 from public.role_postings r where r.id = role_id and private.can_manage_roles(r.company_id))
  );

create policy "Those who edit a role can reweigh its skills"
  on public.role_skills for update to authenticated
  using (
    exists (select 1 from public.role_postings r where r.id = role_id and private.can_manage_roles(r.company_id))
  )
  with check (
    exists (select 1 from public.role_postings r where r.id = role_id and private.can_manage_roles(r.company_id))
  );

create policy "Those who edit a role can remove its skills"
  on public.role_skills for delete to authenticated
  using (
    exists (select 1 from public.role_postings r where r.id = role_id and private.can_manage_roles(r.company_id))
  );

-- matches (written by the matching function only) --------------------------------------------------------

create policy "Members of a verified company see its roles' matches; executives theirs on open roles; admins all"
  on public.matches for select to authenticated
  using (
    exists (
      select 1 from public.role_postings r
      where r.id = role_id and private.is_company_member(r.company_id) and private.is_verified_company(r.company_id)
    )
    or (executive_id = (select auth.uid()) and private.role_visible(role_id))
    or (select private.has_role('admin'))
  );

-- introductions ----------------------------------------------------------------------------------------

create policy "The executive, the requesting company's members and admins can view an introduction"
  on public.introductions for select to authenticated
  using (
    executive_id = (select auth.uid())
    or private.is_company_member(company_id)
    or (select private.has_role('admin'))
  );

-- The role must be open, the company verified and able to see the executive, whose profile is open; the
-- trigger sets company, status and expiry.
create policy "A verified company's owners, admins and recruiters can request introductions to executives they see"
  on public.introductions for insert to authenticated
  with check (
    requested_by = (select auth.uid())
    and private.can_request_introduction(role_id, executive_id)
  );

-- feedback ---------------------------------------------------------------------------------------------

create policy "Users read their own feedback; admins read all"
  on public.feedback for select to authenticated
  using (user_id = (select auth.uid()) or (select private.has_role('admin')));

-- About what they can see: checked before the foreign keys, so an id one cannot see is refused exactly as
-- one that does not exist (feedback never reveals whether it does).
create policy "Signed-in users leave feedback as themselves, on what they can see"
  on public.feedback for insert to authenticated
  with check (
    user_id = (select auth.uid())
    and (role_id is null or exists (select 1 from public.role_postings r where r.id = role_id))
    and (executive_id is null
         or exists (select 1 from public.executive_profiles e where e.user_id = executive_id))
    and (introduction_id is null
         or exists (select 1 from public.introductions i where i.id = introduction_id))
  );
