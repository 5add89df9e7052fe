"""The fire path: due dose timers in batches, one transaction each, no conversation turn.

A batch is one transaction of a handful of statements whatever its size (`BATCH` timers):

    claim      UPDATE timer … WHERE id IN (SELECT … ORDER BY due_at, id LIMIT n FOR UPDATE SKIP LOCKED)
               RETURNING … — the oldest due first, claimed and marked fired at once (the claim
               commits with everything below or not at all)
    read       the batch's plans joined to their conversations (address, locale, STOP read inside
               the state by the database) — on PostgreSQL in the claim's own statement (the claim
               as a CTE) — and, for follow-ups, their doses
    doses      INSERT … SELECT FROM unnest(…) ON CONFLICT (plan, time) DO NOTHING RETURNING id
    repeats    conditional UPDATEs (nag n only once: `nags < n`; snooze only while snoozed; close only
               while open) RETURNING the doses they changed
    then, in one pipeline (one round trip on PostgreSQL):
    plans      next_due_at (and `ended`) for every plan whose dose row was new
    timers     the next doses' timers and each new dose's one follow-up timer
    re-arm     follow-ups that fired and have a next step: the same row pending again, due then
    outbox     the reminders, rendered from the content catalogue, leased to this worker
    events     `dose_fired`, `dose_missed`, `dose_not_repeated` — ids and reason codes

A dose has one follow-up row, `dose:<plan>:follow:<dose>`, whose payload says what comes next —
`{"next": "nag", "n": 1}`, `{"next": "snooze"}` (set by Snooze) or `{"next": "close"}` — and when
the on-time window closes. Firing a nag or a snoozed reminder re-arms that row for the next step
(`follow_up`); the close ends it; an answered dose's row is not re-armed. Rows of the older shape
(`…:nag:<dose>:<n>`, `…:snooze:<dose>`, `…:close:<dose>`) still fire.

On PostgreSQL each multi-row write is one `unnest` statement (bot/store/fastsql.py BulkInsert);
the next occurrence and the message are computed in Python between the reads and the writes.
After the commit the reminders go to the sender and missed doses to escalation.

Exactly once, across workers and restarts: a timer is claimed and marked fired in the same
transaction that writes what it caused, and two workers never claim one row (`SKIP LOCKED`). Each
write is also conditional on the dose — a dose row is unique per (plan, time), the n-th nag is said
only while `nags < n`, a snooze only while the dose is snoozed — so even a timer run twice (an old
lease from before this path, a hand-replayed row) says nothing twice.

The message is the one the conversation would say: the same catalogue keys (`reminder.dose`,
`reminder.dose_late`, `reminder.nag`, `reminder.snoozed_again`) with the same variables and the
Taken / Snooze / Skip buttons (`dose:taken:<dose>` …), fitted to the channel's capabilities like a
turn's messages. The conversation's state is not touched: the button carries the dose id, and the
`dose_answer` flow changes the state when the patient answers. A patient with an open question
keeps it open (their next message still answers it). STOP is read from the conversation in the same
transaction; a STOP committed while a batch is being written (milliseconds) crosses that reminder,
as any message in flight would.
"""

from __future__ import annotations

import asyncio
import json
import logging
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, Iterator
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy import Connection

from bot import metrics
from bot.reminders.models import OPEN_DOSE
from bot.reminders.service import DOSE_T, FOLLOW, LATE_AFTER, PLAN, Plan, timer_name
from bot.runtime.degrade import degrade_effects
from bot.store.fastsql import BulkInsert
from bot.store.store import CONV, EVENT, OUTBOX, TIMER, Claimed
from bot.timer_names import DOSE
from bot.types import Address, Button, Outbound, Send

if TYPE_CHECKING:
    from bot.flow.content import Content
    from bot.reminders.service import Reminders

log = logging.getLogger("carebot.reminders")

