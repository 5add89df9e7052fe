"""WeChat Customer Service (微信客服, kf): the patient's 1:1 channel.

    callback kf_msg_or_event ──► sync_msg from the saved cursor, page by page ──► Inbound per
    message (each page committed by the runtime before its cursor is saved) ──► cursor saved

A message redelivered after a crash between the commit and the cursor save is dropped by the
runtime's inbox (its `msgid` is the message id). The sync for one kf account runs under a `Coord`
lock, so two workers never read the same page.

WeCom lets the API write to a customer only within 48 hours of their last message and at most 5
times per message (and only while the session is new or with the bot, states 0/1). The session row
counts both; the 4th message of a window, or the first sent in the last two hours of it, is followed
by an expectation message ("reply to keep this chat open", `wecom.window_closing`), and
`remind_closing` tells a patient with an open ticket before the 48 hours run out. Nothing is ever
sent outside the window: such a message is refused for good and the outbox row says why.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from adapters.wecom.api import App, WeComAPI, WeComError
from adapters.wecom.models import WecomKfCursor, WecomKfSession
from bot.types import Address, Delivery, Inbound, Media, Outbound

if TYPE_CHECKING:
    from adapters.wecom.config import WeComConfig
    from bot.runtime.runtime import Runtime

log = logging.getLogger("carebot.wecom.kf")

CHANNEL = "wecom"
CURSOR = WecomKfCursor.__table__
SESSION = WecomKfSession.__table__
WINDOW = timedelta(hours=48)
WINDOW_MESSAGES = 5
CLOSING_SOON = timedelta(hours=2)  # "reply to keep this chat open" when less than this is left
ORIGIN_CUSTOMER, ORIGIN_EVENT, ORIGIN_SERVICER = 3, 4, 5
STATE_BOT, STATE_POOL, STATE_SERVICER = 1, 2, 3
DUPLICATE_MSGID = 95033  # WeCom already has a message with this msgid: the first copy went out
_MSGID = re.compile(r"[^0-9A-Za-z_-]")
MEDIA_KINDS = {"image": "image", "voice": "audio", "video": "video", "file": "file"}


FLOW_OF = {"/consult": "intake", "/start": "start"}


def intake_command(state: str) -> str:
    """The command a campaign `state` starts: `intake…` starts intake, anything else the menu."""
    return "/consult" if state.startswith("intake") else "/start"


class KfChannel:
    def __init__(self, config: WeComConfig, api: WeComAPI, runtime: Runtime):
        self.config = config
        self.api = api
        self.runtime = runtime
        self.app = App("kf", config.kf_secret)
        self.store = runtime.store

    # -- inbound: sync_msg ---------------------------------------------------------------------------

    async def sync(self, open_kfid: str, token: str = "") -> int:
        """Read every new message of a kf account and hand it to the runtime. Returns how many."""
        handled = 0
        async with self.runtime.coord.lock(f"wecom:kf-sync:{open_kfid}", ttl=120.0, wait=300.0):
            cursor = await self.store.read(lambda c: c.execute(sa.select(CURSOR.c.cursor).where(
                CURSOR.c.open_kfid == open_kfid)).scalar()) or ""
            for _page in range(1000):  # bounded: 1000 pages of 1000 messages
                body = {"cursor": cursor, "token": token, "limit": 1000, "open_kfid": open_kfid}
                data = await self.api.call(self.app, "kf/sync_msg", {k: v for k, v in body.items() if v})
                messages = list(data.get("msg_list", []))
                await self._handle_page(messages)
                handled += len(messages)
                cursor = str(data.get("next_cursor", cursor))
                await self._save_cursor(open_kfid, cursor)
                if not data.get("has_more"):
                    break
        return handled

    async def _save_cursor(self, open_kfid: str, cursor: str) -> None:
        now = self.runtime.clock.now()

        def q(conn: sa.Connection) -> None:
            if conn.execute(CURSOR.update().where(CURSOR.c.open_kfid == open_kfid).values(
                    cursor=cursor, updated_at=now)).rowcount == 0:
                conn.execute(CURSOR.insert().values(open_kfid=open_kfid, cursor=cursor, updated_at=now))

        await self.store.write(q)

    async def _handle_page(self, messages: list[dict[str, Any]]) -> None:
        """Each conversation's messages in order; different conversations side by side."""
        by_user: dict[str, list[dict[str, Any]]] = {}
        for message in messages:
            by_user.setdefault(str(message.get("external_userid", "")), []).append(message)

        async def one_patient(items: list[dict[str, Any]]) -> None:
            for item in items:
                try:
                    await self._handle(item)
                except Exception:
                    log.exception("kf message failed msgid=%s", item.get("msgid", ""))
                    raise

        await asyncio.gather(*(one_patient(items) for user, items in by_user.items() if user))

    async def _handle(self, message: dict[str, Any]) -> None:
        origin = int(message.get("origin", 0))
        user = str(message.get("external_userid", ""))
        kfid = str(message.get("open_kfid", ""))
        sent_at = datetime.fromtimestamp(int(message.get("send_time", 0)), timezone.utc)
        if origin == ORIGIN_EVENT:
            await self._event(message.get("event", {}), str(message.get("msgid", "")), sent_at)
            return
        if origin != ORIGIN_CUSTOMER:
            return  # a servicer's own message: WeCom delivered it, nothing for the bot to do
        state = await self._customer_wrote(kfid, user, sent_at)
        inbound = self._inbound(message, user, sent_at)
        if inbound is None:
            return
        outcome = await self.runtime.handle(inbound)
        if state and outcome.state is not None and outcome.state.mode == "bot" and not outcome.state.ticket_id:
            # came by a campaign link: start what it names, after safety has read their first words
            command = intake_command(state)
            if FLOW_OF[command] not in {frame.flow for frame in outcome.state.stack}:
                await self.runtime.handle(Inbound(
                    kind="command", address=inbound.address, message_id=f"{inbound.message_id}:state",
                    received_at=sent_at, text=command, payload={"wecom_state": state}))

    def _inbound(self, message: dict[str, Any], user: str, sent_at: datetime) -> Inbound | None:
        address = Address(CHANNEL, user, user)
        msgid = str(message.get("msgid", ""))
        msgtype = str(message.get("msgtype", ""))
        if msgtype == "text":
            text = str(message.get("text", {}).get("content", ""))
            menu_id = str(message.get("text", {}).get("menu_id", ""))
            if menu_id:
                return Inbound(kind="choice", address=address, message_id=msgid, received_at=sent_at,
                               text=text, payload={"value": menu_id})
            kind = "command" if text.startswith("/") else "text"
            return Inbound(kind=kind, address=address, message_id=msgid, received_at=sent_at, text=text)
        if msgtype in MEDIA_KINDS:
            media_id = str(message.get(msgtype, {}).get("media_id", ""))
            return Inbound(kind="media", address=address, message_id=msgid, received_at=sent_at,
                           media=Media(kind=MEDIA_KINDS[msgtype], ref=f"wecom:{media_id}"))  # type: ignore[arg-type]
        log.info("kf message type not handled msgid=%s type=%s", msgid, msgtype)
        return None

    async def _customer_wrote(self, kfid: str, user: str, at: datetime) -> str:
        """A customer message opens a fresh window; returns the campaign state still to be used."""
        now = self.runtime.clock.now()

        def q(conn: sa.Connection) -> str:
            row = conn.execute(sa.select(SESSION.c.state).where(SESSION.c.external_userid == user)).first()
            values = dict(open_kfid=kfid, last_customer_at=at, sent_in_window=0, closing_told=False, updated_at=now)
            if row is None:
                conn.execute(SESSION.insert().values(external_userid=user, **values))
                return ""
            conn.execute(SESSION.update().where(SESSION.c.external_userid == user).values(state="", **values))
            return str(row.state)

        return str(await self.store.write(q))

    async def _event(self, event: dict[str, Any], msgid: str, at: datetime) -> None:
        kind = str(event.get("event_type", ""))
        user = str(event.get("external_userid", ""))
        kfid = str(event.get("open_kfid", ""))
        if kind == "enter_session" and user:
            await self._entered(kfid, user, str(event.get("scene_param", "")), str(event.get("welcome_code", "")), at)
        elif kind == "session_status_change" and user:
            await self._session_changed(kfid, user, event, msgid, at)

    async def _entered(self, kfid: str, user: str, state: str, welcome_code: str, at: datetime) -> None:
        """The patient opened the chat (from a kf link, maybe with a campaign state): remember the
        state for their first message and greet them with the event's welcome code (one message,
        valid 20 seconds, the only one the API may send before the patient writes)."""
        now = self.runtime.clock.now()

        def q(conn: sa.Connection) -> str:
            row = conn.execute(sa.select(SESSION.c.external_userid).where(SESSION.c.external_userid == user)).first()
            if row is None:
                conn.execute(SESSION.insert().values(external_userid=user, open_kfid=kfid, state=state[:64],
                                                     updated_at=now))
            elif state:
                conn.execute(SESSION.update().where(SESSION.c.external_userid == user).values(
                    state=state[:64], open_kfid=kfid, updated_at=now))
            return _user_locale(conn, user)

        locale = await self.store.write(q)
        if welcome_code:
            key = "wecom.welcome_intake" if intake_command(state) == "/consult" else "wecom.welcome"
            text = self.runtime.engine.content.render(key, locale, dict(self.runtime.engine.constants))
            try:
                await self.api.call(self.app, "kf/send_msg_on_event", {
                    "code": welcome_code, "msgid": _msgid(f"welcome-{user}-{int(at.timestamp())}"),
                    "msgtype": "text", "text": {"content": text}})
            except WeComError as exc:
                log.warning("kf welcome refused errcode=%s", exc.errcode)

    async def _session_changed(self, kfid: str, user: str, event: dict[str, Any], msgid: str, at: datetime) -> None:
        """A human servicer took the session (change types 1, 2, 4) or ended it (3)."""
        change = int(event.get("change_type", 0))
        servicer = str(event.get("new_servicer_userid", "")) if change in (1, 2, 4) else ""
        now = self.runtime.clock.now()
        await self.store.write(lambda c: c.execute(SESSION.update().where(SESSION.c.external_userid == user).values(
            servicer=servicer, updated_at=now)))
        if change == 3:
            await self.on_session_ended(user, str(event.get("old_servicer_userid", "")))

    async def on_session_ended(self, user: str, servicer: str) -> None:
        """Set by the adapter: the servicer ended the session; the hand-off ticket closes."""

    # -- hand-off to a human servicer (servicer mode) ------------------------------------------------

    async def transfer_to_servicer(self, user: str, servicer: str = "") -> None:
        """Give the session to a WeCom servicer (state 3), or to the kf account's waiting pool (2)."""
        kfid = await self._kfid(user)
        body: dict[str, Any] = {"open_kfid": kfid, "external_userid": user,
                                "service_state": STATE_SERVICER if servicer else STATE_POOL}
        if servicer:
            body["servicer_userid"] = servicer
        await self.api.call(self.app, "kf/service_state/trans", body)
        now = self.runtime.clock.now()  # the API may not write to them until the session ends
        await self.store.write(lambda c: c.execute(SESSION.update().where(SESSION.c.external_userid == user).values(
            servicer=servicer or "pool", updated_at=now)))

    async def service_state(self, user: str) -> tuple[int, str]:
        data = await self.api.call(self.app, "kf/service_state/get", {"open_kfid": await self._kfid(user),
                                                                      "external_userid": user})
        return int(data.get("service_state", 0)), str(data.get("servicer_userid", ""))

    async def _kfid(self, user: str) -> str:
        kfid = await self.store.read(lambda c: c.execute(sa.select(SESSION.c.open_kfid).where(
            SESSION.c.external_userid == user)).scalar())
        return str(kfid or self.config.open_kfid)

    # -- outbound: send_msg within the window --------------------------------------------------------

    async def send(self, outbound: Outbound, idempotency_key: str) -> Delivery:
        user = outbound.address.chat_id
        now = self.runtime.clock.now()
        row = await self.store.read(lambda c: c.execute(sa.select(SESSION).where(
            SESSION.c.external_userid == user)).first())
        if row is None or row.last_customer_at is None or now - row.last_customer_at > WINDOW:
            return Delivery(ok=False, retryable=False, error="kf window closed: no message from the patient in 48 hours")
        if row.servicer:
            return Delivery(ok=False, retryable=False, error="a WeCom servicer has this session")
        if row.sent_in_window >= WINDOW_MESSAGES:
            return Delivery(ok=False, retryable=False, error="kf window full: 5 messages since the patient wrote")
        reserve_last = row.sent_in_window == WINDOW_MESSAGES - 2 or (
            now - row.last_customer_at > WINDOW - CLOSING_SOON and not row.closing_told)
        if row.sent_in_window >= WINDOW_MESSAGES - 1 and not outbound.key.startswith("wecom.window"):
            return Delivery(ok=False, retryable=False, error="kf window: the last message is kept to ask for a reply")
        delivery = await self._send_msg(row.open_kfid, user, outbound, idempotency_key)
        if delivery.ok:
            await self._count(user, row.last_customer_at)
            if reserve_last and not outbound.key.startswith("wecom.window"):
                await self._tell_closing(row.open_kfid, user, idempotency_key)
        return delivery

    async def _count(self, user: str, window_start: datetime) -> None:
        await self.store.write(lambda c: c.execute(SESSION.update().where(
            SESSION.c.external_userid == user, SESSION.c.last_customer_at == window_start).values(
            sent_in_window=SESSION.c.sent_in_window + 1)))

    async def _tell_closing(self, kfid: str, user: str, key: str) -> None:
        """The expectation message: the patient must write for the team to be able to answer."""
        conv = Address(CHANNEL, user, user).conversation_id
        locale = await self.store.read(lambda c: _locale(c, conv))
        text = self.runtime.engine.content.render("wecom.window_closing", locale, dict(self.runtime.engine.constants))
        ob = Outbound(op="say", address=Address(CHANNEL, user, user), text=text, key="wecom.window_closing")
        delivery = await self._send_msg(kfid, user, ob, f"{key}-closing")
        if delivery.ok:
            now = self.runtime.clock.now()
            await self.store.write(lambda c: c.execute(SESSION.update().where(SESSION.c.external_userid == user).values(
                sent_in_window=SESSION.c.sent_in_window + 1, closing_told=True, updated_at=now)))

    async def remind_closing(self, conversations_with_open_tickets: set[str]) -> int:
        """Patients with an open ticket whose window closes within two hours and who were not told
        yet: tell them to reply. Returns how many were told."""
        now = self.runtime.clock.now()
        rows = await self.store.read(lambda c: c.execute(sa.select(SESSION).where(
            SESSION.c.last_customer_at.is_not(None), SESSION.c.closing_told.is_(False),
            SESSION.c.servicer == "", SESSION.c.sent_in_window < WINDOW_MESSAGES,
            SESSION.c.last_customer_at < now - (WINDOW - CLOSING_SOON),
            SESSION.c.last_customer_at > now - WINDOW)).all())
        told = 0
        for row in rows:
            if Address(CHANNEL, row.external_userid, row.external_userid).conversation_id in conversations_with_open_tickets:
                await self._tell_closing(row.open_kfid, row.external_userid,
                                         f"remind-{int(row.last_customer_at.timestamp())}")
                told += 1
        return told

    async def _send_msg(self, kfid: str, user: str, outbound: Outbound, key: str) -> Delivery:
        body: dict[str, Any] = {"touser": user, "open_kfid": kfid, "msgid": _msgid(key)}
        text = outbound.text if not outbound.sender_name else f"{outbound.sender_name}：{outbound.text}"
        if outbound.buttons:
            body.update(msgtype="msgmenu", msgmenu={
                "head_content": text,
                "list": [{"type": "click", "click": {"id": b.value[:128], "content": b.label[:128]}}
                         for b in outbound.buttons]})
        else:
            body.update(msgtype="text", text={"content": text})
        try:
            data = await self.api.call(self.app, "kf/send_msg", body, wait_when_busy=False)
        except WeComError as exc:
            if exc.errcode == DUPLICATE_MSGID:
                return Delivery(ok=True, platform_message_id=body["msgid"])
            retry_after = getattr(exc, "retry_after", 0.0)
            return Delivery(ok=False, retryable=bool(retry_after), retry_after=retry_after,
                            error=f"errcode {exc.errcode}")
        return Delivery(ok=True, platform_message_id=str(data.get("msgid", body["msgid"])))


def _msgid(key: str) -> str:
    """WeCom's msgid: at most 32 characters of [0-9a-zA-Z_-], unique per message."""
    cleaned = _MSGID.sub("_", key)
    if len(cleaned) <= 32:
        return cleaned
    return hashlib.sha1(key.encode()).hexdigest()[:32]


def _locale(conn: sa.Connection, conversation_id: str) -> str:
    from bot.store.store import CONV

    return str(conn.execute(sa.select(CONV.c.locale).where(CONV.c.id == conversation_id)).scalar() or "")


def _user_locale(conn: sa.Connection, user: str) -> str:
    return _locale(conn, Address(CHANNEL, user, user).conversation_id)
