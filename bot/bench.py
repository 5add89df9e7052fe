"""`carebot bench engine`: the full runtime (durable commits) and the engine alone.

The runtime benchmark drives synthetic patients through the shipped `checkin` flow via the memory
adapter: four messages a cycle (start, a score, yes/no, a note), each one a committed turn with its
outbox rows delivered. It measures throughput at saturation (every patient sends as soon as its
previous message is committed), then latency at an offered load of half that throughput (messages
sent on a fixed schedule, latency = receipt to commit). The process pins itself to one CPU where
the OS allows, so figures are per core.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import platform
import resource
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import bot.safety as safety_module
from bot.app import CareBot, build_pipeline, load_config
from bot.safety import SafetyStage
from bot.runtime.gc_tuning import tune_for_server
from bot.engine.state import State
from bot.settings import Settings
from bot.store.migrate import upgrade
from bot.testing.memory import MemoryAdapter
from bot.types import Address, Inbound

SCRIPT = ["/checkin", "7", "是", "脚踝有点肿，昨天开始"]


def pin_one_core() -> int:
    try:
        cpu = sorted(os.sched_getaffinity(0))[0]
        os.sched_setaffinity(0, {cpu})
        return 1
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def run_bench(target: str, settings: Settings, *, pure: bool = False, conversations: int = 200,
              messages: int = 20000, seconds: float = 5.0, workers: int = 0, worker_index: int = -1,
              run_id: str = "") -> dict[str, Any]:
    if target == "startup":
        return {"target": target, **bench_startup(runs=5)}
    if workers and worker_index < 0:
        return {"target": target, **bench_workers(settings, workers, conversations, messages)}
    cores = pin_one_core() if worker_index < 0 else pin_core(worker_index)
    if pure:
        tune_for_server()
    base = {"target": target, "cores": cores, "python": platform.python_version(), "machine": platform.machine()}
    if pure:
        return {**base, **bench_pure(settings, messages=max(messages, 20000))}
    if worker_index >= 0:
        return {**base, **asyncio.run(bench_worker(settings, worker_index, run_id, conversations, messages))}
    return {**base, **asyncio.run(bench_runtime(settings, conversations, messages, seconds))}


def pin_core(index: int) -> int:
    """A worker of `--workers N`: worker i on core i (modulo the cores this process may use)."""
    try:
        cpus = sorted(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cpus[index % len(cpus)]})
    except (AttributeError, OSError):
        pass
    return 1


def cpu_seconds() -> float:
    """CPU time of this process, all its threads (the writer threads included)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _inbound(chat: str, text: str, n: int) -> Inbound:
    # message ids are unique per run (chat names carry the run's id): Redis keeps seen-marks for a day
    return Inbound(kind="command" if text.startswith("/") else "text",
                   address=Address("memory", chat, chat), message_id=f"{chat}-{n}",
                   received_at=datetime.now(timezone.utc), text=text)


