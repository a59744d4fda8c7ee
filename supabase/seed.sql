-- Demo data for the local stack only (never for a hosted project): users of every platform role, a
-- company with a member of each company role. Every demo user signs in with the password
-- `talentbase-demo` (e.g. `signInWithPassword({email: 'alice@example.com', password: 'talentbase-demo'})`),
-- or mint a token for any of them with `make token EMAIL=alice@example.com`. Idempotent, so re-running it
-- changes nothing.

-- Users and their email identities as GoTrue writes them at sign-up: the password as bcrypt with cost 10
-- (this is `talentbase-demo`), token columns '' rather than NULL (the others default to ''), and an
-- `email` identity whose provider_id is the user's id.
with demo (id, email, full_name) as (
  values
    ('00000000-0000-4000-8000-000000000001'::uuid, 'admin@example.com',  'Ada Admin'),
    ('00000000-0000-4000-8000-000000000002'::uuid, 'alice@example.com',  'Alice Executive'),
    ('00000000-0000-4000-8000-000000000003'::uuid, 'arthur@example.com', 'Arthur Executive'),
    ('00000000-0000-4000-8000-000000000004'::uuid, 'bob@example.com',    'Bob Employer'),
    ('00000000-0000-4000-8000-000000000005'::uuid, 'beth@example.com',   'Beth Employer'),
    ('00000000-0000-4000-8000-000000000006'::uuid, 'carol@example.com',  'Carol Interviewer'),
    ('00000000-0000-4000-8000-000000000007'::uuid, 'chris@example.com',  'Chris Interviewer'),
    ('00000000-0000-4000-8000-000000000008'::uuid, 'dana@example.com',   'Dana Coach'),
    ('00000000-0000-4000-8000-000000000009'::uuid, 'dylan@example.com',  'Dylan Coach'),
    ('00000000-0000-4000-8000-00000000000a'::uuid, 'erin@example.com',   'Erin Job Seeker'),
    ('00000000-0000-4000-8000-00000000000b'::uuid, 'eli@example.com',    'Eli Job Seeker')
), users as (
  insert into auth.users (instance_id, id, aud, role, email, encrypted_password, email_confirmed_at,
    confirmation_token, recovery_token, email_change_token_new, email_change, raw_app_meta_data,
    raw_user_meta_data, created_at, updated_at)
  select '00000000-0000-0000-0000-000000000000', d.id, 'authenticated', 'authenticated', d.email,
         '$2a$10$nI5YFV0bUCrKzaQGFgNx/e5rCdGE/sarh22h.XCZ.TJvFA2n7Wb2q', now(), '', '', '', '',
         '{"provider": "email", "providers": ["email"]}'::jsonb, jsonb_build_object('full_name', d.full_name),
         now(), now()
  from demo d
  on conflict (id) do nothing
)
insert into auth.identities (provider_id, user_id, identity_data, provider, last_sign_in_at, created_at,
  updated_at)
select d.id::text, d.id,
       jsonb_build_object('sub', d.id::text, 'email', d.email, 'email_verified', true,
                          'phone_verified', false),
       'email', now(), now(), now()
from demo d
on conflict (provider_id, provider) do nothing;

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

-- Acme is verified (by the demo admin), so its people can match executives and request introductions.
insert into public.companies (id, name, slug, website, created_by, verified_at, verified_by)
values ('00000000-0000-4000-9000-000000000001', 'Acme Robotics', 'acme-robotics', 'https://acme.example.com',
        '00000000-0000-4000-8000-000000000004', now(), '00000000-0000-4000-8000-000000000001')
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

-- Executive matching: Alice and Arthur have open profiles; Acme has an open Interim CFO role and a draft.
insert into public.executive_profiles (user_id, headline, bio, seniority, years_experience, industries, location,
  time_zone, remote_preference, engagement_types, compensation_currency, compensation_min, compensation_max,
  compensation_unit, hours_per_week, available_from, is_open)
values
  ('00000000-0000-4000-8000-000000000002', 'Fractional CFO for robotics and hardware scale-ups',
   'Led finance through two Series B rounds and an acquisition; built FP&A and treasury from scratch.',
   'c_level', 18, '{robotics,manufacturing}', 'Berlin', 'Europe/Berlin', 'remote', '{fractional,interim}',
   'EUR', 1200, 1600, 'day', 24, '2027-01-01', true),
  ('00000000-0000-4000-8000-000000000003', 'Operations leader, supply chain and manufacturing',
   'Ran operations for a European electronics maker; lean manufacturing and procurement.',
   'vp', 15, '{manufacturing,logistics}', 'London', 'Europe/London', 'hybrid', '{interim,full_time}',
   'EUR', 900, 1200, 'day', 40, '2027-02-01', true)
on conflict (user_id) do nothing;

