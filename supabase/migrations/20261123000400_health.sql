-- =====================================================================================================
-- Health
-- =====================================================================================================
-- What /health reports beyond "the database answers": the latest applied migration and the newest
-- worker heartbeat. Security definer because neither schema is readable by the API roles; executable by
-- the service role only.

create function private.health()
returns jsonb
language sql
stable
security definer
set search_path = ''
as $$
  select jsonb_build_object(
    'latest_migration', (select max(m.version) from supabase_migrations.schema_migrations m),
    'worker_heartbeat', (select max(w.last_heartbeat) from procrastinate.procrastinate_workers w)
  );
$$;
revoke execute on function private.health() from public;
grant execute on function private.health() to service_role;
