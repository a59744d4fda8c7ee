"""Job search assistant: resumes uploaded and read, job listings searched, skills found by meaning, and a
streaming careers chat.

The data plane (resumes, listings, saved searches, conversations) is PostgREST's, under
supabase/policies/jobsearch_*.sql. What needs the worker or a secret is here: resume processing, skill
embeddings and search by meaning, and the chat's streaming answers.
"""

from rpc.jobsearch import chat, resumes, skills
from rpc.jobsearch.tasks import tasks

route_handlers = [*resumes.route_handlers, *skills.route_handlers, *chat.route_handlers]
email_templates = None

__all__ = ["email_templates", "route_handlers", "tasks"]
