"""Talentbase edge-style functions: what needs a secret or orchestration, beside Supabase."""
