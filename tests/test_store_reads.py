"""A conversation's state is read on the event loop on SQLite (bot/store/store.py, `Store.load`):
it sees what was committed, keeps no snapshot between reads, and does not wait for a writer (WAL).
(Its fallback — SQLITE_BUSY sends the read to the reader pool — needs a database locked against
readers, which another connection cannot arrange once ours have the WAL open.)"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from datetime import datetime, timezone
from pathlib import Path

import sqlalchemy as sa

from bot.store.migrate import upgrade
from bot.store.store import CONV, Store

AT = datetime(2026, 12, 1, 9, 0, tzinfo=timezone.utc)


def _put(store: Store, cid: str, version: int) -> None:
    with store.engine.begin() as conn:
        conn.execute(sa.delete(CONV).where(CONV.c.id == cid))
        conn.execute(sa.insert(CONV).values(id=cid, channel="memory", chat_id=cid, state=json.dumps({"v": version}),
                                            version=version, created_at=AT, updated_at=AT))


def _store(tmp_path: Path) -> tuple[Store, Path]:
    path = tmp_path / "reads.db"
    upgrade(f"sqlite:///{path}")
    return Store(f"sqlite:///{path}"), path


def test_a_read_on_the_loop_sees_each_commit(tmp_path: Path) -> None:
    store, _path = _store(tmp_path)

    async def run() -> list[tuple[object, int]]:
        seen = [await store.load("c1")]
        for version in (1, 2, 3):
            _put(store, "c1", version)  # committed by another connection between reads
            seen.append(await store.load("c1"))
        return seen

    try:
        assert asyncio.run(run()) == [(None, 0), ({"v": 1}, 1), ({"v": 2}, 2), ({"v": 3}, 3)]
    finally:
        store.close()


def test_a_writer_holding_the_lock_does_not_hold_the_read_back(tmp_path: Path) -> None:
    store, path = _store(tmp_path)
    _put(store, "c1", 7)
    writer = sqlite3.connect(path, isolation_level=None, timeout=0)
    writer.execute("BEGIN IMMEDIATE")  # another process mid-write, holding SQLite's write lock
    writer.execute("UPDATE conversation SET version = 8 WHERE id = 'c1'")

    async def run() -> tuple[tuple[object, int], tuple[object, int]]:
        during = await store.load("c1")  # on the loop, without waiting for the lock
        writer.execute("COMMIT")
        return during, await store.load("c1")

    try:
        during, after = asyncio.run(run())
    finally:
        writer.close()
        store.close()
    assert during == ({"v": 7}, 7)  # the last committed state, not the uncommitted one
    assert after == ({"v": 7}, 8)
