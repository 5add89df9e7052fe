"""Sending at Telegram's pace, shared across workers.

Each Bot API call that sends a message first reserves its moment in `Coord` (memory for one
process, Redis for several) under three budgets at once — the whole bot, the chat, and in a group
the group's minute — then sleeps until that moment and sends. Nobody tries and backs off: a
broadcast of ten thousand messages books ten thousand moments in one pass and each goes out on
time, however many workers share the budgets.

The bot's budget is also booked in tenths (a tenth of the messages per a tenth of the window), so
its moments are spread over the second instead of arriving as one burst when the window turns —
Telegram counts sliding windows, and a burst jittered by the network would cross one.

A 429 pushes the budgets back (`hold`): later reservations start after `retry_after`, on every
worker; moments this process had booked before it are booked again on waking.
"""

from __future__ import annotations

import asyncio
import time
from typing import Awaitable, Callable

from adapters.telegram.config import Rate
from bot.coord import Budget, Coord

SMOOTHING = 10  # the bot's budget is also booked in tenths of its window


class Pacer:
    def __init__(self, coord: Coord, overall: Rate, per_chat: Rate, per_group: Rate, prefix: str = "telegram", *,
                 clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep):
        self.coord = coord
        self.overall, self.per_chat, self.per_group = overall, per_chat, per_group
        self.prefix = prefix
        self.clock = clock  # seconds since the epoch: one time for every worker sharing the budgets
        self.sleep = sleep
        self._held: dict[str, float] = {}  # budget key → until when a 429 seen here holds it
        self.waited = 0.0  # seconds spent waiting for a moment (metrics, the benchmark)

    def budgets(self, chat_id: str, group: bool) -> list[Budget]:
        all_key = f"{self.prefix}:all"
        budgets = [Budget(f"{self.prefix}:chat:{chat_id}", self.per_chat.count, self.per_chat.seconds),
                   Budget(all_key, self.overall.count, self.overall.seconds)]
        if self.overall.count >= SMOOTHING:
            budgets.append(Budget(f"{all_key}:tenth", -(-self.overall.count // SMOOTHING),
                                  self.overall.seconds / SMOOTHING))
        if group:
            budgets.append(Budget(f"{self.prefix}:group:{chat_id}", self.per_group.count, self.per_group.seconds))
        return budgets

    async def wait(self, chat_id: str, group: bool) -> float:
        """Return at the moment one more message to `chat_id` keeps within every limit; returns the
        seconds waited."""
        budgets = self.budgets(chat_id, group)
        waited = 0.0
        while True:
            at = self.clock()
            delay = await self.coord.reserve(budgets, at)
            if delay > 0:
                await self.sleep(delay)
                waited += delay
            slot = at + delay
            if not any(self._held.get(b.key, 0.0) > slot for b in budgets):
                break
            # a 429 arrived while this moment was booked: book again behind the hold
        self.waited += waited
        return waited

    async def hold(self, chat_id: str, group: bool, seconds: float) -> None:
        """Telegram answered 429 `retry_after`: nothing more to this chat — nor from the bot, which
        Telegram may have meant — before it has passed."""
        at = self.clock()
        keys = [b.key for b in self.budgets(chat_id, group)]
        for key in keys:
            self._held[key] = max(self._held.get(key, 0.0), at + seconds)
        await self.coord.hold(keys, seconds, at)
        if len(self._held) > 1024:
            self._held = {k: until for k, until in self._held.items() if until > at}
