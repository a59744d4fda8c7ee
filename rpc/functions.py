"""The `/functions/v1/<name>` router, where supabase-js and supabase-py invoke functions, and its dependencies."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from litestar import Request, Router
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.types import ControllerRouterHandler

from rpc.auth import Caller
from rpc.db import Database, Session
from rpc.errors import ApiError


async def provide_caller(request: Request[Any, Any, Any]) -> Caller:
    return await request.app.state.verifier.verify(request.headers.get("authorization"))


async def provide_user(caller: NamedDependency[Caller]) -> Caller:
    if caller.role != "authenticated":
        raise ApiError(403, "insufficient_role", "this function needs a signed-in user's access token")
    return caller


def provide_db(state: State) -> Database:
    return state.db


def provide_session(
    request: Request[Any, Any, Any], caller: NamedDependency[Caller], db: NamedDependency[Database]
) -> Session:
    return Session(db, caller, request.method, request.url.path)


# Resolved only where a handler asks for them (`/health` takes `db` only).
DEPENDENCIES = {
    "caller": Provide(provide_caller),
    "user": Provide(provide_user),
    "db": Provide(provide_db, sync_to_thread=False),
    "session": Provide(provide_session, sync_to_thread=False),
}


def functions_router(handlers: Sequence[ControllerRouterHandler]) -> Router:
    return Router(path="/functions/v1", route_handlers=list(handlers))
