"""Telegram as a moderation platform for patient groups (bot/groups, docs/groups.md).

What the groups stage needs from a platform, on the Bot API:

- **Capabilities per chat.** Telegram can delete, mute and ban — but only where the bot is an
  administrator with the rights: `can_delete_messages` (delete) and `can_restrict_members` (Telegram's
  "Ban users": mute and ban). What the bot may do in a group is learnt from `my_chat_member` updates
  (Telegram sends one whenever the bot is promoted or its rights change) and, for a group not heard
  of, asked once with `getChatMember`; it is kept in `Coord` (every worker sees it). Without a right,
  the stage and the runtime fall back by capability — delete → the owner is asked, mute → a warning,
  ban → the owner is asked — and the moderation log says why (`Capabilities.note`).
- **Ops on the Bot API.** `delete` → deleteMessage; `restrict` → restrictChatMember (permissions
  none · text · all, until_date); `ban` → banChatMember (until_date: a kick), `lift` →
  unbanChatMember(only_if_banned). A refusal for rights when the op is delivered (the bot was
  demoted after the turn decided) is remembered and handed back to the stage as a
  `moderation_refused` event: a person is asked, never a silent failure, never a retry loop.
- **Payload hints** read from each message (`hints`): `forwarded` (forward_origin, or the older
  forward_* fields), `links` (url and text_link entities — links hidden behind words), `reply_to`
  (the replied message and its author: what `/report` is about), `name`. A shared contact is the
  `contact` hint parse.py already sets. Telegram detects no QR codes, so `qr` is never set.
- **One join / leave per member**, from `chat_member` updates (sent to an administrator bot that asks
  for them) and from the `new_chat_members` / `left_chat_member` service messages (sent either way);
  the same member's join reported by both is one event (`Coord`, per chat and member).
- **Deep links**: `https://t.me/<bot>?start=<start>` opens the private chat (a group's welcome links
  to private intake).
- **Mentions**: a `say` with `extra.mention` names the member with a tg://user link, so they are
  notified even without a @username.
"""

from __future__ import annotations

import html
import json
import logging
import re
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, Callable

from aiogram.exceptions import (TelegramAPIError, TelegramBadRequest, TelegramForbiddenError, TelegramNotFound,
                                TelegramRetryAfter)
from aiogram.methods import (BanChatMember, DeleteMessage, GetChatMember, RestrictChatMember, TelegramMethod,
                             UnbanChatMember)
from aiogram.types import ChatPermissions

from bot.adapter import Capabilities
from bot.groups.members import CAPTCHA_VALUE
from bot.types import Address, Delivery, Inbound, Media, Outbound

if TYPE_CHECKING:
    from adapters.telegram.adapter import TelegramAdapter

log = logging.getLogger("carebot.telegram")

MODERATION_OPS = frozenset({"delete", "restrict", "ban"})
RIGHTS_TTL = 24 * 3600.0  # a my_chat_member update keeps them fresh; re-asked a day later at most
ASKED_TTL = 600.0  # rights learnt by asking, when no update has told us since
MEMBER_TTL = 24 * 3600.0  # how long one member's join (or leave) is remembered against a duplicate
START = re.compile(r"[A-Za-z0-9_-]{1,64}")  # Telegram's deep-link start parameter
# Telegram's answers meaning "the bot may not do this here" (rights, an admin target, a basic group)
REFUSALS = ("not enough rights", "can't be deleted", "chat_admin_required", "need administrator rights",
            "user is an administrator", "can't remove chat owner", "available only for supergroups",
            "can't restrict self", "have no rights")
GONE = "message to delete not found"
# buttons any member may press, whoever the message was for: the captcha (one message serves a raid)
OPEN_VALUES = frozenset({CAPTCHA_VALUE})


# -- what the bot may do in a chat ------------------------------------------------------------------------


def rights_of(member: dict[str, Any]) -> frozenset[str]:
    """The moderation ops a ChatMember object of the bot allows."""
    status = member.get("status")
    if status == "creator":
        return MODERATION_OPS
    if status != "administrator":
        return frozenset()
    ops = {"delete"} if member.get("can_delete_messages") else set()
    if member.get("can_restrict_members"):
        ops |= {"restrict", "ban"}
    return frozenset(ops)


NOTES = {"delete": "can_delete_messages", "restrict": "can_restrict_members", "ban": "can_restrict_members"}


