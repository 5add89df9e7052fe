"""Sending at Telegram's pace, shared across workers.

Each Bot API call that sends a message first takes a place in three sliding windows kept in
`Coord` (memory for one process, Redis for several): the whole bot, the chat, and — in a group —
the group's minute. Waiters of one window queue in arrival order behind one local gate, so a
broadcast of ten thousand messages is one orderly line polling the shared window, not ten thousand
tasks waking at once.
"""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager
from typing import AsyncIterator

from adapters.telegram.config import Rate
from bot.coord import Coord


class Pacer:
    def __init__(self, coord: Coord, overall: Rate, per_chat: Rate, per_group: Rate, prefix: str = "telegram"):
        self.coord = coord
        self.overall, self.per_chat, self.per_group = overall, per_chat, per_group
        self.prefix = prefix
        self._gates: dict[str, tuple[asyncio.Lock, int]] = {}
        self.waited = 0.0  # seconds spent waiting for a place (metrics, the benchmark)

    @asynccontextmanager
    async def _gate(self, key: str) -> AsyncIterator[None]:
        lock, users = self._gates.get(key) or (asyncio.Lock(), 0)
        self._gates[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._gates[key]
            if users <= 1:
                del self._gates[key]
            else:
                self._gates[key] = (lock, users - 1)

    async def _take(self, key: str, rate: Rate) -> None:
        async with self._gate(key):
            while (wait := await self.coord.hit(key, rate.count, rate.seconds)) > 0:
                self.waited += wait
                await asyncio.sleep(wait)

    async def wait(self, chat_id: str, group: bool) -> None:
        """Return when one more message to `chat_id` keeps within every limit."""
        await self._take(f"{self.prefix}:chat:{chat_id}", self.per_chat)
        if group:
            await self._take(f"{self.prefix}:group:{chat_id}", self.per_group)
        await self._take(f"{self.prefix}:all", self.overall)
