"""The fake Bot API's group administration: who is in a group with which status, the bot's own
admin rights there, and the methods a moderating bot calls — with Telegram's answers when the bot
may not (core.telegram.org/bots/api#chatmember, #restrictchatmember, #banchatmember …):

    deleteMessage         a member's message needs `can_delete_messages`; the bot's own always goes
                          → 400 "Bad Request: message can't be deleted" / "message to delete not found"
    restrictChatMember    supergroups only; needs `can_restrict_members`
    banChatMember         → 400 "Bad Request: not enough rights to restrict/unrestrict chat member"
    unbanChatMember       (only_if_banned: a member who is not banned is left alone)
                          an administrator cannot be restricted or banned
                          → 400 "Bad Request: user is an administrator of the chat"
    getChatMember         the ChatMember object (the bot's own: its rights)
    getChatAdministrators the administrators, the bot among them once promoted

Members' messages are known to the fake when `Updates` builds them (`posted`), so deleting one
checks it exists, as Telegram does. `FakeBotAPI` mixes this in.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

RIGHTS = ("can_delete_messages", "can_restrict_members")
NO_RIGHTS = "Bad Request: not enough rights to restrict/unrestrict chat member"
PERMISSIONS = ("can_send_messages", "can_send_audios", "can_send_documents", "can_send_photos", "can_send_videos",
               "can_send_video_notes", "can_send_voice_notes", "can_send_polls", "can_send_other_messages",
               "can_add_web_page_previews")


class ModerationAPI:
    """Group membership and administration for `FakeBotAPI` (which supplies `_chat`, `chats`, `me`)."""

    members: dict[int, dict[int, dict[str, Any]]]
    posted: dict[tuple[int, int], dict[str, Any]]
    deleted: list[tuple[int, int]]

    def _init_moderation(self) -> None:
        self.members = defaultdict(dict)  # chat → user id → ChatMember JSON
        self.posted = {}  # (chat, message id) → a member's message the fake has delivered
        self.deleted = []  # (chat, message id) removed by the bot, in order

    # -- the world -------------------------------------------------------------------------------------

    def promote(self, chat_id: int, *, delete: bool = True, restrict: bool = True) -> dict[str, Any]:
        """Make the bot an administrator of the group with these rights; returns its ChatMember (for a
        `my_chat_member` update). `delete=restrict=False` leaves it an administrator without them."""
        member = {"status": "administrator", "user": self.me, "can_be_edited": False, "is_anonymous": False,
                  "can_manage_chat": True, "can_delete_messages": delete, "can_manage_video_chats": False,
                  "can_restrict_members": restrict, "can_promote_members": False, "can_change_info": False,
                  "can_invite_users": True, "can_post_stories": False, "can_edit_stories": False,
                  "can_delete_stories": False, "can_pin_messages": False}
        self.members[chat_id][self.bot_id] = member
        return dict(member)

    def demote(self, chat_id: int) -> dict[str, Any]:
        """The bot is a plain member again (its rights taken away)."""
        member = {"status": "member", "user": self.me}
        self.members[chat_id][self.bot_id] = member
        return dict(member)

    def status(self, chat_id: int, user_id: int) -> str:
        return str(self._member(chat_id, user_id)["status"])

    def record_posted(self, chat_id: int, message: dict[str, Any]) -> None:
        self.posted[(chat_id, int(message["message_id"]))] = message
        user = message.get("from") or {}
        if user.get("id") and user["id"] not in self.members[chat_id]:
            self.members[chat_id][user["id"]] = {"status": "member", "user": user}

    def _member(self, chat_id: int, user_id: int) -> dict[str, Any]:
        member = self.members.get(chat_id, {}).get(user_id)
        if member is not None:
            return member
        if user_id == self.bot_id:
            return {"status": "member", "user": self.me}
        return {"status": "left", "user": {"id": user_id, "is_bot": False, "first_name": "Member"}}

    def _can(self, chat_id: int, right: str) -> bool:
        me = self._member(chat_id, self.bot_id)
        return me["status"] == "creator" or (me["status"] == "administrator" and bool(me.get(right)))

    # -- methods ---------------------------------------------------------------------------------------

    def _delete(self, params: dict[str, Any]) -> bool:
        from adapters.telegram.testing.server import ApiError

        chat = self._chat(params)  # type: ignore[attr-defined]
        message_id = int(params.get("message_id", 0) or 0)
        for record in self.sent:  # type: ignore[attr-defined]
            if record.chat_id == chat["id"] and record.message_id == message_id:
                self.sent.remove(record)  # type: ignore[attr-defined]
                self.deleted.append((chat["id"], message_id))
                return True
        if (chat["id"], message_id) not in self.posted:
            raise ApiError(400, "Bad Request: message to delete not found")
        if chat.get("type") in ("group", "supergroup") and not self._can(chat["id"], "can_delete_messages"):
            raise ApiError(400, "Bad Request: message can't be deleted")
        del self.posted[(chat["id"], message_id)]
        self.deleted.append((chat["id"], message_id))
        return True

    def _target(self, params: dict[str, Any], *, only_supergroup: bool = True) -> tuple[dict[str, Any], int]:
        from adapters.telegram.testing.server import ApiError

        chat = self._chat(params)  # type: ignore[attr-defined]
        if chat.get("type") == "private":
            raise ApiError(400, "Bad Request: chat member status can't be changed in private chats")
        if only_supergroup and chat.get("type") != "supergroup":
            raise ApiError(400, "Bad Request: method is available only for supergroups")
        try:
            user_id = int(params.get("user_id", ""))
        except (TypeError, ValueError):
            raise ApiError(400, "Bad Request: invalid user_id specified") from None
        if not self._can(chat["id"], "can_restrict_members"):
            raise ApiError(400, NO_RIGHTS)
        if user_id == self.bot_id:
            raise ApiError(400, "Bad Request: can't restrict self")
        status = self._member(chat["id"], user_id)["status"]
        if status == "creator":
            raise ApiError(400, "Bad Request: can't remove chat owner")
        if status == "administrator":
            raise ApiError(400, "Bad Request: user is an administrator of the chat")
        return chat, user_id

    @staticmethod
    def _until(params: dict[str, Any]) -> int:
        """The until_date as sent (0: forever); kept as given, the tests' clock being the bot's."""
        return int(params.get("until_date", 0) or 0)

    def _m_restrictChatMember(self, params: dict[str, Any]) -> bool:
        from adapters.telegram.testing.server import ApiError

        chat, user_id = self._target(params)
        permissions = params.get("permissions")
        if isinstance(permissions, str):
            import json

            permissions = json.loads(permissions)
        if not isinstance(permissions, dict):
            raise ApiError(400, "Bad Request: parameter \"permissions\" is required")
        member = self._member(chat["id"], user_id)
        full = {k: bool(permissions.get(k, False)) for k in PERMISSIONS}
        if all(full.values()):
            status = "member" if member["status"] in ("member", "restricted") else member["status"]
            self.members[chat["id"]][user_id] = {"status": status, "user": member["user"]}
        else:
            self.members[chat["id"]][user_id] = {"status": "restricted", "user": member["user"],
                                                 "is_member": member["status"] not in ("left", "kicked"),
                                                 "until_date": self._until(params), **full}
        return True

    def _m_banChatMember(self, params: dict[str, Any]) -> bool:
        chat, user_id = self._target(params, only_supergroup=False)
        member = self._member(chat["id"], user_id)
        self.members[chat["id"]][user_id] = {"status": "kicked", "user": member["user"],
                                             "until_date": self._until(params)}
        return True

    def _m_unbanChatMember(self, params: dict[str, Any]) -> bool:
        chat, user_id = self._target(params, only_supergroup=False)
        member = self._member(chat["id"], user_id)
        if member["status"] != "kicked" and params.get("only_if_banned") in (True, "true", "True"):
            return True
        if member["status"] == "kicked" or member["status"] not in ("member", "restricted"):
            self.members[chat["id"]][user_id] = {"status": "left", "user": member["user"]}
        return True

    def _m_getChatMember(self, params: dict[str, Any]) -> dict[str, Any]:
        from adapters.telegram.testing.server import ApiError

        chat = self._chat(params)  # type: ignore[attr-defined]
        try:
            user_id = int(params.get("user_id", ""))
        except (TypeError, ValueError):
            raise ApiError(400, "Bad Request: invalid user_id specified") from None
        return dict(self._member(chat["id"], user_id))

    def _m_getChatAdministrators(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        chat = self._chat(params)  # type: ignore[attr-defined]
        return [dict(m) for m in self.members.get(chat["id"], {}).values()
                if m["status"] in ("administrator", "creator")]
