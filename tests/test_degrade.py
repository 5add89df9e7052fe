"""Capabilities are used: an outbound the platform cannot do is degraded before the commit by one
rule (bot/runtime/degrade.py) — moderation → a notice to the group's staff owner, buttons → numbered
text options, media → a text note, long text → parts — and the outbox holds what was really sent."""

from __future__ import annotations

from typing import Any

from bot.adapter import AdapterSet, Capabilities
from bot.pipeline import Next, Pipeline, TurnContext
from bot.runtime.degrade import degrade, degrade_effects
from bot.testing.memory import MemoryAdapter
from bot.types import Address, Button, Media, Moderate, Outbound, RecordEvent, Send
from tests.conftest import T0

GROUP = Address("memory", "g1", "spammer", is_group=True)
SAY_ONLY = Capabilities(ops=frozenset({"say"}), buttons=False, media=False, max_text=60)
STAFF = Capabilities(ops=frozenset({"notify_staff"}), buttons=False, media=False)


def _render(key: str, values: dict[str, Any]) -> str:
    return f"<{key} {' '.join(f'{k}={v}' for k, v in sorted(values.items()) if v)}>".replace(" >", ">")


def _degrade(ob: Outbound, caps: Capabilities, staff: str = "staff") -> list[Outbound]:
    return degrade(ob, caps, staff, patient=_render, staff_render=_render)


def test_what_the_platform_can_do_passes_unchanged():
    full = MemoryAdapter().capabilities
    ob = Outbound(op="say", address=GROUP, text="hello", buttons=(Button("Yes", "yes"),),
                  media=Media(ref="x.png", name="x.png"))
    assert _degrade(ob, full) == [ob]
    ban = Outbound(op="ban", address=GROUP)
    assert _degrade(ban, full) == [ban]


def test_moderation_a_platform_cannot_do_goes_to_the_groups_staff_owner():
    ban = Outbound(op="ban", address=GROUP, target_message_id="m7", extra={"owner": "dr_li", "reason": "ads"})
    [notice] = _degrade(ban, SAY_ONLY)
    assert notice.op == "notify_staff"
    assert notice.address == Address("staff", "dr_li", "dr_li")
    assert notice.key == "degraded.moderation.ban"
    assert notice.text == "<degraded.moderation.ban channel=memory chat=g1 member=spammer reason=ads>"
    assert notice.extra == {"staff": "dr_li", "action": "ban", "conversation": GROUP.conversation_id,
                            "chat": "g1", "member": "spammer", "target_message_id": "m7", "reason": "ads"}
    # a platform that can notify its own staff (a WeCom application message) is told there
    [own] = _degrade(ban, Capabilities(ops=frozenset({"say", "notify_staff"})))
    assert own.op == "notify_staff" and own.address == GROUP
    # no owner known: every staff member on the staff channel
    [anyone] = _degrade(Outbound(op="delete", address=GROUP), SAY_ONLY)
    assert anyone.address.chat_id == "staff" and anyone.extra["staff"] == ""


def test_buttons_become_numbered_options_and_a_scale_is_listed_as_it_is():
    ob = Outbound(op="say", address=GROUP, text="Which?", buttons=(Button("Skin", "skin"), Button("Eyes", "eyes")))
    [text] = _degrade(ob, SAY_ONLY)
    assert text.buttons == ()
    assert text.text == "Which?\n\n1. Skin\n2. Eyes\n<degraded.choose>"
    scale = replace_buttons(ob, [str(n) for n in range(11)])
    [listed] = _degrade(scale, Capabilities(max_buttons=10))  # more than the platform shows
    assert listed.text == "Which?\n\n0 · 1 · 2 · 3 · 4 · 5 · 6 · 7 · 8 · 9 · 10\n<degraded.choose>"


def replace_buttons(ob: Outbound, labels: list[str]) -> Outbound:
    return Outbound(op=ob.op, address=ob.address, text=ob.text, buttons=tuple(Button(v, v) for v in labels))


