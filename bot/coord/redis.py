"""Coordination across processes with Redis: SET NX PX locks with a fencing token, SET NX for
de-duplication, sorted-set sliding windows for rate limits, and Redis pub/sub.

The runtime's per-turn calls (`hold`, `step`, `release`) are each one Lua script that does the
lock, the seen check and the version together, and all calls made while the previous batch is on
the wire go out as one pipeline: one round trip serves many conversations, and the batches go out
in order (one in flight at a time), so a conversation's release always reaches Redis before its
next hold. Holds live a few seconds in Redis and are renewed at every step (`_lease_ms`).

A dropped connection (Redis restarting, a failover, a network blip) is retried a few times with
a growing, jittered pause (`RETRIES`, 1.2 to 2.4 s in all), then the call raises redis's
ConnectionError, which callers answer as "temporarily unavailable" (bot/unavailable.py). Every
command here is safe to send again: taking a lock we already took counts as taken (`_ACQUIRE`)."""

from __future__ import annotations

import asyncio
import itertools
import secrets
import time
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator, Sequence

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import EqualJitterBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError
from redis.exceptions import TimeoutError as RedisTimeoutError

from bot.coord.base import Budget, Coord, Hold, LockTimeout

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

# The same for several windows at once (Coord.hit_all): count in every one, or in none and report
# the longest wait. ARGV: now, then each window's span and limit, then the member.
_HIT_ALL = """
local now = tonumber(ARGV[1]); local n = #KEYS; local wait = 0
for i = 1, n do
  local window = tonumber(ARGV[2 * i])
  redis.call('zremrangebyscore', KEYS[i], '-inf', now - window)
  if redis.call('zcard', KEYS[i]) >= tonumber(ARGV[2 * i + 1]) then
    local oldest = redis.call('zrange', KEYS[i], 0, 0, 'WITHSCORES')
    wait = math.max(wait, tonumber(oldest[2]) + window - now)
  end
end
if wait > 0 then return tostring(wait) end
for i = 1, n do
  redis.call('zadd', KEYS[i], now, ARGV[2 * n + 2])
  redis.call('pexpire', KEYS[i], math.ceil(math.max(tonumber(ARGV[2 * i]), 3600) * 1000))
end
return '0'
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


# Take a conversation: the lock (or renew it, when the token is already ours), whether the first
# message was seen, and the version last committed. KEYS: lock, seen, version. ARGV: token, ttl ms.
_HOLD = """
local cur = redis.call('get', KEYS[1])
if cur == ARGV[1] then
  redis.call('pexpire', KEYS[1], ARGV[2])
