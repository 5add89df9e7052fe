"""Telegram's limits as a reservation schedule in Coord (`Coord.reserve`, adapters/telegram/pacing.py):
the same moments from MemoryCoord and RedisCoord for the same requests on a pinned clock, never more
than a budget allows in any window, no chat delaying another, and a 429 pushing the schedule back
for every worker."""

from __future__ import annotations

import asyncio
import random
import uuid
from typing import Any, AsyncIterator

import pytest

from adapters.telegram.config import Rate
from adapters.telegram.pacing import Pacer
from bot.coord import Budget, Coord, MemoryCoord

T = 1_800_000_000.0  # a pinned epoch second


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
async def coord(request: pytest.FixtureRequest) -> AsyncIterator[Coord]:
    if request.param == "memory":
        yield MemoryCoord()
        return
    from bot.coord.redis import RedisCoord

    shared = RedisCoord(request.getfixturevalue("redis_url"), prefix=f"test-{uuid.uuid4().hex[:8]}:")
    try:
        yield shared
    finally:
        keys = [k async for k in shared.redis.scan_iter(f"{shared.prefix}*")]
        if keys:
            await shared.redis.delete(*keys)
        await shared.close()


def within(moments: list[float], limit: int, seconds: float) -> bool:
    """No half-open window of `seconds` holds more than `limit` of the moments (Telegram's count),
    to a microsecond: epoch seconds as floats are exact to about 0.2 µs."""
    ordered = sorted(moments)
    return all(ordered[i + limit] - ordered[i] >= seconds - 1e-6 for i in range(len(ordered) - limit))


async def test_a_full_budget_books_the_next_free_moment(coord: Coord) -> None:
    chat = [Budget("chat:1", 3, 3.0)]
    delays = [await coord.reserve(chat, T) for _ in range(7)]
    assert delays == pytest.approx([0, 0, 0, 3, 3, 3, 6])
    # later callers see the schedule as it stands then
    assert await coord.reserve(chat, T + 5.0) == pytest.approx(1.0)  # the lanes free at T + 6


async def test_a_busy_chat_never_delays_another(coord: Coord) -> None:
    overall = Budget("all", 30, 1.0)
    for _ in range(4):  # chat 1 is booked 3 s ahead
        await coord.reserve([Budget("chat:1", 1, 1.0), overall], T)
    assert await coord.reserve([Budget("chat:1", 1, 1.0), overall], T) == pytest.approx(4.0)
    assert await coord.reserve([Budget("chat:2", 1, 1.0), overall], T) == 0.0


