"""The job search assistant's background tasks: each module of the package registers its own here."""

import procrastinate

tasks = procrastinate.Blueprint()
