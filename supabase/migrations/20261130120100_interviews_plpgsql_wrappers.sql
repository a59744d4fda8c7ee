-- =====================================================================================================
-- Interviews: the API's wrappers and is_email in plpgsql
-- =====================================================================================================
-- A SQL function with a `set` clause is never inlined, and its statement is planned afresh at every call;
-- a plpgsql function's plans live as long as the connection. The same bodies, measured on bookings:
-- about 0.1 ms less per wrapper call and 0.07 ms per is_email.

create or replace function private.is_email(address text)
returns boolean
language plpgsql
immutable
set search_path = ''
as $$
begin
  return address ~* '^[^@[:space:]<>()",;]+@[^@[:space:]<>()",;]+\.[^@[:space:]<>()",;]+$'
    and char_length(address) <= 320;
end;
$$;

create or replace function public.available_slots(
  interviewer_id uuid, from_at timestamptz, to_at timestamptz, duration_minutes integer default 60,
  step_minutes integer default null
)
returns table (starts_at timestamptz, ends_at timestamptz)
language plpgsql
stable
set search_path = ''
as $$
begin
  return query
  select * from private.available_slots(interviewer_id, from_at, to_at, duration_minutes, step_minutes);
end;
$$;

create or replace function public.book_interview(
  interviewer_id uuid, starts_at timestamptz, duration_minutes integer default 60, candidate_email text default null,
  candidate_id uuid default null, candidate_name text default null, role_posting_id uuid default null,
  meeting_link text default null
)
returns public.interviews
language plpgsql
set search_path = ''
as $$
begin
  return private.book_interview(interviewer_id, starts_at, duration_minutes, candidate_email, candidate_id,
                                candidate_name, role_posting_id, meeting_link);
end;
$$;

create or replace function public.reschedule_interview(
  interview_id uuid, starts_at timestamptz, duration_minutes integer default null, interviewer_id uuid default null
)
returns public.interviews
language plpgsql
set search_path = ''
as $$
begin
  return private.reschedule_interview(interview_id, starts_at, duration_minutes, interviewer_id);
end;
$$;

create or replace function public.cancel_interview(interview_id uuid, reason text default null)
returns public.interviews
language plpgsql
set search_path = ''
as $$
begin
  return private.cancel_interview(interview_id, reason);
end;
$$;

create or replace function public.record_interview_outcome(interview_id uuid, outcome public.interview_status)
returns public.interviews
language plpgsql
set search_path = ''
as $$
begin
  return private.record_interview_outcome(interview_id, outcome);
end;
$$;

create or replace function public.delete_interviewer(interviewer_id uuid)
returns public.interviewers
language plpgsql
set search_path = ''
as $$
begin
  return private.set_interviewer_deleted(interviewer_id, true);
end;
$$;

create or replace function public.restore_interviewer(interviewer_id uuid)
returns public.interviewers
language plpgsql
set search_path = ''
as $$
begin
  return private.set_interviewer_deleted(interviewer_id, false);
end;
$$;
