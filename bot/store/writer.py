"""Group commit: one transaction carries many turns.

Every write in carebot is a function of a connection submitted here. A writer thread takes what is
queued (up to `max_batch`), runs it all in one transaction and commits once, so a busy database
pays one commit for many messages. A function that raises fails only itself: the batch is rolled
back and replayed with a SAVEPOINT around each function (failures — duplicates, version conflicts —
are rare, so the common case pays for no savepoints). Write functions must therefore be safe to
run again, which they are: they only write. On PostgreSQL several writer threads run side by side.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from typing import Any, Callable

from sqlalchemy import Connection
from sqlalchemy.engine import Engine

log = logging.getLogger("carebot.store")

WriteFn = Callable[[Connection], Any]
_STOP = object()


class BatchWriter:
    """`threads=0`: write on the event loop itself, batching what one loop tick submitted. That is
    the SQLite mode — a local commit takes microseconds, and a thread would only add GIL hand-offs.
    `threads>0`: writer threads, for a database across a network (PostgreSQL)."""

    def __init__(self, engine: Engine, threads: int = 1, max_batch: int = 128):
        self.engine = engine
        self.max_batch = max_batch
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._threads = [threading.Thread(target=self._loop, name=f"carebot-writer-{i}", daemon=True)
                         for i in range(threads)]
        self._inline: list[Any] = []
        self._inline_conn: Connection | None = None
        self.batches = 0
        self.items = 0
        for t in self._threads:
            t.start()

    def submit(self, fn: WriteFn) -> asyncio.Future[Any]:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Any] = loop.create_future()
        if self._threads:
            self._queue.put((fn, fut, loop))
        else:
            if not self._inline:
                loop.call_soon(self._flush_inline)
            self._inline.append((fn, fut, loop))
        return fut

    def _flush_inline(self) -> None:
        batch, self._inline = self._inline, []
        if self._inline_conn is None:
            self._inline_conn = self.engine.connect()
            self._inline_conn.info["writer"] = True
        for i in range(0, len(batch), self.max_batch):
            self._inline_conn = self._run_batch(self._inline_conn, batch[i:i + self.max_batch])

    def close(self) -> None:
        for _ in self._threads:
            self._queue.put(_STOP)
        for t in self._threads:
            t.join(timeout=10)
        if self._inline_conn is not None:
            self._inline_conn.close()
            self._inline_conn = None

    def _loop(self) -> None:
        conn = self.engine.connect()
        conn.info["writer"] = True
        try:
            while True:
                first = self._queue.get()
                if first is _STOP:
                    return
                batch = [first]
                stop = False
                while len(batch) < self.max_batch:
                    try:
                        item = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if item is _STOP:
                        stop = True
                        break
                    batch.append(item)
                conn = self._run_batch(conn, batch)
                if stop:
                    return
        finally:
            conn.close()

    def _run_batch(self, conn: Connection, batch: list[Any]) -> Connection:
        """Optimistically run the whole batch in one transaction without savepoints; if any item
        fails, roll back and run each item in its own savepoint so only the failing ones fail."""
        results: list[tuple[asyncio.Future[Any], asyncio.AbstractEventLoop, Any, BaseException | None]] = []
        try:
            try:
                with conn.begin():
                    for fn, fut, loop in batch:
                        results.append((fut, loop, fn(conn), None))
            except Exception:
                if len(batch) == 1 and not conn.closed:
                    raise
                results = []
                with conn.begin():
                    for fn, fut, loop in batch:
                        savepoint = conn.begin_nested()
                        try:
                            value = fn(conn)
                        except Exception as exc:  # only this item fails
                            savepoint.rollback()
                            results.append((fut, loop, None, exc))
                        else:
                            savepoint.commit()
                            results.append((fut, loop, value, None))
        except Exception as exc:
            if len(batch) > 1:  # the commit itself failed: every item in the batch failed
                log.exception("batch commit failed (%d items)", len(batch))
            results = [(fut, loop, None, exc) for fn, fut, loop in batch]
            if conn.invalidated or conn.closed:
                conn = self.engine.connect()
                conn.info["writer"] = True
        self.batches += 1
        self.items += len(batch)
        for fut, loop, value, exc in results:
            if self._threads:
                loop.call_soon_threadsafe(_resolve, fut, value, exc)
            else:
                _resolve(fut, value, exc)
        return conn


def _resolve(fut: asyncio.Future[Any], value: Any, exc: BaseException | None) -> None:
    if fut.done():
        return
    if exc is not None:
        fut.set_exception(exc)
    else:
        fut.set_result(value)
