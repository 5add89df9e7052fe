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
import random
import threading
import time
import zlib
from typing import Any, Callable

from sqlalchemy import Connection
from sqlalchemy.engine import Engine

from bot import metrics

log = logging.getLogger("carebot.store")

WriteFn = Callable[[Connection], Any]


class Grouped:
    """A write that can run together with others of its kind. Called alone it is `fn(conn, arg)`;
    consecutive ones in a batch with the same `many` run as `many(conn, [arg, …])`, which must
    return one result per arg or raise (then the batch falls back to one savepoint per write, each
    alone: the grouped path only saves round trips, it never decides an outcome)."""

    __slots__ = ("fn", "many", "arg")

    def __init__(self, fn: Callable[[Connection, Any], Any], many: Callable[[Connection, list[Any]], list[Any]],
                 arg: Any):
        self.fn, self.many, self.arg = fn, many, arg

    def __call__(self, conn: Connection) -> Any:
        return self.fn(conn, self.arg)
_STOP = object()
TRANSIENT_TRIES = 8
_TRANSIENT_STATES = {"40P01", "40001"}  # deadlock_detected, serialization_failure
SQLITE_SPILL_WAIT_MS = 30_000  # how long the spill thread waits for another process's write lock


class BatchWriter:
    """`threads=0`: write on the event loop itself, batching what one loop tick submitted. That is
    the SQLite mode — a local commit takes microseconds, and a thread would only add GIL hand-offs.
    The loop never waits for SQLite's write lock, though: while another process holds it, batches
    go to a spill thread that waits for it (`_flush_inline`).
    `threads>0`: writer threads, for a database across a network (PostgreSQL)."""

    def __init__(self, engine: Engine, threads: int = 1, max_batch: int = 128):
        self.engine = engine
        self.max_batch = max_batch
        # one queue per thread: writes keyed by a conversation always go to the same thread, so
        # its rows are never locked by two of our transactions at once (no deadlock between them)
        self._queues: list[queue.SimpleQueue[Any]] = [queue.SimpleQueue() for _ in range(threads)]
        self._next = 0
        self._threads = [threading.Thread(target=self._loop, args=(q,), name=f"carebot-writer-{i}", daemon=True)
                         for i, q in enumerate(self._queues)]
        self._inline: list[Any] = []
        self._inline_conn: Connection | None = None
        self._spill_queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._spill_thread: threading.Thread | None = None
        self._spilled = 0  # writes handed to the spill thread and not yet done
        self.batches = 0
        self.items = 0
        for t in self._threads:
            t.start()

    def submit(self, fn: WriteFn, key: str = "") -> asyncio.Future[Any]:
        """Run `fn` in a transaction. Writes with the same `key` (a conversation id) run one
        after another, on one writer thread."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Any] = loop.create_future()
        if self._threads:
            if key:
                index = zlib.crc32(key.encode()) % len(self._queues)
            else:
                index = self._next = (self._next + 1) % len(self._queues)
            self._queues[index].put((fn, fut, loop))
        else:
            if not self._inline:
                loop.call_soon(self._flush_inline)
            self._inline.append((fn, fut, loop))
        return fut

    @property
    def waiting(self) -> bool:
        """Writes submitted and not yet written. Read from another thread (the checkpointer): a
        moment's view, which is all it needs."""
        return bool(self._inline) or self._spilled > 0 or any(not q.empty() for q in self._queues)

    def _flush_inline(self) -> None:
        """Write what this loop tick submitted, on the loop — unless another process holds SQLite's
        write lock: then the batch goes to the spill thread, which waits for the lock off the
        event loop (the loop keeps answering), and later batches follow it there, in order, until
        it has caught up."""
        batch, self._inline = self._inline, []
        for i in range(0, len(batch), self.max_batch):
            chunk = batch[i:i + self.max_batch]
            if self._spilled:
                self._spill(chunk)
                continue
            try:
                if self._inline_conn is None:
                    self._inline_conn = self._connect()
                self._inline_conn.begin()  # BEGIN IMMEDIATE, without waiting (busy_timeout 0)
            except Exception as exc:
                if is_busy(exc):
                    self._spill(chunk)
                    continue
                # anything else (the file is gone): _run_batch meets it again and fails the chunk
            self._inline_conn = self._run_batch(self._inline_conn, chunk, threaded=False)

    def _spill(self, chunk: list[Any]) -> None:
        if self._spill_thread is None:
            self._spill_thread = threading.Thread(target=self._loop, args=(self._spill_queue,),
                                                  name="carebot-writer-spill", daemon=True)
            self._spill_thread.start()
        metrics.WRITE_SPILLS.inc()
        self._spilled += len(chunk)
        for _fn, fut, _loop in chunk:
            fut.add_done_callback(self._unspill)
        for item in chunk:
            self._spill_queue.put(item)

    def _unspill(self, _fut: asyncio.Future[Any]) -> None:
        self._spilled -= 1

    def _connect(self) -> Connection:
        conn = self.engine.connect()
        conn.info["writer"] = True
        if not self._threads and self.engine.dialect.name == "sqlite":
            # the event loop's writer never waits for SQLite's lock; the spill thread does, off the loop
            wait = SQLITE_SPILL_WAIT_MS if threading.current_thread() is self._spill_thread else 0
            conn.exec_driver_sql(f"PRAGMA busy_timeout={wait}")
        return conn

    def close(self) -> None:
        for q in self._queues:
            q.put(_STOP)
        for t in self._threads:
            t.join(timeout=10)
        if self._spill_thread is not None:
            self._spill_queue.put(_STOP)
            self._spill_thread.join(timeout=40)
        if self._inline_conn is not None:
            _close_quietly(self._inline_conn)
            self._inline_conn = None

    def _loop(self, jobs: queue.SimpleQueue[Any]) -> None:
        conn: Connection | None = None  # connected on the first batch, again after an outage
        try:
            while True:
                first = jobs.get()
                if first is _STOP:
                    return
                batch = [first]
                stop = False
                while len(batch) < self.max_batch:
                    try:
                        item = jobs.get_nowait()
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
            if conn is not None:
                _close_quietly(conn)

    def _run_batch(self, conn: Connection | None, batch: list[Any], threaded: bool = True) -> Connection | None:
        """Run the batch in one transaction. A deadlock or serialization failure (two batches
        on PostgreSQL locking the same rows in opposite orders) rolls everything back: the batch
        runs again, a few times, after a short random pause. Any other failure fails only its item.

        The database going away fails the whole batch at once (each caller gets the error and can
        answer "temporarily unavailable") and drops the connection; the next batch connects
        again, so the writer outlives an outage and writes as soon as the database is back.
        Returns the connection to use for the next batch (None: connect first)."""
        results: list[tuple[asyncio.Future[Any], asyncio.AbstractEventLoop, Any, BaseException | None]] = []
        for attempt in range(TRANSIENT_TRIES):
            try:
                if conn is None:
                    conn = self._connect()
                results = self._attempt(conn, batch)
                break
            except Exception as exc:
                if conn is not None and (conn.invalidated or conn.closed or is_disconnect(exc)):
                    _close_quietly(conn)
                    conn = None
                if is_transient(exc) and attempt < TRANSIENT_TRIES - 1:
                    metrics.WRITE_RETRIES.inc()
                    time.sleep(random.uniform(0, 0.002 * 2 ** attempt))  # writer threads only: SQLite never deadlocks
                    continue
                if conn is None:
                    metrics.WRITE_OUTAGES.inc()
                    log.error("database unreachable, %d writes failed: %s", len(batch), type(exc).__name__)
                elif len(batch) > 1:  # the commit itself failed: every item in the batch failed
                    log.error("batch commit failed (%d items): %s", len(batch), type(exc).__name__)
                results = [(fut, loop, None, exc) for fn, fut, loop in batch]
                break
        self.batches += 1
        self.items += len(batch)
        for fut, loop, value, exc in results:
            if threaded:
                loop.call_soon_threadsafe(_resolve, fut, value, exc)
            else:
                _resolve(fut, value, exc)
        return conn

    def _attempt(self, conn: Connection, batch: list[Any]) -> list[Any]:
        """Optimistically run the whole batch without savepoints; if an item fails, roll back and
        run each item in its own savepoint so only the failing ones fail. Raises on a transient
        failure (the whole batch is retried) and on a failed commit."""
        results = []
        try:
            with conn.get_transaction() or conn.begin():  # the inline writer may have begun already
                i = 0
                while i < len(batch):
                    fn, fut, loop = batch[i]
                    many = fn.many if isinstance(fn, Grouped) else None
                    if many is None:
                        results.append((fut, loop, fn(conn), None))
                        i += 1
                        continue
                    j = i + 1
                    while j < len(batch) and isinstance(batch[j][0], Grouped) and batch[j][0].many == many:
                        j += 1
                    if j == i + 1:  # alone: its own exceptions, as if not grouped
                        results.append((fut, loop, fn(conn), None))
                        i = j
                        continue
                    values = many(conn, [item[0].arg for item in batch[i:j]])
                    results.extend((item[1], item[2], value, None) for item, value in zip(batch[i:j], values))
                    i = j
            return results
        except Exception as exc:
            if is_transient(exc) or is_disconnect(exc) or conn.invalidated or conn.closed or len(batch) == 1:
                raise
        results = []
        with conn.begin():
            for fn, fut, loop in batch:
                savepoint = conn.begin_nested()
                try:
                    value = fn(conn)
                except Exception as exc:  # only this item fails
                    savepoint.rollback()
                    if is_transient(exc):
                        raise
                    results.append((fut, loop, None, exc))
                else:
                    savepoint.commit()
                    results.append((fut, loop, value, None))
        return results


def is_transient(exc: BaseException) -> bool:
    """A deadlock or serialization failure: nothing is wrong with the writes, only their timing."""
    return getattr(getattr(exc, "orig", None), "sqlstate", None) in _TRANSIENT_STATES


def is_busy(exc: BaseException) -> bool:
    """SQLite's write lock is held by another connection (another process)."""
    orig = getattr(exc, "orig", exc)
    code = getattr(orig, "sqlite_errorcode", None)
    return (code is not None and code & 0xFF in (5, 6)) or "database is locked" in str(orig)


def is_disconnect(exc: BaseException) -> bool:
    """The connection to the database broke (server gone, network cut): not the write's fault."""
    return bool(getattr(exc, "connection_invalidated", False))


def _close_quietly(conn: Connection) -> None:
    try:
        conn.close()
    except Exception:  # a broken connection may fail to close; it is discarded either way
        log.debug("closing a broken connection failed", exc_info=True)


def _resolve(fut: asyncio.Future[Any], value: Any, exc: BaseException | None) -> None:
    if fut.done():
        return
    if exc is not None:
        fut.set_exception(exc)
    else:
        fut.set_result(value)
