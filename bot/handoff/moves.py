"""Moving a ticket: transfer (to a department or a colleague), escalation (team → expert, else the
department's backup; priority rises one step), and the end — resolved (the satisfaction survey, a
random quality sample) or abandoned. Closing cancels the ticket's clocks and returns the thread to
the bot through the runtime (`staff_event` closed)."""

from __future__ import annotations

from datetime import timezone
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection

from bot.handoff import clocks, quality, tickets
from bot.handoff.models import Review
from bot.handoff.staff import HandoffError, StaffMember, can_view
from bot.store.store import TICKET
from bot.types import Inbound

if TYPE_CHECKING:
    from bot.handoff.service import HandoffService

REVIEWS = Review.__table__


class Moves:
    def __init__(self, service: HandoffService):
        self.service = service

    async def transfer(self, ticket_id: str, staff: StaffMember, *, department: str = "", to_staff: str = "",
                       reason: str = "") -> None:
        s = self.service
        ticket = await s.checked(staff, ticket_id)
        if not department and not to_staff:
            raise HandoffError("transfer_where")
        now = s.clock.now()
        target = await s.accounts.get(to_staff) if to_staff else None
        if to_staff and target is None:
            raise HandoffError("no_staff", staff=to_staff)

        def q(conn: Connection) -> None:
            conn.execute(TICKET.update().where(TICKET.c.id == ticket_id).values(
                status="assigned" if target else "transferred", assignee=target.id if target else "",
                department=department or ticket.department, assigned_at=now if target else None))
            tickets.event(conn, ticket_id, now, staff.id, "transferred",
                          {"to_department": department, "to_staff": to_staff, "reason": reason})

        await s.store.write(q)
        await s.publish("ticket_transferred", ticket_id, department or ticket.department, ticket.priority)
        await s.tell_patient(ticket.conversation_id, {
            "event": "transferred", "ticket_id": ticket_id,
            "staff_name": target.signature if target else ""})

    async def escalate(self, ticket_id: str, actor: StaffMember | None, reason: str) -> None:
        """Team: to the expert. Otherwise to the department's backup (its pool, or whoever is on
        shift there); with no backup (emergency) it stays with whoever has it — an acknowledged
        emergency must not drop out of its doctor's inbox. Priority rises one step."""
        s = self.service
        ticket = await s.tickets.get(ticket_id)
        if actor is not None and not can_view(actor, ticket):
            raise HandoffError("other_department")
        if ticket.status not in tickets.OPEN:
            return
        now = s.clock.now()
        team = s.settings.teams.get(ticket.team) if ticket.team else None
        dept = s.settings.department(ticket.department)
        assignee, department = "", ticket.department
        if team is not None:
            assignee = team.expert
        elif dept.backup:
            department = dept.backup
            if s.settings.department(dept.backup).mode == "roster":
                assignee = await s.dispatcher.least_loaded(s.settings.roster.on_duty(dept.backup, now))
        else:
            assignee = ticket.assignee  # nowhere further to go: whoever has it keeps it
        priority = {"normal": "high", "high": "urgent"}.get(ticket.priority, ticket.priority)

        def q(conn: Connection) -> None:
            conn.execute(TICKET.update().where(TICKET.c.id == ticket_id).values(
                status="assigned" if assignee else "escalated", assignee=assignee, department=department,
                priority=priority, escalations=TICKET.c.escalations + 1, assigned_at=now if assignee else None))
            tickets.event(conn, ticket_id, now, actor.id if actor else "system", "escalated",
                          {"reason": reason, "to": assignee or department})

        await s.store.write(q)
        await s.publish("ticket_escalated", ticket_id, department, priority, assignee)

    async def close(self, ticket_id: str, staff: StaffMember, reason: str = "resolved") -> None:
        """Resolve: the patient gets the satisfaction survey and the thread returns to the bot."""
        ticket = await self.service.checked(staff, ticket_id)
        await self._finish(ticket, staff.id, "resolved", reason)

    async def abandon(self, ticket_id: str, reason: str = "patient_left") -> None:
        ticket = await self.service.tickets.get(ticket_id)
        if ticket.status in tickets.OPEN:
            await self._finish(ticket, "system", "abandoned", reason)

    async def _finish(self, ticket: Any, actor: str, status: str, reason: str) -> None:
        s = self.service
        now = s.clock.now()
        sample = status == "resolved" and quality.sampled(ticket.id, s.settings.quality.sample_rate)

        def q(conn: Connection) -> None:
            conn.execute(TICKET.update().where(TICKET.c.id == ticket.id).values(status=status, closed_at=now))
            tickets.event(conn, ticket.id, now, actor, "closed" if status == "resolved" else status, {"reason": reason})
            clocks.cancel_sla(conn, ticket.conversation_id, ticket.id)
            if sample:
                conn.execute(REVIEWS.insert().values(org="default", ticket_id=ticket.id, staff_id=ticket.assignee,
                                                     source="sample", reasons="[]", status="open", created_at=now))

        await s.store.write(q)
        await s.publish("ticket_closed", ticket.id, ticket.department, ticket.priority)
        conv = await s.tickets.conversation(ticket.conversation_id)
        await s.runtime.handle(Inbound(
            kind="staff_event", address=conv["address"], message_id=f"close-{ticket.id}",
            received_at=now.astimezone(timezone.utc), payload={"event": "closed", "ticket_id": ticket.id,
                                                               "status": status}))
