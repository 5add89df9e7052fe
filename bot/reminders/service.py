"""Medication reminders on the durable timers: plans, doses, and why each dose fired or did not.

    dose:<plan>                   the plan's next dose is due   → the dose row, the next dose's timer,
                                                                  the dose's follow-up timer, the reminder
    dose:<plan>:follow:<dose>     the dose's one follow-up row; its payload says what comes next:
        {"next": "nag", "n": n}     unanswered: say it again (never after Taken/Skip, never while snoozed)
        {"next": "snooze"}          the patient pressed Snooze: say it again
        {"next": "close"}           the on-time window ended unanswered: missed (no_response),
                                    then maybe the caregiver or the care team is told
                                  after a nag or a snooze the same row is re-armed (pending, due at the
                                  next step) in the transaction that fired it; `close` ends it.
    dose:<plan>:nag:<dose>:<n>, dose:<plan>:snooze:<dose>, dose:<plan>:close:<dose>
                                  the same steps as separate rows, as databases from before `follow`
                                  may still hold them: still fired

They are fired in batches by `bot/reminders/fire.py`: one transaction claims a batch of due dose
timers (`FOR UPDATE SKIP LOCKED` on PostgreSQL) and writes every dose row, next timer, reminder
(outbox) and record it caused, so a timer is fired with its effects or not at all. The dose row is
unique per (plan, scheduled time) and each repeat changes its dose once, so even a timer run twice
adds nothing.

Never lost: a dose found due late (the bot was down) is still sent, marked late, within the kind's
grace; later than that it is recorded missed (`downtime`) and the chain goes on with the next dose.
Every decision is an event record (`dose_fired`, `dose_missed`, `dose_escalated` …) with ids and a
reason code, so the audit says why each dose fired or did not. The bot never sets or changes a dose:
the plan holds what the patient or the doctor wrote, and only they change it.
"""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy import Connection

from bot.clock import Clock
from bot.reminders.config import KindTiming, ReminderSettings
from bot.reminders.models import CaregiverLink, MedDose, MedPlan, OPEN_DOSE
from bot.reminders.schedule import Occurrence, Schedule, next_after
from bot.store.store import CONV, EVENT, TIMER, Claimed, Store
from bot.timer_names import DOSE
from bot.types import Address, Outbound

if TYPE_CHECKING:
    from bot.flow.content import Content
    from bot.runtime.runtime import Runtime
    from bot.runtime.sender import Sender

log = logging.getLogger("carebot.reminders")

PLAN = MedPlan.__table__
DOSE_T = MedDose.__table__
LINK = CaregiverLink.__table__
FOLLOW = "follow"  # a dose's follow-up timer: dose:<plan>:follow:<dose>
LATE_AFTER = timedelta(minutes=2)  # a reminder sent later than this after its time says so


@dataclass(frozen=True)
class Plan:
    id: str
    conversation_id: str
    kind: str
    medicine: str
    dose: str
    schedule: Schedule
    timezone: str
    status: str
    pills_left: int | None
    pills_per_dose: int
    refill_warned: bool
    next_due_at: datetime | None
    org: str = "default"

    @classmethod
    def from_row(cls, r: Any) -> Plan:
        return cls(r.id, r.conversation_id, r.kind, r.medicine, r.dose, Schedule.model_validate_json(r.schedule),
                   r.timezone, r.status, r.pills_left, r.pills_per_dose, r.refill_warned, r.next_due_at, r.org)


def timer_name(plan_id: str, what: str = "", dose_id: int | None = None, n: int | None = None) -> str:
    parts = [DOSE, plan_id] + ([what, str(dose_id)] if what else []) + ([str(n)] if n is not None else [])
    return ":".join(parts)


def _insert_timer(conn: Connection, org: str, conversation_id: str, name: str, due: datetime,
                  payload: dict[str, Any], now: datetime) -> None:
    conn.execute(TIMER.insert().values(
        org=org, conversation_id=conversation_id, name=name, due_at=due, claimed_by="", status="pending",
        payload=json.dumps({**payload, "name": name, "care": True}), created_at=now))


def _fired(conn: Connection, timer_id: int, now: datetime) -> None:
    conn.execute(TIMER.update().where(TIMER.c.id == timer_id, TIMER.c.status == "claimed").values(
        status="fired", fired_at=now))


def record(conn: Connection, org: str, conversation_id: str, kind: str, data: dict[str, Any], now: datetime) -> None:
    """An audit record of a dose decision: ids and reason codes only, never what the medicine is."""
    conn.execute(EVENT.insert().values(org=org, conversation_id=conversation_id, kind=kind,
                                       data=json.dumps(data, default=str), at=now))


