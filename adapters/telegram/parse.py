"""Raw Telegram updates → what carebot makes of them. Pure: no I/O, no clock (the caller passes
`now`), so every shape Telegram sends is tested on its own.

One update gives at most one `Inbound` (its `message_id` is the bot's id and the `update_id`, so a
retried delivery is a duplicate in the runtime's inbox) plus what the adapter must do around it:
answer a button press, fetch a file, record a blocked bot or a migrated group.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from adapters.telegram import moderation
from bot.types import Address, Inbound, Media

CHANNEL = "telegram"
JOINED = frozenset({"member", "restricted", "administrator", "creator"})
GONE = frozenset({"left", "kicked"})


@dataclass(frozen=True)
class Press:
    """A press of an inline button: answered, and its keyboard checked against the live one."""

    query_id: str
    chat_id: int
    message_id: int
    data: str


@dataclass
class Parsed:
    update_id: int
    inbound: Inbound | None = None
    press: Press | None = None
    file_id: str = ""  # a photo or document to fetch and check before the turn
    file_name: str = ""
    chat_id: int = 0  # the platform chat of the update
    chat_kind: str = ""  # private | group | supergroup | channel
    message_id: int = 0  # the patient's Telegram message (reply-to in a group)
    membership: str = ""  # in a private chat: "blocked" | "unblocked"
    migrate_to: int = 0  # this group became the supergroup with that id
    migrate_from: int = 0  # this supergroup was that group
    display_name: str = ""  # a private chat's person, as Telegram names them (the staff topic's title)
    ignored: str = ""  # why nothing is done ("" when something is)
    extra: dict[str, Any] = field(default_factory=dict)


def telegram_locale(code: str) -> str:
    """Telegram's `language_code` (IETF) → a carebot locale hint: zh, zh-hans, zh-CN → zh-CN."""
    code = (code or "").lower()
    if code.startswith("zh"):
        return "zh-CN"
    return code.split("-")[0] if code else ""


def _address(chat: dict[str, Any], user: dict[str, Any] | None, thread_id: int | None, org: str) -> Address:
    group = chat.get("type") in ("group", "supergroup")
    uid = str(user["id"]) if user else ""
    thread = str(thread_id) if thread_id is not None and chat.get("is_forum") else ""
    return Address(CHANNEL, str(chat["id"]), uid or str(chat["id"]), thread, is_group=group, org=org)


def _command(text: str, entities: list[dict[str, Any]], bot_username: str) -> tuple[str, bool] | None:
    """(the text with our `@botname` removed, for us) when the message starts with a command;
    None when it does not. A command for another bot (`/start@other_bot`) is not for us."""
    first = next((e for e in entities if e.get("type") == "bot_command" and e.get("offset") == 0), None)
    if first is None:
        return None
    word = text[:first["length"]]
    name, _, target = word.partition("@")
    if target and target.lower() != bot_username.lower():
        return text, False
    return name + text[first["length"]:], True


def _strip_mention(text: str, entities: list[dict[str, Any]], bot_username: str) -> tuple[str, bool]:
    """The text without mentions of this bot, and whether there was one."""
    found = False
    for e in sorted(entities, key=lambda e: -int(e.get("offset", 0))):
        if e.get("type") != "mention":
            continue
        start, end = int(e["offset"]), int(e["offset"]) + int(e["length"])
        if text[start:end].lower() == f"@{bot_username.lower()}":
            text = text[:start] + text[end:]
            found = True
    return " ".join(text.split()), found


def parse_update(update: dict[str, Any], *, bot_id: int, bot_username: str, now: datetime,
                 org: str = "default") -> Parsed:
    update_id = int(update["update_id"])
    mid = f"{bot_id}:{update_id}"
    if "message" in update or "edited_message" in update:
        edited = "message" not in update
        return _message(update["edited_message" if edited else "message"], update_id, mid, edited,
                        bot_id=bot_id, bot_username=bot_username, now=now, org=org)
    if "callback_query" in update:
        return _press(update["callback_query"], update_id, mid, now, org)
    if "my_chat_member" in update:
        change = update["my_chat_member"]
        chat = change["chat"]
        old, new = change["old_chat_member"]["status"], change["new_chat_member"]["status"]
        parsed = Parsed(update_id, chat_id=int(chat["id"]), chat_kind=chat.get("type", ""))
        if chat.get("type") != "private":
            parsed.ignored = "bot membership in a group"
            parsed.extra["bot_member"] = change["new_chat_member"]  # its rights there (moderation.py)
            return parsed
        address = _address(chat, change.get("from"), None, org)
        if new == "kicked":
            parsed.membership = "blocked"
            parsed.inbound = Inbound("leave", address, mid, now, payload={"reason": "blocked"})
        elif old == "kicked" and new in JOINED:
            parsed.membership = "unblocked"
            parsed.inbound = Inbound("join", address, mid, now, payload={"reason": "unblocked"})
        else:
            parsed.ignored = f"membership {old} → {new}"
        return parsed
    if "chat_member" in update:
        change = update["chat_member"]
        chat, member = change["chat"], change["new_chat_member"]
        old, new = change["old_chat_member"]["status"], member["status"]
        parsed = Parsed(update_id, chat_id=int(chat["id"]), chat_kind=chat.get("type", ""))
        address = _address(chat, member["user"], None, org)
        was, now_in = moderation.present(change["old_chat_member"]), moderation.present(member)
        name = moderation.hints({"from": member["user"]}, "", []).get("name", "")
        named = {"name": name} if name else {}
        if not was and now_in:
            parsed.extra["members"] = [Inbound("join", address, mid, now, payload={"reason": "joined", **named})]
        elif was and not now_in:
            parsed.extra["members"] = [Inbound("leave", address, mid, now, payload={"reason": new, **named})]
        else:
            parsed.ignored = f"member {old} → {new}"
        return parsed
    parsed = Parsed(update_id)
    parsed.ignored = "update type not used: " + ",".join(sorted(k for k in update if k != "update_id"))
    return parsed


