-- =====================================================================================================
-- Interview platform policies: demo requests, interviewers and their hours, interviews, notes,
-- self-scheduling invitations
-- =====================================================================================================
-- Re-applied after every migration run (drop + create, so the file is idempotent). Staff means a
-- company's owners, admins and recruiters (private.is_company_staff). Interviews are written only by the
-- booking functions (no insert grant); what users may change directly is named by the column grants in
-- the migration.

-- demo_requests ----------------------------------------------------------------------------------------

-- Anyone, signed in or not, may send one; the trigger fills in status, address and times. Nobody but
-- platform admins reads one back.
drop policy if exists "Anyone can send a demo request" on public.demo_requests;
create policy "Anyone can send a demo request"
  on public.demo_requests for insert to anon, authenticated
  with check (status = 'new' and handled_by is null);

drop policy if exists "Platform admins read demo requests" on public.demo_requests;
create policy "Platform admins read demo requests"
  on public.demo_requests for select to authenticated
  using ((select private.has_role('admin')));

drop policy if exists "Platform admins move a demo request's status" on public.demo_requests;
create policy "Platform admins move a demo request's status"
  on public.demo_requests for update to authenticated
  using ((select private.has_role('admin')))
  with check ((select private.has_role('admin')));

-- interviewers -----------------------------------------------------------------------------------------

-- Retired interviewers (deleted_at) stay visible to those who may restore them.
drop policy if exists "Members see their company's interviewers; owners, admins and platform admins retired ones too" on public.interviewers;
create policy "Members see their company's interviewers; owners, admins and platform admins retired ones too"
  on public.interviewers for select to authenticated
  using (
    (deleted_at is null and private.is_company_member(company_id))
    or private.is_company_member(company_id, '{owner,admin}')
    or (select private.has_role('admin'))
  );

drop policy if exists "Owners and admins add interviewers" on public.interviewers;
create policy "Owners and admins add interviewers"
  on public.interviewers for insert to authenticated
  with check (private.is_company_member(company_id, '{owner,admin}'));

drop policy if exists "Owners and admins edit current interviewers" on public.interviewers;
create policy "Owners and admins edit current interviewers"
  on public.interviewers for update to authenticated
  using (deleted_at is null and private.is_company_member(company_id, '{owner,admin}'))
  with check (deleted_at is null and private.is_company_member(company_id, '{owner,admin}'));

-- interviewer_availability -----------------------------------------------------------------------------

drop policy if exists "Members and platform admins see interviewers' weekly hours" on public.interviewer_availability;
create policy "Members and platform admins see interviewers' weekly hours"
  on public.interviewer_availability for select to authenticated
  using (private.can_view_interviewer(interviewer_id));

drop policy if exists "Owners, admins and the interviewer add weekly hours" on public.interviewer_availability;
create policy "Owners, admins and the interviewer add weekly hours"
  on public.interviewer_availability for insert to authenticated
  with check (private.can_manage_interviewer(interviewer_id));

drop policy if exists "Owners, admins and the interviewer change weekly hours" on public.interviewer_availability;
create policy "Owners, admins and the interviewer change weekly hours"
  on public.interviewer_availability for update to authenticated
  using (private.can_manage_interviewer(interviewer_id))
  with check (private.can_manage_interviewer(interviewer_id));

drop policy if exists "Owners, admins and the interviewer remove weekly hours" on public.interviewer_availability;
create policy "Owners, admins and the interviewer remove weekly hours"
  on public.interviewer_availability for delete to authenticated
  using (private.can_manage_interviewer(interviewer_id));

-- interviewer_date_overrides ---------------------------------------------------------------------------

drop policy if exists "Members and platform admins see interviewers' date overrides" on public.interviewer_date_overrides;
create policy "Members and platform admins see interviewers' date overrides"
  on public.interviewer_date_overrides for select to authenticated
  using (private.can_view_interviewer(interviewer_id));

drop policy if exists "Owners, admins and the interviewer add date overrides" on public.interviewer_date_overrides;
create policy "Owners, admins and the interviewer add date overrides"
  on public.interviewer_date_overrides for insert to authenticated
  with check (private.can_manage_interviewer(interviewer_id));

drop policy if exists "Owners, admins and the interviewer change date overrides" on public.interviewer_date_overrides;
create policy "Owners, admins and the interviewer change date overrides"
  on public.interviewer_date_overrides for update to authenticated
  using (private.can_manage_interviewer(interviewer_id))
  with check (private.can_manage_interviewer(interviewer_id));

drop policy if exists "Owners, admins and the interviewer remove date overrides" on public.interviewer_date_overrides;
create policy "Owners, admins and the interviewer remove date overrides"
  on public.interviewer_date_overrides for delete to authenticated
  using (private.can_manage_interviewer(interviewer_id));

-- interviews -------------------------------------------------------------------------------------------

drop policy if exists "Staff, the interviewer, the candidate and platform admins see an interview" on public.interviews;
create policy "Staff, the interviewer, the candidate and platform admins see an interview"
  on public.interviews for select to authenticated
  using (
    candidate_id = (select auth.uid())
    or private.is_company_staff(company_id)
    or private.is_interviewer(interviewer_id)
    or (select private.has_role('admin'))
  );

-- Only meeting_link is granted; times and status change through the booking functions.
drop policy if exists "Staff and the interviewer change the meeting link" on public.interviews;
create policy "Staff and the interviewer change the meeting link"
  on public.interviews for update to authenticated
  using (private.is_company_staff(company_id) or private.is_interviewer(interviewer_id))
  with check (private.is_company_staff(company_id) or private.is_interviewer(interviewer_id));

-- interview_notes --------------------------------------------------------------------------------------

drop policy if exists "Staff and the interviewer read an interview's notes" on public.interview_notes;
create policy "Staff and the interviewer read an interview's notes"
  on public.interview_notes for select to authenticated
  using (private.is_interview_team(interview_id));

drop policy if exists "Staff and the interviewer write notes as themselves" on public.interview_notes;
create policy "Staff and the interviewer write notes as themselves"
  on public.interview_notes for insert to authenticated
  with check (author_id = (select auth.uid()) and private.is_interview_team(interview_id));

drop policy if exists "Authors edit their own notes" on public.interview_notes;
create policy "Authors edit their own notes"
  on public.interview_notes for update to authenticated
  using (author_id = (select auth.uid()) and private.is_interview_team(interview_id))
  with check (author_id = (select auth.uid()) and private.is_interview_team(interview_id));

drop policy if exists "Authors remove their own notes" on public.interview_notes;
create policy "Authors remove their own notes"
  on public.interview_notes for delete to authenticated
  using (author_id = (select auth.uid()) and private.is_interview_team(interview_id));

-- scheduling_invitations -------------------------------------------------------------------------------

-- The candidate reaches theirs only through the token functions (scheduling_invitation, ...).
drop policy if exists "Staff and platform admins see scheduling invitations" on public.scheduling_invitations;
create policy "Staff and platform admins see scheduling invitations"
  on public.scheduling_invitations for select to authenticated
  using (private.is_company_staff(company_id) or (select private.has_role('admin')));

drop policy if exists "Staff invite candidates to schedule" on public.scheduling_invitations;
create policy "Staff invite candidates to schedule"
  on public.scheduling_invitations for insert to authenticated
  with check (created_by = (select auth.uid()) and private.is_company_staff(company_id));

drop policy if exists "Staff withdraw scheduling invitations" on public.scheduling_invitations;
create policy "Staff withdraw scheduling invitations"
  on public.scheduling_invitations for delete to authenticated
  using (private.is_company_staff(company_id));
