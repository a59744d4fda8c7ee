-- =====================================================================================================
-- Extensions
-- =====================================================================================================
-- The extensions our SQL uses, created as Supabase documents: in schema `extensions`, by `postgres`,
-- which may create them without being a superuser (supautils' privileged extensions on Supabase; the
-- embedded cluster marks the same ones trusted). A new project has none of them, so this runs before the
-- first migration that needs one. `if not exists`: a project may have enabled one from the dashboard.

-- pgvector: embeddings (`vector`) and matching's feature vectors (`sparsevec`).
create extension if not exists vector with schema extensions;
