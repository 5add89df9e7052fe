"""`carebot bench reminders --plans N [--json]`: medication reminders at scale on PostgreSQL.

    carebot bench reminders --plans 1000000 --due 20000 --rate 2000 --json

1. A fresh schema (the database is emptied: use a benchmark database) gets N patients and N plans,
   written in bulk with COPY: each plan's first dose timer is tomorrow, except `--due` plans whose
   doses fall due one after another at `--rate` a second, starting two seconds after every worker
   has said it is up (the offered load; start-up is not counted as lateness).
2. Two worker processes (`carebot run`'s timer loop and reminder handler, shipped flows and content,
   the memory platform) fire them in batches (bot/reminders/fire.py): each dose is a dose row, its
   one follow-up timer, the next dose's timer and its reminder, rendered into the outbox and sent.
   Figures: fires per second (due doses / first due → last reminder written), lateness per dose
   (reminder written − scheduled time, p50/p99/max), each worker's peak RSS, and a check that every
   due dose has exactly one dose row, one reminder and one `dose_fired` record.
3. In the same run APScheduler 3 (SQLAlchemyJobStore on the same database, one scheduler process:
   two schedulers sharing a job store would fire jobs twice) gets the same due jobs at the same
   rate; each job writes its dose row. Its figures are measured the same way.

The JSON's last line: {"plans", "due", "fires_per_second", "p99_lateness_ms", "peak_rss_mb", "exactly_once",
"apscheduler": {"fires_per_second", "p99_lateness_ms", …}, …}. Every wait is bounded (`--timeout`).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[2]
LEAD = 2.0  # seconds from every worker being up (idle, connected) to the first due dose


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


def _rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _url(args: argparse.Namespace) -> str:
    url = args.database_url or os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgresql://", "postgres://")):
        raise SystemExit("carebot bench reminders needs PostgreSQL: --database-url postgresql://… or $DATABASE_URL "
                         f"(got {url.split('@')[-1] if url else 'nothing'}); its data is deleted")
    return url


def _fresh_schema(url: str) -> None:
    from bot.store.db import normalize_url
    from bot.store.migrate import upgrade

    engine = sa.create_engine(normalize_url(url))
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP SCHEMA public CASCADE")
        conn.exec_driver_sql("CREATE SCHEMA public")
    engine.dispose()
    upgrade(url)


def _copy(cur: Any, table: str, columns: list[str], rows: Any) -> int:
    """COPY rows (tuples) into a table in chunks; returns how many."""
    n = 0
    with cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)
            n += 1
    return n


def create_plans(url: str, plans: int, due: int, first_due: datetime, rate: float) -> float:
    """N conversations and plans and their first timers, by COPY. Returns seconds taken."""
    import psycopg

    from bot.reminders.schedule import Schedule

    started = time.perf_counter()
    now = datetime.now(timezone.utc)
    tomorrow = now + timedelta(days=1)
    from bot.engine.state import State
    from bot.types import Address

    def state(i: int) -> str:
        return json.dumps(State.new(Address("memory", f"b{i}", f"b{i}"), "en").to_dict())
    with psycopg.connect(url.replace("postgres://", "postgresql://"), autocommit=False) as pg, pg.cursor() as cur:
        def when(i: int) -> datetime:
            return first_due + timedelta(seconds=i / rate) if i < due else tomorrow + timedelta(seconds=i % 3600)

        def conv_id(i: int) -> str:
            return f"default:memory:b{i}"

        _copy(cur, "conversation", ["id", "org", "channel", "chat_id", "user_id", "thread_id", "is_group", "mode",
                                    "locale", "state", "version", "created_at", "updated_at"],
              ((conv_id(i), "default", "memory", f"b{i}", f"b{i}", "", False, "bot", "en", state(i), 1, now, now)
               for i in range(plans)))

        def plan_rows() -> Any:
            for i in range(plans):
                at = when(i)
                schedule = Schedule(start=at.date(), times=[at.strftime("%H:%M:%S")[:5]]).model_dump_json()
                yield (f"B{i:09d}", "default", conv_id(i), "tablet", f"m{i}", "", schedule, "UTC", "active",
                       "bench", now, now, None, 1, False, at)

        _copy(cur, "med_plan", ["id", "org", "conversation_id", "kind", "medicine", "dose", "schedule", "timezone",
                                "status", "created_by", "created_at", "updated_at", "pills_left", "pills_per_dose",
                                "refill_warned", "next_due_at"], plan_rows())

        def timer_rows() -> Any:
            for i in range(plans):
                at, name = when(i), f"dose:B{i:09d}"
                payload = json.dumps({"plan": f"B{i:09d}", "at": at.isoformat(), "name": name, "care": True})
                yield ("default", conv_id(i), name, at, payload, "pending", "", now)

        _copy(cur, "timer", ["org", "conversation_id", "name", "due_at", "payload", "status", "claimed_by",
                             "created_at"], timer_rows())
        pg.commit()
        cur.execute("ANALYZE conversation; ANALYZE med_plan; ANALYZE timer")
        pg.commit()
    return time.perf_counter() - started


# -- carebot's workers ------------------------------------------------------------------------------

def worker_main(url: str, claim: int) -> None:
    """One worker process: started, it says `ready` and waits for `go <until>` on stdin (the due
    doses are moved to just after every worker is up, so start-up is not counted as lateness), then
    runs the timer loop until `until` (epoch seconds) or nothing is left due."""
    import asyncio

    from bot.app import CareBot, load_config
    from bot.settings import Settings
    from bot.testing.memory import MemoryAdapter

    async def run() -> dict[str, Any]:
        settings = replace(Settings(), database_url=url, flows_dir=ROOT / "flows", content_dir=ROOT / "content",
                           worker_id=f"bench-{os.getpid()}", timezone="UTC")
        bot = CareBot.build(settings, [MemoryAdapter()], config=load_config(settings))
        await bot.start(background=False)
        bot.timers.batch = claim
        await bot.timers.tick()  # nothing is due yet: connections open, statements compiled
        print("ready", flush=True)
        line = await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        until = float(line.split()[1])
        fired, last = 0, 0.0
        cpu = resource.getrusage(resource.RUSAGE_SELF)
        while time.time() < until:
            n = await bot.timers.tick()  # deliveries go on meanwhile, as under `carebot run`
            if n:
                fired, last = fired + n, time.time()
            else:
                pending = await bot.store.read(lambda c: c.execute(sa.select(sa.func.count()).select_from(
                    sa.table("timer", sa.column("status"), sa.column("due_at"), sa.column("name"))).where(
                    sa.text("status in ('pending','claimed') and name not like '%:%:%' "
                            "and due_at < now() + interval '1 hour'"))).scalar())
                if not pending:
                    break
                await asyncio.sleep(0.01)
        await bot.sender.idle()
        used = resource.getrusage(resource.RUSAGE_SELF)
        cpu_seconds = used.ru_utime + used.ru_stime - cpu.ru_utime - cpu.ru_stime
        firer = bot.reminders.firer
        await bot.stop()
        return {"fired": fired, "last": last, "peak_rss_mb": _rss_mb(), "batches": firer.batches,
                "dose_timers": firer.claimed, "cpu_seconds": round(cpu_seconds, 2)}

    print(json.dumps(asyncio.run(run())), flush=True)


def start_workers(url: str, workers: int, claim: int, timeout: float) -> list[subprocess.Popen[str]]:
    """The worker processes, each up (`ready`) within `timeout` seconds."""
    import threading

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [subprocess.Popen([sys.executable, "-m", "bot.reminders.bench", "--worker", url, str(claim)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=env, cwd=ROOT) for _ in range(workers)]
    lines: dict[int, str] = {}

    def ready(i: int, p: subprocess.Popen[str]) -> None:
        assert p.stdout is not None
        lines[i] = p.stdout.readline().strip()

    waits = [threading.Thread(target=ready, args=(i, p), daemon=True) for i, p in enumerate(procs)]
    for w in waits:
        w.start()
    for w in waits:
        w.join(max(0.0, timeout))
    if any(lines.get(i) != "ready" for i in range(workers)):
        for p in procs:
            p.kill()
        errors = [p.communicate(timeout=10)[1].strip()[-2000:] for p in procs]
        raise SystemExit(f"bench workers were not up within {timeout:.0f} s: {errors}")
    return procs


def run_carebot(procs: list[subprocess.Popen[str]], until: float) -> list[dict[str, Any]]:
    for p in procs:
        assert p.stdin is not None
        p.stdin.write(f"go {until}\n")
        p.stdin.flush()
    out = []
    for p in procs:
        stdout, stderr = p.communicate(timeout=max(30.0, until - time.time() + 60))
        if p.returncode != 0:
            raise SystemExit(f"a bench worker failed (exit {p.returncode}): {stderr.strip()[-2000:]}")
        out.append(json.loads(stdout.strip().splitlines()[-1]))
    return out


def measure_carebot(url: str, due: int, first_due: datetime) -> dict[str, Any]:
    """Lateness and exactly-once from what the workers wrote."""
    from bot.store.db import normalize_url

    engine = sa.create_engine(normalize_url(url))
    with engine.connect() as conn:
        doses = conn.execute(sa.text(  # lateness: scheduled → delivered to the platform (the adapter's send returned)
            "SELECT d.plan_id, d.scheduled_at, o.sent_at AS said, o.created_at AS written FROM med_dose d "
            "LEFT JOIN outbox o ON o.conversation_id = d.conversation_id AND o.content_key = 'reminder.dose'")).all()
        per_plan = conn.execute(sa.text("SELECT count(*) FROM (SELECT plan_id FROM med_dose GROUP BY plan_id "
                                        "HAVING count(*) > 1) x")).scalar()
        reminders = conn.execute(sa.text("SELECT count(*), count(DISTINCT conversation_id) FROM outbox "
                                         "WHERE content_key = 'reminder.dose'")).one()
        fired_events = conn.execute(sa.text("SELECT count(*) FROM event WHERE kind = 'dose_fired'")).scalar()
        unsent = conn.execute(sa.text("SELECT count(*) FROM outbox WHERE content_key = 'reminder.dose' "
                                      "AND status <> 'sent'")).scalar()
    engine.dispose()
    late = [(d.said - d.scheduled_at).total_seconds() * 1000 for d in doses if d.said is not None]
    written = [(d.written - d.scheduled_at).total_seconds() * 1000 for d in doses if d.written is not None]
    last = max((d.said for d in doses if d.said is not None), default=first_due)
    span = max((last - first_due).total_seconds(), 1e-3)
    return {"fired": len(late), "fires_per_second": round(len(late) / span, 1),
            "p50_lateness_ms": round(_percentile(late, 0.5), 1), "p99_lateness_ms": round(_percentile(late, 0.99), 1),
            "max_lateness_ms": round(max(late, default=0.0), 1),
            "p99_written_lateness_ms": round(_percentile(written, 0.99), 1),
            "exactly_once": (len(doses) == due and per_plan == 0 and reminders[0] == due and reminders[1] == due
                             and fired_events == due),
            "doses": len(doses), "reminders": reminders[0], "dose_fired_records": fired_events,
            "reminders_not_yet_delivered": unsent}


# -- APScheduler ----------------------------------------------------------------------------------

def _aps_job(plan_id: str, at: str) -> None:
    """APScheduler's dose job, doing what a carebot fire does for one dose: read the plan and the
    patient's conversation (address, language, STOP), compute the next dose, and in one transaction
    write the dose row, the plan's next time, the rendered reminder (outbox row) and the `dose_fired`
    record; then schedule the next dose and the dose's follow-up (its first nag, or the close) — as
    APScheduler jobs, its own durable timers (each `add_job` is a row in its SQLAlchemyJobStore).
    Not done: the delivery to the platform (carebot's figure includes it)."""
    from bot.reminders.fire import dose_message, follow_up
    from bot.reminders.schedule import next_after
    from bot.reminders.service import Plan
    from bot.types import Address

    ctx = _APS
    scheduled = datetime.fromisoformat(at)
    now = datetime.now(timezone.utc)
    timing = ctx["timing"]
    with ctx["engine"].begin() as conn:
        row = conn.execute(sa.text("SELECT * FROM med_plan WHERE id = :p"), {"p": plan_id}).one()
        plan = Plan.from_row(row)
        c = conn.execute(sa.text("SELECT id, org, channel, chat_id, user_id, thread_id, is_group, locale, state "
                                 "FROM conversation WHERE id = :c"), {"c": plan.conversation_id}).one()
        opted_out = bool(json.loads(c.state).get("opted_out"))
        nxt = next_after(plan.schedule, plan.timezone, scheduled, ctx["slots"])
        dose_id = conn.execute(sa.text(
            "INSERT INTO bench_aps_dose (org, plan_id, conversation_id, scheduled_at, state, reason, late, nags, prn, "
            "escalated, fired_at) VALUES ('default', :p, :c, :a, :st, :r, false, 0, false, false, :f) "
            "ON CONFLICT (plan_id, scheduled_at) DO NOTHING RETURNING id"),
            {"p": plan_id, "c": plan.conversation_id, "a": scheduled, "st": "missed" if opted_out else "due",
             "r": "opted_out" if opted_out else "", "f": None if opted_out else now}).scalar()
        if dose_id is None:
            return
        conn.execute(sa.text("UPDATE med_plan SET next_due_at = :n WHERE id = :p"),
                     {"n": nxt.at if nxt else None, "p": plan_id})
        if not opted_out:
            address = Address(c.channel, c.chat_id, c.user_id, c.thread_id, c.is_group, c.org)
            ob = dose_message(ctx["content"], plan, address, ctx["content"].normalize_locale(c.locale), dose_id,
                              scheduled, None, "", False)
            conn.execute(sa.text(
                "INSERT INTO bench_aps_outbox (org, conversation_id, channel, op, content_key, payload, status, "
                "attempts, next_attempt_at, claimed_by, created_at, platform_message_id, last_error) VALUES "
                "('default', :c, :ch, 'say', :k, :pl, 'pending', 0, :n, '', :n, '', '')"),
                {"c": plan.conversation_id, "ch": c.channel, "k": ob.key,
                 "pl": json.dumps(ob.to_dict(), ensure_ascii=False), "n": now})
        conn.execute(sa.text("INSERT INTO bench_aps_event (org, conversation_id, kind, data, at) "
                             "VALUES ('default', :c, :k, :d, :n)"),
                     {"c": plan.conversation_id, "k": "dose_missed" if opted_out else "dose_fired", "n": now,
                      "d": json.dumps({"plan": plan_id, "dose": dose_id, "at": at})})
    scheduler = ctx["scheduler"]
    if nxt is not None:
        scheduler.add_job(_aps_job, "date", run_date=nxt.at, args=[plan_id, nxt.at.isoformat()],
                          id=f"{plan_id}@{nxt.at.isoformat()}")
    if not opted_out:
        close = max(scheduled + timedelta(seconds=timing.on_time_window), now + timedelta(minutes=1))
        due, step = follow_up(timing, dose_id, plan_id, now, 1, close)
        scheduler.add_job(_aps_follow_up, "date", run_date=due, args=[dose_id, step],
                          id=f"{plan_id}:follow:{dose_id}")
    with ctx["lock"]:
        ctx["done"].append((scheduled.timestamp(), time.time()))


def _aps_follow_up(dose_id: int, step: dict[str, Any]) -> None:
    """A nag or close job (not due during the bench: it exists so the job store holds what carebot's does)."""


_APS: dict[str, Any] = {}


def run_apscheduler(url: str, due: int, rate: float, timeout: float) -> dict[str, Any]:
    import threading

    from apscheduler.executors.pool import ThreadPoolExecutor
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
    from apscheduler.schedulers.background import BackgroundScheduler

    from bot.app import load_config
    from bot.settings import Settings
    from bot.store.db import normalize_url

    settings = replace(Settings(), database_url=url, flows_dir=ROOT / "flows", content_dir=ROOT / "content",
                       timezone="UTC")
    config = load_config(settings)
    engine = sa.create_engine(normalize_url(url), pool_size=20)
    with engine.begin() as conn:
        for table, like in (("bench_aps_dose", "med_dose"), ("bench_aps_outbox", "outbox"),
                            ("bench_aps_event", "event")):  # the same columns, defaults and indexes as carebot's
            conn.exec_driver_sql(f"DROP TABLE IF EXISTS {table}")
            conn.exec_driver_sql(f"CREATE TABLE {table} (LIKE {like} INCLUDING ALL)")
        conn.exec_driver_sql("DROP TABLE IF EXISTS apscheduler_jobs")
    _APS.update(engine=engine, done=[], lock=threading.Lock(), content=config.content,
                slots=config.reminders.slot_times(), timing=config.reminders.timing(config.reminders.default_kind))
    scheduler = BackgroundScheduler(
        jobstores={"default": SQLAlchemyJobStore(engine=engine)}, executors={"default": ThreadPoolExecutor(20)},
        job_defaults={"misfire_grace_time": 3600, "coalesce": False}, timezone="UTC")
    _APS["scheduler"] = scheduler
    scheduler.start(paused=True)
    setup = time.perf_counter()
    # adding a job is an INSERT each (~5-10 ms here): the first falls due after all are added
    first_due = datetime.now(timezone.utc) + timedelta(seconds=LEAD + due * 0.012)
    for i in range(due):
        at = first_due + timedelta(seconds=i / rate)
        scheduler.add_job(_aps_job, "date", run_date=at, args=[f"B{i:09d}", at.isoformat()], id=f"B{i:09d}")
    setup = time.perf_counter() - setup
    started_late = max(0.0, (datetime.now(timezone.utc) - first_due).total_seconds())
    scheduler.resume()
    deadline = time.time() + timeout
    while len(_APS["done"]) < due and time.time() < deadline:
        time.sleep(0.05)
    scheduler.shutdown(wait=True)
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT scheduled_at FROM bench_aps_dose ORDER BY scheduled_at")).all()
        twice = conn.execute(sa.text("SELECT count(*) - count(DISTINCT plan_id) FROM bench_aps_dose")).scalar()
        said = conn.execute(sa.text("SELECT count(*) FROM bench_aps_outbox")).scalar()
        jobs = conn.execute(sa.text("SELECT count(*) FROM apscheduler_jobs")).scalar()
    engine.dispose()
    # lateness: scheduled → the job's transaction committed (the reminder is in the outbox)
    done = _APS["done"]
    late = [(d - at) * 1000 for at, d in done]
    span = max(max((d for _at, d in done), default=first_due.timestamp()) - first_due.timestamp(), 1e-3)
    return {"fired": len(rows), "fires_per_second": round(len(done) / span, 1),
            "p50_lateness_ms": round(_percentile(late, 0.5), 1), "p99_lateness_ms": round(_percentile(late, 0.99), 1),
            "max_lateness_ms": round(max(late, default=0.0), 1),
            "exactly_once": len(rows) == due and twice == 0 and said == due,
            "reminders": said, "jobs_left_in_store": jobs, "add_jobs_seconds": round(setup, 1),
            "started_late_seconds": round(started_late, 1), "workers": 1, "executor_threads": 20}


# -- the command ----------------------------------------------------------------------------------

def _move_due(url: str, placeholder: datetime, window: float, to: datetime) -> None:
    """The due doses were written a day ahead (nothing falls due while a million rows are copied);
    move them to start at `to`, payload and plan included."""
    from bot.store.db import normalize_url

    shift = to - placeholder
    span = {"s": shift, "a": placeholder, "b": placeholder + timedelta(seconds=window + 1)}
    engine = sa.create_engine(normalize_url(url))
    with engine.begin() as conn:
        # by index (status, due_at) and primary key: a few thousand rows, not a scan of a million
        conn.execute(sa.text(
            "WITH moved AS (UPDATE timer SET due_at = due_at + :s, payload = jsonb_set(payload::jsonb, '{at}', "
            "to_jsonb(to_char((due_at + :s) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"+00:00\"')))::text "
            "WHERE status = 'pending' AND due_at >= :a AND due_at < :b RETURNING payload::jsonb ->> 'plan' AS plan) "
            "UPDATE med_plan SET next_due_at = next_due_at + :s WHERE id IN (SELECT plan FROM moved)"), span)
    engine.dispose()


def run_bench(url: str, plans: int, due: int, rate: float, workers: int, timeout: float,
              claim: int, skip_apscheduler: bool = False) -> dict[str, Any]:
    due = min(due, plans)
    window = due / rate
    _fresh_schema(url)
    placeholder = datetime.now(timezone.utc) + timedelta(days=2)
    copy_seconds = create_plans(url, plans, due, placeholder, rate)
    procs = start_workers(url, workers, claim, timeout)
    first_due = datetime.now(timezone.utc) + timedelta(seconds=LEAD)
    _move_due(url, placeholder, window, first_due)
    results = run_carebot(procs, time.time() + LEAD + window + timeout)
    ours = measure_carebot(url, due, first_due)
    aps = {} if skip_apscheduler else run_apscheduler(url, due, rate, timeout + window)
    return {"target": "reminders", "plans": plans, "due": due, "offered_per_second": rate, "workers": workers,
            "create_plans_seconds": round(copy_seconds, 1),
            "plans_created_per_second": round(plans / max(copy_seconds, 1e-3)),
            **ours, "peak_rss_mb": max(r["peak_rss_mb"] for r in results),
            "fired_per_worker": [r["fired"] for r in results], "claim_batch": claim,
            # the workers' own CPU time while firing (not PostgreSQL's): per fire, and how busy they were
            "worker_cpu_ms_per_fire": round(sum(r["cpu_seconds"] for r in results) * 1000 / max(1, due), 3),
            "load_average": round(os.getloadavg()[0], 1),
            "mean_batch": round(sum(r["dose_timers"] for r in results) / max(1, sum(r["batches"] for r in results)), 1),
            "cores": os.cpu_count(), "apscheduler": aps}


def run_bench_cli(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="carebot bench reminders",
                                description="medication reminders at scale on PostgreSQL, against APScheduler "
                                            "(the database's data is deleted)")
    p.add_argument("--plans", type=int, default=20_000, help="plans (patients) to create in bulk")
    p.add_argument("--due", type=int, default=4_000, help="doses that fall due during the run")
    p.add_argument("--rate", type=float, default=2_000.0, help="due doses a second (the offered load)")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--claim", type=int, default=200, help="timers a worker claims at once")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds to wait past the window, at most")
    p.add_argument("--database-url", default="")
    p.add_argument("--no-apscheduler", action="store_true", help="skip the APScheduler comparison")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    if args.plans < 1 or args.due < 1 or args.rate <= 0 or args.workers < 1:
        p.error("--plans, --due, --rate and --workers must be positive")
    result = run_bench(_url(args), args.plans, args.due, args.rate, args.workers, args.timeout, args.claim,
                       args.no_apscheduler)
    if args.json:
        print(json.dumps(result))
    else:
        for k, v in result.items():
            print(f"{k}: {v}")
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--worker"]:
        worker_main(sys.argv[2], int(sys.argv[3]))
    else:
        sys.exit(run_bench_cli(sys.argv[1:]))
