"""Timers of the old one-time-a-day reminder flow (`med_reminder`), still pending in a database.

Before plans existed, `medication_reminder` kept the medicine and time in the conversation's slots
(`med_name`, `med_time`) and a `med_reminder` timer started `medication_dose` each day. Run today,
that flow needs a dose id, so the patient would get an error instead of a reminder. When such a
timer comes due it is converted, once: a daily plan at the same wall-clock time (plan id `L<timer>`,
so a re-run adds nothing) whose first dose is the one due now, and an event `legacy_reminder_converted`.
Without a readable time in the slots it is retired with an event `legacy_reminder_retired`
(reason `no_time`) and nothing is sent — the patient's "my reminders" shows no plan, and setting
one again is a single message.
"""

from __future__ import annotations

import re
from datetime import timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy import Connection

from bot.reminders.schedule import Schedule
from bot.reminders.service import PLAN, Reminders, _fired, record
from bot.store.store import DueTimer

LEGACY_TIMER = "med_reminder"
_HHMM = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)")


async def on_legacy_timer(reminders: Reminders, timer: DueTimer) -> None:
    """A pending `med_reminder` timer came due: convert it to a plan, or retire it."""
    now = reminders.clock.now()
    data, _ = await reminders.store.load(timer.conversation_id)
    slots = (data or {}).get("slots") or {}
    clock = _HHMM.match(str(slots.get("med_time") or ""))
    org = timer.address.org if timer.address is not None else "default"
    plan_id = f"L{timer.id}"
    exists = await reminders.store.read(lambda c: c.execute(sa.select(PLAN.c.id).where(PLAN.c.id == plan_id)).first())
    if clock is not None and exists is None:
        tz = str(slots.get("timezone") or reminders.default_timezone)
        start = timer.due_at.astimezone(ZoneInfo(tz)).date()
        schedule = Schedule(start=start, times=[f"{int(clock.group(1)):02d}:{clock.group(2)}"])
        # the dose this timer stood for is the plan's first: due now, so it is sent (or, past the
        # grace, recorded missed with its reason) like any dose
        await reminders.create_plan(timer.conversation_id, schedule, medicine=str(slots.get("med_name") or ""),
                                    tz=tz, created_by="legacy", org=org, plan_id=plan_id,
                                    first_after=timer.due_at - timedelta(minutes=1))

    def q(conn: Connection) -> None:
        _fired(conn, timer.id, now)
        if clock is not None:
            record(conn, org, timer.conversation_id, "legacy_reminder_converted", {"timer": timer.id, "plan": plan_id},
                   now)
        else:
            record(conn, org, timer.conversation_id, "legacy_reminder_retired", {"timer": timer.id, "reason": "no_time"},
                   now)

    await reminders.store.write(q)  # the plan's first timer is due: the same tick claims it next
