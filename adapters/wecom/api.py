"""WeCom's server API: access tokens per application secret, shared by every worker, and calls
that retry what WeCom asks to be retried.

Tokens live in `Coord` (memory, or Redis when several workers run) under the app's name; a worker
that finds none (or a stale one) takes the refresh lock, looks again, and only then calls
`gettoken`, so a burst of workers costs WeCom one refresh. A call answered 40014 (invalid token)
or 42001 (expired) drops that token — only if no other worker replaced it meanwhile — and is retried
with a fresh one. 45009 (frequency) and 45033 (concurrency) raise `WeComBusy` with a back-off.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

import httpx

from bot.coord import Coord

log = logging.getLogger("carebot.wecom")

TOKEN_ERRORS = frozenset({40014, 42001})
BUSY_ERRORS = frozenset({45009, 45033})
TOKEN_MARGIN = 300.0  # refresh this long before WeCom's expiry


@dataclass(frozen=True)
class App:
    """One application secret: the kf API, the self-built app, or customer contact."""

    name: str
    secret: str


class WeComError(Exception):
    def __init__(self, path: str, errcode: int, errmsg: str):
        super().__init__(f"WeCom {path}: errcode {errcode} ({errmsg})")
        self.path, self.errcode, self.errmsg = path, errcode, errmsg


class WeComBusy(WeComError):
    """45009 / 45033: WeCom asks us to slow down; `retry_after` seconds."""

    def __init__(self, path: str, errcode: int, errmsg: str, retry_after: float):
        super().__init__(path, errcode, errmsg)
        self.retry_after = retry_after


class WeComAPI:
    def __init__(self, base_url: str, corp_id: str, coord: Coord, *, timeout: float = 10.0,
                 busy_backoff: float = 1.0, busy_retries: int = 3):
        self.base_url = base_url.rstrip("/")
        self.corp_id = corp_id
        self.coord = coord
        self.busy_backoff = busy_backoff
        self.busy_retries = busy_retries
        self._client = httpx.AsyncClient(timeout=timeout)

    async def aclose(self) -> None:
        await self._client.aclose()

    def _key(self, app: App) -> str:
        return f"wecom:token:{self.corp_id}:{app.name}"

    async def token(self, app: App, stale: str = "") -> str:
        """A valid access token for `app`; `stale` is one WeCom just refused."""
        key = self._key(app)
        cached = await self.coord.cache_get(key)
        if cached and cached != stale:
            return cached
        async with self.coord.lock(f"{key}:refresh", ttl=30.0, wait=30.0):
            cached = await self.coord.cache_get(key)  # another worker may have refreshed meanwhile
            if cached and cached != stale:
                return cached
            response = await self._client.get(f"{self.base_url}/cgi-bin/gettoken",
                                               params={"corpid": self.corp_id, "corpsecret": app.secret})
            data = response.json()
            if data.get("errcode", 0) != 0 or not data.get("access_token"):
                raise WeComError("gettoken", int(data.get("errcode", -1)), str(data.get("errmsg", "")))
            ttl = max(60.0, float(data.get("expires_in", 7200)) - TOKEN_MARGIN)
            await self.coord.cache_set(key, data["access_token"], ttl)
            log.info("wecom token refreshed app=%s", app.name)
            return str(data["access_token"])

    async def call(self, app: App, path: str, body: dict[str, Any] | None = None, *,
                   wait_when_busy: bool = True) -> dict[str, Any]:
        """POST `body` to /cgi-bin/<path>; the answer when errcode is 0, else WeComError. With
        `wait_when_busy` a 45009/45033 is retried after a back-off (a few times), else raised."""
        stale = ""
        busy = 0
        for _ in range(2 + self.busy_retries):
            token = await self.token(app, stale)
            response = await self._client.post(f"{self.base_url}/cgi-bin/{path}", params={"access_token": token},
                                               json=body or {})
            try:
                data = response.json()
            except ValueError:
                raise WeComError(path, -1, f"HTTP {response.status_code}, not JSON") from None
            code = int(data.get("errcode", 0))
            if code == 0:
                return data
            if code in TOKEN_ERRORS and not stale:
                stale = token
                await self.coord.cache_delete(self._key(app), token)
                continue
            if code in BUSY_ERRORS:
                wait = self.busy_backoff * 2 ** busy
                busy += 1
                if wait_when_busy and busy <= self.busy_retries:
                    log.warning("wecom busy path=%s errcode=%s: waiting %.1fs", path, code, wait)
                    await asyncio.sleep(wait)
                    continue
                raise WeComBusy(path, code, str(data.get("errmsg", "")), wait)
            raise WeComError(path, code, str(data.get("errmsg", "")))
        raise WeComError(path, -1, "gave up after retries")
