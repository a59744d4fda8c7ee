-- =====================================================================================================
-- Companies, second pass: verification by platform admins, and membership by invitation only
-- =====================================================================================================
-- Anyone may create a company, so a company is not trusted until a platform admin verifies it
-- (`verified_at`): only verified companies may match executives, request introductions or see executive
-- profiles (the matching policies read `private.is_verified_company`). Unverified companies may still
-- draft roles.
--
-- Nobody joins a company without saying yes: owners and admins invite by email (an invitation is a row
-- here and an email with a link carrying a secret token), and the invitee accepts with that token, signed
-- in as whoever they are. The token proves they read the email, whether or not their account existed when
-- they were invited. Owners and admins no longer insert members directly.
-- Policies for these tables live in supabase/policies/companies.sql.

-- Verification ---------------------------------------------------------------------------------------

alter table public.companies
  add column verified_at timestamptz,
  add column verified_by uuid references auth.users (id) on delete set null;
comment on column public.companies.verified_at is
  'Set by a platform admin (set_company_verified); until then the company cannot match or see executives.';
create index companies_verified_by_idx on public.companies (verified_by);
-- No column grant: users update name, slug and website only (see the companies migration).

create function private.is_verified_company(company_id uuid)
returns boolean
language sql
stable
security definer
set search_path = ''
as $$
  select exists (
    select 1 from public.companies c where c.id = is_verified_company.company_id and c.verified_at is not null
  );
$$;
revoke execute on function private.is_verified_company(uuid) from public;
grant execute on function private.is_verified_company(uuid) to authenticated, service_role;

-- The one way verification changes. Security definer (no user may update verified_at) and private; the
-- public wrapper below is its API.
create function private.set_company_verified(company_id uuid, verified boolean)
returns public.companies
language plpgsql
security definer
set search_path = ''
as $$
declare
  changed public.companies;
begin
  if not private.has_role('admin') then
    raise exception 'only platform admins verify companies' using errcode = 'insufficient_privilege';
  end if;
  if verified is null then
    raise exception 'verified must be true or false' using errcode = 'invalid_parameter_value';
  end if;
  update public.companies c
  set verified_at = case when verified then coalesce(c.verified_at, now()) end,
      verified_by = case when verified then coalesce(c.verified_by, (select auth.uid())) end
  where c.id = set_company_verified.company_id
  returning * into changed;
  if changed.id is null then
    raise exception 'no such company' using errcode = 'PT404';  -- PostgREST answers 404
  end if;
  return changed;
end;
$$;
revoke execute on function private.set_company_verified(uuid, boolean) from public;
grant execute on function private.set_company_verified(uuid, boolean) to authenticated;

create function public.set_company_verified(company_id uuid, verified boolean)
returns public.companies
language sql
set search_path = ''
as $$
  select * from private.set_company_verified(company_id, verified);
$$;
comment on function public.set_company_verified(uuid, boolean) is
  'Platform admins verify a company (it may then match and see executives) or withdraw the verification.';
revoke execute on function public.set_company_verified(uuid, boolean) from public, anon;
grant execute on function public.set_company_verified(uuid, boolean) to authenticated;

-- Invitations ----------------------------------------------------------------------------------------

insert into private.config (key, value, description) values
  ('company_invitation_ttl', '"7 days"', 'How long a company invitation can be accepted.'),
  ('company_pending_invitations_limit', '50', 'Invitations one company may have waiting at once.');

create table public.company_invitations (
  id uuid primary key default gen_random_uuid(),
  company_id uuid not null references public.companies (id) on delete cascade,
  email text not null check (email ~* '^[^@[:space:]]+@[^@[:space:]]+\.[^@[:space:]]+$' and char_length(email) <= 320),
  role public.company_role not null,
  invited_by uuid default auth.uid() references auth.users (id) on delete set null,
  created_at timestamptz not null default now(),
  expires_at timestamptz not null
);
comment on table public.company_invitations is
  'Invitations waiting for an answer. Accepting one (accept_company_invitation, with the emailed token) makes the invitee a member.';
