"""Tables of the hand-off: staff accounts, ticket history, quality reviews, complaints."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from bot.store.models import UTCDateTime

ROLES = ("admin", "operator", "doctor", "assistant", "customer_service")


class Staff(SQLModel, table=True):
    id: str = Field(primary_key=True, max_length=64)  # a login name, e.g. d_wang
    org: str = Field(default="default", max_length=64)
    display_name: str = Field(max_length=100)  # 王建国
    title: str = Field(default="", max_length=100)  # 主任医师 / Chief physician
    role: str = Field(max_length=32)  # one of ROLES
    departments: str = Field(default="[]", sa_type=sa.Text)  # JSON list of department ids
    password_hash: str = Field(default="", max_length=200)  # argon2
    active: bool = True
    created_at: datetime = Field(sa_type=UTCDateTime)


class TicketEvent(SQLModel, table=True):
    """Everything that happened to a ticket, in order: opened, offered, assigned, replied, noted,
    transferred, escalated, reminded, breached, closed, abandoned."""

    __tablename__ = "ticket_event"
    __table_args__ = (sa.Index("ix_ticket_event_ticket", "ticket_id", "id"),)
    id: int | None = Field(default=None, primary_key=True)
    org: str = Field(default="default", max_length=64)
    ticket_id: str = Field(max_length=40)
    at: datetime = Field(sa_type=UTCDateTime)
    actor: str = Field(max_length=64)  # staff id, "system" or "patient"
    kind: str = Field(max_length=32)
    detail: str = Field(default="{}", sa_type=sa.Text)


class Review(SQLModel, table=True):
    """The quality review queue: a flagged reply, a complaint, or a random sample of closed tickets."""

    __table_args__ = (sa.Index("ix_review_status", "status", "created_at"),)
    id: int | None = Field(default=None, primary_key=True)
    org: str = Field(default="default", max_length=64)
    ticket_id: str = Field(max_length=40)
    staff_id: str = Field(default="", max_length=64)  # whose work is reviewed
    source: str = Field(max_length=32)  # machine | complaint | sample
    reasons: str = Field(default="[]", sa_type=sa.Text)  # JSON: too_short, unrelated, duplicate, slow …
    status: str = Field(default="open", max_length=16)  # open | reviewed | panel | closed
    verdict: str = Field(default="", max_length=32)  # ok | needs_improvement | unacceptable
    reviewer: str = Field(default="", max_length=64)
    note: str = Field(default="", sa_type=sa.Text)
    panel_verdict: str = Field(default="", max_length=32)
    panel_note: str = Field(default="", sa_type=sa.Text)
    created_at: datetime = Field(sa_type=UTCDateTime)
    reviewed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class Complaint(SQLModel, table=True):
    __table_args__ = (sa.Index("ix_complaint_status", "status", "created_at"),)
    id: int | None = Field(default=None, primary_key=True)
    org: str = Field(default="default", max_length=64)
    conversation_id: str = Field(max_length=300)
    ticket_id: str = Field(default="", max_length=40)
    department: str = Field(default="", max_length=64)
    category: str = Field(max_length=32)  # no_reply | slow | too_brief | no_substance | other
    text: str = Field(default="", sa_type=sa.Text)
    status: str = Field(default="open", max_length=16)  # open | handled
    handled_by: str = Field(default="", max_length=64)
    created_at: datetime = Field(sa_type=UTCDateTime)


class StaffSessionRevoked(SQLModel, table=True):
    """A console session ended at logout: its nonce is refused until the session would have
    expired anyway. In the database, so a logout holds across restarts and every worker."""

    __tablename__ = "staff_session_revoked"
    nonce: str = Field(primary_key=True, max_length=64)
    org: str = Field(default="default", max_length=64)
    expires_at: datetime = Field(sa_type=UTCDateTime, index=True)


class StaffLoginThrottle(SQLModel, table=True):
    """Failed sign-ins of one client (IP address) for one account: after a few, that client waits a
    short and growing time before trying that account again. The account itself is never locked,
    so a stranger's guesses do not keep the real doctor out."""

    __tablename__ = "staff_login_throttle"
    client: str = Field(primary_key=True, max_length=64)
    staff_id: str = Field(primary_key=True, max_length=64)
    org: str = Field(default="default", max_length=64)
    failures: int = 0
    locked_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_failed_at: datetime = Field(sa_type=UTCDateTime, index=True)
