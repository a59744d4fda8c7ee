"""What the caller contract costs: our `whoami` function against a bare handler doing the same read.

ours: the real app (token verification, request context, rate limiter, CORS, one as-caller round trip
      under RLS) serving GET /functions/v1/whoami.
bare: a Litestar handler running the same SQL on a raw pooled connection logged in as `postgres`, the
      user id taken from a header: no token, no role, no RLS, no middleware.

Both run under uvicorn with one worker on an embedded cluster of their own; `wrk` loads them from a
second process, alternating several rounds (this machine's run-to-run noise is 15-35%). Prints
`caller_overhead_ratio=<median of ours rps / bare rps>`; the target is at least 0.85.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))
SECONDS = int(os.environ.get("BENCH_SECONDS", "4"))
CONNECTIONS = int(os.environ.get("BENCH_CONNECTIONS", "32"))
ALICE = "00000000-0000-4000-8000-000000000002"  # a seed user


def bare_app(dsn: str):  # type: ignore[no-untyped-def]
    from litestar import Litestar, Request, get
    from psycopg import AsyncConnection
    from psycopg.rows import dict_row
    from psycopg_pool import AsyncConnectionPool

    from rpc.identity import WHOAMI

    query = WHOAMI.replace("auth.uid()", "%(uid)s::uuid").replace("auth.email()", "%(email)s")
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
        from rpc.settings import Settings

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


def wrk(url: str, headers: dict[str, str]) -> float:
    args = ["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{SECONDS}s"]
    for name, value in headers.items():
        args += ["-H", f"{name}: {value}"]
    output = subprocess.run([*args, url], capture_output=True, text=True, check=True).stdout
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    if errors:
        raise RuntimeError(f"{url} answered {errors.group(1)} errors:\n{output}")
    match = re.search(r"Requests/sec:\s+([\d.]+)", output)
    assert match, output
    return float(match.group(1))


def wait_ready(url: str, headers: dict[str, str]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, headers=headers).status_code == 200:
                return
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer")


def main() -> None:
    if shutil.which("wrk") is None:
        sys.exit("bench/caller_overhead.py needs wrk (Debian: apt-get install wrk)")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from rpc.embedded import EmbeddedPostgres
    from rpc.migrations import Runner, bootstrap
    from rpc.settings import SUPABASE_CLI_JWT_SECRET
    from rpc.tokens import mint_user_token
    from tests.support import free_port

    root = Path(tempfile.mkdtemp(prefix="bench-caller-"))
    cluster = EmbeddedPostgres(root, port=free_port())
    servers: list[subprocess.Popen[bytes]] = []
    try:
        cluster.start()
        bootstrap(cluster.dsn())
        admin_dsn = cluster.dsn("postgres", "postgres")
        runner = Runner(admin_dsn)
        runner.push()
        runner.seed()
        token = mint_user_token(admin_dsn, "alice@example.com", SUPABASE_CLI_JWT_SECRET, issuer="bench")
        targets = {
            "ours": ("/functions/v1/whoami", {"Authorization": f"Bearer {token}"}),
            "bare": ("/bare/whoami", {"x-user-id": ALICE}),
        }
        urls = {}
        for kind, (path, headers) in targets.items():
            port = free_port()
            servers.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        __file__,
                        "serve",
                        kind,
                        str(port),
                        admin_dsn,
                        cluster.dsn("authenticator", "postgres"),
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
            urls[kind] = f"http://127.0.0.1:{port}{path}"
            wait_ready(urls[kind], headers)
        for kind in targets:  # warm-up
            wrk(urls[kind], targets[kind][1])
        ratios, rps = [], {"ours": [], "bare": []}
        for round_ in range(ROUNDS):
            order = ("ours", "bare") if round_ % 2 == 0 else ("bare", "ours")
            measured = {kind: wrk(urls[kind], targets[kind][1]) for kind in order}
            for kind, value in measured.items():
                rps[kind].append(value)
            ratios.append(measured["ours"] / measured["bare"])
            print(
                f"# round {round_ + 1}: ours={measured['ours']:.0f} rps bare={measured['bare']:.0f} rps",
                flush=True,
            )
        print(f"ours_rps={statistics.median(rps['ours']):.0f}")
        print(f"bare_rps={statistics.median(rps['bare']):.0f}")
        print(f"caller_overhead_ratio={statistics.median(ratios):.3f}")
    finally:
        for server in servers:
            server.terminate()
            server.wait(10)
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "serve":
        serve(sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5])
    else:
        main()
