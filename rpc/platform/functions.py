"""The `/functions/v1/<name>` router, where supabase-js and supabase-py invoke functions, and its dependencies.

Handlers ask for one dependency, `session` (any verified caller: anon key, user, service role) or
`user_session` (a signed-in user), each resolved from the request alone, or one built after it (the chat's
`assistant`): Litestar resolves several dependencies of one handler concurrently in a task group
(litestar#4563), which measurably costs more than it saves here (about 0.4 ms a request). What else a
handler needs it takes from the app's `state` (`provide_ai`) and its capability's settings.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from litestar import Request, Router
from litestar.datastructures import State
from litestar.di import Provide
from litestar.types import ControllerRouterHandler

from rpc.platform.ai import AI
from rpc.platform.auth import gateway_authorization
from rpc.platform.db import Database, Session
from rpc.platform.errors import ApiError

# Patterns for request strings that reach Postgres, whose text cannot hold a NUL (the statement would
# fail: a 500 instead of the client's 422). Both linear: no nested repetition.
NO_NUL = r"\A[^\x00]*\Z"
# The same, and not blank.
SOME_TEXT = r"\A(?=\s*[^\s\x00])[^\x00]*\Z"


async def provide_session(request: Request[Any, Any, Any]) -> Session:
    """The verified caller's session, counted against their rate limit (a refused token against the
    client's address, so guessing tokens is limited too)."""
    state = request.app.state
    headers = request.headers
    try:
        caller = await state.verifier.verify(
            gateway_authorization(headers.get("authorization"), headers.get("apikey"))
        )
    except ApiError:
        state.limiter.check(None, request.scope)
        raise
    state.limiter.check(caller, request.scope)
    return Session(state.db, caller, request.method, request.scope["path"])


async def provide_user_session(request: Request[Any, Any, Any]) -> Session:
    session = await provide_session(request)
    if session.caller.role != "authenticated":
        raise ApiError(403, "insufficient_role", "this function needs a signed-in user's access token")
    return session


def provide_db(state: State) -> Database:
    return state.db


def provide_ai(state: State) -> AI:
    return state.ai


# Resolved only where a handler asks for them (`/health` takes `db` only).
DEPENDENCIES = {
    "db": Provide(provide_db, sync_to_thread=False),
    "session": Provide(provide_session),
    "user_session": Provide(provide_user_session),
}


def functions_router(handlers: Sequence[ControllerRouterHandler]) -> Router:
    return Router(path="/functions/v1", route_handlers=list(handlers))
