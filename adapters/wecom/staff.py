"""Reaching staff on WeCom: application messages (`message/send`) and each patient's care-team group
chat (`appchat`, 一客一群 on the staff side: doctor, nurse, health manager).

- A ticket opened for a WeCom patient gets a care-team group (once per patient): the ticket's
  doctor when known, the on-call person for an emergency, and the configured care team
  (`CAREBOT_WECOM_CARE_TEAM`). The group is where the ticket is discussed; carebot posts the
  ticket's id, department and priority and a link to the console — never the patient's words.
- An emergency page (`page` outbound from bot/handoff/paging.py) is a textcard to the paged person
  and a post in the patient's care-team group.
- `notify_staff` (a moderation WeCom cannot do, degraded by bot/runtime/degrade.py) is an
  application message to the group's owner.

WeCom accepts more than 30 application messages a minute to one member and silently drops the
rest, so every message is counted against each recipient in `Coord` first and waits when the
member's minute is full: a page is late by seconds rather than lost.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from adapters.wecom.api import App, WeComAPI, WeComError
from adapters.wecom.models import WecomCareGroup, WecomCustomerGroup
from bot.store.store import TICKET
from bot.types import Delivery, Outbound

if TYPE_CHECKING:
    from adapters.wecom.config import WeComConfig
    from bot.runtime.runtime import Runtime

log = logging.getLogger("carebot.wecom.staff")

CARE_GROUP = WecomCareGroup.__table__
CUSTOMER_GROUP = WecomCustomerGroup.__table__
MAX_MEMBER_WAIT = 300.0  # seconds a message waits for a member's minute to free up, at most


class StaffChannel:
    def __init__(self, config: WeComConfig, api: WeComAPI, runtime: Runtime):
        self.config = config
        self.api = api
        self.runtime = runtime
        self.app = App("app", config.app_secret)
        self.store = runtime.store

    def render(self, key: str, values: dict[str, Any]) -> str:
        content = self.runtime.engine.content
        return content.render(key, content.base_locale, values)

    # -- per-member limits ---------------------------------------------------------------------------

    async def _make_room(self, members: list[str]) -> None:
        """Count one message for each member, waiting while any member's minute is full."""
        limit, per = self.config.member_rate
        waited = 0.0
        for member in members:
            while (wait := await self.runtime.coord.hit(f"wecom:member:{member}", limit, per)) > 0:
                if waited > MAX_MEMBER_WAIT:
                    raise TimeoutError(f"member {member} has no room for {waited:.0f}s")
                await asyncio.sleep(min(wait, 5.0))
                waited += min(wait, 5.0)

    # -- application messages ------------------------------------------------------------------------

    async def message(self, users: list[str], body: dict[str, Any], idempotency_key: str) -> Delivery:
        users = [u for u in dict.fromkeys(users) if u]
        if not users:
            return Delivery(ok=False, retryable=False, error="nobody to send to on WeCom")
        await self._make_room(users)
        payload = {"touser": "|".join(users), "agentid": self.config.agent_id, "enable_duplicate_check": 1,
                   "duplicate_check_interval": 1800, **body}
        try:
            data = await self.api.call(self.app, "message/send", payload, wait_when_busy=False)
        except WeComError as exc:
            retry_after = getattr(exc, "retry_after", 0.0)
            return Delivery(ok=False, retryable=bool(retry_after), retry_after=retry_after,
                            error=f"errcode {exc.errcode}")
        invalid = str(data.get("invaliduser", ""))
        if invalid and set(invalid.split("|")) >= set(users):
            return Delivery(ok=False, retryable=False, error="no such WeCom user")
        return Delivery(ok=True, platform_message_id=str(data.get("msgid", idempotency_key)))

    # -- care-team groups ----------------------------------------------------------------------------

    async def care_group(self, conversation_id: str, ticket_id: str, people: list[str]) -> str:
        """The patient's care-team group chat: created the first time (with `people` and the care
        team), and `people` added when they are not in it yet (the paged on-call doctor)."""
        people = [p for p in dict.fromkeys(people) if p]
        async with self.runtime.coord.lock(f"wecom:care-group:{conversation_id}", ttl=30.0):
            row = await self.store.read(lambda c: c.execute(sa.select(CARE_GROUP).where(
                CARE_GROUP.c.conversation_id == conversation_id)).first())
            if row is not None:
                members = json.loads(row.members)
                new = [p for p in people if p not in members]
                if new:
                    await self.api.call(self.app, "appchat/update", {"chatid": row.chatid, "add_user_list": new})
                    members += new
                    await self.store.write(lambda c: c.execute(CARE_GROUP.update().where(
                        CARE_GROUP.c.chatid == row.chatid).values(members=json.dumps(members))))
                return str(row.chatid)
            members = list(dict.fromkeys(people + list(self.config.care_team)))
            if len(members) < 2:  # WeCom needs two; a textcard still reaches the one person
                return ""
            chatid = "cb" + hashlib.sha1(conversation_id.encode()).hexdigest()[:24]  # the same on every worker
            name = self.render("wecom.care_group_name", {"ticket": ticket_id})
            data = await self.api.call(self.app, "appchat/create", {"name": name[:50], "owner": members[0],
                                                                    "userlist": members, "chatid": chatid})
            chatid = str(data.get("chatid", chatid))
            now = self.runtime.clock.now()
            await self.store.write(lambda c: c.execute(CARE_GROUP.insert().values(
                conversation_id=conversation_id, chatid=chatid, members=json.dumps(members), created_at=now)))
            return chatid

    async def post(self, chatid: str, text: str) -> Delivery:
        members = await self.store.read(lambda c: c.execute(sa.select(CARE_GROUP.c.members).where(
            CARE_GROUP.c.chatid == chatid)).scalar())
        await self._make_room(json.loads(members) if members else [])
        try:
            await self.api.call(self.app, "appchat/send", {"chatid": chatid, "msgtype": "text",
                                                           "text": {"content": text}, "safe": 0},
                                wait_when_busy=False)
        except WeComError as exc:
            retry_after = getattr(exc, "retry_after", 0.0)
            return Delivery(ok=False, retryable=bool(retry_after), retry_after=retry_after,
                            error=f"errcode {exc.errcode}")
        return Delivery(ok=True, platform_message_id=chatid)

    async def ticket_opened(self, conversation_id: str, ticket_id: str) -> None:
        """A WeCom patient's ticket: their care-team group hears of it."""
        ticket = await self.store.read(lambda c: c.execute(sa.select(TICKET).where(TICKET.c.id == ticket_id)).first())
        if ticket is None:
            return
        people = [self.config.userid(ticket.assignee)] if ticket.assignee else []
        chatid = await self.care_group(conversation_id, ticket_id, people)
        if chatid:
            await self.post(chatid, self.render("wecom.care_group_ticket", {
                "ticket": ticket_id, "department": ticket.department, "priority": ticket.priority,
                "link": self._link(ticket_id)}))

    # -- outbound ops --------------------------------------------------------------------------------

    async def page(self, outbound: Outbound, idempotency_key: str) -> Delivery:
        """An emergency page: a textcard to the paged person, and a post in the care-team group."""
        page = dict(outbound.extra.get("page", {}))
        ticket_id = str(outbound.extra.get("ticket_id", page.get("ticket", "")))
        to = dict(page.get("to", {}))
        userid = str(dict(to.get("contacts", {})).get("wecom", "")) or (
            self.config.userid(str(to.get("staff", ""))) if to.get("staff") else "")
        if not userid:
            return Delivery(ok=False, retryable=False, error="the paged person has no WeCom userid")
        values = {"ticket": ticket_id, "department": page.get("department", ""), "rung": page.get("rung", ""),
                  "name": to.get("name", "") or to.get("staff", "")}
        delivery = await self.message([userid], {"msgtype": "textcard", "textcard": {
            "title": self.render("wecom.page_title", values),
            "description": self.render("wecom.page_description", values),
            "url": self._link(ticket_id), "btntxt": self.render("wecom.page_button", values)}}, idempotency_key)
        if not delivery.ok:
            return delivery
        ticket = await self.store.read(lambda c: c.execute(sa.select(TICKET).where(TICKET.c.id == ticket_id)).first())
        if ticket is not None:
            try:
                chatid = await self.care_group(ticket.conversation_id, ticket_id, [userid])
                if chatid:
                    await self.post(chatid, self.render("wecom.care_group_page", values))
            except WeComError as exc:  # the person was paged; the group post is a courtesy
                log.warning("care-group post failed ticket=%s errcode=%s", ticket_id, exc.errcode)
        return delivery

    async def notify(self, outbound: Outbound, idempotency_key: str) -> Delivery:
        """What the bot may not do in a customer group, asked of a person: the owner of the group
        (from `extra.owner`, else the group as read by the API), else everyone in the care team."""
        owner = str(outbound.extra.get("owner") or outbound.extra.get("staff") or "")
        if owner:
            owner = self.config.userid(owner)
        else:
            chat = str(outbound.extra.get("chat") or outbound.address.chat_id)
            owner = await self.store.read(lambda c: c.execute(sa.select(CUSTOMER_GROUP.c.owner).where(
                CUSTOMER_GROUP.c.chat_id == chat)).scalar()) or ""
        users = [owner] if owner else list(self.config.care_team)
        return await self.message(users, {"msgtype": "text", "text": {"content": outbound.text}}, idempotency_key)

    def _link(self, ticket_id: str) -> str:
        base = self.config.console_url.rstrip("/") or "https://work.weixin.qq.com"
        return f"{base}/console/tickets/{ticket_id}" if self.config.console_url else base
