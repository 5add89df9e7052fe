"""Members coming and going: the banlist at the door, anti-raid, the button captcha, the welcome.

    join ──banned in the organisation?──► ban here too
         ──raid (more joins than `raid.joins` in `raid.per`)?──► hold for the captcha, silently; one
             alert to the group (with the button) and one to the moderator per lockdown
         ──captcha?──► mute, ask for the button, `group:captcha` timer ──pressed──► unmute, welcome
                                                                       ──timeout──► on_fail
         ──else──► welcome (rules + a deep link to private intake), the member's programme (SOP)

One captcha button serves every member waiting for it (its value is not personal: whoever presses
it is the one verified), so a raid needs one message, not one per joiner — the group's send budget
(`send_budget`, 20 a minute by default) holds however many join.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from bot.groups import sop
from bot.groups.acts import Act
from bot.groups.records import active_ban
from bot.types import Button, CancelTimer, ScheduleTimer

if TYPE_CHECKING:
    from bot.groups.stage import ModerationStage

CAPTCHA_VALUE = "group:captcha"  # the captcha button's value
CAPTCHA_TIMER = "group:captcha"


def _name(act: Act) -> str:
    payload = act.ctx.inbound.payload
    return str(payload.get("name", "")) if isinstance(payload, dict) else ""


async def joined(stage: ModerationStage, act: Act) -> None:
    assert stage.store is not None and stage.coord is not None
    policy, state, address = act.policy, act.ctx.state, act.address
    state.group = {"joined": act.now.isoformat(), "name": _name(act)}
    act.log("member", "join", "")
    ban = await active_ban(stage.store, address.org, address.channel, act.member)
    if ban is not None:
        act.ban("banlist", ban["reason"])
        return
    raid = False
    if policy.raid is not None:
        r = policy.raid
        key = f"{address.channel}:{address.chat_id}"
        raid = await stage.coord.hit(f"group:joins:{key}", r.joins, policy.seconds(r.per), at=act.now.timestamp()) > 0
        if raid and await stage.coord.hit(f"group:raid:{key}", 1, policy.seconds(r.lockdown), at=act.now.timestamp()) == 0:
            moderator = policy.moderator(act.now)
            act.tell_staff(moderator, "groups.staff.raid", {"joins": r.joins, "per": r.per})
            act.log("raid", "lockdown", "moderator_told")
            await act.say("groups.raid", {}, buttons=(_button(act),), to_group=True)
    if policy.captcha is None and not raid:
        await admit(stage, act)
        return
    timeout = policy.seconds(policy.captcha.timeout) if policy.captcha else 300
    held = act.restrict(None, "none", "captcha")
    act.log("raid" if raid else "captcha", "hold", "restrict" if held else "",
            "" if held else act.why("the platform cannot mute members: their messages are deleted until they press the "
                                   "button"))
    state.group = {**state.group, "captcha": (act.now + timedelta(seconds=timeout)).isoformat()}
    act.ctx.effects.append(ScheduleTimer(CAPTCHA_TIMER, act.now + timedelta(seconds=timeout), {"proactive": False}))
    if not raid:
        await act.say("groups.captcha", {"name": _name(act), "minutes": max(1, round(timeout / 60))},
                      buttons=(_button(act),))


def _button(act: Act) -> Button:
    return Button(act.render("groups.captcha_button"), CAPTCHA_VALUE, "groups.captcha_button")


async def passed(stage: ModerationStage, act: Act) -> None:
    """The member pressed the captcha button in time."""
    state = act.ctx.state
    state.group = {k: v for k, v in state.group.items() if k != "captcha"}
    act.ctx.effects.append(CancelTimer(CAPTCHA_TIMER))
    act.restrict(None, "all", "captcha passed")
    act.log("captcha", "pass", "restrict" if act.can("restrict") else "")
    await admit(stage, act)


async def timed_out(act: Act) -> None:
    """The captcha timer fired: still not pressed → the policy's failure action."""
    state, policy = act.ctx.state, act.policy
    if not state.group.get("captcha") or state.group.get("removed"):
        return
    state.group = {k: v for k, v in state.group.items() if k != "captcha"}
    on_fail = policy.captcha.on_fail if policy.captcha else "kick"
    reason = act.render("groups.reason.captcha", locale=act.base_locale)
    if on_fail == "mute":  # stays muted until a moderator lets them speak
        act.log("captcha_timeout", "mute", "restrict" if act.can("restrict") else "",
                "" if act.can("restrict") else act.why("the platform cannot mute members: nothing more to do"))
        return
    act.ban("captcha_timeout", reason, kick=on_fail == "kick")


async def admit(stage: ModerationStage, act: Act) -> None:
    """Welcome the member and start their programme."""
    policy, address = act.policy, act.address
    if policy.welcome is not None:
        link = stage.deep_link(address.channel, policy.welcome.intake) or policy.welcome.intake_url
        rules = policy.welcome.rules.get(act.locale) or policy.welcome.rules.get(act.base_locale, "")
        said = await act.say("groups.welcome", {"name": act.ctx.state.group.get("name", ""),
                                                "group": act.group_name(), "rules": rules.strip(), "link": link})
        act.log("member", "welcome", "say" if said else "",
                "" if said else "the group's send budget was spent: no welcome said")
    sop.schedule_member(act)


def left(act: Act) -> None:
    act.ctx.effects.append(CancelTimer(CAPTCHA_TIMER))
    act.ctx.effects.extend(CancelTimer(sop.programme_timer(i)) for i in range(len(act.policy.sop.programme)))
    act.ctx.state.group = {"left": act.now.isoformat()}
    act.log("member", "leave", "")
