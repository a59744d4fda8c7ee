"""What the local stack's `/storage/v1` costs against bare Litestar handlers on the same server, and how much
memory a large object takes while it streams through.

ours:  /storage/v1 as the service key uses it: token check, the object's row under RLS (probe, insert or
       upsert, lookup), bytes written to a temporary file (in a thread) and renamed; served with ETag
       and ranges.
bare:  routes added to the same app instance (same uvicorn, same middleware): a Litestar `File` response
       of the same 10 MB, and a handler streaming the request body to a temporary file renamed into place.

The app runs under uvicorn (one worker) in a process of its own, on an embedded cluster and a storage
folder of its own; `wrk` loads it from another process with the same connections and concurrency for both
sides, alternating rounds. Prints `storage_download_ratio` and `storage_upload_ratio` (median of ours/bare
requests per second, target at least 0.8 each) and `storage_stream_rss_mb`: the server's peak RSS above
its resting RSS while a 200 MB object goes up and comes back down (target at most 32).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
from _common import SECONDS, require_wrk, seeded_cluster, wait_ready, wrk

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))
# Large bodies: a few connections saturate the server; more only queue.
CONNECTIONS = int(os.environ.get("BENCH_STORAGE_CONNECTIONS", "4"))
OBJECT_BYTES = 10 * 1024 * 1024
LARGE_BYTES = 200 * 1024 * 1024
BUCKET = "bench"
TARGET_RATIO = 0.8
TARGET_RSS_MB = 32


def serve(port: int, admin_dsn: str, storage_dir: str, bare_dir: str) -> None:
    import uuid

    import uvicorn
    from litestar import Request, get, post
    from litestar.response import File

    from app import create_app
    from rpc.local.config import CONFIG_FILE
    from rpc.platform.settings import Settings

    # config.toml's `[storage] file_size_limit` (50MiB) would refuse the 200 MB object; a project that stores
    # such objects raises it, as this one does in a config of its own (SUPABASE_CONFIG).
    config = Path(storage_dir).parent / "config.toml"
    config.write_text(
        CONFIG_FILE.read_text().replace('file_size_limit = "50MiB"', 'file_size_limit = "1GiB"', 1)
    )

    settings = Settings(
        supabase_config=config,
        database_url=admin_dsn,
        storage_api=True,
        storage_dir=Path(storage_dir),
        run_worker=False,
        rate_limit_per_minute=10_000_000,
        log_level=os.environ.get("BENCH_LOG_LEVEL", "WARNING"),
    )
    app = create_app(settings)
    bare = Path(bare_dir)

    # Annotations are strings here (future import) and these names are local to this function.
    names = {"File": File, "Request": Request}

    @get("/bare/object", include_in_schema=False, signature_namespace=names)
    async def bare_download() -> File:
        return File(bare / "object", media_type="application/octet-stream")

    # No body limit (Litestar's default is 10 MB): /storage/v1 applies the bucket's own.
    @post(
        "/bare/upload",
        status_code=200,
        include_in_schema=False,
        signature_namespace=names,
        request_max_body_size=None,
    )
    async def bare_upload(request: Request) -> dict[str, str]:
        temporary = bare / f"tmp-{uuid.uuid4()}"
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            async for chunk in request.stream():
                view = memoryview(chunk)
                while view:
                    view = view[os.write(fd, view) :]
        finally:
            os.close(fd)
        os.replace(temporary, bare / "upload")
        return {"Key": "upload"}

    app.register(bare_download)
    app.register(bare_upload)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False, workers=1)


def wrk_script(folder: Path, name: str, headers: dict[str, str], upload: bool) -> Path:
    """A wrk script sending `headers`, and with `upload` POSTing a 10 MB body."""
    lines = [f'wrk.headers["{header}"] = "{value}"' for header, value in headers.items()]
    if upload:
        lines += ['wrk.method = "POST"', f'wrk.body = string.rep("x", {OBJECT_BYTES})']
    script = folder / f"{name}.lua"
    script.write_text("\n".join(lines) + "\n")
    return script


def load(url: str, script: Path, seconds: int = SECONDS) -> float:
    return wrk(url, {}, seconds, connections=CONNECTIONS, script=script)


def rss_kb(pid: int, field: str = "VmRSS") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} for process {pid}")


@contextlib.contextmanager
def peak_rss(pid: int) -> Iterator[dict[str, int]]:
    """The process's peak RSS (kB) during the block: its high-water mark, reset first (clear_refs), and a
    sampled maximum where that cannot be reset."""
    result = {"before": rss_kb(pid), "peak": 0}
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
        resettable = True
    except OSError:
        resettable = False
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            result["peak"] = max(result["peak"], rss_kb(pid))
            time.sleep(0.005)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        yield result
    finally:
        done.set()
        sampler.join()
        if resettable:
            result["peak"] = max(result["peak"], rss_kb(pid, "VmHWM"))


def large_round_trip(base: str, headers: dict[str, str], size: int) -> None:
    """Stream `size` bytes up to /storage/v1 and back down, holding one chunk at a time here too."""
    chunk = b"y" * (1024 * 1024)

    def body() -> Iterator[bytes]:
        for _ in range(size // len(chunk)):
            yield chunk

    url = f"{base}/storage/v1/object/{BUCKET}/large"
    with httpx.Client(timeout=120) as client:
        sent = client.post(
            url,
            content=body(),
            headers={
                **headers,
                "content-type": "application/octet-stream",
                "content-length": str(size),
                "x-upsert": "true",
            },
        )
        sent.raise_for_status()
        received = 0
        with client.stream("GET", url, headers=headers) as response:
            response.raise_for_status()
            for part in response.iter_raw():
                received += len(part)
    if received != size:
        raise RuntimeError(f"sent {size} bytes, got {received} back")


def main() -> None:
    require_wrk("bench/storage.py")
    from rpc.local.rest import free_port
    from rpc.platform.settings import SUPABASE_CLI_SECRET_KEY

    key = SUPABASE_CLI_SECRET_KEY
    service = {"apikey": key, "Authorization": f"Bearer {key}"}
    folder = Path(tempfile.mkdtemp(prefix="bench-storage-"))
    storage_dir, bare_dir = folder / "storage", folder / "bare"
    bare_dir.mkdir()
    try:
        with seeded_cluster() as admin_dsn:
            port = free_port()
            server = subprocess.Popen(
                [sys.executable, __file__, "serve", str(port), admin_dsn, str(storage_dir), str(bare_dir)],
                stdout=subprocess.DEVNULL,
                # wrk drops its connections mid-upload when a run ends, which the app logs as errors.
                stderr=subprocess.DEVNULL,
            )
            try:
                base = f"http://127.0.0.1:{port}"
                wait_ready(f"{base}/health", {})
                run(base, service, folder, bare_dir, server.pid)
            finally:
                server.terminate()
                server.wait(10)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def run(base: str, service: dict[str, str], folder: Path, bare_dir: Path, pid: int) -> None:
    httpx.post(
        f"{base}/storage/v1/bucket", json={"name": BUCKET, "public": False}, headers=service
    ).raise_for_status()
    # Memory first, on a rested server: one small round trip loads what the first upload loads.
    large_round_trip(base, service, 1024 * 1024)
    with peak_rss(pid) as rss:
        large_round_trip(base, service, LARGE_BYTES)
    rss_mb = (rss["peak"] - rss["before"]) / 1024
    print(
        f"# server rss: {rss['before'] / 1024:.1f} MB resting, {rss['peak'] / 1024:.1f} MB peak", flush=True
    )

    with httpx.Client(base_url=base, headers=service, timeout=60) as client:
        payload = os.urandom(OBJECT_BYTES)
        client.post(
            f"/storage/v1/object/{BUCKET}/object",
            content=payload,
            headers={"content-type": "application/octet-stream"},
        ).raise_for_status()
        (bare_dir / "object").write_bytes(payload)
        ours = client.get(f"/storage/v1/object/{BUCKET}/object")
        bare = client.get("/bare/object")
        if ours.content != payload or bare.content != payload:
            raise RuntimeError("the two downloads do not serve the object's bytes")

    # Both sides send the same request line, body and headers but for the key.
    binary = {"content-type": "application/octet-stream"}
    uploads_as = {**service, **binary, "x-upsert": "true"}
    targets = {
        "down_ours": (f"/storage/v1/object/{BUCKET}/object", wrk_script(folder, "down_ours", service, False)),
        "down_bare": ("/bare/object", wrk_script(folder, "down_bare", {}, False)),
        "up_ours": (f"/storage/v1/object/{BUCKET}/uploaded", wrk_script(folder, "up_ours", uploads_as, True)),
        "up_bare": ("/bare/upload", wrk_script(folder, "up_bare", binary, True)),
    }
    for path, script in targets.values():  # warm-up
        load(base + path, script, seconds=1)
    rps: dict[str, list[float]] = {name: [] for name in targets}
    for round_ in range(ROUNDS):
        order = ("ours", "bare") if round_ % 2 == 0 else ("bare", "ours")
        for kind in [f"{way}_{side}" for way in ("down", "up") for side in order]:
            path, script = targets[kind]
            rps[kind].append(load(base + path, script))
        print(
            f"# round {round_ + 1}: " + " ".join(f"{k}={v[-1]:.1f} rps" for k, v in rps.items()), flush=True
        )
    down = statistics.median(o / b for o, b in zip(rps["down_ours"], rps["down_bare"], strict=True))
    up = statistics.median(o / b for o, b in zip(rps["up_ours"], rps["up_bare"], strict=True))
    for name, values in rps.items():
        print(f"storage_{name}_rps={statistics.median(values):.1f}")
    print(f"storage_download_ratio={down:.3f}")
    print(f"storage_download_ratio_target_met={str(down >= TARGET_RATIO).lower()}")
    print(f"storage_upload_ratio={up:.3f}")
    print(f"storage_upload_ratio_target_met={str(up >= TARGET_RATIO).lower()}")
    print(f"storage_stream_rss_mb={rss_mb:.1f}")
    print(f"storage_stream_rss_mb_target_met={str(rss_mb <= TARGET_RSS_MB).lower()}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "serve":
        serve(int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5])
    else:
        main()
