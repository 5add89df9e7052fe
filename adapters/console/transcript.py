"""The whole conversation of a ticket's episode, as the doctor reads it: what the patient wrote to the
bot and what the bot answered before the hand-off, then the patient, the staff's replies and the
internal notes after it — one list in time order, from the store alone (any channel).

Sources: `inbox` (the patient's words, migration 0011), `outbox` (what the bot said), `ticket_message`
(staff replies as written, internal notes). The episode starts after the conversation's previous
ticket ended, at most `LOOKBACK` before this one opened, and ends when this ticket closed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection

from bot.store.store import INBOX, OUTBOX, PATIENT_WORDS, TICKET, TICKET_MSG

LOOKBACK = timedelta(hours=24)
_RANK = {"patient": 0, "bot": 1, "staff": 2, "note": 3}


@dataclass(frozen=True)
class Entry:
    """One message of the episode. `who`: patient | bot | staff | note (internal, never sent)."""

    who: str
    at: datetime
    body: str
    media: str = ""  # a media reference (`webchat:<id>`, a URL …)
    staff_id: str = ""
    buttons: tuple[str, ...] = ()
    before_handoff: bool = False

    @property
    def image(self) -> bool:
        return bool(self.media) and not self.media.lower().endswith(".pdf")


def episode(conn: Connection, ticket: Any, now: datetime) -> list[Entry]:
    start = _episode_start(conn, ticket)
    end = ticket.closed_at or now
    conv = ticket.conversation_id
    entries: list[tuple[Entry, int]] = []
    patient_rows = conn.execute(sa.select(INBOX.c.id, INBOX.c.processed_at, INBOX.c.body, INBOX.c.media).where(
        INBOX.c.conversation_id == conv, INBOX.c.kind.in_(PATIENT_WORDS), INBOX.c.processed_at >= start,
        INBOX.c.processed_at <= end, sa.or_(INBOX.c.body != "", INBOX.c.media != ""))).all()
    for r in patient_rows:
        entries.append((Entry("patient", r.processed_at, r.body, r.media), r.id))
    said = conn.execute(sa.select(OUTBOX.c.id, OUTBOX.c.created_at, OUTBOX.c.payload).where(
        OUTBOX.c.conversation_id == conv, OUTBOX.c.op == "say", OUTBOX.c.created_at >= start,
        OUTBOX.c.created_at <= end)).all()
    for r in said:
        p = json.loads(r.payload)
        if p.get("sender", "bot") != "bot":
            continue  # a staff reply: read as the doctor wrote it, from ticket_message
        media = p.get("media") or {}
        entries.append((Entry("bot", r.created_at, str(p.get("text", "")), str(media.get("ref", "")),
                              buttons=tuple(str(b.get("label", "")) for b in p.get("buttons", []))), r.id))
    for r in conn.execute(sa.select(TICKET_MSG).where(TICKET_MSG.c.ticket_id == ticket.id)).all():
        who, _, staff_id = r.author.partition(":")
        if who in ("patient", "bot") and patient_rows:
            continue  # already read from the inbox and outbox (an emergency's opening transcript)
        entries.append((Entry(who if who in _RANK else "bot", r.at, r.body, r.media, staff_id), r.id))
    entries.sort(key=lambda e: (e[0].at, _RANK.get(e[0].who, 9), e[1]))
    opened = ticket.opened_at
    return [Entry(e.who, e.at, e.body, e.media, e.staff_id, e.buttons, e.at <= opened) for e, _ in entries]


def _episode_start(conn: Connection, ticket: Any) -> datetime:
    earliest = ticket.opened_at - LOOKBACK
    previous = conn.execute(sa.select(sa.func.max(TICKET.c.closed_at)).where(
        TICKET.c.conversation_id == ticket.conversation_id, TICKET.c.id != ticket.id,
        TICKET.c.opened_at < ticket.opened_at)).scalar()
    return max(earliest, previous) if previous is not None else earliest
