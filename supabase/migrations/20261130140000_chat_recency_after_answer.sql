-- =====================================================================================================
-- Careers chat: a turn moves its conversation up the owner's list when its answer is stored
-- =====================================================================================================
-- The turn's statement runs before the provider is asked, so what it writes is paid before the first
-- token. It updated the conversation's `updated_at` (a new row version, three index entries and the
-- touch trigger); now it only locks the row, as that update did, and the function's statement that
-- stores the answer moves `updated_at` (rpc/jobsearch/chat.py, FINISH). A conversation whose answer is
-- still streaming keeps its place until the answer ends.

comment on table public.chat_conversations is
  'A careers chat of one user. Titled by its first message unless the user names it; '
  'updated_at moves when each turn''s answer is stored.';

-- One turn of the caller's chat, in the one statement the function runs before it calls the provider:
-- the conversation (created, titled by the message, when `conversation_id` is null; else the caller's
-- own, locked so that two turns of one conversation take their places in order; its `updated_at` moves
-- when the answer is stored, after the first token, see chat.py's FINISH), the user's message and
-- the assistant's empty one, the earlier history within `history_chars` (the newest messages that fit,
-- oldest first; unfinished and failed answers left out) and the context: the profile, the primary
-- resume's text (at most `context_chars`) and the saved listings still on the board (public.listings: a
-- listing's public columns only), newest first, at most `listings`, descriptions cut to 300 characters. NULL
-- when the conversation is not the caller's (or does not exist).
--
-- Security invoker, executable by service_role only: it runs with the caller's claims as service_role
-- (which writes messages and reads across the context's tables) and reads and writes only what belongs
-- to auth.uid().
create or replace function private.chat_turn(
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
    -- The lock an update would take, without the update's new row version and index entries (0.2 ms
    -- before the first token): the answer's FINISH moves updated_at.
    perform from public.chat_conversations c
    where c.id = conversation and c.user_id = caller
    for no key update;
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
