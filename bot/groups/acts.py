"""What the moderation stage does in one turn, fitted to what the platform can do.

`Act` is the stage's hands for one group message: say something in the group (within the group's
send budget), delete / mute / ban / kick (checking the platform's `Capabilities` first), tell the
moderator on duty, and write a moderation-log row for each automated action with what was really
done. The fallbacks are the policy's, decided here so the log can say why:

- delete the platform cannot do → the group's staff owner is asked to delete it (`owner_asked`;
  the runtime's degrade rule turns the op into a notice, bot/runtime/degrade.py);
- mute the platform cannot do → a warning in the group instead (`warned`);
- ban / kick the platform cannot do → the owner is asked to remove the member (`owner_asked`);
  the organisation's banlist records the ban either way.

An adapter maps the ops: `delete` (target_message_id), `restrict` (extra.until: ISO time or "" for
until lifted; extra.permissions: "none" | "text" | "all" — "all" lifts a restriction), `ban`
(extra.until: a time to let them rejoin, e.g. a kick; extra.lift: true unbans), `notify_staff`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bot.adapter import Capabilities
from bot.coord import Coord
from bot.flow.content import Content
from bot.groups.policy import GroupPolicy
from bot.groups.records import GroupRecord
from bot.pipeline import TurnContext
from bot.types import Address, Button, Moderate, Outbound, Send

# An adapter whose platform refuses an op at delivery hands it back as `Inbound(kind="staff_event",
# payload={"event": REFUSED, "op", "target_message_id", "until", "permissions", "lift", "reason",
# "error"})` in the member's conversation; the stage asks a person instead (stage.py `_refused`).
REFUSED = "moderation_refused"

ALL_OPS = Capabilities(ops=frozenset({"say", "delete", "restrict", "ban", "notify_staff"}))


@dataclass
class Act:
    ctx: TurnContext
    policy: GroupPolicy
    caps: Capabilities
    content: Content
    coord: Coord
    base_locale: str

    @property
    def address(self) -> Address:
        return self.ctx.inbound.address

    @property
    def member(self) -> str:
        return self.address.user_id

    @property
    def locale(self) -> str:
        return self.ctx.state.locale or self.ctx.inbound.locale or self.base_locale

    @property
    def now(self) -> datetime:
        return self.ctx.now

    def render(self, key: str, values: dict[str, Any] | None = None, locale: str = "") -> str:
        return self.content.render(key, locale or self.locale, values or {})

    def group_name(self, locale: str = "") -> str:
        name = self.policy.name
        return name.get(locale or self.locale) or name.get(self.base_locale) or self.policy.id

    # -- speaking in the group -----------------------------------------------------------------------

    async def within_budget(self) -> bool:
        """One more message in this group within its send budget (on the bot's clock)?"""
        budget = self.policy.send_budget
        wait = await self.coord.hit(f"group:say:{self.address.channel}:{self.address.chat_id}",
                                    budget.messages, self.policy.seconds(budget.per), at=self.now.timestamp())
        return wait == 0

    async def say(self, key: str, values: dict[str, Any] | None = None, *, buttons: tuple[Button, ...] = (),
                  mention: bool = True, to_group: bool = False) -> bool:
        """Say `key` in the group if the budget allows; False when it was left unsaid."""
        if not await self.within_budget():
            return False
        address = Address(self.address.channel, self.address.chat_id, "", self.address.thread_id, True,
                          self.address.org) if to_group else self.address
        extra: dict[str, Any] = {"group": self.policy.id}
        if mention and self.member and not to_group:
            extra["mention"] = self.member
            name = self.ctx.inbound.payload.get("name") if isinstance(self.ctx.inbound.payload, dict) else ""
            extra["mention_name"] = str(name or self.ctx.state.group.get("name", ""))[:64]
        self.ctx.effects.append(Send(Outbound(op="say", address=address, key=key, text=self.render(key, values),
                                              buttons=buttons, extra=extra)))
        return True

    # -- acting on members and messages ------------------------------------------------------------------

    def _op(self, op: str, reason: str, **extra: Any) -> None:
        self.ctx.effects.append(Moderate(Outbound(
            op=op, address=self.address,  # type: ignore[arg-type]
            target_message_id=self.ctx.inbound.message_id if op == "delete" else "",
            extra={"owner": self.policy.owner, "reason": reason, "group": self.policy.id, **extra}), reason=reason))

    def can(self, op: str) -> bool:
        return op in self.caps.ops

    def why(self, fallback: str) -> str:
        """The moderation log's reason for a fallback, with the platform's own note when it gave one."""
        return f"{fallback} ({self.caps.note})" if self.caps.note else fallback

    def delete(self, trigger: str, action: str, reason: str, excerpt: str = "") -> None:
        self._op("delete", reason)
        self.log(trigger, action, "delete" if self.can("delete") else "owner_asked",
                 "" if self.can("delete") else self.why("the platform cannot delete messages: the owner was asked"),
                 excerpt=excerpt)

    def restrict(self, until: datetime | None, permissions: str, reason: str) -> bool:
        """Mute (or lift a mute); False when the platform cannot."""
        if not self.can("restrict"):
            return False
        self._op("restrict", reason, until=until.isoformat() if until else "", permissions=permissions)
        return True

    def ban(self, trigger: str, reason: str, *, kick: bool = False, excerpt: str = "") -> None:
        """Ban (or, `kick`, remove and let rejoin) the member; the banlist keeps a ban org-wide."""
        until = (self.now + timedelta(minutes=1)).isoformat() if kick else ""
        self._op("ban", reason, until=until)
        action = "kick" if kick else "ban"
        self.log(trigger, action, action if self.can("ban") else "owner_asked",
                 "" if self.can("ban") else self.why("the platform cannot remove members: the owner was asked"),
                 excerpt=excerpt)
        if not kick:
            self.ctx.effects.append(GroupRecord("ban", {
                "channel": self.address.channel, "user_id": self.member, "reason": f"{trigger}: {reason}"[:200],
                "policy": self.policy.id, "chat_id": self.address.chat_id, "by": "bot"}))
        self.ctx.state.group = {**self.ctx.state.group, "removed": self.now.isoformat()}

    # -- people ----------------------------------------------------------------------------------------

    def tell_staff(self, staff: str, key: str, values: dict[str, Any], **extra: Any) -> None:
        """A notice for one staff member (the moderator on duty, the owner, the doctor), in the base
        locale; the runtime moves it to the staff console where the platform cannot notify staff."""
        self.ctx.effects.append(Send(Outbound(
            op="notify_staff", address=self.address, key=key,
            text=self.content.render(key, self.base_locale, {"group": self.group_name(self.base_locale), **values}),
            extra={"owner": staff, "staff": staff, "group": self.policy.id, "chat": self.address.chat_id,
                   "member": self.member, "conversation": self.address.conversation_id, **extra})))

    def case(self, kind: str, *, reporter: str, member: str, message_id: str, trigger: str, text: str,
             assignee: str) -> None:
        self.ctx.effects.append(GroupRecord("case", {
            "kind": kind, "status": "pending", "policy": self.policy.id, "channel": self.address.channel,
            "chat_id": self.address.chat_id, "reporter": reporter, "member": member, "message_id": message_id,
            "trigger": trigger, "text": text[:2000], "assignee": assignee}))

    def log(self, trigger: str, action: str, done: str, fallback: str = "", *, excerpt: str = "",
            member: str | None = None, message_id: str | None = None) -> None:
        self.ctx.effects.append(GroupRecord("log", {
            "policy": self.policy.id, "channel": self.address.channel, "chat_id": self.address.chat_id,
            "member": self.member if member is None else member,
            "message_id": self.ctx.inbound.message_id if message_id is None else message_id,
            "trigger": trigger[:120], "action": action, "done": done, "fallback": fallback, "excerpt": excerpt}))