class Reminders:
    def __init__(self, settings: ReminderSettings, store: Store, clock: Clock, content: Content,
                 default_timezone: str):
        self.settings = settings
        self.store = store
        self.clock = clock
        self.content = content
        self.default_timezone = default_timezone
        self.runtime: Runtime | None = None
        self.sender: Sender | None = None
        self.staff_channel = ""  # an adapter that can notify staff (the console), for escalations
        self._timings: dict[str, KindTiming] = {}
        self._slots = settings.slot_times()
        from bot.reminders.fire import DoseFirer

        self.firer = DoseFirer(self)  # due dose timers, in batches (the timer loop's `dose` kind)

    def timing(self, plan: Plan) -> KindTiming:
        timing = self._timings.get(plan.kind)
        if timing is None:  # the settings do not change while running: parse each kind's durations once
            timing = self._timings[plan.kind] = self.settings.timing(plan.kind)
        return timing

    def next_dose(self, plan: Plan, after: datetime) -> Occurrence | None:
        return next_after(plan.schedule, plan.timezone, after, self._slots)

    # -- plans ---------------------------------------------------------------------------------------

    async def create_plan(self, conversation_id: str, schedule: Schedule, *, kind: str = "", medicine: str = "",
                          dose: str = "", tz: str = "", created_by: str = "patient", org: str = "default",
                          pills_left: int | None = None, pills_per_dose: int = 1, plan_id: str = "",
                          first_after: datetime | None = None) -> Plan:
        """Make a plan and its first dose's timer (the first dose strictly after `first_after`, by
        default now). `plan_id`: a chosen id, so a re-run of a conversion cannot make a second plan."""
        now = self.clock.now()
        kind = kind or self.settings.default_kind
        if kind not in self.settings.kinds:
            raise ValueError(f"unknown plan kind {kind!r}; known: {sorted(self.settings.kinds)}")
        if self.settings.kinds[kind].prn and not schedule.prn:
            schedule = Schedule(start=schedule.start, end=schedule.end, prn=True)
        plan_id = plan_id or f"P{uuid.uuid4().hex[:12]}"
        tz = tz or self.default_timezone
        values = dict(id=plan_id, org=org, conversation_id=conversation_id, kind=kind, medicine=medicine[:80],
                      dose=dose[:60], schedule=schedule.model_dump_json(), timezone=tz, status="active",
                      created_by=created_by, created_at=now, updated_at=now, pills_left=pills_left,
                      pills_per_dose=max(1, pills_per_dose), refill_warned=False, next_due_at=None)
        plan = Plan.from_row(_Obj(values))  # a plan not yet written, read like a row
        first = self.next_dose(plan, first_after or now)

        def q(conn: Connection) -> None:
            conn.execute(PLAN.insert().values(**{**values, "next_due_at": first.at if first else None}))
            if first is not None:
                _insert_timer(conn, org, conversation_id, timer_name(plan_id), first.at,
                              {"plan": plan_id, "at": first.at.isoformat()}, now)
            record(conn, org, conversation_id, "plan_created", {"plan": plan_id, "kind": kind, "by": created_by}, now)

        await self.store.write(q)
        return Plan.from_row(_Obj({**values, "next_due_at": first.at if first else None}))

    async def plan(self, plan_id: str) -> Plan | None:
        row = await self.store.read(lambda c: c.execute(sa.select(PLAN).where(PLAN.c.id == plan_id)).first())
        return Plan.from_row(row) if row else None

    async def plans(self, conversation_id: str, active_only: bool = True) -> list[Plan]:
        def q(conn: Connection) -> list[Any]:
            sel = sa.select(PLAN).where(PLAN.c.conversation_id == conversation_id)
            if active_only:
                sel = sel.where(PLAN.c.status == "active")
            return conn.execute(sel.order_by(PLAN.c.created_at, PLAN.c.id)).all()

        return [Plan.from_row(r) for r in await self.store.read(q)]

    async def stop_plan(self, plan_id: str, by: str, conversation_id: str | None = None) -> bool:
        """Stop a plan and every timer it has. `conversation_id`: only if it is that patient's."""
        now = self.clock.now()

        def q(conn: Connection) -> bool:
            where = [PLAN.c.id == plan_id, PLAN.c.status == "active"]
            if conversation_id is not None:
                where.append(PLAN.c.conversation_id == conversation_id)
            row = conn.execute(PLAN.update().where(*where).values(status="stopped", updated_at=now).returning(
                PLAN.c.conversation_id, PLAN.c.org)).first()
            if row is None:
                return False
            conn.execute(TIMER.update().where(
                TIMER.c.conversation_id == row.conversation_id, TIMER.c.status == "pending",
                sa.or_(TIMER.c.name == timer_name(plan_id), TIMER.c.name.like(f"{timer_name(plan_id)}:%"))).values(
                status="cancelled"))
            record(conn, row.org, row.conversation_id, "plan_stopped", {"plan": plan_id, "by": by}, now)
            return True

        return bool(await self.store.write(q))

    async def refill(self, plan_id: str, pills: int, conversation_id: str) -> bool:
        now = self.clock.now()
        return bool(await self.store.write(lambda c: c.execute(PLAN.update().where(
            PLAN.c.id == plan_id, PLAN.c.conversation_id == conversation_id).values(
            pills_left=pills, refill_warned=False, updated_at=now)).rowcount))

    # -- the patient's answers -------------------------------------------------------------------------

    async def answer(self, conversation_id: str, dose_id: int, what: str, now: datetime) -> tuple[str, Plan | None, Any]:
        """Taken / Snooze / Skip on a dose of this patient's. Returns (outcome, plan, dose row):
        outcome is the new state, `already:<state>` when answered before, or `unknown`."""
        def q(conn: Connection) -> tuple[str, Any, Any]:
            dose = conn.execute(sa.select(DOSE_T).where(DOSE_T.c.id == dose_id,
                                                         DOSE_T.c.conversation_id == conversation_id)).first()
            if dose is None:
                return "unknown", None, None
            plan_row = conn.execute(sa.select(PLAN).where(PLAN.c.id == dose.plan_id)).first()
            timing = self.settings.timing(plan_row.kind)
            window = timedelta(seconds=timing.on_time_window)
            if what == "taken" and dose.state in ("due", "snoozed", "missed"):
                on_time = now - dose.scheduled_at <= window  # a snoozed dose keeps its original time
                conn.execute(DOSE_T.update().where(DOSE_T.c.id == dose_id).values(
                    state="taken", answered_at=now, late=not on_time, reason="" if on_time else "taken_late"))
                if plan_row.pills_left is not None:
                    conn.execute(PLAN.update().where(PLAN.c.id == plan_row.id).values(
                        pills_left=sa.func.max(PLAN.c.pills_left - plan_row.pills_per_dose, 0)
                        if conn.dialect.name == "sqlite" else
                        sa.func.greatest(PLAN.c.pills_left - plan_row.pills_per_dose, 0)))
                outcome = "taken"
            elif what == "skip" and dose.state in ("due", "snoozed"):
                conn.execute(DOSE_T.update().where(DOSE_T.c.id == dose_id).values(
                    state="skipped", answered_at=now, reason="patient_skipped"))
                outcome = "skipped"
            elif what == "snooze" and dose.state == "due":
                due = now + timedelta(seconds=timing.snooze)
                conn.execute(DOSE_T.update().where(DOSE_T.c.id == dose_id).values(state="snoozed"))
                if not self._snooze_follow_up(conn, dose, timing, due, now):  # a dose from before `follow`
                    _insert_timer(conn, dose.org, conversation_id, timer_name(dose.plan_id, "snooze", dose_id), due,
                                  {"plan": dose.plan_id, "dose": dose_id}, now)
                    close = conn.execute(sa.select(TIMER.c.id, TIMER.c.due_at).where(
                        TIMER.c.name == timer_name(dose.plan_id, "close", dose_id),
                        TIMER.c.status == "pending")).first()
                    if close is not None and close.due_at <= due:  # the snoozed reminder comes before the window ends
                        conn.execute(TIMER.update().where(TIMER.c.id == close.id).values(
                            due_at=due + timedelta(seconds=max(timing.nag_every, 300))))
                outcome = "snoozed"
            else:
                return f"already:{dose.state}", plan_row, dose
            record(conn, dose.org, conversation_id, f"dose_{outcome}",
                   {"plan": dose.plan_id, "dose": dose_id, "at": dose.scheduled_at.isoformat()}, now)
            fresh = conn.execute(sa.select(DOSE_T).where(DOSE_T.c.id == dose_id)).first()
            plan_fresh = conn.execute(sa.select(PLAN).where(PLAN.c.id == dose.plan_id)).first()
            return outcome, plan_fresh, fresh

        outcome, plan_row, dose = await self.store.write(q)
        return outcome, (Plan.from_row(plan_row) if plan_row is not None else None), dose

    def _snooze_follow_up(self, conn: Connection, dose: Any, timing: KindTiming, due: datetime,
                          now: datetime) -> bool:
        """Snooze on a dose with a follow-up row: the row's next step becomes the snoozed reminder at
        `due` (the window's close moves past it if it came first). False for a dose from before
        follow-up rows (its separate snooze and close rows are used) or whose follow-up has ended."""
        name = timer_name(dose.plan_id, FOLLOW, dose.id)
        row = conn.execute(sa.select(TIMER.c.id, TIMER.c.payload).where(
            TIMER.c.conversation_id == dose.conversation_id, TIMER.c.name == name,
            TIMER.c.status == "pending")).first()
        if row is None:
            old_style = conn.execute(sa.select(TIMER.c.id).where(
                TIMER.c.conversation_id == dose.conversation_id,
                TIMER.c.name == timer_name(dose.plan_id, "close", dose.id))).first()
            if old_style is not None:
                return False
            close = now + timedelta(seconds=timing.on_time_window)  # its follow-up had ended: a new one
            _insert_timer(conn, dose.org, dose.conversation_id, name, due,
                          {"plan": dose.plan_id, "dose": dose.id, "next": "snooze",
                           "close": max(close, due + timedelta(seconds=max(timing.nag_every, 300))).isoformat()}, now)
            return True
        payload = json.loads(row.payload)
        close = datetime.fromisoformat(str(payload.get("close") or due.isoformat())).astimezone(timezone.utc)
        if close <= due:  # the snoozed reminder comes before the window ends
            close = due + timedelta(seconds=max(timing.nag_every, 300))
        payload.update(next="snooze", close=close.isoformat())
        payload.pop("n", None)
        conn.execute(TIMER.update().where(TIMER.c.id == row.id, TIMER.c.status == "pending").values(
            due_at=due, payload=json.dumps(payload)))
        return True

    async def skip_reason(self, conversation_id: str, dose_id: int, reason: str) -> bool:
        return bool(await self.store.write(lambda c: c.execute(DOSE_T.update().where(
            DOSE_T.c.id == dose_id, DOSE_T.c.conversation_id == conversation_id, DOSE_T.c.state == "skipped").values(
            reason=f"skipped:{reason}"[:64])).rowcount))

    async def log_prn(self, plan: Plan, now: datetime) -> int:
        """An as-needed dose the patient took, logged at the time they said so."""
        def q(conn: Connection) -> int:
            dose_id = conn.execute(DOSE_T.insert().values(
                org=plan.org, plan_id=plan.id, conversation_id=plan.conversation_id, scheduled_at=now,
                state="taken", fired_at=None, late=False, answered_at=now, reason="", nags=0, step=None, prn=True,
                escalated=False).returning(DOSE_T.c.id)).scalar_one()
            if plan.pills_left is not None:
                conn.execute(PLAN.update().where(PLAN.c.id == plan.id).values(
                    pills_left=max(plan.pills_left - plan.pills_per_dose, 0)))
            record(conn, plan.org, plan.conversation_id, "dose_prn", {"plan": plan.id, "dose": dose_id}, now)
            return int(dose_id)

        return int(await self.store.write(q))

    async def refill_due(self, plan: Plan) -> int | None:
        """Days of pills left when it is time to warn (once per refill), else None."""
        from bot.reminders.schedule import doses_per_day

        warn_days = self.timing(plan).refill_warn_days
        if plan.pills_left is None or warn_days <= 0 or plan.refill_warned:
            return None
        per_day = doses_per_day(plan.schedule) * plan.pills_per_dose
        if per_day <= 0:
            return None
        days = int(plan.pills_left // per_day)
        if days > warn_days:
            return None
        done = await self.store.write(lambda c: c.execute(PLAN.update().where(
            PLAN.c.id == plan.id, PLAN.c.refill_warned.is_(False)).values(refill_warned=True)).rowcount)
        return days if done else None

    # -- addresses and staff ----------------------------------------------------------------------------

    def address_of(self, conn: Connection, conversation_id: str) -> tuple[Address, str] | None:
        a = conn.execute(sa.select(CONV.c.channel, CONV.c.chat_id, CONV.c.user_id, CONV.c.thread_id,
                                   CONV.c.is_group, CONV.c.org, CONV.c.locale).where(
            CONV.c.id == conversation_id)).first()
        if a is None:
            return None
        return Address(a.channel, a.chat_id, a.user_id, a.thread_id, a.is_group, a.org), a.locale

    def enqueue(self, claimed: list[Claimed]) -> None:
        if self.sender is not None and claimed:
            self.sender.enqueue(claimed)

    def outbound_row(self, conn: Connection, conversation_id: str, ob: Outbound, now: datetime) -> Claimed:
        return self.store.outbox_row(conn, conversation_id, ob, now, ob.address.org)


class _Obj:
    """Attribute access over a dict: a plan not yet written, read like a row."""

    def __init__(self, values: dict[str, Any]):
        self.__dict__.update(values)
