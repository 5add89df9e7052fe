"""Moderation records: written in the turn's own transaction (a `GroupRecord` effect), read by the
moderation stage (the banlist), the weekly digest and the console.

A turn that deletes a message also writes the log row saying so, or neither happens: the effect is
committed with the turn by the store's effect-writer hook (`Store.effect_writers`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Literal

import sqlalchemy as sa
from sqlalchemy import Connection

from bot.groups.models import GroupBan, GroupCase, ModerationLog
from bot.store.store import Store, TurnCommit
from bot.types import Effect

LOG = ModerationLog.__table__
BAN = GroupBan.__table__
CASE = GroupCase.__table__
EXCERPT = 200  # characters of a message the moderator sees in the log


@dataclass(frozen=True, slots=True)
class GroupRecord(Effect):
    """A row for a moderation table, committed with the turn: `log` (moderation_log), `ban` (a new
    banlist entry), `case` (a report, flag or appeal). `org` and time come from the turn."""

    kind: ClassVar[str] = "group_record"
    table: Literal["log", "ban", "case"]
    row: dict[str, Any] = field(default_factory=dict)


def _write(conn: Connection, effect: Effect, commit: TurnCommit) -> None:
    assert isinstance(effect, GroupRecord)
    org, now = commit.address.org, commit.now
    row = dict(effect.row)
    if effect.table == "log":
        row.setdefault("conversation_id", commit.conversation_id)
        row["excerpt"] = str(row.get("excerpt", ""))[:EXCERPT]
        conn.execute(LOG.insert().values(org=org, at=now, **_defaults(LOG, row)))
    elif effect.table == "ban":
        conn.execute(BAN.insert().values(org=org, at=now, **_defaults(BAN, row)))
    else:
        row.setdefault("conversation_id", commit.conversation_id)
        conn.execute(CASE.insert().values(org=org, created_at=now, **_defaults(CASE, row)))


def _defaults(table: sa.Table, row: dict[str, Any]) -> dict[str, Any]:
    """The row with "" for every text column it leaves out (the tables have no NULL texts)."""
    out = {c.name: "" for c in table.columns if isinstance(c.type, (sa.String, sa.Text)) and not c.primary_key}
    out.update({k: v for k, v in row.items() if k in table.c})
    out.pop("org", None)
    return out


def install(store: Store) -> None:
    """Let the store commit `GroupRecord`s with the turn."""
    store.effect_writers[GroupRecord.kind] = _write


# -- reads ---------------------------------------------------------------------------------------------


async def active_ban(store: Store, org: str, channel: str, user_id: str) -> dict[str, Any] | None:
    """The member's standing entry on the organisation's banlist, if any."""
    def q(conn: Connection) -> dict[str, Any] | None:
        row = conn.execute(sa.select(BAN.c.id, BAN.c.reason, BAN.c.policy, BAN.c.chat_id).where(
            BAN.c.org == org, BAN.c.channel == channel, BAN.c.user_id == user_id,
            BAN.c.lifted_at.is_(None)).order_by(BAN.c.id.desc()).limit(1)).first()
        return dict(row._mapping) if row else None

    return await store.read(q)


async def last_action(store: Store, org: str, channel: str, user_id: str) -> dict[str, Any] | None:
    """The latest mute, ban or kick against a member, in any group (what an appeal is about)."""
    def q(conn: Connection) -> dict[str, Any] | None:
        row = conn.execute(sa.select(LOG.c.id, LOG.c.policy, LOG.c.chat_id, LOG.c.action, LOG.c.trigger).where(
            LOG.c.org == org, LOG.c.channel == channel, LOG.c.member == user_id,
            LOG.c.action.in_(("mute", "ban", "kick"))).order_by(LOG.c.id.desc()).limit(1)).first()
        return dict(row._mapping) if row else None

    return await store.read(q)


async def week_summary(store: Store, org: str, policy: str, since: datetime, until: datetime) -> dict[str, Any]:
    """What happened in a policy's groups in a week: actions by kind, members who joined and left,
    new and still-pending cases. Counts only — the digest carries no member's words."""
    def q(conn: Connection) -> dict[str, Any]:
        in_week = sa.and_(LOG.c.org == org, LOG.c.policy == policy, LOG.c.at >= since, LOG.c.at < until)
        by_action = dict(conn.execute(sa.select(LOG.c.action, sa.func.count()).where(in_week).group_by(
            LOG.c.action)).all())
        cases = dict(conn.execute(sa.select(CASE.c.kind, sa.func.count()).where(
            CASE.c.org == org, CASE.c.policy == policy, CASE.c.created_at >= since,
            CASE.c.created_at < until).group_by(CASE.c.kind)).all())
        pending = conn.execute(sa.select(sa.func.count()).where(
            CASE.c.org == org, CASE.c.policy == policy, CASE.c.status == "pending")).scalar() or 0
        return {"actions": {str(k): int(v) for k, v in by_action.items()}, "cases": {str(k): int(v) for k, v in cases.items()},
                "pending": int(pending)}

    return await store.read(q)