def _press(query: dict[str, Any], update_id: int, mid: str, now: datetime, org: str) -> Parsed:
    message = query.get("message") or {}
    chat = message.get("chat")
    parsed = Parsed(update_id)
    if chat is None or "data" not in query:  # an inline-mode message or a game: not ours
        parsed.ignored = "button press without a chat or data"
        parsed.press = Press(str(query["id"]), 0, 0, "")
        return parsed
    parsed.chat_id, parsed.chat_kind = int(chat["id"]), chat.get("type", "")
    parsed.press = Press(str(query["id"]), int(chat["id"]), int(message.get("message_id", 0)), str(query["data"]))
    label = next((b.get("text", "") for row in (message.get("reply_markup") or {}).get("inline_keyboard", [])
                  for b in row if b.get("callback_data") == query["data"]), "")
    address = _address(chat, query["from"], message.get("message_thread_id"), org)
    parsed.inbound = Inbound("choice", address, mid, now, text=label, payload={"value": str(query["data"])},
                             locale=telegram_locale(query["from"].get("language_code", "")))
    return parsed


def _message(message: dict[str, Any], update_id: int, mid: str, edited: bool, *, bot_id: int, bot_username: str,
             now: datetime, org: str) -> Parsed:
    chat = message["chat"]
    parsed = Parsed(update_id, chat_id=int(chat["id"]), chat_kind=chat.get("type", ""),
                    message_id=int(message.get("message_id", 0)))
    if message.get("migrate_to_chat_id"):
        parsed.migrate_to = int(message["migrate_to_chat_id"])
        return parsed
    if message.get("migrate_from_chat_id"):
        parsed.migrate_from = int(message["migrate_from_chat_id"])
        return parsed
    if message.get("new_chat_members") or message.get("left_chat_member"):  # one event per member
        parsed.extra["members"] = moderation.member_events(message, lambda u: _address(chat, u, None, org), mid,
                                                           now, bot_id)
        if not parsed.extra["members"]:
            parsed.ignored = "the bot itself joined or left"
        return parsed
    user = message.get("from")
    if user is None or user.get("is_bot"):
        parsed.ignored = "a message from a bot or a channel"
        return parsed
    address = _address(chat, user, message.get("message_thread_id") if message.get("is_topic_message") else None, org)
    if chat.get("type") == "private":
        parsed.display_name = " ".join(str(user.get(k) or "") for k in ("first_name", "last_name")).strip()
    locale = telegram_locale(user.get("language_code", ""))
    text = message.get("text") if "text" in message else message.get("caption", "")
    text = text or ""
    entities = message.get("entities") or message.get("caption_entities") or []
    raw_text = text  # what the entities' offsets count in
    kind = "text"
    addressed = False
    payload: dict[str, Any] = {}
    command = _command(text, entities, bot_username) if text else None
    if command is not None:
        text, ours = command
        if not ours:
            parsed.ignored = "a command for another bot"
            return parsed
        kind, addressed = "command", True
    elif address.is_group:
        text, addressed = _strip_mention(text, entities, bot_username)
        replied = message.get("reply_to_message") or {}
        if (replied.get("from") or {}).get("id") == bot_id:
            addressed = True
    media: Media | None = None
    if message.get("photo"):
        largest = max(message["photo"], key=lambda p: p.get("file_size") or p.get("width", 0) * p.get("height", 0))
        parsed.file_id = largest["file_id"]
        media, kind = Media("image", f"telegram:{largest['file_id']}"), "media"
    elif message.get("document"):
        doc = message["document"]
        parsed.file_id, parsed.file_name = doc["file_id"], doc.get("file_name", "")
        media, kind = Media("file", f"telegram:{doc['file_id']}", name=parsed.file_name[:100]), "media"
    elif message.get("contact"):
        contact = message["contact"]
        own = contact.get("user_id") == user["id"]
        text = str(contact.get("phone_number", ""))
        payload["contact"] = {"phone_number": text, "own": own}
    elif message.get("location"):
        loc = message["location"]
        payload["location"] = {"latitude": loc["latitude"], "longitude": loc["longitude"]}
        text = f"{loc['latitude']:.5f}, {loc['longitude']:.5f}"
    elif address.is_group and (other := moderation.other_media(message)) is not None:
        media, kind = other, "media"  # in a group: moderated (a newcomer's, a pending captcha's), never fetched
    elif not text:
        parsed.ignored = "a message kind not used (sticker, voice, poll …)"
        return parsed
    if address.is_group:  # forwarded, links behind words, the replied message, the name (moderation.py)
        payload.update(moderation.hints(message, raw_text, entities))
    if edited:
        # screened like any message (safety sees the new words), never a new answer (bot/group.py)
        payload["edited"] = True
        addressed = False
        if kind == "command":
            kind = "text"
    # the Telegram message id rides along: moderation deletes by it (Outbound.target_message_id)
    parsed.inbound = Inbound(kind, address, f"{mid}:{parsed.message_id}", now, text=text, payload=payload, media=media,  # type: ignore[arg-type]
                             locale=locale, addressed=addressed)
    return parsed


def with_chat(inbound: Inbound, chat_id: str) -> Inbound:
    """The same inbound on the chat id carebot's Address uses (after a supergroup migration)."""
    if inbound.address.chat_id == chat_id:
        return inbound
    address = replace(inbound.address, chat_id=chat_id,
                      user_id=inbound.address.user_id if inbound.address.is_group else chat_id)
    return replace(inbound, address=address)
