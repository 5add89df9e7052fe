"""Group chats: the bot answers only when addressed, each member has their own flow state, and
safety screening still sees every message."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from bot.group import is_addressed
from bot.testing.memory import MemoryAdapter
from bot.types import Address, Inbound
from tests.conftest import T0
from tests.flows_common import ECHO_FLOWS, ECHO_MESSAGES

GROUP = "g1"


def _say(platform: MemoryAdapter, user: str, text: str, now: Any = T0, **kw: Any) -> Inbound:
    kind = "command" if text.startswith("/") else "text"
    return platform.inbound(GROUP, text, kind=kind, user_id=user, is_group=True, now=now, **kw)


def test_direct_chat_ids_are_unchanged_and_group_members_get_their_own():
    assert Address("memory", "p1", "p1").conversation_id == "default:memory:p1"
    assert Address("memory", "p1", "p1", thread_id="t").conversation_id == "default:memory:p1:t"
    alice = Address("memory", GROUP, "alice", is_group=True)
    bob = Address("memory", GROUP, "bob", is_group=True)
    assert alice.conversation_id == "default:memory:g1/alice"
    assert alice.conversation_id != bob.conversation_id
    assert Address("memory", GROUP, "alice", "t", is_group=True).conversation_id == "default:memory:g1:t/alice"
    # a group-level event with nobody speaking (the group itself) keeps the group's id
    assert Address("memory", GROUP, "", is_group=True).conversation_id == "default:memory:g1"


def test_what_addresses_the_bot_in_a_group():
    platform = MemoryAdapter()

    def group(text: str = "", kind: str = "text", **kw: Any) -> Inbound:
        return platform.inbound(GROUP, text, kind=kind, user_id="alice", is_group=True, now=T0, **kw)

    assert not is_addressed(group("大家好"))
    assert not is_addressed(group(kind="media"))
    assert is_addressed(group("/consult", kind="command"))
    assert is_addressed(group("/consult@carebot"))  # a command the platform delivered as text
    assert is_addressed(group("是", kind="choice", payload={"value": "yes"}))  # a button the bot sent
    assert is_addressed(group("菜单", addressed=True))  # a mention of the bot, or a reply to it
    assert is_addressed(group(kind="join"))  # not a message: the flows decide
    assert is_addressed(group(kind="timer"))
    assert is_addressed(platform.inbound("p1", "大家好", now=T0))  # a direct chat is always addressed


async def test_members_of_one_group_have_their_own_flows_and_are_answered_only_when_addressed(make_bot):
    bot, platform, clock = make_bot(ECHO_FLOWS, ECHO_MESSAGES)
    await bot.start(background=False)
    try:
        await bot.runtime.handle(_say(platform, "alice", "今天天气真好"))  # members chatting
        await bot.runtime.handle(_say(platform, "bob", "是啊"))
        await bot.settle()
        assert platform.sent == []

        await bot.runtime.handle(_say(platform, "alice", "/echo"))  # a command
        await bot.runtime.handle(_say(platform, "bob", "@bot 你好", addressed=True))  # a mention
        await bot.runtime.handle(_say(platform, "alice", "一", addressed=True))  # a reply to the bot
        await bot.runtime.handle(_say(platform, "alice", "二"))  # to the group: not an answer
        await bot.runtime.handle(_say(platform, "bob", "甲", addressed=True))
        await bot.settle()
        assert [(s.outbound.address.user_id, s.outbound.text) for s in platform.sent] == [
            ("alice", "请说"), ("bob", "请说"), ("alice", "一"), ("alice", "请说"), ("bob", "甲"), ("bob", "请说")]
        assert {s.outbound.address.chat_id for s in platform.sent} == {GROUP}  # replies go to the group

        def conv(user: str) -> str:
            return Address(platform.channel, GROUP, user, is_group=True).conversation_id

        alice, _ = await bot.store.load(conv("alice"))
        bob, _ = await bot.store.load(conv("bob"))
        assert alice is not None and bob is not None
        assert alice["slots"]["seen"] == ["一"] and bob["slots"]["seen"] == ["甲"]
        assert (await bot.store.load(Address(platform.channel, GROUP).conversation_id))[0] is None

        # a member's timer comes back to that member's conversation, in the group
        await bot.runtime.handle(_say(platform, "bob", "/remind", now=clock.now()))
        await bot.settle()
        before = len(platform.sent)
        clock.advance(timedelta(hours=2, minutes=1))
        await bot.timers.tick()
        await bot.settle()
        pill = [(o.address.chat_id, o.address.user_id) for o in (s.outbound for s in platform.sent[before:])
                if o.text == "该吃药了"]
        assert pill == [(GROUP, "bob")]
    finally:
        await bot.stop()


async def test_an_unaddressed_emergency_in_a_group_gets_the_emergency_route(make_bot):
    bot, platform, _ = make_bot(shipped=True)
    await bot.start(background=False)
    try:
        await bot.runtime.handle(_say(platform, "alice", "/consult", locale="zh-CN"))
        await bot.settle()
        before = len(platform.sent)
        await bot.runtime.handle(_say(platform, "bob", "我爸胸口剧痛出冷汗", locale="zh-CN"))
        await bot.settle()
        replies = [s.outbound for s in platform.sent[before:]]
        assert replies and replies[0].key == "triage.emergency_ambulance" and "120" in replies[0].text
        assert {(o.address.chat_id, o.address.user_id) for o in replies} == {(GROUP, "bob")}
        bob, _ = await bot.store.load(Address(platform.channel, GROUP, "bob", is_group=True).conversation_id)
        alice, _ = await bot.store.load(Address(platform.channel, GROUP, "alice", is_group=True).conversation_id)
        assert bob is not None and alice is not None
        assert (bob["mode"], bob["triage_level"]) == ("human", "emergency_ambulance")
        assert alice["mode"] == "bot" and [f["flow"] for f in alice["stack"]] == ["intake", "consent"]
    finally:
        await bot.stop()
