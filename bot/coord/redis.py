"""Coordination across processes with Redis: SET NX PX locks with a fencing token, SET NX for
de-duplication, sorted-set sliding windows for rate limits, and Redis pub/sub.

A dropped connection (Redis restarting, a failover, a network blip) is retried a few times with
a growing, jittered pause (`RETRIES`, 1.2 to 2.4 s in all), then the call raises redis's
ConnectionError, which callers answer as "temporarily unavailable" (bot/unavailable.py). Every
command here is safe to send again: taking a lock we already took counts as taken (`_ACQUIRE`)."""

from __future__ import annotations

import asyncio
import secrets
import time
from contextlib import asynccontextmanager
from typing import AsyncIterator

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import EqualJitterBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from bot.coord.base import Coord, LockTimeout

# A lock lives this long in Redis and is renewed while its holder works (up to the caller's `ttl`):
# a worker killed while holding one frees it within seconds, not after `ttl` (30 s for a turn).
LOCK_LEASE_S = 3.0
RETRIES = 4  # pauses of 0.1–0.2, 0.2–0.4, 0.4–0.8, 0.5–1 s: a Redis restart is ridden out, an outage is not
CONNECT_TIMEOUT_S = 2.0

# Release only a lock we still own (its value is our token); also: drop a cached value only while
# it still holds the value the caller saw.
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""
# Take the lock, or find it already ours: a retried SET NX whose first reply was lost must not
# wait for its own lock to expire.
_ACQUIRE = """
if redis.call('set', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
if redis.call('get', KEYS[1]) == ARGV[1] then return 1 end
return 0
"""
# Extend a lock we still own.
_RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end
return 0
"""
# Sliding window: drop old entries, count, add when under the limit; else report the wait.
_HIT = """
local now = tonumber(ARGV[1]); local window = tonumber(ARGV[2]); local limit = tonumber(ARGV[3])
redis.call('zremrangebyscore', KEYS[1], '-inf', now - window)
local count = redis.call('zcard', KEYS[1])
if count < limit then
  redis.call('zadd', KEYS[1], now, ARGV[4])
  redis.call('pexpire', KEYS[1], math.ceil(math.max(window, 3600) * 1000))  -- at least an hour: a caller's clock (`at`) may run slower than the machine's
  return '0'
end
local oldest = redis.call('zrange', KEYS[1], 0, 0, 'WITHSCORES')
return tostring(tonumber(oldest[2]) + window - now)
"""


class RedisCoord(Coord):
    def __init__(self, url: str, prefix: str = "carebot:", max_connections: int = 256):
        # a blocking pool: under a burst, callers wait for a free connection instead of failing
        # no socket_timeout: a pub/sub connection rightly waits as long as nothing is published
        pool = aioredis.BlockingConnectionPool.from_url(
            url, decode_responses=True, max_connections=max_connections, timeout=30,
            retry=Retry(EqualJitterBackoff(cap=1.0, base=0.1), RETRIES),
            retry_on_error=[RedisConnectionError, RedisTimeoutError],
            socket_connect_timeout=CONNECT_TIMEOUT_S, socket_keepalive=True, health_check_interval=30)
        self.redis = aioredis.Redis(connection_pool=pool)
        self.prefix = prefix
        self._release = self.redis.register_script(_RELEASE)
        self._acquire = self.redis.register_script(_ACQUIRE)
        self._renew = self.redis.register_script(_RENEW)
        self._hit = self.redis.register_script(_HIT)

    @asynccontextmanager
    async def lock(self, key: str, ttl: float = 30.0, wait: float = 60.0) -> AsyncIterator[None]:
        name = f"{self.prefix}lock:{key}"
        token = secrets.token_hex(8)
        deadline = time.monotonic() + wait
        lease = min(ttl, LOCK_LEASE_S)
        delay = 0.001
        while not await self._acquire(keys=[name], args=[token, int(lease * 1000)]):
            if time.monotonic() > deadline:
                raise LockTimeout(key)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.05)
        loop = asyncio.get_running_loop()
        ends = loop.time() + ttl  # a live holder keeps the lock at most `ttl`, as before
        renewal: asyncio.TimerHandle | None = None
        renewing: set[asyncio.Task[None]] = set()

        def renew() -> None:  # a turn takes milliseconds: this runs only for long holds
            nonlocal renewal
            left = ends - loop.time()
            if left <= 0:
                return
            task = loop.create_task(self._extend(name, token, min(lease, left)))
            renewing.add(task)
            task.add_done_callback(renewing.discard)
            renewal = loop.call_later(lease / 3, renew)

        if ttl > lease:
            renewal = loop.call_later(lease / 3, renew)
        try:
            yield
        finally:
            if renewal is not None:
                renewal.cancel()
            for task in list(renewing):
                task.cancel()
            await self._release(keys=[name], args=[token])

    async def _extend(self, name: str, token: str, seconds: float) -> None:
        try:
            await self._renew(keys=[name], args=[token, max(1, int(seconds * 1000))])
        except Exception:  # noqa: BLE001 - Redis away: the lock lapses, the state version still guards
            pass

    async def seen(self, key: str) -> bool:
        return bool(await self.redis.exists(f"{self.prefix}seen:{key}"))

    async def mark_seen(self, key: str, ttl: int = 86400) -> None:
        await self.redis.set(f"{self.prefix}seen:{key}", "1", ex=ttl)

    async def hit(self, key: str, limit: int, per_seconds: float, at: float | None = None) -> float:
        wait = await self._hit(keys=[f"{self.prefix}rate:{key}"],
                               args=[time.time() if at is None else at, per_seconds, limit, secrets.token_hex(6)])
        return max(0.0, float(wait))

    async def cache_get(self, key: str) -> str | None:
        value = await self.redis.get(f"{self.prefix}cache:{key}")
        return None if value is None else str(value)

    async def cache_set(self, key: str, value: str, ttl: float) -> None:
        await self.redis.set(f"{self.prefix}cache:{key}", value, px=max(1, int(ttl * 1000)))

    async def cache_delete(self, key: str, value: str | None = None) -> None:
        if value is None:
            await self.redis.delete(f"{self.prefix}cache:{key}")
        else:
            await self._release(keys=[f"{self.prefix}cache:{key}"], args=[value])

    async def publish(self, channel: str, message: str) -> None:
        await self.redis.publish(f"{self.prefix}{channel}", message)

    async def subscribe(self, channel: str) -> AsyncIterator[str]:  # type: ignore[override]
        pubsub = self.redis.pubsub()
        await pubsub.subscribe(f"{self.prefix}{channel}")
        try:
            async for msg in pubsub.listen():
                if msg.get("type") == "message":
                    yield msg["data"]
        finally:
            await pubsub.unsubscribe()
            await pubsub.aclose()

    async def ping(self) -> None:
        await self.redis.ping()

    async def close(self) -> None:
        await self.redis.aclose()
