"""The per-conversation message log behind the widget: append with a sequence number, read after one."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection

from adapters.webchat.models import WebchatMessage, WebchatSeq
from bot.store.models import UTCDateTime
from bot.store.store import Store

MESSAGE = WebchatMessage.__table__
SEQ = WebchatSeq.__table__


@dataclass(frozen=True)
class LogEntry:
    conversation_id: str
    seq: int
    sender: str  # patient | bot | staff:<id>
    payload: dict[str, Any]
    created_at: datetime

    def frame(self) -> dict[str, Any]:
        """The entry as the widget receives it."""
        return {"type": "message", "seq": self.seq, "sender": self.sender,
                "at": self.created_at.astimezone(timezone.utc).isoformat(), **self.payload}


def _entry(row: Any) -> LogEntry:
    return LogEntry(row.conversation_id, row.seq, row.sender, json.loads(row.payload), row.created_at)


class ChatLog:
    """Numbering takes the conversation's `webchat_seq` row first (an upsert that adds one), so
    writers of one conversation — turns and the sender, on any worker — queue on that row lock
    and never compute the same number; a deadlock between two batches is retried by the writer."""

    def __init__(self, store: Store):
        self.store = store
        b = sa.bindparam
        if store.postgres:
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert
        self._by_key = sa.select(MESSAGE).where(MESSAGE.c.idempotency_key == b("key"))
        bump = insert(SEQ).values(conversation_id=b("cid"), org=b("org"), last_seq=1)
        self._bump = bump.on_conflict_do_update(
            index_elements=[SEQ.c.conversation_id], set_={"last_seq": SEQ.c.last_seq + 1}).returning(SEQ.c.last_seq)
        self._unbump = SEQ.update().where(SEQ.c.conversation_id == b("cid")).values(last_seq=SEQ.c.last_seq - 1)
        self._insert = insert(MESSAGE).values(
            org=b("org"), conversation_id=b("cid"), seq=b("seq"), idempotency_key=b("key"), sender=b("sender"),
            payload=b("payload"), created_at=b("at", type_=UTCDateTime())
        ).on_conflict_do_nothing(index_elements=[MESSAGE.c.idempotency_key]).returning(MESSAGE.c.seq)

    def append_in(self, conn: Connection, conversation_id: str, key: str, sender: str, payload: dict[str, Any],
                  now: datetime, org: str = "default") -> tuple[LogEntry, bool]:
        """Append inside the caller's transaction (a turn writes its patient message this way, so
        the log — what the widget takes as acknowledged — holds only committed messages)."""
        seq = conn.execute(self._bump, {"cid": conversation_id, "org": org}).scalar_one()
        inserted = conn.execute(self._insert, {
            "org": org, "cid": conversation_id, "seq": seq, "key": key, "sender": sender,
            "payload": json.dumps(payload, ensure_ascii=False), "at": now}).scalar()
        if inserted is None:  # a resend: give the number back (we hold the row lock) and return the first
            conn.execute(self._unbump, {"cid": conversation_id})
            return _entry(conn.execute(self._by_key, {"key": key}).one()), False
        return LogEntry(conversation_id, seq, sender, payload, now), True

    async def append(self, conversation_id: str, key: str, sender: str, payload: dict[str, Any],
                     now: datetime, org: str = "default") -> tuple[LogEntry, bool]:
        """Append one message; returns it and whether it is new. A second append with the same
        `key` (a resend after a crash or a reconnect) returns the first one and writes nothing."""
        return await self.store.write(
            lambda conn: self.append_in(conn, conversation_id, key, sender, payload, now, org), conversation_id)

    async def by_key(self, key: str) -> LogEntry | None:
        row = await self.store.read(lambda conn: conn.execute(self._by_key, {"key": key}).first())
        return _entry(row) if row is not None else None

    async def after(self, conversation_id: str, seq: int, limit: int = 200) -> list[LogEntry]:
        """The conversation's messages numbered above `seq`, oldest first, at most `limit`."""
        query = sa.select(MESSAGE).where(MESSAGE.c.conversation_id == conversation_id, MESSAGE.c.seq > seq) \
            .order_by(MESSAGE.c.seq).limit(limit)
        return await self.store.read(lambda conn: [_entry(r) for r in conn.execute(query)])

    async def erase(self, conversation_id: str) -> None:
        """Delete the conversation's whole log (its patient asked to be forgotten)."""
        await self.store.write(lambda conn: conn.execute(
            MESSAGE.delete().where(MESSAGE.c.conversation_id == conversation_id)))
