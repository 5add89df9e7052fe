"""A carebot worker process for the multi-process tests: `python -m tests.worker MODE ...`.

Modes:
  crash DB_URL N [LEASE] handle N messages in N conversations; the platform send kills the process
                        (os._exit) after the commits, so committed messages are never delivered here.
  timers DB_URL         fire every due timer with real claims, print how many this process fired.
  reminders DB_URL MIN  fire every due medication-reminder timer at T0 + MIN minutes (shipped flows).
  inbound DB_URL REDIS  read message ids from argv, handle each (Redis locks and de-duplication),
                        print "processed N duplicate M conflicts K".
  take DB_URL REDIS STAFF T1,T2,…  for each ticket: print "ready T", wait for "go" on stdin, grab it
                        as STAFF, print "won 0|1".
"""

from __future__ import annotations

import asyncio
import os
import sys
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

from bot import metrics
from bot.app import CareBot, load_config
from bot.clock import Clock, ManualClock
from bot.settings import Settings
from bot.testing.memory import MemoryAdapter
from bot.types import Delivery, Outbound
from tests.conftest import ROOT, T0, write_flows, write_messages
from tests.flows_common import ECHO_FLOWS, ECHO_MESSAGES


class KillingAdapter(MemoryAdapter):
    """A platform call that never completes: the process dies inside it."""

    async def send(self, outbound: Outbound, idempotency_key: str) -> Delivery:
        await asyncio.sleep(0.3)  # let the other turns commit first
        os._exit(9)


def future_clock() -> ManualClock:
    """The tests' pinned daytime (T0), moved ahead so the timers the test scheduled are due."""
    return ManualClock(T0 + timedelta(hours=3))


def _bot(url: str, adapter: MemoryAdapter, clock: Clock | None = None, redis_url: str = "",
         shipped: bool = False, lease: float = 1.0) -> CareBot:
    tmp = Path(os.environ["CAREBOT_TEST_TMP"])
    if shipped:
        flows, content = ROOT / "flows", ROOT / "content"
    else:
        flows = write_flows(tmp / f"flows-{os.getpid()}", ECHO_FLOWS)
        content = write_messages(tmp / f"content-{os.getpid()}", ECHO_MESSAGES)
    settings = replace(Settings(), database_url=url, redis_url=redis_url, flows_dir=flows, content_dir=content,
                       worker_id=f"worker-{os.getpid()}", outbox_lease_seconds=lease)
    return CareBot.build(settings, [adapter], clock=clock, config=load_config(settings))


async def crash(url: str, n: int, lease: float = 1.0) -> None:
    adapter = KillingAdapter()
    bot = _bot(url, adapter, lease=lease)
    await bot.start(background=False)
    await asyncio.gather(*(bot.runtime.handle(adapter.inbound(f"c{i}", "hello")) for i in range(n)))
    print("committed", flush=True)
    await asyncio.sleep(5)  # the adapter kills us long before this
    print("not killed", flush=True)


async def timers(url: str) -> None:
    bot = _bot(url, MemoryAdapter(), clock=future_clock())
    await bot.start(background=False)
    fired = 0
    for _ in range(50):
        n = await bot.timers.tick()
        fired += n
        if n == 0:
            await asyncio.sleep(0.05)
            if await bot.timers.tick() == 0:
                break
    await bot.sender.idle()
    print(f"fired {fired}", flush=True)
    await bot.stop()


async def reminders(url: str, minutes: int) -> None:
    """Fire every due reminder timer at T0 + `minutes` with the shipped flows; print how many."""
    bot = _bot(url, MemoryAdapter(), clock=ManualClock(T0 + timedelta(minutes=minutes)), shipped=True)
    await bot.start(background=False)
    fired = 0
    for _ in range(200):
        n = await bot.timers.tick()
        fired += n
        if n == 0:
            await asyncio.sleep(0.05)
            if await bot.timers.tick() == 0:
                break
    await bot.settle()
    print(f"fired {fired}", flush=True)
    await bot.stop()


async def inbound(url: str, redis_url: str, ids: list[str]) -> None:
    adapter = MemoryAdapter()
    bot = _bot(url, adapter, redis_url=redis_url)
    await bot.start(background=False)
    results = await asyncio.gather(*(bot.runtime.handle(adapter.inbound(i.split(":")[0], i, message_id=i))
                                     for i in ids))
    processed = sum(r.status == "processed" for r in results)
    conflicts = metrics.CONFLICTS._value.get()  # type: ignore[attr-defined]
    await bot.sender.idle()
    print(f"processed {processed} duplicate {len(results) - processed} conflicts {int(conflicts)}", flush=True)
    await bot.stop()


async def take(url: str, redis_url: str, staff_id: str, tickets: list[str]) -> None:
    """Grab each ticket the moment the test says "go" on stdin (it tells both workers at once, once
    both have said "ready"): the race starts on an event, not at a wall-clock instant that a slow
    start-up under load could miss."""
    bot = _bot(url, MemoryAdapter(), clock=ManualClock(T0), redis_url=redis_url, shipped=True)
    await bot.start(background=False)
    member = await bot.handoff.staff(staff_id)
    assert member is not None
    for ticket in tickets:
        print(f"ready {ticket}", flush=True)
        go = await asyncio.to_thread(sys.stdin.readline)
        assert go.strip() == "go", go
        won = await bot.handoff.take(ticket, member)
        await bot.settle()
        print(f"won {int(won)}", flush=True)
    await bot.stop()


if __name__ == "__main__":
    mode, url = sys.argv[1], sys.argv[2]
    if mode == "crash":
        asyncio.run(crash(url, int(sys.argv[3]), *(float(a) for a in sys.argv[4:5])))
    elif mode == "timers":
        asyncio.run(timers(url))
    elif mode == "reminders":
        asyncio.run(reminders(url, int(sys.argv[3])))
    elif mode == "inbound":
        asyncio.run(inbound(url, sys.argv[3], sys.argv[4].split(",")))
    elif mode == "take":
        asyncio.run(take(url, sys.argv[3], sys.argv[4], sys.argv[5].split(",")))
