"""A process killed after commit and before delivery loses nothing and sends each message once."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta

import sqlalchemy as sa

from bot.store.store import OUTBOX
from tests.conftest import ROOT, python_path
from tests.flows_common import ECHO_FLOWS, ECHO_MESSAGES


def run_worker(tmp_path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:  # type: ignore[no-untyped-def]
    env = {**os.environ, "CAREBOT_TEST_TMP": str(tmp_path), "PYTHONPATH": python_path()}
    return subprocess.run([sys.executable, "-m", "tests.worker", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


async def test_killed_after_commit_delivers_everything_once_after_restart(tmp_path, sqlite_url, make_bot):
    proc = run_worker(tmp_path, "crash", sqlite_url, "12")
    assert proc.returncode == 9, proc.stderr  # killed inside the platform call
    assert "committed" in proc.stdout and "not killed" not in proc.stdout

    bot, platform, clock = make_bot(ECHO_FLOWS, ECHO_MESSAGES, url=sqlite_url)
    rows = await bot.store.read(lambda c: c.execute(sa.select(OUTBOX)).all())
    assert len(rows) == 12 and {r.status for r in rows} == {"sending"}  # committed, never delivered
    clock.set(max(r.lease_until for r in rows) + timedelta(seconds=1))  # the dead worker's leases ran out
    await bot.start(background=False)  # start-up sweeps the outbox
    try:
        await bot.sender.idle()
        assert sorted(platform.texts()) == ["请说"] * 12
        assert sorted(s.outbound.address.chat_id for s in platform.sent) == sorted(f"c{i}" for i in range(12))
        assert await bot.sender.sweep() == 0  # nothing left, nothing sent twice
        rows = await bot.store.read(lambda c: c.execute(sa.select(OUTBOX)).all())
        assert {r.status for r in rows} == {"sent"} and all(r.attempts == 1 for r in rows)
        # the conversations go on where they were: the next message is an answer
        await bot.runtime.handle(platform.inbound("c3", "I am back", message_id="after-restart"))
        await bot.sender.idle()
        assert platform.texts("c3") == ["请说", "I am back", "请说"]
    finally:
        await bot.stop()


async def test_resent_row_after_a_crash_is_dropped_by_the_platform_duplicate_check(make_bot):
    """The crash falls after the platform accepted a message and before we recorded it: the row is
    sent again, with the same idempotency key, and a platform with a duplicate check drops it."""
    bot, platform, clock = make_bot(ECHO_FLOWS, ECHO_MESSAGES, outbox_lease_seconds=5)
    await bot.start(background=False)
    try:
        await bot.runtime.handle(platform.inbound("p1", "hello"))
        await bot.sender.idle()
        # forget the recorded outcome, as if the process died before writing it
        await bot.store.write(lambda c: c.execute(OUTBOX.update().values(
            status="sending", lease_until=clock.now(), sent_at=None)))
        clock.advance(timedelta(seconds=10))
        assert await bot.sender.sweep() == 1
        await bot.sender.idle()
        assert platform.attempts == 2 and platform.texts("p1") == ["请说"]
    finally:
        await bot.stop()


async def test_replies_of_a_dead_worker_go_out_within_seconds_and_in_order(tmp_path, sqlite_url, make_bot):
    """The dead worker held its rows with a 30 s lease. Its heartbeat stops, so another worker takes
    them over within seconds — and a reply committed meanwhile in one of its conversations waits
    behind them instead of overtaking them."""
    from bot.store.store import WORKER

    proc = run_worker(tmp_path, "crash", sqlite_url, "6", "30")
    assert proc.returncode == 9, proc.stderr
    bot, platform, clock = make_bot(ECHO_FLOWS, ECHO_MESSAGES, url=sqlite_url)
    last_beat = await bot.store.read(lambda c: c.execute(sa.select(sa.func.max(WORKER.c.beat_at))).scalar())
    clock.set(last_beat + timedelta(seconds=1))  # the other worker may still be alive
    await bot.start(background=False)
    try:
        await bot.sender.idle()
        assert platform.sent == []  # its rows are its own while it may be alive
        await bot.runtime.handle(platform.inbound("c3", "I am back", message_id="after-crash"))
        await bot.sender.idle()
        assert platform.texts("c3") == []  # the new reply waits behind the undelivered one
        clock.advance(timedelta(seconds=3))  # no heartbeat for 4 s: dead, though its leases run 26 s more
        await bot.store.beat(clock.now())
        assert await bot.sender.sweep() == 6 + 2
        await bot.sender.idle()
        assert platform.texts("c3") == ["请说", "I am back", "请说"]
        assert sorted(platform.texts()) == sorted(["请说"] * 7 + ["I am back"])
        assert await bot.sender.sweep() == 0
    finally:
        await bot.stop()


async def test_a_worker_restarted_under_its_own_id_sends_what_it_held_at_once(tmp_path, sqlite_url, make_bot):
    """systemd restarts a killed worker with the same CAREBOT_WORKER_ID, which beats again at once:
    its rows, leased to that id for 30 s, must go out with the first sweep, not after the lease."""
    from bot.store.store import WORKER

    proc = run_worker(tmp_path, "crash", sqlite_url, "6", "30")
    assert proc.returncode == 9, proc.stderr
    bot, platform, clock = make_bot(ECHO_FLOWS, ECHO_MESSAGES, url=sqlite_url)
    dead = await bot.store.read(lambda c: c.execute(sa.select(WORKER.c.id, WORKER.c.beat_at)).one())
    bot.store.worker_id = dead.id  # the same worker, restarted
    clock.set(dead.beat_at + timedelta(seconds=1))  # its leases run 29 s more
    await bot.start(background=False)
    try:
        await bot.sender.idle()
        assert sorted(platform.texts()) == ["请说"] * 6
        assert await bot.sender.sweep() == 0
    finally:
        await bot.stop()
