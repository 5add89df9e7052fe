"""The hand-off service: a ticket's life from the moment a flow (or triage) hands the patient over.

    bot ──open──► pending ──take / roster / team──► assigned ──close──► resolved ──survey──► bot
                     │  ▲                               │
                     │  └──────── transferred ◄─────────┤  escalated (SLA breach, team → expert)
                     └── abandoned (patient gave up)    │

`HandoffService` is the one object the rest of carebot uses (the runtime's `after_commit` hook, the
console, the care actions, the transcript runner); it is a facade over parts a reader can hold:

    records  staff.py (accounts, roles, who may see what) · tickets.py (statuses, queue, history)
             · clocks.py (the staff-side timer rows and their rules)
    work     dispatch.py (grab / roster / team, take) · replies.py (replies, notes, the patient's
             messages) · moves.py (transfer, escalate, close) · sla.py (clocks coming due, wait
             estimates) · complaints.py (complaints, reviews) · paging.py (emergencies, on call)

Everything a patient must see goes back through the runtime as an `Inbound(kind="staff_event")`
or `"staff_reply"` for that conversation, so it is ordered with the patient's own messages and
delivered by the outbox like any other message (`relay.py` turns it into messages).
"""

from __future__ import annotations

import json
import logging
import uuid
from datetime import timezone
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from bot.handoff.complaints import Complaints
from bot.handoff.config import HandoffSettings
from bot.handoff.dispatch import Dispatch
from bot.handoff.moves import Moves
from bot.handoff.promise import ReplyPromises
from bot.handoff.replies import Replies
from bot.handoff.sla import SlaClocks
from bot.handoff.logins import StaffLogins
from bot.handoff.staff import HandoffError, StaffAccounts, StaffMember, can_view
from bot.handoff.tickets import OPEN, Tickets
from bot.logs import event as log_event
from bot.tasks import Background
from bot.store.store import TICKET, Store, TurnCommit
from bot.types import Inbound, OpenTicket, UpdateTicket

if TYPE_CHECKING:
    from bot.care.config import ReplyTime
    from bot.clock import Clock
    from bot.coord import Coord
    from bot.handoff.paging import Paging
    from bot.runtime.runtime import Runtime

log = logging.getLogger("carebot.handoff")


