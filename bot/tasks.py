"""Background work that a component starts and must be able to wait for.

Hand-off follow-ups and adapters' callback processing run on tasks of their own so a turn's commit
is not held up by them; tests and shutdown wait for them with `idle()`. A task that fails is logged
by its exception's type only (the message could carry patient text) and never takes anything down.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Coroutine

log = logging.getLogger(__name__)


class Background:
    def __init__(self, what: str) -> None:
        self.what = what
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("%s task failed: %s", self.what, type(task.exception()).__name__)

    @property
    def busy(self) -> bool:
        return bool(self._tasks)

    async def idle(self) -> None:
        """Wait until every task (and every task those started) has ended."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
