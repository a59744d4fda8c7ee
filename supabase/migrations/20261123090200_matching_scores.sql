-- =====================================================================================================
-- Matching scores: executives for a role, roles for an executive, in one query inside Postgres
-- =====================================================================================================
-- Each (role, executive) pair gets signals between 0 and 1 and a weighted score from 0 to 100:
--   skills        the role's skills the executive holds, weighted (required ones double), an exact skill
--                 counting fully, a specialisation of it 0.75 and its umbrella skill 0.5, scaled by level
--   seniority     equal 1, one step apart 0.5, further 0 (unknown: 0.5)
--   industry      share of the role's industries the executive has worked in (none asked: 1)
--   engagement    the executive wants the role's engagement type
--   compensation  the executive's minimum within the role's budget, less as it rises above (unknown: 0.5)
--   availability  start date and hours per week both fit
--   location      remote roles fit everyone; otherwise the same location (unknown: 0.5)
--   semantic      cosine similarity of the bio and the description, when both have embeddings
-- Arithmetic is in double precision (a quarter faster than numeric here); results are rounded as numeric.
-- A signal with no data (skills for a role without skills, semantic without embeddings) leaves the
-- weighted average instead of counting as zero. Candidates share at least one skill (or a related one)
-- with the role, unless the role asks for none. The weights come from the caller (the `matching`
-- function's settings): none of this is executable by the API roles.

-- Which held skill earns credit for which wanted skill, and how much.
create view private.skill_credit as
  select s.id as wanted_id, s.id as held_id, 1.0 as credit from public.skills s
  union all
  select s.parent_id, s.id, 0.75 from public.skills s where s.parent_id is not null
  union all
  select s.id, s.parent_id, 0.5 from public.skills s where s.parent_id is not null;
comment on view private.skill_credit is
  'Exact skill 1.0; a specialisation of the wanted skill 0.75; the wanted skill''s umbrella 0.5.';
revoke all on private.skill_credit from public, anon, authenticated, service_role;

-- The top pairs with their breakdowns. Exactly one of for_role and for_executive is given: the role's best
-- executives (any status: employers match drafts too), or the executive's best open roles.
create function private.match(
  for_role uuid,
  for_executive uuid,
  max_results integer,
  weights jsonb
)
returns table (role_id uuid, executive_id uuid, score numeric, breakdown jsonb)
language plpgsql
stable
set search_path = ''
as $function$
begin
  if (for_role is null) = (for_executive is null) then
    raise exception 'give a role or an executive, not both' using errcode = 'invalid_parameter_value';
  end if;
  if max_results is null or max_results not between 1 and 100 then
    raise exception 'max_results must be between 1 and 100' using errcode = 'invalid_parameter_value';
  end if;
  -- EXECUTE plans with the actual arguments, so each direction gets the plan that suits it.
  return query execute $query$
    with
    scope as (
      select r.* from public.role_postings r
      where case when $1 is not null then r.id = $1 else r.status = 'open' end
    ),
    wanted as (
      select rs.role_id, rs.skill_id, rs.required, (rs.weight * case when rs.required then 2 else 1 end)::float8 as weight
      from public.role_skills rs join scope on scope.id = rs.role_id
    ),
    totals as (
      select w.role_id, sum(w.weight) as total from wanted w group by w.role_id
    ),
    credit as (
      select w.role_id, es.executive_id, w.skill_id, w.weight, max(c.credit::float8 * (0.5 + es.level * 0.1::float8)) as credit
      from wanted w
      join private.skill_credit c on c.wanted_id = w.skill_id
      join public.executive_skills es on es.skill_id = c.held_id and ($2 is null or es.executive_id = $2)
      group by w.role_id, es.executive_id, w.skill_id, w.weight
    ),
    pairs as (
      select c.role_id, c.executive_id, sum(c.weight * c.credit) / min(t.total) as skills
      from credit c join totals t on t.role_id = c.role_id
      group by c.role_id, c.executive_id
      union all
      select scope.id, e.user_id, null::float8
      from scope join public.executive_profiles e on e.is_open and ($2 is null or e.user_id = $2)
      where not exists (select 1 from totals t where t.role_id = scope.id)
    ),
    signals as (
      select
        p.role_id, p.executive_id, p.skills,
        case when r.seniority is null or e.seniority is null then 0.5
             else greatest(0, 1 - 0.5 * abs(
               array_position('{manager,director,vp,c_level,board}'::public.seniority[], r.seniority)
               - array_position('{manager,director,vp,c_level,board}'::public.seniority[], e.seniority)))
        end as seniority,
        case when cardinality(r.industries) = 0 then 1
             else (select count(*) from unnest(r.industries) i where i = any (e.industries))::float8
                  / cardinality(r.industries)::float8
        end as industry,
        case when r.engagement_type = any (e.engagement_types) then 1 else 0 end as engagement,
        case when r.compensation_max is null or e.compensation_min is null
                  or r.compensation_currency <> e.compensation_currency
                  or r.compensation_unit <> e.compensation_unit then 0.5
             when e.compensation_min <= r.compensation_max then 1
             else greatest(0, 1 - (e.compensation_min - r.compensation_max)::float8 / nullif(r.compensation_max, 0)::float8)
        end as compensation,
        (case when r.start_date is null or e.available_from is null or e.available_from <= r.start_date then 1
              else greatest(0, 1 - (e.available_from - r.start_date) / 90.0::float8) end
         + case when r.hours_per_week is null or e.hours_per_week is null then 1
                else least(1, e.hours_per_week::float8 / r.hours_per_week) end) / 2 as availability,
        case when r.remote_policy = 'remote' then 1
             when r.location is null or e.location is null then 0.5
             when lower(e.location) = lower(r.location) then 1
             when r.remote_policy = 'hybrid' and e.remote_preference = 'remote' then 0.25
             else 0
        end as location,
        case when r.description_embedding is not null and e.bio_embedding is not null
             then greatest(0, 1 - (e.bio_embedding operator(extensions.<=>) r.description_embedding))::float8
        end as semantic
      from pairs p
      join scope r on r.id = p.role_id
      join public.executive_profiles e on e.user_id = p.executive_id and e.is_open
    ),
    scored as (
      select s.*,
        100 * (coalesce(w.skills * s.skills, 0) + w.seniority * s.seniority + w.industry * s.industry
               + w.engagement * s.engagement + w.compensation * s.compensation
               + w.availability * s.availability + w.location * s.location
               + coalesce(w.semantic * s.semantic, 0))
        / nullif(case when s.skills is null then 0 else w.skills end + w.seniority + w.industry + w.engagement
                 + w.compensation + w.availability + w.location
                 + case when s.semantic is null then 0 else w.semantic end, 0) as score
      from signals s
      cross join lateral (
        select coalesce(($4 ->> 'skills')::float8, 0) as skills,
               coalesce(($4 ->> 'seniority')::float8, 0) as seniority,
               coalesce(($4 ->> 'industry')::float8, 0) as industry,
               coalesce(($4 ->> 'engagement')::float8, 0) as engagement,
               coalesce(($4 ->> 'compensation')::float8, 0) as compensation,
               coalesce(($4 ->> 'availability')::float8, 0) as availability,
               coalesce(($4 ->> 'location')::float8, 0) as location,
               coalesce(($4 ->> 'semantic')::float8, 0) as semantic
      ) w
    ),
    top as (
      select * from scored order by score desc nulls last, executive_id, role_id limit $3
    )
    select top.role_id, top.executive_id, round(coalesce(top.score, 0)::numeric, 2),
      jsonb_build_object(
        'skills', case when top.skills is null then null else jsonb_build_object(
          'score', round(top.skills::numeric, 3),
          'matched_required', coalesce(jsonb_agg(k.slug order by k.slug) filter (where k.required and k.relation = 1), '[]'),
          'matched_nice_to_have', coalesce(jsonb_agg(k.slug order by k.slug) filter (where not k.required and k.relation = 1), '[]'),
          'related', coalesce(jsonb_agg(k.slug order by k.slug) filter (where k.relation < 1), '[]'),
          'missing_required', coalesce(jsonb_agg(k.slug order by k.slug) filter (where k.required and k.relation is null), '[]')
        ) end,
        'seniority', round(top.seniority::numeric, 3),
        'industry', round(top.industry::numeric, 3),
        'engagement', round(top.engagement::numeric, 3),
        'compensation', round(top.compensation::numeric, 3),
        'availability', round(top.availability::numeric, 3),
        'location', round(top.location::numeric, 3),
        'semantic', round(top.semantic::numeric, 3)
      )
    from top
    left join lateral (
      -- Per wanted skill of this role: how the executive covers it (1 exact, less through the ontology).
      select s.slug, rs.required,
             (select max(c.credit) from private.skill_credit c
              join public.executive_skills es on es.skill_id = c.held_id and es.executive_id = top.executive_id
              where c.wanted_id = rs.skill_id) as relation
      from public.role_skills rs join public.skills s on s.id = rs.skill_id
      where rs.role_id = top.role_id
    ) k on true
    group by top.role_id, top.executive_id, top.score, top.skills, top.seniority, top.industry, top.engagement,
             top.compensation, top.availability, top.location, top.semantic
    order by top.score desc nulls last, top.executive_id, top.role_id
  $query$ using for_role, for_executive, max_results, weights;
end;
$function$;
comment on function private.match(uuid, uuid, integer, jsonb) is
  'Top pairs with explainable breakdowns; called by the matching function with its weights.';
revoke execute on function private.match(uuid, uuid, integer, jsonb) from public;

-- Runs a match. A role's list is kept in public.matches (replacing the last one), where the company reads
-- it later. An executive's own list is only returned: stored, it would show their profile to the companies
-- of every role on it (matches are what lets an employer see an executive) without their asking for that.
create function private.refresh_matches(for_role uuid, for_executive uuid, max_results integer, weights jsonb)
returns setof public.matches
language plpgsql
security definer
set search_path = ''
as $$
begin
  if for_role is null then
    return query
      select m.role_id, m.executive_id, m.score::numeric(5, 2), m.breakdown, now()
      from private.match(null, for_executive, max_results, weights) m;
    return;
  end if;
  return query
    with
    fresh as (
      select m.role_id, m.executive_id, m.score, m.breakdown, now() as computed_at
      from private.match(for_role, null, max_results, weights) m
    ),
    dropped as (
      delete from public.matches pm
      where pm.role_id = for_role and not exists (select 1 from fresh f where f.executive_id = pm.executive_id)
    ),
    kept as (
      insert into public.matches (role_id, executive_id, score, breakdown, computed_at)
      select f.role_id, f.executive_id, f.score, f.breakdown, f.computed_at from fresh f
      on conflict on constraint matches_pkey do update
        set score = excluded.score, breakdown = excluded.breakdown, computed_at = excluded.computed_at
      returning *
    )
    select * from kept k order by k.score desc, k.executive_id, k.role_id;
end;
$$;
revoke execute on function private.refresh_matches(uuid, uuid, integer, jsonb) from public;
grant execute on function private.refresh_matches(uuid, uuid, integer, jsonb) to service_role;
