"""The WAL checkpoint policy (bot/store/checkpoint.py) on a real SQLite database: the WAL stays
bounded under sustained writes, a busy writer defers checkpoints until the urgent bound, a quiet
database gets its WAL truncated, readers see committed data throughout, SQLite's own bound holds
when no checkpointer runs, and a process killed while writing and checkpointing loses nothing."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection

from bot.store import db
from bot.store.checkpoint import PAGE_BYTES, Checkpointer
from bot.store.writer import BatchWriter

ROW = "x" * 600  # a few rows fill a page: the WAL grows by pages a batch


class Ticks:
    """A monotonic clock that moves only when told to."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _engine(path: Path) -> Any:
    engine = db.make_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE IF NOT EXISTS note (id INTEGER PRIMARY KEY, body TEXT NOT NULL)")
    return engine


def _insert(first: int, n: int) -> Any:
    def write(conn: Connection) -> int:
        conn.exec_driver_sql("INSERT INTO note (id, body) VALUES (?, ?)", [(i, ROW) for i in range(first, first + n)])
        return first + n
    return write


def _count(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT count(*) FROM note").fetchone()[0]


def test_the_wal_stays_under_its_bound_under_sustained_writes(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    engine = _engine(path)
    writer = BatchWriter(engine, threads=0)
    clock = Ticks()
    soft = 64
    checkpointer = Checkpointer(str(path), writer, soft_pages=soft, urgent_pages=4 * soft, monotonic=clock,
                                start=False)

    async def sustained() -> tuple[int, int]:
        most = 0
        for batch in range(400):  # each batch: 20 rows, about 4 pages of WAL
            await writer.submit(_insert(batch * 20, 20))
            clock.now += 0.01
            most = max(most, checkpointer.pending_pages())
            checkpointer.step()
        return most, checkpointer.checkpoints

    most, checkpoints = asyncio.run(sustained())
    wal_pages = os.path.getsize(f"{path}-wal") // PAGE_BYTES
    writer.close()
    checkpointer.close()
    engine.dispose()
    assert checkpoints >= 10  # ~1,600 pages written, a checkpoint every ~64
    assert most < soft + 16  # never more than the soft bound and one batch behind
    assert wal_pages < 2 * soft  # the file itself is reused from its start after each checkpoint
    assert _count(path) == 8000


def test_a_busy_writer_defers_the_checkpoint_until_the_urgent_bound(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    engine = _engine(path)
    writer = BatchWriter(engine, threads=0)
    checkpointer = Checkpointer(str(path), writer, soft_pages=16, urgent_pages=64, monotonic=Ticks(), start=False)

    async def run() -> list[tuple[int, str]]:
        seen = []
        for batch in range(40):
            await writer.submit(_insert(batch * 20, 20))
            # a write submitted and not yet flushed (the loop has not turned): the writer is busy
            waiting = writer.submit(_insert(10**6 + batch, 1))
            assert writer.waiting
            pending = checkpointer.pending_pages()
            seen.append((pending, checkpointer.step()))
            await waiting
        return seen

    seen = asyncio.run(run())
    writer.close()
    checkpointer.close()
    engine.dispose()
    assert all(done == "" for pending, done in seen if pending < 64)
    assert all(done == "passive" for pending, done in seen if pending >= 64)
    assert any(done == "passive" for _pending, done in seen)
    assert any(done == "" and pending >= 16 for pending, done in seen)  # past soft, deferred


def test_a_quiet_database_gets_its_wal_truncated_once(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    engine = _engine(path)
    writer = BatchWriter(engine, threads=0)
    clock = Ticks()
    checkpointer = Checkpointer(str(path), writer, soft_pages=10_000, quiet=30.0, monotonic=clock, start=False)

    async def write(batches: int) -> None:
        for batch in range(batches):
            await writer.submit(_insert(batch * 20, 20))

    asyncio.run(write(10))
    assert checkpointer.step() == ""  # active just now, under the soft bound
    clock.now += 29.0
    assert checkpointer.step() == ""
    assert os.path.getsize(f"{path}-wal") > 0
    clock.now += 1.0
    assert checkpointer.step() == "truncate"
    assert os.path.getsize(f"{path}-wal") == 0
    clock.now += 60.0
    assert checkpointer.step() == ""  # nothing written since: not again
    assert checkpointer.truncates == 1
    writer.close()
    checkpointer.close()
    engine.dispose()
    assert _count(path) == 200


def test_readers_see_committed_data_across_checkpoints(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    engine = _engine(path)
    writer = BatchWriter(engine, threads=0)
    checkpointer = Checkpointer(str(path), writer, soft_pages=8, monotonic=Ticks(), start=False)
    reader = sqlite3.connect(path, isolation_level=None)

    async def run() -> None:
        for batch in range(30):
            await writer.submit(_insert(batch * 20, 20))
            if batch == 10:  # a reader in the middle of a read keeps its snapshot through checkpoints
                reader.execute("BEGIN")
                assert reader.execute("SELECT count(*) FROM note").fetchone()[0] == 220
            checkpointer.step()
            with engine.connect() as conn:  # a new read sees every commit so far
                assert conn.exec_driver_sql("SELECT count(*) FROM note").scalar() == (batch + 1) * 20
        assert reader.execute("SELECT count(*) FROM note").fetchone()[0] == 220
        reader.execute("COMMIT")
        assert reader.execute("SELECT count(*) FROM note").fetchone()[0] == 600

    asyncio.run(run())
    assert checkpointer.checkpoints >= 5
    reader.close()
    writer.close()
    checkpointer.close()
    engine.dispose()
    assert _count(path) == 600


def test_sqlite_bounds_the_wal_itself_when_no_checkpointer_runs(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(db, "HARD_PAGES", 100)
    path = tmp_path / "c.db"
    engine = _engine(path)
    writer = BatchWriter(engine, threads=0)
    watcher = Checkpointer(str(path), writer, monotonic=Ticks(), start=False)  # reads the WAL, never steps

    async def run() -> int:
        most = 0
        for batch in range(200):
            await writer.submit(_insert(batch * 20, 20))
            most = max(most, watcher.pending_pages())
        return most

    most = asyncio.run(run())
    writer.close()
    engine.dispose()
    assert 90 <= most < 100 + 16  # reached the bound, and the commit that crossed it checkpointed
    assert _count(path) == 4000


CHILD = textwrap.dedent("""
    import asyncio, sys
    from bot.store.db import make_engine
    from bot.store.writer import BatchWriter
    from bot.store.checkpoint import Checkpointer

    path = sys.argv[1]
    engine = make_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE note (id INTEGER PRIMARY KEY, body TEXT NOT NULL)")
    writer = BatchWriter(engine, threads=0)
    checkpointer = Checkpointer(path, writer, soft_pages=16, poll=0.001)

    def insert(first):
        def write(conn):
            conn.exec_driver_sql("INSERT INTO note (id, body) VALUES (?, ?)",
                                 [(i, "y" * 600) for i in range(first, first + 10)])
        return write

    async def main():
        n = 0
        while True:
            await writer.submit(insert(n))
            n += 10
            print(n, checkpointer.checkpoints, flush=True)  # rows below n are committed

    asyncio.run(main())
""")


@pytest.mark.timeout(120)
def test_a_process_killed_while_writing_and_checkpointing_loses_nothing(tmp_path: Path) -> None:
    path = tmp_path / "killed.db"
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(path)], stdout=subprocess.PIPE, text=True,
                             cwd=Path(__file__).resolve().parent.parent)
    assert child.stdout is not None
    committed = checkpoints = 0
    for line in child.stdout:
        committed, checkpoints = (int(x) for x in line.split())
        if checkpoints >= 20 and committed >= 5000:
            break
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert checkpoints >= 20, "the child stopped before checkpointing"
    with sqlite3.connect(path) as conn:  # recovery replays the WAL over a half-copied database
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        rows = conn.execute("SELECT count(*), max(id) FROM note").fetchone()
    assert rows[0] >= committed  # every acknowledged row is there (and maybe a batch more)
    assert rows[0] == rows[1] + 1  # no gap: commits are whole
