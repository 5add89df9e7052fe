"""The conversation with the patient while a person has the thread: replies, notes, the patient's
messages and the next-response clock.

A reply is named with the doctor's name and title (and the team's name), checked by the machine
quality rules (`quality.py`; a flagged reply still goes out and lands in the review queue), and
re-enters the runtime as an `Inbound(kind="staff_reply")` so it is ordered with the patient's own
messages and delivered by the outbox.
"""

from __future__ import annotations

import json
import uuid
from datetime import timedelta, timezone
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy import Connection

from bot.flow.compiler import parse_duration
from bot.handoff import clocks, quality, tickets
from bot.handoff.models import Review
from bot.handoff.staff import HandoffError, StaffMember
from bot.store.store import TICKET, TICKET_MSG
from bot.types import Inbound

if TYPE_CHECKING:
    from bot.handoff.service import HandoffService

REVIEWS = Review.__table__


class Replies:
    def __init__(self, service: HandoffService):
        self.service = service

    async def reply(self, ticket_id: str, staff: StaffMember, text: str = "", *, canned: str = "",
                    via: str = "") -> list[str]:
        """Send a reply to the patient, named with the doctor's name and title. Returns the quality
        flags the machine rules raised (the reply is sent regardless). `via` names the staff channel
        it was written in when not the console (e.g. "telegram"), so that channel does not echo it."""
        s = self.service
        ticket = await s.checked(staff, ticket_id)
        if ticket.assignee and ticket.assignee != staff.id and not s.in_team(staff, ticket):
            raise HandoffError("taken_by_other")
        conv = await s.tickets.conversation(ticket.conversation_id)
        if canned:
            texts = s.settings.canned.get(canned)
            if not texts:
                raise HandoffError("no_canned", canned=canned, known=", ".join(sorted(s.settings.canned)))
            text = texts.get(conv["locale"]) or next(iter(texts.values()))
        text = text.strip()
        if not text:
            raise HandoffError("empty_reply")
        now = s.clock.now()
        question = await self._recent_patient_text(ticket_id)
        others = await self._recent_replies_elsewhere(staff.id, ticket.conversation_id)
        waited = now - ticket.last_patient_at if ticket.last_patient_at else None
        flags = quality.check_reply(s.settings.quality, text, question, others, waited,
                                    timedelta(seconds=parse_duration(s.settings.quality.slow_reply)))

        def q(conn: Connection) -> None:
            values: dict[str, Any] = dict(last_staff_at=now, next_response_due=None)
            if ticket.first_response_at is None:
                values["first_response_at"] = now
            if not ticket.assignee:
                values.update(assignee=staff.id, assigned_at=now, status="assigned")
            conn.execute(TICKET.update().where(TICKET.c.id == ticket_id).values(**values))
            message = conn.execute(TICKET_MSG.insert().values(
                org="default", ticket_id=ticket_id, author=f"staff:{staff.id}", body=text, media="",
                at=now)).inserted_primary_key[0]
            tickets.event(conn, ticket_id, now, staff.id, "replied", {"canned": canned, "flags": flags,
                                                                      "message": message, "via": via})
            clocks.cancel_sla(conn, ticket.conversation_id, ticket_id, clocks.ANSWERED)
            if flags:
                conn.execute(REVIEWS.insert().values(org="default", ticket_id=ticket_id, staff_id=staff.id,
                                                     source="machine", reasons=json.dumps(flags), status="open",
                                                     created_at=now))

        await s.store.write(q)
        await s.publish("ticket_replied", ticket_id, ticket.department, ticket.priority, staff.id)
        name = staff.signature
        team = s.settings.teams.get(ticket.team) if ticket.team else None
        if team is not None:
            name = f"{name} · {team.name.get(conv['locale']) or ticket.team}"
        await s.runtime.handle(Inbound(
            kind="staff_reply", address=conv["address"], message_id=f"staff-{uuid.uuid4().hex}",
            received_at=now.astimezone(timezone.utc), text=text,
            payload={"staff_id": staff.id, "staff_name": name, "ticket_id": ticket_id}))
        return flags

    async def note(self, ticket_id: str, staff: StaffMember, text: str, *, via: str = "") -> None:
        """An internal note: for the care team only, never sent to the patient."""
        s = self.service
        ticket = await s.checked(staff, ticket_id, open_only=False)
        now = s.clock.now()

        def q(conn: Connection) -> None:
            message = conn.execute(TICKET_MSG.insert().values(
                org="default", ticket_id=ticket_id, author=f"note:{staff.id}", body=text.strip(), media="",
                at=now)).inserted_primary_key[0]
            tickets.event(conn, ticket_id, now, staff.id, "noted", {"message": message, "via": via})

        await s.store.write(q)
        await s.publish("ticket_noted", ticket_id, ticket.department, ticket.priority, staff.id)

    async def on_patient_message(self, ticket_id: str) -> None:
        """The patient wrote while a human has the thread: start the next-response clock."""
        s = self.service
        ticket = await s.tickets.get(ticket_id)
        if ticket.status not in tickets.OPEN:
            return
        now = s.clock.now()
        sla = s.settings.sla_for(ticket.priority)
        due = now + timedelta(seconds=sla.seconds("next_response"))

        def q(conn: Connection) -> None:
            values: dict[str, Any] = {"last_patient_at": now}
            if ticket.first_response_at is not None and ticket.next_response_due is None:
                values["next_response_due"] = due
                conv = ticket.conversation_id
                clocks.set_sla(conn, conv, "next", ticket_id, due - timedelta(seconds=sla.seconds("remind_before")), now)
                clocks.set_sla(conn, conv, "next_breach", ticket_id, due, now)
            conn.execute(TICKET.update().where(TICKET.c.id == ticket_id).values(**values))

        await s.store.write(q)
        await s.publish("patient_message", ticket_id, ticket.department, ticket.priority)

    async def _recent_patient_text(self, ticket_id: str) -> str:
        rows = await self.service.store.read(lambda c: c.execute(sa.select(TICKET_MSG.c.author, TICKET_MSG.c.body).where(
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
        rows = await self.service.store.read(lambda c: c.execute(
            sa.select(TICKET_MSG.c.body).select_from(TICKET_MSG.join(TICKET, TICKET.c.id == TICKET_MSG.c.ticket_id)).where(
                TICKET_MSG.c.author == f"staff:{staff_id}", TICKET.c.conversation_id != conversation_id).order_by(
                TICKET_MSG.c.id.desc()).limit(200)).scalars().all())
        return list(rows)
