"""The `ticket` and `ticket_event` tables' rules: statuses, the queue, the history.

    pending ──► assigned ──► resolved | abandoned        (transferred, escalated: open, re-routed)

A ticket is *open* in any of `OPEN`; it is *queued* (waiting for someone to take it) when open
and without an assignee in one of `QUEUED`. Every change a person or the system makes is a
`ticket_event` row written in the change's own transaction.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy import Connection

from bot.handoff.models import TicketEvent
from bot.handoff.staff import HandoffError
from bot.logs import event as log_event
from bot.store.store import AUDIT, CONV, TICKET
from bot.types import Address

if TYPE_CHECKING:
    from bot.store.store import Store

log = logging.getLogger("carebot.handoff")
EVENTS = TicketEvent.__table__
OPEN = ("pending", "assigned", "transferred", "escalated")
QUEUED = ("pending", "transferred", "escalated")  # open statuses a taker may still take
PRIORITY_RANK = {"urgent": 0, "high": 1, "normal": 2}


def event(conn: Connection, ticket_id: str, at: datetime, actor: str, kind: str, detail: dict[str, Any]) -> None:
    """Append to the ticket's history (in the caller's transaction), and log it: ids and kinds only."""
    conn.execute(EVENTS.insert().values(org="default", ticket_id=ticket_id, at=at, actor=actor, kind=kind,
                                        detail=json.dumps(detail, ensure_ascii=False)))
    name, level = LOGGED_AS.get(kind, ("ticket", logging.INFO))
    fields = {k: detail[k] for k in LOGGED_DETAIL if isinstance(detail.get(k), (str, int, float, list))}
    log_event(log, name, level=level, ticket=ticket_id, kind=kind, actor=actor, **fields)


# how ticket events show in the log (bot/logs.py): SLA breaches and pages are what an operator alerts on
LOGGED_AS = {"breached": ("sla_breach", logging.WARNING), "paged": ("page", logging.WARNING),
             "page_delivered": ("page", logging.INFO), "page_unanswered": ("page", logging.WARNING),
             "page_ladder_exhausted": ("page", logging.ERROR), "acknowledged": ("page", logging.INFO),
             "rerouted": ("emergency", logging.WARNING)}
LOGGED_DETAIL = ("clock", "rung", "who", "channel", "channels", "seconds", "to", "department", "priority", "canned")


def audit(conn: Connection, at: datetime, action: str, subject: str, detail: dict[str, Any],
          actor: str = "system") -> None:
    """Append to the audit log (in the caller's transaction)."""
    conn.execute(AUDIT.insert().values(org="default", at=at, actor=actor, action=action, subject=subject,
                                       detail=json.dumps(detail, ensure_ascii=False)))


class Tickets:
    def __init__(self, store: Store):
        self.store = store

    async def get(self, ticket_id: str) -> Any:
        row = await self.store.read(lambda c: c.execute(sa.select(TICKET).where(TICKET.c.id == ticket_id)).first())
        if row is None:
            raise HandoffError("no_ticket", ticket=ticket_id)
        return row

    async def undispatched(self) -> list[str]:
        return list(await self.store.read(lambda c: c.execute(sa.select(TICKET.c.id).where(
            TICKET.c.mode == "", TICKET.c.status == "pending")).scalars().all()))

    async def open_load(self, staff_ids: list[str]) -> dict[str, int]:
        """How many open tickets each of these staff members holds."""
        rows = await self.store.read(lambda c: c.execute(sa.select(TICKET.c.assignee, sa.func.count()).where(
            TICKET.c.assignee.in_(staff_ids), TICKET.c.status.in_(OPEN)).group_by(TICKET.c.assignee)).all())
        return {r[0]: r[1] for r in rows}

    async def queue_position(self, ticket_id: str) -> int:
        """1 + the tickets of the same department ahead in the queue (by priority, then age)."""
        ticket = await self.get(ticket_id)
        rank = PRIORITY_RANK.get(ticket.priority, 2)

        def q(conn: Connection) -> int:
            rows = conn.execute(sa.select(TICKET.c.id, TICKET.c.priority, TICKET.c.opened_at).where(
                TICKET.c.department == ticket.department, TICKET.c.assignee == "",
                TICKET.c.status.in_(QUEUED))).all()
            ahead = [r for r in rows if r.id != ticket_id and
                     (PRIORITY_RANK.get(r.priority, 2), r.opened_at) < (rank, ticket.opened_at)]
            return len(ahead) + 1

        return await self.store.read(q)

    async def first_responses_since(self, department: str, since: datetime) -> list[float]:
        """Minutes from opening to the first staff reply, for the department's tickets since then."""
        rows = await self.store.read(lambda c: c.execute(sa.select(TICKET.c.opened_at, TICKET.c.first_response_at).where(
            TICKET.c.department == department, TICKET.c.opened_at >= since,
            TICKET.c.first_response_at.is_not(None))).all())
        return sorted((r.first_response_at - r.opened_at).total_seconds() / 60 for r in rows)

    async def conversation(self, conversation_id: str) -> dict[str, Any]:
        """The address, locale and mode of a ticket's conversation."""
        row = await self.store.read(lambda c: c.execute(sa.select(CONV).where(CONV.c.id == conversation_id)).first())
        if row is None:
            raise HandoffError("conversation_gone", conversation=conversation_id)
        return {"address": Address(row.channel, row.chat_id, row.user_id, row.thread_id, row.is_group, row.org),
                "locale": row.locale, "mode": row.mode}

    async def history(self, ticket_id: str, kind: str) -> list[dict[str, Any]]:
        """The details of the ticket's events of one kind, oldest first."""
        rows = await self.store.read(lambda c: c.execute(sa.select(EVENTS.c.detail).where(
            EVENTS.c.ticket_id == ticket_id, EVENTS.c.kind == kind).order_by(EVENTS.c.id)).scalars().all())
        return [json.loads(d) for d in rows]
