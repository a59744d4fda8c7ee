"""What runs in production and knows no capability: settings, auth, the database as the caller, errors,
HTTP plumbing, the /functions/v1 router, the queue, email, AI, migrations and the CLI."""