-- One waiting invitation per company and address.
create unique index company_invitations_one_per_email_idx on public.company_invitations (company_id, lower(email));
create index company_invitations_invited_by_idx on public.company_invitations (invited_by);

alter table public.company_invitations enable row level security;
revoke all on public.company_invitations from anon, authenticated, service_role;
grant select, delete on public.company_invitations to authenticated;
grant insert (company_id, email, role) on public.company_invitations to authenticated;
grant select, insert, update, delete on public.company_invitations to service_role;

-- The sha256 of each invitation's token (sent in the email; never stored itself), apart from the invitation
-- so that no API role can read it, even with `select *`.
create table private.company_invitation_tokens (
  invitation_id uuid primary key references public.company_invitations (id) on delete cascade,
  token_hash bytea not null unique
);
comment on table private.company_invitation_tokens is 'Which token hash opens which invitation.';
alter table private.company_invitation_tokens enable row level security;
revoke all on private.company_invitation_tokens from public, anon, authenticated, service_role;

-- A token: 244 random bits (two v4 UUIDs) in hex. gen_random_uuid() draws from the same strong source as
-- pgcrypto's gen_random_bytes, and is core Postgres.
create function private.new_token()
returns text
language sql
volatile
set search_path = ''
as $$
  select replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', '');
$$;
revoke execute on function private.new_token() from public;

create function private.token_hash(token text)
returns bytea
language sql
immutable
set search_path = ''
as $$
  select sha256(convert_to(coalesce(token, ''), 'UTF8'));
$$;
revoke execute on function private.token_hash(text) from public;

-- Fill in what the inviter must not choose and hold the company to its limit of waiting invitations.
create function private.prepare_company_invitation()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  waiting integer;
  waiting_limit integer := (private.config_value('company_pending_invitations_limit'))::integer;
