"""Several worker processes on PostgreSQL and Redis: timers fire once, messages are handled once
and one at a time per conversation."""

from __future__ import annotations

import asyncio
import subprocess
from datetime import timedelta

import pytest
import sqlalchemy as sa

from bot.clock import ManualClock
from bot.coord.redis import RedisCoord
from bot.store.store import EVENT, INBOX, OUTBOX, TIMER
from tests.conftest import ROOT, python_path, T0
from tests.flows_common import ECHO_FLOWS, ECHO_MESSAGES
from tests.test_crash import run_worker


def _spawn(tmp_path, *args: str) -> subprocess.Popen:  # type: ignore[no-untyped-def]
    import os
    import sys

    env = {**os.environ, "CAREBOT_TEST_TMP": str(tmp_path), "PYTHONPATH": python_path()}
    return subprocess.Popen([sys.executable, "-m", "tests.worker", *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


async def test_two_workers_on_postgres_never_fire_one_timer_twice(tmp_path, pg_url, make_bot):
    n = 150
    bot, platform, _ = make_bot(ECHO_FLOWS, ECHO_MESSAGES, url=pg_url,
                                clock=ManualClock(T0))
    await bot.start(background=False)
    await asyncio.gather(*(bot.runtime.handle(platform.inbound(f"p{i}", "/remind", kind="command"))
                           for i in range(n)))
    await bot.sender.idle()
    await bot.stop()

    workers = [_spawn(tmp_path, "timers", pg_url) for _ in range(2)]
    outputs = [w.communicate(timeout=120) for w in workers]
    for w, (out, err) in zip(workers, outputs):
        assert w.returncode == 0, err
    fired = [int(out.split("fired")[1]) for out, _ in outputs]
    assert sum(fired) == n

    bot2, _, _ = make_bot(ECHO_FLOWS, ECHO_MESSAGES, url=pg_url)
    try:
        timers = await bot2.store.read(lambda c: c.execute(sa.select(TIMER.c.status, TIMER.c.claimed_by)).all())
        assert [t.status for t in timers] == ["fired"] * n
        records = await bot2.store.read(lambda c: c.execute(
            sa.select(EVENT.c.conversation_id).where(EVENT.c.kind == "pill_fired")).all())
        assert len(records) == n and len({r.conversation_id for r in records}) == n
        reminders = await bot2.store.read(lambda c: c.execute(
            sa.select(sa.func.count()).select_from(OUTBOX).where(OUTBOX.c.content_key == "t.pill")).scalar())
        assert reminders == n
    finally:
        bot2.store.close()


async def test_redis_locks_and_dedupe_across_two_processes(tmp_path, pg_url, redis_url):
    import redis

    redis.Redis.from_url(redis_url).flushdb()
    # the same 60 deliveries reach both workers at once: 3 conversations x 20 messages each
    ids = [f"c{c}:m{m:02d}" for m in range(20) for c in range(3)]
    workers = [_spawn(tmp_path, "inbound", pg_url, redis_url, ",".join(ids)) for _ in range(2)]
    outputs = [w.communicate(timeout=120) for w in workers]
    for w, (out, err) in zip(workers, outputs):
        assert w.returncode == 0, err
    stats = [dict(zip(out.split()[0::2], map(int, out.split()[1::2]))) for out, _ in outputs]
    assert sum(s["processed"] for s in stats) == len(ids)
    assert sum(s["duplicate"] for s in stats) == len(ids)
    assert all(s["conflicts"] == 0 for s in stats)  # the Redis lock serialised every conversation

    engine = sa.create_engine(pg_url.replace("postgresql://", "postgresql+psycopg://"))
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(INBOX)).scalar() == len(ids)
        states = conn.execute(sa.text("SELECT id, state FROM conversation ORDER BY id")).all()
    engine.dispose()
    import json

    for conv_id, state in states:
        seen = json.loads(state)["slots"]["seen"]
        chat = conv_id.split(":")[2]
        # every message but the first (which started the flow) was answered exactly once, in the
        # order it arrived: each worker takes a conversation's messages in order, under the lock
        assert seen == [i for i in ids if i.startswith(chat + ":")][1:]


async def test_redis_lock_excludes_other_holders(redis_url):
    a, b = RedisCoord(redis_url), RedisCoord(redis_url)
    await a.redis.delete("carebot:counter")
    try:
        async def bump(coord: RedisCoord) -> None:
            for _ in range(25):
                async with coord.lock("shared", ttl=5):
                    value = int(await coord.redis.get("carebot:counter") or 0)
                    await asyncio.sleep(0)  # a lost update would show here
                    await coord.redis.set("carebot:counter", value + 1)

        await asyncio.gather(bump(a), bump(b), bump(a), bump(b))
        assert int(await a.redis.get("carebot:counter")) == 100
        # de-duplication and rate limits are shared too
        await a.mark_seen("wecom:msg-1")
        assert await b.seen("wecom:msg-1") and not await b.seen("wecom:msg-2")
        await a.redis.delete("carebot:rate:chat1")
        waits = [await coord.hit("chat1", 3, 10) for coord in (a, b, a, b)]
        assert waits[:3] == [0.0, 0.0, 0.0] and waits[3] > 0
    finally:
        await a.close()
        await b.close()


async def test_two_processes_one_timer_race_on_the_claim(tmp_path, pg_url, make_bot):
    """The strongest case: one due timer, two workers starting at the same instant."""
    bot, platform, _ = make_bot(ECHO_FLOWS, ECHO_MESSAGES, url=pg_url,
                                clock=ManualClock(T0 - timedelta(minutes=1)))
    await bot.start(background=False)
    await bot.runtime.handle(platform.inbound("solo", "/remind", kind="command"))
    await bot.stop()
    workers = [_spawn(tmp_path, "timers", pg_url) for _ in range(2)]
    outs = [w.communicate(timeout=120)[0] for w in workers]
    assert sorted(int(o.split("fired")[1]) for o in outs) == [0, 1]


async def test_a_grab_ticket_offered_to_two_doctors_at_once_is_taken_by_exactly_one(tmp_path, pg_url, redis_url,
                                                                                      make_bot):
    """Two worker processes on PostgreSQL + Redis; both doctors press "take" at the same instant.

    Three tickets, three races between the same two processes: each race starts when the test says
    "go" to both, once both are up and waiting (an event, never a wall-clock instant)."""
    import redis

    redis.Redis.from_url(redis_url).flushdb()
    bot, platform, _ = make_bot(url=pg_url, shipped=True, redis_url=redis_url, clock=ManualClock(T0))
    await bot.start(background=False)
    for doctor in ("d_li", "d_ma"):
        await bot.handoff.add_staff(doctor, doctor, "doctor", "test-password", departments=["dermatology"])
    tickets = []
    for race in range(3):
        chat = f"race{race}"
        for n, text in enumerate(("人工", "是", "是", "否")):
            await bot.runtime.handle(platform.inbound(chat, text, message_id=f"{chat}-{n}"))
        await bot.runtime.handle(platform.inbound(chat, kind="choice", payload={"value": "dermatology"},
                                                  message_id=f"{chat}-dept"))
        await bot.settle()
        conv = platform.inbound(chat).address.conversation_id
        tickets.append(await bot.store.read(lambda c: c.execute(sa.text(
            "SELECT id FROM ticket WHERE conversation_id = :c"), {"c": conv}).scalar()))
    await bot.stop()
    assert len(set(tickets)) == 3 and all(tickets)

    import os
    import sys

    env = {**os.environ, "CAREBOT_TEST_TMP": str(tmp_path), "PYTHONPATH": python_path()}
    workers = []
    for doctor in ("d_li", "d_ma"):
        err = open(tmp_path / f"take-{doctor}.err", "w+")  # a file: a chatty worker never blocks on a pipe
        workers.append((subprocess.Popen([sys.executable, "-m", "tests.worker", "take", pg_url, redis_url, doctor,
                                          ",".join(tickets)], cwd=ROOT, env=env, stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, stderr=err, text=True), err))

    def line(worker: subprocess.Popen, err, want: str) -> str:  # type: ignore[no-untyped-def]
        got = worker.stdout.readline()  # EOF ("") if the worker died: then say why
        if not got.startswith(want):
            worker.kill()
            err.seek(0)
            raise AssertionError(f"expected {want!r} from the worker, got {got!r}; stderr:\n{err.read()[-3000:]}")
        return got

    try:
        for ticket in tickets:
            for w, err in workers:
                assert line(w, err, "ready").split()[1] == ticket
            for w, _ in workers:  # both are waiting: start the race
                w.stdin.write("go\n")
                w.stdin.flush()
            won = [int(line(w, err, "won").split()[1]) for w, err in workers]
            assert sorted(won) == [0, 1], ticket
        for w, err in workers:
            w.stdin.close()
            if w.wait(timeout=60) != 0:
                err.seek(0)
                raise AssertionError(f"worker exited {w.returncode}: {err.read()[-3000:]}")
    finally:
        for w, err in workers:
            if w.poll() is None:
                w.kill()
            err.close()
    engine = sa.create_engine(pg_url.replace("postgresql://", "postgresql+psycopg://"))
    with engine.connect() as conn:
        for ticket in tickets:
            row = conn.execute(sa.text("SELECT status, assignee FROM ticket WHERE id = :t"), {"t": ticket}).one()
            taken = conn.execute(sa.text("SELECT count(*) FROM ticket_event WHERE ticket_id = :t AND kind = 'taken'"),
                                 {"t": ticket}).scalar()
            assert row.status == "assigned" and row.assignee in ("d_li", "d_ma") and taken == 1
    engine.dispose()


@pytest.mark.parametrize("backend", ["memory", "redis"])
async def test_hit_all_counts_in_every_window_or_in_none(backend, request):
    from bot.coord.memory import MemoryCoord

    if backend == "redis":
        coord = RedisCoord(request.getfixturevalue("redis_url"), prefix="carebot:hitall:")
        await coord.redis.delete("carebot:hitall:rate:chat", "carebot:hitall:rate:all")
    else:
        coord = MemoryCoord()
    try:
        windows = [("chat", 2, 10.0), ("all", 3, 10.0)]
        assert [await coord.hit_all(windows) for _ in range(2)] == [0.0, 0.0]
        assert await coord.hit_all(windows) > 0  # the chat's window is full: nothing is counted
        assert await coord.hit_all([("other", 2, 10.0), ("all", 3, 10.0)]) == 0.0  # "all" had room for one
        assert await coord.hit_all([("other", 2, 10.0), ("all", 3, 10.0)]) > 0  # "all" is full now
        assert await coord.hit("other", 2, 10.0) == 0.0  # the refused call left "other" at one
    finally:
        await coord.close()


async def test_memory_lock_is_exclusive_fifo_and_times_out() -> None:
    """MemoryCoord takes a free lock at once (no wait_for) and still queues and times out when held."""
    from bot.coord.base import LockTimeout
    from bot.coord.memory import MemoryCoord

    coord = MemoryCoord()
    order: list[str] = []
    gate = asyncio.Event()

    async def holder(name: str) -> None:
        async with coord.lock("k"):
            order.append(name)
            await gate.wait()

    first = asyncio.create_task(holder("first"))
    await asyncio.sleep(0)
    second = asyncio.create_task(holder("second"))
    await asyncio.sleep(0)
    with pytest.raises(LockTimeout):
        async with coord.lock("k", wait=0.05):
            order.append("never")
    gate.set()
    await asyncio.gather(first, second)
    assert order == ["first", "second"]
    async with coord.lock("k", wait=0.05):  # free again, and forgotten once nobody uses it
        assert len(coord._locks) == 1
    assert coord._locks == {}
