""""Forget me" (删除我的信息): what the patient said and sent leaves bot's records; ids, times, statuses
and the audit trail stay (what happened, never what was said).

`erase_records` covers bot's own tables, in one transaction; each adapter erases what it keeps
through `Adapter.erase` (the web chat's log and uploads). `Runtime.erase` runs both. The flow
that asks for it (`flows/opt_out.yml`) clears the conversation's slots in the same turn.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone

import sqlalchemy as sa

ERASED = "[erased]"
# what a ticket event may keep: ids, modes, flags — never a free-text reason a person typed
TICKET_EVENT_KEEPS = frozenset({"mode", "assignee", "team", "department", "to_department", "to_staff", "to",
                                "canned", "flags", "clock"})


def erase_records(conn: sa.Connection, conversation_id: str, now: datetime) -> None:
    """Erase a conversation's patient text in bot's tables and append the audit entry."""
    from bot.handoff.models import Complaint, TicketEvent
    from bot.store.store import AUDIT, EVENT, INBOX, OUTBOX, TICKET, TICKET_MSG, TIMER

    complaints, ticket_events = Complaint.__table__, TicketEvent.__table__
    tickets = [r.id for r in conn.execute(sa.select(TICKET.c.id).where(TICKET.c.conversation_id == conversation_id))]
    if tickets:
        # the staff's side of the thread goes too: a reply quotes and answers what the patient said
        conn.execute(TICKET_MSG.update().where(TICKET_MSG.c.ticket_id.in_(tickets)).values(body=ERASED, media=""))
        conn.execute(TICKET.update().where(TICKET.c.id.in_(tickets)).values(summary="{}"))
        for row in conn.execute(sa.select(ticket_events.c.id, ticket_events.c.detail).where(
                ticket_events.c.ticket_id.in_(tickets))).all():
            detail = {k: v for k, v in json.loads(row.detail or "{}").items() if k in TICKET_EVENT_KEEPS}
            conn.execute(ticket_events.update().where(ticket_events.c.id == row.id).values(detail=json.dumps(detail)))
    conn.execute(complaints.update().where(complaints.c.conversation_id == conversation_id).values(text=ERASED))
    from bot.groups.models import GroupCase, ModerationLog  # a group member's words in the moderation records

    log, cases = ModerationLog.__table__, GroupCase.__table__
    conn.execute(log.update().where(log.c.conversation_id == conversation_id).values(excerpt=ERASED))
    conn.execute(cases.update().where(cases.c.conversation_id == conversation_id).values(text=ERASED))
    conn.execute(EVENT.update().where(EVENT.c.conversation_id == conversation_id).values(data="{}"))
    conn.execute(INBOX.update().where(INBOX.c.conversation_id == conversation_id).values(body="", media=""))
    for row in conn.execute(sa.select(OUTBOX.c.id, OUTBOX.c.payload).where(
            OUTBOX.c.conversation_id == conversation_id)).all():
        payload = json.loads(row.payload)
        payload["text"] = ERASED
        payload["media"] = None
        conn.execute(OUTBOX.update().where(OUTBOX.c.id == row.id).values(payload=json.dumps(payload)))
    conn.execute(TIMER.update().where(TIMER.c.conversation_id == conversation_id,
                                      TIMER.c.status == "pending").values(status="cancelled"))
    conn.execute(TIMER.update().where(TIMER.c.conversation_id == conversation_id).values(payload="{}"))
    # medication plans: what the medicine was goes, the plans stop (their timers were cancelled above);
    # doses keep only times and states; caregiver links end on either side
    from bot.reminders.models import CaregiverLink, MedPlan

    plans, links = MedPlan.__table__, CaregiverLink.__table__
    conn.execute(plans.update().where(plans.c.conversation_id == conversation_id).values(
        medicine=ERASED, dose="", status="stopped"))
    conn.execute(links.update().where(sa.or_(links.c.patient_conversation_id == conversation_id,
                                             links.c.caregiver_conversation_id == conversation_id)).values(
        status="revoked"))
    conn.execute(AUDIT.insert().values(org="default", at=now.astimezone(timezone.utc), actor="patient",
                                       action="erase", subject=conversation_id, detail="{}"))
