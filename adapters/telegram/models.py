"""The Telegram adapter's durable tables.

- `telegram_chat`: every chat id the bot has met, and which chat id carebot's `Address` uses for it.
  A group that becomes a supergroup gets a new id (`migrate_to_chat_id`); the new id is recorded
  here as an alias of the first one, so members' conversations (keyed by the first id) go on and
  their outbox rows are delivered to the new id. A private chat records whether its person blocked
  the bot (`blocked`) and that they started it (`started`): a member in crisis in a group is
  answered privately only when they did.
- `telegram_conversation`: per conversation, the message carrying its live inline keyboard (a
  press on any older keyboard is stale) with the buttons' values, and the patient's last message
  (what the bot replies to in a group).
- `telegram_offset`: the long-polling offset per bot, so a restarted `carebot telegram poll`
  neither loses nor replays updates.
- `telegram_topic`: the staff supergroup's forum topic of each ticket, and how far the topic has
  caught up with the ticket (its last mirrored `ticket_event` and `ticket_message` ids).
- `telegram_staff`: which Telegram user is which staff account (`carebot telegram link-staff`);
  a person in the staff group who is not linked is refused, never relayed.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from bot.store.models import UTCDateTime


class TelegramChat(SQLModel, table=True):
    __tablename__ = "telegram_chat"
    __table_args__ = (sa.Index("ix_telegram_chat_address", "address_chat_id"),)
    id: str = Field(primary_key=True, max_length=32)  # the platform chat id (current or former)
    org: str = Field(default="default", max_length=64)
    address_chat_id: str = Field(max_length=32)  # the chat id carebot's Address uses
    current: bool = True  # False once the chat migrated away from this id
    kind: str = Field(default="private", max_length=16)  # private | group | supergroup | channel
    started: bool = False  # a private chat the person opened (/start or any message)
    blocked: bool = False  # the person blocked the bot
    display_name: str = Field(default="", max_length=128)  # a private chat's person (the staff topic's title)
    updated_at: datetime = Field(sa_type=UTCDateTime)


class TelegramConversation(SQLModel, table=True):
    __tablename__ = "telegram_conversation"
    __table_args__ = (sa.Index("ix_telegram_conversation_keyboard", "chat_id", "keyboard_message_id"),)
    conversation_id: str = Field(primary_key=True, max_length=300)
    org: str = Field(default="default", max_length=64)
    chat_id: str = Field(default="", max_length=32)  # the platform chat the keyboard is in
    keyboard_message_id: int = Field(default=0, sa_type=sa.BigInteger)
    keyboard: str = Field(default="[]", sa_type=sa.Text)  # JSON: the live keyboard's button values
    last_message_id: int = Field(default=0, sa_type=sa.BigInteger)  # the patient's last message (reply-to in a group)
    updated_at: datetime = Field(sa_type=UTCDateTime)


class TelegramOffset(SQLModel, table=True):
    __tablename__ = "telegram_offset"
    bot_id: str = Field(primary_key=True, max_length=32)
    org: str = Field(default="default", max_length=64)
    next_offset: int = Field(default=0, sa_type=sa.BigInteger)
    updated_at: datetime = Field(sa_type=UTCDateTime)


class TelegramTopic(SQLModel, table=True):
    __tablename__ = "telegram_topic"
    __table_args__ = (sa.UniqueConstraint("staff_chat_id", "thread_id", name="uq_telegram_topic_thread"),
                      sa.Index("ix_telegram_topic_conversation", "conversation_id"))
    ticket_id: str = Field(primary_key=True, max_length=40)
    org: str = Field(default="default", max_length=64)
    conversation_id: str = Field(max_length=300)
    staff_chat_id: str = Field(max_length=32)
    thread_id: int = Field(sa_type=sa.BigInteger)
    closed: bool = False
    last_event_id: int = Field(default=0, sa_type=sa.BigInteger)  # ticket_event rows mirrored so far
    last_message_id: int = Field(default=0, sa_type=sa.BigInteger)  # ticket_message rows mirrored so far
    created_at: datetime = Field(sa_type=UTCDateTime)


class TelegramStaff(SQLModel, table=True):
    __tablename__ = "telegram_staff"
    __table_args__ = (sa.Index("ix_telegram_staff_staff", "staff_id"),)
    telegram_user_id: str = Field(primary_key=True, max_length=32)
    org: str = Field(default="default", max_length=64)
    staff_id: str = Field(max_length=64)  # the console account the person acts as
    linked_at: datetime = Field(sa_type=UTCDateTime)
