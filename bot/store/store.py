"""The store: conversation state and durable records, written in one transaction per turn."""

from __future__ import annotations

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Callable

import sqlalchemy as sa
from sqlalchemy import Connection
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import IntegrityError

from bot.store import models as t
from bot.store.checkpoint import Checkpointer
from bot.store.db import is_postgres, make_engine
from bot.store.fastsql import BulkInsert, BulkUpdate, FastStatement
from bot.store.writer import BatchWriter, Grouped, is_busy
from bot.types import (
    Address, CancelTimer, Effect, Inbound, Moderate, OpenTicket, Outbound, RecordEvent,
    ScheduleTimer, Send, Tag, UpdateTicket,
)

CONV = t.Conversation.__table__
INBOX = t.InboxEntry.__table__
OUTBOX = t.OutboxEntry.__table__
TIMER = t.TimerEntry.__table__
TICKET = t.Ticket.__table__
TICKET_MSG = t.TicketMessage.__table__
EVENT = t.EventRecord.__table__
AUDIT = t.AuditEntry.__table__
# inbound kinds whose words the inbox keeps (members talking among themselves in a group are not kept)
PATIENT_WORDS = frozenset({"text", "choice", "media", "command"})
WORKER = t.WorkerBeat.__table__
OPEN = ("pending", "sending")  # outbox rows not yet delivered (nor given up)
# the same as literals in a query, so PostgreSQL can use the partial indexes (migration 0013)
# whatever the plan: a bound parameter in a generic plan proves nothing about them
OPEN_ROW = sa.literal_column("'pending'"), sa.literal_column("'sending'")
LIVE_TIMER = sa.literal_column("'pending'"), sa.literal_column("'claimed'")


class Duplicate(Exception):
    """This platform message was processed before."""


class VersionConflict(Exception):
    """Another worker changed the conversation since we loaded it."""


@dataclass
class TurnCommit:
    conversation_id: str
    address: Address
    state_json: str
    mode: str
    locale: str
    expected_version: int  # 0: the conversation is new
    now: datetime
    inbound: Inbound | None
    effects: list[Effect] = field(default_factory=list)
    ticket_ids: dict[int, str] = field(default_factory=dict)  # effect index → ticket id
    current_ticket: str = ""
    timer_id: int | None = None  # the timer whose firing made this turn
    # an adapter's own writes that stand or fall with the turn (the web chat's log entry of the
    # patient's message: the widget takes it as the acknowledgement, so it exists only if committed)
    also: Callable[[Connection], Any] | None = None


@dataclass
class Claimed:
    """An outbox row this worker holds the lease on and must now deliver."""

    id: int
    conversation_id: str
    outbound: Outbound
    attempts: int = 0


@dataclass
class DueTimer:
    id: int
    conversation_id: str
    name: str
    due_at: datetime
    payload: dict[str, Any]
    address: Address | None


