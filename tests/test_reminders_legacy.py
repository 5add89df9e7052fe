"""Pending `med_reminder` timers of the old daily-reminder flow: converted to a plan (the dose due now
is sent as a proper dose with Taken / Snooze / Skip), or retired with an event — never the error flow.
On SQLite and on PostgreSQL."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import sqlalchemy as sa

from bot.reminders.service import DOSE_T, PLAN
from bot.store.store import CONV, EVENT, TIMER
from tests.conftest import T0


async def _legacy_patient(bot, platform, chat: str, slots: dict[str, str]) -> int:
    """A patient of the old flow: its slots in the conversation state and a pending `med_reminder`."""
    await bot.runtime.handle(platform.inbound(chat, "/start", kind="command"))
    await bot.settle()
    conv = f"default:memory:{chat}"

    def q(conn: sa.Connection) -> int:
        state = json.loads(conn.execute(sa.select(CONV.c.state).where(CONV.c.id == conv)).scalar_one())
        state["slots"].update(slots)
        conn.execute(CONV.update().where(CONV.c.id == conv).values(state=json.dumps(state)))
        return conn.execute(TIMER.insert().values(
            org="default", conversation_id=conv, name="med_reminder", due_at=T0 + timedelta(hours=4),
            payload=json.dumps({"name": "med_reminder", "flow": "medication_dose"}), status="pending",
            claimed_by="", created_at=T0).returning(TIMER.c.id)).scalar_one()

    return await bot.store.write(q)


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_a_legacy_med_reminder_becomes_a_plan_or_is_retired_never_an_error(backend, request, make_bot):
    url = request.getfixturevalue("pg_url") if backend == "postgres" else None
    bot, platform, clock = make_bot(url=url, shipped=True, timezone="Asia/Shanghai")
    await bot.start(background=False)
    try:
        kept = await _legacy_patient(bot, platform, "old1", {"med_name": "aspirin", "med_time": "21:00"})
        lost = await _legacy_patient(bot, platform, "old2", {"med_name": "aspirin"})  # no time to go on
        platform.sent.clear()
        clock.advance(timedelta(hours=4))  # 21:00 in Shanghai: both legacy timers are due
        await bot.timers.tick()
        await bot.settle()

        keys = [(s.outbound.address.chat_id, s.outbound.key) for s in platform.sent]
        assert keys[0] == ("old1", "reminder.dose")  # a proper dose reminder (the menu the patient was at may follow)
        assert all(chat == "old1" and "error" not in key and key != "reminder.dose" for chat, key in keys[1:])
        said = platform.sent[0].outbound.text
        assert "21:00" in said and "aspirin" in said

        plans = await bot.store.read(lambda c: c.execute(sa.select(PLAN.c.id, PLAN.c.created_by, PLAN.c.schedule)).all())
        assert [(p.id, p.created_by) for p in plans] == [(f"L{kept}", "legacy")]
        assert json.loads(plans[0].schedule)["times"] == ["21:00"]
        doses = await bot.store.read(lambda c: c.execute(sa.select(DOSE_T.c.plan_id, DOSE_T.c.state)).all())
        assert [(d.plan_id, d.state) for d in doses] == [(f"L{kept}", "due")]
        events = await bot.store.read(lambda c: c.execute(sa.select(EVENT.c.kind, EVENT.c.data).where(
            EVENT.c.kind.like("legacy_%")).order_by(EVENT.c.id)).all())
        assert sorted(((e.kind, json.loads(e.data)) for e in events), key=lambda e: e[0]) == [
            ("legacy_reminder_converted", {"timer": kept, "plan": f"L{kept}"}),
            ("legacy_reminder_retired", {"timer": lost, "reason": "no_time"})]
        timers = await bot.store.read(lambda c: c.execute(sa.select(TIMER.c.status).where(
            TIMER.c.id.in_([kept, lost]))).scalars().all())
        assert timers == ["fired", "fired"]

        platform.sent.clear()
        clock.advance(timedelta(days=1) - timedelta(minutes=1))  # the plan goes on: 21:00 the next day
        await bot.timers.tick()
        clock.advance(timedelta(minutes=1))
        await bot.timers.tick()
        await bot.settle()
        assert [s.outbound.key for s in platform.sent if s.outbound.address.chat_id == "old1"].count(
            "reminder.dose") == 1
    finally:
        await bot.stop()
