"""Raw updates as Telegram sends them (core.telegram.org/bots/api#update), for a `FakeBotAPI`.

Each builder returns the JSON object of one `Update` with a fresh `update_id`; `push` it to the fake
server (webhook or getUpdates) or hand it to an integration directly.
"""

from __future__ import annotations

import itertools
import re
import time
from typing import Any

from adapters.telegram.testing.server import FakeBotAPI, SentMessage

_COMMAND = re.compile(r"/[A-Za-z0-9_]{1,32}(@[A-Za-z0-9_]{3,32})?")
_MENTION = re.compile(r"@[A-Za-z0-9_]{3,32}")


class Updates:
    def __init__(self, api: FakeBotAPI, date: int | None = None):
        self.api = api
        self.date = date if date is not None else int(time.time())
        self._message_ids = itertools.count(1)

    def _update(self, **body: Any) -> dict[str, Any]:
        return {"update_id": self.api.next_update_id(), **body}

    def chat(self, chat_id: int) -> dict[str, Any]:
        chat = self.api.chats.get(chat_id)
        if chat is None or "migrated_to" in chat:
            return {"id": chat_id, "type": "group", "title": "Patients"}
        return dict(chat)

    def message_body(self, chat_id: int, user: dict[str, Any], text: str = "", *, thread_id: int | None = None,
                     reply_to: SentMessage | dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
        message: dict[str, Any] = {"message_id": next(self._message_ids), "from": user, "chat": self.chat(chat_id),
                                   "date": self.date}
        if text:
            key = "caption" if ("photo" in extra or "document" in extra) else "text"
            message[key] = text
            entities = [{"type": "bot_command", "offset": 0, "length": m.end()} for m in [_COMMAND.match(text)] if m]
            entities += [{"type": "mention", "offset": m.start(), "length": m.end() - m.start()}
                         for m in _MENTION.finditer(text) if not (entities and m.start() < entities[0]["length"])]
            if entities:
                message["entities" if key == "text" else "caption_entities"] = entities
        if thread_id is not None:
            message["message_thread_id"] = thread_id
            message["is_topic_message"] = True
        if isinstance(reply_to, SentMessage):
            message["reply_to_message"] = {"message_id": reply_to.message_id, "from": self.api.me,
                                           "chat": self.chat(reply_to.chat_id), "date": self.date,
                                           "text": reply_to.visible}
        elif reply_to is not None:
            message["reply_to_message"] = reply_to
        message.update(extra)
        self.api.record_posted(chat_id, message)  # so that deleting it is checked as Telegram does
        return message

    def message(self, chat_id: int, user: dict[str, Any], text: str = "", **kw: Any) -> dict[str, Any]:
        """A message in a chat (a DM when chat_id is the user's id)."""
        return self._update(message=self.message_body(chat_id, user, text, **kw))

    def edited(self, message: dict[str, Any], text: str) -> dict[str, Any]:
        """The patient edited an earlier message (same message_id, new text, an edit_date)."""
        body = {**message["message"], "text": text, "edit_date": self.date + 60}
        body.pop("entities", None)
        return self._update(edited_message=body)

    def photo(self, chat_id: int, user: dict[str, Any], data: bytes, caption: str = "") -> dict[str, Any]:
        file_id = self.api.put_file(data, "photo.jpg")
        sizes = [{"file_id": f"{file_id}", "file_unique_id": file_id[:8], "width": 1280, "height": 960,
                  "file_size": len(data)}]
        return self.message(chat_id, user, caption, photo=sizes)

    def document(self, chat_id: int, user: dict[str, Any], data: bytes, name: str, mime: str,
                 caption: str = "") -> dict[str, Any]:
        file_id = self.api.put_file(data, name)
        return self.message(chat_id, user, caption, document={"file_id": file_id, "file_unique_id": file_id[:8],
                                                              "file_name": name, "mime_type": mime,
                                                              "file_size": len(data)})

    def contact(self, chat_id: int, user: dict[str, Any], phone: str) -> dict[str, Any]:
        return self.message(chat_id, user, contact={"phone_number": phone, "first_name": user["first_name"],
                                                    "user_id": user["id"]})

    def location(self, chat_id: int, user: dict[str, Any], latitude: float, longitude: float) -> dict[str, Any]:
        return self.message(chat_id, user, location={"latitude": latitude, "longitude": longitude})

    def callback(self, user: dict[str, Any], message: SentMessage, data: str) -> dict[str, Any]:
        """A press of an inline button of a message the bot sent."""
        body = {"message_id": message.message_id, "from": self.api.me, "chat": self.chat(message.chat_id),
                "date": self.date, "text": message.visible}
        if message.reply_markup:
            body["reply_markup"] = message.reply_markup
        if message.thread_id is not None:
            body["message_thread_id"] = message.thread_id
        return self._update(callback_query={"id": f"cq{self.api.next_update_id()}", "from": user, "message": body,
                                            "chat_instance": f"ci{message.chat_id}", "data": data})

    def _member(self, user: dict[str, Any], status: str) -> dict[str, Any]:
        member: dict[str, Any] = {"status": status, "user": user}
        if status == "kicked":
            member["until_date"] = 0
        return member

    def my_chat_member(self, user: dict[str, Any], old: str, new: str, chat_id: int | None = None) -> dict[str, Any]:
        """The bot's own membership changed: in a DM `kicked` is the user blocking the bot, `member` unblocking."""
        chat = self.chat(chat_id if chat_id is not None else user["id"])
        return self._update(my_chat_member={"chat": chat, "from": user, "date": self.date,
                                            "old_chat_member": self._member(self.api.me, old),
                                            "new_chat_member": self._member(self.api.me, new)})

    def chat_member(self, chat_id: int, user: dict[str, Any], old: str, new: str) -> dict[str, Any]:
        """A member joined (`left` → `member`) or left (`member` → `left`) a group."""
        return self._update(chat_member={"chat": self.chat(chat_id), "from": user, "date": self.date,
                                         "old_chat_member": self._member(user, old),
                                         "new_chat_member": self._member(user, new)})

    def joined(self, chat_id: int, *users: dict[str, Any], by: dict[str, Any] | None = None) -> dict[str, Any]:
        """The service message of members joining (by link: from = the member; added: from = `by`)."""
        return self.message(chat_id, by or users[0], new_chat_members=list(users))

    def left(self, chat_id: int, user: dict[str, Any]) -> dict[str, Any]:
        """The service message of a member leaving."""
        return self.message(chat_id, user, left_chat_member=user)

    def bot_rights(self, chat_id: int, by: dict[str, Any], member: dict[str, Any], old: str = "member") -> dict[str, Any]:
        """The bot promoted (or demoted) in a group: `member` is its new ChatMember (`FakeBotAPI.promote`)."""
        return self._update(my_chat_member={"chat": self.chat(chat_id), "from": by, "date": self.date,
                                            "old_chat_member": self._member(self.api.me, old),
                                            "new_chat_member": member})

    def migrated(self, old_id: int, new_id: int, user: dict[str, Any]) -> dict[str, Any]:
        """The service message in the old group when it became a supergroup."""
        return self.message(old_id, user, migrate_to_chat_id=new_id)