class _Statements:
    """The hot-path statements, built once per dialect (see fastsql): a turn only binds values."""

    def __init__(self, dialect: Dialect):
        if dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert
        b = sa.bindparam

        def fast(stmt: Any) -> FastStatement:
            return FastStatement(stmt, dialect)

        def cols(table: sa.Table, *names: str) -> dict[str, Any]:
            return {n: b(n, type_=table.c[n].type) for n in names}

        self.conv_insert = fast(insert(CONV).values(cols(
            CONV, "id", "org", "channel", "chat_id", "user_id", "thread_id", "is_group", "mode", "locale",
            "state", "version", "created_at", "updated_at")).on_conflict_do_nothing(
            index_elements=["id"]).returning(CONV.c.version))
        self.conv_update = fast(CONV.update().where(CONV.c.id == b("cid"), CONV.c.version == b("expected")).values(
            cols(CONV, "state", "mode", "locale", "version", "updated_at")))
        self.inbox_insert = fast(insert(INBOX).values(cols(
            INBOX, "org", "channel", "message_id", "conversation_id", "kind", "received_at",
            "processed_at", "body", "media")).on_conflict_do_nothing(index_elements=["channel", "message_id"]).returning(INBOX.c.id))
        self.outbox_insert = fast(OUTBOX.insert().values(cols(
            OUTBOX, "org", "conversation_id", "channel", "op", "content_key", "payload", "status", "attempts",
            "next_attempt_at", "lease_until", "claimed_by", "created_at", "platform_message_id",
            "last_error")).returning(OUTBOX.c.id))
        self.timer_insert = fast(TIMER.insert().values(cols(
            TIMER, "org", "conversation_id", "name", "due_at", "payload", "status", "created_at", "claimed_by")))
        self.timer_fired = fast(TIMER.update().where(TIMER.c.id == b("tid")).values(
            status="fired", fired_at=b("fired_at", type_=TIMER.c.fired_at.type)))
        self.timer_cancel = fast(TIMER.update().where(
            TIMER.c.conversation_id == b("cid"), TIMER.c.name == b("tname"),
            sa.or_(TIMER.c.status == "pending", TIMER.c.status == "claimed")).values(status="cancelled"))
        self.event_insert = fast(EVENT.insert().values(cols(EVENT, "org", "conversation_id", "kind", "data", "at")))
        # an undelivered row of the conversation that another worker holds (or nobody yet): a
        # turn's new rows then wait behind it, so replies keep their order after a crash
        self.open_elsewhere = fast(sa.select(OUTBOX.c.id).where(
            OUTBOX.c.conversation_id == b("cid"), OUTBOX.c.status.in_(OPEN_ROW),
            OUTBOX.c.claimed_by != b("me")).limit(1))
        # the same question for many conversations at once (PostgreSQL: the ids as one array)
        self.open_elsewhere_any = (
            "SELECT DISTINCT conversation_id FROM outbox WHERE conversation_id = ANY(%(cids)s) "
            "AND status IN ('pending', 'sending') AND claimed_by <> %(me)s") if dialect.name == "postgresql" else ""
        self.outbox_sent = fast(OUTBOX.update().where(OUTBOX.c.id == b("rid")).values(
            status="sent", lease_until=None, attempts=OUTBOX.c.attempts + 1,
            **cols(OUTBOX, "sent_at", "platform_message_id")))
        if dialect.name == "postgresql":
            # a group of turns (Store._commit_turns): one statement per kind of row, whatever the
            # group's size; the server runs one statement instead of one per row
            self.bulk_conv_insert = BulkInsert(CONV, [
                "id", "org", "channel", "chat_id", "user_id", "thread_id", "is_group", "mode", "locale", "state",
                "version", "created_at", "updated_at"], dialect, returning=("version",), key=("id",),
                on_conflict=("id",))
            self.bulk_conv_update = BulkUpdate(CONV, {"cid": "id", "expected": "version"},
                                               ["state", "mode", "locale", "version", "updated_at"], dialect,
                                               returning="id")
            self.bulk_inbox_insert = BulkInsert(INBOX, [
                "org", "channel", "message_id", "conversation_id", "kind", "received_at", "processed_at", "body",
                "media"], dialect, returning=("id",), key=("channel", "message_id"),
                on_conflict=("channel", "message_id"))
            # matched back by conversation and payload: two equal rows of one turn may swap ids harmlessly
            self.bulk_outbox_insert = BulkInsert(OUTBOX, [
                "org", "conversation_id", "channel", "op", "content_key", "payload", "status", "attempts",
                "next_attempt_at", "lease_until", "claimed_by", "created_at", "platform_message_id", "last_error"],
                dialect, returning=("id",), key=("conversation_id", "payload"))
            self.bulk_timer_insert = BulkInsert(TIMER, [
                "org", "conversation_id", "name", "due_at", "payload", "status", "created_at", "claimed_by"], dialect)
            self.bulk_event_insert = BulkInsert(EVENT, ["org", "conversation_id", "kind", "data", "at"], dialect)
            self.bulk_timer_cancel = BulkUpdate(TIMER, {"cid": "conversation_id", "tname": "name"}, [], dialect,
                                                extra="status = 'cancelled'",
                                                only="t.status IN ('pending', 'claimed')")
            self.bulk_outbox_sent = BulkUpdate(OUTBOX, {"rid": "id"}, ["sent_at", "platform_message_id"], dialect,
                                               extra="status = 'sent', lease_until = NULL, attempts = t.attempts + 1")


