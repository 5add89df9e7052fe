"""Coordination across processes with Redis: SET NX PX locks with a fencing token, SET NX for
de-duplication, sorted-set sliding windows for rate limits, and Redis pub/sub."""

from __future__ import annotations

import asyncio
import secrets
import time
from contextlib import asynccontextmanager
from typing import AsyncIterator, Sequence

import redis.asyncio as aioredis

from bot.coord.base import Budget, Coord, LockTimeout

# Release only a lock we still own (its value is our token); also: drop a cached value only while
# it still holds the value the caller saw.
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
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

# Reservation (see Coord.reserve): each budget is a sorted set of its busy lanes scored by the
# moment each falls free; KEYS = the budgets' sets, then their holds. The slot is the latest of
# `at`, every full budget's first free lane and every hold; each budget then gives the slot the lane
# that fell free last before it (or a new lane), busy until slot + per_seconds.
_RESERVE = """
local at = tonumber(ARGV[1]); local n = #KEYS / 2
local slot = at
for i = 1, n do
  redis.call('zremrangebyscore', KEYS[i], '-inf', at)
  if redis.call('zcard', KEYS[i]) >= tonumber(ARGV[2 * i]) then
    slot = math.max(slot, tonumber(redis.call('zrange', KEYS[i], 0, 0, 'WITHSCORES')[2]))
  end
  local hold = redis.call('get', KEYS[n + i])
  if hold then slot = math.max(slot, tonumber(hold)) end
end
for i = 1, n do
  local per = tonumber(ARGV[2 * i + 1])
  local fit = redis.call('zrevrangebyscore', KEYS[i], slot, '-inf', 'LIMIT', 0, 1)
  local lane = fit[1] or (ARGV[2 * n + 2] .. ':' .. i)
  redis.call('zadd', KEYS[i], slot + per, lane)
  redis.call('pexpire', KEYS[i], math.ceil(math.max(slot + per - at, 3600) * 1000))
end
return tostring(slot - at)
"""
_HOLD_BACK = """
local hold_until = tonumber(ARGV[1])
for i = 1, #KEYS do
  local hold = redis.call('get', KEYS[i])
  if not hold or tonumber(hold) < hold_until then
    redis.call('set', KEYS[i], ARGV[1], 'PX', math.ceil(math.max(tonumber(ARGV[2]), 3600) * 1000))
  end
end
return 0
"""


class RedisCoord(Coord):
    def __init__(self, url: str, prefix: str = "carebot:", max_connections: int = 256):
        # a blocking pool: under a burst, callers wait for a free connection instead of failing
        pool = aioredis.BlockingConnectionPool.from_url(url, decode_responses=True,
                                                        max_connections=max_connections, timeout=30)
        self.redis = aioredis.Redis(connection_pool=pool)
        self.prefix = prefix
        self._release = self.redis.register_script(_RELEASE)
        self._hit = self.redis.register_script(_HIT)
        self._reserve = self.redis.register_script(_RESERVE)
        self._hold_back = self.redis.register_script(_HOLD_BACK)

    @asynccontextmanager
    async def lock(self, key: str, ttl: float = 30.0, wait: float = 60.0) -> AsyncIterator[None]:
        name = f"{self.prefix}lock:{key}"
        token = secrets.token_hex(8)
        deadline = time.monotonic() + wait
        delay = 0.001
        while not await self.redis.set(name, token, nx=True, px=int(ttl * 1000)):
            if time.monotonic() > deadline:
                raise LockTimeout(key)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.05)
        try:
            yield
        finally:
            await self._release(keys=[name], args=[token])

    async def seen(self, key: str) -> bool:
        return bool(await self.redis.exists(f"{self.prefix}seen:{key}"))

    async def mark_seen(self, key: str, ttl: int = 86400) -> None:
        await self.redis.set(f"{self.prefix}seen:{key}", "1", ex=ttl)

    async def hit(self, key: str, limit: int, per_seconds: float, at: float | None = None) -> float:
        wait = await self._hit(keys=[f"{self.prefix}rate:{key}"],
                               args=[time.time() if at is None else at, per_seconds, limit, secrets.token_hex(6)])
        return max(0.0, float(wait))

    async def reserve(self, budgets: Sequence[Budget], at: float) -> float:
        keys = [f"{self.prefix}lanes:{b.key}" for b in budgets] + [f"{self.prefix}hold:{b.key}" for b in budgets]
        args: list[float | str] = [repr(at)]
        for b in budgets:
            args += [b.limit, repr(float(b.per_seconds))]
        args.append(secrets.token_hex(6))
        return max(0.0, float(await self._reserve(keys=keys, args=args)))

    async def hold_back(self, keys: Sequence[str], seconds: float, at: float) -> None:
        await self._hold_back(keys=[f"{self.prefix}hold:{k}" for k in keys], args=[repr(at + seconds), seconds])

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

    async def close(self) -> None:
        await self.redis.aclose()
