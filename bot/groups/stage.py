"""The moderation stage: between safety and `GroupStage`, every message in a group that has a policy.

    safety (every message; an emergency ends the turn with the crisis route) → moderation → group → …

Safety runs first, so no moderation rule — not night mode, not a lock, not a blocklist — can hide a
member's emergency: the emergency reply and the urgent ticket come before this stage ever sees it.

For a member's message, in order: the organisation's banlist; a pending captcha (messages deleted
until the button is pressed); `/report` and @admin (to the moderator on duty); then, unless the
member is in an open emergency episode (their words must reach the care team): flood; night mode;
the blocklist (a `report` entry flags the message to the moderator and leaves it); newcomer limits;
locks. The first rule that acts ends the turn; otherwise the message goes on (`GroupStage` then
decides whether it was for the bot). Joins, leaves, the captcha and the group's programme are in
`members.py` and `sop.py`; what the platform cannot do falls back in `acts.py`. In a direct chat
the stage only takes `/appeal`.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from bot.adapter import AdapterSet
from bot.flow.content import Content
from bot.group import is_addressed
from bot.groups import members, sop
from bot.groups.acts import ALL_OPS, REFUSED, Act
from bot.groups.matching import blocklist_hit, locked_content
from bot.groups.policy import GroupPolicies, GroupPolicy
from bot.groups.records import active_ban, last_action
from bot.pipeline import PATIENT_INPUT, Next, TurnContext
from bot.timer_names import GROUP, kind_of
from bot.types import Address, Outbound, Send

if TYPE_CHECKING:
    from bot.coord import Coord
    from bot.store.store import Store

REPORT = re.compile(r"^/report(?:@\w+)?\b|@admins?\b|@管理员|@群主", re.IGNORECASE)
APPEAL = re.compile(r"^/appeal(?:@\w+)?\b\s*|^申诉[:：\s]*", re.IGNORECASE)
PRIVACY_LOCKS = frozenset({"phone", "email", "contacts"})


class ModerationStage:
    def __init__(self, policies: GroupPolicies, content: Content, base_locale: str, ambulance: str = ""):
        self.policies = policies
        self.content = content
        self.base_locale = base_locale
        self.ambulance = ambulance  # content/care.yml: night mode's notice gives it
        self.store: Store | None = None
        self.coord: Coord | None = None
        self.adapters: AdapterSet = AdapterSet()

    def bind(self, store: Store, coord: Coord, adapters: AdapterSet) -> None:
        """Give the stage the parts a running bot has (CareBot.build)."""
        from bot.groups.records import install

        self.store, self.coord, self.adapters = store, coord, adapters
        install(store)

    async def act(self, ctx: TurnContext, policy: GroupPolicy) -> Act:
        """The stage's hands in this chat, with what the platform can do there (a Telegram group
        where the bot is no admin can do less than Telegram can)."""
        assert self.coord is not None
        adapter = self.adapters.get(ctx.inbound.address.channel)
        if adapter is None:
            caps = ALL_OPS
        elif ctx.inbound.address.user_id:  # a member's turn; the group's own (its programme) moderates nobody
            caps = await adapter.capabilities_in(ctx.inbound.address)
        else:
            caps = adapter.capabilities
        return Act(ctx, policy, caps, self.content, self.coord, self.base_locale)

    def deep_link(self, channel: str, start: str) -> str:
        adapter = self.adapters.get(channel)
        return adapter.deep_link(start) if adapter else ""

    async def __call__(self, ctx: TurnContext, call_next: Next) -> None:
        inbound = ctx.inbound
        address = inbound.address
        if not address.is_group:
            if inbound.kind in ("text", "command") and APPEAL.match(inbound.text.strip()) and self.store is not None:
                await self._appeal(ctx)
                return
            await call_next(ctx)
            return
        policy = self.policies.for_chat(address.channel, address.chat_id)
        refused = inbound.kind == "staff_event" and inbound.payload.get("event") == REFUSED
        if refused and (policy is None or self.store is None):
            return  # the platform refused an op of a policy since removed: nothing left to fall back to
        if policy is None or self.store is None:
            await call_next(ctx)
            return
        act = await self.act(ctx, policy)
        if refused:
            self._refused(act)
            return
        if inbound.kind == "timer" and kind_of(str(inbound.payload.get("name", ""))) == GROUP:
            name = str(inbound.payload.get("name", ""))
            await (members.timed_out(act) if name == members.CAPTCHA_TIMER else sop.on_timer(self, act, name))
            return
        if not address.user_id:  # the group itself: the start-up turn that schedules its programme
            if inbound.kind == "join":
                sop.schedule_group(act)
            return
        if address.user_id in policy.exempt:
            await call_next(ctx)
            return
        if inbound.kind == "join":
            await members.joined(self, act)
            return
        if inbound.kind == "leave":
            members.left(act)
            return
        if inbound.kind in PATIENT_INPUT and await self._moderate(act):
            return
        await call_next(ctx)

    # -- a member's message ------------------------------------------------------------------------------

    async def _moderate(self, act: Act) -> bool:
        """Apply the policy to a member's message; True when a rule acted and the turn ends."""
        assert self.store is not None and self.coord is not None
        ctx, policy, inbound = act.ctx, act.policy, act.ctx.inbound
        text, g = inbound.text, ctx.state.group
        ban = await active_ban(self.store, inbound.address.org, inbound.address.channel, act.member)
        if ban is not None:
            act.delete("banlist", "delete", "banlist", excerpt=text)
            act.ban("banlist", ban["reason"])
            return True
        if g.get("captcha"):
            if inbound.kind == "choice" and inbound.payload.get("value") == members.CAPTCHA_VALUE:
                await members.passed(self, act)
            else:
                act.delete("captcha_pending", "delete", "captcha", excerpt=text)
            return True
        if inbound.kind == "choice" and inbound.payload.get("value") == members.CAPTCHA_VALUE:
            return True  # an old captcha button pressed by someone already admitted
        if REPORT.search(text.strip()):
            await self._report(act)
            return True
        if ctx.state.mode == "human" and ctx.state.triage_level.startswith("emergency"):
            return False  # a member in an emergency episode: every word reaches the care team, at night too
        if policy.flood is not None:
            flood = policy.flood
            wait = await self.coord.hit(f"group:flood:{inbound.address.channel}:{inbound.address.chat_id}:{act.member}",
                                        flood.messages, policy.seconds(flood.per), at=ctx.now.timestamp())
            if wait > 0:
                await self.apply(act, flood.action, "flood", act.render("groups.reason.flood"), text,
                                 mute_for=policy.seconds(flood.mute_for))
                return True
        if policy.night is not None and not is_addressed(inbound) and \
                policy.night.contains(policy.local(ctx.now).time()):
            await self._night(act)
            return True
        rule = blocklist_hit(text, self.policies.rules.get(policy.id, []))
        if rule is not None and rule.action != "report":
            label = rule.label.get(act.locale) or rule.label.get(self.base_locale) or act.render("groups.reason.rules")
            await self.apply(act, rule.action, f"blocklist:{rule.id}", label, text)
            return True
        if rule is not None:  # a flag: a person decides, the message stays
            self._flag(act, f"blocklist:{rule.id}", text)
        return await self._limits(act, g)

    async def _limits(self, act: Act, g: dict[str, Any]) -> bool:
        policy, inbound, text = act.policy, act.ctx.inbound, act.ctx.inbound.text
        found = locked_content(inbound)
        joined = _when(g.get("joined"))
        newcomer = policy.newcomer
        if newcomer is not None and joined is not None and act.now < joined + timedelta(
                seconds=policy.seconds(newcomer.for_)):
            kinds = [k for k in found.kinds] + (["media"] if inbound.kind == "media" and not newcomer.media else [])
            if kinds:
                hours = round(policy.seconds(newcomer.for_) / 3600)
                await self.apply(act, newcomer.action, f"newcomer:{kinds[0]}", act.render("groups.reason.newcomer"),
                                 text, notice=("groups.newcomer", {"hours": hours}))
                return True
        locks = policy.locks.active()
        for kind in found.kinds:
            if kind in locks:
                what = act.render(f"groups.what.{kind}")
                notice = ("groups.removed_privacy", {"what": what}) if kind in PRIVACY_LOCKS else None
                await self.apply(act, locks[kind], f"lock:{kind}", what, text, notice=notice)
                return True
        return False

    async def apply(self, act: Act, action: str, trigger: str, reason: str, excerpt: str, *,
                    mute_for: int | None = None, notice: tuple[str, dict[str, Any]] | None = None) -> None:
        """Do what the policy says for a broken rule: delete, warn, mute, ban or report."""
        policy, state = act.policy, act.ctx.state
        name = act.ctx.inbound.payload.get("name", "") if isinstance(act.ctx.inbound.payload, dict) else ""
        if action == "report":
            self._flag(act, trigger, excerpt)
            return
        act.delete(trigger, "delete", reason, excerpt=excerpt)
        if action == "delete":
            key, values = notice or ("groups.removed", {"reason": reason})
            await act.say(key, {"name": name, **values})
            return
        if action == "warn":
            await self.warn(act, trigger, reason, name)
            return
        if action == "mute":
            seconds = mute_for if mute_for is not None else policy.seconds(policy.warnings.mute_for)
            await self.mute(act, trigger, reason, seconds, name)
            return
        act.ban(trigger, reason)
        await act.say("groups.banned", {"name": name, "reason": reason})
        state.group = {**state.group, "warnings": []}

    async def warn(self, act: Act, trigger: str, reason: str, name: str) -> None:
        """Count a warning; warnings older than the decay no longer count. At the threshold: mute or ban."""
        rules, state = act.policy.warnings, act.ctx.state
        since = act.now - timedelta(seconds=act.policy.seconds(rules.decay))
        live = [w for w in state.group.get("warnings", []) if (_when(w) or since) > since] + [act.now.isoformat()]
        state.group = {**state.group, "warnings": live}
        act.log(trigger, "warn", "warned")
        if len(live) < rules.threshold:
            then = act.render(f"groups.then.{rules.then}")
            await act.say("groups.warned", {"name": name, "reason": reason, "count": len(live),
                                            "threshold": rules.threshold, "then": then})
            return
        state.group = {**state.group, "warnings": []}
        if rules.then == "ban":
            act.ban("warnings", reason)
            await act.say("groups.banned", {"name": name, "reason": reason})
        else:
            await self.mute(act, "warnings", reason, act.policy.seconds(rules.mute_for), name, counted=True)

    async def mute(self, act: Act, trigger: str, reason: str, seconds: int, name: str, counted: bool = False) -> None:
        until = act.now + timedelta(seconds=seconds)
        if act.restrict(until, "none", reason):
            act.log(trigger, "mute", "restrict", excerpt="")
            minutes = max(1, round(seconds / 60))
            await act.say("groups.muted", {"name": name, "reason": reason, "minutes": minutes})
            return
        # the platform cannot mute: a warning instead (said, and counted unless it is the threshold's own)
        act.log(trigger, "mute", "warned", act.why("the platform cannot mute members: warned instead"))
        if counted:
            await act.say("groups.warned_final", {"name": name, "reason": reason})
        else:
            await self.warn(act, trigger, reason, name)

    def _refused(self, act: Act) -> None:
        """The platform refused an op when it was delivered (the bot lost its rights in the chat
        after the turn decided, or the message was too old to delete): a person is asked instead,
        as if the platform had never been able to, and the log says why. Told, never retried — a
        retry would meet the same refusal."""
        p = act.ctx.inbound.payload
        op, error = str(p.get("op", "")), str(p.get("error", ""))[:120]
        lift = bool(p.get("lift")) or p.get("permissions") == "all"
        key = "groups.staff.refused_lift" if lift else f"degraded.moderation.{op}"
        if op not in ("delete", "restrict", "ban"):
            return
        values = {"chat": act.address.chat_id, "member": act.member, "channel": act.address.channel,
                  "reason": str(p.get("reason", ""))}
        act.tell_staff(act.policy.owner, key, values, action=op, target_message_id=str(p.get("target_message_id", "")))
        act.log(f"refused:{op}", "lift" if lift else op, "owner_asked",
                f"the platform refused ({error}): the owner was asked", message_id=str(p.get("target_message_id", "")))

    # -- people to tell ----------------------------------------------------------------------------------

    def _flag(self, act: Act, trigger: str, excerpt: str) -> None:
        moderator = act.policy.moderator(act.now)
        act.case("flag", reporter="bot", member=act.member, message_id=act.ctx.inbound.message_id, trigger=trigger,
                 text=excerpt, assignee=moderator)
        act.tell_staff(moderator, "groups.staff.flag", {"member": act.member, "rule": trigger},
                       target_message_id=act.ctx.inbound.message_id)
        act.log(trigger, "report", "moderator_told", excerpt=excerpt)

    async def _report(self, act: Act) -> None:
        inbound = act.ctx.inbound
        reply = inbound.payload.get("reply_to") if isinstance(inbound.payload, dict) else None
        reply = reply if isinstance(reply, dict) else {}
        moderator = act.policy.moderator(act.now)
        said = REPORT.sub("", inbound.text).strip()
        target, message = str(reply.get("user_id", "")), str(reply.get("message_id", ""))
        act.case("report", reporter=act.member, member=target, message_id=message, trigger="report", text=said,
                 assignee=moderator)
        act.tell_staff(moderator, "groups.staff.report", {"reporter": act.member, "member": target or "—",
                                                          "message": message or "—"},
                       target_message_id=message)
        act.log("report", "report", "moderator_told", member=target, message_id=message, excerpt=said)
        await act.say("groups.report_ack")

    async def _night(self, act: Act) -> None:
        night, g = act.policy.night, act.ctx.state.group
        assert night is not None
        if night.action == "report":
            self._flag(act, "night", act.ctx.inbound.text)
            return
        act.delete("night", "delete", act.render("groups.reason.night"), excerpt=act.ctx.inbound.text)
        opened = night.opened(act.policy.local(act.now))
        tonight = opened.date().isoformat() if opened else ""
        if g.get("night_told") != tonight:  # once a night per member, and always with the crisis route
            if await act.say("groups.night", {"start": night.start, "end": night.end, "ambulance": self.ambulance}):
                act.ctx.state.group = {**g, "night_told": tonight}

    async def _appeal(self, ctx: TurnContext) -> None:
        """`/appeal <why>` in a private chat: to the moderator on duty of the group that acted."""
        assert self.store is not None
        address = ctx.inbound.address
        locale = ctx.state.locale or ctx.inbound.locale or self.base_locale
        said = APPEAL.sub("", ctx.inbound.text.strip()).strip()
        last = await last_action(self.store, address.org, address.channel, address.user_id or address.chat_id)
        policy = self.policies.policies.get(last["policy"]) if last else None
        if last is None or policy is None:
            ctx.effects.append(_say(ctx, "groups.appeal_none", self.content.render("groups.appeal_none", locale, {})))
            return
        group_address = Address(address.channel, last["chat_id"], address.user_id or address.chat_id,
                                is_group=True, org=address.org)
        act = Act(ctx, policy, ALL_OPS, self.content, self.coord, self.base_locale)  # type: ignore[arg-type]
        moderator = policy.moderator(ctx.now)
        act.case("appeal", reporter=group_address.user_id, member=group_address.user_id, message_id="",
                 trigger=f"{last['action']}:{last['trigger']}", text=said, assignee=moderator)
        ctx.effects.append(Send(Outbound(
            op="notify_staff", address=group_address, key="groups.staff.appeal",
            text=self.content.render("groups.staff.appeal", self.base_locale, {
                "member": group_address.user_id, "group": act.group_name(self.base_locale), "action": last["action"]}),
            extra={"owner": moderator, "staff": moderator, "group": policy.id, "chat": last["chat_id"],
                   "member": group_address.user_id, "conversation": group_address.conversation_id})))
        ctx.effects.append(_say(ctx, "groups.appeal_ack", self.content.render("groups.appeal_ack", locale, {})))


def _say(ctx: TurnContext, key: str, text: str) -> Send:
    return Send(Outbound(op="say", address=ctx.state.address, key=key, text=text))


def _when(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(value) if isinstance(value, str) and value else None
    except ValueError:
        return None
