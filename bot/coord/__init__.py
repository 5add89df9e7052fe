"""Coordination between workers: per-conversation locks, de-duplication, rate limits, pub/sub.

In memory for one process (the default), in Redis when `REDIS_URL` is set.
"""

from __future__ import annotations

from bot.coord.base import Budget, Coord, LockTimeout
from bot.coord.memory import MemoryCoord


def make_coord(redis_url: str | None) -> Coord:
    if redis_url:
        from bot.coord.redis import RedisCoord

        return RedisCoord(redis_url)
    return MemoryCoord()


__all__ = ["Budget", "Coord", "LockTimeout", "MemoryCoord", "make_coord"]
