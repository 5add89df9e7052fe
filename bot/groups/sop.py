"""The group's programme (SOP): posts by day since a member joined, posts by calendar, and the
weekly digest to the group's doctor. All are durable timers (kind `group`, bot/timer_names.py).

- A member's programme (`sop.programme`, e.g. a 28-day post-surgery course) is timers in the
  member's own conversation, `group:sop:<n>`: a turn a timer starts is proactive, so the runtime
  holds it for the member's opt-out, their weekly cap and quiet hours (bot/runtime/proactive.py),
  exactly like a reminder. The post goes to the group, mentioning the member.
- Calendar posts (`group:cal:<n>`) and the digest (`group:digest`) are the group's: timers in the
  group's own conversation (the one with no member), scheduled by a start-up turn for each chat
  (`setup_turns`) and rescheduled each time they fire. They are not one patient's messages, so the
  per-patient cap does not count them (`proactive: false`).
- Every post goes through the group's send budget; a post the budget has no room for waits five
  minutes. Articles always carry their source (content/articles).
"""

from __future__ import annotations

import hashlib
from datetime import datetime, time, timedelta, timezone
from typing import TYPE_CHECKING

from bot.groups.acts import Act
from bot.groups.policy import GroupPolicies, GroupPolicy
from bot.groups.records import week_summary
from bot.timeofday import DAY_NAMES
from bot.types import Address, Inbound, ScheduleTimer

if TYPE_CHECKING:
    from bot.groups.stage import ModerationStage

RETRY = timedelta(minutes=5)  # a post the send budget had no room for tries again after this
WEEK = timedelta(days=7)


def programme_timer(i: int) -> str:
    return f"group:sop:{i}"


def _at(policy: GroupPolicy, day: datetime, hhmm: str) -> datetime:
    local = policy.local(day)
    t = time.fromisoformat(hhmm)
    return local.replace(hour=t.hour, minute=t.minute, second=0, microsecond=0)


def schedule_member(act: Act) -> None:
    """The member's programme from the day they joined: day N at its time, each a timer."""
    policy, now = act.policy, act.now
    joined = datetime.fromisoformat(act.ctx.state.group.get("joined") or now.isoformat())
    for i, post in enumerate(policy.sop.programme):
        due = _at(policy, joined + timedelta(days=post.day), post.at)
        if due > now:
            act.ctx.effects.append(ScheduleTimer(programme_timer(i), due, {"post": i}))


def _next_calendar(policy: GroupPolicy, i: int, after: datetime) -> datetime | None:
    post = policy.sop.calendar[i]
    if post.date:
        due = _at(policy, datetime.fromisoformat(post.date).replace(tzinfo=policy.local(after).tzinfo), post.at)
        return due if due > after else None
    local = policy.local(after)
    for ahead in range(8):
        day = local + timedelta(days=ahead)
        due = _at(policy, day, post.at)
        if DAY_NAMES[due.weekday()] in post.weekly and due > after:
            return due
    return None


def _next_digest(policy: GroupPolicy, after: datetime) -> datetime | None:
    digest = policy.sop.digest
    if digest is None:
        return None
    local = policy.local(after)
    for ahead in range(8):
        due = _at(policy, local + timedelta(days=ahead), digest.at)
        if DAY_NAMES[due.weekday()] == digest.weekly and due > after:
            return due
    return None


def schedule_group(act: Act) -> None:
    """The group's own clocks: calendar posts and the digest (the start-up turn)."""
    policy, now = act.policy, act.now
    for i in range(len(policy.sop.calendar)):
        due = _next_calendar(policy, i, now)
        if due is not None:
            act.ctx.effects.append(ScheduleTimer(f"group:cal:{i}", due, {"proactive": False}))
    due = _next_digest(policy, now)
    if due is not None:
        act.ctx.effects.append(ScheduleTimer("group:digest", due, {"proactive": False}))


def setup_turns(policies: GroupPolicies, now: datetime) -> list[Inbound]:
    """One turn per chat of every policy that schedules its calendar and digest. The message id
    carries a digest of the programme, so a restart repeats nothing (the inbox drops it) and an
    edited programme is scheduled afresh."""
    out = []
    for policy in policies.policies.values():
        version = hashlib.sha256(policy.sop.model_dump_json().encode()).hexdigest()[:12]
        for chat in policy.chats:
            out.append(Inbound(kind="join", address=Address(chat.channel, chat.chat_id, "", is_group=True),
                               message_id=f"group-setup:{policy.id}:{chat.chat_id}:{version}",
                               received_at=now.astimezone(timezone.utc)))
    return out


async def on_timer(stage: ModerationStage, act: Act, name: str) -> None:
    """A group clock came due."""
    policy = act.policy
    if name.startswith("group:sop:"):
        await _programme(act, int(name.rsplit(":", 1)[1]), name)
    elif name.startswith("group:cal:"):
        i = int(name.rsplit(":", 1)[1])
        if i < len(policy.sop.calendar):
            post = policy.sop.calendar[i]
            if not await act.say(post.key, to_group=True):
                act.ctx.effects.append(ScheduleTimer(name, act.now + RETRY, {"proactive": False}))
                return
            act.log(f"sop:calendar:{i}", "post", "say", member="")
            due = _next_calendar(policy, i, act.now)
            if due is not None:
                act.ctx.effects.append(ScheduleTimer(name, due, {"proactive": False}))
    elif name == "group:digest":
        await _digest(stage, act)


async def _programme(act: Act, i: int, name: str) -> None:
    state, policy = act.ctx.state, act.policy
    if i >= len(policy.sop.programme) or state.group.get("left") or state.group.get("removed"):
        return
    post = policy.sop.programme[i]
    if not await act.say(post.key, {"name": state.group.get("name", ""), "day": post.day}):
        act.ctx.effects.append(ScheduleTimer(name, act.now + RETRY, {"post": i}))
        return
    act.log(f"sop:day:{post.day}", "post", "say")


async def _digest(stage: ModerationStage, act: Act) -> None:
    assert stage.store is not None
    policy, now = act.policy, act.now
    summary = await week_summary(stage.store, act.address.org, policy.id, now - WEEK, now)
    actions = summary["actions"]
    values = {"joined": actions.get("join", 0), "left": actions.get("leave", 0), "removed": actions.get("delete", 0),
              "warned": actions.get("warn", 0), "muted": actions.get("mute", 0),
              "banned": actions.get("ban", 0) + actions.get("kick", 0), "posts": actions.get("post", 0),
              "reports": summary["cases"].get("report", 0), "flags": summary["cases"].get("flag", 0),
              "appeals": summary["cases"].get("appeal", 0), "pending": summary["pending"]}
    act.tell_staff(policy.doctor or policy.owner, "groups.staff.digest", values)
    act.log("sop:digest", "digest", "doctor_told", member="")
    due = _next_digest(policy, now)
    if due is not None:
        act.ctx.effects.append(ScheduleTimer("group:digest", due, {"proactive": False}))
