"""Executive matching: the `matching` functions, their background tasks and the introduction emails.

The data plane (profiles, roles, skills, introductions, feedback) is PostgREST's, under the policies in
supabase/policies/matching.sql.
"""

from pathlib import Path

from rpc.matching.handlers import MatchingController
from rpc.matching.tasks import tasks

route_handlers = [MatchingController]
email_templates = Path(__file__).parent / "templates" / "email"

__all__ = ["email_templates", "route_handlers", "tasks"]
