"""The staff side on Telegram: one patient, one care thread — a forum topic per ticket in the staff
supergroup (`CAREBOT_TELEGRAM_STAFF_CHAT`).

Out (the mirror): a ticket's topic is a view of its records, caught up by `sync(ticket)`:

    ticket opened  → createForumTopic "<patient's display name> · <ticket id>", then the intake
                     summary and the conversation so far
    ticket_event   → assigned, taken, transferred, escalated, a reply or a note written in the
                     console, closed (→ closeForumTopic), abandoned
    ticket_message → what the patient writes while a person has the thread (a photo the patient
                     sent on Telegram is shown by its file id)

The topic row keeps how far it got (`last_event_id`, `last_message_id`), so a sync is idempotent,
resumes after a crash or a refused call, and is held under one `Coord` lock per ticket so two
workers never post the same line twice. It is woken by the runtime's `after_commit` (in this
process), the `console` feed (ids only; other processes, the console's notes and replies) and a
slow sweep (what a lost pub/sub message missed).

In: an update from the staff chat never reaches the runtime as a patient message. A linked staff
member's text in a ticket's topic is their reply to the patient (`HandoffService.reply`, so the
patient sees the doctor's name, the quality rules run and the console shows it); `/take`, `/note`,
`/transfer`, `/close` are the facade's take, note, transfer and close. Someone not linked to a staff
account (`carebot telegram link-staff`) is told so and nothing is relayed. A retried `update_id` is
dropped by the inbox table (channel `telegram_staff`); the check and the action are not one
transaction, so a crash between the action and its inbox row can repeat that one action.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from aiogram.exceptions import TelegramAPIError, TelegramRetryAfter
from aiogram.methods import (AnswerCallbackQuery, CloseForumTopic, CreateForumTopic, SendDocument, SendMessage,
                             SendPhoto, TelegramMethod)

from adapters.telegram import messages
from adapters.telegram.models import TelegramChat, TelegramStaff, TelegramTopic
from bot.handoff.models import TicketEvent
from bot.handoff.staff import HandoffError, StaffMember
from bot.handoff.tickets import OPEN
from bot.store.store import CONV, INBOX, TICKET, TICKET_MSG

if TYPE_CHECKING:
    from datetime import datetime

    from adapters.telegram.adapter import TelegramAdapter
    from bot.handoff.service import HandoffService
    from bot.runtime.runtime import Runtime
    from bot.store.store import TurnCommit

log = logging.getLogger("carebot.telegram.staff")

TOPIC = TelegramTopic.__table__
LINK = TelegramStaff.__table__
CHAT = TelegramChat.__table__
EVENTS = TicketEvent.__table__
INBOX_CHANNEL = "telegram_staff"
COMMANDS = ("/take", "/note", "/transfer", "/close", "/help", "/start")
HEADER_DUE = -1  # last_event_id of a topic whose intake summary is not posted yet
MAX_POST = 4000  # under Telegram's 4,096 so a post never needs a second cut
TOPIC_TITLE = 128
SHOWN_EVENTS = ("assigned", "taken", "replied", "noted", "transferred", "escalated", "closed", "abandoned")


class StaffDesk:
    def __init__(self, adapter: TelegramAdapter):
        self.adapter = adapter
        self.config = adapter.config
        self.chat_id = int(self.config.staff_chat_id) if self.config.staff_chat_id else 0
        self.handoff: HandoffService | None = None
        self._running: dict[str, asyncio.Task[Any]] = {}
        self._dirty: set[str] = set()
        self._background: list[asyncio.Task[Any]] = []

    @property
    def enabled(self) -> bool:
        return bool(self.chat_id) and self.handoff is not None

    # -- lifecycle -----------------------------------------------------------------------------------

    async def start(self, runtime: Runtime) -> None:
        if not self.enabled:
            return
        runtime.after_commit.append(self._after_commit)
        loop = asyncio.get_running_loop()
        self._background = [loop.create_task(self._listen()), loop.create_task(self._sweeping())]
        await asyncio.sleep(0)  # the feed subscription registers before anything is published

    async def stop(self) -> None:
        for task in self._background:
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        self._background = []
        await self.idle()

    async def idle(self) -> None:
        """Wait until every scheduled sync has run (tests, shutdown)."""
        while self._running:
            await asyncio.gather(*list(self._running.values()), return_exceptions=True)

    def _locale(self) -> str:
        runtime = self.adapter.runtime
        base = runtime.engine.content.base_locale if runtime is not None else "zh-CN"
        return self.config.staff_locale or base

    def t(self, key: str, **values: Any) -> str:
        runtime = self.adapter.runtime
        return messages.render(key, self._locale(), runtime.engine.content if runtime else None, **values)

    # -- what wakes the mirror -----------------------------------------------------------------------

    def _after_commit(self, commit: TurnCommit) -> None:
        ids = set(commit.ticket_ids.values())
        if commit.current_ticket:
            ids.add(commit.current_ticket)
        if commit.inbound is not None and commit.inbound.kind in ("staff_event", "staff_reply"):
            ids.add(str(commit.inbound.payload.get("ticket_id", "")))
        for ticket_id in ids - {""}:
            self.schedule(ticket_id)

    async def _listen(self) -> None:
        """The console feed (ids only): what staff did anywhere, in any process."""
        assert self.adapter.runtime is not None
        while True:
            try:
                async for message in self.adapter.runtime.coord.subscribe("console"):
                    try:
                        event = json.loads(message)
                    except ValueError:
                        continue
                    if isinstance(event, dict) and event.get("ticket"):
                        self.schedule(str(event["ticket"]))
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the feed broke (Redis restarted): the sweep covers the gap
                log.warning("staff feed interrupted: %s", type(exc).__name__)
                await asyncio.sleep(5)

    async def _sweeping(self) -> None:
        while True:
            await asyncio.sleep(self.config.staff_sweep_seconds)
            try:
                await self.sweep()
            except Exception as exc:  # the store is away for a moment: next round
                log.warning("staff sweep failed: %s", type(exc).__name__)

    async def sweep(self) -> int:
        """Schedule every open ticket without a topic and every topic still open."""
        assert self.adapter.runtime is not None

        def q(conn: sa.Connection) -> list[str]:
            missing = conn.execute(sa.select(TICKET.c.id).select_from(TICKET.outerjoin(
                TOPIC, TOPIC.c.ticket_id == TICKET.c.id)).where(
                TICKET.c.status.in_(OPEN), TOPIC.c.ticket_id.is_(None)).limit(500)).scalars().all()
            live = conn.execute(sa.select(TOPIC.c.ticket_id).where(TOPIC.c.closed.is_(False)).limit(500)).scalars().all()
            return list(dict.fromkeys([*missing, *live]))

        ids = await self.adapter.runtime.store.read(q)
        for ticket_id in ids:
            self.schedule(ticket_id)
        return len(ids)

    def schedule(self, ticket_id: str) -> None:
        """Catch the ticket's topic up soon; one sync per ticket at a time, re-run when woken meanwhile."""
        if not self.enabled:
            return
        if ticket_id in self._running:
            self._dirty.add(ticket_id)
            return
        task = asyncio.get_running_loop().create_task(self._sync_loop(ticket_id))
        self._running[ticket_id] = task

    async def _sync_loop(self, ticket_id: str) -> None:
        try:
            while True:
                self._dirty.discard(ticket_id)
                try:
                    await self.sync(ticket_id)
                except Exception as exc:  # the next wake-up or the sweep tries again
                    log.warning("topic sync ticket=%s failed: %s", ticket_id, type(exc).__name__)
                if ticket_id not in self._dirty:
                    return
        finally:
            self._running.pop(ticket_id, None)

    # -- the mirror ----------------------------------------------------------------------------------

    async def sync(self, ticket_id: str) -> None:
        runtime = self.adapter.runtime
        assert runtime is not None and self.handoff is not None
        async with runtime.coord.lock(f"telegram:topic:{ticket_id}", ttl=120.0, wait=180.0):
            try:
                ticket = await self.handoff.tickets.get(ticket_id)
            except HandoffError:
                return
            topic = await runtime.store.read(lambda c: c.execute(sa.select(TOPIC).where(
                TOPIC.c.ticket_id == ticket_id)).first())
            if topic is None:
                if ticket.status not in OPEN:
                    return  # closed before any topic was opened: nothing to work on
                topic = await self._open_topic(ticket)
                if topic is None:
                    return
            if topic.closed:
                return
            await self._catch_up(ticket, topic)

    async def _open_topic(self, ticket: Any) -> Any:
        runtime = self.adapter.runtime
        assert runtime is not None
        conv = await runtime.store.read(lambda c: c.execute(sa.select(CONV.c.channel, CONV.c.user_id, CONV.c.locale).where(
            CONV.c.id == ticket.conversation_id)).first())
        name = await self._patient_name(conv)
        title = f"{name} · {ticket.id}"
        if len(title) > TOPIC_TITLE:
            title = f"{name[:TOPIC_TITLE - len(ticket.id) - 4]}… · {ticket.id}"
        created = await self._call(CreateForumTopic(chat_id=self.chat_id, name=title))
        if created is None:
            return None
        thread_id = int(created.message_thread_id)
        now = runtime.clock.now()
        await runtime.store.write(lambda c: c.execute(TOPIC.insert().values(
            ticket_id=ticket.id, org=self.config.org, conversation_id=ticket.conversation_id,
            staff_chat_id=str(self.chat_id), thread_id=thread_id, closed=False, last_event_id=HEADER_DUE,
            last_message_id=0, created_at=now)))
        log.info("topic opened ticket=%s thread=%s", ticket.id, thread_id)
        return await runtime.store.read(lambda c: c.execute(sa.select(TOPIC).where(
            TOPIC.c.ticket_id == ticket.id)).first())

    async def _post_header(self, ticket: Any, topic: Any) -> bool:
        runtime = self.adapter.runtime
        assert runtime is not None
        conv = await runtime.store.read(lambda c: c.execute(sa.select(CONV.c.channel, CONV.c.user_id, CONV.c.locale).where(
            CONV.c.id == ticket.conversation_id)).first())
        if not await self._post(topic.thread_id, self._header(ticket, await self._patient_name(conv), conv)):
            return False
        await self._advance(ticket.id, 0, topic.last_message_id)
        return True

    async def _patient_name(self, conv: Any) -> str:
        """The person's Telegram display name (what a doctor sees in any chat app), else "Patient"."""
        runtime = self.adapter.runtime
        assert runtime is not None
        if conv is not None and conv.channel == self.adapter.channel and conv.user_id:
            row = await runtime.store.read(lambda c: c.execute(sa.select(CHAT.c.display_name).where(
                CHAT.c.id == conv.user_id)).first())
            if row is not None and row.display_name:
                return str(row.display_name)
        return self.t("telegram.staff.patient_name")

    def _header(self, ticket: Any, name: str, conv: Any) -> str:
        """The intake summary: what the console's thread page shows, and the commands."""
        try:
            summary = json.loads(ticket.summary or "{}")
        except ValueError:
            summary = {}
        summary = summary if isinstance(summary, dict) else {}
        lines = [self.t("telegram.staff.opened", ticket=ticket.id, department=self._department(ticket.department),
                        priority=ticket.priority, reason=ticket.reason or "—", name=name,
                        channel=conv.channel if conv else "—", language=(conv.locale if conv else "") or "—")]
        if summary.get("triage_level"):
            lines.append(self.t("telegram.staff.triage", level=summary["triage_level"]))
        slots = summary.get("slots") if isinstance(summary.get("slots"), dict) else {}
        lines += [f"{key}: {_plain(value)}" for key, value in slots.items()]
        lines += ["", self.t("telegram.staff.help")]
        return "\n".join(lines)

    def _department(self, department: str) -> str:
        runtime = self.adapter.runtime
        if runtime is not None and department and runtime.engine.content.lookup(f"dept.{department}",
                                                                                 self._locale()) is not None:
            return str(runtime.engine.content.render(f"dept.{department}", self._locale(), {}))
        return department or "—"

    async def _catch_up(self, ticket: Any, topic: Any) -> None:
        runtime = self.adapter.runtime
        assert runtime is not None
        if topic.last_event_id == HEADER_DUE:  # the intake summary first (again, if its post failed)
            if not await self._post_header(ticket, topic):
                return
            topic = await runtime.store.read(lambda c: c.execute(sa.select(TOPIC).where(
                TOPIC.c.ticket_id == ticket.id)).first())
        events = await runtime.store.read(lambda c: c.execute(sa.select(EVENTS).where(
            EVENTS.c.ticket_id == ticket.id, EVENTS.c.id > topic.last_event_id).order_by(EVENTS.c.id)).all())
        msgs = await runtime.store.read(lambda c: c.execute(sa.select(TICKET_MSG).where(
            TICKET_MSG.c.ticket_id == ticket.id, TICKET_MSG.c.id > topic.last_message_id).order_by(
            TICKET_MSG.c.id)).all())
        quoted_ids = [d["message"] for d in (_detail(e) for e in events) if isinstance(d.get("message"), int)]
        quoted = {}
        if quoted_ids:
            quoted = dict(await runtime.store.read(lambda c: c.execute(sa.select(TICKET_MSG.c.id, TICKET_MSG.c.body).where(
                TICKET_MSG.c.id.in_(quoted_ids))).all()))
        items: list[tuple[Any, int, int, str, str]] = []  # (at, order, row id, kind, text or the file as JSON)
        names = {m.id: m.signature for m in await self.handoff.all_staff()} if self.handoff else {}
        for m in msgs:
            if m.author.startswith(("staff:", "note:")):
                items.append((m.at, 0, m.id, "skip_msg", ""))  # shown through its event (replied, noted)
            elif m.media.startswith("telegram:"):
                items.append((m.at, 0, m.id, "media", json.dumps({"ref": m.media, "caption": m.body})))
            else:
                key = "telegram.staff.bot" if m.author == "bot" else "telegram.staff.patient"
                text = self.t(key, text=m.body) if m.body else self.t("telegram.staff.patient_file", name=m.media or "—")
                items.append((m.at, 0, m.id, "msg", text))
        for e in events:
            kind = "end" if e.kind in ("closed", "abandoned") else "event"
            items.append((e.at, 1, e.id, kind, self._event_text(e, _detail(e), names, quoted)))
        items.sort(key=lambda item: (item[0], item[1], item[2]))
        last_event, last_msg = topic.last_event_id, topic.last_message_id
        batch: list[str] = []
        closing = False

        async def flush() -> bool:
            nonlocal batch
            if batch:
                for part in _chunks("\n\n".join(batch)):
                    if not await self._post(topic.thread_id, part):
                        return False
                batch = []
            await self._advance(ticket.id, last_event, last_msg)
            return True

        for _at, _order, row_id, kind, value in items:
            if kind == "media":
                if not await flush():
                    return
                info = json.loads(value)
                if not await self._post_media(topic.thread_id, info["ref"], self.t("telegram.staff.patient",
                                                                                   text=info["caption"] or "—")):
                    return
            elif value and kind != "skip_msg":
                if sum(len(b) for b in batch) + len(value) > MAX_POST and not await flush():
                    return
                batch.append(value)
            if kind in ("event", "end"):
                last_event = row_id
                closing = closing or kind == "end"
            else:
                last_msg = row_id
        if not await flush():
            return
        if closing or ticket.status not in OPEN:
            if await self._call(CloseForumTopic(chat_id=self.chat_id, message_thread_id=topic.thread_id),
                                quiet=("TOPIC_NOT_MODIFIED",)) is not None:
                await runtime.store.write(lambda c: c.execute(TOPIC.update().where(
                    TOPIC.c.ticket_id == ticket.id).values(closed=True)))
                log.info("topic closed ticket=%s", ticket.id)

    def _event_text(self, e: Any, d: dict[str, Any], names: dict[str, str], quoted: dict[int, str]) -> str:
        who = names.get(e.actor, e.actor)
        kind = e.kind
        if kind not in SHOWN_EVENTS:
            return ""
        if kind in ("replied", "noted"):
            if d.get("via") == "telegram":
                return ""  # written in this topic: already here
            text = quoted.get(d.get("message"), "") if isinstance(d.get("message"), int) else ""
            return self.t(f"telegram.staff.{kind}", staff=who, text=text or "…")
        if kind == "assigned":
            assignee = str(d.get("assignee", ""))
            return self.t("telegram.staff.assigned", staff=names.get(assignee, assignee)) if assignee else ""
        if kind == "transferred":
            to_staff = str(d.get("to_staff", ""))
            target = names.get(to_staff, to_staff) if to_staff else self._department(str(d.get("to_department", "")))
            return self.t("telegram.staff.transferred", staff=who, target=target, reason=d.get("reason", ""))
        if kind == "escalated":
            to = str(d.get("to", ""))
            return self.t("telegram.staff.escalated", target=names.get(to) or self._department(to),
                          reason=d.get("reason", ""))
        return self.t(f"telegram.staff.{kind}", staff=who)

    async def _advance(self, ticket_id: str, last_event: int, last_msg: int) -> None:
        runtime = self.adapter.runtime
        assert runtime is not None
        await runtime.store.write(lambda c: c.execute(TOPIC.update().where(TOPIC.c.ticket_id == ticket_id).values(
            last_event_id=last_event, last_message_id=last_msg)))

    async def _post(self, thread_id: int, text: str) -> bool:
        return await self._call(SendMessage(chat_id=self.chat_id, message_thread_id=thread_id, text=text),
                                paced=True) is not None

    async def _post_media(self, thread_id: int, ref: str, caption: str) -> bool:
        """A photo or file the patient sent on Telegram: the same bot may send it again by its id."""
        file_id = ref.removeprefix("telegram:")
        caption = caption[:1024]
        photo = await self._call(SendPhoto(chat_id=self.chat_id, message_thread_id=thread_id, photo=file_id,
                                           caption=caption), paced=True, quiet=("wrong file", "type"))
        if photo is not None:
            return True
        return await self._call(SendDocument(chat_id=self.chat_id, message_thread_id=thread_id, document=file_id,
                                             caption=caption), paced=True) is not None

    async def _call(self, method: TelegramMethod[Any], *, paced: bool = False, quiet: tuple[str, ...] = ()) -> Any:
        """One Bot API call for the staff group; a 429 is waited out (a few times), anything else
        is logged and answered None (the cursor stays: the next sync tries again)."""
        pacer = self.adapter.pacer
        for _attempt in range(4):
            if paced and pacer is not None:
                await pacer.wait(str(self.chat_id), True)
            try:
                return await self.adapter.bot(method)
            except TelegramRetryAfter as exc:
                if pacer is not None:  # every sender waits, not only this call
                    await pacer.hold(str(self.chat_id), True, float(exc.retry_after))
                await asyncio.sleep(min(float(exc.retry_after), 60.0))
            except TelegramAPIError as exc:
                if not any(q in exc.message for q in quiet):
                    log.warning("staff %s failed: %s", type(method).__name__, type(exc).__name__)
                return None
        return None

    # -- the staff group's updates ---------------------------------------------------------------------

    def owns(self, update: dict[str, Any]) -> bool:
        """Is this update from the staff group? (Never a patient's message.)"""
        if not self.chat_id:
            return False
        body = update.get("message") or update.get("edited_message") or (update.get("callback_query") or {}).get(
            "message") or (update.get("chat_member") or update.get("my_chat_member") or {})
        return isinstance(body, dict) and (body.get("chat") or {}).get("id") == self.chat_id

    async def feed(self, update: dict[str, Any]) -> str:
        """A staff member's message or command; returns once it is done (durable)."""
        runtime = self.adapter.runtime
        assert runtime is not None
        if "callback_query" in update:
            query_id = str(update["callback_query"].get("id", ""))
            if query_id:
                await self._call(AnswerCallbackQuery(callback_query_id=query_id), quiet=("query",))
            return "ignored"
        if not self.enabled:
            return "ignored"
        edited = "edited_message" in update
        message = update.get("edited_message" if edited else "message")
        if not isinstance(message, dict):
            return "ignored"
        user = message.get("from") or {}
        if not user or user.get("is_bot"):
            return "ignored"
        thread = int(message["message_thread_id"]) if message.get("is_topic_message") and message.get(
            "message_thread_id") else 0
        text = str(message.get("text") or "")
        command, rest = _command(text, self.adapter.username)
        if command is None:
            return "ignored"  # a command for another bot
        topic = None
        if thread:
            topic = await runtime.store.read(lambda c: c.execute(sa.select(TOPIC).where(
                TOPIC.c.staff_chat_id == str(self.chat_id), TOPIC.c.thread_id == thread)).first())
        if topic is None and not command:
            return "ignored"  # the group's own talk (General, other topics): not ours to relay
        inbox_id = f"{self.adapter.bot_id}:{update.get('update_id')}"
        if await runtime.store.read(lambda c: c.execute(sa.select(INBOX.c.id).where(
                INBOX.c.channel == INBOX_CHANNEL, INBOX.c.message_id == inbox_id)).first()):
            return "duplicate"
        staff = await self._staff_of(user.get("id"))
        if staff is None:
            log.info("staff group: unlinked telegram user refused")
            outcome = "refused"
            await self._answer(thread, message, self.t("telegram.staff.unknown_user", user_id=user.get("id")))
        elif edited:
            outcome = "ignored"
            await self._answer(thread, message, self.t("telegram.staff.edit_ignored"))
        else:
            outcome = await self._act(staff, topic, command, rest, text, message, thread)
        await self._record(inbox_id, topic.conversation_id if topic is not None else "", outcome)
        if topic is not None:
            self.schedule(topic.ticket_id)
        return outcome

    async def _act(self, staff: StaffMember, topic: Any, command: str, rest: str, text: str,
                   message: dict[str, Any], thread: int) -> str:
        assert self.handoff is not None
        service = self.handoff
        if command in ("/help", "/start") or (command and command not in COMMANDS):
            await self._answer(thread, message, self.t("telegram.staff.help"))
            return "answered"
        if topic is None:
            await self._answer(thread, message, self.t("telegram.staff.no_ticket"))
            return "answered"
        ticket_id = topic.ticket_id
        try:
            if command == "/take":
                if not await service.take(ticket_id, staff):
                    ticket = await service.tickets.get(ticket_id)
                    holder = await service.staff(ticket.assignee) if ticket.assignee else None
                    if ticket.status not in OPEN:
                        await self._answer(thread, message, self.t("telegram.staff.ticket_closed"))
                    else:
                        await self._answer(thread, message, self.t("telegram.staff.taken_by_other", staff=(
                            holder.signature if holder else ticket.assignee or "—")))
                    return "refused"
                return "taken"
            if command == "/note":
                if not rest:
                    await self._answer(thread, message, self.t("telegram.staff.usage_note"))
                    return "refused"
                await service.note(ticket_id, staff, rest, via="telegram")
                await self._answer(thread, message, self.t("telegram.staff.note_saved"))
                return "noted"
            if command == "/transfer":
                target, _, reason = rest.partition(" ")
                departments = service.settings.departments
                if not target:
                    await self._answer(thread, message, self.t("telegram.staff.usage_transfer",
                                                               departments=", ".join(departments)))
                    return "refused"
                if target in departments:
                    await service.transfer(ticket_id, staff, department=target, reason=reason.strip())
                else:
                    await service.transfer(ticket_id, staff, to_staff=target.lstrip("@"), reason=reason.strip())
                return "transferred"
            if command == "/close":
                await service.close(ticket_id, staff, rest or "resolved")
                return "closed"
            if not text.strip():
                await self._answer(thread, message, self.t("telegram.staff.text_only"))
                return "refused"
            ticket = await service.tickets.get(ticket_id)
            if ticket.status not in OPEN:
                await self._answer(thread, message, self.t("telegram.staff.ticket_closed"))
                return "refused"
            await service.reply(ticket_id, staff, text, via="telegram")
            return "replied"
        except HandoffError as exc:
            await self._answer(thread, message, self.t("telegram.staff.refused", reason=exc.text(self._locale())))
            return "refused"

    async def _answer(self, thread: int, message: dict[str, Any], text: str) -> None:
        """A word to the staff member, in the topic, replying to their message."""
        from aiogram.types import ReplyParameters

        await self._call(SendMessage(chat_id=self.chat_id, message_thread_id=thread or None, text=text,
                                     reply_parameters=ReplyParameters(message_id=int(message.get("message_id", 0)),
                                                                      allow_sending_without_reply=True)),
                         paced=True)

    async def _staff_of(self, telegram_user_id: Any) -> StaffMember | None:
        runtime = self.adapter.runtime
        assert runtime is not None and self.handoff is not None
        row = await runtime.store.read(lambda c: c.execute(sa.select(LINK.c.staff_id).where(
            LINK.c.telegram_user_id == str(telegram_user_id))).first())
        if row is None:
            return None
        member = await self.handoff.staff(row.staff_id)
        active = await self.handoff.accounts.active_among([row.staff_id]) if member else set()
        return member if member is not None and member.id in active else None

    async def _record(self, inbox_id: str, conversation_id: str, outcome: str) -> None:
        runtime = self.adapter.runtime
        assert runtime is not None
        now = runtime.clock.now()

        def q(conn: sa.Connection) -> None:
            try:
                with conn.begin_nested():
                    conn.execute(INBOX.insert().values(org=self.config.org, channel=INBOX_CHANNEL, message_id=inbox_id,
                                                       conversation_id=conversation_id, kind=outcome[:16],
                                                       received_at=now, processed_at=now))
            except sa.exc.IntegrityError:
                pass  # a concurrent retry recorded it first

        await runtime.store.write(q)

    # -- linking Telegram users to staff accounts --------------------------------------------------------

    @staticmethod
    def link(conn: sa.Connection, telegram_user_id: int, staff_id: str, now: datetime, org: str = "default") -> None:
        conn.execute(LINK.delete().where(LINK.c.telegram_user_id == str(telegram_user_id)))
        conn.execute(LINK.insert().values(telegram_user_id=str(telegram_user_id), org=org, staff_id=staff_id,
                                          linked_at=now))


def _detail(event: Any) -> dict[str, Any]:
    try:
        value = json.loads(event.detail or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _plain(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value)
    return "—" if value in (None, "") else str(value)


def _chunks(text: str) -> list[str]:
    """Cut at line breaks into posts of at most MAX_POST characters."""
    parts: list[str] = []
    while len(text) > MAX_POST:
        cut = text.rfind("\n", 0, MAX_POST)
        cut = cut if cut > 0 else MAX_POST
        parts.append(text[:cut])
        text = text[cut:].lstrip("\n")
    if text.strip():
        parts.append(text)
    return parts


def _command(text: str, username: str) -> tuple[str | None, str]:
    """("/take", rest) for a command to this bot, ("", text) for plain text, (None, "") for a
    command addressed to another bot."""
    if not text.startswith("/"):
        return "", text
    word, _, rest = text.partition(" ")
    name, _, target = word.partition("@")
    if target and username and target.lower() != username.lower():
        return None, ""
    return name.lower(), rest.strip()
