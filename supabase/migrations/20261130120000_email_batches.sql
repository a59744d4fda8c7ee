-- =====================================================================================================
-- Email batches: one job for the messages a transaction writes
-- =====================================================================================================
-- A booking writes two messages (the candidate's and the interviewer's), an accepted introduction two,
-- and each job costs its transaction a row in procrastinate_jobs, one in procrastinate_events and a
-- notify: about as much as the messages themselves. So a transaction's messages now share one job
-- (`email:send_emails`, keyed by the transaction's id), which sends each of them in its own transaction
-- with the row's lock held, exactly as `email:send_email` sends one. The sweep still gives a stranded
-- message a job of its own (`outbox:<id>`), and rows written before this change (no batch) keep theirs.

-- No default in the `add column` itself: a volatile default would rewrite the table.
alter table private.outbox add column batch xid8;
alter table private.outbox alter column batch set default pg_current_xact_id();
comment on column private.outbox.batch is
  'The transaction that wrote the message: one email:send_emails job sends a batch''s pending messages.';
-- The pending messages, by batch: it serves the sweep's scan of what is pending as well as the old index
-- by creation time did, which goes (one index fewer for every message to keep).
create index outbox_batch_idx on private.outbox (batch) where status = 'pending';
drop index private.outbox_unsent_idx;

-- A procrastinate job queued from SQL, in the caller's transaction: at most one waiting per `job_lock`
-- (procrastinate's queueing lock: a second call while one waits does nothing) and never two running (its
-- lock). Raw, because procrastinate's own defer function raises on a waiting duplicate.
create function private.queue_job(queue_name text, task_name text, job_lock text, args jsonb)
returns void
language plpgsql
security definer
set search_path = ''
as $$
begin
  insert into procrastinate.procrastinate_jobs (queue_name, task_name, lock, queueing_lock, args)
  values (queue_job.queue_name, queue_job.task_name, job_lock, job_lock, queue_job.args)
  on conflict (queueing_lock) where status = 'todo' do nothing;
end;
$$;
revoke execute on function private.queue_job(text, text, text, jsonb) from public;

-- Write a message and, for the transaction's first, queue the batch's job; a second call with the same key
-- does nothing. The transaction-local setting spares the later messages even the attempt at queueing (an
-- insert that finds its conflict costs nearly what an insert does); a rolled-back savepoint takes the
-- setting back with the job.
create or replace function private.send_email(template text, recipient text, context jsonb, idempotency_key text)
returns void
language plpgsql
security definer
set search_path = ''
as $$
declare
  batch xid8;
begin
  if recipient is null then
    return;  -- nobody to write to (an auth user without an email, e.g. phone sign-up)
  end if;
  insert into private.outbox (template, recipient, context, idempotency_key)
  values (template, recipient, context, idempotency_key)
  on conflict on constraint outbox_idempotency_key_key do nothing
  returning outbox.batch into batch;
  if batch is not null and current_setting('private.email_batch_queued', true) is distinct from 'yes' then
    perform private.queue_job('email', 'email:send_emails', 'outbox-batch:' || batch,
                              jsonb_build_object('batch', batch::text));
    perform set_config('private.email_batch_queued', 'yes', true);
  end if;
end;
$$;

-- Pending messages with no job waiting or running, neither their own nor their batch's: each gets a job
-- of its own, re-queued by the worker's periodic sweep.
create or replace function private.requeue_unsent_emails()
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
        where j.queueing_lock in ('outbox:' || o.id, 'outbox-batch:' || o.batch)
          and j.status in ('todo', 'doing')
      )
  loop
    perform private.queue_email(stranded);
    requeued := requeued + 1;
  end loop;
  return requeued;
end;
$$;