insert into public.executive_contacts (user_id, email, phone, linkedin_url)
values
  ('00000000-0000-4000-8000-000000000002', 'alice.cfo@example.com', '+49 30 1234567', 'https://www.linkedin.com/in/alice-example'),
  ('00000000-0000-4000-8000-000000000003', 'arthur.ops@example.com', '+44 20 7946 0000', null)
on conflict (user_id) do nothing;

insert into public.executive_skills (executive_id, skill_id, level, years)
select v.executive_id::uuid, s.id, v.level, v.years
from (values
  ('00000000-0000-4000-8000-000000000002', 'fp-and-a', 5, 12),
  ('00000000-0000-4000-8000-000000000002', 'fundraising', 5, 8),
  ('00000000-0000-4000-8000-000000000002', 'm-and-a', 4, 5),
  ('00000000-0000-4000-8000-000000000002', 'treasury', 4, 6),
  ('00000000-0000-4000-8000-000000000003', 'supply-chain-management', 5, 10),
  ('00000000-0000-4000-8000-000000000003', 'lean', 4, 8),
  ('00000000-0000-4000-8000-000000000003', 'procurement', 4, 7)
) as v (executive_id, slug, level, years)
join public.skills s on s.slug = v.slug
on conflict do nothing;

insert into public.role_postings (id, company_id, created_by, title, description, engagement_type, seniority,
  industries, location, remote_policy, compensation_currency, compensation_min, compensation_max,
  compensation_unit, hours_per_week, start_date, status)
values
  ('00000000-0000-4000-a000-000000000001', '00000000-0000-4000-9000-000000000001',
   '00000000-0000-4000-8000-000000000004', 'Interim CFO',
   'Acme Robotics is raising its Series B and needs a CFO for six months: FP&A, fundraising, investor reporting.',
   'interim', 'c_level', '{robotics}', 'Berlin', 'remote', 'EUR', 1000, 1500, 'day', 24, '2027-01-15', 'open'),
  ('00000000-0000-4000-a000-000000000002', '00000000-0000-4000-9000-000000000001',
   '00000000-0000-4000-8000-000000000004', 'VP Operations',
   'Scale manufacturing from pilot line to volume production.',
   'full_time', 'vp', '{robotics,manufacturing}', 'Berlin', 'hybrid', 'EUR', 140000, 180000, 'annual', 40,
   '2027-03-01', 'draft')
on conflict (id) do nothing;

insert into public.role_skills (role_id, skill_id, weight, required)
select v.role_id::uuid, s.id, v.weight, v.required
from (values
  ('00000000-0000-4000-a000-000000000001', 'fp-and-a', 3, true),
  ('00000000-0000-4000-a000-000000000001', 'fundraising', 3, true),
  ('00000000-0000-4000-a000-000000000001', 'investor-relations', 1, false),
  ('00000000-0000-4000-a000-000000000002', 'lean', 2, true),
  ('00000000-0000-4000-a000-000000000002', 'supply-chain-management', 2, false)
) as v (role_id, slug, weight, required)
join public.skills s on s.slug = v.slug
on conflict do nothing;

-- Interview platform: Acme's profile, and two interviewers with weekly hours: Carol (Acme's interviewer
-- member, Berlin) and Ines (no account, New York). Chris, Acme's recruiter, books with
-- rpc('available_slots', ...) and rpc('book_interview', ...).
update public.companies
set description = 'Robots for small factories: pick-and-place cells that set up in a day.',
    industry = 'Robotics', address = 'Torstrasse 1, 10119 Berlin'
where id = '00000000-0000-4000-9000-000000000001' and industry is null;

insert into public.interviewers (id, company_id, user_id, display_name, email, time_zone, max_interviews_per_day,
  created_by)
values
  ('00000000-0000-4000-b000-000000000001', '00000000-0000-4000-9000-000000000001',
   '00000000-0000-4000-8000-000000000006', 'Carol Interviewer', null, 'Europe/Berlin', 4,
   '00000000-0000-4000-8000-000000000004'),
  ('00000000-0000-4000-b000-000000000002', '00000000-0000-4000-9000-000000000001', null, 'Ines Panel',
   'ines.panel@example.com', 'America/New_York', 3, '00000000-0000-4000-8000-000000000004')
on conflict (id) do nothing;

insert into public.interviewer_availability (interviewer_id, weekday, start_time, end_time)
select v.interviewer_id::uuid, d.weekday, v.start_time::time, v.end_time::time
from (values
  ('00000000-0000-4000-b000-000000000001', '09:00', '12:00'),
  ('00000000-0000-4000-b000-000000000001', '13:00', '17:00'),
  ('00000000-0000-4000-b000-000000000002', '10:00', '16:00')
) as v (interviewer_id, start_time, end_time)
cross join generate_series(1, 5) as d (weekday)
where not exists (select 1 from public.interviewer_availability a where a.interviewer_id = v.interviewer_id::uuid);
