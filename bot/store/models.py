"""Durable records as SQLModel tables. Every record carries `org` from the first migration.

Times are stored as UTC (see `UTCDateTime`) and come back timezone-aware.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel


class UTCDateTime(TypeDecorator):
    """Aware datetimes in, aware UTC datetimes out, on SQLite and PostgreSQL alike."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; pass timezone-aware times")
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def _ts(**kw: Any) -> Any:
    return Field(sa_type=UTCDateTime, **kw)


class Conversation(SQLModel, table=True):
    """A conversation's state, rewritten by every turn (PostgreSQL: fillfactor 70, migration 0013,
    so the new version usually stays on its page as a heap-only tuple)."""

    id: str = Field(primary_key=True, max_length=300)
    org: str = Field(default="default", max_length=64, index=True)
    channel: str = Field(max_length=32)
    chat_id: str = Field(max_length=128)
    user_id: str = Field(default="", max_length=128)
    thread_id: str = Field(default="", max_length=128)
    is_group: bool = False
    mode: str = Field(default="bot", max_length=16)
    locale: str = Field(default="", max_length=16)
    state: str = Field(sa_type=sa.Text)  # JSON of bot.engine.state.State
    version: int = 0
    created_at: datetime = _ts()
    updated_at: datetime = _ts()


class InboxEntry(SQLModel, table=True):
    """One row per processed platform message: the durable half of de-duplication, and what the
    patient wrote (`body`, `media`: a direct chat's patient input, or an addressed group message),
    which is how staff read the bot's part of an episode (adapters/console/transcript.py)."""

    __tablename__ = "inbox"
    __table_args__ = (sa.UniqueConstraint("channel", "message_id", name="uq_inbox_channel_message"),)
    id: int | None = Field(default=None, primary_key=True)
    org: str = Field(default="default", max_length=64)
    channel: str = Field(max_length=32)
    message_id: str = Field(max_length=200)
    conversation_id: str = Field(max_length=300)
    kind: str = Field(max_length=16)
    received_at: datetime = _ts()
    processed_at: datetime = _ts()
    # added by migration 0011
    body: str = Field(default="", sa_type=sa.Text, sa_column_kwargs={"server_default": ""})
    media: str = Field(default="", max_length=500, sa_column_kwargs={"server_default": ""})


OUTBOX_OPEN = sa.text("status IN ('pending', 'sending')")  # not yet delivered, nor given up


class OutboxEntry(SQLModel, table=True):
    """A message committed with the state that produced it, delivered afterwards (transactional outbox)."""

    __tablename__ = "outbox"
    # On PostgreSQL the two indexes the sender searches hold only rows not yet delivered (migration
    # 0013): a delivery mark then adds no entry to them, and they stay the size of what is in flight.
    # (SQLite's planner uses a partial index only for a query that repeats its WHERE word for word.)
    __table_args__ = (
        sa.Index("ix_outbox_due", "status", "next_attempt_at", postgresql_where=OUTBOX_OPEN),
        sa.Index("ix_outbox_conversation", "conversation_id", "id"),
        sa.Index("ix_outbox_open", "conversation_id", "status", postgresql_where=OUTBOX_OPEN),
    )
    id: int | None = Field(default=None, primary_key=True)
    org: str = Field(default="default", max_length=64)
    conversation_id: str = Field(max_length=300)
    channel: str = Field(max_length=32)
    op: str = Field(max_length=16)
    content_key: str = Field(default="", max_length=200)
    payload: str = Field(sa_type=sa.Text)  # JSON of bot.types.Outbound
    status: str = Field(default="pending", max_length=16)  # pending | sending | sent | failed
    attempts: int = 0
    next_attempt_at: datetime = _ts()
    lease_until: datetime | None = _ts(default=None)
    claimed_by: str = Field(default="", max_length=64)
    created_at: datetime = _ts()
    sent_at: datetime | None = _ts(default=None)
    platform_message_id: str = Field(default="", max_length=200)
    last_error: str = Field(default="", max_length=500)


class WorkerBeat(SQLModel, table=True):
    """A worker's heartbeat. Outbox rows and timers claimed by a worker whose heartbeat stopped are
    taken over within seconds, instead of waiting out their lease."""

    __tablename__ = "worker"
    id: str = Field(primary_key=True, max_length=64)
    started_at: datetime = _ts()
    beat_at: datetime = _ts()


TIMER_LIVE = sa.text("status IN ('pending', 'claimed')")  # still to fire (PostgreSQL: the due index holds only these)


