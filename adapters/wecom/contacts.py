"""External contacts (客户联系): the doctor's private domain.

- A patient adds a staff member (`change_external_contact` / `add_external_contact`): the welcome
  goes out at once with the event's welcome code — WeCom takes it for 20 seconds, once — with a
  link into the kf chat carrying the contact's `state`, so a QR "per campaign or per patient" starts
  intake there (bot/…/kf.py reads the state back as `scene_param`).
- "Contact me" QR codes (`add_contact_way`) with a `state` of at most 30 characters.
- Tags: a carebot tag (a flow's `tag:` step, or `triage_<level>` after triage) becomes a corp tag in
  the `carebot` tag group (created on first use) marked on the patient by every staff member they
  added (`mark_tag`); an untag removes it.
- Customer groups (客户群) are read by the API (`groupchat/list`, `groupchat/get`) with their owner:
  WeCom gives the bot no way to remove a member or delete a message there, so the degrade rule
  turns such a moderation into an application message to the owner (StaffChannel.notify).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import sqlalchemy as sa

from adapters.wecom.api import App, WeComAPI, WeComError
from adapters.wecom.models import WecomContact, WecomCustomerGroup, WecomTag

if TYPE_CHECKING:
    from adapters.wecom.config import WeComConfig
    from bot.runtime.runtime import Runtime

log = logging.getLogger("carebot.wecom.contacts")

CONTACT = WecomContact.__table__
TAG = WecomTag.__table__
CUSTOMER_GROUP = WecomCustomerGroup.__table__
MAX_STATE = 30  # WeCom's limit on a contact way's state


class Contacts:
    def __init__(self, config: WeComConfig, api: WeComAPI, runtime: Runtime):
        self.config = config
        self.api = api
        self.runtime = runtime
        self.app = App("contact", config.contact_secret)
        self.store = runtime.store
        self.kf_link = ""  # the kf account's link (kf/add_contact_way), set by the adapter when known

    # -- a patient added a staff member --------------------------------------------------------------

    async def added(self, userid: str, external_userid: str, state: str, welcome_code: str) -> bool:
        """Record the contact and welcome them (within WeCom's 20 seconds). True when welcomed."""
        now = self.runtime.clock.now()

        def q(conn: sa.Connection) -> None:
            where = (CONTACT.c.external_userid == external_userid, CONTACT.c.userid == userid)
            if conn.execute(sa.select(CONTACT.c.userid).where(*where)).first() is None:
                conn.execute(CONTACT.insert().values(external_userid=external_userid, userid=userid,
                                                     state=state[:64], added_at=now))
            else:
                conn.execute(CONTACT.update().where(*where).values(state=state[:64], removed_at=None))

        await self.store.write(q)
        if not welcome_code:  # WeCom sends none when the staff member set their own welcome
            return False
        content, values = self.runtime.engine.content, dict(self.runtime.engine.constants)
        key = "wecom.contact_welcome_intake" if state.startswith("intake") else "wecom.contact_welcome"
        body: dict[str, Any] = {"welcome_code": welcome_code,
                                "text": {"content": content.render(key, content.base_locale, values)}}
        if self.kf_link:
            link = f"{self.kf_link}{'&' if '?' in self.kf_link else '?'}scene_param={quote(state)}" if state \
                else self.kf_link
            body["attachments"] = [{"msgtype": "link", "link": {
                "title": content.render("wecom.contact_link_title", content.base_locale, {}),
                "url": link, "desc": content.render("wecom.contact_link_desc", content.base_locale, {})}}]
        try:
            await self.api.call(self.app, "externalcontact/send_welcome_msg", body)
        except WeComError as exc:
            log.warning("welcome refused errcode=%s", exc.errcode)
            return False
        await self.store.write(lambda c: c.execute(CONTACT.update().where(
            CONTACT.c.external_userid == external_userid, CONTACT.c.userid == userid).values(welcomed_at=now)))
        return True

    async def removed(self, userid: str, external_userid: str) -> None:
        now = self.runtime.clock.now()
        await self.store.write(lambda c: c.execute(CONTACT.update().where(
            CONTACT.c.external_userid == external_userid, CONTACT.c.userid == userid).values(removed_at=now)))

    # -- contact-me QR codes -------------------------------------------------------------------------

    async def contact_me(self, users: list[str], state: str) -> dict[str, str]:
        """A "contact me" QR code for these staff members; adding by it reports `state`."""
        if not state or len(state) > MAX_STATE:
            raise ValueError(f"state {state!r}: WeCom takes 1 to {MAX_STATE} characters")
        if not users:
            raise ValueError("name at least one staff member (a WeCom userid) the QR code adds")
        data = await self.api.call(self.app, "externalcontact/add_contact_way", {
            "type": 1 if len(users) == 1 else 2, "scene": 2, "state": state, "user": users,
            "skip_verify": True, "remark": f"carebot {state}"[:30]})
        return {"config_id": str(data.get("config_id", "")), "qr_code": str(data.get("qr_code", ""))}

    # -- tags ----------------------------------------------------------------------------------------

    async def _tag_ids(self, names: list[str]) -> dict[str, str]:
        """Corp tag ids for carebot tag names, creating the missing ones in the carebot group."""
        rows = await self.store.read(lambda c: c.execute(sa.select(TAG.c.name, TAG.c.tag_id).where(
            TAG.c.name.in_(names))).all())
        known = {r.name: r.tag_id for r in rows}
        missing = [n for n in names if n not in known]
        if not missing:
            return known
        async with self.runtime.coord.lock("wecom:tags", ttl=30.0):
            data = await self.api.call(self.app, "externalcontact/get_corp_tag_list", {})
            group = next((g for g in data.get("tag_group", []) if g.get("group_name") == self.config.tag_group), None)
            found = {t["name"]: t["id"] for t in (group or {}).get("tag", [])}
            create = [n for n in missing if n not in found]
            if create:
                made = await self.api.call(self.app, "externalcontact/add_corp_tag", {
                    "group_name": self.config.tag_group, "tag": [{"name": n} for n in create]})
                found.update({t["name"]: t["id"] for t in made.get("tag_group", {}).get("tag", [])})

            def q(conn: sa.Connection) -> None:
                for name in missing:
                    if name in found and conn.execute(sa.select(TAG.c.name).where(TAG.c.name == name)).first() is None:
                        conn.execute(TAG.insert().values(name=name, tag_id=found[name]))

            await self.store.write(q)
        known.update({n: found[n] for n in missing if n in found})
        return known

    async def tag(self, external_userid: str, add: list[str], remove: list[str]) -> int:
        """Mark carebot tags on a patient for every staff member they added. Returns how many marks."""
        users = await self.store.read(lambda c: c.execute(sa.select(CONTACT.c.userid).where(
            CONTACT.c.external_userid == external_userid, CONTACT.c.removed_at.is_(None))).scalars().all())
        if not users or not (add or remove):
            return 0
        ids = await self._tag_ids(sorted(set(add) | set(remove)))
        body = {"external_userid": external_userid, "add_tag": [ids[n] for n in add if n in ids],
                "remove_tag": [ids[n] for n in remove if n in ids]}
        for userid in users:
            await self.api.call(self.app, "externalcontact/mark_tag", {"userid": userid, **body})
        return len(users)

    # -- customer groups -----------------------------------------------------------------------------

    async def refresh_groups(self) -> int:
        """Read every customer group (and its owner) into `wecom_customer_group`."""
        cursor, chat_ids = "", []
        for _ in range(1000):  # bounded paging
            data = await self.api.call(self.app, "externalcontact/groupchat/list",
                                       {"status_filter": 0, "cursor": cursor, "limit": 100})
            chat_ids += [g["chat_id"] for g in data.get("group_chat_list", [])]
            cursor = str(data.get("next_cursor", ""))
            if not cursor:
                break
        for chat_id in chat_ids:
            await self.refresh_group(chat_id)
        return len(chat_ids)

    async def refresh_group(self, chat_id: str) -> None:
        data = await self.api.call(self.app, "externalcontact/groupchat/get", {"chat_id": chat_id, "need_name": 0})
        chat = data.get("group_chat", {})
        now = self.runtime.clock.now()
        values = dict(name=str(chat.get("name", ""))[:200], owner=str(chat.get("owner", "")),
                      members=len(chat.get("member_list", [])), updated_at=now)

        def q(conn: sa.Connection) -> None:
            if conn.execute(CUSTOMER_GROUP.update().where(CUSTOMER_GROUP.c.chat_id == chat_id).values(**values)).rowcount == 0:
                conn.execute(CUSTOMER_GROUP.insert().values(chat_id=chat_id, **values))

        await self.store.write(q)
