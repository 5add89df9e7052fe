"""The hand-off service: a ticket's life from the moment a flow (or triage) hands the patient over.

    bot ──open──► pending ──take / roster / team──► assigned ──close──► resolved ──survey──► bot
                     │  ▲                               │
                     │  └──────── transferred ◄─────────┤  escalated (SLA breach, team → expert)
                     └── abandoned (patient gave up)    │

Everything a patient must see goes back through the runtime as an `Inbound(kind="staff_event")`
or `"staff_reply"` for that conversation, so it is ordered with the patient's own messages, goes
through the safety stage's world, and is delivered by the outbox like any other message. Staff-side
clocks are durable timers (payload `handoff`) that the timer loop hands to `on_timer`.
Taking a grab ticket is one conditional UPDATE: exactly one taker wins, across processes.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy import Connection

from bot.handoff import quality
from bot.handoff.config import HandoffSettings
from bot.handoff.models import Complaint, Review, Staff, TicketEvent
from bot.store.store import AUDIT, CONV, TICKET, TICKET_MSG, TIMER, Store, TurnCommit
from bot.types import Address, Inbound, OpenTicket, UpdateTicket

if TYPE_CHECKING:
    from bot.clock import Clock
    from bot.coord import Coord
    from bot.handoff.paging import Paging
    from bot.runtime.runtime import Runtime

log = logging.getLogger("carebot.handoff")

STAFF = Staff.__table__
EVENTS = TicketEvent.__table__
REVIEWS = Review.__table__
COMPLAINTS = Complaint.__table__
OPEN = ("pending", "assigned", "transferred", "escalated")
PRIORITY_RANK = {"urgent": 0, "high": 1, "normal": 2}


class HandoffError(Exception):
    """A staff action that is not allowed or not possible; the message is for the staff member."""


@dataclass(frozen=True)
class StaffMember:
    id: str
    display_name: str
    title: str
    role: str
    departments: tuple[str, ...]

    @property
    def signature(self) -> str:
        return f"{self.display_name} {self.title}".strip()

    @classmethod
    def from_row(cls, row: Any) -> StaffMember:
        return cls(row.id, row.display_name, row.title, row.role, tuple(json.loads(row.departments)))


def hash_password(password: str) -> str:
    from argon2 import PasswordHasher

    return PasswordHasher().hash(password)


def verify_password(stored: str, password: str) -> bool:
    from argon2 import PasswordHasher
    from argon2.exceptions import InvalidHashError, VerificationError

    try:
        return PasswordHasher().verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


class HandoffService:
    def __init__(self, settings: HandoffSettings, store: Store, runtime: Runtime, coord: Coord, clock: Clock):
        self.settings = settings
        self.store = store
        self.runtime = runtime
        self.coord = coord
        self.clock = clock
        self._tasks: set[asyncio.Task[Any]] = set()
        self.paging: Paging | None = None  # emergency paging (bot/handoff/paging.py), set by CareBot.build

    # -- following the runtime ---------------------------------------------------------------------

    def after_commit(self, commit: TurnCommit) -> None:
        """A turn opened a ticket, or the patient wrote to an open one: act on it after the commit,
        on a task of its own (the turn's conversation is still locked)."""
        for i, effect in enumerate(commit.effects):
            if isinstance(effect, OpenTicket):
                self._spawn(self._opened(commit.ticket_ids[i], effect.reason))
            elif isinstance(effect, UpdateTicket) and (effect.message or effect.media) and commit.current_ticket:
                self._spawn(self.on_patient_message(commit.current_ticket))
            if isinstance(effect, UpdateTicket) and effect.priority == "urgent" and commit.current_ticket \
                    and self.paging is not None:  # an emergency inside an open ticket: on-call, urgent clocks
                self._spawn(self.paging.reroute(commit.current_ticket))

    async def _opened(self, ticket_id: str, reason: str) -> None:
        await self.dispatch(ticket_id)
        if reason == "red_flag" and self.paging is not None:
            await self.paging.start(ticket_id)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("hand-off task failed: %s", type(task.exception()).__name__)

    async def idle(self) -> None:
        """Wait for the work `after_commit` started (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    # -- staff accounts --------------------------------------------------------------------------

    async def add_staff(self, staff_id: str, display_name: str, role: str, password: str, *, title: str = "",
                        departments: list[str] | None = None) -> None:
        from bot.handoff.models import ROLES

        if role not in ROLES:
            raise HandoffError(f"role {role!r} is not one of {', '.join(ROLES)}")
        if len(password) < 8:
            raise HandoffError("a password needs at least 8 characters")
        hashed = hash_password(password)
        now = self.clock.now()

        def q(conn: Connection) -> None:
            if conn.execute(sa.select(STAFF.c.id).where(STAFF.c.id == staff_id)).first():
                raise HandoffError(f"staff {staff_id!r} exists already")
            conn.execute(STAFF.insert().values(
                id=staff_id, org="default", display_name=display_name, title=title, role=role,
                departments=json.dumps(departments or []), password_hash=hashed, active=True, created_at=now))
            conn.execute(AUDIT.insert().values(org="default", at=now, actor="system", action="staff_added",
                                               subject=staff_id, detail=json.dumps({"role": role})))

        await self.store.write(q)

    async def authenticate(self, staff_id: str, password: str) -> StaffMember | None:
        row = await self.store.read(lambda c: c.execute(
            sa.select(STAFF).where(STAFF.c.id == staff_id, STAFF.c.active.is_(True))).first())
        if row is None or not verify_password(row.password_hash, password):
            return None
        return StaffMember.from_row(row)

    async def staff(self, staff_id: str) -> StaffMember | None:
        row = await self.store.read(lambda c: c.execute(sa.select(STAFF).where(STAFF.c.id == staff_id)).first())
        return StaffMember.from_row(row) if row else None

    async def all_staff(self) -> list[StaffMember]:
        rows = await self.store.read(lambda c: c.execute(sa.select(STAFF).where(STAFF.c.active.is_(True))).all())
        return [StaffMember.from_row(r) for r in rows]

    # -- access ------------------------------------------------------------------------------------

    @staticmethod
    def can_view(staff: StaffMember, ticket: Any) -> bool:
        """Doctors and assistants see their departments' tickets and their own; the others all."""
        if staff.role in ("admin", "operator", "customer_service"):
            return True
        return ticket.assignee == staff.id or ticket.department in staff.departments

    async def _ticket(self, ticket_id: str) -> Any:
        row = await self.store.read(lambda c: c.execute(sa.select(TICKET).where(TICKET.c.id == ticket_id)).first())
        if row is None:
            raise HandoffError(f"ticket {ticket_id} does not exist")
        return row

    async def _checked(self, staff: StaffMember, ticket_id: str, *, open_only: bool = True) -> Any:
        ticket = await self._ticket(ticket_id)
        if not self.can_view(staff, ticket):
            raise HandoffError("this ticket belongs to another department")
        if open_only and ticket.status not in OPEN:
            raise HandoffError(f"the ticket is {ticket.status}")
        return ticket

    # -- dispatch ------------------------------------------------------------------------------------

    async def dispatch(self, ticket_id: str) -> str:
        """Route a newly opened ticket: grab (offer to the pool), roster (the least-loaded doctor on
        shift) or team (the patient's care team). Idempotent: only the first call dispatches."""
        ticket = await self._ticket(ticket_id)
        dept = self.settings.department(ticket.department)
        now = self.clock.now()
        sla = self.settings.sla_for(ticket.priority)
        assignee, team = "", ""
        if dept.mode == "roster":
            assignee = await self._least_loaded(self.settings.roster.on_duty(ticket.department, now))
        elif dept.mode == "team":
            team = dept.team or ticket.department
            members = self.settings.teams.get(team)
            assignee = await self._least_loaded(list(members.members)) if members else ""
        first_due = now + timedelta(seconds=sla.seconds("first_response"))

        def q(conn: Connection) -> bool:
            values: dict[str, Any] = dict(mode=dept.mode, team=team, first_response_due=first_due,
                                          resolution_due=ticket.opened_at + timedelta(seconds=sla.seconds("resolution")))
            if assignee:
                values.update(status="assigned", assignee=assignee, assigned_at=now)
            done = conn.execute(TICKET.update().where(TICKET.c.id == ticket_id, TICKET.c.mode == "").values(**values))
            if done.rowcount != 1:
                return False  # another worker dispatched it
            self._event(conn, ticket_id, now, "system", "assigned" if assignee else "offered",
                        {"mode": dept.mode, "assignee": assignee, "team": team, "department": ticket.department})
            conv = ticket.conversation_id
            self._timer(conn, conv, f"sla:first:{ticket_id}", first_due - timedelta(seconds=sla.seconds("remind_before")),
                        {"handoff": "first_reminder", "ticket": ticket_id})
            self._timer(conn, conv, f"sla:first_breach:{ticket_id}", first_due,
                        {"handoff": "first_breach", "ticket": ticket_id})
            self._timer(conn, conv, f"sla:resolution:{ticket_id}", values["resolution_due"],
                        {"handoff": "resolution_breach", "ticket": ticket_id})
            if not assignee and ticket.reason != "red_flag":
                self._timer(conn, conv, f"sla:waiting:{ticket_id}", now + timedelta(seconds=sla.seconds("patient_update_every")),
                            {"handoff": "patient_update", "ticket": ticket_id})
                if dept.mode == "grab":
                    self._timer(conn, conv, f"sla:offer:{ticket_id}", now + timedelta(seconds=_secs(dept.offer_timeout)),
                                {"handoff": "reoffer", "ticket": ticket_id})
            return True

        if not await self.store.write(q):
            return "already dispatched"
        await self._publish("ticket_opened", ticket_id, ticket.department, ticket.priority)
        position = await self.queue_position(ticket_id) if not assignee else 0
        event: dict[str, Any] = {"event": "assigned" if assignee else "queued", "ticket_id": ticket_id,
                                 "position": position, "minutes": await self.expected_minutes(ticket)}
        if assignee:
            member = await self.staff(assignee)
            event["staff_name"] = member.signature if member else assignee
        if not assignee and not self.settings.in_business_hours(now):
            event["out_of_hours"] = True
        if ticket.reason != "red_flag":  # an emergency was told to call 120, not to wait for us
            await self._tell_patient(ticket.conversation_id, event)
        return "assigned" if assignee else "offered"

    async def sweep_undispatched(self) -> int:
        """Dispatch tickets whose opening turn committed but whose process died before dispatch."""
        ids = await self.store.read(lambda c: c.execute(sa.select(TICKET.c.id).where(
            TICKET.c.mode == "", TICKET.c.status == "pending")).scalars().all())
        for ticket_id in ids:
            await self.dispatch(ticket_id)
        return len(ids)

    async def _least_loaded(self, candidates: list[str]) -> str:
        """The candidate (an active account) with the fewest open tickets; ties go to roster order."""
        if not candidates:
            return ""
        active = set(await self.store.read(lambda c: c.execute(sa.select(STAFF.c.id).where(
            STAFF.c.id.in_(candidates), STAFF.c.active.is_(True))).scalars().all()))
        candidates = [c for c in candidates if c in active]
        if not candidates:
            return ""
        rows = await self.store.read(lambda c: c.execute(sa.select(TICKET.c.assignee, sa.func.count()).where(
            TICKET.c.assignee.in_(candidates), TICKET.c.status.in_(OPEN)).group_by(TICKET.c.assignee)).all())
        load = {r[0]: r[1] for r in rows}
        return min(candidates, key=lambda s: (load.get(s, 0), candidates.index(s)))

    async def take(self, ticket_id: str, staff: StaffMember) -> bool:
        """Grab (抢单): the first to take a pending ticket wins; everyone else gets False."""
        ticket = await self._checked(staff, ticket_id)
        now = self.clock.now()

        def q(conn: Connection) -> bool:
            done = conn.execute(TICKET.update().where(
                TICKET.c.id == ticket_id, TICKET.c.assignee == "",
                TICKET.c.status.in_(("pending", "transferred", "escalated"))).values(
                status="assigned", assignee=staff.id, assigned_at=now))
            if done.rowcount != 1:
                return False
            self._event(conn, ticket_id, now, staff.id, "taken", {})
            for name in (f"sla:offer:{ticket_id}", f"sla:waiting:{ticket_id}"):
                self._cancel(conn, ticket.conversation_id, name)
            return True

        won = await self.store.write(q)
        if won:
            await self._publish("ticket_taken", ticket_id, ticket.department, ticket.priority, staff.id)
            await self._tell_patient(ticket.conversation_id, {"event": "assigned", "ticket_id": ticket_id,
                                                              "staff_name": staff.signature})
        return won

    # -- the conversation with the patient ---------------------------------------------------------

    async def reply(self, ticket_id: str, staff: StaffMember, text: str = "", *, canned: str = "") -> list[str]:
        """Send a reply to the patient, named with the doctor's name and title. Returns the quality
        flags the machine rules raised (the reply is sent regardless)."""
        ticket = await self._checked(staff, ticket_id)
        if ticket.assignee and ticket.assignee != staff.id and not self._in_team(staff, ticket):
            raise HandoffError("another doctor has this ticket; ask for a transfer")
        conv = await self._conversation(ticket.conversation_id)
        if canned:
            texts = self.settings.canned.get(canned)
            if not texts:
                raise HandoffError(f"no canned reply {canned!r}; known: {', '.join(sorted(self.settings.canned))}")
            text = texts.get(conv["locale"]) or next(iter(texts.values()))
        text = text.strip()
        if not text:
            raise HandoffError("an empty reply")
        now = self.clock.now()
        question = await self._recent_patient_text(ticket_id)
        others = await self._recent_replies_elsewhere(staff.id, ticket.conversation_id)
        waited = now - ticket.last_patient_at if ticket.last_patient_at else None
        flags = quality.check_reply(self.settings.quality, text, question, others, waited,
                                    timedelta(seconds=_secs(self.settings.quality.slow_reply)))

        def q(conn: Connection) -> None:
            values: dict[str, Any] = dict(last_staff_at=now, next_response_due=None)
            if ticket.first_response_at is None:
                values["first_response_at"] = now
            if not ticket.assignee:
                values.update(assignee=staff.id, assigned_at=now, status="assigned")
            conn.execute(TICKET.update().where(TICKET.c.id == ticket_id).values(**values))
            conn.execute(TICKET_MSG.insert().values(org="default", ticket_id=ticket_id, author=f"staff:{staff.id}",
                                                    body=text, media="", at=now))
            self._event(conn, ticket_id, now, staff.id, "replied", {"canned": canned, "flags": flags})
            for name in ("first", "first_breach", "next", "next_breach", "waiting", "offer"):
                self._cancel(conn, ticket.conversation_id, f"sla:{name}:{ticket_id}")
            if flags:
                conn.execute(REVIEWS.insert().values(org="default", ticket_id=ticket_id, staff_id=staff.id,
                                                     source="machine", reasons=json.dumps(flags), status="open",
                                                     created_at=now))

        await self.store.write(q)
        name = staff.signature
        team = self.settings.teams.get(ticket.team) if ticket.team else None
        if team is not None:
            name = f"{name} · {team.name.get(conv['locale']) or ticket.team}"
        await self.runtime.handle(Inbound(
            kind="staff_reply", address=conv["address"], message_id=f"staff-{uuid.uuid4().hex}",
            received_at=now.astimezone(timezone.utc), text=text,
            payload={"staff_id": staff.id, "staff_name": name, "ticket_id": ticket_id}))
        return flags

    async def note(self, ticket_id: str, staff: StaffMember, text: str) -> None:
        """An internal note: for the care team only, never sent to the patient."""
        await self._checked(staff, ticket_id, open_only=False)
        now = self.clock.now()

        def q(conn: Connection) -> None:
            conn.execute(TICKET_MSG.insert().values(org="default", ticket_id=ticket_id, author=f"note:{staff.id}",
                                                    body=text.strip(), media="", at=now))
            self._event(conn, ticket_id, now, staff.id, "noted", {})

        await self.store.write(q)

    async def on_patient_message(self, ticket_id: str) -> None:
        """The patient wrote while a human has the thread: start the next-response clock."""
        ticket = await self._ticket(ticket_id)
        if ticket.status not in OPEN:
            return
        now = self.clock.now()
        sla = self.settings.sla_for(ticket.priority)
        due = now + timedelta(seconds=sla.seconds("next_response"))

        def q(conn: Connection) -> None:
            values: dict[str, Any] = {"last_patient_at": now}
            if ticket.first_response_at is not None and ticket.next_response_due is None:
                values["next_response_due"] = due
                self._timer(conn, ticket.conversation_id, f"sla:next:{ticket_id}",
                            due - timedelta(seconds=sla.seconds("remind_before")),
                            {"handoff": "next_reminder", "ticket": ticket_id})
                self._timer(conn, ticket.conversation_id, f"sla:next_breach:{ticket_id}", due,
                            {"handoff": "next_breach", "ticket": ticket_id})
            conn.execute(TICKET.update().where(TICKET.c.id == ticket_id).values(**values))

        await self.store.write(q)
        await self._publish("patient_message", ticket_id, ticket.department, ticket.priority)

    # -- moving a ticket -------------------------------------------------------------------------

    async def transfer(self, ticket_id: str, staff: StaffMember, *, department: str = "", to_staff: str = "",
                       reason: str = "") -> None:
        ticket = await self._checked(staff, ticket_id)
        if not department and not to_staff:
            raise HandoffError("transfer to a department or to a colleague")
        now = self.clock.now()
        target = await self.staff(to_staff) if to_staff else None
        if to_staff and target is None:
            raise HandoffError(f"no staff member {to_staff!r}")

        def q(conn: Connection) -> None:
            conn.execute(TICKET.update().where(TICKET.c.id == ticket_id).values(
                status="assigned" if target else "transferred", assignee=target.id if target else "",
                department=department or ticket.department, assigned_at=now if target else None))
            self._event(conn, ticket_id, now, staff.id, "transferred",
                        {"to_department": department, "to_staff": to_staff, "reason": reason})

        await self.store.write(q)
        await self._publish("ticket_transferred", ticket_id, department or ticket.department, ticket.priority)
        await self._tell_patient(ticket.conversation_id, {
            "event": "transferred", "ticket_id": ticket_id,
            "staff_name": target.signature if target else ""})

    async def escalate(self, ticket_id: str, actor: StaffMember | None, reason: str) -> None:
        """Team: to the expert. Otherwise to the department's backup (its pool, or whoever is on
        shift there). Priority rises one step."""
        ticket = await self._ticket(ticket_id)
        if actor is not None and not self.can_view(actor, ticket):
            raise HandoffError("this ticket belongs to another department")
        if ticket.status not in OPEN:
            return
        now = self.clock.now()
        team = self.settings.teams.get(ticket.team) if ticket.team else None
        dept = self.settings.department(ticket.department)
        assignee, department = "", ticket.department
        if team is not None:
            assignee = team.expert
        elif dept.backup:
            department = dept.backup
            if self.settings.department(dept.backup).mode == "roster":
                assignee = await self._least_loaded(self.settings.roster.on_duty(dept.backup, now))
        priority = {"normal": "high", "high": "urgent"}.get(ticket.priority, ticket.priority)

        def q(conn: Connection) -> None:
            conn.execute(TICKET.update().where(TICKET.c.id == ticket_id).values(
                status="assigned" if assignee else "escalated", assignee=assignee, department=department,
                priority=priority, escalations=TICKET.c.escalations + 1, assigned_at=now if assignee else None))
            self._event(conn, ticket_id, now, actor.id if actor else "system", "escalated",
                        {"reason": reason, "to": assignee or department})

        await self.store.write(q)
        await self._publish("ticket_escalated", ticket_id, department, priority, assignee)

    async def close(self, ticket_id: str, staff: StaffMember, reason: str = "resolved") -> None:
        """Resolve: the patient gets the satisfaction survey and the thread returns to the bot."""
        ticket = await self._checked(staff, ticket_id)
        await self._finish(ticket, staff.id, "resolved", reason)

    async def abandon(self, ticket_id: str, reason: str = "patient_left") -> None:
        ticket = await self._ticket(ticket_id)
        if ticket.status in OPEN:
            await self._finish(ticket, "system", "abandoned", reason)

    async def _finish(self, ticket: Any, actor: str, status: str, reason: str) -> None:
        now = self.clock.now()
        sample = status == "resolved" and quality.sampled(ticket.id, self.settings.quality.sample_rate)

        def q(conn: Connection) -> None:
            conn.execute(TICKET.update().where(TICKET.c.id == ticket.id).values(status=status, closed_at=now))
            self._event(conn, ticket.id, now, actor, "closed" if status == "resolved" else status, {"reason": reason})
            conn.execute(TIMER.update().where(TIMER.c.conversation_id == ticket.conversation_id,
                                              TIMER.c.name.like(f"sla:%:{ticket.id}"),
                                              TIMER.c.status == "pending").values(status="cancelled"))
            if sample:
                conn.execute(REVIEWS.insert().values(org="default", ticket_id=ticket.id, staff_id=ticket.assignee,
                                                     source="sample", reasons="[]", status="open", created_at=now))

        await self.store.write(q)
        await self._publish("ticket_closed", ticket.id, ticket.department, ticket.priority)
        conv = await self._conversation(ticket.conversation_id)
        await self.runtime.handle(Inbound(
            kind="staff_event", address=conv["address"], message_id=f"close-{ticket.id}",
            received_at=now.astimezone(timezone.utc), payload={"event": "closed", "ticket_id": ticket.id,
                                                               "status": status}))

    # -- clocks ------------------------------------------------------------------------------------

    async def on_timer(self, timer_id: int, payload: dict[str, Any]) -> None:
        """A staff-side clock came due (the timer loop claimed it)."""
        kind = payload.get("handoff")
        if kind == "page_ladder" and self.paging is not None:
            await self.paging.on_timer(timer_id, payload)
            return
        ticket = await self._ticket(str(payload.get("ticket", "")))
        now = self.clock.now()
        still_open = ticket.status in OPEN

        def mark(conn: Connection, event: str = "") -> None:
            conn.execute(TIMER.update().where(TIMER.c.id == timer_id).values(status="fired", fired_at=now))
            if event and still_open:
                self._event(conn, ticket.id, now, "system", event, {"clock": kind})

        if not still_open:
            await self.store.write(mark)
            return
        if kind in ("first_reminder", "next_reminder"):
            await self.store.write(lambda c: mark(c, "reminded"))
            await self._publish("sla_reminder", ticket.id, ticket.department, ticket.priority, ticket.assignee)
        elif kind in ("first_breach", "next_breach", "resolution_breach"):
            await self.store.write(lambda c: mark(c, "breached"))
            await self.escalate(ticket.id, None, f"sla_{kind}")
        elif kind == "reoffer" and not ticket.assignee:
            await self.store.write(lambda c: mark(c, "reoffered"))
            backup = self.settings.department(ticket.department).backup
            await self._publish("ticket_reoffered", ticket.id, backup or ticket.department, ticket.priority)
        elif kind == "patient_update" and not ticket.assignee:
            sla = self.settings.sla_for(ticket.priority)

            def again(conn: Connection) -> None:
                mark(conn)
                self._timer(conn, ticket.conversation_id, f"sla:waiting:{ticket.id}",
                            now + timedelta(seconds=sla.seconds("patient_update_every")),
                            {"handoff": "patient_update", "ticket": ticket.id})

            await self.store.write(again)
            await self._tell_patient(ticket.conversation_id, {
                "event": "waiting", "ticket_id": ticket.id, "position": await self.queue_position(ticket.id),
                "minutes": await self.expected_minutes(ticket), "out_of_hours": not self.settings.in_business_hours(now)})
        else:
            await self.store.write(mark)

    # -- what the patient is told ------------------------------------------------------------------

    async def queue_position(self, ticket_id: str) -> int:
        """1 + the tickets of the same department ahead in the queue (by priority, then age)."""
        ticket = await self._ticket(ticket_id)
        rank = PRIORITY_RANK.get(ticket.priority, 2)

        def q(conn: Connection) -> int:
            rows = conn.execute(sa.select(TICKET.c.id, TICKET.c.priority, TICKET.c.opened_at).where(
                TICKET.c.department == ticket.department, TICKET.c.assignee == "",
                TICKET.c.status.in_(("pending", "transferred", "escalated")))).all()
            ahead = [r for r in rows if r.id != ticket_id and
                     (PRIORITY_RANK.get(r.priority, 2), r.opened_at) < (rank, ticket.opened_at)]
            return len(ahead) + 1

        return await self.store.read(q)

    async def expected_minutes(self, ticket: Any) -> int:
        """The median first response of the department's last two weeks, else the SLA promise."""
        since = self.clock.now() - timedelta(days=14)
        rows = await self.store.read(lambda c: c.execute(sa.select(TICKET.c.opened_at, TICKET.c.first_response_at).where(
            TICKET.c.department == ticket.department, TICKET.c.opened_at >= since,
            TICKET.c.first_response_at.is_not(None))).all())
        waits = sorted((r.first_response_at - r.opened_at).total_seconds() / 60 for r in rows)
        if len(waits) >= 20:
            return max(1, round(waits[len(waits) // 2]))
        return max(1, self.settings.sla_for(ticket.priority).seconds("first_response") // 60)

    async def _tell_patient(self, conversation_id: str, payload: dict[str, Any]) -> None:
        conv = await self._conversation(conversation_id)
        now = self.clock.now()
        await self.runtime.handle(Inbound(
            kind="staff_event", address=conv["address"], message_id=f"handoff-{uuid.uuid4().hex}",
            received_at=now.astimezone(timezone.utc), payload=payload))

    # -- complaints and reviews --------------------------------------------------------------------

    async def file_complaint(self, conversation_id: str, category: str, text: str) -> int:
        categories = ("no_reply", "slow", "too_brief", "no_substance", "other")
        if category not in categories:
            category = "other"
        now = self.clock.now()

        def q(conn: Connection) -> int:
            last = conn.execute(sa.select(TICKET.c.id, TICKET.c.department, TICKET.c.assignee).where(
                TICKET.c.conversation_id == conversation_id).order_by(TICKET.c.opened_at.desc())).first()
            complaint_id = conn.execute(COMPLAINTS.insert().values(
                org="default", conversation_id=conversation_id, ticket_id=last.id if last else "",
                department=last.department if last else "", category=category, text=text, status="open",
                handled_by="", created_at=now)).inserted_primary_key[0]
            if last is not None:
                conn.execute(REVIEWS.insert().values(org="default", ticket_id=last.id, staff_id=last.assignee,
                                                     source="complaint", reasons=json.dumps([category]),
                                                     status="open", created_at=now))
            return int(complaint_id)

        complaint_id = await self.store.write(q)
        await self._publish("complaint", str(complaint_id), "", "")
        return complaint_id

    async def handle_complaint(self, complaint_id: int, staff: StaffMember) -> bool:
        """Customer service marks a complaint handled (once); audited and announced to the console."""
        if staff.role not in ("admin", "operator", "customer_service"):
            raise HandoffError("complaints are handled by customer service, operators and admins")
        now = self.clock.now()

        def q(conn: Connection) -> bool:
            done = conn.execute(COMPLAINTS.update().where(
                COMPLAINTS.c.id == complaint_id, COMPLAINTS.c.status == "open").values(
                status="handled", handled_by=staff.id)).rowcount == 1
            if done:
                conn.execute(AUDIT.insert().values(org="default", at=now, actor=f"staff:{staff.id}",
                                                   action="complaint_handled", subject=str(complaint_id), detail="{}"))
            return done

        done = await self.store.write(q)
        if done:
            await self.coord.publish("console", json.dumps({"type": "complaint_handled", "complaint": complaint_id}))
        return done

    async def may_see_conversation(self, staff: StaffMember, conversation_id: str) -> bool:
        """Staff may see a conversation's records (e.g. its photos) when they may see one of its tickets."""
        rows = await self.store.read(lambda c: c.execute(sa.select(TICKET.c.assignee, TICKET.c.department).where(
            TICKET.c.conversation_id == conversation_id)).all())
        return any(self.can_view(staff, r) for r in rows)

    async def review(self, review_id: int, reviewer: StaffMember, verdict: str, note: str = "",
                     refer_to_panel: bool = False) -> None:
        if reviewer.role not in ("admin", "operator"):
            raise HandoffError("only operators and admins review")
        if verdict not in ("ok", "needs_improvement", "unacceptable"):
            raise HandoffError("verdict is one of ok, needs_improvement, unacceptable")
        now = self.clock.now()
        await self.store.write(lambda c: c.execute(REVIEWS.update().where(REVIEWS.c.id == review_id).values(
            verdict=verdict, note=note, reviewer=reviewer.id, reviewed_at=now,
            status="panel" if refer_to_panel else "reviewed")))

    async def panel_verdict(self, review_id: int, member: StaffMember, verdict: str, note: str = "") -> None:
        if member.role != "admin":
            raise HandoffError("the expert panel's verdict is recorded by an admin")
        await self.store.write(lambda c: c.execute(REVIEWS.update().where(
            REVIEWS.c.id == review_id, REVIEWS.c.status == "panel").values(
            panel_verdict=verdict, panel_note=note, status="closed")))

    # -- helpers -------------------------------------------------------------------------------------

    def _in_team(self, staff: StaffMember, ticket: Any) -> bool:
        team = self.settings.teams.get(ticket.team) if ticket.team else None
        return team is not None and (staff.id in team.members or staff.id == team.expert)

    async def _conversation(self, conversation_id: str) -> dict[str, Any]:
        row = await self.store.read(lambda c: c.execute(sa.select(CONV).where(CONV.c.id == conversation_id)).first())
        if row is None:
            raise HandoffError(f"conversation {conversation_id} is gone")
        return {"address": Address(row.channel, row.chat_id, row.user_id, row.thread_id, row.is_group, row.org),
                "locale": row.locale, "mode": row.mode}

    async def _recent_patient_text(self, ticket_id: str) -> str:
        rows = await self.store.read(lambda c: c.execute(sa.select(TICKET_MSG.c.author, TICKET_MSG.c.body).where(
            TICKET_MSG.c.ticket_id == ticket_id).order_by(TICKET_MSG.c.id.desc()).limit(10)).all())
        texts = []
        for row in rows:  # the patient's messages since the last staff reply
            if not row.author.startswith("patient"):
                if row.author.startswith("staff:"):
                    break
                continue
            texts.append(row.body)
        return " ".join(reversed(texts))

    async def _recent_replies_elsewhere(self, staff_id: str, conversation_id: str) -> list[str]:
        rows = await self.store.read(lambda c: c.execute(
            sa.select(TICKET_MSG.c.body).select_from(TICKET_MSG.join(TICKET, TICKET.c.id == TICKET_MSG.c.ticket_id)).where(
                TICKET_MSG.c.author == f"staff:{staff_id}", TICKET.c.conversation_id != conversation_id).order_by(
                TICKET_MSG.c.id.desc()).limit(200)).scalars().all())
        return list(rows)

    @staticmethod
    def _event(conn: Connection, ticket_id: str, at: datetime, actor: str, kind: str, detail: dict[str, Any]) -> None:
        conn.execute(EVENTS.insert().values(org="default", ticket_id=ticket_id, at=at, actor=actor, kind=kind,
                                            detail=json.dumps(detail, ensure_ascii=False)))

    def _timer(self, conn: Connection, conversation_id: str, name: str, due: datetime, payload: dict[str, Any]) -> None:
        """A staff-side clock: not proactive (quiet hours and caps do not hold it), handled by
        `on_timer` rather than a flow."""
        self._cancel(conn, conversation_id, name)
        conn.execute(TIMER.insert().values(
            org="default", conversation_id=conversation_id, name=name, due_at=due, claimed_by="",
            payload=json.dumps({**payload, "name": name, "proactive": False}), status="pending",
            created_at=self.clock.now()))

    @staticmethod
    def _cancel(conn: Connection, conversation_id: str, name: str) -> None:
        conn.execute(TIMER.update().where(TIMER.c.conversation_id == conversation_id, TIMER.c.name == name,
                                          TIMER.c.status == "pending").values(status="cancelled"))

    async def _publish(self, kind: str, ticket_id: str, department: str, priority: str, staff: str = "") -> None:
        """Live updates for the console (memory or Redis pub/sub). No patient data, only ids."""
        await self.coord.publish("console", json.dumps({"type": kind, "ticket": ticket_id, "department": department,
                                                        "priority": priority, "staff": staff}))


def _secs(duration: str) -> int:
    from bot.flow.compiler import parse_duration

    return parse_duration(duration)
