"""What the local stack's `/auth/v1` costs: password sign-ins against the bcrypt limit of this machine,
refreshes against `whoami` calls, and what a storm of sign-ins does to other requests' latency.

bcrypt:  `checkpw` of a cost-10 hash in this process, on as many threads as the server's hasher has, for
         a few seconds: the most sign-ins per second the machine can check.
signin:  POST /auth/v1/token?grant_type=password for the seed's demo users in turn (password
         `talentbase-demo`): a bcrypt check and a new session (GoTrue's session object, access token).
refresh: POST /auth/v1/token?grant_type=refresh_token; tokens rotate, so the wrk script holds a queue of
         sessions' refresh tokens, sends one and queues the child each answer carries.
whoami:  POST /functions/v1/whoami with the same sessions' access tokens, the same wrk, connections and
         script shape (a queue cycled through, each answer read).
storm:   whoami at a steady rate from one client (open loop: each call starts on schedule, whatever the
         others do) alone, and while wrk sends password sign-ins on many connections.

The app runs under uvicorn (one worker) in a process of its own, on an embedded cluster of its own, with
a copy of supabase/config.toml whose auth rate limits never refuse the load (any non-2xx fails the run).
Rounds alternate bcrypt and sign-ins, refresh and whoami, whoami alone and under the storm. Prints
`signin_ratio` (median of signin rps / bcrypt checks per second, target at least 0.8), `refresh_ratio`
(median of refresh rps / whoami rps, target at least 0.5) and `signin_storm_p99_ratio` (whoami's p99
under the storm / its p99 alone, target at most 2).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import bcrypt
import httpx
from _common import CONNECTIONS, SECONDS, require_wrk, run_app, seeded_cluster, wait_ready, wrk

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))
# A few more connections than the hasher has threads keep its threads busy; more only queue.
SIGNIN_CONNECTIONS = int(os.environ.get("BENCH_SIGNIN_CONNECTIONS", "8"))
# 8x the hasher's threads here, queued (each sign-in waits about a second); many more, and some wait past
# wrk's 2 s timeout: wrk gives up on them and the server still checks them after the storm.
STORM_CONNECTIONS = int(os.environ.get("BENCH_STORM_CONNECTIONS", "16"))
STEADY_RATE = int(os.environ.get("BENCH_STEADY_RATE", "50"))  # whoami calls per second during the storm test
PASSWORD = "talentbase-demo"  # noqa: S105 (every demo user's, published in supabase/seed.sql)
DEMO_USERS = [
    f"{name}@example.com"
    for name in ("admin", "alice", "arthur", "bob", "beth", "carol", "chris", "dana", "dylan", "erin", "eli")
]
TARGET_SIGNIN_RATIO = 0.8
TARGET_REFRESH_RATIO = 0.5
TARGET_STORM_P99_RATIO = 2.0


def serve(port: int, admin_dsn: str, api_dsn: str, folder: str) -> None:
    from rpc.local.config import CONFIG_FILE

    # config.toml's auth limits (30 sign-ins, 150 refreshes per 5 minutes and address) would refuse the load;
    # a copy of it with them raised, as a project would raise them in a config of its own (SUPABASE_CONFIG).
    config = Path(folder) / "config.toml"
    text = CONFIG_FILE.read_text()
    for limit in ("sign_in_sign_ups = 30", "token_refresh = 150"):
        assert limit in text, f"supabase/config.toml no longer has `{limit}`"
        text = text.replace(limit, limit.split("=")[0] + "= 1000000000", 1)
    config.write_text(text)
    run_app(
        port,
        supabase_config=config,
        database_url=admin_dsn,
        api_database_url=api_dsn,
        auth_api=True,
        log_level=os.environ.get("BENCH_LOG_LEVEL", "WARNING"),
    )


def bcrypt_checks_per_s(seconds: float, threads: int) -> float:
    """bcrypt checks of a cost-10 hash per second, `threads` checking at once (bcrypt releases the GIL)."""
    from rpc.local.auth.passwords import COST

    password = PASSWORD.encode()
    hashed = bcrypt.hashpw(password, bcrypt.gensalt(COST, prefix=b"2a"))
    start = time.perf_counter()
    deadline = start + seconds

    def check() -> int:
        checks = 0
        while time.perf_counter() < deadline:
            if not bcrypt.checkpw(password, hashed):
                raise RuntimeError("bcrypt refused its own hash")
            checks += 1
        return checks

    with ThreadPoolExecutor(threads) as pool:
        checks = sum(pool.map(lambda _: check(), range(threads)))
    return checks / (time.perf_counter() - start)


def lua_list(values: list[str]) -> str:
    return "{" + ", ".join(json.dumps(value) for value in values) + "}"


def signin_script(folder: Path, apikey: str) -> Path:
    """Password sign-ins of the demo users in turn."""
    script = folder / "signin.lua"
    script.write_text(
        f"""
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["apikey"] = "{apikey}"
local emails = {lua_list(DEMO_USERS)}
local next_email = 0
request = function()
  next_email = next_email % #emails + 1
  return wrk.format(nil, nil, nil, '{{"email":"' .. emails[next_email] .. '","password":"{PASSWORD}"}}')