def capabilities_with(base: Capabilities, rights: frozenset[str]) -> Capabilities:
    """The adapter's capabilities in a group where the bot has `rights`."""
    missing = sorted({NOTES[op] for op in MODERATION_OPS - rights})
    note = (f"the bot is not a Telegram administrator with {' and '.join(missing)} in this group"
            if missing else "")
    return replace(base, ops=(base.ops - MODERATION_OPS) | (rights & base.ops), note=note)


# -- reading updates (pure) --------------------------------------------------------------------------------


def hints(message: dict[str, Any], text: str, entities: list[dict[str, Any]]) -> dict[str, Any]:
    """What a group message says beyond its text (bot/groups/matching.py HINTS)."""
    out: dict[str, Any] = {}
    user = message.get("from") or {}
    name = " ".join(p for p in (user.get("first_name", ""), user.get("last_name", "")) if p).strip()
    if name:
        out["name"] = name[:64]
    if message.get("forward_origin") or message.get("forward_from") or message.get("forward_from_chat") \
            or message.get("forward_sender_name") or message.get("forward_date"):
        out["forwarded"] = True
    links = []
    units = text.encode("utf-16-le")
    for e in entities:
        if e.get("type") == "text_link" and e.get("url"):
            links.append(str(e["url"]))
        elif e.get("type") == "url":  # offsets count UTF-16 code units
            start, length = int(e.get("offset", 0)) * 2, int(e.get("length", 0)) * 2
            links.append(units[start:start + length].decode("utf-16-le", errors="ignore"))
    if links:
        out["links"] = links[:20]
    replied = message.get("reply_to_message")
    if isinstance(replied, dict) and replied.get("message_id"):
        out["reply_to"] = {"message_id": str(replied["message_id"]),
                           "user_id": str((replied.get("from") or {}).get("id", ""))}
    return out


OTHER_MEDIA = (("sticker", "image"), ("animation", "video"), ("video", "video"), ("video_note", "video"),
               ("voice", "audio"), ("audio", "audio"))


def other_media(message: dict[str, Any]) -> Media | None:
    """A sticker, GIF, video or voice note in a group, as media the moderation stage can act on."""
    for field, kind in OTHER_MEDIA:
        item = message.get(field)
        if isinstance(item, dict) and item.get("file_id"):
            return Media(kind, f"telegram:{item['file_id']}")  # type: ignore[arg-type]
    if message.get("poll"):
        return Media("file", "telegram:poll")
    return None


def present(member: dict[str, Any]) -> bool:
    """Is this ChatMember in the chat? (a restricted member may be, or may have left)"""
    status = member.get("status")
    if status == "restricted":
        return bool(member.get("is_member", True))
    return status in ("member", "administrator", "creator")


def member_events(message: dict[str, Any], address_of: Callable[[dict[str, Any]], Address], mid: str,
                  now: datetime, bot_id: int) -> list[Inbound]:
    """One join per member of a `new_chat_members` service message (or one leave for
    `left_chat_member`); the bot's own arrival is not a member's."""
    out = []
    for user in message.get("new_chat_members") or []:
        if user.get("id") != bot_id:
            out.append(Inbound("join", address_of(user), f"{mid}:join:{user['id']}", now,
                               payload={"reason": "joined", **_name(user)}))
    left = message.get("left_chat_member")
    if isinstance(left, dict) and left.get("id") != bot_id:
        out.append(Inbound("leave", address_of(left), f"{mid}:leave:{left['id']}", now,
                           payload={"reason": "left", **_name(left)}))
    return out


def _name(user: dict[str, Any]) -> dict[str, str]:
    name = " ".join(p for p in (user.get("first_name", ""), user.get("last_name", "")) if p).strip()
    return {"name": name[:64]} if name else {}


def mention(text_html: str, user_id: str, name: str) -> str:
    """The member named with a tg://user link (the first time their name appears, else in front)."""
    if not user_id.isdigit():
        return text_html
    shown = html.escape(name or "", quote=False)
    if shown and shown in text_html:
        return text_html.replace(shown, f'<a href="tg://user?id={user_id}">{shown}</a>', 1)
    return f'<a href="tg://user?id={user_id}">{shown or "👤"}</a> {text_html}'


