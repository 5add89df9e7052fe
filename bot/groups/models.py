"""Tables of group moderation: the moderation log, the organisation's banlist, reports and appeals."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from bot.store.models import UTCDateTime


class ModerationLog(SQLModel, table=True):
    """Every automated (and every staff) moderation action, with what was really done: a platform
    that cannot delete gets its owner asked instead, and `fallback` says why."""

    __tablename__ = "moderation_log"
    __table_args__ = (sa.Index("ix_moderation_log_chat", "org", "channel", "chat_id", "id"),)
    id: int | None = Field(default=None, primary_key=True)
    org: str = Field(default="default", max_length=64)
    at: datetime = Field(sa_type=UTCDateTime)
    policy: str = Field(max_length=64)  # the group policy (content/groups/<id>.yml)
    channel: str = Field(max_length=32)
    chat_id: str = Field(max_length=128)
    member: str = Field(default="", max_length=128)  # the platform user id acted on
    conversation_id: str = Field(default="", max_length=300)  # the member's conversation in the group
    message_id: str = Field(default="", max_length=200)
    trigger: str = Field(max_length=120)  # blocklist:<set>/<entry> · lock:<kind> · newcomer · flood · raid …
    action: str = Field(max_length=16)  # what the policy asked: delete · warn · mute · ban · report · kick …
    done: str = Field(default="", max_length=64)  # what happened: the op, or "owner_asked", "warned" …
    fallback: str = Field(default="", max_length=200)  # why `done` differs from `action` ("" when it does not)
    actor: str = Field(default="bot", max_length=64)  # bot | staff:<id>
    excerpt: str = Field(default="", sa_type=sa.Text)  # the start of the message, for the moderator (erased on "forget me")


class GroupBan(SQLModel, table=True):
    """The organisation's shared banlist: a member banned in one group is banned in every group of
    the organisation on the same platform, with the reason, until a person lifts it."""

    __tablename__ = "group_ban"
    __table_args__ = (sa.Index("ix_group_ban_member", "org", "channel", "user_id"),)
    id: int | None = Field(default=None, primary_key=True)
    org: str = Field(default="default", max_length=64)
    channel: str = Field(max_length=32)
    user_id: str = Field(max_length=128)
    reason: str = Field(max_length=200)
    policy: str = Field(default="", max_length=64)
    chat_id: str = Field(default="", max_length=128)  # where it happened
    by: str = Field(default="bot", max_length=64)
    at: datetime = Field(sa_type=UTCDateTime)
    lifted_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    lifted_by: str = Field(default="", max_length=64)


class GroupCase(SQLModel, table=True):
    """Something a person must look at: a member's report (/report, @admin), a flagged message
    (health misinformation, a silent report) or an appeal against a moderation action."""

    __tablename__ = "group_case"
    __table_args__ = (sa.Index("ix_group_case_status", "org", "status", "id"),)
    id: int | None = Field(default=None, primary_key=True)
    org: str = Field(default="default", max_length=64)
    kind: str = Field(max_length=16)  # report | flag | appeal
    status: str = Field(default="pending", max_length=16)  # pending | resolved
    policy: str = Field(max_length=64)
    channel: str = Field(max_length=32)
    chat_id: str = Field(max_length=128)
    reporter: str = Field(default="", max_length=128)  # who reported or appealed ("bot" for a flag)
    member: str = Field(default="", max_length=128)  # whom it is about
    conversation_id: str = Field(default="", max_length=300)
    message_id: str = Field(default="", max_length=200)
    trigger: str = Field(default="", max_length=120)
    text: str = Field(default="", sa_type=sa.Text)  # the reporter's or appellant's words (erased on "forget me")
    assignee: str = Field(default="", max_length=64)  # the moderator on duty when it came in
    created_at: datetime = Field(sa_type=UTCDateTime)
    resolved_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    resolved_by: str = Field(default="", max_length=64)
    decision: str = Field(default="", max_length=32)  # report: actioned | dismissed · appeal: upheld | lifted