class HandoffService:
    def __init__(self, settings: HandoffSettings, store: Store, runtime: Runtime, coord: Coord, clock: Clock,
                 reply_time: ReplyTime | None = None):
        self.settings = settings
        self.store = store
        self.runtime = runtime
        self.coord = coord
        self.clock = clock
        self.background = Background("hand-off")
        self.paging: Paging | None = None  # emergency paging (bot/handoff/paging.py), set by CareBot.build
        self.accounts = StaffAccounts(store, clock)
        self.logins = StaffLogins(store)  # console logouts and sign-in throttling (bot/handoff/logins.py)
        self.tickets = Tickets(store)
        self.dispatcher = Dispatch(self)
        self.replies = Replies(self)
        self.moves = Moves(self)
        self.clocks = SlaClocks(self)
        self.complaints = Complaints(self)
        self.promises = ReplyPromises(self, reply_time)  # when a patient is told a doctor replies
        # the public API, by concern
        self.add_staff, self.authenticate = self.accounts.add, self.accounts.authenticate
        self.staff, self.all_staff = self.accounts.get, self.accounts.active
        self.dispatch, self.take, self.sweep_undispatched = self.dispatcher.dispatch, self.dispatcher.take, \
            self.dispatcher.sweep
        self.reply, self.note, self.on_patient_message = self.replies.reply, self.replies.note, \
            self.replies.on_patient_message
        self.transfer, self.escalate = self.moves.transfer, self.moves.escalate
        self.close, self.abandon = self.moves.close, self.moves.abandon
        self.queue_position = self.tickets.queue_position
        self.file_complaint, self.handle_complaint = self.complaints.file, self.complaints.handle
        self.review, self.panel_verdict = self.complaints.review, self.complaints.panel_verdict

    can_view = staticmethod(can_view)

    # -- following the runtime ---------------------------------------------------------------------

    def after_commit(self, commit: TurnCommit) -> None:
        """A turn opened a ticket, or the patient wrote to an open one: act on it after the commit,
        on a task of its own (the turn's conversation is still locked)."""
        for i, effect in enumerate(commit.effects):
            if isinstance(effect, OpenTicket):
                log_event(log, "emergency" if effect.reason == "red_flag" else "ticket",
                          level=logging.WARNING if effect.reason == "red_flag" else logging.INFO,
                          ticket=commit.ticket_ids[i], kind="opened", reason=effect.reason,
                          department=effect.department, priority=effect.priority,
                          channel=commit.address.channel)
                self.spawn(self._opened(commit.ticket_ids[i], effect.reason))
            elif isinstance(effect, UpdateTicket) and (effect.message or effect.media) and commit.current_ticket:
                self.spawn(self.on_patient_message(commit.current_ticket))
            if isinstance(effect, UpdateTicket) and effect.priority == "urgent" and commit.current_ticket \
                    and self.paging is not None:  # an emergency inside an open ticket: on-call, urgent clocks
                self.spawn(self.paging.reroute(commit.current_ticket))

    async def _opened(self, ticket_id: str, reason: str) -> None:
        await self.dispatch(ticket_id)
        if reason == "red_flag" and self.paging is not None:
            await self.paging.start(ticket_id)

    def spawn(self, coro: Any) -> None:
        """Run hand-off work on a task of its own; `idle` waits for it."""
        self.background.spawn(coro)

    @property
    def busy(self) -> bool:
        return self.background.busy

    async def idle(self) -> None:
        """Wait for the work `after_commit` started (tests, shutdown)."""
        await self.background.idle()

    # -- shared by the parts -------------------------------------------------------------------------

    async def checked(self, staff: StaffMember, ticket_id: str, *, open_only: bool = True) -> Any:
        """The ticket, if this staff member may act on it."""
        ticket = await self.tickets.get(ticket_id)
        if not can_view(staff, ticket):
            raise HandoffError("other_department")
        if open_only and ticket.status not in OPEN:
            raise HandoffError("ticket_status", status=ticket.status)
        return ticket

    def in_team(self, staff: StaffMember, ticket: Any) -> bool:
        team = self.settings.teams.get(ticket.team) if ticket.team else None
        return team is not None and (staff.id in team.members or staff.id == team.expert)

    async def may_see_conversation(self, staff: StaffMember, conversation_id: str) -> bool:
        """Staff may see a conversation's records (e.g. its photos) when they may see one of its tickets."""
        rows = await self.store.read(lambda c: c.execute(sa.select(TICKET.c.assignee, TICKET.c.department).where(
            TICKET.c.conversation_id == conversation_id)).all())
        return any(can_view(staff, r) for r in rows)

    async def tell_patient(self, conversation_id: str, payload: dict[str, Any]) -> None:
        """Ticket news for the patient, as a `staff_event` through the runtime (the relay words it)."""
        conv = await self.tickets.conversation(conversation_id)
        now = self.clock.now()
        await self.runtime.handle(Inbound(
            kind="staff_event", address=conv["address"], message_id=f"handoff-{uuid.uuid4().hex}",
            received_at=now.astimezone(timezone.utc), payload=payload))

    async def publish(self, kind: str, ticket_id: str, department: str, priority: str, staff: str = "",
                      also: str = "") -> None:
        """Live updates for the console (memory or Redis pub/sub). No patient data, only ids. `also`: a
        second department whose staff are concerned (the one a ticket was widened to)."""
        await self.coord.publish("console", json.dumps({"type": kind, "ticket": ticket_id, "department": department,
                                                        "priority": priority, "staff": staff, "also": also}))
