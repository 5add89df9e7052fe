"""WeCom's durable tables. None holds what a patient wrote: ids, states and times only.

- `wecom_callback`: every callback accepted, unique on its de-duplication key (MsgId, or sender +
  CreateTime + event), written before WeCom gets its 200 and marked processed after; a process
  that dies in between finds the row again at start-up.
- `wecom_kf_cursor`: the `sync_msg` cursor per kf account, saved after each page is committed.
- `wecom_kf_session`: per patient, the kf account they write to, the 48-hour / 5-message window
  (when they last wrote, how many messages were sent since, whether they were told it is closing),
  the `state` they came with (a contact-me QR or kf link), and who serves them.
- `wecom_contact`: which staff member a patient added (by which `state`), and when they were welcomed.
- `wecom_tag`: carebot tag name → WeCom corp tag id.
- `wecom_care_group`: the internal group chat (appchat) of a patient's care team.
- `wecom_customer_group`: customer groups read by the API, with their owner (whom to alert).
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from bot.store.models import UTCDateTime


class WecomCallback(SQLModel, table=True):
    __tablename__ = "wecom_callback"
    __table_args__ = (sa.UniqueConstraint("dedupe_key", name="uq_wecom_callback_key"),
                      sa.Index("ix_wecom_callback_pending", "processed_at"))
    id: int | None = Field(default=None, primary_key=True)
    org: str = Field(default="default", max_length=64)
    dedupe_key: str = Field(max_length=300)
    event: str = Field(max_length=64)
    payload: str = Field(sa_type=sa.Text)  # JSON of the decrypted fields (ids and event names)
    received_at: datetime = Field(sa_type=UTCDateTime)
    processed_at: datetime | None = Field(default=None, sa_type=UTCDateTime, nullable=True)


class WecomKfCursor(SQLModel, table=True):
    __tablename__ = "wecom_kf_cursor"
    open_kfid: str = Field(primary_key=True, max_length=64)
    org: str = Field(default="default", max_length=64)
    cursor: str = Field(default="", max_length=128)
    updated_at: datetime = Field(sa_type=UTCDateTime)


class WecomKfSession(SQLModel, table=True):
    __tablename__ = "wecom_kf_session"
    external_userid: str = Field(primary_key=True, max_length=64)
    org: str = Field(default="default", max_length=64)
    open_kfid: str = Field(max_length=64)
    last_customer_at: datetime | None = Field(default=None, sa_type=UTCDateTime, nullable=True)
    sent_in_window: int = 0
    closing_told: bool = False  # the "reply to keep this chat open" message went out in this window
    state: str = Field(default="", max_length=64)  # the campaign state they came with, until used
    servicer: str = Field(default="", max_length=64)  # a WeCom servicer has the session (servicer mode)
    updated_at: datetime = Field(sa_type=UTCDateTime)


class WecomContact(SQLModel, table=True):
    __tablename__ = "wecom_contact"
    external_userid: str = Field(primary_key=True, max_length=64)
    userid: str = Field(primary_key=True, max_length=64)
    org: str = Field(default="default", max_length=64)
    state: str = Field(default="", max_length=64)
    added_at: datetime = Field(sa_type=UTCDateTime)
    welcomed_at: datetime | None = Field(default=None, sa_type=UTCDateTime, nullable=True)
    removed_at: datetime | None = Field(default=None, sa_type=UTCDateTime, nullable=True)


class WecomTag(SQLModel, table=True):
    __tablename__ = "wecom_tag"
    name: str = Field(primary_key=True, max_length=64)
    org: str = Field(default="default", max_length=64)
    tag_id: str = Field(max_length=64)


class WecomCareGroup(SQLModel, table=True):
    __tablename__ = "wecom_care_group"
    conversation_id: str = Field(primary_key=True, max_length=300)
    org: str = Field(default="default", max_length=64)
    chatid: str = Field(max_length=64)
    members: str = Field(sa_type=sa.Text)  # JSON list of WeCom userids
    created_at: datetime = Field(sa_type=UTCDateTime)


class WecomCustomerGroup(SQLModel, table=True):
    __tablename__ = "wecom_customer_group"
    chat_id: str = Field(primary_key=True, max_length=64)
    org: str = Field(default="default", max_length=64)
    name: str = Field(default="", max_length=200)
    owner: str = Field(max_length=64)
    members: int = 0
    updated_at: datetime = Field(sa_type=UTCDateTime)
