"""`carebot bench telegram`: carebot on Telegram, durable, against two in-memory peers; and a paced
broadcast. Two processes: this one — carebot and the peers, one event loop, pinned to one CPU where
the OS allows (per-core figures) — and the load generator (`loadgen.py`: the fake Bot API of
`adapters/telegram/testing` and the patients posting updates), on the other core when there is one,
so that playing Telegram costs the measured loop nothing:

1. **carebot**: `conversations` patients × the six-message intake (`bench_intake.yml`: /bench, a
   complaint, days, severity, age, seen a doctor), each update POSTed as raw JSON to carebot's
   webhook (uvicorn on loopback, the secret header checked) — a patient sends its next message when
   the previous one was acknowledged, i.e. committed. Replies go out through the outbox to the fake
   server. Throughput = updates ÷ the time until every update is acknowledged *and* every reply
   delivered; latency = each webhook POST's round trip (receipt → durable).
2. **aiogram** (FSM, MemoryStorage) and **PTB** (ConversationHandler), in memory (`baselines.py`):
   the same updates fed in-process (`Dispatcher.feed_raw_update`, `Application.process_update`),
   replies sent over HTTP to the same fake server; latency = one update's handling, reply included.
3. **broadcast**: `broadcast` reminder messages to as many patients, written as outbox rows in one
   transaction and delivered by the sender through the adapter's shared pacing (`pacing.py`: each
   send books its moment in Coord) against the fake server's overall limit. Telegram's is 30
   messages/s; it is scaled to `broadcast_rate` (default 300/s, so 10,000 messages take ~35 s
   instead of ~6 min) and carebot's own ceiling to the same ratio as in production (count ÷ 1.03 s).
   achieved/limit = messages per second from the first to the last delivery ÷ the fake server's
   limit; lost = recipients who got nothing; unhandled 429s = rows that ended failed on a 429.

For the intake runs the fake server's limits are lifted (they are not what is measured there;
broadcast pacing is).
"""

from __future__ import annotations

import asyncio
import shutil
import statistics
import tempfile
import time
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

from adapters.telegram.bench.baselines import HERE, Texts, aiogram_dispatcher, ptb_application
from adapters.telegram.bench.loadgen import LoadGen
from adapters.telegram.config import Rate, TelegramConfig
from adapters.telegram.testing import FakeBotAPI, Updates
from bot.settings import Settings

SCRIPT = ("/bench", "手背上起了红疹，很痒", "3", "4", "35", "没有")
LOCALE = "zh-CN"
SECRET = "bench-secret"
PATIENTS = 20_000_000  # the first patient's user id
RECIPIENTS = 30_000_000  # the broadcast's first recipient


def run_telegram_bench(settings: Settings, *, conversations: int = 1000, broadcast: int = 10_000,
                       broadcast_rate: int = 300, concurrency: int = 100) -> dict[str, Any]:
    from bot.bench import peak_rss_mb, pin_one_core
    from bot.runtime.gc_tuning import tune_for_server

    loadgen = LoadGen()  # before pinning: it takes the other core
    cores = pin_one_core()
    tune_for_server()
    with tempfile.TemporaryDirectory(prefix="carebot-bench-telegram-") as tmp:
        result = asyncio.run(_bench(settings, Path(tmp), loadgen, conversations, broadcast, broadcast_rate,
                                    concurrency))
    peers = [result["aiogram"]["messages_per_second"], result["ptb"]["messages_per_second"]]
    carebot = result["carebot"]["messages_per_second"]
    result["ratio"] = {"carebot_over_aiogram": round(carebot / peers[0], 2) if peers[0] else None,
                       "carebot_over_ptb": round(carebot / peers[1], 2) if peers[1] else None}
    per_cpu = [result[k].get("messages_per_cpu_second") for k in ("carebot", "aiogram", "ptb")]
    if all(per_cpu):
        result["ratio_per_cpu_second"] = {"carebot_over_aiogram": round(per_cpu[0] / per_cpu[1], 2),
                                          "carebot_over_ptb": round(per_cpu[0] / per_cpu[2], 2)}
    result["context"] = {"cores": cores, "loadgen_core": loadgen.cpu, "conversations": conversations, "script": len(SCRIPT),
                         "concurrency": concurrency, "peak_rss_mb": peak_rss_mb(),
                         "database": "postgresql" if settings.database_url.startswith("postgresql") else "sqlite"}
    return result


def _workspace(tmp: Path, settings: Settings) -> tuple[Path, Path]:
    """The shipped flows and content plus the benchmark's intake flow and its texts."""
    flows, content = tmp / "flows", tmp / "content"
    shutil.copytree(settings.flows_dir, flows)
    shutil.copytree(settings.content_dir, content)
    shutil.copy(HERE / "bench_intake.yml", flows / "bench_intake.yml")
    for locale in ("zh-CN", "en"):
        shutil.copy(HERE / f"messages.{locale}.yml", content / "messages" / locale / "bench_intake.yml")
    return flows, content


