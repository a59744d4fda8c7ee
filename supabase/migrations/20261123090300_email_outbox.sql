-- =====================================================================================================
-- Email outbox
-- =====================================================================================================
-- Emails are rows written in the same transaction as the change that causes them (here by triggers, so
-- a frontend doing plain CRUD through PostgREST still gets its emails), each with a job for the worker
-- (rpc/email.py), which renders and sends it through SMTP, or to the log without SMTP settings. Nothing is
-- lost while SMTP is down: the row stays pending, the job retries with exponential backoff, and a periodic
-- sweep re-queues what no job is waiting for (a worker that died mid-send). The worker holds the row's
-- lock while it sends, so two jobs for one message never both send it.

create type private.email_status as enum ('pending', 'sent', 'failed', 'console');
comment on type private.email_status is
  'pending: to send (or retrying); sent: accepted by SMTP; failed: gave up, see last_error; console: logged, no SMTP configured.';

create table private.outbox (
  id bigint generated always as identity primary key,
  template text not null check (template ~ '^[a-z_]+$'),
  recipient text not null check (recipient ~* '^[^@[:space:]]+@[^@[:space:]]+$'),
  context jsonb not null default '{}',
  idempotency_key text not null unique,
  status private.email_status not null default 'pending',
  attempts integer not null default 0,
  last_error text,
  message_id text,
  created_at timestamptz not null default now(),
  sent_at timestamptz
);
comment on table private.outbox is 'Emails to send; written by triggers, sent by the worker. Never reachable through the API.';
comment on column private.outbox.idempotency_key is 'One message per cause, e.g. introduction:<id>:accepted:executive.';
create index outbox_unsent_idx on private.outbox (created_at) where status = 'pending';
-- RLS on and no policies: only its owner (the worker, the definer functions below) reads it.
alter table private.outbox enable row level security;
revoke all on private.outbox from public, anon, authenticated, service_role;

-- Queue the worker's job for one message. At most one waiting job per message (procrastinate's queueing
-- lock), and never two running at once (its lock).
create function private.queue_email(outbox_id bigint)
returns void
language sql
security definer
set search_path = ''
as $$
  insert into procrastinate.procrastinate_jobs (queue_name, task_name, lock, queueing_lock, args)
  values ('email', 'email:send_email', 'outbox:' || outbox_id, 'outbox:' || outbox_id,
          jsonb_build_object('outbox_id', outbox_id))
  on conflict (queueing_lock) where status = 'todo' do nothing;
$$;
revoke execute on function private.queue_email(bigint) from public;

-- Write a message and queue it; a second call with the same key does nothing.
create function private.send_email(template text, recipient text, context jsonb, idempotency_key text)
returns void
language plpgsql
security definer
set search_path = ''
as $$
declare
  queued bigint;
begin
  if recipient is null then
    return;  -- nobody to write to (an auth user without an email, e.g. phone sign-up)
  end if;
  insert into private.outbox (template, recipient, context, idempotency_key)
  values (template, recipient, context, idempotency_key)
  on conflict on constraint outbox_idempotency_key_key do nothing
  returning id into queued;
  if queued is not null then
    perform private.queue_email(queued);
  end if;
end;
$$;
revoke execute on function private.send_email(text, text, jsonb, text) from public;

-- Pending messages with no job waiting: re-queued by the worker's periodic sweep.
create function private.requeue_unsent_emails()
returns integer
language plpgsql
security definer
set search_path = ''
as $$
declare
  stranded bigint;
  requeued integer := 0;
begin
  for stranded in
    select o.id from private.outbox o
    where o.status = 'pending'
      and not exists (
        select 1 from procrastinate.procrastinate_jobs j
        where j.queueing_lock = 'outbox:' || o.id and j.status in ('todo', 'doing')
      )
  loop
    perform private.queue_email(stranded);
    requeued := requeued + 1;
  end loop;
  return requeued;
end;
$$;
revoke execute on function private.requeue_unsent_emails() from public;

-- Introduction emails ------------------------------------------------------------------------------
-- requested: the executive hears who asks, for which role; accepted: both sides get each other's contact
-- details; declined: the employer hears it. Addresses are the auth users' own (GoTrue's email).

create function private.queue_introduction_emails()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  facts jsonb;
  executive_email text;
  requester_email text;
begin
  if tg_op = 'UPDATE' and new.status is not distinct from old.status then
    return new;
  end if;
  select u.email into executive_email from auth.users u where u.id = new.executive_id;
  select u.email into requester_email from auth.users u where u.id = new.requested_by;
  select jsonb_build_object(
    'introduction_id', new.id,
    'role_id', r.id,
    'role_title', r.title,
    'company_name', c.name,
    'message', new.message,
    'expires_at', new.expires_at,
    'executive_name', ep.full_name,
    'requester_name', rp.full_name
  ) into facts
  from public.role_postings r
  join public.companies c on c.id = r.company_id
  left join public.profiles ep on ep.id = new.executive_id
  left join public.profiles rp on rp.id = new.requested_by
  where r.id = new.role_id;

  if new.status = 'requested' then
    perform private.send_email('introduction_requested', executive_email, facts,
                               format('introduction:%s:requested:executive', new.id));
  elsif new.status = 'accepted' then
    perform private.send_email(
      'introduction_accepted_executive', executive_email,
      facts || jsonb_build_object('requester_email', requester_email),
      format('introduction:%s:accepted:executive', new.id));
    perform private.send_email(
      'introduction_accepted_employer', requester_email,
      facts || (
        select jsonb_build_object(
          'executive_email', coalesce(ec.email, executive_email),
          'executive_phone', ec.phone,
          'executive_linkedin_url', ec.linkedin_url)
        from (select 1) one left join public.executive_contacts ec on ec.user_id = new.executive_id
      ),
      format('introduction:%s:accepted:employer', new.id));
  elsif new.status = 'declined' then
    perform private.send_email('introduction_declined', requester_email, facts,
                               format('introduction:%s:declined:employer', new.id));
  end if;
  return new;
end;
$$;
revoke execute on function private.queue_introduction_emails() from public;

create trigger introductions_queue_emails
  after insert or update of status on public.introductions
  for each row execute function private.queue_introduction_emails();