def test_media_becomes_a_note_and_long_text_is_split_at_line_breaks():
    photo = Outbound(op="say", address=GROUP, text="Your scan:", media=Media(ref="u/1.png", name="scan.png"))
    [noted] = _degrade(photo, SAY_ONLY)
    assert noted.media is None and noted.text == "Your scan:\n\n<degraded.media kind=image name=scan.png>"
    long = Outbound(op="say", address=GROUP, text="\n".join(f"line {n} of the leaflet" for n in range(6)),
                    buttons=(Button("OK", "ok"),))
    parts = _degrade(long, Capabilities(max_text=60))
    assert len(parts) == 3 and all(len(p.text) <= 60 for p in parts)
    assert "\n".join(p.text for p in parts) == long.text
    assert [p.buttons for p in parts] == [(), (), (Button("OK", "ok"),)]  # buttons with the last part


def test_only_outbounds_are_touched_and_channels_without_an_adapter_pass():
    adapters = AdapterSet()
    adapters.add(MemoryAdapter(capabilities=SAY_ONLY))
    adapters.add(MemoryAdapter("staff", capabilities=STAFF))
    record = RecordEvent("x")
    elsewhere = Send(Outbound(op="ban", address=Address("telegram", "g2", "u", is_group=True)))
    ban = Moderate(Outbound(op="ban", address=GROUP), reason="ads")
    out = degrade_effects([record, elsewhere, ban], adapters, lambda k, loc, v: f"{loc}:{k}", "en", "zh-CN")
    assert out[:2] == [record, elsewhere]
    assert isinstance(out[2], Moderate) and out[2].reason == "ads"
    assert out[2].outbound.op == "notify_staff" and out[2].outbound.address.channel == "staff"
    assert out[2].outbound.text == "zh-CN:degraded.moderation.ban"  # staff read the base locale


FLOWS = {
    "pick.yml": """
        id: pick
        triggers:
          - event: first_contact
        steps:
          - ask: { key: t.which, slot: part, type: choice, choices: [{value: skin, label: t.skin}, {value: eyes, label: t.eyes}] }
          - say: t.got
    """,
}
MESSAGES = {
    "zh-CN": """
        t:
          which: 哪里不舒服？
          skin: 皮肤
          eyes: 眼睛
          got: "好的：{{ part }}"
    """,
    "en": """
        t:
          which: Where does it bother you?
          skin: Skin
          eyes: Eyes
          got: "OK: {{ part }}"
    """,
}


class BanSpam:
    """A stand-in for the group moderation stage (next issue): "spam" in a group → ban the sender."""

    async def __call__(self, ctx: TurnContext, call_next: Next) -> None:
        if ctx.inbound.address.is_group and "spam" in ctx.inbound.text:
            ctx.effects.append(Moderate(Outbound(op="ban", address=ctx.inbound.address,
                                                 target_message_id=ctx.inbound.message_id,
                                                 extra={"owner": "dr_li", "reason": "spam"}), reason="spam"))
            return
        await call_next(ctx)


async def test_a_platform_without_buttons_or_bans_gets_text_options_and_staff_get_the_ban(make_bot):
    platform = MemoryAdapter(capabilities=SAY_ONLY)
    bot, platform, _clock = make_bot(FLOWS, MESSAGES, adapter=platform)
    staff = MemoryAdapter("staff", capabilities=STAFF)
    bot.adapters.add(staff)
    bot.runtime.pipeline = Pipeline([BanSpam(), *bot.runtime.pipeline.stages])
    await bot.start(background=False)
    try:
        await bot.runtime.handle(platform.inbound("p1", "你好", now=T0))
        await bot.settle()
        [question] = platform.sent
        assert question.outbound.buttons == ()
        assert question.outbound.text == "哪里不舒服？\n\n1. 皮肤\n2. 眼睛\n请回复选项前的数字。"
        await bot.runtime.handle(platform.inbound("p1", "2", now=T0))  # the typed number answers
        await bot.settle()
        assert platform.texts()[-1] == "好的：eyes"

        await bot.runtime.handle(platform.inbound("g1", "buy spam now", user_id="spammer", is_group=True,
                                                  message_id="m9", now=T0))
        await bot.settle()
        assert [s.outbound.op for s in platform.sent] == ["say", "say"]  # the platform was asked nothing it can't do
        [notice] = staff.sent
        assert notice.outbound.op == "notify_staff" and notice.outbound.address.chat_id == "dr_li"
        assert notice.outbound.extra["action"] == "ban" and notice.outbound.extra["target_message_id"] == "m9"
        assert "spammer" in notice.outbound.text and "g1" in notice.outbound.text
    finally:
        await bot.stop()
