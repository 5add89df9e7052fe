"""Coordination inside one process: asyncio locks, a bounded seen-set, sliding-window limits."""

from __future__ import annotations

import asyncio
import bisect
import time
from collections import OrderedDict, defaultdict, deque
from contextlib import asynccontextmanager
from typing import AsyncIterator, Sequence

from bot.coord.base import Budget, Coord, LockTimeout

RESERVE_SWEEP_EVERY = 4096  # reservations between drops of budgets whose lanes are all free again
SWEEP_EVERY = 1024  # rate-limit hits between drops of windows that ran out


class MemoryCoord(Coord):
    def __init__(self, seen_capacity: int = 200_000):
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._seen_capacity = seen_capacity
        # key → (times counted, window seconds, counted on the caller's clock): a window that ran
        # out is dropped, so memory follows the visitors of the last window, not every visitor ever
        self._hits: dict[str, tuple[deque[float], float, bool]] = {}
        self._latest_at = 0.0  # the latest caller's clock seen (`at`), to age those windows
        self._hits_since_sweep = 0
        self._subscribers: dict[str, set[asyncio.Queue[str]]] = defaultdict(set)
        self._cache: dict[str, tuple[str, float]] = {}
        self._lanes: dict[str, list[float]] = {}  # budget key → busy-until of its busy lanes, ascending
        self._holds: dict[str, float] = {}
        self._reserved = 0

    @asynccontextmanager
    async def lock(self, key: str, ttl: float = 30.0, wait: float = 60.0) -> AsyncIterator[None]:
        lock, users = self._locks.get(key) or (asyncio.Lock(), 0)
        self._locks[key] = (lock, users + 1)
        try:
            if users:  # held or awaited by others: wait our turn, at most `wait` seconds
                try:
                    await asyncio.wait_for(lock.acquire(), wait)
                except asyncio.TimeoutError:
                    raise LockTimeout(key) from None
            else:  # nobody else (the common case): taken at once, without wait_for's task and timer
                await lock.acquire()
            try:
                yield
            finally:
                lock.release()
        finally:
            lock_, users = self._locks[key]
            if users <= 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock_, users - 1)

    async def seen(self, key: str) -> bool:
        expires = self._seen.get(key)
        return expires is not None and expires > time.monotonic()

    async def mark_seen(self, key: str, ttl: int = 86400) -> None:
        self._seen[key] = time.monotonic() + ttl
        self._seen.move_to_end(key)
        while len(self._seen) > self._seen_capacity:
            self._seen.popitem(last=False)

    async def hit(self, key: str, limit: int, per_seconds: float, at: float | None = None) -> float:
        now = time.monotonic() if at is None else at
        if at is not None:
            self._latest_at = max(self._latest_at, at)
        self._hits_since_sweep += 1
        if self._hits_since_sweep >= SWEEP_EVERY:
            self._sweep()
        entry = self._hits.get(key)
        if entry is None:
            entry = self._hits[key] = (deque(), per_seconds, at is not None)
        window = entry[0]
        while window and window[0] <= now - per_seconds:
            window.popleft()
        if len(window) >= limit:
            return window[0] + per_seconds - now
        window.append(now)
        return 0.0

    async def hit_all(self, windows: Sequence[tuple[str, int, float]]) -> float:
        now = time.monotonic()
        waits = []
        for key, limit, per_seconds in windows:
            entry = self._hits.get(key)
            window = entry[0] if entry is not None else ()
            while window and window[0] <= now - per_seconds:
                window.popleft()  # type: ignore[union-attr]
            if len(window) >= limit:
                waits.append(window[0] + per_seconds - now)
        if waits:
            return max(waits)
        for key, limit, per_seconds in windows:
            await self.hit(key, limit, per_seconds, None)
        return 0.0

    def _sweep(self) -> None:
        """Drop every window whose last count has aged out (amortised: once per `SWEEP_EVERY` hits)."""
        self._hits_since_sweep = 0
        mono = time.monotonic()
        for key in [k for k, (window, per_seconds, on_caller_clock) in self._hits.items()
                    if not window or window[-1] <= (self._latest_at if on_caller_clock else mono) - per_seconds]:
            del self._hits[key]

    def tracked_windows(self) -> int:
        """How many rate-limit windows are held (memory stays flat: tests, metrics)."""
        return len(self._hits)
    async def reserve(self, budgets: Sequence[Budget], at: float) -> float:
        slot = at
        for b in budgets:
            lanes = self._lanes.get(b.key)
            if lanes is not None:
                del lanes[:bisect.bisect_right(lanes, at)]  # free again
                if len(lanes) >= b.limit:
                    slot = max(slot, lanes[0])
            slot = max(slot, self._holds.get(b.key, slot))
        for b in budgets:
            lanes = self._lanes.setdefault(b.key, [])
            fit = bisect.bisect_right(lanes, slot) - 1  # the lane that fell free last before the slot
            if fit >= 0:
                del lanes[fit]
            bisect.insort(lanes, slot + b.per_seconds)
        self._reserved += 1
        if self._reserved % RESERVE_SWEEP_EVERY == 0:
            self._sweep_lanes(at)
        return slot - at

    def _sweep_lanes(self, at: float) -> None:
        for key in [k for k, lanes in self._lanes.items() if not lanes or lanes[-1] <= at]:
            del self._lanes[key]
        for key in [k for k, until in self._holds.items() if until <= at]:
            del self._holds[key]

    async def hold_back(self, keys: Sequence[str], seconds: float, at: float) -> None:
        for key in keys:
            self._holds[key] = max(self._holds.get(key, 0.0), at + seconds)

    async def cache_get(self, key: str) -> str | None:
        item = self._cache.get(key)
        if item is None or item[1] <= time.monotonic():
            self._cache.pop(key, None)
            return None
        return item[0]

    async def cache_set(self, key: str, value: str, ttl: float) -> None:
        self._cache[key] = (value, time.monotonic() + ttl)

    async def cache_delete(self, key: str, value: str | None = None) -> None:
        if value is None or (key in self._cache and self._cache[key][0] == value):
            self._cache.pop(key, None)

    async def publish(self, channel: str, message: str) -> None:
        for q in list(self._subscribers.get(channel, ())):
            q.put_nowait(message)

    async def subscribe(self, channel: str) -> AsyncIterator[str]:  # type: ignore[override]
        q: asyncio.Queue[str] = asyncio.Queue()
        self._subscribers[channel].add(q)
        try:
            while True:
                yield await q.get()
        finally:
            self._subscribers[channel].discard(q)