end
"""
    )
    return script


def queue_script(folder: Path, name: str, apikey: str, tokens: list[str], refresh: bool) -> Path:
    """Requests that each take the token at the head of a queue and put one back when answered: with
    `refresh`, a refresh token sent in the body and the child the answer carries; else an access token
    sent as the bearer and queued again. Either way the same Lua work per request."""
    send = (
        """wrk.format(nil, nil, nil, '{"refresh_token":"' .. token .. '"}')"""
        if refresh
        else """wrk.format(nil, nil, {["Authorization"] = "Bearer " .. token}, nil)"""
    )
    requeue = 'body:match(\'"refresh_token":"([^"]+)"\')' if refresh else "sent[1]"
    script = folder / f"{name}.lua"
    script.write_text(
        f"""
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["apikey"] = "{apikey}"
local tokens = {lua_list(tokens)}
local sent = {{}}
request = function()
  -- An empty queue sends an empty token: refused, and the run fails.
  local token = table.remove(tokens, 1) or ""
  table.insert(sent, token)
  return {send}
end
response = function(status, headers, body)
  local token = {requeue}
  table.remove(sent, 1)
  if token then table.insert(tokens, token) end
end
"""
    )
    return script


async def sign_in(client: httpx.AsyncClient, email: str) -> dict[str, str]:
    response = await client.post(
        "/auth/v1/token?grant_type=password", json={"email": email, "password": PASSWORD}
    )
    response.raise_for_status()
    return response.json()


async def new_sessions(base: str, apikey: str, count: int) -> list[dict[str, str]]:
    """`count` new sessions of the demo users (a refresh run ends with tokens in flight, used up)."""
    async with httpx.AsyncClient(base_url=base, headers={"apikey": apikey}, timeout=60) as client:
        return await asyncio.gather(*(sign_in(client, DEMO_USERS[i % len(DEMO_USERS)]) for i in range(count)))


async def steady_latencies(url: str, headers: dict[str, str], seconds: float, rate: int) -> list[float]:
    """Seconds each of `rate` calls a second took, each started on schedule whether or not the ones
    before it have answered (a stalled server cannot slow the client down and hide its stall)."""
    latencies: list[float] = []

    async def call(client: httpx.AsyncClient) -> None:
        start = time.perf_counter()
        response = await client.post(url, headers=headers)
        latencies.append(time.perf_counter() - start)
        response.raise_for_status()

    async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_keepalive_connections=64)) as client:
        await call(client)  # a connection open before the clock starts
        latencies.clear()
        calls = []
        start = time.perf_counter()
        for i in range(int(seconds * rate)):
            await asyncio.sleep(max(0.0, start + i / rate - time.perf_counter()))
            calls.append(asyncio.create_task(call(client)))
        await asyncio.gather(*calls)
    return latencies


def p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[98]


def target(name: str, value: float, met: bool) -> None:
    print(f"{name}={value:.3f}")
    print(f"{name}_target_met={str(met).lower()}")


def main() -> None:
    require_wrk("bench/auth.py")
    from rpc.local.auth.passwords import Hasher
    from rpc.local.rest import free_port
    from rpc.platform.settings import SUPABASE_CLI_PUBLISHABLE_KEY, with_login

    hasher = Hasher()  # for its thread count: the server's hasher gets the same
    threads = hasher.threads
    hasher.close()
    folder = Path(tempfile.mkdtemp(prefix="bench-auth-"))
    try:
        with seeded_cluster() as admin_dsn:
            port = free_port()
            api_dsn = with_login(admin_dsn, "authenticator", "postgres")
            server = subprocess.Popen(
                [sys.executable, __file__, "serve", str(port), admin_dsn, api_dsn, str(folder)],
                stdout=subprocess.DEVNULL,
            )
            try:
                base = f"http://127.0.0.1:{port}"
                wait_ready(f"{base}/auth/v1/health", {"apikey": SUPABASE_CLI_PUBLISHABLE_KEY})
                print(f"# bcrypt threads: {threads}, server pid {server.pid}", flush=True)
                run(base, SUPABASE_CLI_PUBLISHABLE_KEY, folder, threads)
            finally:
                server.terminate()
                server.wait(10)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def run(base: str, apikey: str, folder: Path, threads: int) -> None:
    token_url = f"{base}/auth/v1/token"
    whoami_url = f"{base}/functions/v1/whoami"
    signin = signin_script(folder, apikey)
    wrk(f"{token_url}?grant_type=password", {}, 1, connections=SIGNIN_CONNECTIONS, script=signin)  # warm-up

    # Sign-ins against the bcrypt limit, the limit measured first in each round.
    hashes, signins = [], []
    for round_ in range(ROUNDS):
        hashes.append(bcrypt_checks_per_s(SECONDS, threads))
        signins.append(
            wrk(f"{token_url}?grant_type=password", {}, connections=SIGNIN_CONNECTIONS, script=signin)
        )
        print(f"# round {round_ + 1}: bcrypt={hashes[-1]:.1f}/s signin={signins[-1]:.1f} rps", flush=True)

    # Refreshes against whoami: the same sessions, wrk, connections and queue of tokens.
    sessions_per_run = 2 * CONNECTIONS  # more than are ever in flight, so the queue never runs dry
    refreshes, whoamis = [], []
    for round_ in range(ROUNDS):
        sessions = asyncio.run(new_sessions(base, apikey, sessions_per_run))
        scripts = {
            "refresh": queue_script(folder, "refresh", apikey, [s["refresh_token"] for s in sessions], True),
            "whoami": queue_script(folder, "whoami", apikey, [s["access_token"] for s in sessions], False),
        }
        urls = {"refresh": f"{token_url}?grant_type=refresh_token", "whoami": whoami_url}
        measured = {
            kind: wrk(urls[kind], {}, script=scripts[kind])
            for kind in (("refresh", "whoami") if round_ % 2 == 0 else ("whoami", "refresh"))
        }
        refreshes.append(measured["refresh"])
        whoamis.append(measured["whoami"])
        print(
            f"# round {round_ + 1}: refresh={refreshes[-1]:.0f} rps whoami={whoamis[-1]:.0f} rps", flush=True
        )

    # whoami's latency at a steady rate, alone and under a storm of sign-ins.
    user = asyncio.run(new_sessions(base, apikey, 1))[0]
    bearer = {"Authorization": f"Bearer {user['access_token']}"}
    latencies: dict[str, list[float]] = {"alone": [], "storm": []}
    with ThreadPoolExecutor(1) as storm_runner:
        for round_ in range(ROUNDS):
            for kind in ("alone", "storm") if round_ % 2 == 0 else ("storm", "alone"):
                if kind == "alone":
                    latencies[kind] += asyncio.run(steady_latencies(whoami_url, bearer, SECONDS, STEADY_RATE))
                    continue
                storm = storm_runner.submit(
                    wrk,
                    f"{token_url}?grant_type=password",
                    {},
                    SECONDS + 2,
                    connections=STORM_CONNECTIONS,
                    script=signin,
                )
                time.sleep(1)  # the storm under way: every connection waiting on bcrypt
                latencies[kind] += asyncio.run(steady_latencies(whoami_url, bearer, SECONDS, STEADY_RATE))
                storm.result()
                # Sign-ins are served in turn: this one answers once those wrk left behind are done.
                asyncio.run(new_sessions(base, apikey, 1))
            print(
                f"# round {round_ + 1}: whoami p99 alone={p99(latencies['alone']) * 1000:.1f} ms"
                f" storm={p99(latencies['storm']) * 1000:.1f} ms (so far)",
                flush=True,
            )

    bcrypt_rate = statistics.median(hashes)
    print(f"bcrypt_hashes_per_s={bcrypt_rate:.1f}")
    print(f"signin_per_s={statistics.median(signins):.1f}")
    signin_ratio = statistics.median(s / h for s, h in zip(signins, hashes, strict=True))
    target("signin_ratio", signin_ratio, signin_ratio >= TARGET_SIGNIN_RATIO)
    print(f"refresh_per_s={statistics.median(refreshes):.1f}")
    print(f"whoami_per_s={statistics.median(whoamis):.1f}")
    refresh_ratio = statistics.median(r / w for r, w in zip(refreshes, whoamis, strict=True))
    target("refresh_ratio", refresh_ratio, refresh_ratio >= TARGET_REFRESH_RATIO)
    alone, storm = p99(latencies["alone"]), p99(latencies["storm"])
    print(f"whoami_p99_alone_ms={alone * 1000:.1f}")
    print(f"whoami_p99_storm_ms={storm * 1000:.1f}")
    target("signin_storm_p99_ratio", storm / alone, storm / alone <= TARGET_STORM_P99_RATIO)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "serve":
        serve(int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5])
    else:
        main()
