"""The web chat's durable tables: the per-conversation message log, the uploaded media, and the
conversations whose patient asked to be forgotten.

The log is what the widget shows: bot and staff messages (appended by `WebchatAdapter.send`, unique
on the outbox idempotency key, so a resend after a crash is dropped) and the patient's own messages
(unique on the widget's message id). `seq` numbers one conversation's messages 1, 2, 3 … so a widget
that reconnects asks for everything after the last number it showed.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from bot.store.models import UTCDateTime


class WebchatMessage(SQLModel, table=True):
    __tablename__ = "webchat_message"
    __table_args__ = (
        sa.UniqueConstraint("conversation_id", "seq", name="uq_webchat_message_seq"),
        sa.UniqueConstraint("idempotency_key", name="uq_webchat_message_key"),
    )
    id: int | None = Field(default=None, primary_key=True)
    org: str = Field(default="default", max_length=64)
    conversation_id: str = Field(max_length=300)
    seq: int
    idempotency_key: str = Field(max_length=200)
    sender: str = Field(max_length=64)  # patient | bot | staff:<id>
    payload: str = Field(sa_type=sa.Text)  # JSON: text, buttons, media, sender_name, client id
    created_at: datetime = Field(sa_type=UTCDateTime)


class WebchatSeq(SQLModel, table=True):
    """The last number given in each conversation's log. Taking the next one updates this row, so
    two writers of one conversation queue on its row lock instead of racing on `MAX(seq) + 1`."""

    __tablename__ = "webchat_seq"
    conversation_id: str = Field(primary_key=True, max_length=300)
    org: str = Field(default="default", max_length=64)
    last_seq: int = 0


class WebchatMedia(SQLModel, table=True):
    """An upload: the file lives under the media directory; this row says whose it is."""

    __tablename__ = "webchat_media"
    __table_args__ = (sa.Index("ix_webchat_media_conversation", "conversation_id"),)
    id: str = Field(primary_key=True, max_length=64)
    org: str = Field(default="default", max_length=64)
    conversation_id: str = Field(max_length=300)
    path: str = Field(max_length=300)  # relative to the media directory
    mime: str = Field(max_length=64)
    size: int
    created_at: datetime = Field(sa_type=UTCDateTime)


class WebchatErasure(SQLModel, table=True):
    """A conversation erased at its patient's request ("forget me"). Its visitor's tokens are
    refused from then on, so a browser still holding one reads nothing and starts anew."""

    __tablename__ = "webchat_erasure"
    conversation_id: str = Field(primary_key=True, max_length=300)
    org: str = Field(default="default", max_length=64)
    erased_at: datetime = Field(sa_type=UTCDateTime)
