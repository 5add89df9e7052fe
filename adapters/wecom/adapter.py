"""The WeCom adapter: one channel (`wecom`) for patients on WeChat Customer Service, and WeCom as a
staff channel (application messages, care-team groups, emergency pages).

    callback (callback.py) ──► wecom_callback row ──► 200 ──► process:
        kf_msg_or_event          → KfChannel.sync (kf.py)        → Runtime.handle per message
        change_external_contact  → Contacts.added / removed       (welcome within 20 s)
        change_external_chat     → Contacts.refresh_group         (owner kept for moderation)
    Runtime.after_commit ──► a ticket opened for a WeCom patient → care-team group (staff.py);
                             servicer mode: the kf session goes to a WeCom servicer
                         ──► tags and triage levels → mark_tag (contacts.py)
    Sender ──► send(): say → kf send_msg (in the window) · page → textcard + care-team group ·
                       notify_staff → application message to the group owner

Capabilities: kf messages take a menu of buttons (msgmenu, shown as taps), no media from carebot
yet (a note names it), text up to 2048 bytes (600 characters covers Chinese's 3 bytes each); no
delete/restrict/ban (customer groups allow none), so the degrade rule asks the owner instead.
"""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from adapters.wecom.api import WeComAPI
from adapters.wecom.callback import CALLBACK, callback_routes, insert_callback
from adapters.wecom.config import WeComConfig
from adapters.wecom.contacts import Contacts
from adapters.wecom.crypto import WeComCrypto
from adapters.wecom.kf import CHANNEL, SESSION, KfChannel
from adapters.wecom.staff import StaffChannel
from bot.adapter import Adapter, Capabilities, RatePolicy
from bot.handoff.tickets import OPEN
from bot.store.store import TICKET, TurnCommit
from bot.tasks import Background
from bot.types import Address, Delivery, OpenTicket, Outbound, RecordEvent, Tag

if TYPE_CHECKING:
    from bot.runtime.runtime import Runtime

log = logging.getLogger("carebot.wecom")

KEEP_OUT = ("Content", "PicUrl", "MediaId", "Title", "Description", "Url", "Recognition")  # message text: not stored