def bench_pure(settings: Settings, messages: int) -> dict[str, Any]:
    """Steps per second of the engine alone, and of the whole pipeline (with red-flag triage)."""
    config = load_config(settings)
    engine, pipeline = build_pipeline(config, settings.base_locale)
    now = datetime.now(timezone.utc)
    out: dict[str, Any] = {}
    states: dict[str, State] = {}

    def next_turn(i: int) -> tuple[str, State, Inbound]:
        chat = f"p{i % 100}"
        inbound = _inbound(chat, SCRIPT[(i // 100) % len(SCRIPT)], i)
        return chat, states.get(chat) or engine.new_state(inbound), inbound

    gc.collect()
    started = time.perf_counter()
    for i in range(messages):
        chat, state, inbound = next_turn(i)
        states[chat], _effects = engine.step(state, inbound, now)
    out["engine_steps_per_second"] = round(messages / (time.perf_counter() - started))

    async def pipeline_steps() -> float:  # stages may await: the pipeline runs in an event loop
        started = time.perf_counter()
        for i in range(messages):
            chat, state, inbound = next_turn(i)
            states[chat], _effects = await pipeline.run(state, inbound, now)
        return time.perf_counter() - started

    # The pipeline twice: first with the screening memory off (every message screened afresh: what a
    # new message costs, and the fair comparison with a tree that had no memory), then as shipped (the
    # bench's few scripted messages repeat, so that run is mostly remembered screenings).
    safety = next(stage for stage in pipeline.stages if isinstance(stage, SafetyStage))
    remembered, carries = safety.screener._remembered, safety_module._carries_value
    safety.screener._remembered, safety_module._carries_value = safety.screener._screen, carries.__wrapped__
    try:
        states.clear()
        gc.collect()
        out["pipeline_steps_per_second"] = round(messages / asyncio.run(pipeline_steps()))
    finally:
        safety.screener._remembered, safety_module._carries_value = remembered, carries
    states.clear()
    gc.collect()
    out["pipeline_remembered_steps_per_second"] = round(messages / asyncio.run(pipeline_steps()))
    out["steps_per_second"] = out["engine_steps_per_second"]
    out["peak_rss_mb"] = peak_rss_mb()
    return out


async def _warm_bot(settings: Settings, prefix: str) -> tuple[CareBot, MemoryAdapter, Callable[[str, int], Awaitable[None]]]:
    """A started bot on the memory adapter, warmed up (paths compiled, caches filled) and tuned as
    `carebot run` tunes itself once built; and `patient(chat, n)`, which sends n messages of the
    script in one conversation, each after the previous one was handled."""
    adapter = MemoryAdapter()
    bot = CareBot.build(settings, [adapter])
    await bot.start(background=False)
    counter = 0

    async def patient(chat: str, n: int) -> None:
        nonlocal counter
        for i in range(n):
            counter += 1
            await bot.runtime.handle(_inbound(chat, SCRIPT[i % len(SCRIPT)], counter))

    try:
        await asyncio.gather(*(patient(f"{prefix}warm{c}", len(SCRIPT)) for c in range(20)))
        await bot.sender.idle()
    except BaseException:
        await bot.stop()
        raise
    tune_for_server()
    return bot, adapter, patient


async def bench_runtime(settings: Settings, conversations: int, messages: int, seconds: float) -> dict[str, Any]:
    tmp = tempfile.TemporaryDirectory(prefix="carebot-bench-")
    url = _database(settings, tmp.name)
    run = uuid.uuid4().hex[:8]  # fresh conversations and message ids in Redis, whatever ran before
    bot, adapter, patient = await _warm_bot(replace(settings, database_url=url, worker_id="bench"), run)
    try:

        per = max(len(SCRIPT), messages // conversations)
        started, cpu = time.perf_counter(), cpu_seconds()
        await asyncio.gather(*(patient(f"{run}sat{c}", per) for c in range(conversations)))
        await bot.sender.idle()
        elapsed, cpu = time.perf_counter() - started, cpu_seconds() - cpu
        throughput = per * conversations / elapsed

        # latency at half the throughput, open loop: messages leave on schedule whatever happens.
        # Start from a settled system: the saturation run left a long WAL whose checkpoint would
        # otherwise run during the measurement, on the same (pinned) core.
        checkpointer = bot.store._checkpointer
        if checkpointer is not None:
            await asyncio.to_thread(checkpointer.checkpoint, "RESTART")
        checkpoints = checkpointer.checkpoints if checkpointer is not None else 0
        gc.collect()
        rate = throughput / 2
        total = max(200, int(rate * seconds))
        latencies: list[float] = []
        chats = [f"{run}lat{c}" for c in range(conversations)]
        sent_per_chat = {c: 0 for c in chats}
        pending: list[asyncio.Task[None]] = []

        marks = _StageMarks(bot)

        async def one(chat: str, text: str, n: int, first: bool) -> None:
            t0 = time.perf_counter()
            inbound = _inbound(chat, text, n)
            marks.start(inbound.message_id, t0, first)
            await bot.runtime.handle(inbound)
            t1 = time.perf_counter()
            latencies.append(t1 - t0)
            marks.end(inbound.message_id, t1)

        t_start = time.perf_counter()
        for k in range(total):
            due = t_start + k / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            chat = chats[k % len(chats)]
            i = sent_per_chat[chat]
            sent_per_chat[chat] = i + 1
            # message ids of their own: the warm-up and saturation ids stay far below 10**9
            pending.append(asyncio.create_task(one(chat, SCRIPT[i % len(SCRIPT)], 10**9 + k, i == 0)))
        await asyncio.gather(*pending)
        offered_seconds = time.perf_counter() - t_start
        marks.stop()
        # how many background checkpoints ran inside the measurement: a phase too short for the
        # schedule (64 MB of WAL) would measure none and flatter the tail
        checkpoints = checkpointer.checkpoints - checkpoints if checkpointer is not None else 0
        await bot.sender.idle()
        latencies.sort()
        result = {
            "database": url.split(":")[0],
            "coordination": "redis" if settings.redis_url else "memory",
            "conversations": conversations,
            "messages_per_second": round(throughput),
            "cpu_us_per_message": round(cpu / (per * conversations) * 1e6),
            "half_load_rate": round(rate),
            "half_load_messages": total,
            "half_load_achieved_rate": round(total / offered_seconds),
            "p50_ms": round(statistics.median(latencies) * 1000, 2),
            "p99_ms": round(latencies[int(len(latencies) * 0.99) - 1] * 1000, 2),
            "p99_tail_ms": marks.tail(),
            "wal_checkpoints": checkpoints,
            "delivered": len(adapter.sent),
            "commit_batches": bot.store.writer.batches,
            "turns_per_commit": round(bot.store.writer.items / max(1, bot.store.writer.batches), 1),
            "peak_rss_mb": peak_rss_mb(),
        }
        return result
    finally:
        await bot.stop()
        tmp.cleanup()


class _StageMarks:
    """Where the slowest messages of the half-load phase spent their time: each message's receipt,
    pipeline start and end, commit submitted and done, and return are stamped (the pipeline and the
    commit are wrapped on this bot only), along with the GC pauses and the loop's commit batches.
    `tail()` gives, for the messages at or above p99, the median of each stage."""

    STAGES = ("queued", "pipeline", "to_commit", "commit", "to_return")

    def __init__(self, bot: CareBot):
        self.bot = bot
        self.stamps: dict[str, list[float]] = {}
        self.gc_pauses: list[float] = []
        self._gc_started = 0.0
        pipeline, store = bot.runtime.pipeline, bot.store
        run, commit = pipeline.run, store.commit_turn

        async def timed_run(state: State, inbound: Inbound, now: datetime) -> Any:
            self._mark(inbound.message_id, 1)
            try:
                return await run(state, inbound, now)
            finally:
                self._mark(inbound.message_id, 2)

        async def timed_commit(turn: Any) -> Any:
            key = turn.inbound.message_id if turn.inbound is not None else ""
            self._mark(key, 3)
            try:
                return await commit(turn)
            finally:
                self._mark(key, 4)

        pipeline.run, store.commit_turn = timed_run, timed_commit  # type: ignore[method-assign]
        gc.callbacks.append(self._gc)

    def _gc(self, phase: str, _info: dict[str, Any]) -> None:
        if phase == "start":
            self._gc_started = time.perf_counter()
        else:
            self.gc_pauses.append(time.perf_counter() - self._gc_started)

    def _mark(self, key: str, i: int) -> None:
        stamps = self.stamps.get(key)
        if stamps is not None:
            stamps[i] = time.perf_counter()

    def start(self, key: str, t: float, first: bool) -> None:
        """`first`: the conversation's first message, whose state is read from the database."""
        self.stamps[key] = [t, t, t, t, t, t, float(first)]

    def end(self, key: str, t: float) -> None:
        self.stamps[key][5] = t

    def stop(self) -> None:
        del self.bot.runtime.pipeline.run, self.bot.store.commit_turn
        gc.callbacks.remove(self._gc)

    def tail(self) -> dict[str, Any]:
        rows = sorted(self.stamps.values(), key=lambda s: s[5] - s[0])
        slow = rows[int(len(rows) * 0.99) - 1:] or rows
        out: dict[str, Any] = {"messages": len(slow), "first_of_conversation": int(sum(s[6] for s in slow)),
                               "first_of_conversation_all": round(sum(s[6] for s in rows) / max(1, len(rows)), 2)}
        for i, stage in enumerate(self.STAGES):
            out[stage] = round(statistics.median(s[i + 1] - s[i] for s in slow) * 1000, 2)
        pauses = sorted(self.gc_pauses)
        out["gc_pauses"] = len(pauses)
        out["gc_max_ms"] = round(pauses[-1] * 1000, 2) if pauses else 0.0
        return out


def _database(settings: Settings, tmp: str) -> str:
    url = settings.database_url
    if not os.environ.get("DATABASE_URL") and url == Settings().database_url:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
    elif url.startswith("postgres"):
        _reset_postgres(url)
    upgrade(url)
    return url


def bench_workers(settings: Settings, workers: int, conversations: int, messages: int) -> dict[str, Any]:
    """`--workers N`: N worker processes, worker i pinned to core i, against one database and
    one Redis, each driving its own patients at saturation; they start together (a barrier on
    their stdin) and the aggregate is all their messages over the wall time from the first start
    to the last finish. Needs PostgreSQL and Redis (SQLite is one process by design)."""
    import subprocess
    import sys

    if not settings.database_url.startswith("postgres") or not settings.redis_url:
        raise SystemExit("--workers needs --database-url postgresql://… and --redis-url redis://…")
    with tempfile.TemporaryDirectory(prefix="carebot-bench-") as tmp:
        url = _database(settings, tmp)
    run = uuid.uuid4().hex[:8]
    env = {**os.environ, "DATABASE_URL": url, "REDIS_URL": settings.redis_url}
    procs = [subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "bench", "engine", "--json", "--database-url", url,
         "--redis-url", settings.redis_url, "--workers", str(workers), "--worker-index", str(i),
         "--run-id", run, "--conversations", str(conversations), "--messages", str(messages)],
        env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) for i in range(workers)]
    try:
        for p in procs:  # each says "ready" once warmed up
            line = p.stdout.readline() if p.stdout else ""
            if line.strip() != "ready":
                raise RuntimeError(f"a bench worker did not start: {line!r}")
        servers = ServerCpu(url, settings.redis_url)
        for p in procs:
            assert p.stdin is not None
            p.stdin.write("go\n")
            p.stdin.flush()
        results = []
        for p in procs:  # each reports, then keeps its connections until told to stop
            assert p.stdout is not None
            results.append(json.loads(p.stdout.readline()))
        servers_cpu = servers.used()
        for p in procs:
            p.communicate("stop\n", timeout=60)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    total = sum(r["messages"] for r in results)
    wall = max(r["finished"] for r in results) - min(r["started"] for r in results)
    return {"database": "postgresql", "coordination": "redis", "workers": workers,
            "conversations_per_worker": conversations,
            "messages_per_second": round(total / wall),
            "per_worker_messages_per_second": [r["messages_per_second"] for r in results],
            "cpu_us_per_message": [r["cpu_us_per_message"] for r in results],
            # the servers' CPU per message of all workers: what the workers' cores also carry
            **{f"{k}_cpu_us_per_message": round(v / total * 1e6) for k, v in servers_cpu.items()},
            "peak_rss_mb": [r["peak_rss_mb"] for r in results]}


def _proc_cpu(pid: int) -> float:
    """CPU seconds (user + system) a local process has used; 0 when it is not readable."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


class ServerCpu:
    """CPU the database and Redis spend during a run, read from /proc (both on this machine):
    `postgres` is the backends connected to the bench's database (their own work, whoever else
    uses the server), `postgres_shared` the server's background processes (WAL writer,
    checkpointer…; shared with any other database on the server), `redis` the whole redis-server
    (shared with anything else using it), `machine_busy` every process on the machine."""

    def __init__(self, database_url: str, redis_url: str):
        import sqlalchemy as sa

        from bot.store.db import normalize_url

        self._engine = sa.create_engine(normalize_url(database_url), poolclass=sa.pool.NullPool)
        self._redis_url = redis_url
        self._start = self._sample()

    def _sample(self) -> dict[str, Any]:
        import redis

        with self._engine.connect() as conn:
            rows = conn.exec_driver_sql(
                "SELECT pid, CASE WHEN datname IS NULL THEN NULL ELSE datname = current_database() "
                "AND backend_type = 'client backend' AND pid <> pg_backend_pid() END FROM pg_stat_activity").all()
        client = redis.Redis.from_url(self._redis_url)
        try:
            redis_pid = int(client.info("server")["process_id"])
        finally:
            client.close()
        return {"ours": {pid: _proc_cpu(pid) for pid, ours in rows if ours},
                "shared": {pid: _proc_cpu(pid) for pid, ours in rows if ours is None},
                "redis": _proc_cpu(redis_pid), "machine": _machine_busy()}

    def used(self) -> dict[str, float]:
        end, start = self._sample(), self._start
        self._engine.dispose()

        def delta(kind: str) -> float:  # backends that connected meanwhile count from 0
            return sum(cpu - start[kind].get(pid, 0.0) for pid, cpu in end[kind].items())

        return {"postgres": delta("ours"), "postgres_shared": delta("shared"),
                "redis": end["redis"] - start["redis"], "machine_busy": end["machine"] - start["machine"]}


def _machine_busy() -> float:
    """CPU seconds all cores spent busy since boot (every process, ours or not)."""
    try:
        with open("/proc/stat") as f:
            ticks = [int(x) for x in f.readline().split()[1:]]
    except (OSError, ValueError):
        return 0.0
    idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)
    return (sum(ticks[:8]) - idle) / os.sysconf("SC_CLK_TCK")


async def bench_worker(settings: Settings, index: int, run: str, conversations: int, messages: int) -> dict[str, Any]:
    """One worker of `--workers N` (see bench_workers): its own patients, saturation only."""
    import sys

    prefix = f"{run}w{index}"
    bot, _, patient = await _warm_bot(replace(settings, worker_id=f"bench{index}"), prefix)
    try:
        print("ready", flush=True)
        await asyncio.to_thread(sys.stdin.readline)
        per = max(len(SCRIPT), messages // conversations)
        started, cpu, t0 = time.time(), cpu_seconds(), time.perf_counter()
        await asyncio.gather(*(patient(f"{prefix}sat{c}", per) for c in range(conversations)))
        await bot.sender.idle()
        elapsed, cpu = time.perf_counter() - t0, cpu_seconds() - cpu
        print(json.dumps({"messages": per * conversations, "started": started, "finished": started + elapsed,
                          "messages_per_second": round(per * conversations / elapsed),
                          "cpu_us_per_message": round(cpu / (per * conversations) * 1e6),
                          "peak_rss_mb": peak_rss_mb()}), flush=True)
        await asyncio.to_thread(sys.stdin.readline)  # the parent reads the servers' CPU meanwhile
        return {"worker": index}
    finally:
        await bot.stop()


def _reset_postgres(url: str) -> None:
    import sqlalchemy as sa

    from bot.store.db import normalize_url

    engine = sa.create_engine(normalize_url(url))
    with engine.begin() as conn:
        for table in ("inbox", "outbox", "timer", "event", "ticket_message", "ticket", "conversation"):
            conn.exec_driver_sql(f"DELETE FROM {table}") if sa.inspect(conn).has_table(table) else None
    engine.dispose()


def bench_startup(runs: int = 5) -> dict[str, Any]:
    """Seconds from starting `carebot run` (an already migrated database) to its first /healthz
    answer, and to /readyz (flows and the learned models loaded, database open, adapters serving)."""
    import socket
    import subprocess
    import sys
    import urllib.request

    times: list[float] = []
    ready: list[float] = []
    models: list[str] = []
    with tempfile.TemporaryDirectory(prefix="carebot-startup-") as tmp:
        url = f"sqlite:///{Path(tmp) / 'start.db'}"
        upgrade(url)
        for _ in range(runs):
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
            env = {**os.environ, "DATABASE_URL": url, "CAREBOT_PORT": str(port), "CAREBOT_SECRET": "bench"}
            started = time.perf_counter()
            proc = subprocess.Popen([sys.executable, "-m", "bot.cli", "run", "--no-migrate"], env=env,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


            def first_answer(path: str) -> float:
                nonlocal models
                while True:
                    try:
                        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=1) as answer:
                            at = time.perf_counter() - started
                            models = json.load(answer).get("models", models)
                            return at
                    except OSError:
                        if proc.poll() is not None or time.perf_counter() - started > 30:
                            raise RuntimeError("carebot run did not come up") from None
                        time.sleep(0.01)

            try:
                times.append(first_answer("/healthz"))
                ready.append(first_answer("/readyz"))
            finally:
                proc.terminate()
                proc.wait(timeout=20)
    return {"runs": runs, "healthz_after_start_s_median": round(statistics.median(times), 3),
            "healthz_after_start_s_max": round(max(times), 3),
            "ready_after_start_s_median": round(statistics.median(ready), 3),
            "ready_after_start_s_max": round(max(ready), 3),
            "models_loaded_when_ready": models}  # /readyz answers 200 once the learned layers are in
