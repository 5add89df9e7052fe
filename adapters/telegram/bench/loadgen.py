"""The benchmark's Telegram side in a process of its own: the fake Bot API and the patients who POST
updates to carebot's webhook. Its event loop (and, where there are two cores, its core) is not the
one being measured, so carebot's figures — and the in-memory peers', whose replies go to the same
server — exclude what it costs to play Telegram.

The measuring process drives it with `LoadGen`: one command at a time over a pipe, each answered
once done (`users`, `limits`, `mark`, `drive`, `delivered`, `stop`).
"""

from __future__ import annotations

import asyncio
import gc
import multiprocessing
import os
import time
from multiprocessing.connection import Connection
from typing import Any

from adapters.telegram.testing import FakeBotAPI, Limits, Window

UNLIMITED = Limits(overall=Window(1_000_000, 1.0), per_chat=Window(1_000_000, 1.0),
                   per_group=Window(1_000_000, 1.0))


class LoadGen:
    """The measuring side's handle on the load generator process."""

    def __init__(self) -> None:
        context = multiprocessing.get_context("spawn")  # a fresh interpreter: no copy of our loop
        self._conn, child = context.Pipe()
        self.process = context.Process(target=_main, args=(child,), name="carebot-bench-telegram-loadgen",
                                       daemon=True)
        self.process.start()
        child.close()
        ready = self._conn.recv()
        self.base_url, self.token, self.username, self.cpu = ready

    async def call(self, command: str, *args: Any) -> Any:
        """Run one command in the load generator; this event loop keeps running meanwhile."""
        def roundtrip() -> Any:
            self._conn.send((command, args))
            return self._conn.recv()

        kind, value = await asyncio.to_thread(roundtrip)
        if kind == "error":
            raise RuntimeError(f"load generator: {value}")
        return value

    async def stop(self) -> None:
        try:
            await self.call("stop")
        finally:
            self._conn.close()
            await asyncio.to_thread(self.process.join, 30)


def _other_core() -> int | None:
    """A core other than the measured process's (which takes the first), when there is one."""
    try:
        cpus = sorted(os.sched_getaffinity(0))
        if len(cpus) > 1:
            os.sched_setaffinity(0, {cpus[-1]})
            return cpus[-1]
    except (AttributeError, OSError):
        pass
    return None


def _main(conn: Connection) -> None:
    cpu = _other_core()
    asyncio.run(_serve(conn, cpu))


async def _serve(conn: Connection, cpu: int | None) -> None:
    fake = FakeBotAPI(limits=UNLIMITED)
    await fake.start()
    # The instrument must not pause: a full collection over the fake's thousands of kept messages
    # stalled this loop ~0.2 s mid-broadcast, and the requests queued meanwhile then reached the
    # limit check together (a 429 carebot's pacing had not earned, and a second's hold). A run is
    # bounded, so what cycles leave behind is too; `mark` collects, before each measured window.
    gc.collect()
    gc.freeze()
    gc.disable()
    conn.send((fake.base_url, fake.token, fake.username, cpu))
    try:
        while True:
            command, args = await asyncio.to_thread(conn.recv)
            if command == "stop":
                conn.send(("ok", None))
                return
            try:
                conn.send(("ok", await _COMMANDS[command](fake, *args)))
            except Exception as exc:  # reported to the measuring side, which stops the run
                conn.send(("error", f"{command}: {type(exc).__name__}: {exc}"))
    finally:
        await fake.stop()


async def _users(fake: FakeBotAPI, first: int, count: int) -> int:
    """People who opened a chat with the bot (the bot may write to them)."""
    for uid in range(first, first + count):
        fake.private(uid, f"P{uid}")
    return count


async def _limits(fake: FakeBotAPI, overall: tuple[int, float] | None) -> None:
    """The overall limit (count, seconds) with Telegram's per chat and per group ones, or none at all."""
    fake.limits = UNLIMITED if overall is None else Limits(overall=Window(*overall), per_chat=Window(3, 3.0),
                                                           per_group=Window(20, 60.0))
    fake.rate_limited = 0


async def _mark(fake: FakeBotAPI) -> int:
    gc.collect()
    return len(fake.sent)


async def _drive(fake: FakeBotAPI, scripts: list[list[dict[str, Any]]], concurrency: int, expected: int,
                 timeout: float) -> dict[str, Any]:
    """Patients POST their updates to the webhook, each the next once the last was acknowledged,
    `concurrency` of them at a time; then wait for `expected` replies. Returns the seconds from the
    first POST to the last reply, each POST's round trip in ms, failures and replies."""
    latencies: list[float] = []
    failures = 0
    queue = list(reversed(scripts))
    before = len(fake.sent)

    async def patient() -> None:
        nonlocal failures
        while queue:
            for update in queue.pop():
                t = time.perf_counter()
                status = await fake.push(update)
                latencies.append((time.perf_counter() - t) * 1000)
                failures += 0 if status == 200 else 1

    started, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(patient() for _ in range(min(concurrency, len(scripts)))))
    ends = time.perf_counter() + timeout
    while len(fake.sent) - before < expected and time.perf_counter() < ends:
        await asyncio.sleep(0.005)
    return {"seconds": time.perf_counter() - started, "latencies": latencies, "failures": failures,
            "replies": len(fake.sent) - before, "cpu_seconds": time.process_time() - cpu}


async def _delivered(fake: FakeBotAPI, since: int, count: int, timeout: float) -> dict[str, Any]:
    """Wait for `count` messages after mark `since`; who got them, the seconds between the first and
    the last, and the 429s answered."""
    ends = time.perf_counter() + timeout
    while len(fake.sent) - since < count and time.perf_counter() < ends:
        await asyncio.sleep(0.01)
    mine = fake.sent[since:]
    return {"chats": [m.chat_id for m in mine], "span": (mine[-1].at - mine[0].at) if len(mine) > 1 else 0.0,
            "rate_limited": fake.rate_limited}


_COMMANDS: dict[str, Any] = {"users": _users, "limits": _limits, "mark": _mark, "drive": _drive,
                             "delivered": _delivered}
