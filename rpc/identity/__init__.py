"""Identity: `whoami`, the signed-in caller as every product sees them, and the company invitation email.
Profiles, platform roles, companies and invitations are PostgREST's, under supabase/policies/identity.sql
and companies.sql."""

from pathlib import Path

import procrastinate

from rpc.identity.handlers import IdentityController

route_handlers = [IdentityController]
tasks = procrastinate.Blueprint()
email_templates = Path(__file__).parent / "templates" / "email"

__all__ = ["email_templates", "route_handlers", "tasks"]