class WeComAdapter(Adapter):
    channel = CHANNEL
    capabilities = Capabilities(ops=frozenset({"say", "notify_staff", "page"}), buttons=True, max_buttons=10,
                                media=False, max_text=600)
    # kf: WeCom's own window allows 5 per patient message; the overall cap keeps far below its API limits
    rate_policy = RatePolicy(per_chat=(5, 1.0), overall=(100, 1.0))

    def __init__(self, config: WeComConfig, *, tick_seconds: float = 60.0):
        self.config = config
        self.crypto = WeComCrypto(config.token, config.aes_key, config.corp_id)
        self.tick_seconds = tick_seconds
        self.runtime: Runtime | None = None
        self.api: WeComAPI | None = None
        self.kf: KfChannel | None = None
        self.staff: StaffChannel | None = None
        self.contacts: Contacts | None = None
        self.background = Background("wecom")
        self._loop: asyncio.Task[None] | None = None

    # -- lifecycle -----------------------------------------------------------------------------------

    def routes(self) -> list[Any]:
        return callback_routes(self)

    async def start(self, runtime: Runtime, *, background: bool = True) -> None:
        self.runtime = runtime
        self.api = WeComAPI(self.config.api_base, self.config.corp_id, runtime.coord)
        self.kf = KfChannel(self.config, self.api, runtime)
        self.kf.on_session_ended = self._servicer_ended  # type: ignore[method-assign]
        self.staff = StaffChannel(self.config, self.api, runtime)
        self.contacts = Contacts(self.config, self.api, runtime)
        runtime.after_commit.append(self._after_commit)
        if background:
            self._loop = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._loop is not None:
            self._loop.cancel()
            await asyncio.gather(self._loop, return_exceptions=True)
        await self.idle()
        if self.api is not None:
            await self.api.aclose()

    async def idle(self) -> None:
        """Wait for callbacks and follow-ups being processed (tests, shutdown)."""
        await self.background.idle()

    def now(self) -> datetime:
        assert self.runtime is not None
        return self.runtime.clock.now()

    async def _run(self) -> None:
        while True:
            try:
                await self.tick()
            except Exception:
                log.exception("wecom tick failed")
            await asyncio.sleep(self.tick_seconds)

    async def tick(self) -> None:
        """Callbacks a dead process accepted but never processed; patients whose kf window is closing."""
        assert self.runtime is not None
        cutoff = self.now().timestamp() - 30
        rows = await self.runtime.store.read(lambda c: c.execute(sa.select(CALLBACK).where(
            CALLBACK.c.processed_at.is_(None)).order_by(CALLBACK.c.id).limit(500)).all())
        for row in rows:
            if row.received_at.timestamp() <= cutoff:
                await self.process(row.id, json.loads(row.payload))
        if self.kf is not None and self.config.kf_secret:
            open_convs = await self.runtime.store.read(lambda c: set(c.execute(sa.select(TICKET.c.conversation_id).where(
                TICKET.c.status.in_(OPEN))).scalars().all()))
            await self.kf.remind_closing(open_convs)

    # -- callbacks -----------------------------------------------------------------------------------

    async def accept(self, fields: dict[str, str]) -> int | None:
        """Write a callback durably; None when it was seen before."""
        assert self.runtime is not None
        stored = {k: v for k, v in fields.items() if k not in KEEP_OUT}
        now = self.now()
        try:
            return await self.runtime.store.write(lambda c: insert_callback(c, stored, now))
        except sa.exc.IntegrityError:
            return None

    def process_later(self, row_id: int, fields: dict[str, str]) -> None:
        self.background.spawn(self.process(row_id, fields))

    async def process(self, row_id: int, fields: dict[str, str]) -> None:
        """Act on one callback, then mark it processed (a failure leaves it for the next tick)."""
        assert self.runtime is not None and self.kf and self.contacts
        event, change = fields.get("Event", ""), fields.get("ChangeType", "")
        if event == "kf_msg_or_event" and self.config.kf_secret:
            await self.kf.sync(fields.get("OpenKfId", "") or self.config.open_kfid, fields.get("Token", ""))
        elif event == "change_external_contact" and self.config.contact_secret:
            if change in ("add_external_contact", "add_half_external_contact"):
                await self.contacts.added(fields.get("UserID", ""), fields.get("ExternalUserID", ""),
                                          fields.get("State", ""), fields.get("WelcomeCode", ""))
            elif change in ("del_external_contact", "del_follow_user"):
                await self.contacts.removed(fields.get("UserID", ""), fields.get("ExternalUserID", ""))
        elif event == "change_external_chat" and self.config.contact_secret and fields.get("ChatId"):
            if change != "dismiss":
                await self.contacts.refresh_group(fields["ChatId"])
        now = self.now()
        await self.runtime.store.write(lambda c: c.execute(CALLBACK.update().where(
            CALLBACK.c.id == row_id, CALLBACK.c.processed_at.is_(None)).values(processed_at=now)))

    # -- after a turn commits ------------------------------------------------------------------------

    def _after_commit(self, commit: TurnCommit) -> None:
        if commit.address.channel != CHANNEL:
            return
        user = commit.address.chat_id
        add: list[str] = []
        remove: list[str] = []
        for i, effect in enumerate(commit.effects):
            if isinstance(effect, Tag):
                add += list(effect.add)
                remove += list(effect.remove)
            elif isinstance(effect, RecordEvent) and effect.event == "triage" and effect.data.get("level"):
                add.append(f"triage_{effect.data['level']}")
                if effect.data.get("department"):
                    add.append(f"dept_{effect.data['department']}")
            elif isinstance(effect, OpenTicket):
                self.background.spawn(self._ticket_opened(commit.conversation_id, commit.ticket_ids[i], user))
        if (add or remove) and self.contacts is not None and self.config.contact_secret:
            self.background.spawn(self.contacts.tag(user, add, remove))

    async def _ticket_opened(self, conversation_id: str, ticket_id: str, user: str) -> None:
        assert self.staff is not None and self.kf is not None
        if self.config.app_secret:
            await asyncio.sleep(0)  # let the hand-off dispatch first, so the doctor is known when it is
            await self.staff.ticket_opened(conversation_id, ticket_id)
        if self.config.handoff == "servicer" and self.config.kf_secret:
            await self.kf.transfer_to_servicer(user)

    async def _servicer_ended(self, user: str, servicer: str) -> None:
        """Servicer mode: the WeCom servicer ended the session, so the ticket closes (survey, then
        the bot again) — as their console account when they have one, else as ended by the system."""
        assert self.runtime is not None
        handoff = self.runtime.handoff
        conv = Address(CHANNEL, user, user).conversation_id
        ticket_id = await self.runtime.store.read(lambda c: c.execute(sa.select(TICKET.c.id).where(
            TICKET.c.conversation_id == conv, TICKET.c.status.in_(OPEN))).scalar())
        if handoff is None or not ticket_id:
            return
        member = await handoff.staff(self.config.staff_id(servicer)) if servicer else None
        if member is not None:
            await handoff.close(ticket_id, member, "resolved")
        else:
            await handoff.abandon(ticket_id, "wecom_session_ended")

    # -- outbound ------------------------------------------------------------------------------------

    async def send(self, outbound: Outbound, idempotency_key: str) -> Delivery:
        if self.kf is None or self.staff is None:
            return Delivery(ok=False, retryable=True, error="wecom not started")
        if outbound.op == "say":
            if outbound.address.is_group:
                return Delivery(ok=False, retryable=False, error="WeCom customer groups take no API messages")
            if not self.config.kf_secret:
                return Delivery(ok=False, retryable=False, error="no kf secret configured")
            return await self.kf.send(outbound, idempotency_key)
        if not self.config.app_secret:
            return Delivery(ok=False, retryable=False, error="no app secret configured for staff messages")
        if outbound.op == "page":
            return await self.staff.page(outbound, idempotency_key)
        if outbound.op == "notify_staff":
            return await self.staff.notify(outbound, idempotency_key)
        return Delivery(ok=False, retryable=False, error=f"WeCom cannot {outbound.op}")

    async def erase(self, conversation_id: str, now: datetime) -> None:
        """Forget me: the campaign state kept for the patient goes; ids and times stay."""
        parts = conversation_id.split(":", 2)
        if self.runtime is None or len(parts) != 3 or parts[1] != CHANNEL:
            return
        user = parts[2]
        await self.runtime.store.write(lambda c: c.execute(SESSION.update().where(
            SESSION.c.external_userid == user).values(state="", updated_at=now)))
