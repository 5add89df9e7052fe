"""The sender: delivers committed outbox rows through the adapters, in order, with retries.

Rows of one conversation go out one after another (a failing row holds back the ones after it, so
the patient never reads answer 2 before answer 1); different conversations go out concurrently.
A row's lease keeps other workers off it while it is being delivered; when a worker dies (its
heartbeat, written every sweep, stops) its rows are taken over within seconds, before their leases
run out, and rows of its conversations committed meanwhile wait behind them. A row is sent twice only if the process dies after the
platform accepted it and before the outcome was recorded — and the adapter's idempotency key lets a
platform with a duplicate check drop that second copy.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import deque
from datetime import timedelta
from typing import Callable

from bot import metrics
from bot.adapter import AdapterSet
from bot.clock import Clock
from bot.coord import Coord
from bot.runtime.background import Background
from bot.store.store import Claimed, Store
from bot.types import Delivery
from bot.unavailable import is_unavailable, log_failure

log = logging.getLogger("carebot.sender")
TAKEOVER_RESWEEP_S = 0.1
OUTAGE_PAUSES = (0.5, 1.0, 2.0, 4.0)  # a delivery the database's absence interrupted is tried again


class Sender(Background):
    def __init__(self, store: Store, adapters: AdapterSet, coord: Coord, clock: Clock, *,
                 max_attempts: int = 8, backoff: float = 1.0, max_backoff: float = 300.0,
                 sweep_interval: float = 1.0):
        self.store = store
        self.adapters = adapters
        self.coord = coord
        self.clock = clock
        self.max_attempts = max_attempts
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.sweep_interval = sweep_interval
        self._chains: dict[str, deque[Claimed]] = {}
        self._inflight: set[int] = set()
        self._idle = asyncio.Event()
        self._idle.set()
        self.on_sent: list[Callable[[Claimed], None]] = []  # told after a delivery is recorded (paging)

    def enqueue(self, rows: list[Claimed]) -> None:
        for row in rows:
            if row.id in self._inflight:
                continue
            self._inflight.add(row.id)
            chain = self._chains.get(row.conversation_id)
            if chain is None:
                chain = self._chains[row.conversation_id] = deque([row])
                self._idle.clear()
                asyncio.get_running_loop().create_task(self._drain(row.conversation_id, chain))
            else:
                chain.append(row)

    async def idle(self) -> None:
        """Wait until nothing is being delivered (tests, benchmarks, shutdown)."""
        while self._chains:
            await self._idle.wait()

    async def sweep(self) -> int:
        """Claim rows that are due (retries, or leases of dead workers) and deliver them."""
        rows = await self.store.claim_outbox(self.clock.now())
        self.enqueue(rows)
        return len(rows)

    async def run(self) -> None:
        while True:
            claimed = 0
            try:
                await self.store.beat(self.clock.now())  # alive: our leased rows stay ours
                claimed = await self.sweep()
            except Exception as exc:
                log_failure(log, exc, "outbox sweep failed")
            # rows taken over from a dead worker may hold later rows of their conversations back:
            # look again soon, so those follow within a fraction of a second, not a sweep later
            await asyncio.sleep(TAKEOVER_RESWEEP_S if claimed else self.sweep_interval)

    async def stop(self) -> None:
        await super().stop()
        await self.idle()

    async def _drain(self, conv: str, chain: deque[Claimed]) -> None:
        try:
            while chain:
                row = chain[0]
                for pause in (*OUTAGE_PAUSES, None):
                    try:
                        await self._deliver(row)
                        break
                    except Exception as exc:
                        if pause is None or not is_unavailable(exc):
                            # left as it is: the sweep takes it again once its lease runs out
                            log_failure(log, exc, "delivery crashed outbox=%s", row.id)
                            break
                        # the database went away mid-delivery: try again soon, holding the
                        # conversation's later rows back so they keep their order
                        log_failure(log, exc, "delivery waits outbox=%s", row.id)
                        await asyncio.sleep(pause)
                chain.popleft()
                self._inflight.discard(row.id)
        finally:
            del self._chains[conv]
            if not self._chains:
                self._idle.set()

    async def _deliver(self, row: Claimed) -> None:
        ob = row.outbound
        channel = ob.address.channel
        adapter = self.adapters.get(channel)
        attempts = row.attempts
        while True:
            if adapter is None:
                delivery = Delivery(ok=False, retryable=False, error=f"no adapter for channel {channel!r}")
            else:
                if adapter.rate_policy is not None:  # None: the adapter paces its own calls
                    await self._respect_limits(adapter.rate_policy, channel, ob.address.chat_id)
                try:
                    delivery = await adapter.send(ob, idempotency_key=f"carebot-outbox-{row.id}")
                except Exception as exc:  # an adapter bug or a network error: retry
                    delivery = Delivery(ok=False, retryable=True, error=type(exc).__name__)
            attempts += 1
            now = self.clock.now()
            if delivery.ok:
                await self.store.outbox_sent(row.id, now, delivery.platform_message_id)
                metrics.OUTBOX.labels(channel, "sent").inc()
                for hook in self.on_sent:
                    hook(row)
                return
            give_up = not delivery.retryable or attempts >= self.max_attempts
            wait = delivery.retry_after or min(self.max_backoff, self.backoff * 2 ** (attempts - 1))
            wait *= 1 + random.random() * 0.1  # jitter: retries of many rows don't stampede
            await self.store.outbox_retry(row.id, now + timedelta(seconds=wait), delivery.error, give_up,
                                          hold=not give_up)
            if give_up:
                log.warning("outbox=%s gave up after %d attempts: %s", row.id, attempts, delivery.error)
                metrics.OUTBOX.labels(channel, "failed").inc()
                return
            metrics.OUTBOX.labels(channel, "retry").inc()
            await asyncio.sleep(wait)

    async def _respect_limits(self, policy: object, channel: str, chat_id: str) -> None:
        per_chat = getattr(policy, "per_chat")
        overall = getattr(policy, "overall")
        windows = [(f"{channel}:chat:{chat_id}", *per_chat), (f"{channel}:all", *overall)]
        while (wait := await self.coord.hit_all(windows)) > 0:  # both windows in one call (one script with Redis)
            await asyncio.sleep(wait)
