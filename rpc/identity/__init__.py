"""Identity: `whoami`, the signed-in caller as every product sees them. Profiles, platform roles and
companies are PostgREST's, under supabase/policies/identity.sql and companies.sql."""

import procrastinate

from rpc.identity.handlers import IdentityController

route_handlers = [IdentityController]
tasks = procrastinate.Blueprint()
email_templates = None

__all__ = ["email_templates", "route_handlers", "tasks"]
