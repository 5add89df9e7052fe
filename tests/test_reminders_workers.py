"""Medication reminders on PostgreSQL with two worker processes, then a restart (two new
processes a day later): every due dose is written once and reminded once."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import sqlalchemy as sa

from bot.clock import ManualClock
from bot.reminders.service import DOSE_T
from bot.reminders.schedule import Schedule
from bot.store.store import EVENT, OUTBOX
from tests.conftest import T0
from tests.test_distributed import _spawn


async def test_two_workers_and_a_restart_remind_every_due_dose_exactly_once(tmp_path, pg_url, make_bot):
    n = 60
    bot, platform, _ = make_bot(url=pg_url, clock=ManualClock(T0), shipped=True)  # T0: 17:00 in Shanghai
    await bot.start(background=False)
    await asyncio.gather(*(bot.runtime.handle(platform.inbound(f"p{i}", "/start", kind="command")) for i in range(n)))
    start = (T0 + timedelta(hours=8)).date()
    for i in range(n):  # half at 18:00 Shanghai every day, half every 12 hours from 18:00
        schedule = Schedule(start=start, times=["18:00"]) if i % 2 else Schedule(start=start, times=["18:00"],
                                                                                every_hours=12)
        await bot.reminders.create_plan(f"default:memory:p{i}", schedule, medicine=f"m{i}")
    await bot.settle()
    await bot.stop()

    def run_round(minutes: int) -> int:
        workers = [_spawn(tmp_path, "reminders", pg_url, str(minutes)) for _ in range(2)]
        outputs = [w.communicate(timeout=120) for w in workers]
        for w, (_out, err) in zip(workers, outputs):
            assert w.returncode == 0, err
        return sum(int(out.split("fired")[1]) for out, _ in outputs)

    first = run_round(61)                 # 18:01: every plan's first dose
    second = run_round(61 + 12 * 60)      # restart, 06:01 next day: the 12-hourly plans' second dose
    third = run_round(61 + 24 * 60)       # restart again, 18:01 next day: every plan's next dose

    check, _, _ = make_bot(url=pg_url, shipped=True)
    try:
        doses = await check.store.read(lambda c: c.execute(sa.select(
            DOSE_T.c.plan_id, DOSE_T.c.conversation_id, DOSE_T.c.scheduled_at, DOSE_T.c.fired_at)).all())
        reminded = await check.store.read(lambda c: c.execute(sa.select(OUTBOX.c.conversation_id).where(
            OUTBOX.c.content_key == "reminder.dose")).scalars().all())
        fired = await check.store.read(lambda c: c.execute(sa.select(EVENT.c.data).where(
            EVENT.c.kind == "dose_fired")).scalars().all())
    finally:
        check.store.close()
    per_plan: dict[str, int] = {}
    for d in doses:
        per_plan[d.plan_id] = per_plan.get(d.plan_id, 0) + 1
    assert len(per_plan) == n
    assert sorted(per_plan.values()) == [2] * (n // 2) + [3] * (n // 2)  # daily: 2 doses; 12-hourly: 3
    assert all(d.fired_at is not None for d in doses)
    dose_convs: dict[str, int] = {}
    for d in doses:
        dose_convs[d.conversation_id] = dose_convs.get(d.conversation_id, 0) + 1
    sent: dict[str, int] = {}
    for conv in reminded:
        sent[conv] = sent.get(conv, 0) + 1
    assert sent == dose_convs                                            # one reminder per dose, none twice
    assert sum('"duplicate": true' in f for f in fired) == 0
    assert first >= n and second >= n // 2 and third >= n
