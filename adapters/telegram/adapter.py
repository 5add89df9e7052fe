"""The Telegram adapter: patients in private chats and groups, on aiogram 3's typed Bot API client.

In: every update — from the webhook (`asgi_routes`, pure ASGI), long polling (`polling.py`) or an existing bot's
aiogram Router / PTB handler (`integrations.py`) — goes through `feed`, which returns only once the
update is durable: the turn committed (the runtime's inbox de-duplicates a retried `update_id`), or
the adapter's own record written. Out: the outbox sender calls `send`; each Bot API call first takes
its place in Telegram's limits (`pacing.py`) and its outcome is mapped to a `Delivery`:

    TelegramRetryAfter (429)             retry after `retry_after` seconds; what it concerns — the chat,
                                         or the whole bot — is held as long in the shared pacing
                                         (pacing.py), so no worker sends into the wall
    TelegramForbiddenError (403)         for good: the person blocked the bot — recorded, and the
                                         conversation is stopped (a `leave` turn sets opted_out)
    TelegramBadRequest "chat not found"  for good
    TelegramMigrateToChat                the group became a supergroup: recorded, sent there at once
    other 400 / 404                      for good (the request itself is wrong; retrying repeats it)
    network, 5xx, 401, 409               retried with backoff
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
from collections import OrderedDict
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import aiohttp
import sqlalchemy as sa
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (TelegramAPIError, TelegramBadRequest, TelegramForbiddenError,
                                TelegramMigrateToChat, TelegramNetworkError, TelegramNotFound,
                                TelegramRetryAfter)
from aiogram.methods import AnswerCallbackQuery, EditMessageReplyMarkup, SendMessage, TelegramMethod
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup, ReplyParameters

from adapters.telegram import messages
from adapters.telegram.config import TelegramConfig
from adapters.telegram.models import TelegramChat, TelegramConversation
from adapters.telegram.moderation import OPEN_VALUES, GroupModeration, with_mention
from adapters.telegram.pacing import Pacer
from adapters.telegram.parse import CHANNEL, Parsed, parse_update, with_chat
from adapters.telegram.render import MAX_BUTTONS, Text, plan
from adapters.telegram.staff import StaffDesk
from adapters.telegram.wire import BotAPIWire, WireError
from bot.adapter import Adapter, Capabilities
from bot.store.fastsql import FastStatement
from bot.types import Address, Delivery, Inbound, Media, Outbound
from bot.uploads import UploadRefused, check_upload

if TYPE_CHECKING:
    from starlette.types import Receive, Scope, Send

    from bot.handoff.service import HandoffService
    from bot.runtime.runtime import Runtime

log = logging.getLogger("carebot.telegram")

CHAT = TelegramChat.__table__
CONV = TelegramConversation.__table__
MAX_UPDATE_BYTES = 1024 * 1024
PRIVATE_KEYS = ("paging.", "handoff.", "safety.", "guidance.")  # in a group, said privately when possible
CHAT_RECORD_SECONDS = 600.0  # a chat's unchanged record is written again after this long at most
JSON_BODY = {"Content-Type": "application/json"}
RECORDED_CHATS = 50_000  # chats whose last record this process remembers


@dataclass(frozen=True)
class SentText:
    """What carebot reads of a sent message: its id."""

    message_id: int


def _method(call: TelegramMethod[Any] | Text) -> TelegramMethod[Any]:
    return call.method() if isinstance(call, Text) else call


async def _respond(send: Send, status: int, body: bytes = b"",
                   headers: tuple[tuple[bytes, bytes], ...] = ()) -> None:
    """One whole HTTP response on ASGI; a body is JSON."""
    head = [(b"content-length", str(len(body)).encode()), *headers]
    if body:
        head.append((b"content-type", b"application/json"))
    await send({"type": "http.response.start", "status": status, "headers": head})
    await send({"type": "http.response.body", "body": body})


class TelegramAdapter(Adapter):
    channel = CHANNEL
    capabilities = Capabilities(ops=frozenset({"say", "delete", "restrict", "ban"}), buttons=True,
                                max_buttons=MAX_BUTTONS, media=True, max_text=4096)
    # no windows in the sender: Telegram's limits apply per Bot API call, and one outbound may be
    # several calls (a long text, contact cards) — pacing.py books each
    rate_policy = None

    def __init__(self, config: TelegramConfig, *, session: AiohttpSession | None = None):
        self.config = config
        self.bot_id = config.bot_id
        self.username = config.username
        self.bot = Bot(config.token, session=session or AiohttpSession(
            api=TelegramAPIServer.from_base(config.api_base)))
        self.runtime: Runtime | None = None
        self.pacer: Pacer | None = None
        self._progress: dict[str, int] = {}  # idempotency key → calls of that outbound already made
        self._wire: BotAPIWire | None = None  # sendMessage's keep-alive road (wire.py)
        self._send_path = ""
        self._secret = config.webhook_secret.encode()
        self._upserts: dict[tuple[str, tuple[str, ...]], tuple[FastStatement, FastStatement]] = {}
        self._recorded: OrderedDict[str, tuple[Any, datetime]] = OrderedDict()  # chat → what was last written
        self._tasks: set[asyncio.Task[Any]] = set()
        self.staff = StaffDesk(self)  # the staff group's forum topics (staff.py); on with staff_chat_id
        self.moderation = GroupModeration(self)  # groups: rights per chat, ops, joins (moderation.py)

    # -- groups (adapters/telegram/moderation.py) --------------------------------------------------------

    async def capabilities_in(self, address: Address) -> Capabilities:
        return await self.moderation.capabilities_in(address)

    def deep_link(self, start: str) -> str:
        return self.moderation.deep_link(start)

    # -- lifecycle ---------------------------------------------------------------------------------

    def asgi_routes(self) -> dict[str, Any]:
        if not self.config.webhook_secret:
            return {}  # no webhook without its secret: long polling or an integration feeds us
        return {self.config.webhook_path: self.webhook}

    async def start(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.pacer = Pacer(runtime.coord, self.config.overall, self.config.per_chat, self.config.per_group)
        if not self.username:
            await self._learn_username()
        await self.staff.start(runtime)

    def bind_handoff(self, handoff: HandoffService) -> None:
        self.staff.handoff = handoff

    async def _learn_username(self) -> None:
        try:
            me = await self.bot.get_me()
        except TelegramAPIError as exc:  # Telegram unreachable at start: mentions are learnt later
            log.warning("getMe failed (%s); group mentions are recognised once it answers", type(exc).__name__)
            return
        self.username = me.username or ""

    async def idle(self) -> None:
        """Wait for the work `send` started on tasks of its own (a blocked patient's stop turn)."""
        while self._tasks or self.staff._running:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
            await self.staff.idle()

    async def stop(self) -> None:
        await self.staff.stop()
        await self.idle()
        await self._close_wire()
        await self.bot.session.close()

    async def _close_wire(self) -> None:
        if self._wire is not None:
            wire, self._wire = self._wire, None
            await wire.close()

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _now(self) -> datetime:
        assert self.runtime is not None
        return self.runtime.clock.now()

    # -- the webhook ---------------------------------------------------------------------------------

    async def webhook(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Telegram's POST, as a pure ASGI app (every update takes this road; no framework layer):
        403 unless the secret header matches (compared in constant time), 200 once the update is
        durable, 400 for a body that is not an update, 413 past 1 MiB, 503 when it could not be made
        durable (Telegram retries; the inbox makes the retry a no-op if it was)."""
        if scope["method"] != "POST":
            await _respond(send, 405, b"", ((b"allow", b"POST"),))
            return
        given = b""
        for name, value in scope["headers"]:
            if name == b"x-telegram-bot-api-secret-token":
                given = value
        if not hmac.compare_digest(given, self._secret):
            await _respond(send, 403)
            return
        body = b""
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > MAX_UPDATE_BYTES:
                await _respond(send, 413, b'{"error": "an update is at most 1 MiB"}')
                return
        try:
            update = json.loads(body)
            if not isinstance(update, dict) or not isinstance(update.get("update_id"), int):
                raise ValueError("no update_id")
        except ValueError:
            await _respond(send, 400, b'{"error": "the body is not a Telegram Update (JSON with an integer update_id)"}')
            return
        try:
            await self.feed(update)
        except (KeyError, TypeError, ValueError) as exc:  # a malformed update: acknowledged, never retried
            log.warning("update=%s not understood: %s", update.get("update_id"), type(exc).__name__)
            await _respond(send, 200, b'{"ignored": "malformed update"}')
            return
        except Exception as exc:  # not durable: let Telegram retry
            log.error("update=%s not processed: %s", update.get("update_id"), type(exc).__name__)
            await _respond(send, 503, b"", ((b"retry-after", b"1"),))
            return
        await _respond(send, 200)

    # -- inbound: the one road for webhook, polling and integrations -------------------------------------

    async def feed(self, update: dict[str, Any]) -> str:
        """Carry one raw update into carebot; returns once it is durable. The outcome: processed,
        duplicate, stale, refused, recorded or ignored."""
        runtime = self.runtime
        if runtime is None:
            raise RuntimeError("the Telegram adapter is not started")
        seen_key = f"telegram:update:{self.bot_id}:{update.get('update_id')}"
        if await runtime.coord.seen(seen_key):
            return "duplicate"
        if not self.username and self._mentions_possible(update):
            await self._learn_username()
        if self.staff.owns(update):  # the staff group: doctors at work, never a patient's message
            outcome = await self.staff.feed(update)
            await runtime.coord.mark_seen(seen_key)
            return outcome
        parsed = parse_update(update, bot_id=self.bot_id, bot_username=self.username, now=self._now(),
                              org=self.config.org)
        outcome = await self._feed(parsed)
        await runtime.coord.mark_seen(seen_key)
        return outcome

    @staticmethod
    def _mentions_possible(update: dict[str, Any]) -> bool:
        chat = (update.get("message") or {}).get("chat") or {}
        return chat.get("type") in ("group", "supergroup")

    async def _feed(self, parsed: Parsed) -> str:
        assert self.runtime is not None
        if parsed.migrate_to or parsed.migrate_from:
            old, new = (parsed.chat_id, parsed.migrate_to) if parsed.migrate_to else (parsed.migrate_from,
                                                                                       parsed.chat_id)
            await self.record_migration(old, new)
            return "recorded"
        if parsed.chat_id:
            await self._record_chat(parsed)
        if parsed.extra and await self.moderation.on_update(parsed.chat_id, parsed.extra):
            return "processed"  # members joining or leaving, one turn each
        inbound = parsed.inbound
        if inbound is None:
            if parsed.press is not None:
                await self._answer(parsed.press.query_id)
            return "ignored" if parsed.ignored else "recorded"
        inbound = with_chat(inbound, await self.address_chat(parsed.chat_id))
        if parsed.press is not None:
            inbound = await self._pressed(parsed, inbound)
            if inbound is None:
                return "stale"
        if parsed.file_id:
            inbound = await self._fetch(parsed, inbound)
            if inbound is None:
                return "refused"
        if inbound.kind == "command" and inbound.address.is_group and await self._to_private(parsed, inbound):
            return "processed"
        if inbound.kind == "command":
            inbound = self._start_payload(inbound)
        if inbound.address.is_group and parsed.message_id:
            await self._remember_message(inbound.address.conversation_id, parsed.chat_id, parsed.message_id)
        outcome = await self.runtime.handle(inbound)
        if parsed.press is not None and parsed.press.data in OPEN_VALUES:
            await self._answer(parsed.press.query_id)  # the keyboard stays for the next member
        elif parsed.press is not None:
            await self._answer(parsed.press.query_id)
            await self._retire_keyboard(parsed.press.chat_id, parsed.press.message_id,
                                        inbound.address.conversation_id)
        return outcome.status

    def _start_payload(self, inbound: Inbound) -> Inbound:
        """`/start consult` (a deep link t.me/<bot>?start=consult) starts what `/consult` starts."""
        words = inbound.text.split()
        if len(words) == 2 and words[0] == "/start" and self.runtime is not None:
            command = f"/{words[1]}"
            if command in self.runtime.engine.flows.commands:
                return replace(inbound, text=command, payload={**inbound.payload, "start": words[1]})
        return inbound

    async def _to_private(self, parsed: Parsed, inbound: Inbound) -> bool:
        """A group member asks for a private matter (an intake): a deep link to the private chat
        instead of health questions in front of the group."""
        word = inbound.text.split()[0] if inbound.text.split() else ""
        if word not in self.config.private_commands or not self.username:
            return False
        assert self.runtime is not None
        if len(inbound.text.split()) > 1:  # words after the command: safety still reads them
            await self.runtime.handle(replace(inbound, kind="text", addressed=False))
        locale = inbound.locale or self.runtime.engine.content.base_locale
        text = messages.render("telegram.group_start_private", locale, self.runtime.engine.content)
        label = messages.render("telegram.private_intake", locale, self.runtime.engine.content)
        markup = InlineKeyboardMarkup(inline_keyboard=[[InlineKeyboardButton(
            text=label, url=f"https://t.me/{self.username}?start={word.lstrip('/')}")]])
        thread = int(inbound.address.thread_id) if inbound.address.thread_id else None
        await self._direct(SendMessage(chat_id=parsed.chat_id, text=text, reply_markup=markup,
                                       message_thread_id=thread, reply_parameters=ReplyParameters(
                                           message_id=parsed.message_id, allow_sending_without_reply=True)),
                           str(parsed.chat_id), True)
        return True

    async def _pressed(self, parsed: Parsed, inbound: Inbound) -> Inbound | None:
        """A button press on the conversation's live keyboard goes on (its value resolved); a press
        on an older keyboard — or another member's — is answered and, if nobody's, edited away."""
        assert self.runtime is not None and parsed.press is not None
        press = parsed.press
        conv = inbound.address.conversation_id
        rows = await self.runtime.store.read(lambda c: c.execute(sa.select(
            CONV.c.conversation_id, CONV.c.keyboard).where(
            CONV.c.chat_id == str(press.chat_id), CONV.c.keyboard_message_id == press.message_id)).all())
        mine = next((r for r in rows if r.conversation_id == conv), None)
        locale = inbound.locale or self.runtime.engine.content.base_locale
        if press.data in OPEN_VALUES and rows:  # the group's captcha: anyone may press it, it stays
            return replace(inbound, payload={**inbound.payload, "value": press.data})
        if mine is None:
            key = "telegram.not_yours" if rows else "telegram.stale"
            await self._answer(press.query_id, messages.render(key, locale, self.runtime.engine.content))
            if not rows:
                await self._retire_keyboard(press.chat_id, press.message_id, None)
            return None
        value = press.data
        if value.startswith("#"):
            values = json.loads(mine.keyboard or "[]")
            index = int(value[1:]) if value[1:].isdigit() else -1
            if not 0 <= index < len(values):
                await self._answer(press.query_id, messages.render("telegram.stale", locale,
                                                                   self.runtime.engine.content))
                return None
            value = values[index]
        return replace(inbound, payload={**inbound.payload, "value": value})

    async def _fetch(self, parsed: Parsed, inbound: Inbound) -> Inbound | None:
        """Download the file and check it by its bytes, as web-chat uploads are (bot/uploads.py).
        Nothing is stored: the Telegram file id stays the reference (staff see it through the bot)."""
        assert self.runtime is not None
        try:
            file = await self.bot.get_file(parsed.file_id)
            if (file.file_size or 0) > self.config.max_file_bytes:
                raise UploadRefused("too_large")
            if not file.file_path:
                raise UploadRefused("unavailable")
            buffer = await self.bot.download_file(file.file_path)
            data = buffer.read() if buffer is not None else b""
            accepted = check_upload(data, self.config.max_file_bytes)
        except UploadRefused as exc:
            code = exc.code
        except TelegramBadRequest:
            code = "too_large"  # "file is too big": past the Bot API's 20 MB download limit
        except (TelegramAPIError, asyncio.TimeoutError):
            code = "unavailable"
        else:
            media = inbound.media or Media()
            return replace(inbound, media=replace(media, kind=accepted.kind, mime=accepted.mime,  # type: ignore[arg-type]
                                                  size=len(data)))
        log.info("file refused chat=%s code=%s", parsed.chat_id, code)
        locale = inbound.locale or self.runtime.engine.content.base_locale
        text = messages.render(f"telegram.media_refused.{code}", locale, self.runtime.engine.content,
                               limit_mb=self.config.max_file_bytes // (1024 * 1024))
        thread = int(inbound.address.thread_id) if inbound.address.thread_id else None
        await self._direct(SendMessage(chat_id=parsed.chat_id, text=text, message_thread_id=thread),
                           str(parsed.chat_id), inbound.address.is_group)
        return None

    async def _direct(self, method: TelegramMethod[Any], chat_id: str, group: bool) -> None:
        """A call outside the outbox (an answer about the update itself); one try, paced."""
        assert self.pacer is not None
        await self.pacer.wait(chat_id, group)
        try:
            await self.bot(method)
        except TelegramAPIError as exc:
            log.warning("direct %s failed: %s", type(method).__name__, type(exc).__name__)

    async def _answer(self, query_id: str, text: str = "") -> None:
        if not query_id:
            return
        try:
            await self.bot(AnswerCallbackQuery(callback_query_id=query_id, text=text or None))
        except TelegramAPIError as exc:  # too old (15 s): the spinner stops by itself
            log.info("answerCallbackQuery failed: %s", type(exc).__name__)

    async def _retire_keyboard(self, chat_id: int, message_id: int, conversation_id: str | None) -> None:
        """Edit the keyboard away (a question answers once) and forget it as the live one."""
        assert self.runtime is not None
        if conversation_id is not None:
            await self.runtime.store.write(lambda c: c.execute(CONV.update().where(
                CONV.c.conversation_id == conversation_id, CONV.c.keyboard_message_id == message_id).values(
                keyboard_message_id=0, keyboard="[]")))
        try:
            await self.bot(EditMessageReplyMarkup(chat_id=chat_id, message_id=message_id))
        except TelegramAPIError as exc:  # already edited, or too old to edit
            log.info("keyboard not edited: %s", type(exc).__name__)

    # -- adapter-owned records ---------------------------------------------------------------------------

    async def _record_chat(self, parsed: Parsed) -> None:
        assert self.runtime is not None
        chat_id, now = str(parsed.chat_id), self._now()
        private = parsed.chat_kind == "private"
        values: dict[str, Any] = {"kind": parsed.chat_kind or "private", "updated_at": now}
        if private and parsed.membership:
            values["blocked"] = parsed.membership == "blocked"
        if private and parsed.membership != "blocked":
            values["started"] = True
        if private and parsed.display_name:
            values["display_name"] = parsed.display_name[:128]

        same = tuple(sorted((k, v) for k, v in values.items() if k != "updated_at"))
        recorded = self._recorded.get(chat_id)
        if recorded is not None and recorded[0] == same and (now - recorded[1]).total_seconds() < CHAT_RECORD_SECONDS:
            return  # this process wrote exactly this a moment ago: a patient's every message is no chat change

        update, insert = self._statements(CHAT, "id", tuple(sorted(values)))
        row = {"display_name": "", "started": False, "blocked": False, **values, "id": chat_id,
               "org": self.config.org, "address_chat_id": chat_id, "current": True}

        def upsert(conn: sa.Connection) -> None:
            if update.execute(conn, {**values, "key": chat_id}).rowcount == 0:
                insert.execute(conn, row)

        await self.runtime.store.write(upsert)
        self._recorded[chat_id] = (same, now)
        self._recorded.move_to_end(chat_id)
        while len(self._recorded) > RECORDED_CHATS:
            self._recorded.popitem(last=False)

    async def record_migration(self, old: int, new: int) -> None:
        """The group `old` is now the supergroup `new`: its conversations keep their ids (the first
        chat id) and are delivered to `new` from now on."""
        assert self.runtime is not None
        now = self._now()

        def move(conn: sa.Connection) -> None:
            row = conn.execute(sa.select(CHAT.c.address_chat_id).where(CHAT.c.id == str(old))).first()
            address_id = row.address_chat_id if row else str(old)
            if row is None:
                conn.execute(CHAT.insert().values(id=str(old), org=self.config.org, address_chat_id=address_id,
                                                  current=False, kind="group", updated_at=now))
            conn.execute(CHAT.update().where(CHAT.c.address_chat_id == address_id).values(current=False))
            if conn.execute(CHAT.update().where(CHAT.c.id == str(new)).values(
                    address_chat_id=address_id, current=True, kind="supergroup", updated_at=now)).rowcount == 0:
                conn.execute(CHAT.insert().values(id=str(new), org=self.config.org, address_chat_id=address_id,
                                                  current=True, kind="supergroup", updated_at=now))

        await self.runtime.store.write(move)
        self._recorded.pop(str(old), None)
        self._recorded.pop(str(new), None)
        log.info("group migrated old=%s new=%s", old, new)

    async def address_chat(self, platform_chat_id: int) -> str:
        """The chat id carebot's Address uses for a platform chat (the first id of a migrated group;
        a private chat — a positive id — never migrates)."""
        assert self.runtime is not None
        if platform_chat_id > 0:
            return str(platform_chat_id)
        row = await self.runtime.store.read(lambda c: c.execute(sa.select(CHAT.c.address_chat_id).where(
            CHAT.c.id == str(platform_chat_id))).first())
        return row.address_chat_id if row else str(platform_chat_id)

    async def platform_chat(self, address_chat_id: str) -> str:
        """Where to deliver now for an Address chat id (a private chat — a positive id — is where
        it always was: only groups migrate)."""
        assert self.runtime is not None
        if not address_chat_id.startswith("-"):
            return address_chat_id
        row = await self.runtime.store.read(lambda c: c.execute(sa.select(CHAT.c.id).where(
            CHAT.c.address_chat_id == address_chat_id, CHAT.c.current.is_(True))).first())
        return row.id if row else address_chat_id

    async def _chat_row(self, chat_id: str) -> Any:
        assert self.runtime is not None
        return await self.runtime.store.read(lambda c: c.execute(sa.select(CHAT).where(CHAT.c.id == chat_id)).first())

    async def _remember_message(self, conversation_id: str, chat_id: int, message_id: int) -> None:
        await self._set_conversation(conversation_id, chat_id, last_message_id=message_id)

    async def _set_conversation(self, conversation_id: str, chat_id: int | str, **values: Any) -> None:
        """Keep what the adapter knows of a conversation (its live keyboard, the last message) —
        on every keyboard sent."""
        assert self.runtime is not None
        values = {**values, "chat_id": str(chat_id), "updated_at": self._now()}
        update, insert = self._statements(CONV, "conversation_id", tuple(sorted(values)))
        row = {"keyboard_message_id": 0, "keyboard": "[]", "last_message_id": 0, **values,
               "conversation_id": conversation_id, "org": self.config.org}

        def upsert(conn: sa.Connection) -> None:
            if update.execute(conn, {**values, "key": conversation_id}).rowcount == 0:
                insert.execute(conn, row)

        await self.runtime.store.write(upsert, key=conversation_id)

    def _statements(self, table: sa.Table, key: str, names: tuple[str, ...]) -> tuple[FastStatement, FastStatement]:
        """An upsert of an adapter record (`names` set on the row whose `key` column is bound as
        "key", else the whole row inserted), compiled once (bot/store/fastsql.py)."""
        statements = self._upserts.get((table.name, names))
        if statements is None:
            assert self.runtime is not None
            dialect = self.runtime.store.engine.dialect
            b = sa.bindparam
            update = table.update().where(table.c[key] == b("key")).values(
                {n: b(n, type_=table.c[n].type) for n in names})
            insert = table.insert().values({c.name: b(c.name, type_=c.type) for c in table.columns})
            statements = (FastStatement(update, dialect), FastStatement(insert, dialect))
            self._upserts[(table.name, names)] = statements
        return statements

    async def _conversation(self, conversation_id: str) -> Any:
        assert self.runtime is not None
        return await self.runtime.store.read(lambda c: c.execute(sa.select(CONV).where(
            CONV.c.conversation_id == conversation_id)).first())

    async def mark_blocked(self, chat_id: str, outbound: Outbound) -> None:
        """A send met 403: record it and stop the conversation (a `leave` turn), on a task of its own."""
        assert self.runtime is not None
        now = self._now()
        await self.runtime.store.write(lambda c: c.execute(CHAT.update().where(CHAT.c.id == chat_id).values(
            blocked=True, updated_at=now)))
        self._recorded.pop(chat_id, None)
        address = outbound.address
        inbound = Inbound("leave", address, f"{self.bot_id}:blocked:{chat_id}:{int(now.timestamp())}", now,
                          payload={"reason": "blocked"})
        self._spawn(self.runtime.handle(inbound))

    # -- outbound --------------------------------------------------------------------------------------

    async def send(self, outbound: Outbound, idempotency_key: str) -> Delivery:
        if self.runtime is None or self.pacer is None:
            return Delivery(ok=False, retryable=True, error="telegram not started")
        address = outbound.address
        chat_id = await self.platform_chat(address.chat_id)
        if outbound.op != "say":
            return await self.moderation.send(outbound, chat_id, idempotency_key)
        group = address.is_group
        reply_to = 0
        if group and address.user_id and await self._said_privately(outbound):
            private = await self._chat_row(address.user_id)
            if private is not None and private.started and not private.blocked:
                return await self._send_private(outbound, idempotency_key)
        if group:
            conv = await self._conversation(address.conversation_id)
            reply_to = int(conv.last_message_id) if conv is not None else 0
        return await self._deliver(outbound, idempotency_key, chat_id, group, reply_to)

    async def _said_privately(self, outbound: Outbound) -> bool:
        """In a group, what concerns one member's health — an emergency and what to do, paging news,
        a doctor's reply — goes to their private chat when they have one with the bot."""
        return (outbound.extra.get("priority") == "emergency" or bool(outbound.extra.get("guidance"))
                or outbound.sender != "bot" or outbound.key.startswith(PRIVATE_KEYS))

    async def _send_private(self, outbound: Outbound, idempotency_key: str) -> Delivery:
        assert self.runtime is not None
        address = outbound.address
        private = replace(outbound, address=replace(address, chat_id=address.user_id, thread_id="", is_group=False))
        delivery = await self._deliver(private, idempotency_key, address.user_id, False, 0)
        if delivery.ok and outbound.extra.get("priority") == "emergency":
            conv = await self._conversation(address.conversation_id)
            locale = await self._locale(address.conversation_id)
            note = messages.render("telegram.group_private", locale, self.runtime.engine.content)
            chat_id = await self.platform_chat(address.chat_id)
            await self._deliver(replace(outbound, text=note, buttons=(), media=None, extra={}, key=""),
                                f"{idempotency_key}:note", chat_id, True,
                                int(conv.last_message_id) if conv is not None else 0)
        return delivery

    async def _locale(self, conversation_id: str) -> str:
        assert self.runtime is not None
        data, _version = await self.runtime.store.load(conversation_id)
        base = self.runtime.engine.content.base_locale
        return str((data or {}).get("locale") or base)

    async def _deliver(self, outbound: Outbound, idempotency_key: str, chat_id: str, group: bool,
                       reply_to: int) -> Delivery:
        assert self.runtime is not None and self.pacer is not None
        label = lambda number: number  # noqa: E731 - replaced below only for emergencies
        if outbound.extra.get("priority") == "emergency" and outbound.extra.get("call"):
            locale = await self._locale(outbound.address.conversation_id)
            content = self.runtime.engine.content
            label = lambda number: messages.render("telegram.call_card", locale, content, number=number)  # noqa: E731
        calls = plan(outbound, int(chat_id), reply_to=reply_to, call_label=label)
        if group and outbound.extra.get("mention"):
            calls = with_mention(calls, outbound)
        done = self._progress.get(idempotency_key, 0)
        first_id = ""
        for index, call in enumerate(calls):
            if index < done:
                continue
            await self.pacer.wait(chat_id, group)
            try:
                result = await self._call(call)
            except TelegramMigrateToChat as exc:
                await self.record_migration(int(chat_id), exc.migrate_to_chat_id)
                return Delivery(ok=False, retryable=True, error="migrated", retry_after=0.01)
            except TelegramRetryAfter as exc:
                await self.pacer.hold(chat_id, group, float(exc.retry_after))  # every worker's sends there wait
                return Delivery(ok=False, retryable=True, error="429 too many requests",
                                retry_after=float(exc.retry_after))
            except TelegramForbiddenError as exc:
                self._progress.pop(idempotency_key, None)
                if "blocked" in exc.message or "deactivated" in exc.message:
                    await self.mark_blocked(chat_id, outbound)
                    return Delivery(ok=False, retryable=False, error="403 bot was blocked by the user")
                return Delivery(ok=False, retryable=False, error="403 forbidden")
            except TelegramBadRequest as exc:
                self._progress.pop(idempotency_key, None)
                gone = "chat not found" in exc.message
                return Delivery(ok=False, retryable=False, error="400 chat not found" if gone else "400 bad request")
            except TelegramNotFound:
                return Delivery(ok=False, retryable=False, error="404 not found")
            except (TelegramNetworkError, TelegramAPIError, asyncio.TimeoutError) as exc:
                return Delivery(ok=False, retryable=True, error=type(exc).__name__)
            self._progress[idempotency_key] = index + 1
            message_id = getattr(result, "message_id", 0)
            first_id = first_id or str(message_id)
            markup = getattr(call, "reply_markup", None)
            if isinstance(markup, InlineKeyboardMarkup) and outbound.buttons:
                await self._set_conversation(outbound.address.conversation_id, chat_id,
                                             keyboard_message_id=message_id,
                                             keyboard=json.dumps([b.value for b in outbound.buttons]))
        self._progress.pop(idempotency_key, None)
        return Delivery(ok=True, platform_message_id=f"{chat_id}:{first_id}")

    async def _call(self, call: TelegramMethod[Any] | Text) -> Any:
        """One Bot API call through aiogram's session. A `sendMessage` — most of what carebot sends
        — takes a shorter road: one JSON body (a `Text` writes its own, render.py; an aiogram
        `SendMessage` is serialised by the model in one pydantic-core pass), on a keep-alive
        connection of its own (wire.py; aiohttp when the session has a proxy), and of a successful
        answer only the message id is read, not the whole `Message` model; any other answer goes
        through aiogram's `check_response`, which raises its typed errors (`TelegramRetryAfter`,
        `TelegramForbiddenError`, ...) exactly as `bot(method)` would."""
        if type(call) is Text:
            body = call.body()
        elif type(call) is SendMessage:
            # one pydantic-core pass instead of aiogram's per-field prepare_value (4x the CPU): in a JSON
            # body the Bot API takes numbers and nested objects as they are, not as form strings
            body = call.model_dump_json(exclude_unset=True, exclude_none=True).encode()
        else:
            return await self.bot(call)
        session = self.bot.session
        if self._wire is None or self._wire.timeout != session.timeout:
            url = urlsplit(session.api.api_url(token=self.bot.token, method="sendMessage"))
            self._send_path = url.path
            if getattr(session, "_proxy", None) is None:
                await self._close_wire()
                self._wire = BotAPIWire(f"{url.scheme}://{url.netloc}", float(session.timeout))
        try:
            if self._wire is not None:
                status, answer = await self._wire.post(self._send_path, body)
                raw = answer.decode()
            else:  # through a proxy: aiohttp, which knows them
                client = await session.create_session()
                async with client.post(session.api.api_url(token=self.bot.token, method="sendMessage"), data=body,
                                       headers=JSON_BODY, timeout=session.timeout) as response:
                    status, raw = response.status, await response.text()
        except (asyncio.TimeoutError, TimeoutError) as exc:
            raise TelegramNetworkError(method=_method(call), message="Request timeout error") from exc
        except (aiohttp.ClientError, WireError, UnicodeDecodeError) as exc:
            raise TelegramNetworkError(method=_method(call), message=f"{type(exc).__name__}: {exc}") from exc
        if status == 200:
            try:
                return SentText(int(json.loads(raw)["result"]["message_id"]))
            except (ValueError, KeyError, TypeError):
                pass  # not the answer we know: aiogram's check says what it is
        return session.check_response(bot=self.bot, method=_method(call), status_code=status, content=raw).result

    async def erase(self, conversation_id: str, now: datetime) -> None:
        """Forget me: the live keyboard's values and the last message id go. Telegram keeps the chat
        history on the patient's device; the bot cannot delete it from Telegram's servers."""
        if self.runtime is None:
            return
        await self.runtime.store.write(lambda c: c.execute(CONV.delete().where(
            CONV.c.conversation_id == conversation_id)))
        chat = conversation_id.split(":", 2)[-1] if conversation_id.split(":")[1:2] == [CHANNEL] else ""
        if chat.lstrip("-").isdigit():  # a private chat: the person's display name goes too
            await self.runtime.store.write(lambda c: c.execute(CHAT.update().where(CHAT.c.id == chat).values(
                display_name="")))
            self._recorded.pop(chat, None)

