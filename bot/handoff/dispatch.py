"""Routing a newly opened ticket, and taking one (抢单).

- grab: offered to the department's pool; the first `take` wins (one conditional UPDATE … WHERE
  assignee = '', exactly one taker across processes); re-offered when nobody takes it in time;
- roster: the least-loaded active doctor on shift (`roster.shifts`, in the roster's time zone);
- team: the least-loaded member of the department's expert team.

Dispatch is idempotent (`WHERE mode = ''`): the first call wins, and `sweep` at start-up catches a
ticket whose process died before dispatching it.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection

from bot.flow.compiler import parse_duration
from bot.handoff import clocks, tickets
from bot.handoff.staff import StaffMember
from bot.store.store import TICKET

if TYPE_CHECKING:
    from bot.handoff.service import HandoffService


class Dispatch:
    def __init__(self, service: HandoffService):
        self.service = service

    async def dispatch(self, ticket_id: str) -> str:
        """Route a newly opened ticket: grab (offer to the pool), roster (the least-loaded doctor on
        shift) or team (the patient's care team). Idempotent: only the first call dispatches."""
        s = self.service
        ticket = await s.tickets.get(ticket_id)
        dept = s.settings.department(ticket.department)
        now = s.clock.now()
        sla = s.settings.sla_for(ticket.priority)
        assignee, team = "", ""
        widened = s.settings.widened_at_dispatch(ticket.department)
        if dept.mode == "roster":
            assignee = await self.least_loaded(s.settings.roster.on_duty(ticket.department, now))
        elif dept.mode == "team":
            team = dept.team or ticket.department
            members = s.settings.teams.get(team)
            assignee = await self.least_loaded(list(members.members)) if members else ""
        # the staff clocks start when the department opens, as the patient was told ("after the clinic opens
        # at 08:00"): a normal ticket opened at night is not breached and escalated before anyone is there
        start = now
        if ticket.priority != "urgent" and ticket.reason != "red_flag":
            open_at = await s.promises.opening_rule(ticket.department)
            if not open_at(now):
                start = s.promises.opens_at(open_at, now) or now
        first_due = start + timedelta(seconds=sla.seconds("first_response"))
        resolution_due = ticket.opened_at + (start - now) + timedelta(seconds=sla.seconds("resolution"))

        def q(conn: Connection) -> bool:
            values: dict[str, Any] = dict(mode=dept.mode, team=team, first_response_due=first_due,
                                          resolution_due=resolution_due, widened_to=widened)
            if assignee:
                values.update(status="assigned", assignee=assignee, assigned_at=now)
            done = conn.execute(TICKET.update().where(TICKET.c.id == ticket_id, TICKET.c.mode == "").values(**values))
            if done.rowcount != 1:
                return False  # another worker dispatched it
            tickets.event(conn, ticket_id, now, "system", "assigned" if assignee else "offered",
                          {"mode": dept.mode, "assignee": assignee, "team": team, "department": ticket.department,
                           **({"widened_to": widened} if widened else {})})
            conv = ticket.conversation_id
            clocks.start_response_clocks(conn, conv, ticket_id, sla, first_due, resolution_due, now)
            if not assignee and ticket.reason != "red_flag":
                clocks.set_sla(conn, conv, "waiting", ticket_id,
                               now + timedelta(seconds=sla.seconds("patient_update_every")), now)
                if dept.mode == "grab":
                    clocks.set_sla(conn, conv, "offer", ticket_id, now + timedelta(seconds=parse_duration(dept.offer_timeout)),
                                   now)
            return True

        if not await s.store.write(q):
            return "already dispatched"
        await s.publish("ticket_opened", ticket_id, ticket.department, ticket.priority, also=widened)
        position = await s.tickets.queue_position(ticket_id) if not assignee else 0
        promise = await s.promises.promise(ticket.department, ticket.priority, now)
        event: dict[str, Any] = {"event": "assigned" if assignee else "queued", "ticket_id": ticket_id,
                                 "position": position, "minutes": promise.minutes, **promise.slots(now)}
        if assignee:
            member = await s.accounts.get(assignee)
            event["staff_name"] = member.signature if member else assignee
        if ticket.reason != "red_flag":  # an emergency was told to call 120, not to wait for us
            await s.tell_patient(ticket.conversation_id, event)
        return "assigned" if assignee else "offered"

    async def sweep(self) -> int:
        """Dispatch tickets whose opening turn committed but whose process died before dispatch."""
        ids = await self.service.tickets.undispatched()
        for ticket_id in ids:
            await self.dispatch(ticket_id)
        return len(ids)

    async def least_loaded(self, candidates: list[str]) -> str:
        """The candidate (an active account) with the fewest open tickets; ties go to roster order."""
        if not candidates:
            return ""
        active = await self.service.accounts.active_among(candidates)
        candidates = [c for c in candidates if c in active]
        if not candidates:
            return ""
        load = await self.service.tickets.open_load(candidates)
        return min(candidates, key=lambda s: (load.get(s, 0), candidates.index(s)))

    async def take(self, ticket_id: str, staff: StaffMember) -> bool:
        """Grab (抢单): the first to take a queued ticket wins; everyone else gets False."""
        s = self.service
        ticket = await s.checked(staff, ticket_id)
        now = s.clock.now()

        def q(conn: Connection) -> bool:
            done = conn.execute(TICKET.update().where(
                TICKET.c.id == ticket_id, TICKET.c.assignee == "", TICKET.c.status.in_(tickets.QUEUED)).values(
                status="assigned", assignee=staff.id, assigned_at=now))
            if done.rowcount != 1:
                return False
            tickets.event(conn, ticket_id, now, staff.id, "taken", {})
            clocks.cancel_sla(conn, ticket.conversation_id, ticket_id, clocks.TAKEN)
            # taking an emergency whose page is still open answers the page: the ladder stops and the
            # alert leaves every console (before, only the separate Acknowledge did)
            if conn.execute(TICKET.update().where(
                    TICKET.c.id == ticket_id, TICKET.c.acknowledged_by == "",
                    TICKET.c.paging.in_(("paging", "delivered", "unreachable"))).values(
                    acknowledged_by=staff.id, acknowledged_at=now, paging="acknowledged")).rowcount == 1:
                detail = {"by": "taking", "seconds": int((now - ticket.opened_at).total_seconds())}
                tickets.event(conn, ticket_id, now, staff.id, "acknowledged", detail)
                tickets.audit(conn, now, "page_acknowledged", ticket_id, detail, actor=f"staff:{staff.id}")
                clocks.cancel(conn, ticket.conversation_id, clocks.ladder_name(ticket_id))
                paged.append(True)
            return True

        paged: list[bool] = []
        won = await s.store.write(q)
        if won and paged:
            await s.publish("page_acknowledged", ticket_id, ticket.department, ticket.priority, staff.id)
        if won:
            await s.publish("ticket_taken", ticket_id, ticket.department, ticket.priority, staff.id)
            await s.tell_patient(ticket.conversation_id, {"event": "assigned", "ticket_id": ticket_id,
                                                          "staff_name": staff.signature})
        return won
