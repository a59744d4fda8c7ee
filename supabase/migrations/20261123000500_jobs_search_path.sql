-- =====================================================================================================
-- Jobs: pin the search_path of procrastinate's functions
-- =====================================================================================================
-- Supabase's security advisor (lint 0011, function_search_path_mutable) flags every function whose
-- search_path comes from the caller: a role able to create objects earlier on that path could shadow a
-- table or operator the function uses. procrastinate's functions name their objects unqualified, so the
-- path is pinned to their own schema (then pg_catalog, implicitly) instead of emptied.
--
-- A procrastinate upgrade that replaces these functions drops the setting: the advisors test catches it.

do $$
declare
  fn regprocedure;
begin
  for fn in
    select p.oid::regprocedure
    from pg_proc p
    join pg_namespace n on n.oid = p.pronamespace
    where n.nspname = 'procrastinate'
      and not exists (select 1 from unnest(p.proconfig) c where c like 'search_path=%')
  loop
    execute format('alter function %s set search_path = procrastinate, pg_temp', fn);
  end loop;
end;
$$;
