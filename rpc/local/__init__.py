"""The local stack only (`make run`, tests): the embedded PostgreSQL in Supabase's shape, PostgREST behind
/rest/v1, dev tokens. Never imported on the production path."""
