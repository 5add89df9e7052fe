"""The web chat adapter: patients in a browser (a hospital's site, an SMS mini-page, a kiosk).

It turns widget frames into `Inbound`s and delivered `Outbound`s into entries of the conversation's
log, pushed at once to every open widget of that conversation. It holds no conversation logic.

Delivery: the outbox sender calls `send`; the message is appended to `webchat_message` (unique on
the idempotency key, so a resend after a crash is dropped) and pushed to the open sockets in this
process — and, with Redis, published so sockets on other workers get it too. A closed widget reads
the log on its next visit, from the last sequence number it showed.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Awaitable, Callable

import sqlalchemy as sa

from adapters.webchat.config import WebchatConfig
from adapters.webchat.hub import Frame, Hub
from adapters.webchat.log import ChatLog, LogEntry
from adapters.webchat.media import MediaStore, StoredMedia
from adapters.webchat.models import WebchatErasure
from adapters.webchat.tokens import BadToken, Session, TokenSigner
from bot.adapter import Adapter, Capabilities, MediaFile, RatePolicy
from bot.inputs import encodable
from bot.types import Address, Delivery, Inbound, Media, Outbound
from bot.unavailable import RETRY_AFTER_S, log_failure, service_of

if TYPE_CHECKING:
    from starlette.requests import Request

    from bot.runtime.runtime import Runtime
    from bot.settings import Settings

log = logging.getLogger("carebot.webchat")

CHANNEL = "webchat"
RELAY_CHANNEL = "webchat"
TYPING_AFTER = 0.3  # seconds a turn may take before the widget shows "typing…"
_CLIENT_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_LOCALE = re.compile(r"[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})?")
ERASURE = WebchatErasure.__table__

# Staff console hook: may this request read media of this conversation? (the console sets it)
StaffMediaAccess = Callable[["Request", str], Awaitable[bool]]


class RateLimited(Exception):
    def __init__(self, retry_after: float):
        super().__init__(f"retry after {retry_after:.1f}s")
        self.retry_after = retry_after


@dataclass(frozen=True)
class Visitor:
    """Who is at the other end of a socket or a request: a checked session and its address."""

    session: Session
    ip: str

    @property
    def address(self) -> Address:
        return Address(CHANNEL, self.session.visitor, self.session.visitor)

    @property
    def conversation_id(self) -> str:
        return self.address.conversation_id


def error(code: str, client_id: str = "", **extra: Any) -> Frame:
    """An error the widget shows in the patient's language (it knows every code)."""
    return {"type": "error", "code": code, "id": client_id, **extra}


def emergency_fields(extra: dict[str, Any]) -> dict[str, Any]:
    """What the widget needs from an emergency message: its style (`priority`), the numbers to offer as
    tap-to-call buttons (`call`, ambulance first) and, for what-to-do-while-waiting steps, `guidance`
    (the kind) and `sources` (how many of the text's last lines cite where the steps come from)."""
    fields: dict[str, Any] = {}
    if extra.get("priority") == "emergency":
        fields["priority"] = "emergency"
    numbers = extra.get("call")
    if isinstance(numbers, (list, tuple)):
        fields["call"] = [str(n) for n in numbers if str(n).strip()]
    if extra.get("guidance"):
        fields["guidance"] = str(extra["guidance"])
        fields["sources"] = int(extra.get("sources") or 0)  # the text's last lines say where it comes from
    return fields


def media_frame(media: Media | StoredMedia | None) -> dict[str, Any] | None:
    """How the widget finds a picture: an upload by id (fetched with the session token), or a URL."""
    if media is None:
        return None
    if isinstance(media, StoredMedia):
        return {"id": media.id, "kind": media.kind, "mime": media.mime}
    if media.ref.startswith("webchat:"):
        return {"id": media.ref.removeprefix("webchat:"), "kind": media.kind, "mime": media.mime}
    if media.ref.startswith(("https://", "http://", "/")):
        return {"url": media.ref, "kind": media.kind, "mime": media.mime, "name": media.name}
    return None


LONG_EMERGENCY = 6  # an over-long message is still taken, up to this many times the limit, if it is an emergency


