"""Interview platform: demo requests, interviewers and their hours, booking without double booking,
self-scheduling, and the emails (with calendar invitations) and reminders that go with them.

Everything a frontend does is PostgREST's, under supabase/policies/interviews.sql, and the rules that must
hold under concurrency live in Postgres functions (book_interview, reschedule_interview, cancel_interview,
book_invitation). What needs the worker is here: the reminder job and the email templates.
"""

from pathlib import Path

from litestar.types import ControllerRouterHandler

from rpc.interviews.tasks import tasks

route_handlers: list[ControllerRouterHandler] = []
email_templates = Path(__file__).parent / "templates" / "email"

__all__ = ["email_templates", "route_handlers", "tasks"]
