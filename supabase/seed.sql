-- Demo data for the local stack only (never for a hosted project): users of every platform role, a
-- company with a member of each company role. Mint a token for any of them with
-- `make token EMAIL=alice@example.com`. Idempotent, so re-running it changes nothing.

insert into auth.users (instance_id, id, aud, role, email, email_confirmed_at, raw_app_meta_data, raw_user_meta_data, created_at, updated_at)
select '00000000-0000-0000-0000-000000000000', u.id::uuid, 'authenticated', 'authenticated', u.email, now(),
       '{"provider": "email", "providers": ["email"]}'::jsonb,
       jsonb_build_object('full_name', u.full_name), now(), now()
from (values
  ('00000000-0000-4000-8000-000000000001', 'admin@example.com',  'Ada Admin'),
  ('00000000-0000-4000-8000-000000000002', 'alice@example.com',  'Alice Executive'),
  ('00000000-0000-4000-8000-000000000003', 'arthur@example.com', 'Arthur Executive'),
  ('00000000-0000-4000-8000-000000000004', 'bob@example.com',    'Bob Employer'),
  ('00000000-0000-4000-8000-000000000005', 'beth@example.com',   'Beth Employer'),
  ('00000000-0000-4000-8000-000000000006', 'carol@example.com',  'Carol Interviewer'),
  ('00000000-0000-4000-8000-000000000007', 'chris@example.com',  'Chris Interviewer'),
  ('00000000-0000-4000-8000-000000000008', 'dana@example.com',   'Dana Coach'),
  ('00000000-0000-4000-8000-000000000009', 'dylan@example.com',  'Dylan Coach'),
  ('00000000-0000-4000-8000-00000000000a', 'erin@example.com',   'Erin Job Seeker'),
  ('00000000-0000-4000-8000-00000000000b', 'eli@example.com',    'Eli Job Seeker')
) as u (id, email, full_name)
on conflict (id) do nothing;

insert into public.user_roles (user_id, role, granted_by)
select r.user_id::uuid, r.role::public.app_role, '00000000-0000-4000-8000-000000000001'::uuid
from (values
  ('00000000-0000-4000-8000-000000000001', 'admin'),
  ('00000000-0000-4000-8000-000000000002', 'executive'),
  ('00000000-0000-4000-8000-000000000003', 'executive'),
  ('00000000-0000-4000-8000-000000000004', 'employer'),
  ('00000000-0000-4000-8000-000000000005', 'employer'),
  ('00000000-0000-4000-8000-000000000006', 'interviewer'),
  ('00000000-0000-4000-8000-000000000007', 'interviewer'),
  ('00000000-0000-4000-8000-000000000008', 'coach'),
  ('00000000-0000-4000-8000-000000000009', 'coach'),
  ('00000000-0000-4000-8000-00000000000a', 'job_seeker'),
  ('00000000-0000-4000-8000-00000000000b', 'job_seeker')
) as r (user_id, role)
on conflict do nothing;

insert into public.companies (id, name, slug, website, created_by)
values ('00000000-0000-4000-9000-000000000001', 'Acme Robotics', 'acme-robotics', 'https://acme.example.com',
        '00000000-0000-4000-8000-000000000004')
on conflict (id) do nothing;

insert into public.company_members (company_id, user_id, role, invited_by)
select '00000000-0000-4000-9000-000000000001'::uuid, m.user_id::uuid, m.role::public.company_role,
       '00000000-0000-4000-8000-000000000004'::uuid
from (values
  ('00000000-0000-4000-8000-000000000005', 'admin'),
  ('00000000-0000-4000-8000-000000000006', 'interviewer'),
  ('00000000-0000-4000-8000-000000000007', 'recruiter')
) as m (user_id, role)
on conflict do nothing;
