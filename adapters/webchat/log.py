"""The per-conversation message log behind the widget: append with a sequence number, read after one."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from adapters.webchat.models import WebchatMessage
from bot.store.models import UTCDateTime
from bot.store.store import Store

MESSAGE = WebchatMessage.__table__
_APPEND_TRIES = 5


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
    def __init__(self, store: Store):
        self.store = store
        self._by_key = sa.select(MESSAGE).where(MESSAGE.c.idempotency_key == sa.bindparam("key"))
        # one statement numbers and inserts (a turn's hot path); ON CONFLICT drops a resend.
        # :cid appears twice: the CAST gives PostgreSQL one type for it (else "inconsistent types")
        self._insert = sa.text(
            "INSERT INTO webchat_message (org, conversation_id, seq, idempotency_key, sender, payload, created_at) "
            "SELECT :org, CAST(:cid AS VARCHAR), COALESCE(MAX(seq), 0) + 1, :key, :sender, :payload, :at "
            "FROM webchat_message WHERE conversation_id = :cid "
            "ON CONFLICT (idempotency_key) DO NOTHING RETURNING seq"
        ).bindparams(sa.bindparam("at", type_=UTCDateTime()))

    async def append(self, conversation_id: str, key: str, sender: str, payload: dict[str, Any],
                     now: datetime, org: str = "default") -> tuple[LogEntry, bool]:
        """Append one message; returns it and whether it is new. A second append with the same
        `key` (a resend after a crash or a reconnect) returns the first one and writes nothing."""
        params = {"org": org, "cid": conversation_id, "key": key, "sender": sender,
                  "payload": json.dumps(payload, ensure_ascii=False), "at": now}

        def write(conn: Connection) -> tuple[LogEntry, bool]:
            seq = conn.execute(self._insert, params).scalar()
            if seq is None:
                return _entry(conn.execute(self._by_key, {"key": key}).one()), False
            return LogEntry(conversation_id, seq, sender, payload, now), True

        for attempt in range(_APPEND_TRIES):
            try:
                return await self.store.write(write)
            except IntegrityError:
                # another writer (PostgreSQL runs several) took this seq first: number it again
                if attempt == _APPEND_TRIES - 1:
                    raise
        raise AssertionError("unreachable")

    async def after(self, conversation_id: str, seq: int, limit: int = 200) -> list[LogEntry]:
        """The conversation's messages numbered above `seq`, oldest first, at most `limit`."""
        query = sa.select(MESSAGE).where(MESSAGE.c.conversation_id == conversation_id, MESSAGE.c.seq > seq) \
            .order_by(MESSAGE.c.seq).limit(limit)
        return await self.store.read(lambda conn: [_entry(r) for r in conn.execute(query)])

    async def erase(self, conversation_id: str) -> None:
        """Delete the conversation's whole log (its patient asked to be forgotten)."""
        await self.store.write(lambda conn: conn.execute(
            MESSAGE.delete().where(MESSAGE.c.conversation_id == conversation_id)))