class WebchatAdapter(Adapter):
    channel = CHANNEL
    capabilities = Capabilities(ops=frozenset({"say"}), buttons=True, max_buttons=12, media=True,
                                max_text=8000)
    rate_policy = RatePolicy(per_chat=(100, 1.0), overall=(1_000_000, 1.0))  # our own sockets: no quota

    def __init__(self, settings: Settings, config: WebchatConfig | None = None, *,
                 staff_media_access: StaffMediaAccess | None = None):
        self.settings = settings
        self.config = config or WebchatConfig.from_env()
        self.tokens = TokenSigner(settings.server_secret(), self.config.token_days * 86400)
        self.hub = Hub()
        self.staff_media_access = staff_media_access
        self.runtime: Runtime | None = None
        self.log: ChatLog | None = None
        self.media: MediaStore | None = None
        self._distributed = bool(settings.redis_url)
        self._relay: asyncio.Task[None] | None = None

    # -- lifecycle ---------------------------------------------------------------------------------

    def routes(self) -> list[Any]:
        from adapters.webchat.routes import webchat_routes

        return webchat_routes(self)

    async def start(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.log = ChatLog(runtime.store)
        self.media = MediaStore(runtime.store, self.config.media_dir, self.config.max_upload_bytes)
        if self._distributed:
            self._relay = asyncio.get_running_loop().create_task(self._relay_from_other_workers())

    async def stop(self) -> None:
        if self._relay is not None:
            self._relay.cancel()
            try:
                await self._relay
            except asyncio.CancelledError:
                pass
        self.hub.close_all()

    @property
    def stopping(self) -> asyncio.Event:
        """Set when the server is stopping: long polls end at once."""
        assert self.runtime is not None
        return self.runtime.stopping

    def now_ts(self) -> float:
        assert self.runtime is not None
        return self.runtime.clock.now().timestamp()

    # -- outbound ------------------------------------------------------------------------------------

    async def send(self, outbound: Outbound, idempotency_key: str) -> Delivery:
        if self.runtime is None or self.log is None:
            return Delivery(ok=False, retryable=True, error="web chat not started")
        conv = outbound.address.conversation_id
        if outbound.op != "say":
            return Delivery(ok=False, retryable=False, error=f"web chat cannot {outbound.op}")
        payload = {"text": outbound.text, "key": outbound.key, "sender_name": outbound.sender_name,
                   "buttons": [{"label": b.label, "value": b.value} for b in outbound.buttons],
                   "media": media_frame(outbound.media)}
        if outbound.buttons and outbound.extra.get("question"):
            payload["question"] = str(outbound.extra["question"])  # sent back with a press (stale buttons)
        payload.update(emergency_fields(outbound.extra))
        entry, _new = await self.log.append(conv, idempotency_key, outbound.sender, payload,
                                            self.runtime.clock.now(), outbound.address.org)
        # pushed even when not new: harmless (widgets drop a seq they have) and covers a crash
        # between the append and the push
        await self.push(conv, entry.frame())
        return Delivery(ok=True, platform_message_id=f"{conv}#{entry.seq}")

    async def push(self, conversation_id: str, frame: Frame) -> None:
        self.hub.push(conversation_id, frame)
        if self._distributed and self.runtime is not None:
            message = json.dumps({"origin": self.settings.worker_id, "conversation_id": conversation_id,
                                  "frame": frame}, ensure_ascii=False)
            await self.runtime.coord.publish(RELAY_CHANNEL, message)

    async def _relay_from_other_workers(self) -> None:
        assert self.runtime is not None
        while True:
            try:
                async for message in self.runtime.coord.subscribe(RELAY_CHANNEL):
                    data = json.loads(message)
                    if data.get("origin") != self.settings.worker_id:
                        self.hub.push(data["conversation_id"], data["frame"])
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log_failure(log, exc, "web chat relay failed; resubscribing")
                await asyncio.sleep(1.0)

    # -- sessions and inbound -----------------------------------------------------------------------

    async def open_session(self, token: str | None, ip: str) -> Session:
        """Continue a visitor's session (renewing its token) or, with no token, start a new one.
        Raises BadToken for a forged or expired token and RateLimited for too many new sessions."""
        now = self.now_ts()
        if token:
            return self.tokens.issue(now, (await self.check(token, ip)).session.visitor)
        await self._limit(f"webchat:ip:{ip}", self.config.ip_rate)
        return self.tokens.issue(now)

    async def check(self, token: str, ip: str) -> Visitor:
        """The visitor a token names; BadToken when it is forged, expired, or its conversation
        was erased ("forget me": nothing of it may be read with an old token)."""
        assert self.runtime is not None
        visitor = Visitor(self.tokens.verify(token, self.now_ts()), ip)
        conv = visitor.conversation_id
        if await self.runtime.store.read(lambda c: c.execute(
                sa.select(ERASURE.c.conversation_id).where(ERASURE.c.conversation_id == conv)).first()):
            raise BadToken("erased")
        return visitor

    async def erase(self, conversation_id: str, now: datetime) -> None:
        """Forget me: the conversation's log and uploads (files and rows) go, and its visitor's
        tokens are refused from now on. An open widget still shows the confirmation pushed to it."""
        if self.runtime is None or self.log is None or self.media is None:
            raise RuntimeError("web chat not started")
        await self.media.erase(conversation_id)
        await self.log.erase(conversation_id)

        def record(conn: sa.Connection) -> None:
            if conn.execute(sa.select(ERASURE.c.conversation_id).where(
                    ERASURE.c.conversation_id == conversation_id)).first() is None:
                conn.execute(ERASURE.insert().values(conversation_id=conversation_id, org="default", erased_at=now))

        await self.runtime.store.write(record)

    async def _limit(self, key: str, rate: tuple[int, float]) -> None:
        assert self.runtime is not None
        wait = await self.runtime.coord.hit(key, *rate)
        if wait > 0:
            raise RateLimited(wait)

    async def _long_emergency(self, visitor: Visitor, text: str, locale: str) -> bool:
        """An over-long message is refused, unless it tells of an emergency: a long story that ends "now
        his face is drooping" is taken whole (the safety stage answers it), never refused unread. Up to
        LONG_EMERGENCY times the limit, and screened at the visitor's message rate (its own key)."""
        if len(text) > self.config.max_text * LONG_EMERGENCY:
            return False
        try:
            await self._limit(f"webchat:long:{visitor.session.visitor}", self.config.visitor_rate)
        except RateLimited:
            return False
        return self._emergency(text, locale)

    def _emergency(self, text: str, locale: str) -> bool:
        """Does the triage screener read this message as an emergency?"""
        from bot.safety import SafetyStage

        assert self.runtime is not None
        safety = next((s for s in self.runtime.pipeline.stages if isinstance(s, SafetyStage)), None)
        if safety is None or safety.screener.rules_for(locale or safety.base_locale) is None:
            return False
        return safety.screener.screen(text.strip(), locale or safety.base_locale).assessment.is_emergency

    async def accept(self, visitor: Visitor, frame: dict[str, Any]) -> Frame:
        """One patient message from the widget → the runtime, its log entry written in the turn's
        transaction; then its echo (with its `client_id`) to every open widget of the conversation.
        The echo and the ack exist only for a committed message, and a resend of one (same client
        id) is acknowledged again without a second turn. Returns the ack (for the HTTP API) or an
        error frame; bad input never closes the socket."""
        assert self.runtime is not None and self.log is not None and self.media is not None
        client_id = frame.get("id")
        if not isinstance(client_id, str) or not _CLIENT_ID.fullmatch(client_id):
            return error("bad_request")
        text, value, media_id = frame.get("text", ""), frame.get("value"), frame.get("media")
        if not isinstance(text, str) or not isinstance(value, (str, type(None))) \
                or not isinstance(media_id, (str, type(None))) or not encodable(text + (value or "") + (media_id or "")):
            return error("bad_request", client_id)
        if media_id is not None and len(media_id) > 64:
            return error("bad_media", client_id)
        locale = frame.get("locale")
        locale = locale if isinstance(locale, str) and _LOCALE.fullmatch(locale) else ""
        if len(text) > self.config.max_text and not await self._long_emergency(visitor, text, locale):
            return error("too_long", client_id, limit=self.config.max_text)
        if not text.strip() and value is None and not media_id:
            return error("empty", client_id)
        try:
            await self._limit(f"webchat:visitor:{visitor.session.visitor}", self.config.visitor_rate)
            await self._limit(f"webchat:ip:{visitor.ip}", self.config.ip_rate)
        except RateLimited as exc:
            return error("rate_limited", client_id, retry_after=round(exc.retry_after, 1))
        conv = visitor.conversation_id
        stored = await self.media.get(media_id) if media_id else None
        if media_id and (stored is None or stored.conversation_id != conv):
            return error("bad_media", client_id)
        now = self.runtime.clock.now()
        key = f"webchat-in:{conv}:{client_id}"
        shown = {"text": text, "client_id": client_id, "media": media_frame(stored)}
        logged: list[LogEntry] = []

        def log_in_turn(conn: sa.Connection) -> None:
            # the patient's entry commits with the turn: the log (what acknowledges a message to the
            # widget, live or on its next visit) never holds a message the bot has not processed
            assert self.log is not None
            logged[:] = [self.log.append_in(conn, conv, key, "patient", shown, now)[0]]

        question = frame.get("question")
        if value is not None:
            kind, payload = "choice", {"value": value}
            if isinstance(question, str) and 0 < len(question) <= 300:
                payload["question"] = question
        else:
            kind, payload = ("media" if stored else "command" if text.startswith("/") else "text"), {}
        media = Media(kind=stored.kind, ref=f"webchat:{stored.id}", mime=stored.mime,  # type: ignore[arg-type]
                      size=stored.size) if stored else None
        inbound = Inbound(kind=kind, address=visitor.address,  # type: ignore[arg-type]
                          message_id=f"{visitor.session.visitor}:{client_id}", received_at=now, text=text,
                          payload=payload, media=media, locale=locale)
        # "typing…" only for a turn that takes a while (a remote action): a quick one would flicker
        typing = asyncio.get_running_loop().call_later(TYPING_AFTER, self.hub.push, conv,
                                                       {"type": "typing", "on": True, "sender": "bot"})
        try:
            outcome = await self.runtime.handle(inbound, also=log_in_turn)
            if outcome.status == "processed" and logged:
                entry = logged[0]
            else:  # a resend of a committed message: its entry was committed with it
                entry = await self.log.by_key(key) or \
                    (await self.log.append(conv, key, "patient", shown, now))[0]  # processed before this log existed
        except Exception as exc:
            service = service_of(exc)
            if service:  # not acknowledged: the widget sends it again, same client id, once we are back
                log.warning("web chat turn not taken conversation=%s %s unavailable error=%s", conv, service,
                            type(exc).__name__)
                return error("unavailable", client_id, retry_after=RETRY_AFTER_S)
            log.error("web chat turn failed conversation=%s error=%s", conv, type(exc).__name__)
            return error("server_error", client_id)
        finally:
            typing.cancel()
            if typing.when() <= asyncio.get_running_loop().time():
                self.hub.push(conv, {"type": "typing", "on": False})
        # the echo goes out only once the turn is committed: for a socket it is the ack
        await self.push(conv, entry.frame())
        return {"type": "ack", "id": client_id, "seq": entry.seq}

    async def opened(self, visitor: Visitor, locale: str = "", set_locale: bool = False) -> None:
        """The widget opened (`set_locale`: its language switch was pressed). The first open of a
        conversation greets the patient — once per visitor, de-duplicated by the message id — so a new
        patient never faces a blank page; a switch makes the bot answer in that language from now on."""
        assert self.runtime is not None
        locale = locale if _LOCALE.fullmatch(locale or "") else ""
        if set_locale and not locale:
            return
        await self._limit(f"webchat:visitor:{visitor.session.visitor}", self.config.visitor_rate)
        now = self.runtime.clock.now()
        message_id = f"{visitor.session.visitor}:" + (f"locale:{secrets.token_hex(8)}" if set_locale else "open")
        await self.runtime.handle(Inbound(kind="join", address=visitor.address, message_id=message_id,
                                          received_at=now, locale=locale,
                                          payload={"set_locale": locale} if set_locale else {}))

    async def upload(self, visitor: Visitor, data: bytes) -> StoredMedia:
        """Store an upload for this visitor's conversation (UploadRefused / RateLimited otherwise)."""
        assert self.runtime is not None and self.media is not None
        await self._limit(f"webchat:upload:{visitor.session.visitor}", self.config.upload_rate)
        return await self.media.save(visitor.conversation_id, data, self.runtime.clock.now())

    async def open_media(self, ref: str, conversation_id: str) -> MediaFile | None:
        prefix, _, media_id = ref.partition(":")
        if prefix != self.channel or self.media is None:
            return None
        stored = await self.media.get(media_id)
        if stored is None or stored.conversation_id != conversation_id or not stored.path.is_file():
            return None
        return MediaFile(stored.path, stored.mime)

    async def may_read(self, request: Request, visitor: Visitor | None, media: StoredMedia) -> bool:
        """The conversation's own visitor may read its media; so may staff, once the staff console
        sets `staff_media_access` (it should also append an audit entry for the view)."""
        if visitor is not None and visitor.conversation_id == media.conversation_id:
            return True
        if self.staff_media_access is not None:
            return await self.staff_media_access(request, media.conversation_id)
        return False