class TimerEntry(SQLModel, table=True):
    """A durable timer: reminders, SLA clocks and wait timeouts are rows, not in-memory jobs."""

    __tablename__ = "timer"
    __table_args__ = (
        sa.Index("ix_timer_due", "status", "due_at", postgresql_where=TIMER_LIVE),
        sa.Index("ix_timer_conversation_name", "conversation_id", "name"),
    )
    id: int | None = Field(default=None, primary_key=True)
    org: str = Field(default="default", max_length=64)
    conversation_id: str = Field(max_length=300)
    name: str = Field(max_length=200)
    due_at: datetime = _ts()
    payload: str = Field(default="{}", sa_type=sa.Text)
    status: str = Field(default="pending", max_length=16)  # pending | claimed | fired | cancelled
    lease_until: datetime | None = _ts(default=None)
    claimed_by: str = Field(default="", max_length=64)
    created_at: datetime = _ts()
    fired_at: datetime | None = _ts(default=None)


class Ticket(SQLModel, table=True):
    __table_args__ = (sa.Index("ix_ticket_conversation", "conversation_id", "status"),)
    id: str = Field(primary_key=True, max_length=40)  # assigned by the runtime before commit
    org: str = Field(default="default", max_length=64, index=True)
    conversation_id: str = Field(max_length=300)
    status: str = Field(default="pending", max_length=16)
    department: str = Field(default="", max_length=64)
    priority: str = Field(default="normal", max_length=16)
    reason: str = Field(default="", max_length=200)
    summary: str = Field(default="{}", sa_type=sa.Text)
    assignee: str = Field(default="", max_length=64)
    opened_at: datetime = _ts()
    first_response_at: datetime | None = _ts(default=None)
    # added by migration 0003 (hand-off): dispatch, team, SLA clocks
    mode: str = Field(default="", max_length=16, sa_column_kwargs={"server_default": ""})  # grab | roster | team
    team: str = Field(default="", max_length=64, sa_column_kwargs={"server_default": ""})
    assigned_at: datetime | None = _ts(default=None)
    first_response_due: datetime | None = _ts(default=None)
    next_response_due: datetime | None = _ts(default=None)
    resolution_due: datetime | None = _ts(default=None)
    last_patient_at: datetime | None = _ts(default=None)
    last_staff_at: datetime | None = _ts(default=None)
    escalations: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    closed_at: datetime | None = _ts(default=None)
    # added by migration 0004 (paging): paging | delivered | acknowledged | unreachable ("" when not paged)
    paging: str = Field(default="", max_length=16, sa_column_kwargs={"server_default": ""})
    acknowledged_by: str = Field(default="", max_length=64, sa_column_kwargs={"server_default": ""})
    acknowledged_at: datetime | None = _ts(default=None)
    # added by migration 0014: a second department whose staff also see the ticket (the backup after an
    # offer nobody took; the default's backup when handoff.yml does not name the ticket's department)
    widened_to: str = Field(default="", max_length=64, sa_column_kwargs={"server_default": ""})


class TicketMessage(SQLModel, table=True):
    __tablename__ = "ticket_message"
    id: int | None = Field(default=None, primary_key=True)
    org: str = Field(default="default", max_length=64)
    ticket_id: str = Field(index=True, max_length=40)
    author: str = Field(max_length=64)  # patient | staff:<id> | note:<id> | bot
    body: str = Field(sa_type=sa.Text)
    media: str = Field(default="", max_length=500)
    at: datetime = _ts()


class EventRecord(SQLModel, table=True):
    """Append-only conversation records: surveys, tags, triage assessments, step errors."""

    __tablename__ = "event"
    __table_args__ = (sa.Index("ix_event_conversation", "conversation_id", "id"),)
    id: int | None = Field(default=None, primary_key=True)
    org: str = Field(default="default", max_length=64)
    conversation_id: str = Field(max_length=300)
    kind: str = Field(max_length=64, index=True)
    data: str = Field(default="{}", sa_type=sa.Text)
    at: datetime = _ts()


class AuditEntry(SQLModel, table=True):
    """Who saw or did what to patient data. No code path updates or deletes a row (a trigger
    enforces it on PostgreSQL and SQLite)."""

    __tablename__ = "audit_log"
    id: int | None = Field(default=None, primary_key=True)
    org: str = Field(default="default", max_length=64)
    at: datetime = _ts()
    actor: str = Field(max_length=128)  # staff:<id> | system | bot
    action: str = Field(max_length=64)
    subject: str = Field(max_length=300)  # conversation / patient / ticket id
    detail: str = Field(default="{}", sa_type=sa.Text)
