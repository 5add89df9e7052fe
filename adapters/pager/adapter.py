"""The pager webhook adapter: delivers `page` outbounds as signed JSON POSTs.

It rides the outbox like any other channel, so a page is retried with backoff until the gateway
answers 2xx, survives a restart, and carries the outbox row's idempotency key: a page re-sent after
a crash between the gateway's 2xx and our record of it is dropped by a gateway that honours the key.
The body names the ticket and whom to reach (id, name, contacts) — never the patient's words.
"""

from __future__ import annotations

import json
import time
from typing import Callable

import httpx

from adapters.pager.signature import IDEMPOTENCY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, sign
from bot.adapter import Adapter, Capabilities, RatePolicy
from bot.types import Delivery, Outbound

CHANNEL = "pager"


class PagerWebhookAdapter(Adapter):
    channel = CHANNEL
    capabilities = Capabilities(ops=frozenset({"page"}), buttons=False, media=False)
    rate_policy = RatePolicy(per_chat=(60, 1.0), overall=(600, 1.0))

    def __init__(self, url: str, secret: str, *, timeout: float = 10.0,
                 now: Callable[[], float] = time.time):
        if not secret:
            raise ValueError("the pager webhook needs a secret (CAREBOT_PAGER_WEBHOOK_SECRET) to sign pages")
        self.url = url
        self.secret = secret
        self.timeout = timeout
        self.now = now
        self._client: httpx.AsyncClient | None = None

    async def send(self, outbound: Outbound, idempotency_key: str) -> Delivery:
        if outbound.op != "page":
            return Delivery(ok=False, retryable=False, error=f"the pager webhook cannot {outbound.op}")
        body = json.dumps({**outbound.extra.get("page", {}), "idempotency_key": idempotency_key},
                          ensure_ascii=False, sort_keys=True).encode()
        ts = int(self.now())
        headers = {"Content-Type": "application/json", TIMESTAMP_HEADER: str(ts),
                   SIGNATURE_HEADER: sign(self.secret, ts, body), IDEMPOTENCY_HEADER: idempotency_key}
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self.timeout)
        try:
            response = await self._client.post(self.url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            return Delivery(ok=False, retryable=True, error=type(exc).__name__)
        if 200 <= response.status_code < 300:
            return Delivery(ok=True, platform_message_id=idempotency_key)
        retry_after = response.headers.get("retry-after", "")
        return Delivery(ok=False, retryable=response.status_code in (408, 425, 429) or response.status_code >= 500,
                        error=f"HTTP {response.status_code}",
                        retry_after=float(retry_after) if retry_after.isdigit() else 0.0)

    async def stop(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