begin
  new.email := lower(btrim(new.email));
  new.created_at := now();
  new.expires_at := now() + (private.config_value('company_invitation_ttl') #>> '{}')::interval;
  if new.company_id is null then
    return new;  -- the not-null constraint refuses the row
  end if;
  -- Serialise one company's invitations so that two at once cannot both take the last place.
  perform 1 from public.companies c where c.id = new.company_id for no key update;
  -- An expired invitation for the same address no longer waits: it gives way to the new one.
  delete from public.company_invitations i
  where i.company_id = new.company_id and lower(i.email) = new.email and i.expires_at <= now();
  select count(*) into waiting from public.company_invitations i
  where i.company_id = new.company_id and i.expires_at > now();
  if waiting >= waiting_limit then
    raise exception 'this company has % invitations waiting', waiting
      using errcode = 'check_violation', hint = 'Revoke some, or wait until they are answered or expire.';
  end if;
  return new;
end;
$$;
revoke execute on function private.prepare_company_invitation() from public;

create trigger company_invitations_prepare
  before insert on public.company_invitations
  for each row execute function private.prepare_company_invitation();

-- Make the invitation's token and email it: the inviter never sees it. Security definer: it writes the
-- private tables.
create function private.send_company_invitation()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  token text := private.new_token();
begin
  insert into private.company_invitation_tokens (invitation_id, token_hash)
  values (new.id, private.token_hash(token));
  perform private.send_email(
    'company_invitation',
    new.email,
    jsonb_build_object(
      'company_name', (select c.name from public.companies c where c.id = new.company_id),
      'role', new.role,
      'inviter_name', (select p.full_name from public.profiles p where p.id = new.invited_by),
      'token', token,
      'expires_at', new.expires_at
    ),
    format('company_invitation:%s', new.id)
  );
  return null;
end;
$$;
revoke execute on function private.send_company_invitation() from public;

create trigger company_invitations_send
  after insert on public.company_invitations
  for each row execute function private.send_company_invitation();

-- The invitation behind a token, for the page the email links to: who invites, to which company, as what.
-- Anything else (a wrong, used or expired token) is one answer, so tokens cannot be probed.
create function private.company_invitation(token text)
returns table (company_id uuid, company_name text, role public.company_role, inviter_name text, expires_at timestamptz)
language sql
stable
security definer
set search_path = ''
as $$
  select i.company_id, c.name, i.role, p.full_name, i.expires_at
  from private.company_invitation_tokens t
  join public.company_invitations i on i.id = t.invitation_id
  join public.companies c on c.id = i.company_id
  left join public.profiles p on p.id = i.invited_by
  where t.token_hash = private.token_hash(company_invitation.token) and i.expires_at > now();
$$;
revoke execute on function private.company_invitation(text) from public;
grant execute on function private.company_invitation(text) to authenticated;

create function public.company_invitation(token text)
returns table (company_id uuid, company_name text, role public.company_role, inviter_name text, expires_at timestamptz)
language sql
stable
set search_path = ''
as $$
  select * from private.company_invitation(token);
$$;
comment on function public.company_invitation(text) is
  'The invitation an emailed token stands for (company, role, inviter, expiry); no rows for a wrong or expired token.';
revoke execute on function public.company_invitation(text) from public, anon;
grant execute on function public.company_invitation(text) to authenticated;

-- The signed-in caller accepts (joining with the invitation's role) or declines; either way the invitation
-- is used up. Security definer: no policy lets a user add themselves to a company.
create function private.answer_company_invitation(token text, accept boolean)
returns public.company_members
language plpgsql
security definer
set search_path = ''
as $$
declare
  invitation public.company_invitations;
  joined public.company_members;
begin
  if (select auth.uid()) is null then
    raise exception 'sign in to answer an invitation' using errcode = 'insufficient_privilege';
  end if;
  if accept is null then
    raise exception 'accept must be true or false' using errcode = 'invalid_parameter_value';
  end if;
  select i.* into invitation
  from private.company_invitation_tokens t join public.company_invitations i on i.id = t.invitation_id
  where t.token_hash = private.token_hash(answer_company_invitation.token)
  for update of i;
  -- PT404: PostgREST answers 404 (a wrong, used and expired token alike, so tokens cannot be probed).
  if invitation.id is null or invitation.expires_at <= now() then
    raise exception 'no such invitation: the link is wrong, used or expired; ask for a new one'
      using errcode = 'PT404';
  end if;
  delete from public.company_invitations i where i.id = invitation.id;
  if not accept then
    return null;
  end if;
  insert into public.company_members (company_id, user_id, role, invited_by)
  values (invitation.company_id, (select auth.uid()), invitation.role, invitation.invited_by)
  on conflict on constraint company_members_pkey do nothing
  returning * into joined;
  if joined.company_id is null then
    raise exception 'you are already a member of this company' using errcode = 'unique_violation';
  end if;
  return joined;
end;
$$;
revoke execute on function private.answer_company_invitation(text, boolean) from public;
grant execute on function private.answer_company_invitation(text, boolean) to authenticated;

create function public.accept_company_invitation(token text)
returns public.company_members
language sql
set search_path = ''
as $$
  select * from private.answer_company_invitation(token, true);
$$;
comment on function public.accept_company_invitation(text) is
  'The signed-in caller joins the company with the role an emailed invitation token offers.';
revoke execute on function public.accept_company_invitation(text) from public, anon;
grant execute on function public.accept_company_invitation(text) to authenticated;

create function public.decline_company_invitation(token text)
returns void
language sql
set search_path = ''
as $$
  select from private.answer_company_invitation(token, false);
$$;
comment on function public.decline_company_invitation(text) is 'The invitee declines: the invitation is used up.';
revoke execute on function public.decline_company_invitation(text) from public, anon;
grant execute on function public.decline_company_invitation(text) to authenticated;

-- Members join through invitations only (and the creator through the companies trigger).
revoke insert on public.company_members from authenticated;