def _scripts(conversations: int) -> list[list[dict[str, Any]]]:
    """The updates every contestant is fed: built here on an unstarted fake (ids and chats only)."""
    fake = FakeBotAPI()
    updates = Updates(fake, date=int(time.time()))
    out = []
    for i in range(conversations):
        user = fake.private(PATIENTS + i, f"P{i}")
        out.append([updates.message(user["id"], user, text) for text in SCRIPT])
    return out


async def _drive(scripts: list[list[dict[str, Any]]], feed: Any, concurrency: int) -> tuple[float, list[float], int]:
    """Each conversation sends its next update once the last one was handled; `concurrency`
    conversations at a time. Returns (seconds, latencies in ms, failures)."""
    latencies: list[float] = []
    failures = 0
    queue = list(reversed(scripts))

    async def patient() -> None:
        nonlocal failures
        while queue:
            script = queue.pop()
            for update in script:
                t = time.perf_counter()
                ok = await feed(update)
                latencies.append((time.perf_counter() - t) * 1000)
                failures += 0 if ok else 1

    started = time.perf_counter()
    await asyncio.gather(*(patient() for _ in range(min(concurrency, len(scripts)))))
    return time.perf_counter() - started, latencies, failures


def _figures(updates: int, seconds: float, latencies: list[float], replies: int, expected: int,
             failures: int) -> dict[str, Any]:
    ordered = sorted(latencies)
    return {"messages_per_second": round(updates / seconds, 1) if seconds else 0.0,
            "p50_ms": round(statistics.median(ordered), 2) if ordered else None,
            "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))], 2) if ordered else None,
            "seconds": round(seconds, 2), "updates": updates, "replies": replies, "replies_expected": expected,
            "failures": failures}


def _cpu(updates: int, seconds: float) -> dict[str, Any]:
    """CPU seconds this process spent (all its threads) and updates per CPU second: on a shared
    machine the wall clock also measures what others ran meanwhile, the CPU time does not."""
    return {"cpu_seconds": round(seconds, 2),
            "messages_per_cpu_second": round(updates / seconds, 1) if seconds > 0 else None}


async def _bench(settings: Settings, tmp: Path, loadgen: LoadGen, conversations: int, broadcast: int,
                 broadcast_rate: int, concurrency: int) -> dict[str, Any]:
    try:
        return await _contest(settings, tmp, loadgen, conversations, broadcast, broadcast_rate, concurrency)
    finally:
        await loadgen.stop()


async def _contest(settings: Settings, tmp: Path, loadgen: LoadGen, conversations: int, broadcast: int,
                   broadcast_rate: int, concurrency: int) -> dict[str, Any]:
    import uvicorn

    from adapters.telegram.adapter import TelegramAdapter
    from bot.app import CareBot, load_config
    from bot.coord import make_coord
    from bot.server import create_app
    from bot.store.migrate import upgrade

    flows, content = _workspace(tmp, settings)
    url = settings.database_url if settings.database_url.startswith("postgresql") else f"sqlite:///{tmp / 'bench.db'}"
    upgrade(url)
    bench_settings = replace(settings, database_url=url, flows_dir=flows, content_dir=content,
                             worker_id=f"bench-{uuid.uuid4().hex[:4]}", secret=settings.secret or "bench")
    expected = conversations * len(SCRIPT)
    scripts = _scripts(conversations)
    await loadgen.call("users", PATIENTS, conversations)
    out: dict[str, Any] = {}

    # 1. carebot, durable, through the webhook
    config = TelegramConfig(token=loadgen.token, webhook_secret=SECRET, api_base=loadgen.base_url,
                            username=loadgen.username, overall=Rate(1_000_000, 1.0), per_chat=Rate(1_000_000, 1.0),
                            per_group=Rate(1_000_000, 1.0))
    adapter = TelegramAdapter(config)
    bot = CareBot.build(bench_settings, [adapter], config=load_config(bench_settings),
                        coord=make_coord(settings.redis_url or None))
    server = uvicorn.Server(uvicorn.Config(create_app(bot), host="127.0.0.1", port=0, log_level="warning",
                                           lifespan="on", access_log=False))
    serving = asyncio.create_task(server.serve())
    try:
        while not server.started:
            await asyncio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        await adapter.bot.set_webhook(f"http://127.0.0.1:{port}{config.webhook_path}", secret_token=SECRET)
        cpu = time.process_time()
        driven = await loadgen.call("drive", scripts, concurrency, expected, 120.0)
        out["carebot"] = {**_figures(expected, driven["seconds"], driven["latencies"], driven["replies"], expected,
                                     driven["failures"]),
                          "durable": True, "road": "webhook over HTTP (uvicorn on loopback)",
                          **_cpu(expected, time.process_time() - cpu),
                          "loadgen_cpu_seconds": round(driven["cpu_seconds"], 2)}

        # 3. the broadcast, through the same carebot
        out["broadcast"] = await _broadcast(bot, adapter, loadgen, broadcast, broadcast_rate)
    finally:
        server.should_exit = True
        await serving
    await loadgen.call("limits", None)

    # 2. the in-memory peers, fed the same updates in-process
    out["aiogram"] = await _peer("aiogram", loadgen, scripts, concurrency)
    out["ptb"] = await _peer("ptb", loadgen, scripts, concurrency)
    return out


