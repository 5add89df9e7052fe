"""What the console's pages show, read from the store: inbox rows, a thread, a patient, the queues,
the audit log. Reads only; every change goes through `HandoffService` (or, for complaints, the one
update in `routes`)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection

from adapters.console import transcript
from bot.handoff.models import Complaint, Review, Staff, TicketEvent
from bot.handoff.paging import emergency_words
from bot.handoff.staff import SEES_ALL, StaffMember
from bot.handoff.tickets import OPEN, PRIORITY_RANK
from bot.store.store import AUDIT, CONV, EVENT, TICKET, TICKET_MSG

STAFF = Staff.__table__
EVENTS = TicketEvent.__table__
REVIEWS = Review.__table__
COMPLAINTS = Complaint.__table__
DUE_SOON = timedelta(minutes=15)
SLA_STATES = ("breached", "due_soon", "ok")


@dataclass(frozen=True)
class Clock:
    """One SLA clock of a ticket: when it is due and where it stands."""

    name: str  # first_response | next_response | resolution
    due: datetime
    state: str  # met | breached | due_soon | ok


@dataclass
class InboxRow:
    ticket: Any
    clocks: list[Clock]
    patient: str = ""  # how the patient is named on the row (see `patient_label`)
    preview: str = ""  # the complaint, shortened
    unread: int = 0  # the patient's messages since staff last wrote
    age_sex: tuple[str, str] = ("", "")

    @property
    def waiting_since(self) -> datetime | None:
        """Since when the patient waits for a person: their last message after staff last wrote,
        else the opening; None once staff answered and the patient has not written since."""
        t = self.ticket
        if t.status not in OPEN:
            return None
        if t.last_staff_at is None:
            return t.opened_at
        if t.last_patient_at is not None and t.last_patient_at > t.last_staff_at:
            return t.last_patient_at
        return None

    @property
    def sla(self) -> str:
        """The worst pending clock: breached, due_soon or ok."""
        states = [c.state for c in self.clocks]
        return next((s for s in SLA_STATES if s in states), "ok")

    @property
    def next_due(self) -> datetime | None:
        pending = [c.due for c in self.clocks if c.state not in ("met", "ended")]
        return min(pending) if pending else None


@dataclass
class Thread:
    ticket: Any
    summary: dict[str, Any]
    messages: list[Any]
    events: list[Any]
    conversation: Any
    state: dict[str, Any]
    clocks: list[Clock]


def clocks(ticket: Any, now: datetime) -> list[Clock]:
    out = []
    is_open = ticket.status in OPEN
    first_done = ticket.first_response_at
    for name, due, done in (("first_response", ticket.first_response_due, first_done),
                            ("next_response", ticket.next_response_due, None),
                            ("resolution", ticket.resolution_due, ticket.closed_at)):
        if due is None:
            continue
        if name == "resolution" and ticket.status == "abandoned":
            state = "ended"  # the patient left or withdrew: nothing was resolved, nor breached
        elif done is not None:
            state = "met" if done <= due else "breached"
        elif not is_open:
            continue
        elif due <= now:
            state = "breached"
        else:
            state = "due_soon" if due - now <= DUE_SOON else "ok"
        out.append(Clock(name, due, state))
    return out


def visible(staff: StaffMember) -> Any:
    """The SQL twin of `bot.handoff.staff.can_view`."""
    if staff.role in SEES_ALL:
        return sa.true()
    mine = list(staff.departments)
    return sa.or_(TICKET.c.department.in_(mine), TICKET.c.widened_to.in_(mine), TICKET.c.assignee == staff.id)


PREVIEW = 60


def inbox(conn: Connection, staff: StaffMember, now: datetime, *, department: str = "", priority: str = "",
          sla: str = "", status: str = "open", mine: bool = False, waiting: bool = False,
          limit: int = 300) -> list[InboxRow]:
    query = sa.select(TICKET).where(visible(staff))
    if status == "open":
        query = query.where(TICKET.c.status.in_(OPEN))
    elif status == "closed":
        query = query.where(TICKET.c.status.not_in(OPEN))
    if department:
        query = query.where(TICKET.c.department == department)
    if priority:
        query = query.where(TICKET.c.priority == priority)
    if mine:
        query = query.where(TICKET.c.assignee == staff.id)
    query = query.order_by(TICKET.c.opened_at.desc()).limit(limit)
    tickets = conn.execute(query).all()
    unread = _unread(conn, [t.id for t in tickets])
    first = first_words(conn, [t.id for t in tickets])
    rows = []
    for t in tickets:
        summary = _json(t.summary)
        slots = summary.get("slots") if isinstance(summary.get("slots"), dict) else {}
        words = summary.get("patient_words") or []
        # an emergency is what raised it, in the patient's words: never an earlier complaint from the intake
        # slots (a sore ankle withdrawn before the chest pain)
        complaint = emergency_words(summary, PREVIEW) if t.reason == "red_flag" and words else \
            str(slots.get("complaint") or (words[0] if words else "") or first.get(t.id, ""))
        preview = complaint if len(complaint) <= PREVIEW else complaint[:PREVIEW - 1] + "…"
        rows.append(InboxRow(t, clocks(t, now), patient_label(t.conversation_id, slots), preview,
                             unread.get(t.id, 0), (str(slots.get("sex") or ""), str(slots.get("age") or ""))))
    if sla:
        rows = [r for r in rows if r.sla == sla]
    if waiting:
        rows = [r for r in rows if r.waiting_since is not None]
    # the most urgent first: priority, then whatever is due soonest, then the oldest
    far = now + timedelta(days=3650)
    rows.sort(key=lambda r: (r.ticket.status not in OPEN, PRIORITY_RANK.get(r.ticket.priority, 2),
                             r.next_due or far, r.ticket.opened_at))
    return rows


def patient_label(conversation_id: str, slots: dict[str, Any]) -> str:
    """The name the patient gave (`display_name`/`patient_name` slots), else a short stable tag
    from the conversation id, so a doctor can tell two rows apart without a name."""
    for name in ("display_name", "patient_name"):
        if slots.get(name):
            return str(slots[name])[:40]
    return "#" + hashlib.blake2s(conversation_id.encode(), digest_size=3).hexdigest()


def first_words(conn: Connection, ticket_ids: list[str]) -> dict[str, str]:
    """Per ticket: the patient's first message on it (the row's preview when the hand-off had no complaint)."""
    if not ticket_ids:
        return {}
    first = (sa.select(TICKET_MSG.c.ticket_id, sa.func.min(TICKET_MSG.c.id).label("id"))
             .where(TICKET_MSG.c.ticket_id.in_(ticket_ids), TICKET_MSG.c.author == "patient", TICKET_MSG.c.body != "")
             .group_by(TICKET_MSG.c.ticket_id).subquery())
    rows = conn.execute(sa.select(TICKET_MSG.c.ticket_id, TICKET_MSG.c.body).join(
        first, TICKET_MSG.c.id == first.c.id)).all()
    return {r.ticket_id: r.body for r in rows}


def _unread(conn: Connection, ticket_ids: list[str]) -> dict[str, int]:
    """Per ticket: the patient's messages since staff last wrote (all of them when nobody has)."""
    if not ticket_ids:
        return {}
    since = sa.or_(sa.and_(TICKET.c.last_staff_at.is_(None), TICKET_MSG.c.at >= TICKET.c.opened_at),
                   TICKET_MSG.c.at > TICKET.c.last_staff_at)
    query = (sa.select(TICKET_MSG.c.ticket_id, sa.func.count()).select_from(
        TICKET_MSG.join(TICKET, TICKET.c.id == TICKET_MSG.c.ticket_id)).where(
        TICKET_MSG.c.ticket_id.in_(ticket_ids), TICKET_MSG.c.author == "patient", since)
        .group_by(TICKET_MSG.c.ticket_id))
    return {r[0]: r[1] for r in conn.execute(query).all()}


