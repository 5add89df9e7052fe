"""The batched fire path (bot/reminders/fire.py) on SQLite and PostgreSQL: many doses in one
transaction, each reminder matched to its own dose, nothing said twice when a timer is run again,
repeats and closes only while the dose waits for them, and the conversation's state untouched
until the patient answers."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import sqlalchemy as sa

from bot.clock import ManualClock
from bot.reminders.schedule import Schedule
from bot.reminders.service import DOSE_T
from bot.store.store import CONV, EVENT, OUTBOX, TIMER
from tests.conftest import T0


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request):
    return request.param


def _url(backend, request):
    return request.getfixturevalue("pg_url") if backend == "postgresql" else None


async def _rows(bot, table, *where):
    return await bot.store.read(lambda c: c.execute(sa.select(table).where(*where)).all())


async def test_a_batch_reminds_each_patient_of_their_own_dose_once(backend, request, make_bot):
    n = 23  # more than one batch (batch size 5 below), fewer than one round of the loop
    bot, platform, clock = make_bot(url=_url(backend, request), clock=ManualClock(T0), shipped=True)
    await bot.start(background=False)
    bot.timers.batch = 5
    for i in range(n):
        await bot.runtime.handle(platform.inbound(f"p{i}", "/start", kind="command"))
    await bot.settle()
    versions = dict(await bot.store.read(lambda c: c.execute(sa.select(CONV.c.id, CONV.c.version)).all()))
    start = (T0 + timedelta(hours=8)).date()  # T0 is 17:00 in Asia/Shanghai
    for i in range(n):
        await bot.reminders.create_plan(f"default:memory:p{i}", Schedule(start=start, times=["18:00"]),
                                        medicine=f"med-{i}", dose=f"{i} mg")
    platform.sent.clear()
    clock.advance(timedelta(hours=1))
    assert await bot.timers.tick() == n
    await bot.settle()

    doses = {d.conversation_id: d for d in await _rows(bot, DOSE_T)}
    assert len(doses) == n and all(d.state == "due" and d.fired_at is not None for d in doses.values())
    said = [s for s in platform.sent if s.outbound.key == "reminder.dose"]
    assert len(said) == n
    for s in said:  # the reminder names this patient's medicine and carries this patient's dose id
        conv = s.outbound.address.conversation_id
        i = conv.rsplit("p", 1)[1]
        assert f"med-{i}" in s.outbound.text and f"{i} mg" in s.outbound.text and "18:00" in s.outbound.text
        assert [b.value for b in s.outbound.buttons] == [f"dose:{w}:{doses[conv].id}" for w in ("taken", "snooze", "skip")]
    outbox = await _rows(bot, OUTBOX, OUTBOX.c.content_key == "reminder.dose")
    assert len(outbox) == n and all(r.status == "sent" for r in outbox)
    fired = await _rows(bot, EVENT, EVENT.c.kind == "dose_fired")
    assert sorted(json.loads(e.data)["dose"] for e in fired) == sorted(d.id for d in doses.values())
    # per dose: the next dose's timer and one follow-up row (first step: nag 1 in 20 minutes, window
    # closing at 19:00); the conversation itself was not touched
    pending = await _rows(bot, TIMER, TIMER.c.status == "pending")
    assert len(pending) == 2 * n
    follow = [t for t in pending if ":follow:" in t.name]
    assert len(follow) == n and {json.loads(t.payload)["next"] for t in follow} == {"nag"}
    assert {t.due_at for t in follow} == {clock.now() + timedelta(minutes=20)}
    assert dict(await bot.store.read(lambda c: c.execute(sa.select(CONV.c.id, CONV.c.version)).all())) == versions

    # a timer run a second time (a replayed row) says nothing again and adds no dose
    await bot.store.write(lambda c: c.execute(TIMER.update().where(
        TIMER.c.name.like("dose:%"), TIMER.c.status == "fired").values(status="pending")))
    platform.sent.clear()
    await bot.timers.tick()
    await bot.settle()
    assert platform.sent == []
    assert len(await _rows(bot, DOSE_T)) == n

    # the answer works afterwards: Taken on p0's dose, then its nag is not said
    p0 = doses["default:memory:p0"]
    await bot.runtime.handle(platform.inbound("p0", kind="choice", payload={"value": f"dose:taken:{p0.id}"}))
    await bot.settle()
    assert platform.sent[0].outbound.key == "reminder.taken"  # (then the menu /start left open is asked again)
    platform.sent.clear()
    clock.advance(timedelta(minutes=20))
    await bot.timers.tick()
    await bot.settle()
    nags = [s for s in platform.sent if s.outbound.key == "reminder.nag"]
    assert len(nags) == n - 1 and all(s.outbound.address.chat_id != "p0" for s in nags)
    not_repeated = [json.loads(e.data) for e in await _rows(bot, EVENT, EVENT.c.kind == "dose_not_repeated")]
    assert not_repeated == [{"plan": p0.plan_id, "dose": p0.id, "repeat": "nag", "reason": "answered"}]

    # the same follow-up row was re-armed for nag 2 (p0's, answered, was not); rewound to nag 1 and
    # run again it says nothing (the dose already counts that nag)
    follow = await _rows(bot, TIMER, TIMER.c.name.like("dose:%:follow:%"))
    assert len(follow) == n
    assert {json.loads(t.payload).get("n") for t in follow if t.status == "pending"} == {2}
    assert [t.conversation_id for t in follow if t.status == "fired"] == ["default:memory:p0"]
    for t in follow:
        rewound = json.dumps({**json.loads(t.payload), "next": "nag", "n": 1})
        await bot.store.write(lambda c, t=t, rewound=rewound: c.execute(TIMER.update().where(
            TIMER.c.id == t.id).values(status="pending", payload=rewound, due_at=clock.now())))
    platform.sent.clear()
    await bot.timers.tick()
    await bot.settle()
    assert platform.sent == []

    # the window ends: the unanswered ones are missed, p0's stays taken
    clock.advance(timedelta(hours=1))
    await bot.timers.tick()
    await bot.settle()
    states = {d.conversation_id: (d.state, d.reason) for d in await _rows(bot, DOSE_T)}
    assert states.pop("default:memory:p0") == ("taken", "")
    assert set(states.values()) == {("missed", "no_response")}
    await bot.stop()


async def test_opted_out_and_downtime_are_recorded_not_said(backend, request, make_bot):
    bot, platform, clock = make_bot(url=_url(backend, request), clock=ManualClock(T0), shipped=True)
    await bot.start(background=False)
    for chat in ("a", "b"):
        await bot.runtime.handle(platform.inbound(chat, "/start", kind="command"))
    await bot.runtime.handle(platform.inbound("b", "STOP"))
    await bot.settle()
    start = (T0 + timedelta(hours=8)).date()
    for chat in ("a", "b"):
        await bot.reminders.create_plan(f"default:memory:{chat}", Schedule(start=start, times=["18:00"]), medicine="m")
    platform.sent.clear()
    clock.advance(timedelta(hours=1))
    await bot.timers.tick()
    await bot.settle()
    assert [s.outbound.address.chat_id for s in platform.sent] == ["a"]
    missed = [json.loads(e.data) for e in await _rows(bot, EVENT, EVENT.c.kind == "dose_missed")]
    assert [m["reason"] for m in missed] == ["opted_out"]

    platform.sent.clear()
    clock.advance(timedelta(days=1, hours=3))  # down over the next 18:00 for 3 h: beyond the 2 h grace
    await bot.timers.tick()
    await bot.settle()
    assert not [s for s in platform.sent if s.outbound.key.startswith("reminder.dose")]
    reasons = sorted(json.loads(e.data)["reason"] for e in await _rows(bot, EVENT, EVENT.c.kind == "dose_missed"))
    assert reasons.count("downtime") == 1 and reasons.count("opted_out") == 2
    await bot.stop()


async def test_timers_of_the_older_shape_and_stale_claims_still_fire_once(backend, request, make_bot):
    """A dose timer a dead worker left `claimed` is fired once its lease ran out; a dose from before
    follow-up rows (separate nag and close rows) is nagged and closed by them, and Snooze on it
    uses its own close row."""
    bot, platform, clock = make_bot(url=_url(backend, request), clock=ManualClock(T0), shipped=True)
    await bot.start(background=False)
    for chat in ("a", "b"):
        await bot.runtime.handle(platform.inbound(chat, "/start", kind="command"))
    await bot.settle()
    start = (T0 + timedelta(hours=8)).date()
    plans = {chat: await bot.reminders.create_plan(f"default:memory:{chat}", Schedule(start=start, times=["18:00"]),
                                                   medicine="m") for chat in ("a", "b")}
    # a's first dose timer: claimed by a worker that died, its lease over by 18:00
    await bot.store.write(lambda c: c.execute(TIMER.update().where(TIMER.c.name == f"dose:{plans['a'].id}").values(
        status="claimed", claimed_by="gone", lease_until=clock.now() + timedelta(minutes=5))))
    platform.sent.clear()
    clock.advance(timedelta(hours=1))
    await bot.timers.tick()
    await bot.settle()
    assert sorted(s.outbound.address.chat_id for s in platform.sent if s.outbound.key == "reminder.dose") == ["a", "b"]

    # b's dose made to look like one from before: its follow-up row becomes a nag row and a close row
    dose_b = next(d for d in await _rows(bot, DOSE_T) if d.conversation_id == "default:memory:b")
    pid = plans["b"].id
    await bot.store.write(lambda c: c.execute(TIMER.delete().where(TIMER.c.name.like(f"dose:{pid}:follow:%"))))
    for name, due in ((f"dose:{pid}:nag:{dose_b.id}:1", clock.now() + timedelta(minutes=20)),
                      (f"dose:{pid}:close:{dose_b.id}", clock.now() + timedelta(hours=1))):
        payload = json.dumps({"plan": pid, "dose": dose_b.id, "n": 1, "name": name, "care": True})
        await bot.store.write(lambda c, name=name, due=due, payload=payload: c.execute(TIMER.insert().values(
            org="default", conversation_id="default:memory:b", name=name, due_at=due, payload=payload,
            status="pending", claimed_by="", created_at=clock.now())))
    platform.sent.clear()
    clock.advance(timedelta(minutes=20))
    await bot.timers.tick()
    await bot.settle()
    assert [s.outbound.address.chat_id for s in platform.sent if s.outbound.key == "reminder.nag"].count("b") == 1
    await bot.runtime.handle(platform.inbound("b", kind="choice", payload={"value": f"dose:snooze:{dose_b.id}"}))
    await bot.settle()
    names = {t.name for t in await _rows(bot, TIMER, TIMER.c.conversation_id == "default:memory:b",
                                         TIMER.c.status == "pending")}
    assert f"dose:{pid}:snooze:{dose_b.id}" in names and not any(":follow:" in n for n in names)
    platform.sent.clear()
    clock.advance(timedelta(minutes=15))
    await bot.timers.tick()
    await bot.settle()
    assert [s.outbound.key for s in platform.sent if s.outbound.address.chat_id == "b"] == ["reminder.snoozed_again"]
    clock.advance(timedelta(hours=1))
    await bot.timers.tick()
    await bot.settle()
    states = {d.conversation_id: (d.state, d.reason) for d in await _rows(bot, DOSE_T)}
    assert states == {"default:memory:a": ("missed", "no_response"), "default:memory:b": ("missed", "no_response")}
    assert len(await _rows(bot, OUTBOX, OUTBOX.c.content_key == "reminder.dose")) == 2
    await bot.stop()


async def test_snooze_moves_the_one_follow_up_row(backend, request, make_bot):
    """Snooze turns the dose's follow-up row into the snoozed reminder; after it is said the row is
    re-armed for a nag; once Taken, nothing more is said and the dose stays taken."""
    bot, platform, clock = make_bot(url=_url(backend, request), clock=ManualClock(T0), shipped=True)
    await bot.start(background=False)
    await bot.runtime.handle(platform.inbound("a", "/start", kind="command"))
    await bot.settle()
    start = (T0 + timedelta(hours=8)).date()
    plan = await bot.reminders.create_plan("default:memory:a", Schedule(start=start, times=["18:00"]), medicine="m")
    clock.advance(timedelta(hours=1))  # 18:00
    await bot.timers.tick()
    await bot.settle()
    dose = (await _rows(bot, DOSE_T))[0]

    async def follow():
        rows = await _rows(bot, TIMER, TIMER.c.name == f"dose:{plan.id}:follow:{dose.id}")
        assert len(rows) == 1
        return rows[0], json.loads(rows[0].payload)

    await bot.runtime.handle(platform.inbound("a", kind="choice", payload={"value": f"dose:snooze:{dose.id}"}))
    await bot.settle()
    row, payload = await follow()
    assert row.status == "pending" and payload["next"] == "snooze"
    assert row.due_at == clock.now() + timedelta(minutes=15)
    platform.sent.clear()
    clock.advance(timedelta(minutes=15))
    await bot.timers.tick()
    await bot.settle()
    assert [s.outbound.key for s in platform.sent] == ["reminder.snoozed_again"]
    row, payload = await follow()
    assert row.status == "pending" and payload["next"] == "nag" and payload["n"] == 1
    assert row.due_at == clock.now() + timedelta(minutes=20)
    await bot.runtime.handle(platform.inbound("a", kind="choice", payload={"value": f"dose:taken:{dose.id}"}))
    await bot.settle()
    platform.sent.clear()
    clock.advance(timedelta(hours=2))
    await bot.timers.tick()
    await bot.settle()
    assert not [s for s in platform.sent if s.outbound.key.startswith("reminder.")]
    row, _ = await follow()
    assert row.status == "fired"
    assert [(d.state, d.nags) for d in await _rows(bot, DOSE_T)] == [("taken", 0)]
    await bot.stop()
