"""Keeping SQLite's WAL bounded without putting checkpoints in the commit path's tail.

A checkpoint copies the WAL's pages back into the database file and fsyncs both. On the event
loop it took tens of milliseconds; in a thread of its own, every second, it still put the slowest
commits of the half-load benchmark behind it (the fsync holds the filesystem's journal while the
loop appends to the WAL, and on a pinned core the thread took the CPU from the loop). The policy:

- **By size, not by time.** The thread reads how many WAL frames are not yet copied back (the
  wal-index header in the `-shm` file: a few bytes, no lock, no SQL) every `poll` seconds, and
  checkpoints once there are `soft_pages` of them. A page rewritten a hundred times in the WAL is
  copied back once, so fewer, larger checkpoints cost less in all than one a second.
- **When the writer is idle.** A checkpoint starts only while no batch is waiting to be written;
  past `urgent_pages` it starts regardless (the loop never waits for it: PASSIVE takes no lock a
  writer needs).
- **At the lowest CPU priority.** The thread runs at nice 19, so on a busy core the event loop
  takes the CPU whenever it has work.
- **A hard bound in SQLite itself.** Every connection has `wal_autocheckpoint=hard_pages`: if the
  thread ever falls that far behind (starved of CPU), the committing connection checkpoints. This
  is the old cost, paid only when the policy above failed.
- **TRUNCATE only when quiet.** After `quiet` seconds without a commit the WAL file is truncated
  (disk given back). With no busy handler, it never makes a writer or reader wait.

A checkpoint killed half-way loses nothing: the WAL is reset only after the database file holds
every page and is synced (tests/test_store_checkpoint.py kills a writing process to check).
"""

from __future__ import annotations

import logging
import mmap
import os
import sqlite3
import struct
import threading
import time
from typing import Callable, Protocol

log = logging.getLogger("carebot.store")

PAGE_BYTES = 4096  # SQLite's default page size; the bounds below are in pages
# At half load a turn adds 2-4 pages to the WAL: 64 MB is a checkpoint every few seconds (the hot
# pages, rewritten in every one of those commits, are copied back once each)
SOFT_PAGES = 16384  # 64 MB of WAL: checkpoint when the writer is idle
URGENT_PAGES = 2 * SOFT_PAGES  # 128 MB: checkpoint from the thread whether the writer is idle or not
HARD_PAGES = 4 * SOFT_PAGES  # 256 MB: the committing connection checkpoints (wal_autocheckpoint)

# The wal-index header (https://www.sqlite.org/walformat.html, "The WAL-Index Header"): native
# byte order; iVersion at 0, mxFrame (frames in the WAL) at 16; nBackfill (frames already copied
# back) at 96. The header is stored twice (0 and 48) so a reader can tell a torn read.
_WAL_INDEX_VERSION = 3007000
_HEADER = struct.Struct("=I12xI")  # iVersion, mxFrame
_BACKFILL = struct.Struct("=I")


class Writer(Protocol):
    batches: int

    @property
    def waiting(self) -> bool: ...


class Checkpointer:
    """Runs the policy above from a thread of its own. `start=False` leaves the thread out: call
    `step()` to take one decision (the tests drive it so, with their own `monotonic` clock)."""

    def __init__(self, path: str, writer: Writer, *, synchronous: str = "NORMAL", soft_pages: int = SOFT_PAGES,
                 urgent_pages: int = URGENT_PAGES, poll: float = 0.1, quiet: float = 30.0,
                 monotonic: Callable[[], float] = time.monotonic, start: bool = True):
        self.path = path
        self.writer = writer
        self.synchronous = synchronous
        self.soft_pages = soft_pages
        self.urgent_pages = urgent_pages
        self.poll = poll
        self.quiet = quiet
        self.monotonic = monotonic
        self.checkpoints = 0
        self.truncates = 0
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()  # the thread, `close` and callers (the bench) share the connection
        self._seen_batches = writer.batches
        self._active_at = monotonic()
        self._truncated = True  # nothing written yet since start
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if start:
            self._thread = threading.Thread(target=self._run, name="carebot-checkpoint", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)  # this thread only (Linux)
        except (AttributeError, OSError):
            log.debug("could not lower the checkpoint thread's priority", exc_info=True)
        while not self._stop.wait(self.poll):
            self.step()

    def step(self) -> str:
        """Take one decision; returns what was done: "passive", "truncate" or ""."""
        now = self.monotonic()
        if self.writer.batches != self._seen_batches:
            self._seen_batches = self.writer.batches
            self._active_at = now
            self._truncated = False
        pending = self.pending_pages()
        if pending >= self.urgent_pages or (pending >= self.soft_pages and not self.writer.waiting):
            self.checkpoint("PASSIVE")
            return "passive"
        if not self._truncated and now - self._active_at >= self.quiet and not self.writer.waiting:
            self._truncated = self.checkpoint("TRUNCATE")
            return "truncate"
        return ""

    def pending_pages(self) -> int:
        """Frames in the WAL not yet copied back into the database. Where the wal-index cannot be
        read (another SQLite build, a file system without shared memory), the WAL file's size."""
        try:
            with open(self.path + "-shm", "rb") as f, mmap.mmap(f.fileno(), 136, access=mmap.ACCESS_READ) as shm:
                for _ in range(3):  # a commit may be rewriting the header: the two copies then differ
                    header = shm[0:48]
                    version, frames = _HEADER.unpack_from(header, 0)
                    if version == _WAL_INDEX_VERSION and header == shm[48:96]:
                        return max(0, frames - _BACKFILL.unpack_from(shm, 96)[0])
        except (OSError, ValueError):
            pass
        try:
            return os.path.getsize(self.path + "-wal") // PAGE_BYTES
        except OSError:
            return 0

    def checkpoint(self, mode: str = "PASSIVE") -> bool:
        """Returns whether the checkpoint copied back the whole WAL (False: busy, or it failed)."""
        try:
            with self._lock:
                if self._conn is None:
                    self._conn = self._connect()
                busy, frames, copied = self._conn.execute(f"PRAGMA wal_checkpoint({mode})").fetchone()
        except sqlite3.Error:  # the database is busy or gone: try again at the next step
            log.debug("checkpoint skipped", exc_info=True)
            return False
        self.checkpoints += 1
        self.truncates += mode == "TRUNCATE"
        return not busy and frames == copied

    def _connect(self) -> sqlite3.Connection:
        # its own connection, outside the pool: no busy handler (a checkpoint never waits for a
        # lock, and TRUNCATE never holds writers back while it waits for readers)
        conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        conn.execute("PRAGMA busy_timeout=0")
        conn.execute(f"PRAGMA synchronous={self.synchronous}")
        conn.execute("PRAGMA wal_autocheckpoint=0")
        return conn

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.checkpoint("TRUNCATE")
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