BATCH = 200  # dose timers claimed and fired in one transaction
PARALLEL = 4  # such transactions in flight at once per worker, on PostgreSQL
STALE_EVERY = timedelta(seconds=30)  # how often a worker looks for dose timers left claimed
DOSE_KEYS = ("reminder.dose", "reminder.dose_late", "reminder.nag", "reminder.snoozed_again",
             "reminder.button_taken", "reminder.button_snooze", "reminder.button_skip")


ANSWERS = ("taken", "snooze", "skip")


def button_labels(content: Content, locale: str) -> tuple[str, ...]:
    return tuple(content.render(f"reminder.button_{b}", locale, {}) for b in ANSWERS)


def dose_message(content: Content, plan: Plan, address: Address, locale: str, dose_id: int,
                 scheduled_at: datetime, step: int | None, repeat: str, late: bool,
                 labels: tuple[str, ...] | None = None) -> Outbound:
    """One dose's reminder with Taken / Snooze / Skip, in the patient's language. `labels`: the
    three buttons' texts in that language, when the caller has them already."""
    key = {"nag": "reminder.nag", "snooze": "reminder.snoozed_again"}.get(repeat) or (
        "reminder.dose_late" if late else "reminder.dose")
    taper = plan.schedule.taper
    amount = taper[step].dose if step is not None and step < len(taper) else plan.dose
    local = scheduled_at.astimezone(ZoneInfo(plan.timezone))
    text = content.render(key, locale, {"medicine": plan.medicine, "amount": amount,
                                        "time": local.strftime("%H:%M"), "date": local.strftime("%Y-%m-%d")})
    labels = labels or button_labels(content, locale)
    buttons = tuple(Button(label, f"dose:{b}:{dose_id}", f"reminder.button_{b}")
                    for b, label in zip(ANSWERS, labels))
    return Outbound(op="say", address=address, text=text, key=key, buttons=buttons)


@contextmanager
def _pipeline(conn: Connection, pg: bool) -> Iterator[list[Any]]:
    """PostgreSQL: statements sent inside are queued and sent together (psycopg pipeline mode); their
    results are read when the block ends. The list collects what to close afterwards."""
    sent: list[Any] = []
    if not pg:
        yield sent
        return
    with conn.connection.dbapi_connection.pipeline():  # type: ignore[union-attr]
        yield sent


def _send(conn: Connection, sql: str, params: dict[str, Any]) -> Any:
    cursor = conn.connection.cursor()
    cursor.execute(sql, params)
    return cursor


def _close(handle: Any) -> None:
    cursor = handle[1] if isinstance(handle, tuple) else handle
    if cursor is not None:
        cursor.close()


def follow_up(timing: Any, dose_id: int, plan_id: str, last: datetime, n: int,
              close: datetime) -> tuple[datetime, dict[str, Any]]:
    """A dose's next follow-up after `last` (the reminder, a nag or a snoozed reminder): nag `n`
    one `nag_every` later if that is still a nag the kind allows and comes before the on-time
    window closes, else the close. Returns (due, payload) for its one timer row."""
    base = {"plan": plan_id, "dose": dose_id, "close": close.isoformat()}
    nag = last + timedelta(seconds=timing.nag_every)
    if n <= timing.nag_max and timing.nag_every > 0 and nag < close:
        return nag, {**base, "next": "nag", "n": n}
    return close, {**base, "next": "close"}


def _when(value: Any, default: datetime) -> datetime:
    if not value:
        return default
    return datetime.fromisoformat(str(value)).astimezone(timezone.utc)


@dataclass(frozen=True)
class _Timer:
    """A claimed timer row."""

    id: int
    conversation_id: str
    name: str
    due_at: datetime
    payload: str


@dataclass(frozen=True)
class _Conv:
    """The conversation a reminder goes to: its address and language."""

    id: str
    org: str
    channel: str
    chat_id: str
    user_id: str
    thread_id: str
    is_group: bool
    locale: str


@dataclass
class _Say:
    plan: Plan
    conversation: Any
    dose_id: int
    at: datetime
    step: int | None
    repeat: str
    late: bool
    timer_id: int