async def _peer(name: str, loadgen: LoadGen, scripts: list[list[dict[str, Any]]], concurrency: int) -> dict[str, Any]:
    texts = Texts(LOCALE)
    expected = len(scripts) * len(SCRIPT)
    closers: list[Any] = []
    try:
        if name == "aiogram":
            from aiogram import Bot
            from aiogram.client.session.aiohttp import AiohttpSession
            from aiogram.client.telegram import TelegramAPIServer

            bot = Bot(loadgen.token, session=AiohttpSession(api=TelegramAPIServer.from_base(loadgen.base_url)))
            closers.append(bot.session.close)
            dispatcher = aiogram_dispatcher(texts)

            async def feed(update: dict[str, Any]) -> bool:
                await dispatcher.feed_raw_update(bot, update)
                return True
        else:
            from telegram import Update

            application = ptb_application(texts, loadgen.token, loadgen.base_url)
            await application.initialize()
            closers.append(application.shutdown)

            async def feed(update: dict[str, Any]) -> bool:
                await application.process_update(Update.de_json(update, application.bot))
                return True

        before = await loadgen.call("mark")
        started, cpu = time.perf_counter(), time.process_time()
        _seconds, latencies, failures = await _drive(scripts, feed, concurrency)
        total = time.perf_counter() - started  # each reply was sent inside its handler
        cpu = time.process_time() - cpu
        replies = await loadgen.call("mark") - before
        return {**_figures(expected, total, latencies, replies, expected, failures), "durable": False,
                **_cpu(expected, cpu),
                "road": "fed in-process" + (" (Dispatcher.feed_raw_update, FSM on MemoryStorage)" if name == "aiogram"
                                            else " (Application.process_update, ConversationHandler)")}
    finally:
        for close in reversed(closers):
            await close()


async def _broadcast(bot: Any, adapter: Any, loadgen: LoadGen, count: int, rate: int) -> dict[str, Any]:
    """`count` reminders to as many patients, paced by carebot against the fake server's limit."""
    from adapters.telegram.pacing import Pacer
    from bot.store.store import OUTBOX
    from bot.types import Address, Outbound

    import sqlalchemy as sa

    await loadgen.call("limits", (rate, 1.0))
    adapter.pacer = Pacer(bot.coord, Rate(rate, 1.03), adapter.config.per_chat, adapter.config.per_group)
    recipients = [RECIPIENTS + i for i in range(count)]
    await loadgen.call("users", RECIPIENTS, count)
    now = bot.clock.now()
    outbounds = [Outbound("say", Address("telegram", str(uid), str(uid)), text="明天早上 8:00 记得服药。",
                          key="bench.reminder") for uid in recipients]

    def write(conn: sa.Connection) -> list[Any]:
        return [bot.store.outbox_row(conn, ob.address.conversation_id, ob, now) for ob in outbounds]

    first_row = await bot.store.read(lambda c: c.execute(sa.select(sa.func.coalesce(sa.func.max(OUTBOX.c.id), 0))).scalar())
    before = await loadgen.call("mark")
    started = time.perf_counter()
    rows = await bot.store.write(write)
    bot.sender.enqueue(rows)
    delivered = await loadgen.call("delivered", before, count, count / rate * 3 + 30)
    await bot.sender.idle()
    elapsed = time.perf_counter() - started
    chats = delivered["chats"]
    got = set(chats)
    # messages per second between the first and the last delivery (n - 1 intervals)
    achieved = (len(chats) - 1) / delivered["span"] if delivered["span"] > 0 else 0.0
    statuses = await bot.store.read(lambda c: c.execute(sa.select(OUTBOX.c.status, OUTBOX.c.last_error).where(
        OUTBOX.c.id > first_row)).all())
    unhandled = sum(1 for s in statuses if s.status != "sent" and "429" in (s.last_error or ""))
    return {"messages": count, "limit_per_second": rate, "telegram_limit_per_second": 30,
            "scaled": rate / 30, "achieved_per_second": round(achieved, 1),
            "achieved_over_limit": round(achieved / rate, 3), "lost": len(set(recipients) - got),
            "duplicates": len(chats) - len(got), "unhandled_429": unhandled,
            "fake_server_429s": delivered["rate_limited"],
            "not_sent": sum(1 for s in statuses if s.status != "sent"), "seconds": round(elapsed, 2)}
