-- =====================================================================================================
-- AI usage
-- =====================================================================================================
-- Tokens spent through the AI layer (rpc/platform/ai.py), per user and UTC day: what each user's daily
-- budget is checked against before a call, and what the provider will bill. The API process writes it
-- through the two functions below as service_role; nobody reads it through the API.

create table private.ai_usage (
  -- null: the platform's own work, on nobody's behalf (background embeddings).
  user_id uuid references auth.users (id) on delete cascade,
  day date not null,
  requests integer not null default 0 check (requests >= 0),
  prompt_tokens bigint not null default 0 check (prompt_tokens >= 0),
  completion_tokens bigint not null default 0 check (completion_tokens >= 0),
  total_tokens bigint generated always as (prompt_tokens + completion_tokens) stored,
  updated_at timestamptz not null default now(),
  constraint ai_usage_user_day_key unique nulls not distinct (user_id, day)
);
comment on table private.ai_usage is
  'Tokens spent through the AI layer per user and UTC day (a null user: the platform''s own work).';
alter table private.ai_usage enable row level security;
revoke all on private.ai_usage from public, anon, authenticated, service_role;

-- One call's tokens added to its user's day: one statement, whatever number of calls run at once.
create function private.record_ai_usage(user_id uuid, prompt_tokens bigint, completion_tokens bigint)
returns void
language sql
security definer
set search_path = ''
as $$
  insert into private.ai_usage as u (user_id, day, requests, prompt_tokens, completion_tokens)
  values (record_ai_usage.user_id, (now() at time zone 'utc')::date, 1,
          greatest(record_ai_usage.prompt_tokens, 0), greatest(record_ai_usage.completion_tokens, 0))
  on conflict on constraint ai_usage_user_day_key do update
    set requests = u.requests + 1,
        prompt_tokens = u.prompt_tokens + excluded.prompt_tokens,
        completion_tokens = u.completion_tokens + excluded.completion_tokens,
        updated_at = now();
$$;
revoke execute on function private.record_ai_usage(uuid, bigint, bigint) from public;
grant execute on function private.record_ai_usage(uuid, bigint, bigint) to service_role;

-- What a user has spent today (UTC), for the budget check before each call.
-- plpgsql: a connection keeps its plan (a SQL function with a `set` clause is planned at every call), and
-- the chat asks before every answer.
create function private.ai_tokens_today(user_id uuid)
returns bigint
language plpgsql
stable
security definer
set search_path = ''
as $$
begin
  return coalesce(
    (select u.total_tokens from private.ai_usage u
      where u.user_id = ai_tokens_today.user_id and u.day = (now() at time zone 'utc')::date),
    0);
end;
$$;
revoke execute on function private.ai_tokens_today(uuid) from public;
grant execute on function private.ai_tokens_today(uuid) to service_role;