async def test_a_broadcast_books_every_moment_in_one_pass(coord: Coord) -> None:
    # 200 recipients, 20 a second for the bot: ten seconds of moments, 20 in each second
    overall = Budget("all", 20, 1.0)
    delays = [await coord.reserve([Budget(f"chat:{i}", 3, 3.0), overall], T) for i in range(200)]
    assert delays == pytest.approx([i // 20 for i in range(200)])


async def test_memory_and_redis_agree_and_every_window_holds(coord: Coord) -> None:
    rng = random.Random(13)
    overall, tenth = Budget("all", 12, 1.0), Budget("all:tenth", 2, 0.1)
    moments: dict[str, list[float]] = {}
    reference = MemoryCoord()
    at = T
    for _ in range(300):
        at += rng.choice([0.0, 0.0, 0.01, 0.2])
        chat = f"chat:{rng.randrange(6)}"
        budgets = [Budget(chat, 3, 3.0), overall, tenth]
        if chat == "chat:0":
            budgets.append(Budget("group:0", 5, 10.0))
        delay = await coord.reserve(budgets, at)
        assert delay == pytest.approx(await reference.reserve(budgets, at), abs=1e-6)
        for b in budgets:
            moments.setdefault(b.key, []).append(at + delay)
    assert within(moments["all"], 12, 1.0) and within(moments["all:tenth"], 2, 0.1)
    assert within(moments["group:0"], 5, 10.0)
    assert all(within(moments[f"chat:{c}"], 3, 3.0) for c in range(6))


async def test_a_hold_pushes_the_schedule_back(coord: Coord) -> None:
    budgets = [Budget("chat:1", 3, 3.0), Budget("all", 30, 1.0)]
    assert await coord.reserve(budgets, T) == 0.0
    await coord.hold_back(["all"], 2.5, T + 0.5)  # a 429 "retry after 2.5" half a second later
    assert await coord.reserve([Budget("chat:9", 3, 3.0), Budget("all", 30, 1.0)], T + 1.0) == pytest.approx(2.0)
    await coord.hold_back(["all"], 0.5, T + 1.0)  # a shorter hold never shortens a longer one
    assert await coord.reserve([Budget("chat:8", 3, 3.0), Budget("all", 30, 1.0)], T + 1.0) == pytest.approx(2.0)
    assert await coord.reserve([Budget("chat:7", 3, 3.0), Budget("all", 30, 1.0)], T + 4.0) == 0.0


class PinnedTime:
    """The pacer's clock and sleep: sleeping moves the pinned time, nothing waits for real."""

    def __init__(self, now: float):
        self.now = now

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds


async def test_the_pacer_spreads_the_bots_budget_and_keeps_each_chat(coord: Coord) -> None:
    time = PinnedTime(T)
    pacer = Pacer(coord, Rate(30, 1.0), Rate(3, 3.0), Rate(20, 60.0), prefix=f"p{uuid.uuid4().hex[:6]}",
                  clock=time, sleep=time.sleep)
    sent: dict[str, list[float]] = {}
    for i in range(300):  # one sender after another: each returns at its moment
        chat = "-100" if i % 10 == 0 else str(i % 7)
        await pacer.wait(chat, chat.startswith("-"))
        sent.setdefault(chat, []).append(time.now)
        sent.setdefault("all", []).append(time.now)
    assert within(sent["all"], 30, 1.0) and within(sent["all"], 3, 0.1)  # never a burst of a whole second
    # a chat's moment is kept to within the bot's wait after it (here at most one spacing, 1/30 s):
    # the shipped chat budget (3 in 3.1 s for Telegram's 3 s) leaves that room
    assert within(sent["-100"], 20, 60.0 - 1 / 30)
    assert all(within(sent[str(c)], 3, 3.0 - 1 / 30) for c in range(7))


class GatedTime(PinnedTime):
    """Like PinnedTime, but a sleeper waits for the test to let it wake."""

    def __init__(self, now: float):
        super().__init__(now)
        self.asleep, self.wake = asyncio.Event(), asyncio.Event()

    async def sleep(self, seconds: float) -> None:
        self.asleep.set()
        await self.wake.wait()
        self.now += seconds


async def test_a_429_holds_what_was_booked_before_it_and_every_worker(coord: Coord) -> None:
    time = GatedTime(T)
    rates = (Rate(1, 1.0), Rate(3, 3.0), Rate(20, 60.0))  # one message a second for the bot
    pacer = Pacer(coord, *rates, prefix=f"p{uuid.uuid4().hex[:6]}", clock=time, sleep=time.sleep)
    other = Pacer(coord, *rates, prefix=pacer.prefix, clock=time, sleep=time.sleep)  # another worker
    assert await pacer.wait("1", False) == 0.0  # sent at T
    booked = asyncio.create_task(pacer.wait("2", False))  # booked for T + 1, asleep
    await time.asleep.wait()
    await pacer.hold("1", False, 5.0)  # the message at T met "429: retry after 5"
    time.wake.set()
    assert await booked == pytest.approx(5.0)  # woke at T + 1, booked again behind the hold
    assert time.now == pytest.approx(T + 5.0)
    assert await other.wait("3", False) == pytest.approx(1.0)  # the other worker queues behind it




class LateTime(PinnedTime):
    """The first sleep overshoots by 50 ms, as on a busy machine."""

    def __init__(self, now: float):
        super().__init__(now)
        self.overshoot = 0.05

    async def sleep(self, seconds: float) -> None:
        self.now += seconds + self.overshoot
        self.overshoot = 0.0


async def test_a_sender_that_wakes_late_books_again(coord: Coord) -> None:
    time = LateTime(T)
    pacer = Pacer(coord, Rate(10, 1.0), Rate(3, 3.0), Rate(20, 60.0), prefix=f"p{uuid.uuid4().hex[:6]}",
                  clock=time, sleep=time.sleep)
    assert await pacer.wait("1", False) == 0.0
    await pacer.wait("2", False)  # booked for T + 0.1, woke at T + 0.15: the moment is gone
    assert pacer.rebooked == 1
    assert time.now == pytest.approx(T + 0.25)  # the next moment after T + 0.15 (one every 0.1 s)
