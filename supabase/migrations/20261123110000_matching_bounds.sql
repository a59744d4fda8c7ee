-- =====================================================================================================
-- Matching a role scores exactly only the executives who could make its list
-- =====================================================================================================
-- Scores are what 20261123090200_matching_scores defines, except that scores equal to 9 places are now
-- ties (broken by executive id) instead of whatever the last bits of a float sum said. What changes is
-- which executives a role's match computes them for. Before, every executive sharing a skill (or a
-- relative) with the role: about 57,000 of 100,000 for a typical role, 400 ms. Now:
--
-- 1. Each open executive has a feature vector (private.executive_features, kept current by triggers) and
--    each role a weight vector built when it is matched, such that their inner product plus a constant is
--    at least the executive's weighted sum of the signals that are linear in the executive: skills (exact:
--    the same ontology credit as the score), seniority and engagement (exact), industry and location
--    (terms hashed to dimensions, where a collision can only add; hybrid roles count a remote preference
--    generously). pgvector computes it in C, in one scan.
-- 2. Compensation and availability count at their most, and semantic similarity as 1, so the inner product
--    gives an upper bound of each executive's score.
-- 3. The executives with the best bounds are scored exactly, more of them as needed, until the best bound
--    left out cannot reach the last score of the list; if the probe runs out first, every executive whose
--    bound reaches that score is scored. Either way the result is the list a full scan gives
--    (tests/test_matching_bounds.py compares them). 100,000 executives: about 40 ms.
--
-- Roles for an executive (the other direction) score every open role, as before: there are far fewer.

-- Dimensions of the vectors (sparsevec, 2^21): skills by id (1 .. 2^20), then fixed slots for seniority,
-- engagement and location, then two hashed ranges of 2^18 for industry and location terms.
create function private.skill_dim(skill_id bigint)
returns integer
language sql
immutable
parallel safe
set search_path = ''
as $$ select 1 + (skill_id % 1048576)::integer $$;

create function private.term_dim(range_start integer, term text)
returns integer
language sql
immutable
parallel safe
set search_path = ''
as $$ select range_start + (('x' || left(md5(term), 8))::bit(32)::integer & 262143) $$;
comment on function private.term_dim(integer, text) is
  'A free-text term''s dimension in a hashed range (md5: the same on every server and version).';
revoke execute on function private.skill_dim(bigint), private.term_dim(integer, text) from public;

create table private.executive_features (
  executive_id uuid primary key references public.executive_profiles (user_id) on delete cascade,
  features extensions.sparsevec not null
);
comment on table private.executive_features is
  'Open executives'' matching features: ontology skill credits, seniority, engagement, industry, location.';
alter table private.executive_features enable row level security;  -- no policies: only its owner reads it
revoke all on private.executive_features from public, anon, authenticated, service_role;

-- Recomputes the features of the given executives: open ones get a row, others lose theirs. A migration
-- that changes what a held skill earns (private.skill_credit) or how a linear signal is computed must
-- change this function and the role's side in private.match together, then refresh every executive.
create function private.refresh_executive_features(executives uuid[])
returns void
language sql
security definer
set search_path = ''
as $$
  with
  open_profiles as (
    select e.* from public.executive_profiles e where e.user_id = any (executives) and e.is_open
  ),
  dims as (
    select es.executive_id as id, private.skill_dim(c.wanted_id) as dim,
           c.credit::float8 * (0.5 + es.level * 0.1::float8) as value
    from public.executive_skills es
    join private.skill_credit c on c.held_id = es.skill_id
    where es.executive_id in (select user_id from open_profiles)
    union all
    select e.user_id, 1048576 + coalesce(
      array_position('{manager,director,vp,c_level,board}'::public.seniority[], e.seniority), 6), 1
    from open_profiles e
    union all
    select e.user_id, 1048590 + array_position(
      '{fractional,interim,full_time,advisory}'::public.engagement_type[], t), 1
    from open_profiles e cross join unnest(e.engagement_types) t
    union all
    select e.user_id, private.term_dim(1048704, i), 1 from open_profiles e cross join unnest(e.industries) i
    union all
    select e.user_id,
           case when e.location is null then 1048600 else private.term_dim(1310848, lower(e.location)) end, 1
    from open_profiles e
    union all
    select e.user_id, 1048601, 1 from open_profiles e where e.remote_preference = 'remote'
  ),
  vectors as (
    select d.id,
           ('{' || string_agg(d.dim || ':' || d.value, ',' order by d.dim) || '}/2097152')::extensions.sparsevec
             as features
    from (select id, dim, max(value) as value from dims group by id, dim) d
    group by d.id
  ),
  closed as (
    delete from private.executive_features f
    where f.executive_id = any (executives) and f.executive_id not in (select id from vectors)
  )
  insert into private.executive_features (executive_id, features)
  select v.id, v.features from vectors v
  on conflict (executive_id) do update set features = excluded.features;
