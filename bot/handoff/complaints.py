"""Complaints and the quality review queue: a patient's complaint (which also queues the last
ticket's work for review), customer service marking it handled, an operator's review and the expert
panel's verdict. The machine rules and the random sample that also feed the queue are in
`quality.py` (used by `replies.py` and `moves.py`)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy import Connection

from bot.handoff import tickets
from bot.handoff.models import Complaint, Review
from bot.handoff.staff import MANAGERS, PANEL, SEES_ALL, HandoffError, StaffMember
from bot.store.store import TICKET

if TYPE_CHECKING:
    from bot.handoff.service import HandoffService

REVIEWS = Review.__table__
COMPLAINTS = Complaint.__table__
CATEGORIES = ("no_reply", "slow", "too_brief", "no_substance", "other")
VERDICTS = ("ok", "needs_improvement", "unacceptable")


class Complaints:
    def __init__(self, service: HandoffService):
        self.service = service

    async def file(self, conversation_id: str, category: str, text: str) -> int:
        s = self.service
        if category not in CATEGORIES:
            category = "other"
        now = s.clock.now()

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

        complaint_id = await s.store.write(q)
        await s.publish("complaint", str(complaint_id), "", "")
        return complaint_id

    async def handle(self, complaint_id: int, staff: StaffMember) -> bool:
        """Customer service marks a complaint handled (once); audited and announced to the console."""
        s = self.service
        if staff.role not in SEES_ALL:
            raise HandoffError("complaints_role")
        now = s.clock.now()

        def q(conn: Connection) -> bool:
            done = conn.execute(COMPLAINTS.update().where(
                COMPLAINTS.c.id == complaint_id, COMPLAINTS.c.status == "open").values(
                status="handled", handled_by=staff.id)).rowcount == 1
            if done:
                tickets.audit(conn, now, "complaint_handled", str(complaint_id), {}, actor=f"staff:{staff.id}")
            return done

        done = await s.store.write(q)
        if done:
            await s.coord.publish("console", json.dumps({"type": "complaint_handled", "complaint": complaint_id}))
        return done

    async def review(self, review_id: int, reviewer: StaffMember, verdict: str, note: str = "",
                     refer_to_panel: bool = False) -> None:
        s = self.service
        if reviewer.role not in MANAGERS:
            raise HandoffError("review_role")
        if verdict not in VERDICTS:
            raise HandoffError("verdict_one_of", verdicts=", ".join(VERDICTS))
        now = s.clock.now()
        await s.store.write(lambda c: c.execute(REVIEWS.update().where(REVIEWS.c.id == review_id).values(
            verdict=verdict, note=note, reviewer=reviewer.id, reviewed_at=now,
            status="panel" if refer_to_panel else "reviewed")))

    async def panel_verdict(self, review_id: int, member: StaffMember, verdict: str, note: str = "") -> None:
        if member.role not in PANEL:
            raise HandoffError("panel_admin")
        await self.service.store.write(lambda c: c.execute(REVIEWS.update().where(
            REVIEWS.c.id == review_id, REVIEWS.c.status == "panel").values(
            panel_verdict=verdict, panel_note=note, status="closed")))