def with_mention(calls: list[TelegramMethod[Any]], outbound: Outbound) -> list[TelegramMethod[Any]]:
    """The first message of a `say` names the member it is about (extra.mention / mention_name)."""
    user, name = str(outbound.extra.get("mention", "")), str(outbound.extra.get("mention_name", ""))
    for i, call in enumerate(calls):
        text = getattr(call, "text", None)
        if isinstance(text, str) and getattr(call, "parse_mode", None) == "HTML":
            calls = list(calls)
            calls[i] = call.model_copy(update={"text": mention(text, user, name)})
            return calls
    return calls


# -- the adapter's side -------------------------------------------------------------------------------------


class GroupModeration:
    """The Telegram adapter's hands in groups; `TelegramAdapter` delegates to it."""

    def __init__(self, adapter: TelegramAdapter):
        self.adapter = adapter

    def _key(self, kind: str, *parts: Any) -> str:
        return ":".join(["telegram", kind, str(self.adapter.bot_id), *map(str, parts)])

    def deep_link(self, start: str) -> str:
        if not self.adapter.username or not START.fullmatch(start):
            return ""
        return f"https://t.me/{self.adapter.username}?start={start}"

    # -- rights ------------------------------------------------------------------------------------------

    async def capabilities_in(self, address: Address) -> Capabilities:
        base = self.adapter.capabilities
        if not address.is_group or self.adapter.runtime is None:
            return base
        chat = await self.adapter.platform_chat(address.chat_id)
        rights = await self.rights(chat)
        return base if rights is None else capabilities_with(base, rights)

    async def rights(self, chat_id: str) -> frozenset[str] | None:
        """The moderation ops the bot may do in the chat; None when Telegram could not be asked
        (the ops are then tried, and a refusal falls back at delivery)."""
        assert self.adapter.runtime is not None
        cached = await self.adapter.runtime.coord.cache_get(self._key("rights", chat_id))
        if cached is not None:
            return frozenset(json.loads(cached))
        try:
            member = await self.adapter.bot(GetChatMember(chat_id=int(chat_id), user_id=self.adapter.bot_id))
        except (TelegramAPIError, ValueError) as exc:
            log.warning("chat=%s: the bot's rights could not be asked (%s)", chat_id, type(exc).__name__)
            return None
        rights = rights_of(member.model_dump(mode="json"))
        await self.remember(chat_id, rights, "asked", ASKED_TTL)
        return rights

    async def remember(self, chat_id: str, rights: frozenset[str], why: str, ttl: float = RIGHTS_TTL) -> None:
        assert self.adapter.runtime is not None
        key = self._key("rights", chat_id)
        before = await self.adapter.runtime.coord.cache_get(key)
        value = json.dumps(sorted(rights))
        await self.adapter.runtime.coord.cache_set(key, value, ttl)
        if before != value:
            missing = sorted(MODERATION_OPS - rights)
            log.info("chat=%s: the bot may %s (%s)%s", chat_id, ",".join(sorted(rights)) or "not moderate", why,
                     f"; without rights to {','.join(missing)} the groups stage falls back" if missing else "")

    # -- updates -----------------------------------------------------------------------------------------

    async def on_update(self, chat_id: int, extra: dict[str, Any]) -> bool:
        """The parts of an update about group membership: the bot's own rights (recorded, the update
        goes on as before) and members joining or leaving (handled here: True)."""
        runtime = self.adapter.runtime
        assert runtime is not None
        bot_member = extra.get("bot_member")
        if isinstance(bot_member, dict):
            await self.remember(str(chat_id), rights_of(bot_member), "my_chat_member")
        events = extra.get("members")
        if not events:
            return False
        from adapters.telegram.parse import with_chat

        address_chat = await self.adapter.address_chat(chat_id)
        for inbound in events:
            key = self._key("member", chat_id, inbound.address.user_id)
            state = "in" if inbound.kind == "join" else "out"
            if await runtime.coord.cache_get(key) == state:
                continue  # the same join told twice (chat_member and the service message)
            await runtime.handle(with_chat(inbound, address_chat))
            await runtime.coord.cache_set(key, state, MEMBER_TTL)
        return True

    # -- ops ---------------------------------------------------------------------------------------------

    def method(self, outbound: Outbound, chat_id: str) -> TelegramMethod[Any] | None:
        """The Bot API call for a moderation op; None when the outbound lacks its target."""
        target = outbound.target_message_id.rsplit(":", 1)[-1]
        user = int(outbound.address.user_id) if outbound.address.user_id.lstrip("-").isdigit() else 0
        extra = outbound.extra
        until = _epoch(extra.get("until"))
        if outbound.op == "delete" and target.isdigit():
            return DeleteMessage(chat_id=int(chat_id), message_id=int(target))
        if outbound.op == "restrict" and user:
            permissions = str(extra.get("permissions") or "none")
            return RestrictChatMember(chat_id=int(chat_id), user_id=user, permissions=_permissions(permissions),
                                      use_independent_chat_permissions=True,
                                      until_date=None if permissions == "all" else until)
        if outbound.op == "ban" and user and extra.get("lift"):
            return UnbanChatMember(chat_id=int(chat_id), user_id=user, only_if_banned=True)
        if outbound.op == "ban" and user:
            return BanChatMember(chat_id=int(chat_id), user_id=user, until_date=until, revoke_messages=False)
        return None

    async def send(self, outbound: Outbound, chat_id: str, idempotency_key: str) -> Delivery:
        method = self.method(outbound, chat_id)
        if method is None:
            return Delivery(ok=False, retryable=False, error=f"telegram cannot {outbound.op} without its target")
        try:
            await self.adapter.bot(method)
        except TelegramRetryAfter as exc:
            return Delivery(ok=False, retryable=True, error="429", retry_after=float(exc.retry_after))
        except (TelegramBadRequest, TelegramForbiddenError) as exc:
            text = exc.message.lower()
            if outbound.op == "delete" and GONE in text:  # already gone (its author or an admin removed it)
                return Delivery(ok=True, platform_message_id=f"{chat_id}:gone")
            if any(r in text for r in REFUSALS):
                await self.refused(outbound, chat_id, idempotency_key, exc.message)
                return Delivery(ok=False, retryable=False, error=f"{outbound.op} refused: {exc.message[:80]}")
            return Delivery(ok=False, retryable=False, error=f"{outbound.op} refused: {type(exc).__name__}")
        except TelegramNotFound:
            return Delivery(ok=False, retryable=False, error="404 not found")
        except TelegramAPIError as exc:
            return Delivery(ok=False, retryable=True, error=type(exc).__name__)
        return Delivery(ok=True, platform_message_id=f"{chat_id}:{outbound.op}")

    async def refused(self, outbound: Outbound, chat_id: str, idempotency_key: str, error: str) -> None:
        """Telegram refused an op the turn thought possible: learn the rights again (so the next
        turns fall back before trying), and hand the refusal to the groups stage, which asks a person."""
        runtime = self.adapter.runtime
        assert runtime is not None
        await runtime.coord.cache_delete(self._key("rights", chat_id))
        await self.rights(chat_id)
        log.warning("chat=%s: %s refused by Telegram (%s); a person is asked", chat_id, outbound.op, error[:80])
        a = outbound.address
        if not (a.is_group and a.user_id):
            return
        extra = outbound.extra
        inbound = Inbound("staff_event", a, f"{self.adapter.bot_id}:refused:{idempotency_key}", self.adapter._now(),
                          payload={"event": "moderation_refused", "op": outbound.op,
                                   "target_message_id": outbound.target_message_id,
                                   "permissions": str(extra.get("permissions", "")), "lift": bool(extra.get("lift")),
                                   "until": str(extra.get("until", "")), "reason": str(extra.get("reason", ""))[:200],
                                   "error": error[:120]})
        self.adapter._spawn(runtime.handle(inbound))


def _epoch(value: Any) -> int | None:
    """An ISO time (the stage's `until`) as Unix seconds; None for "" (until lifted)."""
    if isinstance(value, (int, float)) and value > 0:
        return int(value)
    if isinstance(value, str) and value:
        try:
            return int(datetime.fromisoformat(value).timestamp())
        except ValueError:
            return None
    return None


def _permissions(kind: str) -> ChatPermissions:
    """none: nothing (muted) · text: text messages only · all: everything (a mute lifted)."""
    everything = kind == "all"
    return ChatPermissions(can_send_messages=kind in ("text", "all"), can_send_audios=everything,
                           can_send_documents=everything, can_send_photos=everything, can_send_videos=everything,
                           can_send_video_notes=everything, can_send_voice_notes=everything,
                           can_send_polls=everything, can_send_other_messages=everything,
                           can_add_web_page_previews=everything)