$$;
revoke execute on function private.refresh_executive_features(uuid[]) from public;

-- Statement-level triggers: one refresh per statement, so bulk loads stay bulk. A trigger with transition
-- tables serves one event, hence one per event.
create function private.executive_profiles_features_changed()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  if tg_op = 'INSERT' then
    perform private.refresh_executive_features(array(select n.user_id from new_rows n));
  else
    -- Only changes to what features are made of: not a bio, its embedding (the worker's) or a headline.
    perform private.refresh_executive_features(array(
      select n.user_id
      from new_rows n join old_rows o on o.user_id = n.user_id
      where (n.is_open, n.seniority, n.industries, n.engagement_types, n.location, n.remote_preference)
        is distinct from (o.is_open, o.seniority, o.industries, o.engagement_types, o.location, o.remote_preference)
    ));
  end if;
  return null;
end;
$$;
revoke execute on function private.executive_profiles_features_changed() from public;

create function private.executive_skills_features_changed()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  if tg_op = 'INSERT' then
    perform private.refresh_executive_features(array(select distinct n.executive_id from new_rows n));
  elsif tg_op = 'DELETE' then
    perform private.refresh_executive_features(array(select distinct o.executive_id from old_rows o));
  else
    perform private.refresh_executive_features(array(
      select n.executive_id from new_rows n union select o.executive_id from old_rows o
    ));
  end if;
  return null;
end;
$$;
revoke execute on function private.executive_skills_features_changed() from public;

-- What a held skill earns involves the skill itself and its parent: a new skill, or a skill moved to
-- another parent, changes the features of whoever holds the skill or either parent.
create function private.skills_features_changed()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  affected bigint[];
begin
  if tg_op = 'INSERT' then
    affected := array(select n.id from new_rows n union select n.parent_id from new_rows n);
  else
    affected := array(
      select x.skill_id
      from new_rows n
      join old_rows o on o.id = n.id
      cross join lateral (values (n.id), (n.parent_id), (o.parent_id)) x (skill_id)
      where n.parent_id is distinct from o.parent_id
    );
  end if;
  perform private.refresh_executive_features(array(
    select distinct es.executive_id from public.executive_skills es where es.skill_id = any (affected)
  ));
  return null;
end;
$$;
revoke execute on function private.skills_features_changed() from public;

create trigger executive_features_on_insert
  after insert on public.executive_profiles referencing new table as new_rows
  for each statement execute function private.executive_profiles_features_changed();
create trigger executive_features_on_update
  after update on public.executive_profiles referencing old table as old_rows new table as new_rows
  for each statement execute function private.executive_profiles_features_changed();
create trigger executive_features_on_insert
  after insert on public.executive_skills referencing new table as new_rows
  for each statement execute function private.executive_skills_features_changed();
create trigger executive_features_on_update
  after update on public.executive_skills referencing old table as old_rows new table as new_rows
  for each statement execute function private.executive_skills_features_changed();
create trigger executive_features_on_delete
  after delete on public.executive_skills referencing old table as old_rows
  for each statement execute function private.executive_skills_features_changed();
create trigger executive_features_on_insert
  after insert on public.skills referencing new table as new_rows
  for each statement execute function private.skills_features_changed();
create trigger executive_features_on_update
  after update on public.skills referencing old table as old_rows new table as new_rows
  for each statement execute function private.skills_features_changed();

select private.refresh_executive_features(array(select e.user_id from public.executive_profiles e));

-- The scoring query of 20261123090200_matching_scores but for two things: `candidates`, when given, are
-- the only executives scored; and scores equal to 9 places count as ties.
create function private.score_pairs(
  for_role uuid,
  for_executive uuid,
  candidates uuid[],
  max_results integer,
  weights jsonb
)
returns table (role_id uuid, executive_id uuid, score numeric, breakdown jsonb)
language plpgsql
stable
set search_path = ''
as $function$
begin
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
        and ($5 is null or es.executive_id = any ($5))
      group by w.role_id, es.executive_id, w.skill_id, w.weight
    ),
    pairs as (
      select c.role_id, c.executive_id, sum(c.weight * c.credit) / min(t.total) as skills
      from credit c join totals t on t.role_id = c.role_id
      group by c.role_id, c.executive_id
      union all
      select scope.id, e.user_id, null::float8
      from scope join public.executive_profiles e on e.is_open and ($2 is null or e.user_id = $2)
        and ($5 is null or e.user_id = any ($5))
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
      -- Scores equal to 9 places are ties (float sums differ in the last bits with the order of summing,
      -- which the plan decides), broken by executive and role id.
      select * from scored order by round(score::numeric, 9) desc nulls last, executive_id, role_id limit $3
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
    order by round(top.score::numeric, 9) desc nulls last, top.executive_id, top.role_id
  $query$ using for_role, for_executive, max_results, weights, candidates;
end;
$function$;
revoke execute on function private.score_pairs(uuid, uuid, uuid[], integer, jsonb) from public;

-- Executives with their bounds for a role, best first: the `how_many` best, or all that reach `at_least`.
-- A SQL function with a SET clause is not inlined, so its scan may run in parallel; inside plpgsql's
-- SELECT INTO it could not.
create function private.role_bounds(
  role_vector extensions.sparsevec,
  constant_part float8,
  how_many integer,
  at_least float8
)
returns table (executive_id uuid, bound float8)
language sql
stable
set search_path = ''
as $$
  -- The inner product is computed once per executive (a sort key and an output column would be two).
  select d.executive_id, constant_part - d.distance
  from (
    select f.executive_id, f.features operator(extensions.<#>) role_vector as distance
    from private.executive_features f
  ) d
  where at_least is null or constant_part - d.distance >= at_least
  order by d.distance, d.executive_id
  limit how_many;
$$;
revoke execute on function private.role_bounds(extensions.sparsevec, float8, integer, float8) from public;

create type private.scored_pair as (role_id uuid, executive_id uuid, score numeric, breakdown jsonb);

create or replace function private.match(
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
declare
  w_skills float8 := coalesce((weights ->> 'skills')::float8, 0);
  w_seniority float8 := coalesce((weights ->> 'seniority')::float8, 0);
  w_industry float8 := coalesce((weights ->> 'industry')::float8, 0);
  w_engagement float8 := coalesce((weights ->> 'engagement')::float8, 0);
  w_compensation float8 := coalesce((weights ->> 'compensation')::float8, 0);
  w_availability float8 := coalesce((weights ->> 'availability')::float8, 0);
  w_location float8 := coalesce((weights ->> 'location')::float8, 0);
  w_semantic float8 := coalesce((weights ->> 'semantic')::float8, 0);
  -- How many executives the scan ranks by bound; the first 6 per place in the list are scored exactly
  -- first (measured on 100,000 executives: usually enough, and fewer passes than starting smaller).
  probe_size integer := greatest(200, 10 * max_results);
  -- pgvector sums in single precision: bounds are widened by this much.
  slack constant float8 := 0.001;
  role public.role_postings;
  total_skill_weight float8;
  role_vector extensions.sparsevec;
  constant_part float8;
  denominator float8;
  probed uuid[];
  probed_bounds float8[];
  scored integer;
  answer private.scored_pair[];
  last_score float8;
  needed float8;
begin
  if (for_role is null) = (for_executive is null) then
    raise exception 'give a role or an executive, not both' using errcode = 'invalid_parameter_value';
  end if;
  if max_results is null or max_results not between 1 and 100 then
    raise exception 'max_results must be between 1 and 100' using errcode = 'invalid_parameter_value';
  end if;
  if for_executive is not null then
    return query select * from private.score_pairs(null, for_executive, null, max_results, weights);
    return;
  end if;
  select * into role from public.role_postings r where r.id = for_role;
  if not found then
    return;
  end if;
  select sum(rs.weight * case when rs.required then 2 else 1 end)::float8 into total_skill_weight
  from public.role_skills rs where rs.role_id = for_role;

  -- The role's side of the bound: weights on the dimensions that earn each linear signal.
  select ('{' || coalesce(string_agg(d.dim || ':' || d.value, ',' order by d.dim), '') || '}/2097152')
           ::extensions.sparsevec
  into role_vector
  from (
    select v.dim, sum(v.value) as value
    from (
      select private.skill_dim(rs.skill_id) as dim,
             w_skills * (rs.weight * case when rs.required then 2 else 1 end) / nullif(total_skill_weight, 0)
               as value
      from public.role_skills rs where rs.role_id = for_role
      union all
      select 1048576 + j, w_seniority * case
        when role.seniority is null or j = 6 then 0.5
        else greatest(0, 1 - 0.5 * abs(
          array_position('{manager,director,vp,c_level,board}'::public.seniority[], role.seniority) - j))
      end
      from generate_series(1, 6) j
      union all
      select 1048590 + array_position('{fractional,interim,full_time,advisory}'::public.engagement_type[],
                                      role.engagement_type), w_engagement
      where role.engagement_type is not null
      union all
      select private.term_dim(1048704, i), w_industry / nullif(cardinality(role.industries), 0)
      from unnest(role.industries) i
      union all
      select private.term_dim(1310848, lower(role.location)), w_location
      where role.remote_policy is distinct from 'remote' and role.location is not null
      union all
      select 1048600, 0.5 * w_location
      where role.remote_policy is distinct from 'remote' and role.location is not null
      union all
      select 1048601, 0.25 * w_location
      where role.remote_policy = 'hybrid' and role.location is not null
    ) v
    group by v.dim
  ) d
  where d.value > 0;
  constant_part := w_compensation + w_availability  -- at most
    + case when cardinality(role.industries) = 0 then w_industry else 0 end
    + case when role.remote_policy = 'remote' then w_location
           when role.location is null then 0.5 * w_location else 0 end;
  denominator := case when total_skill_weight is null then 0 else w_skills end
    + w_seniority + w_industry + w_engagement + w_compensation + w_availability + w_location;
  if denominator <= 0 then
    return query select * from private.score_pairs(for_role, null, null, max_results, weights);
    return;
  end if;

  -- One scan for the executives with the best bounds; then exact scores for more and more of them,
  -- until the best bound left out cannot reach the last score of the list.
  select array_agg(b.executive_id order by b.bound desc, b.executive_id),
         array_agg(b.bound order by b.bound desc, b.executive_id)
  into probed, probed_bounds
  from private.role_bounds(role_vector, constant_part, probe_size, null) b;
  if probed is null then
    return;  -- nobody is open
  end if;
  scored := least(cardinality(probed), greatest(6 * max_results, 60));
  loop
    select coalesce(
      array_agg(row(p.role_id, p.executive_id, p.score, p.breakdown)::private.scored_pair order by p.n), '{}'
    )
    into answer
    from private.score_pairs(for_role, null, probed[1:scored], max_results, weights)
      with ordinality p (role_id, executive_id, score, breakdown, n);
    if cardinality(answer) = max_results then
      -- Scores come rounded to 2 places: the list's true last score is at least this.
      last_score := answer[max_results].score - 0.01;
      -- The least bound that can still reach it, without a semantic signal or with one.
      needed := least(
        last_score / 100 * denominator,
        case when role.description_embedding is not null
             then last_score / 100 * (denominator + w_semantic) - w_semantic
             else 'infinity' end
      ) - slack;
    end if;
    if scored = cardinality(probed) and cardinality(probed) < probe_size then
      exit;  -- everybody has been scored
    end if;
    -- Every executive not scored yet has at most the bound after the last scored one.
    if needed is not null and probed_bounds[least(scored + 1, probe_size)] < needed then
      exit;
    end if;
    if scored = cardinality(probed) then
      -- Rare: the probe was not enough. Score every executive whose bound reaches the list (all of them,
      -- when the probe found fewer candidates than asked for).
      return query select * from private.score_pairs(
        for_role, null,
        array(select b.executive_id from private.role_bounds(role_vector, constant_part, null, needed) b),
        max_results, weights);
      return;
    end if;
    scored := least(cardinality(probed), scored * 4);
  end loop;
  return query select * from unnest(answer);
end;
$function$;
