-- =====================================================================================================
-- Interviews: the indexes of columns that are mostly empty leave the empty rows out
-- =====================================================================================================
-- Most interviews have no candidate account, role posting, invitation or canceller, and every booking
-- paid for four index entries of nulls that no query looks up (the foreign keys' checks, the policies
-- and the lookups all ask for one value, which a partial index answers as well).

drop index public.interviews_candidate_idx;
create index interviews_candidate_idx on public.interviews (candidate_id) where candidate_id is not null;
drop index public.interviews_role_posting_idx;
create index interviews_role_posting_idx on public.interviews (role_posting_id) where role_posting_id is not null;
drop index public.interviews_cancelled_by_idx;
create index interviews_cancelled_by_idx on public.interviews (cancelled_by) where cancelled_by is not null;
drop index public.interviews_invitation_idx;
create index interviews_invitation_idx on public.interviews (invitation_id) where invitation_id is not null;
