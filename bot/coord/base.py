"""The coordination contract. One idea per method; backends implement it side by side."""

from __future__ import annotations

from abc import ABC, abstractmethod
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Sequence


class LockTimeout(Exception):
    """The lock could not be taken in time (another worker holds it for too long)."""


@dataclass
class Hold:
    """A conversation this worker holds for a run of turns (its mailbox being drained).

    `version` is the state version last committed through coordination, so the holder can tell
    whether the state it cached is still current without reading the database: None when the
    backend keeps no versions (one process: its cache is the truth), 0 when unknown (read the
    row). Whatever it says, the state row's version check at commit is the authority."""

    key: str
    seen: bool
    version: int | None = None
    token: str = ""
    handle: Any = field(default=None, repr=False)


@dataclass(frozen=True)
class Budget:
    """At most `limit` events in any `per_seconds` under `key` (a platform's sending limit)."""

    key: str
    limit: int
    per_seconds: float


class Coord(ABC):
    @abstractmethod
    def lock(self, key: str, ttl: float = 30.0, wait: float = 60.0) -> AbstractAsyncContextManager[None]:
        """Hold `key` exclusively. Waiters are served; the lock expires after `ttl` if its holder dies."""

    @abstractmethod
    async def seen(self, key: str) -> bool:
        """Was this message already processed? A fast filter; the database's inbox is the authority."""

    @abstractmethod
    async def mark_seen(self, key: str, ttl: int = 86400) -> None: ...

    @abstractmethod
    async def hit(self, key: str, limit: int, per_seconds: float, at: float | None = None) -> float:
        """Count one event against `limit` per `per_seconds`. Returns 0 when allowed now,
        otherwise the seconds to wait before trying again (the event is not counted).

        `at` (seconds since the epoch) counts on the caller's clock instead of the machine's: a
        decision about the group's time (a flood, a raid, a send budget) follows the bot's clock, so
        a test that pins the clock sees the same window however slowly it runs. Use one kind of
        time per key."""

    async def hit_all(self, windows: Sequence[tuple[str, int, float]]) -> float:
        """Count one event against every window (key, limit, per_seconds) of the machine's clock,
        or against none: 0 when all allow it now, otherwise the longest wait. A backend may do this
        in one round trip; this default asks each window in turn (a window that refuses leaves the
        later ones untouched, but the earlier ones keep their count)."""
        for key, limit, per_seconds in windows:
            wait = await self.hit(key, limit, per_seconds)
            if wait > 0:
                return wait
        return 0.0

    @abstractmethod
    async def reserve(self, budgets: Sequence[Budget], at: float) -> float:
        """Take the earliest moment at or after `at` when one more event keeps within every budget,
        count the event there, and return the seconds from `at` to it (0: go now). Never refuses:
        the caller sleeps until its moment instead of trying and backing off.

        Each budget is `limit` lanes; an event occupies one lane for `per_seconds`, so no window of
        `per_seconds` ever holds more than `limit` events, and a later moment booked in one chat
        never delays another chat. `at` is seconds on one clock shared by every worker (the
        epoch); `hold_back` pushes a budget's moments back."""

    @abstractmethod
    async def hold_back(self, keys: Sequence[str], seconds: float, at: float) -> None:
        """No moment under these budgets is given before `at + seconds` (a 429's retry_after)."""

    @abstractmethod
    async def cache_get(self, key: str) -> str | None:
        """A shared value (a platform's access token), or None when absent or expired."""

    @abstractmethod
    async def cache_set(self, key: str, value: str, ttl: float) -> None:
        """Keep `value` under `key` for `ttl` seconds, for every worker."""

    @abstractmethod
    async def cache_delete(self, key: str, value: str | None = None) -> None:
        """Forget `key` (only while it still holds `value`, when given: a worker never drops a
        fresher token another worker just stored)."""

    @abstractmethod
    async def publish(self, channel: str, message: str) -> None: ...

    @abstractmethod
    def subscribe(self, channel: str) -> AsyncIterator[str]: ...

    async def hold(self, key: str, dedupe_key: str, ttl: float = 30.0, wait: float = 60.0) -> Hold:
        """Take `key` exclusively (like `lock`) and say whether `dedupe_key` was seen and which
        version was last committed. Redis does all of it in one round trip."""
        cm = self.lock(key, ttl=ttl, wait=wait)
        await cm.__aenter__()
        try:
            seen = await self.seen(dedupe_key)
        except BaseException:
            await cm.__aexit__(None, None, None)
            raise
        return Hold(key, seen, None, handle=cm)

    async def step(self, hold: Hold, done_key: str | None, version: int, next_key: str,
                   ttl: float = 30.0) -> bool:
        """Between two turns of one hold: `done_key` was processed (committing `version`); is
        `next_key` a duplicate? Returns False when the hold was lost (its lease ran out while this
        worker stalled): the caller takes the key again. The default lock cannot be lost."""
        if done_key is not None:
            await self.mark_seen(done_key)
        hold.seen = await self.seen(next_key)
        return True

    async def release(self, hold: Hold, done_key: str | None, version: int) -> None:
        """End the hold: `done_key` was processed, `version` committed (0: nothing committed)."""
        try:
            if done_key is not None:
                await self.mark_seen(done_key)
        finally:
            await hold.handle.__aexit__(None, None, None)
    async def ping(self) -> None:
        """Raise when the coordination service cannot be reached (readiness); in-process: never."""
        return None

    async def close(self) -> None:
        return None
