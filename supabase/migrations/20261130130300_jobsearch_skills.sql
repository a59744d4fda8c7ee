-- =====================================================================================================
-- Job search: skills by meaning
-- =====================================================================================================
-- Free text ("k8s", "kuber", "raising capital", "deep learning with torch") to the closest canonical
-- skills of the ontology (public.skills and public.skill_aliases, from the matching migrations). Two ways:
--   public.search_skills(query, max_results): by name, slug and alias (exact, then prefix) and by full
--     text, ranked; anyone may call it through PostgREST (`rpc('search_skills', {query})`), as anyone may
--     read the ontology it searches.
--   POST /functions/v1/skills/search (rpc/jobsearch/skills.py): the same and, when an embeddings provider
--     is configured, by vector similarity too (private.search_skills_by_meaning), which needs the query's
--     embedding and so a secret.
-- The vectors live here, in private.skill_embeddings (pgvector, an HNSW index for cosine distance), written
-- by the worker's `jobsearch:embed_skills`, which runs every minute and embeds what is missing or stale
-- (changed text, another model). No trigger queues it: a queued job's queueing lock would make every
-- transaction that edits the ontology wait for any other still open, for changes an admin makes rarely.

-- Indexes for the searches below: full text over names and aliases (the same expressions as the
-- function's, so the planner matches them) and prefixes of the normalised names and aliases.
create index skills_name_fts_idx on public.skills using gin (to_tsvector('english', name));
create index skill_aliases_alias_fts_idx on public.skill_aliases using gin (to_tsvector('english', alias));
create index skills_normalized_name_prefix_idx
  on public.skills (lower(regexp_replace(btrim(name), '\s+', ' ', 'g')) text_pattern_ops);
create index skill_aliases_alias_prefix_idx on public.skill_aliases (alias text_pattern_ops);

-- Free text to ranked skills. Each skill keeps its best way of matching, scored so that the ways never
-- mix: an exact name, slug or alias 1; a name or alias the text begins 0.5 to 0.9 (the more of it the
-- text already says, the higher); full text below 0.5 (ts_rank, names weighing more than aliases). Full
-- text takes any word of the query (stemmed, stop words dropped), so a sentence finds each skill it
-- names, and a skill that has more of its words ranks higher. The normal form is spelled out as in
-- resolve_skills: anon has no access to schema private. plpgsql: a connection keeps its plans, and each
-- condition here can use its index in a generic plan (a prefix as a range of text_pattern_ops, where
-- `like $1` would need the value to plan with: 1.5 ms of planning at every call).
create function public.search_skills(query text, max_results integer default 10)
returns table (
  skill_id bigint,
  slug text,
  name text,
  category public.skill_category,
  matched text,
  matched_by text,
  score double precision
)
language plpgsql
stable
set search_path = ''
as $$
#variable_conflict use_column
declare
  normal text := lower(regexp_replace(btrim(query), '\s+', ' ', 'g'));
  -- Above every text that begins with `normal` (U+10FFFF, the last code point, sorts last byte-wise).
  beyond text := normal || chr(1114111);
  words tsquery;
begin
  if normal is null or normal = '' or char_length(query) > 200 then
    raise exception 'the query must have 1 to 200 characters' using errcode = '22023';
  end if;
  if max_results is null or max_results not between 1 and 50 then
    raise exception 'max_results must be between 1 and 50' using errcode = '22023';
  end if;
  -- The query's lexemes joined by OR, each quoted as tsquery input wants (no reparsing, no notice about
  -- stop words); null when it has none.
  select string_agg('''' || replace(replace(l.lexeme, '\', '\\'), '''', '''''') || '''', ' | ')::tsquery
    into words
    from unnest(tsvector_to_array(to_tsvector('english', query))) as l (lexeme);
  return query
    with hits as (
      select k.id, k.name as matched,
             case when t.normal_name = normal then 'exact' else 'prefix' end as matched_by,
             case when t.normal_name = normal then 1.0
                  else 0.5 + 0.4 * char_length(normal) / char_length(t.normal_name) end as score
      from public.skills k
      cross join lateral (select lower(regexp_replace(btrim(k.name), '\s+', ' ', 'g')) as normal_name) t
      where t.normal_name ~>=~ normal and t.normal_name ~<~ beyond
      union all
      select k.id, k.slug, 'exact', 1.0 from public.skills k where k.slug = normal
      union all
      select a.skill_id, a.alias,
             case when a.alias = normal then 'exact' else 'prefix' end,
             case when a.alias = normal then 1.0 else 0.5 + 0.4 * char_length(normal) / char_length(a.alias) end
      from public.skill_aliases a
      where a.alias ~>=~ normal and a.alias ~<~ beyond
      union all
      select k.id, k.name, 'text', 0.5 * ts_rank(setweight(to_tsvector('english', k.name), 'A'), words, 32)
      from public.skills k
      where to_tsvector('english', k.name) @@ words
      union all
      select a.skill_id, a.alias, 'text', 0.5 * ts_rank(setweight(to_tsvector('english', a.alias), 'B'), words, 32)
      from public.skill_aliases a
      where to_tsvector('english', a.alias) @@ words
    ),
    best as (
      select distinct on (h.id) h.id, h.matched, h.matched_by, h.score
      from hits h
      order by h.id, h.score desc, h.matched
    )
    select k.id, k.slug, k.name, k.category, b.matched, b.matched_by, b.score::double precision
    from best b
    join public.skills k on k.id = b.id
    order by b.score desc, k.name, k.id
    limit max_results;
end;
$$;
comment on function public.search_skills(text, integer) is
  'Free text to the closest canonical skills by name, slug and alias (exact 1, prefix 0.5-0.9) and full text (below 0.5), best first; 1 to 50 of them (10 unless told).';
revoke execute on function public.search_skills(text, integer) from public, anon;
grant execute on function public.search_skills(text, integer) to anon, authenticated, service_role;

-- Skill embeddings ---------------------------------------------------------------------------------

-- One vector per skill, of what private.skill_embedding_source says about it, by one model: a skill
-- whose source or model differs from the current ones is due again (and, meanwhile, found by the rest).
-- Not for browsers: only the functions' service role reads it, through search_skills_by_meaning.
create table private.skill_embeddings (
  skill_id bigint primary key references public.skills (id) on delete cascade,
  model text not null,
  source text not null,
  embedding extensions.vector(1536) not null,
  embedded_at timestamptz not null default now()
);
comment on table private.skill_embeddings is
  'Embeddings of the skills ontology for search by meaning, written by the worker (jobsearch:embed_skills).';
create index skill_embeddings_embedding_idx on private.skill_embeddings
  using hnsw (embedding extensions.vector_cosine_ops);
-- RLS on and no policies: its owner (the worker) writes, service_role (which bypasses RLS) reads.
alter table private.skill_embeddings enable row level security;
revoke all on private.skill_embeddings from public, anon, authenticated, service_role;
grant select on private.skill_embeddings to service_role;

-- What a skill's embedding is made of: its name, the other names it goes by, its umbrella skill and its
-- category, so "Go" reads as a programming language and "Terraform" as cloud infrastructure.
create function private.skill_embedding_source(skill_id bigint)
returns text
language sql
stable
set search_path = ''
as $$
  select concat_ws('. ',
    k.name,
    'Also called ' || (select string_agg(a.alias, ', ' order by a.alias) from public.skill_aliases a
                       where a.skill_id = k.id),
    'Part of ' || p.name,
    'Category: ' || replace(k.category::text, '_', ' '))
  from public.skills k
  left join public.skills p on p.id = k.parent_id
  where k.id = skill_embedding_source.skill_id;
$$;
revoke execute on function private.skill_embedding_source(bigint) from public;

-- Skills whose embedding is missing or stale for `embedding_model`, with the text to embed, a batch at a
-- time (the worker's).
create function private.skills_to_embed(embedding_model text, batch integer)
returns table (skill_id bigint, source text)
language sql
stable
set search_path = ''
as $$
  select k.id, t.source
  from public.skills k
  cross join lateral (select private.skill_embedding_source(k.id) as source) t
  left join private.skill_embeddings e on e.skill_id = k.id
  where e.skill_id is null or e.model <> embedding_model or e.source <> t.source
  order by k.id
  limit batch;
$$;
revoke execute on function private.skills_to_embed(text, integer) from public;

-- Search by meaning ---------------------------------------------------------------------------------

-- search_skills' ranking merged with the skills nearest to the query's embedding (cosine, through the
-- HNSW index; only vectors of the query's model). An exact name, slug or alias is what the user meant and
-- stays first; below, reciprocal rank fusion (each list adds 1 / (60 + position), Cormack et al., 2009)
-- merges the two lists by position alone, so ts_rank's scale and cosine distances need no calibration, and
-- a skill both lists found rises above one only one found. Ties: the text's order, then the name.
-- A vector at a right angle (or more) to the query's shares nothing with it, whatever the model: not a hit.
-- ef_search 100: HNSW returns at most ef_search rows, and a search asks for up to 50.
create function private.search_skills_by_meaning(
  query text, query_embedding extensions.vector, embedding_model text, max_results integer default 10
)
returns table (
  skill_id bigint,
  slug text,
  name text,
  category public.skill_category,
  matched text,
  matched_by text,
  score double precision,
  similarity double precision
)
language sql
stable
set search_path = ''
set hnsw.ef_search = 100
as $$
  with lexical as (
    select l.skill_id, l.matched, l.matched_by, l.score, l.position
    from public.search_skills(query, max_results)
      with ordinality as l (skill_id, slug, name, category, matched, matched_by, score, position)
  ),
  semantic as (
    select n.skill_id, 1 - n.distance as similarity, row_number() over (order by n.distance) as position
    from (
      select e.skill_id, e.embedding operator(extensions.<=>) query_embedding as distance
      from private.skill_embeddings e
      where e.model = embedding_model
      order by e.embedding operator(extensions.<=>) query_embedding
      limit max_results
    ) n
    where n.distance < 1
  )
  select k.id, k.slug, k.name, k.category, l.matched, coalesce(l.matched_by, 'vector'), l.score, v.similarity
  from lexical l
  full join semantic v on v.skill_id = l.skill_id
  join public.skills k on k.id = coalesce(l.skill_id, v.skill_id)
  order by coalesce(l.matched_by = 'exact', false) desc,
           coalesce(1.0 / (60 + l.position), 0) + coalesce(1.0 / (60 + v.position), 0) desc,
           l.position nulls last, k.name
  limit max_results;
$$;
revoke execute on function private.search_skills_by_meaning(text, extensions.vector, text, integer) from public;
grant execute on function private.search_skills_by_meaning(text, extensions.vector, text, integer)
  to service_role;
