"""What the benchmarks share: a migrated, seeded embedded cluster of their own, `wrk`, readiness polling."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SECONDS = int(os.environ.get("BENCH_SECONDS", "4"))
CONNECTIONS = int(os.environ.get("BENCH_CONNECTIONS", "32"))
ALICE = "00000000-0000-4000-8000-000000000002"  # a seed user


def require_wrk(bench: str) -> None:
    if shutil.which("wrk") is None:
        sys.exit(f"{bench} needs wrk (Debian: apt-get install wrk)")


@contextlib.contextmanager
def seeded_cluster() -> Iterator[str]:
    """A new embedded cluster, migrated and seeded; yields the `postgres` DSN, removes it all afterwards."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from rpc.local.embedded import EmbeddedPostgres
    from rpc.local.embedded import bootstrap
    from rpc.local.rest import free_port
    from rpc.platform.migrations import Runner

    root = Path(tempfile.mkdtemp(prefix="bench-"))
    cluster = EmbeddedPostgres(root, port=free_port())
    try:
        cluster.start()
        bootstrap(cluster.dsn())
        admin_dsn = cluster.dsn("postgres", "postgres")
        runner = Runner(admin_dsn)
        runner.push()
        runner.seed()
        yield admin_dsn
    finally:
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)


def wrk(
    url: str,
    headers: dict[str, str],
    seconds: int = SECONDS,
    *,
    connections: int = CONNECTIONS,
    script: Path | None = None,
) -> float:
    """Requests per second of `url` under `connections` keep-alive connections (a Lua `script` may shape
    the requests); any non-2xx fails."""
    args = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", *(["-s", str(script)] if script else [])]
    for name, value in headers.items():
        args += ["-H", f"{name}: {value}"]
    output = subprocess.run([*args, url], capture_output=True, text=True, check=True).stdout
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    if errors:
        raise RuntimeError(f"{url} answered {errors.group(1)} errors:\n{output}")
    match = re.search(r"Requests/sec:\s+([\d.]+)", output)
    assert match, output
    return float(match.group(1))


def wait_ready(url: str, headers: dict[str, str], timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, headers=headers).status_code == 200:
                return
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer")


def run_app(port: int, **settings: object) -> None:
    """The app on 127.0.0.1:`port` as a benchmark runs it (called in a child process): no worker, no rate
    limit in the way, and no local API but those `settings` turn on."""
    import uvicorn

    from app import create_app
    from rpc.platform.settings import Settings

    defaults: dict[str, object] = {
        "auth_api": False,
        "rest_api": False,
        "storage_api": False,
        "run_worker": False,
        "rate_limit_per_minute": 10_000_000,
    }
    app = create_app(Settings(**{**defaults, **settings}))  # type: ignore[arg-type]
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
