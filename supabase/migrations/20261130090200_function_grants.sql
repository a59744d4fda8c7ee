-- =====================================================================================================
-- Function grants, exactly
-- =====================================================================================================
-- Revoking execute from `public` is not enough on a hosted project: Supabase's default privileges grant
-- execute on every new function in schema public to anon, authenticated and service_role by name, and
-- those grants survive `revoke ... from public`. These functions are for signed-in users only, so anon
-- loses them here; later migrations revoke from anon where they create such functions.

revoke execute on function public.post_role(jsonb) from anon;
revoke execute on function public.respond_to_introduction(uuid, boolean) from anon;
