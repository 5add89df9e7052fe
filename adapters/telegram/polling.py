"""Long polling for development (no public HTTPS address needed): getUpdates in a loop, each update
through `TelegramAdapter.feed`, the offset saved (`telegram_offset`) after each update is durable.
A crash between the two gets the update again on restart, and the inbox drops the repeat."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

import sqlalchemy as sa
from aiogram.exceptions import TelegramAPIError, TelegramConflictError, TelegramRetryAfter

from adapters.telegram.adapter import TelegramAdapter
from adapters.telegram.integrations import UPDATE_KINDS
from adapters.telegram.models import TelegramOffset

log = logging.getLogger("carebot.telegram.poll")
OFFSET = TelegramOffset.__table__


class Poller:
    def __init__(self, adapter: TelegramAdapter, *, timeout: int = 30):
        self.adapter = adapter
        self.timeout = timeout

    def _store(self):  # type: ignore[no-untyped-def]
        assert self.adapter.runtime is not None, "start carebot before polling"
        return self.adapter.runtime.store

    async def offset(self) -> int:
        bot_id = str(self.adapter.bot_id)
        row = await self._store().read(lambda c: c.execute(sa.select(OFFSET.c.next_offset).where(
            OFFSET.c.bot_id == bot_id)).first())
        return int(row.next_offset) if row else 0

    async def save(self, next_offset: int, now: datetime) -> None:
        bot_id = str(self.adapter.bot_id)

        def upsert(conn: sa.Connection) -> None:
            if conn.execute(OFFSET.update().where(OFFSET.c.bot_id == bot_id).values(
                    next_offset=next_offset, updated_at=now)).rowcount == 0:
                conn.execute(OFFSET.insert().values(bot_id=bot_id, next_offset=next_offset, updated_at=now))

        await self._store().write(upsert)

    async def poll_once(self, timeout: int | None = None) -> int:
        """One getUpdates; returns how many updates were carried in."""
        offset = await self.offset()
        updates = await self.adapter.bot.get_updates(offset=offset or None, allowed_updates=list(UPDATE_KINDS),
                                                     timeout=self.timeout if timeout is None else timeout)
        for update in updates:
            await self.adapter.feed(update.model_dump(mode="json", exclude_none=True, by_alias=True))
            assert self.adapter.runtime is not None
            await self.save(update.update_id + 1, self.adapter.runtime.clock.now())
        return len(updates)

    async def run(self) -> None:
        """Poll until cancelled; a webhook still set is an error to fix (delete-webhook), not to retry."""
        delay = 1.0
        while True:
            try:
                await self.poll_once()
                delay = 1.0
            except TelegramConflictError:
                raise
            except TelegramRetryAfter as exc:
                await asyncio.sleep(exc.retry_after)
            except (TelegramAPIError, asyncio.TimeoutError) as exc:
                log.warning("getUpdates failed (%s); again in %.0f s", type(exc).__name__, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 60.0)
