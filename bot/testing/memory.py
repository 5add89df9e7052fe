"""The memory adapter: a platform that lives in a list, for tests, benchmarks and the
conversation-test runner (it lives with them, so `bot/` needs nothing from `adapters/`). It behaves like a careful real platform:
it keeps a duplicate check on the idempotency key (as WeCom's msgid / a send token would), and it
can be told to fail, so tests see retries and ordering for real."""

from __future__ import annotations

import asyncio
import itertools
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timezone

from bot.adapter import Adapter, Capabilities, RatePolicy
from bot.types import Address, Delivery, Inbound, Outbound


@dataclass
class Sent:
    outbound: Outbound
    platform_message_id: str
    idempotency_key: str


class MemoryAdapter(Adapter):
    def __init__(self, channel: str = "memory", *, rate_policy: RatePolicy | None = None,
                 capabilities: Capabilities | None = None):
        self.channel = channel
        # everything by default; a test passes less to see the runtime degrade (bot/runtime/degrade.py)
        self.capabilities = capabilities or Capabilities(
            ops=frozenset({"say", "delete", "restrict", "ban", "notify_staff"}), max_buttons=100)
        self.rate_policy = rate_policy or RatePolicy(per_chat=(10_000, 1.0), overall=(1_000_000, 1.0))
        self.sent: list[Sent] = []
        self.by_chat: dict[str, list[Sent]] = defaultdict(list)
        self.by_key: dict[str, Sent] = {}
        self.attempts = 0
        self._failures: list[Delivery] = []
        self._ids = itertools.count(1)
        self._seq = itertools.count(1)
        self.listeners: list[asyncio.Queue[Sent]] = []

    def deep_link(self, start: str) -> str:
        return f"{self.channel}://bot?start={start}"

    def fail_next(self, times: int = 1, *, retryable: bool = True, error: str = "test failure") -> None:
        self._failures.extend(Delivery(ok=False, retryable=retryable, error=error) for _ in range(times))

    async def send(self, outbound: Outbound, idempotency_key: str) -> Delivery:
        self.attempts += 1
        if self._failures:
            return self._failures.pop(0)
        if idempotency_key in self.by_key:  # the platform's duplicate check
            return Delivery(ok=True, platform_message_id=self.by_key[idempotency_key].platform_message_id)
        record = Sent(outbound, f"m{next(self._ids)}", idempotency_key)
        self.sent.append(record)
        self.by_key[idempotency_key] = record
        self.by_chat[outbound.address.chat_id].append(record)
        for q in self.listeners:
            q.put_nowait(record)
        return Delivery(ok=True, platform_message_id=record.platform_message_id)

    def texts(self, chat_id: str | None = None) -> list[str]:
        items = self.sent if chat_id is None else self.by_chat.get(chat_id, [])
        return [s.outbound.text for s in items]

    def inbound(self, chat_id: str, text: str = "", *, kind: str = "text", user_id: str = "",
                message_id: str | None = None, payload: dict | None = None, locale: str = "",
                is_group: bool = False, now: datetime | None = None, **extra: object) -> Inbound:
        """Build an Inbound as this platform would deliver it."""
        return Inbound(
            kind=kind,  # type: ignore[arg-type]
            address=Address(self.channel, chat_id, user_id or chat_id, is_group=is_group),
            message_id=message_id or f"in{next(self._seq)}",
            received_at=now or datetime.now(timezone.utc),
            text=text, payload=payload or {}, locale=locale, **extra)  # type: ignore[arg-type]
