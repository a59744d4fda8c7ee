-- =====================================================================================================
-- Job search policies: the job board (listings), saved listings, saved searches
-- =====================================================================================================
-- Re-applied after every migration run (drop + create, so the file is idempotent). The board is public:
-- its rows are exactly the listed postings and its columns exactly what the public may read, both kept
-- by triggers (supabase/migrations/20261130130200_jobsearch_listings.sql), so its one policy lets
-- everyone read everything, and nobody writes. Saved listings and saved searches are their owner's
-- alone: not other users', not the company's, not platform admins'.

-- listings ---------------------------------------------------------------------------------------------

-- Lets in: anonymous visitors and every signed-in user. A row condition here would be redundant and
-- would cost searches their indexes (a policy's condition runs before `@@`, which is not leakproof).
drop policy if exists "Everyone can read the job board" on public.listings;
create policy "Everyone can read the job board"
  on public.listings for select to anon, authenticated
  using (true);

-- saved_listings ---------------------------------------------------------------------------------------

-- Lets in: the user who saved them.
drop policy if exists "Users see the listings they saved" on public.saved_listings;
create policy "Users see the listings they saved"
  on public.saved_listings for select to authenticated
  using (user_id = (select auth.uid()));

-- Lets in: a signed-in user saving, as themselves, a listing on the board (not a draft or a closed
-- posting, whose id they may know).
drop policy if exists "Users save listings on the board for themselves" on public.saved_listings;
create policy "Users save listings on the board for themselves"
  on public.saved_listings for insert to authenticated
  with check (
    user_id = (select auth.uid())
    and exists (select 1 from public.listings l where l.role_posting_id = saved_listings.role_posting_id)
  );

-- Lets in: the user who saved them. Nothing to update (no update grant).
drop policy if exists "Users remove the listings they saved" on public.saved_listings;
create policy "Users remove the listings they saved"
  on public.saved_listings for delete to authenticated
  using (user_id = (select auth.uid()));

-- saved_searches ---------------------------------------------------------------------------------------

-- Lets in: the user who saved them.
drop policy if exists "Users see their saved searches" on public.saved_searches;
create policy "Users see their saved searches"
  on public.saved_searches for select to authenticated
  using (user_id = (select auth.uid()));

-- Lets in: a signed-in user saving a search as themselves.
drop policy if exists "Users save searches for themselves" on public.saved_searches;
create policy "Users save searches for themselves"
  on public.saved_searches for insert to authenticated
  with check (user_id = (select auth.uid()));

-- Lets in: the user who saved it, who keeps it theirs (user_id has no update grant either).
drop policy if exists "Users rename and change their saved searches" on public.saved_searches;
create policy "Users rename and change their saved searches"
  on public.saved_searches for update to authenticated
  using (user_id = (select auth.uid()))
  with check (user_id = (select auth.uid()));

-- Lets in: the user who saved it.
drop policy if exists "Users delete their saved searches" on public.saved_searches;
create policy "Users delete their saved searches"
  on public.saved_searches for delete to authenticated
  using (user_id = (select auth.uid()));