elseif cur or not redis.call('set', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return {0, 0, '0'}
end
return {1, redis.call('exists', KEYS[2]), redis.call('get', KEYS[3]) or '0'}
"""
# Between two turns of a hold, and at its end: mark the finished message seen, record the version
# it committed (only ever upwards), then renew the lease and check the next message (step), or
# let go (release). KEYS: lock, version, done seen ('' when none), next seen ('' on release).
# ARGV: token, ttl ms, version, seen ttl s, release (1/0).
_STEP = """
if KEYS[3] ~= '' then redis.call('set', KEYS[3], '1', 'EX', ARGV[4]) end
local v = tonumber(ARGV[3])
if v > 0 and v > tonumber(redis.call('get', KEYS[2]) or '0') then
  redis.call('set', KEYS[2], ARGV[3], 'EX', ARGV[4])
end
if redis.call('get', KEYS[1]) ~= ARGV[1] then return {0, 0} end
if ARGV[5] == '1' then redis.call('del', KEYS[1]); return {1, 0} end
redis.call('pexpire', KEYS[1], ARGV[2])
return {1, redis.call('exists', KEYS[4])}
"""


def _lease_ms(ttl: float) -> int:
    """A hold lives LOCK_LEASE_S in Redis and is renewed at every step: a worker killed while it
    held conversations frees them within seconds. A turn slower than that may lose its hold; the
    state row's version check at commit keeps the other worker's turn from being doubled."""
    return max(1, int(min(ttl, LOCK_LEASE_S) * 1000))


class _Batches:
    """Script calls queued while a batch is on the wire go out together as the next pipeline."""

    def __init__(self, redis: aioredis.Redis, scripts: dict[str, str]):
        self.redis = redis
        self.scripts = scripts  # sha → source, loaded again if Redis forgot them (a restart)
        self.pending: list[tuple[str, list[str], list[Any], asyncio.Future[Any]]] = []
        self.running = False

    def call(self, sha: str, keys: list[str], args: list[Any]) -> asyncio.Future[Any]:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Any] = loop.create_future()
        self.pending.append((sha, keys, args, fut))
        if not self.running:
            self.running = True
            loop.create_task(self._run())
        return fut

    async def _run(self) -> None:
        try:
            while self.pending:
                batch, self.pending = self.pending, []
                try:
                    results = await self._send(batch)
                except Exception as exc:  # Redis unreachable: every call of the batch fails
                    for *_, fut in batch:
                        if not fut.done():
                            fut.set_exception(exc)
                    continue
                for (*_, fut), result in zip(batch, results):
                    if fut.done():
                        continue
                    if isinstance(result, Exception):
                        fut.set_exception(result)
                    else:
                        fut.set_result(result)
        finally:
            self.running = False

    async def _send(self, batch: list[tuple[str, list[str], list[Any], asyncio.Future[Any]]]) -> list[Any]:
        for attempt in (0, 1):
            pipe = self.redis.pipeline(transaction=False)
            for sha, keys, args, _ in batch:
                pipe.evalsha(sha, len(keys), *keys, *args)
            results = await pipe.execute(raise_on_error=False)
            if attempt == 0 and any(isinstance(r, NoScriptError) for r in results):
                for source in self.scripts.values():
                    await self.redis.script_load(source)
                continue  # the scripts only change keys when they run: running the batch again is safe
            return list(results)
        return list(results)


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
        self._hold_sha = self.redis.register_script(_HOLD).sha
        self._step_sha = self.redis.register_script(_STEP).sha
        self._hit_all_sha = self.redis.register_script(_HIT_ALL).sha
        self._batches = _Batches(self.redis, {self._hold_sha: _HOLD, self._step_sha: _STEP, self._hit.sha: _HIT,
                                              self._hit_all_sha: _HIT_ALL})
        # tokens (lock owners, rate-window members) need only be unique: a random tag per process
        # and a counter, not a system call for randomness each time
        self._tag = secrets.token_hex(6)
        self._serial = itertools.count()
        self.seen_ttl = 86400
        self._reserve = self.redis.register_script(_RESERVE)
        self._hold_back = self.redis.register_script(_HOLD_BACK)

    async def hold(self, key: str, dedupe_key: str, ttl: float = 30.0, wait: float = 60.0) -> Hold:
        p = self.prefix
        keys = [f"{p}lock:{key}", f"{p}seen:{dedupe_key}", f"{p}ver:{key}"]
        token = self._token()
        deadline = time.monotonic() + wait
        delay = 0.001
        while True:
            got, seen, version = await self._batches.call(self._hold_sha, keys, [token, _lease_ms(ttl)])
            if int(got):
                return Hold(key, bool(int(seen)), int(version), token)
            if time.monotonic() > deadline:
                raise LockTimeout(key)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.05)

    async def step(self, hold: Hold, done_key: str | None, version: int, next_key: str,
                   ttl: float = 30.0) -> bool:
        ours, seen = await self._step(hold, done_key, version, next_key, ttl, release=False)
        hold.seen = bool(int(seen))
        return bool(int(ours))

    async def release(self, hold: Hold, done_key: str | None, version: int) -> None:
        await self._step(hold, done_key, version, None, 0, release=True)

    def _step(self, hold: Hold, done_key: str | None, version: int, next_key: str | None, ttl: float,
              release: bool) -> asyncio.Future[Any]:
        p = self.prefix
        keys = [f"{p}lock:{hold.key}", f"{p}ver:{hold.key}", f"{p}seen:{done_key}" if done_key else "",
                f"{p}seen:{next_key}" if next_key else ""]
        return self._batches.call(self._step_sha, keys,
                                  [hold.token, _lease_ms(ttl), version, self.seen_ttl, 1 if release else 0])

    @asynccontextmanager
    async def lock(self, key: str, ttl: float = 30.0, wait: float = 60.0) -> AsyncIterator[None]:
        name = f"{self.prefix}lock:{key}"
        token = self._token()
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
        wait = await self._batches.call(self._hit.sha, [f"{self.prefix}rate:{key}"],
                                        [time.time() if at is None else at, per_seconds, limit, self._token()])
        return max(0.0, float(wait))

    async def hit_all(self, windows: Sequence[tuple[str, int, float]]) -> float:
        args: list[Any] = [time.time()]
        for _key, limit, per_seconds in windows:
            args += [per_seconds, limit]
        args.append(self._token())
        wait = await self._batches.call(self._hit_all_sha, [f"{self.prefix}rate:{k}" for k, _, _ in windows], args)
        return max(0.0, float(wait))

    def _token(self) -> str:
        return f"{self._tag}.{next(self._serial)}"
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

    async def ping(self) -> None:
        await self.redis.ping()

    async def close(self) -> None:
        await self.redis.aclose()
