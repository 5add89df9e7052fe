"""What happens when a staff-side clock comes due (`clocks.py` lists them).

Remind staff before a breach; escalate on a breach; re-offer an untaken grab ticket (to the
department's backup pool); tell a waiting patient their queue position and the reply-time promise
(`promise.py`), again and again until someone takes the ticket. A clock of a ticket no longer open is marked fired and does nothing.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection

from bot.handoff import clocks, tickets
from bot.store.store import TICKET

if TYPE_CHECKING:
    from bot.handoff.service import HandoffService
    from bot.store.store import DueTimer


class SlaClocks:
    def __init__(self, service: HandoffService):
        self.service = service

    async def on_timer(self, timer: DueTimer) -> None:
        """An `sla:` clock came due (the timer loop claimed it)."""
        s = self.service
        kind = timer.payload.get("handoff")
        ticket = await s.tickets.get(str(timer.payload.get("ticket", "")))
        now = s.clock.now()
        still_open = ticket.status in tickets.OPEN

        def mark(conn: Connection, event: str = "") -> None:
            clocks.fired(conn, timer.id, now)
            if event and still_open:
                tickets.event(conn, ticket.id, now, "system", event, {"clock": kind})

        if not still_open:
            await s.store.write(mark)
            return
        if kind in ("first_reminder", "next_reminder"):
            await s.store.write(lambda c: mark(c, "reminded"))
            await s.publish("sla_reminder", ticket.id, ticket.department, ticket.priority, ticket.assignee)
        elif kind in ("first_breach", "next_breach", "resolution_breach"):
            await s.store.write(lambda c: mark(c, "breached"))
            await s.escalate(ticket.id, None, f"sla_{kind}")
        elif kind == "reoffer" and not ticket.assignee:
            # the offer widens to the backup department: its staff see the ticket and may take it
            backup = s.settings.department(ticket.department).backup

            def reoffer(conn: Connection) -> None:
                mark(conn, "reoffered")
                if backup and still_open:
                    conn.execute(TICKET.update().where(TICKET.c.id == ticket.id).values(widened_to=backup))

            await s.store.write(reoffer)
            await s.publish("ticket_reoffered", ticket.id, ticket.department, ticket.priority, also=backup)
        elif kind == "patient_update" and not ticket.assignee:
            sla = s.settings.sla_for(ticket.priority)

            def again(conn: Connection) -> None:
                mark(conn)
                clocks.set_sla(conn, ticket.conversation_id, "waiting", ticket.id,
                               now + timedelta(seconds=sla.seconds("patient_update_every")), now)

            await s.store.write(again)
            promise = await s.promises.promise(ticket.department, ticket.priority, now)
            await s.tell_patient(ticket.conversation_id, {
                "event": "waiting", "ticket_id": ticket.id, "position": await s.tickets.queue_position(ticket.id),
                "minutes": promise.minutes, **promise.slots(now)})
        else:
            await s.store.write(mark)