def ticket(conn: Connection, ticket_id: str) -> Any:
    return conn.execute(sa.select(TICKET).where(TICKET.c.id == ticket_id)).first()


def thread(conn: Connection, ticket_row: Any, now: datetime) -> Thread:
    messages = transcript.episode(conn, ticket_row, now)
    events = conn.execute(sa.select(EVENTS).where(EVENTS.c.ticket_id == ticket_row.id).order_by(EVENTS.c.id)).all()
    conversation = conn.execute(sa.select(CONV).where(CONV.c.id == ticket_row.conversation_id)).first()
    state = json.loads(conversation.state) if conversation else {}
    return Thread(ticket_row, _json(ticket_row.summary), messages, list(events), conversation, state,
                  clocks(ticket_row, now))


@dataclass
class Patient:
    conversation: Any
    state: dict[str, Any]
    tickets: list[Any]
    records: list[dict[str, Any]]  # consent, survey, triage, tag … newest first

    @property
    def consents(self) -> list[dict[str, Any]]:
        return [r for r in self.records if r["kind"] in ("consent", "consent_revoked")]


def patient(conn: Connection, conversation_id: str) -> Patient | None:
    conversation = conn.execute(sa.select(CONV).where(CONV.c.id == conversation_id)).first()
    if conversation is None:
        return None
    tickets = conn.execute(sa.select(TICKET).where(TICKET.c.conversation_id == conversation_id).order_by(
        TICKET.c.opened_at.desc())).all()
    records = conn.execute(sa.select(EVENT).where(EVENT.c.conversation_id == conversation_id).order_by(
        EVENT.c.id.desc()).limit(200)).all()
    return Patient(conversation, json.loads(conversation.state), list(tickets),
                   [{"kind": r.kind, "at": r.at, "data": _json(r.data)} for r in records])


def reviews(conn: Connection, status: str) -> list[Any]:
    return list(conn.execute(sa.select(REVIEWS).where(REVIEWS.c.status == status).order_by(
        REVIEWS.c.created_at.desc()).limit(300)).all())


def complaints(conn: Connection, status: str) -> list[Any]:
    return list(conn.execute(sa.select(COMPLAINTS).where(COMPLAINTS.c.status == status).order_by(
        COMPLAINTS.c.created_at.desc()).limit(300)).all())


def audit(conn: Connection, *, actor: str = "", action: str = "", subject: str = "", before: int = 0,
          limit: int = 200) -> list[Any]:
    query = sa.select(AUDIT)
    if actor:
        query = query.where(AUDIT.c.actor == actor)
    if action:
        query = query.where(AUDIT.c.action == action)
    if subject:
        query = query.where(AUDIT.c.subject == subject)
    if before:
        query = query.where(AUDIT.c.id < before)
    return list(conn.execute(query.order_by(AUDIT.c.id.desc()).limit(limit)).all())


def active_staff(conn: Connection, staff_id: str) -> StaffMember | None:
    row = conn.execute(sa.select(STAFF).where(STAFF.c.id == staff_id, STAFF.c.active.is_(True))).first()
    return StaffMember.from_row(row) if row else None


def _json(text: str | None) -> dict[str, Any]:
    try:
        value = json.loads(text or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {"value": value}
