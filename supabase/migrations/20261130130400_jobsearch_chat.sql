-- =====================================================================================================
-- Job search assistant, careers chat: conversations and their messages
-- =====================================================================================================
-- A signed-in user talks to the careers assistant through `POST /functions/v1/ai/chat`, which stores
-- each turn here and streams the answer. The owner reads their conversations and messages through
-- PostgREST; messages are written only by that function (as service_role, one statement per turn:
-- `private.chat_turn`), so the stored history is always what was said and what was answered. The user
-- may name, rename and delete their conversations.
--
-- An assistant message is inserted empty when its answer starts, with status 'incomplete' and no
-- `completed_at`, and finished once: 'complete' with the whole answer, 'incomplete' with what was streamed
-- when the client went away, 'failed' with what was streamed when the provider failed mid-answer (failed
-- answers never go back to the provider as history). A turn refused before its answer started (AI not
-- configured, budget, the provider's error or timeout) is removed again, so an error response means
-- nothing was stored.
-- Policies for these tables live in supabase/policies/jobsearch_chat.sql.

-- Conversations --------------------------------------------------------------------------------------

create table public.chat_conversations (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null default auth.uid() references auth.users (id) on delete cascade,
  title text check (private.require(char_length(title) <= 200, 'title: at most 200 characters')),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  -- The target of messages' (conversation_id, user_id): a message belongs to its conversation's owner.
  unique (id, user_id)
);
comment on table public.chat_conversations is
  'A careers chat of one user. Titled by its first message unless the user names it; '
  'updated_at moves with each turn.';
-- The owner's list, most recent first (and the policies' filter).
create index chat_conversations_user_id_idx on public.chat_conversations (user_id, updated_at desc);

alter table public.chat_conversations enable row level security;

create trigger chat_conversations_touch_updated_at
  before update on public.chat_conversations
  for each row execute function private.touch_updated_at();

revoke all on public.chat_conversations from anon, authenticated, service_role;
-- The owner starts one (user_id defaults to them), names it and deletes it; ids and times are the database's.
grant select, delete on public.chat_conversations to authenticated;
grant insert (title), update (title) on public.chat_conversations to authenticated;
grant select, insert, update, delete on public.chat_conversations to service_role;

-- Messages -------------------------------------------------------------------------------------------

create table public.chat_messages (
  id uuid primary key default gen_random_uuid(),
  conversation_id uuid not null,
  user_id uuid not null,
  role text not null check (role in ('user', 'assistant')),
  content text not null default '' check (char_length(content) <= 100000),
  status text not null default 'complete' check (status in ('complete', 'incomplete', 'failed')),
  created_at timestamptz not null default now(),
  -- When the message got its final content and status: null only while its answer is streaming.
  completed_at timestamptz,
  foreign key (conversation_id, user_id)
    references public.chat_conversations (id, user_id) on delete cascade,
  -- Only an answer streams: the user's message is whole when stored.
  constraint chat_messages_user_message_whole
    check (role = 'assistant' or (status = 'complete' and completed_at is not null))
);
comment on table public.chat_messages is
  'The turns of a careers chat, in created_at order: the user''s messages and the assistant''s answers, '
  'written by the chat function only.';
comment on column public.chat_messages.status is
  'complete; incomplete: the client left mid-answer (content is what was streamed), or the answer is still '
  'streaming (completed_at null); failed: the provider failed mid-answer (content is what was streamed).';
-- A conversation's messages in order (PostgREST's `order=created_at`, the chat's history), and the
-- foreign key's index.
create index chat_messages_conversation_idx on public.chat_messages (conversation_id, user_id, created_at);
-- The policy's filter.
create index chat_messages_user_id_idx on public.chat_messages (user_id);

alter table public.chat_messages enable row level security;

revoke all on public.chat_messages from anon, authenticated, service_role;
grant select on public.chat_messages to authenticated;
grant select, insert, update, delete on public.chat_messages to service_role;

-- The chat function's turn ---------------------------------------------------------------------------

