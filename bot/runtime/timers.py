"""The timer loop: due timers re-enter the runtime as `Inbound(kind="timer")`.

A timer is claimed (with a lease) before it runs and marked fired in the same transaction as the
turn it caused, whose inbox row (`timer:<id>`) makes a second run impossible. A worker that dies
after claiming leaves the lease to run out; another worker then fires it — once.

A timer is routed by its kind (the part of its name before the first `:`, `bot/timer_names.py`):
a kind with a registered handler goes to it (the hand-off's `sla` clocks, the paging ladder's
`page`); a batch kind (medication `dose` timers) is claimed and fired by its handler, many per
transaction; every other timer is a flow's and takes the turn road above.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Awaitable, Callable

from bot import metrics
from bot.clock import Clock
from bot.runtime.background import Background
from bot.runtime.proactive import ProactivePolicy, is_care, is_proactive
from bot.store.store import DueTimer, Store
from bot.timer_names import kind_of
from bot.types import Inbound
from bot.unavailable import log_failure

if TYPE_CHECKING:
    from bot.runtime.runtime import Runtime

log = logging.getLogger("carebot.timers")

TimerHandler = Callable[[DueTimer], Awaitable[None]]
BatchHandler = Callable[[datetime, int], Awaitable[int]]


class TimerLoop(Background):
    def __init__(self, runtime: Runtime, store: Store, clock: Clock, *, interval: float = 0.5,
                 proactive: ProactivePolicy | None = None):
        self.runtime = runtime
        self.store = store
        self.clock = clock
        self.interval = interval
        self.proactive = proactive
        self.handlers: dict[str, TimerHandler] = {}
        self.batch_handlers: dict[str, BatchHandler] = {}
        self.batch = 100  # timers claimed in one transaction
        self._wake = asyncio.Event()

    def register(self, kind: str, handler: TimerHandler) -> None:
        """Send due timers of this kind to `handler` (which marks them fired) instead of a flow."""
        if kind in self.handlers:
            raise ValueError(f"timer kind {kind!r} already has a handler")
        self.handlers[kind] = handler

    def register_batch(self, kind: str, handler: BatchHandler) -> None:
        """Timers of this kind are claimed and fired by `handler(now, limit)` itself, many in one
        transaction (medication doses); it returns how many it handled. The loop's own claim
        leaves them alone."""
        if kind in self.handlers or kind in self.batch_handlers:
            raise ValueError(f"timer kind {kind!r} already has a handler")
        self.batch_handlers[kind] = handler

    def inbound_for(self, timer: DueTimer) -> Inbound:
        assert timer.address is not None
        return Inbound(kind="timer", address=timer.address, message_id=f"timer:{timer.id}",
                       received_at=timer.due_at.astimezone(timezone.utc),
                       payload={**timer.payload, "timer_id": timer.id})

    async def tick(self) -> int:
        """Fire every timer that is due now. Returns how many ran."""
        fired = 0
        while True:
            batched = 0
            for handler in self.batch_handlers.values():
                batched += await handler(self.clock.now(), self.batch)
            fired += batched
            due = await self.store.claim_timers(self.clock.now(), self.batch, exclude=tuple(self.batch_handlers))
            if not due:
                if batched:
                    continue  # a handler above may have made timers that are due now
                return fired
            results = await asyncio.gather(*(self._fire(t) for t in due), return_exceptions=True)
            for timer, result in zip(due, results):
                if isinstance(result, BaseException):
                    log.error("timer %s failed: %s", timer.id, type(result).__name__)
                else:
                    fired += result
        return fired

    async def _fire(self, timer: DueTimer) -> int:
        if timer.address is None:  # its conversation is gone (erased)
            await self.store.release_timer(timer.id)
            return 0
        handler = self.handlers.get(kind_of(timer.name))
        if handler is not None:
            await handler(timer)
            return 1
        inbound = self.inbound_for(timer)
        if self.proactive is not None and is_proactive(inbound) and not is_care(inbound):
            now = self.clock.now()
            later = self.proactive.postpone_until(now)
            if later is not None:  # quiet hours: the reminder waits for the morning
                await self.store.postpone_timer(timer.id, later, now, timer.conversation_id, "quiet_hours")
                return 0
        outcome = await self.runtime.handle(inbound, timer_id=timer.id)
        if outcome.status == "postponed":
            return 0
        if outcome.status == "duplicate":
            await self.store.release_timer(timer.id)
            return 0
        metrics.TIMERS_FIRED.inc()
        return 1

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        while True:
            try:
                await self.tick()
            except Exception as exc:
                log_failure(log, exc, "timer tick failed")
            try:
                await asyncio.wait_for(self._wake.wait(), self.interval)
            except asyncio.TimeoutError:
                pass
            self._wake.clear()