@dataclass
class _Batch:
    """What one transaction decided; the lists are written at the end, each in one statement."""

    now: datetime
    timers: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    plans: list[dict[str, Any]] = field(default_factory=list)
    says: list[_Say] = field(default_factory=list)
    closed: list[Plan] = field(default_factory=list)
    rearm: list[dict[str, Any]] = field(default_factory=list)  # follow-up rows due again: id, due_at, payload

    def timer(self, plan: Plan, name: str, due: datetime, payload: dict[str, Any]) -> None:
        self.timers.append(dict(org=plan.org, conversation_id=plan.conversation_id, name=name, due_at=due,
                                payload=json.dumps({**payload, "name": name, "care": True}), status="pending",
                                claimed_by="", created_at=self.now))

    def event(self, plan: Plan, kind: str, data: dict[str, Any]) -> None:
        self.events.append(dict(org=plan.org, conversation_id=plan.conversation_id, kind=kind,
                                data=json.dumps(data, default=str), at=self.now))


class DoseFirer:
    """Fires due `dose:` timers in batches (registered with the timer loop as a batch kind)."""

    def __init__(self, reminders: Reminders):
        self.reminders = reminders
        self.store = reminders.store
        self.batch = BATCH
        dialect = self.store.engine.dialect
        self.pg = dialect.name == "postgresql"
        self.parallel = PARALLEL if self.pg and self.store.writer._threads else 1
        self.batches = self.claimed = 0  # transactions that claimed something, and timers they claimed
        self._claims: dict[tuple[int, bool], Any] = {}
        self._plans_stmt: Any = None
        self._claim_reads: dict[tuple[int, bool], Any] = {}
        self._buttons: dict[str, tuple[Any, tuple[str, ...]]] = {}  # locale → (content, the buttons' labels)
        self._stale_after = datetime.min.replace(tzinfo=timezone.utc)
        self._dialect = dialect
        self.dose_insert = BulkInsert(DOSE_T, ["org", "plan_id", "conversation_id", "scheduled_at", "state", "reason",
                                               "late", "nags", "step", "prn", "escalated", "fired_at"], dialect,
                                      returning=("id",), key=("plan_id", "scheduled_at"),
                                      on_conflict=("plan_id", "scheduled_at"))
        self.timer_insert = BulkInsert(TIMER, ["org", "conversation_id", "name", "due_at", "payload", "status",
                                               "claimed_by", "created_at"], dialect)
        self.event_insert = BulkInsert(EVENT, ["org", "conversation_id", "kind", "data", "at"], dialect)
        self.outbox_insert = BulkInsert(OUTBOX, ["org", "conversation_id", "channel", "op", "content_key", "payload",
                                                 "status", "attempts", "next_attempt_at", "lease_until", "claimed_by",
                                                 "created_at", "platform_message_id", "last_error"], dialect,
                                        returning=("id",), key=("conversation_id", "payload"))

    # -- the loop's side ---------------------------------------------------------------------------

    async def fire_due(self, now: datetime, limit: int | None = None) -> int:
        """Claim and fire due dose timers, a batch per transaction, until none is left due.
        Returns how many timers were handled."""
        limit = limit or self.batch
        stale = 0
        if now >= self._stale_after:  # now and then: dose timers a per-turn claim of old left behind
            self._stale_after = now + STALE_EVERY
            stale = await self._drain(now, limit, stale=True)
        if self.parallel == 1:
            return stale + await self._drain(now, limit)
            return await self._drain(now, limit)
        # several transactions in flight (PostgreSQL's writer threads): one batch's Python work
        # overlaps another's round trips; SKIP LOCKED keeps their claims apart
        return stale + sum(await asyncio.gather(*(self._drain(now, limit) for _ in range(self.parallel))))

    async def _drain(self, now: datetime, limit: int, stale: bool = False) -> int:
        from bot.reminders.escalation import escalate_if_due

        handled = 0
        while True:
            claimed, outbox, closed, said = await self.store.write(lambda c: self._fire(c, now, limit, stale))
            self.reminders.enqueue(outbox)
            if said:
                metrics.TIMERS_FIRED.inc(said)
            for plan in closed:
                try:
                    await escalate_if_due(self.reminders, plan, now)
                except Exception:
                    log.exception("escalation failed plan=%s", plan.id)
            handled += claimed
            if claimed:
                self.batches, self.claimed = self.batches + 1, self.claimed + claimed
            if claimed < limit:
                return handled
            now = self.reminders.clock.now()

    # -- one transaction ---------------------------------------------------------------------------

    def _claim_sql(self, limit: int, stale: bool = False) -> Any:
        """Claim and mark fired, oldest first: the `limit` earliest due dose timers no other
        transaction holds. One condition, no OR: PostgreSQL walks ix_timer_due (status, due_at) in
        due order and stops after `limit` rows, so a backlog of thousands costs what a batch costs.
        (With the lease branch OR-ed in, as before, it read and sorted every due row per batch.)
        `stale`: dose timers left `claimed` by the per-turn path of before batches, whose lease ran
        out — looked for apart, every STALE_EVERY."""
        stmt = self._claims.get((limit, stale))
        if stmt is None:
            now = sa.bindparam("now", type_=TIMER.c.due_at.type)
            # statuses as literals: ix_timer_due holds only live timers (migration 0013), which a
            # bound parameter in a prepared statement's generic plan could not prove
            due = (sa.and_(TIMER.c.status == sa.literal_column("'claimed'"), TIMER.c.name.like(f"{DOSE}:%"),
                           TIMER.c.lease_until < now)
                   if stale else sa.and_(TIMER.c.status == sa.literal_column("'pending'"),
                                         TIMER.c.name.like(f"{DOSE}:%"), TIMER.c.due_at <= now))
            ids = sa.select(TIMER.c.id).where(due).order_by(TIMER.c.due_at, TIMER.c.id).limit(limit)
            if self.pg:
                ids = ids.with_for_update(skip_locked=True)
            stmt = self._claims[(limit, stale)] = TIMER.update().where(
                TIMER.c.id.in_(ids.scalar_subquery()), due).values(
                status="fired", fired_at=sa.bindparam("now", type_=TIMER.c.fired_at.type),
                claimed_by=sa.bindparam("me")).returning(
                TIMER.c.id, TIMER.c.conversation_id, TIMER.c.name, TIMER.c.due_at, TIMER.c.payload)
        return stmt

    def _claim_read_sql(self, limit: int, stale: bool) -> Any:
        """PostgreSQL: the claim (an UPDATE … RETURNING as a CTE) with each claimed timer's plan,
        conversation address and STOP joined on — one round trip for what takes two on SQLite."""
        stmt = self._claim_reads.get((limit, stale))
        if stmt is None:
            claimed = self._claim_sql(limit, stale).cte("claimed")
            stmt = self._claim_reads[(limit, stale)] = sa.select(
                claimed.c.id.label("t_id"), claimed.c.conversation_id.label("t_conversation_id"),
                claimed.c.name.label("t_name"), claimed.c.due_at.label("t_due_at"),
                claimed.c.payload.label("t_payload"), PLAN, *self._patient_columns()).select_from(
                claimed.outerjoin(PLAN, PLAN.c.id == sa.func.split_part(claimed.c.name, ":", 2)).outerjoin(
                    CONV, CONV.c.id == PLAN.c.conversation_id))
        return stmt

    def _patient_columns(self) -> list[Any]:
        """A plan's conversation: address and language, and STOP read inside the state JSON by the
        database (the state itself, kilobytes for a long conversation, is neither sent nor parsed)."""
        state = "NULLIF(conversation.state, '')"
        stop = (f"({state}::jsonb ->> 'opted_out') = 'true'" if self.pg
                else f"json_extract({state}, '$.opted_out') = 1")
        return [*(c.label(f"c_{c.name}") for c in (CONV.c.id, CONV.c.org, CONV.c.channel, CONV.c.chat_id,
                                                    CONV.c.user_id, CONV.c.thread_id, CONV.c.is_group,
                                                    CONV.c.locale)),
                sa.literal_column(stop).label("c_opted_out")]

    def _plans_sql(self) -> Any:
        """SQLite: the batch's plans, each with its conversation's address, language and STOP."""
        if self._plans_stmt is None:
            self._plans_stmt = sa.select(PLAN, *self._patient_columns()).select_from(
                PLAN.outerjoin(CONV, CONV.c.id == PLAN.c.conversation_id)).where(
                PLAN.c.id.in_(sa.bindparam("ids", expanding=True)))
        return self._plans_stmt

    def _fire(self, conn: Connection, now: datetime, limit: int,
              stale: bool = False) -> tuple[int, list[Claimed], list[Plan], int]:
        rem = self.reminders
        params = {"now": now, "me": self.store.worker_id}
        plans: dict[str, Plan] = {}
        convs: dict[str, _Conv] = {}
        opted_out: dict[str, bool] = {}

        def plan_and_patient(row: Any) -> None:
            if row.id is None or row.id in plans:
                return
            plans[row.id] = Plan.from_row(row)
            if row.c_id is not None:
                convs[row.c_id] = _Conv(row.c_id, row.c_org, row.c_channel, row.c_chat_id, row.c_user_id,
                                        row.c_thread_id, bool(row.c_is_group), row.c_locale)
                opted_out[row.c_id] = bool(row.c_opted_out)

        if self.pg:  # claim and read in one statement: the claim as a CTE joined to plans and patients
            got = conn.execute(self._claim_read_sql(limit, stale), params).all()
            rows = [_Timer(g.t_id, g.t_conversation_id, g.t_name, g.t_due_at, g.t_payload) for g in got]
            for g in got:
                plan_and_patient(g)
        else:
            rows = conn.execute(self._claim_sql(limit, stale), params).all()
        if not rows:
            return 0, [], [], 0
        timers = []
        for r in rows:
            parts = r.name.split(":")
            if len(parts) < 2:
                continue
            timers.append((r, parts[1], parts[2] if len(parts) > 2 else "due", parts[3:]))
        if not self.pg:
            for row in conn.execute(self._plans_sql(), {"ids": list({t[1] for t in timers})}):
                plan_and_patient(row)
        dose_ids = {int(t[3][0]) for t in timers
                    if t[2] in (FOLLOW, "nag", "snooze", "close") and t[3] and t[3][0].isdigit()}
        doses = {d.id: d for d in conn.execute(sa.select(DOSE_T).where(DOSE_T.c.id.in_(dose_ids)))} if dose_ids else {}

        b = _Batch(now)
        fresh: list[tuple[Any, Plan, datetime, str, bool, int | None, Any]] = []  # due timers → dose rows
        nags: dict[int, list[tuple[Any, Plan, Any]]] = {}
        snoozes: list[tuple[Any, Plan, Any]] = []
        closes: list[tuple[Any, Plan]] = []
        for r, plan_id, what, rest in timers:
            plan = plans.get(plan_id)
            conv = convs.get(plan.conversation_id) if plan is not None else None
            if plan is None or plan.status != "active" or conv is None:
                continue  # stopped, ended, or its conversation erased: nothing to say
            timing = rem.timing(plan)
            if what == "due":
                at = datetime.fromisoformat(str(json.loads(r.payload)["at"])).astimezone(timezone.utc)
                late = now - at
                reason = ("opted_out" if opted_out.get(plan.conversation_id)
                          else "downtime" if late > timedelta(seconds=timing.grace) else "")
                step = None
                if plan.schedule.taper:
                    occ = rem.next_dose(plan, at - timedelta(seconds=1))
                    step = occ.step if occ is not None and occ.at == at else None
                fresh.append((r, plan, at, reason, late > LATE_AFTER and not reason, step, conv))
            elif what == FOLLOW and rest and rest[0].isdigit():
                # one follow-up row per dose; its payload says what comes next (nag n, snooze, close)
                dose = doses.get(int(rest[0]))
                p = json.loads(r.payload)
                nxt, close = str(p.get("next", "close")), _when(p.get("close"), r.due_at)
                if nxt == "close":
                    if dose is not None:
                        closes.append((r, plan))
                    continue
                n = int(p.get("n") or (dose.nags + 1 if dose is not None else 1))
                self._repeat(b, r, plan, conv, "nag" if nxt == "nag" else "snooze", dose, [rest[0], str(n)],
                             opted_out.get(plan.conversation_id, False), nags, snoozes)
                if dose is not None and dose.state in OPEN_DOSE:  # the next follow-up: same row, re-armed
                    due, payload = follow_up(timing, dose.id, plan.id, r.due_at if nxt == "nag" else now,
                                             n + 1 if nxt == "nag" else dose.nags + 1, close)
                    b.rearm.append({"id": r.id, "due_at": due, "payload": json.dumps(
                        {**payload, "name": r.name, "care": True})})
            elif what in ("nag", "snooze", "close") and rest and rest[0].isdigit():  # rows from before `follow`
                dose = doses.get(int(rest[0]))
                if what == "close":
                    if dose is not None:
                        closes.append((r, plan))
                    continue
                self._repeat(b, r, plan, conv, what, dose, rest, opted_out.get(plan.conversation_id, False),
                             nags, snoozes)

        # new doses: one row each (a re-run finds its row and adds nothing)
        written = self.dose_insert.execute(conn, [dict(
            org=plan.org, plan_id=plan.id, conversation_id=plan.conversation_id, scheduled_at=at,
            state="missed" if reason else "due", reason=reason, late=late, nags=0, step=step, prn=False,
            escalated=False, fired_at=None if reason else now) for _r, plan, at, reason, late, step, _c in fresh])
        rerun = [f for f, w in zip(fresh, written) if w is None]
        existing = {}
        if rerun:
            existing = {(d.plan_id, d.scheduled_at): d for d in conn.execute(sa.select(
                DOSE_T.c.id, DOSE_T.c.plan_id, DOSE_T.c.scheduled_at, DOSE_T.c.state, DOSE_T.c.fired_at).where(
                DOSE_T.c.plan_id.in_({f[1].id for f in rerun}), DOSE_T.c.scheduled_at.in_({f[2] for f in rerun})))}
        unsent: list[int] = []
        for (r, plan, at, reason, late, step, conv), w in zip(fresh, written):
            timing = rem.timing(plan)
            if w is None:  # decided before: say it only if it never went out and it is not too late
                d = existing.get((plan.id, at))
                if d is not None and d.state in OPEN_DOSE and d.fired_at is None \
                        and now - at <= timedelta(seconds=timing.grace):
                    unsent.append(d.id)
                    b.says.append(_Say(plan, conv, d.id, at, step, "", late, r.id))
                continue
            dose_id = int(w[0])
            nxt = rem.next_dose(plan, at)
            b.plans.append({"id": plan.id, "next_due_at": nxt.at if nxt else None,
                            "status": "active" if nxt else "ended"})
            if nxt is not None:
                b.timer(plan, timer_name(plan.id), nxt.at, {"plan": plan.id, "at": nxt.at.isoformat()})
            if reason:
                b.event(plan, "dose_missed", {"plan": plan.id, "dose": dose_id, "at": at.isoformat(), "reason": reason})
                continue
            close = max(at + timedelta(seconds=timing.on_time_window), now + timedelta(minutes=1))
            due, payload = follow_up(timing, dose_id, plan.id, now, 1, close)
            b.timer(plan, timer_name(plan.id, FOLLOW, dose_id), due, payload)
            b.says.append(_Say(plan, conv, dose_id, at, step, "", late, r.id))
        if unsent:
            conn.execute(DOSE_T.update().where(DOSE_T.c.id.in_(unsent), DOSE_T.c.fired_at.is_(None)).values(fired_at=now))

        # repeats: each changes its dose only once, so a second run of the same timer says nothing
        for n, items in nags.items():
            done = set(conn.execute(DOSE_T.update().where(
                DOSE_T.c.id.in_([d.id for _r, _p, d in items]), DOSE_T.c.state == "due", DOSE_T.c.nags < n).values(
                nags=n).returning(DOSE_T.c.id)).scalars())
            self._said_again(b, items, done, "nag", convs)
        if snoozes:
            done = set(conn.execute(DOSE_T.update().where(
                DOSE_T.c.id.in_([d.id for _r, _p, d in snoozes]), DOSE_T.c.state == "snoozed").values(
                state="due").returning(DOSE_T.c.id)).scalars())
            self._said_again(b, snoozes, done, "snooze", convs)
        if closes:
            ids = {int(r.name.split(":")[3]): plan for r, plan in closes}
            missed = conn.execute(DOSE_T.update().where(DOSE_T.c.id.in_(list(ids)), DOSE_T.c.state.in_(OPEN_DOSE)).values(
                state="missed", reason="no_response").returning(DOSE_T.c.id)).scalars().all()
            for dose_id in missed:
                plan = ids[dose_id]
                b.event(plan, "dose_missed", {"plan": plan.id, "dose": dose_id, "reason": "no_response"})
                if plan not in b.closed:
                    b.closed.append(plan)

        rendered = self._say_all(b)  # (adds the `dose_fired` records)
        # the writes need no answer until the end: on PostgreSQL one pipeline, one round trip
        with _pipeline(conn, self.pg) as sent:
            sent.append(self._update_plans(conn, b.plans))
            sent.append(self.timer_insert.send(conn, b.timers))
            sent.append(self._rearm(conn, b.rearm))
            outbox_sent = self.outbox_insert.send(conn, [row for row, _ob in rendered])
            sent.append(self.event_insert.send(conn, b.events))
        for handle in sent:
            _close(handle)
        ids = self.outbox_insert.collect(outbox_sent)
        outbox = [Claimed(int(i[0]), row["conversation_id"], ob) for i, (row, ob) in zip(ids, rendered)
                  if i is not None]
        return len(rows), outbox, b.closed, len(b.says)

    def _repeat(self, b: _Batch, r: Any, plan: Plan, conv: Any, what: str, dose: Any, rest: list[str],
                opted_out: bool, nags: dict[int, list[Any]], snoozes: list[Any]) -> None:
        """A nag or a snoozed reminder: said again only while the dose is still waiting for it."""
        timing = self.reminders.timing(plan)
        now = b.now
        wanted = ("due",) if what == "nag" else ("snoozed",)
        # a repeat that came due during downtime is stale once its moment has passed: never said late
        stale = dose is not None and (now > dose.scheduled_at + timedelta(seconds=timing.on_time_window)
                                      if what == "nag" else now - r.due_at > timedelta(seconds=timing.grace))
        if dose is None or dose.state not in wanted or stale or opted_out:
            why = ("no_dose" if dose is None else "answered" if dose.state not in OPEN_DOSE else
                   "snoozed" if dose.state == "snoozed" and what == "nag" else "stale" if stale else
                   "opted_out" if opted_out else "answered")
            b.event(plan, "dose_not_repeated", {"plan": plan.id, "dose": dose.id if dose is not None else rest[0],
                                                "repeat": what, "reason": why})
            return
        item = (r, plan, dose)
        if what == "nag":
            n = int(rest[1]) if len(rest) > 1 and rest[1].isdigit() else dose.nags + 1
            nags.setdefault(n, []).append(item)
        else:
            snoozes.append(item)

    def _said_again(self, b: _Batch, items: list[Any], done: set[int], what: str, convs: dict[str, Any]) -> None:
        for r, plan, dose in items:
            if dose.id in done:
                b.says.append(_Say(plan, convs[plan.conversation_id], dose.id, dose.scheduled_at, dose.step, what,
                                   False, r.id))
            else:  # another run said it (or the patient answered) in the meantime
                b.event(plan, "dose_not_repeated", {"plan": plan.id, "dose": dose.id, "repeat": what,
                                                    "reason": "answered"})

    def _rearm(self, conn: Connection, rows: list[dict[str, Any]]) -> Any:
        """Follow-up rows fired in this batch that have a next step: pending again, due then.
        PostgreSQL: returns the statement's cursor, to close once the pipeline has run."""
        if not rows:
            return None
        if self.pg:
            return _send(conn, "UPDATE timer SET status = 'pending', due_at = v.due, payload = v.payload, "
                         "claimed_by = '', lease_until = NULL, fired_at = NULL FROM unnest(%(id)b::bigint[], "
                         "%(due)b::timestamptz[], %(payload)b::text[]) AS v(id, due, payload) WHERE timer.id = v.id",
                         {"id": [r["id"] for r in rows], "due": [r["due_at"] for r in rows],
                          "payload": [r["payload"] for r in rows]})
        conn.execute(TIMER.update().where(TIMER.c.id == sa.bindparam("tid")).values(
            status="pending", due_at=sa.bindparam("due", type_=TIMER.c.due_at.type), payload=sa.bindparam("pl"),
            claimed_by="", lease_until=None, fired_at=None),
            [{"tid": r["id"], "due": r["due_at"], "pl": r["payload"]} for r in rows])

    def _update_plans(self, conn: Connection, rows: list[dict[str, Any]]) -> Any:
        if not rows:
            return None
        if self.pg:
            return _send(conn, "UPDATE med_plan SET next_due_at = v.at, status = v.status FROM unnest("
                         "%(id)b::text[], %(at)b::timestamptz[], %(status)b::text[]) AS v(id, at, status) "
                         "WHERE med_plan.id = v.id",
                         {"id": [r["id"] for r in rows], "at": [r["next_due_at"] for r in rows],
                          "status": [r["status"] for r in rows]})
        conn.execute(PLAN.update().where(PLAN.c.id == sa.bindparam("pid")).values(
            next_due_at=sa.bindparam("at", type_=PLAN.c.next_due_at.type), status=sa.bindparam("st")),
            [{"pid": r["id"], "at": r["next_due_at"], "st": r["status"]} for r in rows])

    def _say_all(self, b: _Batch) -> list[tuple[dict[str, Any], Outbound]]:
        """The reminders' outbox rows (leased to this worker) and a `dose_fired` record each."""
        rem = self.reminders
        content = rem.content
        adapters = rem.runtime.adapters if rem.runtime is not None else None
        now, lease = b.now, b.now + self.store.lease
        outbounds: list[Outbound] = []
        rows: list[dict[str, Any]] = []
        for s in b.says:
            c = s.conversation
            address = Address(c.channel, c.chat_id, c.user_id, c.thread_id, c.is_group, c.org)
            locale = content.normalize_locale(c.locale or "")
            cached = self._buttons.get(locale)
            if cached is None or cached[0] is not content:  # the same labels for every reminder until a reload
                cached = self._buttons[locale] = (content, button_labels(content, locale))
            ob = dose_message(content, s.plan, address, locale, s.dose_id, s.at, s.step, s.repeat, s.late, cached[1])
            adapter = adapters.get(c.channel) if adapters is not None else None
            caps = adapter.capabilities if adapter is not None else None
            if adapters is not None and not (caps is not None and caps.buttons and caps.max_buttons >= len(ob.buttons)
                                             and len(ob.text) <= caps.max_text):  # else it fits as it is
                fitted = degrade_effects([Send(ob)], adapters, content.render, locale, content.base_locale)
                ob = next((e.outbound for e in fitted if isinstance(e, Send)), ob)
            outbounds.append(ob)
            rows.append(dict(org=c.org, conversation_id=c.id, channel=ob.address.channel, op=ob.op, content_key=ob.key,
                             payload=json.dumps(ob.to_dict(), ensure_ascii=False), status="sending", attempts=0,
                             next_attempt_at=now, lease_until=lease, claimed_by=self.store.worker_id, created_at=now,
                             platform_message_id="", last_error=""))
            b.event(s.plan, "dose_fired", {"plan": s.plan.id, "dose": s.dose_id, "at": s.at.isoformat(),
                                           "repeat": s.repeat, "late": s.late, "timer": s.timer_id})
        return list(zip(rows, outbounds))