-- One turn of the caller's chat, in the one statement the function runs before it calls the provider:
-- the conversation (created, titled by the message, when `conversation_id` is null; else the caller's
-- own, locked so that two turns of one conversation take their places in order), the user's message and
-- the assistant's empty one, the earlier history within `history_chars` (the newest messages that fit,
-- oldest first; unfinished and failed answers left out) and the context: the profile, the primary
-- resume's text (at most `context_chars`) and the saved listings still on the board (public.listings: a
-- listing's public columns only), newest first, at most `listings`, descriptions cut to 300 characters. NULL
-- when the conversation is not the caller's (or does not exist).
--
-- Security invoker, executable by service_role only: it runs with the caller's claims as service_role
-- (which writes messages and reads across the context's tables) and reads and writes only what belongs
-- to auth.uid().
create function private.chat_turn(
  conversation_id uuid, message text, history_chars integer, context_chars integer, listings integer
)
returns jsonb
language plpgsql
set search_path = ''
as $$
declare
  caller uuid := (select auth.uid());
  conversation uuid := chat_turn.conversation_id;
  created boolean := chat_turn.conversation_id is null;
  -- The answer is created one microsecond after the question: turns order by created_at, ties never.
  at timestamptz := clock_timestamp();
  history jsonb := '[]';
  user_message uuid;
  assistant_message uuid;
begin
  if caller is null then
    raise exception 'the chat needs a signed-in user' using errcode = 'insufficient_privilege';
  end if;
  -- The turn's commit does not wait for its WAL to reach the disk (about a millisecond here, before the
  -- first token). What a crash in that instant can take is this turn whole, never part of it: the answer's
  -- own write, which waits, would then find nothing and the stream ends with an error the user sees.
  perform set_config('synchronous_commit', 'off', true);
  if created then
    insert into public.chat_conversations (user_id, title)
    values (caller, left(regexp_replace(btrim(message), '\s+', ' ', 'g'), 80))
    returning id into conversation;
  else
    update public.chat_conversations c set updated_at = now()
    where c.id = conversation and c.user_id = caller;
    if not found then
      return null;
    end if;
    select coalesce(
             jsonb_agg(jsonb_build_object('role', h.role, 'content', h.content) order by h.created_at), '[]')
      into history
      from (
        select m.role, m.content, m.created_at,
               sum(char_length(m.content)) over (order by m.created_at desc) as total
        from public.chat_messages m
        where m.conversation_id = conversation and m.user_id = caller
          and m.completed_at is not null and m.status <> 'failed' and m.content <> ''
        order by m.created_at desc
        limit 200
      ) h
      where h.total <= history_chars;
  end if;

  insert into public.chat_messages (conversation_id, user_id, role, content, status, created_at, completed_at)
  values (conversation, caller, 'user', message, 'complete', at, at)
  returning id into user_message;
  insert into public.chat_messages (conversation_id, user_id, role, content, status, created_at)
  values (conversation, caller, 'assistant', '', 'incomplete', at + interval '1 microsecond')
  returning id into assistant_message;

  return jsonb_build_object(
    'conversation_id', conversation,
    'created', created,
    'user_message_id', user_message,
    'message_id', assistant_message,
    -- What the AI layer's budget check would ask next, read here to spare the answer a round trip.
    'spent_today', private.ai_tokens_today(caller),
    'history', history,
    'profile', (
      select jsonb_strip_nulls(jsonb_build_object(
        'full_name', p.full_name,
        'headline', nullif(e.headline, ''),
        'bio', nullif(e.bio, ''),
        'seniority', e.seniority,
        'years_experience', e.years_experience,
        'industries', nullif(e.industries, '{}'),
        'functions', nullif(e.functions, '{}'),
        'location', e.location,
        'remote_preference', e.remote_preference,
        'engagement_types', nullif(e.engagement_types, '{}'),
        'skills', (
          select array_agg(s.name order by es.level desc, s.name)
          from public.executive_skills es join public.skills s on s.id = es.skill_id
          where es.executive_id = caller
        )
      ))
      from public.profiles p left join public.executive_profiles e on e.user_id = p.id
      where p.id = caller
    ),
    'resume', (
      select left(r.text, context_chars)
      from public.resumes r
      where r.user_id = caller and r.is_primary and r.status = 'ready'
      order by r.updated_at desc
      limit 1
    ),
    'listings', (
      select coalesce(jsonb_agg(l order by l.saved_at desc), '[]')
      from (
        select l.title, l.company_name as company, l.location, l.remote_policy, l.engagement_type,
               l.seniority, left(l.description, 300) as description, s.created_at as saved_at
        from public.saved_listings s
        join public.listings l on l.role_posting_id = s.role_posting_id
        where s.user_id = caller
        order by s.created_at desc
        limit listings
      ) l
    )
  );
end;
$$;
revoke execute on function private.chat_turn(uuid, text, integer, integer, integer) from public;
grant execute on function private.chat_turn(uuid, text, integer, integer, integer) to service_role;
