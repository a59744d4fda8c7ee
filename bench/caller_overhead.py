"""What the caller contract costs: our `whoami` function against a bare handler doing the same read, and
against real PostgREST serving the same function to the same token.

ours:      the real app (token verification, request context, rate limiter, CORS, one as-caller round
           trip under RLS) serving GET /functions/v1/whoami.
bare:      a Litestar handler running the same SQL on a raw pooled connection logged in as `postgres`,
           the user id taken from a header: no token, no role, no RLS, no middleware.
postgrest: the PostgREST binary the local stack runs (as `authenticator`, the same JWT secret), serving
           GET /rpc/whoami: `public.whoami()` under the same RLS, as a frontend's `rpc('whoami')` reaches it.

The Python servers run under uvicorn with one worker, all on an embedded cluster of their own; `wrk` loads
them from another process, alternating several rounds (this machine's run-to-run noise is 15-35%). Prints
`caller_overhead_ratio=<median of ours rps / bare rps>` (target at least 0.85) and
`function_vs_postgrest_ratio=<median of ours rps / postgrest rps>` (target at least 2).
"""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys

from _common import ALICE, require_wrk, seeded_cluster, wait_ready, wrk

# Rounds alternate the two servers; the ratio is their median. Five rounds spread 0.79-0.88 here.
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "11"))


def whoami_statement(dsn: str) -> str:
    """The query inside `public.whoami()`, as a bare handler would send it itself."""
    import psycopg

    with psycopg.connect(dsn) as conn:
        row = conn.execute("select prosrc from pg_proc where oid = 'public.whoami'::regproc").fetchone()
    assert row is not None
    match = re.search(r"return query(.*);\s*end;", row[0], re.S)
    assert match, row[0]
    return match.group(1)


def bare_app(dsn: str):  # type: ignore[no-untyped-def]
    from litestar import Litestar, Request, get
    from psycopg import AsyncConnection
    from psycopg.rows import dict_row
    from psycopg_pool import AsyncConnectionPool

    query = whoami_statement(dsn).replace("auth.uid()", "%(uid)s::uuid").replace("auth.email()", "%(email)s")
    pool = AsyncConnectionPool(
        dsn,
        open=False,
        max_size=10,
        connection_class=AsyncConnection,
        kwargs={"autocommit": True, "prepare_threshold": None, "row_factory": dict_row},
    )

    @get("/bare/whoami")
    async def whoami(request: Request) -> dict:  # type: ignore[type-arg]
        async with pool.connection() as conn:
            cursor = await conn.execute(
                query, {"uid": request.headers["x-user-id"], "email": "alice@example.com"}
            )
            return (await cursor.fetchall())[0]

    async def open_pool() -> None:
        await pool.open()

    async def close_pool() -> None:
        await pool.close()

    return Litestar([whoami], on_startup=[open_pool], on_shutdown=[close_pool], logging_config=None)


def serve(kind: str, port: int, admin_dsn: str, api_dsn: str) -> None:
    import uvicorn

    if kind == "ours":
        from app import create_app
        from rpc.platform.settings import Settings

        settings = Settings(
            database_url=admin_dsn,
            api_database_url=api_dsn,
            run_worker=False,
            # The limiter runs (it is part of the cost) but never refuses the load.
            rate_limit_per_minute=10_000_000,
            log_level=os.environ.get("BENCH_LOG_LEVEL", "INFO"),
        )
        asgi = create_app(settings)
    else:
        asgi = bare_app(admin_dsn)
    uvicorn.run(asgi, host="127.0.0.1", port=port, log_level="warning", access_log=False, workers=1)


def postgrest(admin_dsn: str, api_dsn: str) -> tuple[subprocess.Popen[bytes], str]:
    """The PostgREST the local stack runs, configured as the local stack configures it; and its base URL."""
    from rpc.local.rest import PostgREST, find_postgrest
    from rpc.platform.settings import Settings

    settings = Settings(database_url=admin_dsn, api_database_url=api_dsn)
    binary = find_postgrest(settings)
    if binary is None:
        sys.exit("bench/caller_overhead.py needs PostgREST (make install, with npm)")
    upstream = PostgREST(binary, settings)
    server = subprocess.Popen(
        [str(binary)], env=upstream.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    return server, f"http://127.0.0.1:{upstream.port}"


def main() -> None:
    require_wrk("bench/caller_overhead.py")
    from rpc.local.rest import free_port
    from rpc.local.tokens import mint_user_token
    from rpc.platform.settings import SUPABASE_CLI_JWT_SECRET, with_login

    servers: list[subprocess.Popen[bytes]] = []
    with seeded_cluster() as admin_dsn:
        try:
            token = mint_user_token(admin_dsn, "alice@example.com", SUPABASE_CLI_JWT_SECRET, issuer="bench")
            api_dsn = with_login(admin_dsn, "authenticator", "postgres")
            user = {"Authorization": f"Bearer {token}"}
            targets = {
                "ours": ("/functions/v1/whoami", user),
                "bare": ("/bare/whoami", {"x-user-id": ALICE}),
            }
            urls = {}
            for kind, (path, headers) in targets.items():
                port = free_port()
                servers.append(
                    subprocess.Popen(
                        [sys.executable, __file__, "serve", kind, str(port), admin_dsn, api_dsn],
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                    )
                )
                urls[kind] = f"http://127.0.0.1:{port}{path}"
                wait_ready(urls[kind], headers)
            server, base = postgrest(admin_dsn, api_dsn)
            servers.append(server)
            targets["postgrest"] = ("/rpc/whoami", user)
            urls["postgrest"] = f"{base}/rpc/whoami"
            wait_ready(urls["postgrest"], user)
            for kind in targets:  # warm-up
                wrk(urls[kind], targets[kind][1])
            overheads, versus_postgrest = [], []
            rps: dict[str, list[float]] = {kind: [] for kind in targets}
            for round_ in range(ROUNDS):
                order = list(targets) if round_ % 2 == 0 else list(reversed(targets))
                measured = {kind: wrk(urls[kind], targets[kind][1]) for kind in order}
                for kind, value in measured.items():
                    rps[kind].append(value)
                overheads.append(measured["ours"] / measured["bare"])
                versus_postgrest.append(measured["ours"] / measured["postgrest"])
                print(
                    f"# round {round_ + 1}: "
                    + " ".join(f"{kind}={measured[kind]:.0f} rps" for kind in targets),
                    flush=True,
                )
            for kind in targets:
                print(f"{kind}_rps={statistics.median(rps[kind]):.0f}")
            print(f"caller_overhead_ratio={statistics.median(overheads):.3f}")
            print(f"function_vs_postgrest_ratio={statistics.median(versus_postgrest):.3f}")
        finally:
            for server in servers:
                server.terminate()
                server.wait(10)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "serve":
        serve(sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5])
    else:
        main()