class Store:
    def __init__(self, url: str, *, worker_id: str = "w0", lease_seconds: float = 30.0,
                 sqlite_synchronous: str = "NORMAL", writer_threads: int | None = None,
                 liveness_seconds: float = 3.0):
        self.url = url
        self.engine = make_engine(url, sqlite_synchronous=sqlite_synchronous)
        self.postgres = is_postgres(self.engine)
        self.worker_id = worker_id
        self.lease = timedelta(seconds=lease_seconds)
        # a worker whose heartbeat is older than this is dead: its claims are taken over at once
        self.liveness = timedelta(seconds=liveness_seconds)
        self.writer = BatchWriter(self.engine, threads=writer_threads if writer_threads is not None else (2 if self.postgres else 0))
        self._stmts = _Statements(self.engine.dialect)
        self._sent_marks: list[tuple[dict[str, Any], asyncio.Future[None]]] = []
        self._readers = ThreadPoolExecutor(max_workers=4, thread_name_prefix="carebot-reader")
        sqlite_file = None if self.postgres or self.engine.url.database in (None, "", ":memory:") \
            else self.engine.url.database
        # SQLite: point reads on the event loop (see `load`); None until the first one
        self._inline_reads = sqlite_file is not None
        self._loop_reader: Connection | None = None
        self._checkpointer = None if sqlite_file is None else Checkpointer(
            sqlite_file, self.writer, synchronous=sqlite_synchronous)
        # effects a part of bot defines for itself (bot/groups: the moderation log, the banlist),
        # written in the turn's transaction: effect kind → writer(conn, effect, commit)
        self.effect_writers: dict[str, Callable[[Connection, Effect, TurnCommit], None]] = {}

    def close(self) -> None:
        self.writer.close()
        if self._loop_reader is not None:
            self._loop_reader.close()
            self._loop_reader = None
        self._readers.shutdown(wait=True)
        if self._checkpointer is not None:
            self._checkpointer.close()
        self.engine.dispose()

    # -- generic ---------------------------------------------------------------------------------

    async def read(self, fn: Callable[[Connection], Any]) -> Any:
        def run() -> Any:
            with self.engine.connect() as conn:
                return fn(conn)

        return await asyncio.get_running_loop().run_in_executor(self._readers, run)

    async def write(self, fn: Callable[[Connection], Any], key: str = "") -> Any:
        """Run `fn` in a write transaction (group commit). Writes to one conversation pass its id
        as `key`, so they run in order on one writer and never lock each other's rows."""
        return await self.writer.submit(fn, key)

    # -- conversation state ----------------------------------------------------------------------

    async def load(self, conversation_id: str) -> tuple[dict[str, Any] | None, int]:
        def q(conn: Connection) -> tuple[dict[str, Any] | None, int]:
            row = conn.execute(sa.select(CONV.c.state, CONV.c.version).where(CONV.c.id == conversation_id)).first()
            return (json.loads(row.state), row.version) if row else (None, 0)

        if self._inline_reads:
            try:
                return self._read_on_loop(q)
            except Exception as exc:
                if not is_busy(exc):
                    raise
        return await self.read(q)

    def _read_on_loop(self, fn: Callable[[Connection], Any]) -> Any:
        """SQLite: a read by primary key takes tens of microseconds — less than the two thread
        hand-offs of the reader pool, which on a busy core put a conversation's first message in
        the p99 tail. It never waits: with no busy handler, a locked database (WAL recovery by
        another process) raises at once and the caller reads through the pool instead."""
        if self._loop_reader is None:
            self._loop_reader = self.engine.connect()
            self._loop_reader.exec_driver_sql("PRAGMA busy_timeout=0")
        conn = self._loop_reader
        try:
            return fn(conn)
        finally:
            conn.rollback()  # end the read transaction: no snapshot kept between reads

    async def commit_turn(self, commit: TurnCommit) -> list[Claimed]:
        """Write state, inbox, outbox, timers and records atomically. Raises Duplicate or
        VersionConflict (nothing written). Returns the outbox rows this worker now delivers."""
        if self.postgres:  # turns committed meanwhile share their round trips (_commit_turns)
            return await self.writer.submit(Grouped(self._commit_turn, self._commit_turns, commit),
                                            commit.conversation_id)
        return await self.write(lambda conn: self._commit_turn(conn, commit), commit.conversation_id)

    # the rows of a turn, as statement parameters

    def _conv_row(self, c: TurnCommit) -> dict[str, Any]:
        if c.expected_version == 0:
            addr = c.address
            return dict(id=c.conversation_id, org=addr.org, channel=addr.channel, chat_id=addr.chat_id,
                        user_id=addr.user_id, thread_id=addr.thread_id, is_group=addr.is_group,
                        mode=c.mode, locale=c.locale, state=c.state_json, version=1, created_at=c.now,
                        updated_at=c.now)
        return dict(cid=c.conversation_id, expected=c.expected_version, state=c.state_json, mode=c.mode,
                    locale=c.locale, version=c.expected_version + 1, updated_at=c.now)

    def _inbox_row(self, c: TurnCommit, ib: Inbound) -> dict[str, Any]:
        addr = c.address
        said = ib.kind in PATIENT_WORDS and (not addr.is_group or ib.addressed or ib.kind != "text")
        return dict(org=addr.org, channel=ib.address.channel, message_id=ib.message_id,
                    conversation_id=c.conversation_id, kind=ib.kind, received_at=ib.received_at,
                    processed_at=c.now, body=(ib.text or str(ib.payload.get("value", ""))) if said else "",
                    media=ib.media.ref[:500] if said and ib.media else "")

    def _outbox_row(self, c: TurnCommit, ob: Outbound, behind: bool) -> dict[str, Any]:
        now = c.now
        return dict(org=c.address.org, conversation_id=c.conversation_id, channel=ob.address.channel, op=ob.op,
                    content_key=ob.key, payload=json.dumps(ob.to_dict(), ensure_ascii=False),
                    status="pending" if behind else "sending", attempts=0, next_attempt_at=now,
                    lease_until=None if behind else now + self.lease, claimed_by="" if behind else self.worker_id,
                    created_at=now, platform_message_id="", last_error="")

    def _timer_row(self, c: TurnCommit, effect: ScheduleTimer) -> dict[str, Any]:
        return dict(org=c.address.org, conversation_id=c.conversation_id, name=effect.name, due_at=effect.due_at,
                    payload=json.dumps({**effect.payload, "name": effect.name}, ensure_ascii=False, default=str),
                    status="pending", created_at=c.now, claimed_by="")

    def _event_row(self, c: TurnCommit, effect: RecordEvent | Tag) -> dict[str, Any]:
        kind = effect.event if isinstance(effect, RecordEvent) else "tag"
        data = effect.data if isinstance(effect, RecordEvent) else {"add": list(effect.add), "remove": list(effect.remove)}
        return dict(org=c.address.org, conversation_id=c.conversation_id, kind=kind,
                    data=json.dumps(data, ensure_ascii=False, default=str), at=c.now)

    def _commit_turns(self, conn: Connection, commits: list[TurnCommit]) -> list[list[Claimed]]:
        """Several turns (of different conversations) with a statement per kind of row, each one
        round trip (psycopg pipelines executemany): state rows, inbox rows, the open-elsewhere
        check, outbox rows, timers, events. Raises on any version conflict or duplicate: the
        writer then runs each turn alone (`_commit_turn`), so each gets its own outcome."""
        st = self._stmts
        new = [self._conv_row(c) for c in commits if c.expected_version == 0]
        old = [self._conv_row(c) for c in commits if c.expected_version != 0]
        if new and None in st.bulk_conv_insert.execute(conn, new):
            raise VersionConflict("a conversation in the group")
        if old and (len({r["cid"] for r in old}) != len(old)  # one row per conversation, or turns alone
                    or len(set(st.bulk_conv_update.execute(conn, old))) != len(old)):
            raise VersionConflict("a conversation in the group")
        inbox = [self._inbox_row(c, c.inbound) for c in commits if c.inbound is not None]
        if inbox and None in st.bulk_inbox_insert.execute(conn, inbox):
            raise Duplicate("a message in the group")
        sending = [c.conversation_id for c in commits if any(isinstance(e, (Send, Moderate)) for e in c.effects)]
        behind: set[str] = set()
        if sending:
            cursor = conn.connection.cursor()
            cursor.execute(st.open_elsewhere_any, {"cids": sending, "me": self.worker_id})
            behind = {r[0] for r in cursor.fetchall()}
            cursor.close()
        outbox: list[dict[str, Any]] = []
        owners: list[tuple[int, Outbound, bool]] = []
        cancels: list[dict[str, Any]] = []
        timers: list[dict[str, Any]] = []
        events: list[dict[str, Any]] = []
        for k, c in enumerate(commits):
            if c.also is not None:
                c.also(conn)
            if c.timer_id is not None:
                st.timer_fired.execute(conn, dict(tid=c.timer_id, fired_at=c.now))
            late = c.conversation_id in behind
            # timers group only when the turn's timer effects commute (each name once)
            names = [e.name for e in c.effects if isinstance(e, (ScheduleTimer, CancelTimer))]
            group_timers = len(names) == len(set(names))
            ticket = c.current_ticket
            for i, effect in enumerate(c.effects):
                if isinstance(effect, (Send, Moderate)):
                    outbox.append(self._outbox_row(c, effect.outbound, late))
                    owners.append((k, effect.outbound, not late))
                elif isinstance(effect, (RecordEvent, Tag)):
                    events.append(self._event_row(c, effect))
                elif group_timers and isinstance(effect, (ScheduleTimer, CancelTimer)):
                    cancels.append(dict(cid=c.conversation_id, tname=effect.name))
                    if isinstance(effect, ScheduleTimer):
                        timers.append(self._timer_row(c, effect))
                else:
                    ticket = self._write_effect(conn, c, i, effect, ticket)
        claimed: list[list[Claimed]] = [[] for _ in commits]
        if outbox:
            for (k, ob, mine), row in zip(owners, st.bulk_outbox_insert.execute(conn, outbox)):
                if mine:
                    claimed[k].append(Claimed(row[0], commits[k].conversation_id, ob))  # type: ignore[index]
        if cancels:
            st.bulk_timer_cancel.execute(conn, cancels)
        if timers:
            st.bulk_timer_insert.execute(conn, timers)
        if events:
            st.bulk_event_insert.execute(conn, events)
        return claimed

    def _commit_turn(self, conn: Connection, c: TurnCommit) -> list[Claimed]:
        st = self._stmts
        now = c.now
        if c.expected_version == 0:
            written = st.conv_insert.execute(conn, self._conv_row(c)).fetchone() is not None
        else:
            written = st.conv_update.execute(conn, self._conv_row(c)).rowcount == 1
        if not written:
            raise VersionConflict(c.conversation_id)
        if c.inbound is not None:
            inserted = st.inbox_insert.execute(conn, self._inbox_row(c, c.inbound)).fetchone()
            if inserted is None:
                raise Duplicate(c.inbound.dedupe_key)  # the caller's savepoint undoes the state write
        if c.also is not None:
            c.also(conn)
        if c.timer_id is not None:
            st.timer_fired.execute(conn, dict(tid=c.timer_id, fired_at=now))
        claimed: list[Claimed] = []
        ticket = c.current_ticket
        behind: bool | None = None  # is an earlier reply of this conversation still out elsewhere?
        for i, effect in enumerate(c.effects):
            if isinstance(effect, (Send, Moderate)):
                ob = effect.outbound
                if behind is None:
                    behind = st.open_elsewhere.execute(conn, dict(cid=c.conversation_id, me=self.worker_id)) \
                        .fetchone() is not None
                row_id = st.outbox_insert.execute(conn, self._outbox_row(c, ob, behind)).fetchone()[0]
                if not behind:  # else the sweep takes it, in order, once the earlier ones are out
                    claimed.append(Claimed(row_id, c.conversation_id, ob))
            elif isinstance(effect, (RecordEvent, Tag)):
                st.event_insert.execute(conn, self._event_row(c, effect))
            else:
                ticket = self._write_effect(conn, c, i, effect, ticket)
        return claimed

    def _write_effect(self, conn: Connection, c: TurnCommit, i: int, effect: Effect, ticket: str) -> str:
        """The rows of one effect that is not a message or a record (timers, tickets, what parts
        of bot define); returns the turn's current ticket."""
        st = self._stmts
        org, now = c.address.org, c.now
        if isinstance(effect, ScheduleTimer):
            self._cancel_timer(conn, c.conversation_id, effect.name)
            st.timer_insert.execute(conn, self._timer_row(c, effect))
        elif isinstance(effect, CancelTimer):
            self._cancel_timer(conn, c.conversation_id, effect.name)
        elif isinstance(effect, OpenTicket):
            ticket = c.ticket_ids[i]
            conn.execute(TICKET.insert().values(
                id=ticket, org=org, conversation_id=c.conversation_id, status="pending",
                department=effect.department, priority=effect.priority, reason=effect.reason,
                summary=json.dumps(effect.summary, ensure_ascii=False, default=str), opened_at=now))
            for author, body in effect.transcript:
                conn.execute(TICKET_MSG.insert().values(org=org, ticket_id=ticket, author=author, body=body,
                                                        media="", at=now))
        elif isinstance(effect, UpdateTicket) and ticket:
            values: dict[str, Any] = {}
            if effect.priority:
                values["priority"] = effect.priority
            if effect.status:
                values["status"] = effect.status
            if values:
                conn.execute(TICKET.update().where(TICKET.c.id == ticket).values(**values))
            if effect.message or effect.media:
                conn.execute(TICKET_MSG.insert().values(
                    org=org, ticket_id=ticket, author="patient", body=effect.message,
                    media=effect.media.ref if effect.media else "", at=now))
        elif (writer := self.effect_writers.get(effect.kind)) is not None:
            writer(conn, effect, c)
        return ticket

    def outbox_row(self, conn: Connection, conversation_id: str, ob: Outbound, now: datetime, org: str = "default") -> Claimed:
        """Write one outbox row from a transaction that is not a turn (a page to on-call staff),
        leased to this worker like a turn's rows; hand the result to the sender after the commit."""
        row_id = self._stmts.outbox_insert.execute(conn, dict(
            org=org, conversation_id=conversation_id, channel=ob.address.channel, op=ob.op, content_key=ob.key,
            payload=json.dumps(ob.to_dict(), ensure_ascii=False), status="sending", attempts=0,
            next_attempt_at=now, lease_until=now + self.lease, claimed_by=self.worker_id, created_at=now,
            platform_message_id="", last_error="")).fetchone()[0]
        return Claimed(row_id, conversation_id, ob)

    def _cancel_timer(self, conn: Connection, conversation_id: str, name: str) -> None:
        self._stmts.timer_cancel.execute(conn, dict(cid=conversation_id, tname=name))

    # -- outbox ------------------------------------------------------------------------------------

    def _dead(self, now: datetime) -> Any:
        """Workers whose heartbeat stopped (a worker that never beat is judged by its leases)."""
        return sa.select(WORKER.c.id).where(WORKER.c.beat_at < now - self.liveness)

    async def beat(self, now: datetime) -> None:
        """This worker is alive (the sender's loop calls it every second or so)."""
        if self.postgres:
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert
        stmt = insert(WORKER).values(id=self.worker_id, started_at=now, beat_at=now)
        stmt = stmt.on_conflict_do_update(index_elements=[WORKER.c.id], set_={"beat_at": now})
        await self.write(lambda conn: conn.execute(stmt))

    async def take_back(self, now: datetime) -> None:
        """At start-up: what an earlier life of this worker id held (outbox rows being delivered,
        timers being fired) is nobody's now. A restarted worker keeps its id (systemd's
        `CAREBOT_WORKER_ID=%H-%i`) and beats again at once, so without this its old claims would
        wait out their leases (30 s) instead of going out with the first sweep."""
        expired = now - timedelta(seconds=1)

        def q(conn: Connection) -> None:
            conn.execute(OUTBOX.update().where(OUTBOX.c.claimed_by == self.worker_id, OUTBOX.c.status == "sending")
                         .values(lease_until=expired))
            conn.execute(TIMER.update().where(TIMER.c.claimed_by == self.worker_id, TIMER.c.status == "claimed")
                         .values(lease_until=expired))

        await self.write(q)

    async def claim_outbox(self, now: datetime, limit: int = 200) -> list[Claimed]:
        """Rows due for (re)delivery — pending and due, or held by a worker that died (its heartbeat
        stopped, or its lease ran out) — and never a row behind an earlier undelivered row of its
        conversation that is not due itself: replies go out in order, also after a crash."""
        dead = self._dead(now)

        def due(rows: Any) -> Any:
            return sa.or_(
                sa.and_(rows.c.status == "pending", rows.c.next_attempt_at <= now),
                sa.and_(rows.c.status == "sending", sa.or_(rows.c.lease_until < now, rows.c.claimed_by.in_(dead))))

        def q(conn: Connection) -> list[Claimed]:
            earlier = OUTBOX.alias("earlier")
            blocked = sa.exists().where(earlier.c.conversation_id == OUTBOX.c.conversation_id,
                                        earlier.c.id < OUTBOX.c.id, earlier.c.status.in_(OPEN_ROW), ~due(earlier))
            sel = sa.select(OUTBOX.c.id).where(OUTBOX.c.status.in_(OPEN_ROW), due(OUTBOX), ~blocked) \
                .order_by(OUTBOX.c.id).limit(limit)
            if self.postgres:
                # not SKIP LOCKED: a row skipped while another worker claims it would let a later
                # row of its conversation go first. Sweeps are rare; they may wait for each other.
                sel = sel.with_for_update()
            ids = conn.execute(sel).scalars().all()
            if not ids:
                return []
            rows = conn.execute(OUTBOX.update().where(OUTBOX.c.id.in_(ids), due(OUTBOX)).values(
                status="sending", claimed_by=self.worker_id, lease_until=now + self.lease).returning(
                OUTBOX.c.id, OUTBOX.c.conversation_id, OUTBOX.c.payload, OUTBOX.c.attempts)).all()
            return sorted((Claimed(r.id, r.conversation_id, Outbound.from_dict(json.loads(r.payload)), r.attempts)
                           for r in rows), key=lambda c: c.id)

        return await self.write(q)

    async def outbox_sent(self, row_id: int, now: datetime, platform_message_id: str) -> None:
        """Record a delivery. Marks made in the same event-loop tick share one write."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        if not self._sent_marks:
            loop.call_soon(self._flush_sent)
        self._sent_marks.append(({"rid": row_id, "sent_at": now,
                                  "platform_message_id": platform_message_id[:200]}, fut))
        await fut

    def _flush_sent(self) -> None:
        marks, self._sent_marks = self._sent_marks, []
        params = [m for m, _ in marks]
        if self.postgres:  # one statement for all of them
            done = self.writer.submit(lambda conn: self._stmts.bulk_outbox_sent.execute(conn, params))
        else:
            done = self.writer.submit(lambda conn: self._stmts.outbox_sent.executemany(conn, params))

        def settle(f: asyncio.Future[Any]) -> None:
            for _, fut in marks:
                if fut.done():
                    continue
                if f.exception() is not None:
                    fut.set_exception(f.exception())  # type: ignore[arg-type]
                else:
                    fut.set_result(None)

        done.add_done_callback(settle)

    async def outbox_retry(self, row_id: int, next_at: datetime, error: str, give_up: bool,
                           hold: bool = False) -> None:
        """Record a failed attempt. `hold`: this worker retries it itself at `next_at`, so keep its
        lease until a little after that; otherwise leave it pending for any worker's sweep."""

        def q(conn: Connection) -> None:
            values: dict[str, Any] = dict(attempts=OUTBOX.c.attempts + 1, last_error=error[:500],
                                          next_attempt_at=next_at)
            if give_up:
                values.update(status="failed", lease_until=None)
            elif hold:
                values.update(status="sending", lease_until=next_at + self.lease)
            else:
                values.update(status="pending", lease_until=None)
            conn.execute(OUTBOX.update().where(OUTBOX.c.id == row_id).values(**values))

        await self.write(q)

    # -- timers --------------------------------------------------------------------------------------

    async def claim_timers(self, now: datetime, limit: int = 100, exclude: tuple[str, ...] = ()) -> list[DueTimer]:
        """Claim due timers for this worker. On PostgreSQL `FOR UPDATE SKIP LOCKED` keeps two
        workers from claiming one timer; a claim whose worker died is taken again after its lease.
        `exclude`: timer kinds claimed elsewhere (batch handlers)."""

        def q(conn: Connection) -> list[DueTimer]:
            due = sa.and_(TIMER.c.status.in_(LIVE_TIMER), sa.or_(
                sa.and_(TIMER.c.status == "pending", TIMER.c.due_at <= now),
                sa.and_(TIMER.c.status == "claimed",
                        sa.or_(TIMER.c.lease_until < now, TIMER.c.claimed_by.in_(self._dead(now))))),
                *(TIMER.c.name.notlike(f"{kind}:%") for kind in exclude))
            sel = sa.select(TIMER.c.id).where(due).order_by(TIMER.c.due_at, TIMER.c.id).limit(limit)
            if self.postgres:
                sel = sel.with_for_update(skip_locked=True)
            ids = conn.execute(sel).scalars().all()
            if not ids:
                return []
            rows = conn.execute(TIMER.update().where(TIMER.c.id.in_(ids), due).values(
                status="claimed", claimed_by=self.worker_id, lease_until=now + self.lease).returning(
                TIMER.c.id, TIMER.c.conversation_id, TIMER.c.name, TIMER.c.due_at, TIMER.c.payload)).all()
            conv_ids = {r.conversation_id for r in rows}
            addresses = {r.id: r for r in conn.execute(sa.select(
                CONV.c.id, CONV.c.org, CONV.c.channel, CONV.c.chat_id, CONV.c.user_id, CONV.c.thread_id,
                CONV.c.is_group).where(CONV.c.id.in_(conv_ids)))}
            out = []
            for r in sorted(rows, key=lambda r: (r.due_at, r.id)):
                a = addresses.get(r.conversation_id)
                addr = Address(a.channel, a.chat_id, a.user_id, a.thread_id, a.is_group, a.org) if a else None
                out.append(DueTimer(r.id, r.conversation_id, r.name, r.due_at, json.loads(r.payload), addr))
            return out

        return await self.write(q)

    async def release_timer(self, timer_id: int) -> None:
        """Give a claimed timer back (its turn was a duplicate or could not run)."""
        await self.write(lambda conn: conn.execute(TIMER.update().where(
            TIMER.c.id == timer_id, TIMER.c.status == "claimed").values(status="fired")))

    async def postpone_timer(self, timer_id: int, due_at: datetime, now: datetime, conversation_id: str = "",
                             reason: str = "") -> None:
        """Put a claimed timer back, due later (quiet hours, opt-out, weekly cap), and say why."""

        def q(conn: Connection) -> None:
            conn.execute(TIMER.update().where(TIMER.c.id == timer_id).values(
                status="pending", due_at=due_at, lease_until=None, claimed_by=""))
            if reason:
                conn.execute(EVENT.insert().values(
                    org="default", conversation_id=conversation_id, kind="proactive_withheld",
                    data=json.dumps({"reason": reason, "until": due_at.isoformat()}),
                    at=now))

        await self.write(q)

    async def next_timer_due(self) -> datetime | None:
        return await self.read(lambda conn: conn.execute(
            sa.select(sa.func.min(TIMER.c.due_at)).where(TIMER.c.status == LIVE_TIMER[0])).scalar())

    # -- audit -----------------------------------------------------------------------------------------

    async def audit(self, now: datetime, actor: str, action: str, subject: str,
                    detail: dict[str, Any] | None = None, org: str = "default") -> None:
        await self.write(lambda conn: conn.execute(AUDIT.insert().values(
            org=org, at=now, actor=actor, action=action, subject=subject,
            detail=json.dumps(detail or {}, ensure_ascii=False))))
