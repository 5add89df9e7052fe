"""Group moderation and operations on the memory platform (bot/groups): captcha, newcomer limits,
the blocklist's actions, flood, raid within the send budget, warnings decaying, reports to the
moderator on duty, the organisation's banlist, a crisis at night, the programme (SOP) and a
WeCom-style platform that can neither delete nor mute. Every clock is pinned (T0 is 17:00 in
Shanghai on a Monday)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.errors import ConfigError
from bot.groups.matching import blocklist_hit, locked_content
from bot.groups.policy import load_groups
from bot.types import Address, Inbound
from tests.conftest import ROOT, T0
from tests.groups_common import WECOM_LIKE, ward, GroupBot, make_content, start_group_bot


@pytest.fixture(params=["sqlite", "postgres+redis"])
def backend(request: Any, tmp_path: Path) -> tuple[str, str | None]:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'groups.db'}", None
    return request.getfixturevalue("pg_url"), request.getfixturevalue("redis_url")


@pytest.fixture
def sqlite(tmp_path: Path) -> tuple[str, str | None]:
    return f"sqlite:///{tmp_path / 'groups.db'}", None


# -- content ---------------------------------------------------------------------------------------------


def test_every_shipped_pattern_catches_its_examples_and_leaves_its_counter_examples():
    groups = load_groups(ROOT / "content", locales=["en", "zh-CN"])
    assert set(groups.sets) >= {"drug_selling", "fake_cures", "daigou", "contact_harvest", "loan_scam",
                                "misinformation"}
    for set_id, pset in groups.sets.items():
        from bot.groups.policy import compile_rule

        for entry in pset.entries:
            rule = compile_rule(f"{set_id}/{entry.id}", entry, entry.action or pset.action, pset.label)
            for example in entry.examples:
                assert blocklist_hit(example, [rule]) is rule, (set_id, entry.id, example)
            for example in entry.not_:
                assert blocklist_hit(example, [rule]) is None, (set_id, entry.id, example)
    assert {e.locale for s in groups.sets.values() for e in s.entries} == {"zh-CN", "en"}
    assert groups.sets["misinformation"].action == "report"  # flagged to a person, never deleted
    everyday = ["术后第三天伤口有点痒正常吗", "谢谢王医生！", "How long until I can shower after surgery?"]
    all_rules = groups.rules["post_surgery"]
    assert [blocklist_hit(t, all_rules) for t in everyday] == [None, None, None]


def test_a_broken_policy_is_reported_with_file_line_field_and_what_is_valid(tmp_path: Path):
    content = make_content(tmp_path, {"bad.yml": """
        id: bad
        chats: [{channel: memory, chat_id: g1}]
        owner: d_owner
        captcha: {timeout: soon, on_fail: explode}
    """, "a_first.yml": """
        chats: [{channel: memory, chat_id: g1}]
        owner: d_owner
    """, "refs.yml": """
        chats: [{channel: memory, chat_id: g1}]
        owner: d_owner
        blocklist:
          sets: [drug_selling, no_such_set]
          entries:
            - {id: broken, regex: "(unclosed", action: delete}
        welcome: {rules: {zh-CN: 不发广告}}
        sop: {programme: [{day: 1, say: groups.no_such_key}]}
    """})
    (content / "groups" / "patterns" / "mine.yml").write_text(
        "entries:\n  - id: mine\n    match: '*代开发票*'\n    examples: [专业代开处方]\n", encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_groups(content, locales=["en", "zh-CN"], has_key=lambda key: key.startswith("groups.sop."))
    text = str(err.value)
    assert "groups/bad.yml:5: captcha.timeout: " in text and "e.g. 30m" in text
    assert "captcha.on_fail" in text and "'kick', 'ban' or 'mute'" in text
    assert "mine.yml:4: entries[0].examples[0]: entry 'mine' does not match its own example" in text
    assert "blocklist.sets[1]: unknown pattern set 'no_such_set'" in text and "drug_selling" in text
    assert "blocklist.entries[0].regex: invalid regex '(unclosed'" in text
    assert "welcome.rules: the rules need a text in en" in text
    assert "refs.yml:2: chats[0]: chat memory:g1 is already run by group policy 'a_first'" in text
    assert "sop.programme[0].say: 'groups.no_such_key' is not in every locale's content" in text


def test_locks_read_text_and_the_platforms_hints():
    def found(text: str = "", **payload: Any) -> tuple[str, ...]:
        return locked_content(Inbound("text", Address("m", "g1", "u", is_group=True), "x", T0, text,
                                      payload=payload)).kinds

    assert found("看这个 www.example.com/x") == ("links",)
    assert found("我的电话 138 1234 5678") == ("phone",)
    assert found("call me +44 20 7946 0958") == ("phone",)
    assert found("mail me: li.hua@example.org") == ("email",)
    assert found("", forwarded=True) == ("forwards",)
    assert found("", contact=True) == ("contacts",)
    assert found("", qr=True) == ("qr",)
    assert found("如有不适请拨打 120，或者 3 天后复诊") == ()  # an emergency number is no phone number to lock


# -- members ---------------------------------------------------------------------------------------------


async def test_captcha_pass_welcomes_and_fail_removes(tmp_path: Path, backend):
    g = await start_group_bot(tmp_path, backend)
    try:
        await g.join("alice")
        assert g.ops(user="alice") == [("restrict", "none"), ("say", "groups.captcha")]
        captcha = g.sent()[-1].outbound
        assert captcha.buttons[0].value == "group:captcha" and "5" in captcha.text
        await g.send("alice", "大家好")  # before pressing: removed, nothing said
        assert g.ops(2) == [("delete", "")]
        await g.press("alice")
        assert g.ops(3) == [("restrict", "all"), ("say", "groups.welcome")]
        welcome = g.sent()[-1].outbound.text
        assert "1. 不发广告" in welcome and "memory://bot?start=intake" in welcome
        await g.tick(timedelta(minutes=6))  # the captcha timer was cancelled: nothing happens
        assert len(g.sent()) == 5

        await g.join("bot99")
        before = len(g.sent())
        await g.tick(timedelta(minutes=6))
        assert g.ops(before) == [("ban", g.sent()[-1].outbound.extra["until"])]  # kicked: may rejoin later
        assert (await g.state("bot99"))["group"].get("removed")
        assert [(r.trigger, r.action, r.done) for r in await g.log(member="bot99")] == [
            ("member", "join", ""), ("captcha", "hold", "restrict"), ("captcha_timeout", "kick", "kick")]
        assert await g.bans() == []  # a kick is not a ban
    finally:
        await g.bot.stop()


async def test_a_newcomer_may_not_post_a_link_but_may_after_a_day(tmp_path: Path, sqlite):
    g = await start_group_bot(tmp_path, sqlite, policies={"ward.yml": ward("locks", more="locks: {phone: delete}")})
    try:
        await g.join("bob")
        await g.press("bob")
        before = len(g.sent())
        await g.send("bob", "这个康复操视频不错 https://video.example.com/abc")
        assert g.ops(before) == [("delete", ""), ("say", "groups.newcomer")]
        assert [(r.trigger, r.done) for r in await g.log(member="bob")][-1] == ("newcomer:links", "delete")
        g.clock.advance(timedelta(hours=25))
        before = len(g.sent())
        await g.send("bob", "这个康复操视频不错 https://video.example.com/abc")
        assert g.ops(before) == []  # no longer a newcomer, and links are not locked in this group
    finally:
        await g.bot.stop()


async def test_each_blocklist_action(tmp_path: Path, sqlite):
    g = await start_group_bot(tmp_path, sqlite, policies={"ward.yml": ward("captcha", "newcomer")})
    try:
        for user in ("u1", "u2", "u3", "u4", "u5"):
            await g.join(user)
        start = len(g.sent())
        await g.send("u1", "buy spam-delete now")
        assert g.ops(start) == [("delete", ""), ("say", "groups.removed")]
        mark = len(g.sent())
        await g.send("u2", "SPAM-WARN here")  # wildcards, any case
        assert g.ops(mark) == [("delete", ""), ("say", "groups.warned")]
        assert "1/3" in g.sent()[-1].outbound.text
        mark = len(g.sent())
        await g.send("u3", "spam-mute")
        assert [op for op, _ in g.ops(mark)] == ["delete", "restrict", "say"]
        assert g.sent()[-1].outbound.key == "groups.muted"
        mark = len(g.sent())
        await g.send("u4", "spam-ban")
        assert g.ops(mark) == [("delete", ""), ("ban", ""), ("say", "groups.banned")]
        assert "/appeal" in g.sent()[-1].outbound.text
        [ban] = await g.bans()
        assert (ban.user_id, ban.policy, ban.lifted_at) == ("u4", "ward", None) and "test ban" in ban.reason
        mark = len(g.sent())
        await g.send("u5", "spam-report: is it true?")
        assert g.ops(mark) == [("notify_staff", "groups.staff.flag")]  # the message stays
        [case] = await g.cases(kind="flag")
        assert (case.member, case.assignee, case.trigger) == ("u5", "mod_day", "blocklist:ward/t_report")

        mark = len(g.sent())
        await g.send("u1", "有需要的加微信 abc12345")  # shipped: contact harvesting warns
        assert g.ops(mark) == [("delete", ""), ("say", "groups.warned")]
        await g.send("u5", "把降压药停了，每天喝醋就行")  # shipped: misinformation is flagged, not deleted
        assert g.ops(mark + 2) == [("notify_staff", "groups.staff.flag")]
        await g.send("u5", "Cheap Ozempic, fast delivery")  # shipped: drug selling bans
        assert [op for op, _ in g.ops(mark + 3)] == ["delete", "ban", "say"]
        assert [r.trigger for r in await g.log(action="ban")] == ["blocklist:ward/t_ban",
                                                                 "blocklist:drug_selling/selling_rx_en"]
    finally:
        await g.bot.stop()


async def test_flood_mutes_the_flooder(tmp_path: Path, sqlite):
    g = await start_group_bot(tmp_path, sqlite, policies={"ward.yml": ward("captcha")})
    try:
        await g.join("fl")
        mark = len(g.sent())
        for i in range(5):  # five in ten seconds are allowed
            await g.send("fl", f"第{i}条")
            g.clock.advance(timedelta(seconds=1))
        assert g.ops(mark) == []
        await g.send("fl", "第6条")
        assert [op for op, _ in g.ops(mark)] == ["delete", "restrict", "say"]
        assert g.sent()[-2].outbound.extra["until"] == (g.clock.now() + timedelta(minutes=10)).isoformat()
        g.clock.advance(timedelta(seconds=30))
        mark = len(g.sent())
        await g.send("fl", "好了")  # the window has passed
        assert g.ops(mark) == []
    finally:
        await g.bot.stop()


async def test_a_raid_of_200_joins_and_spam_in_a_minute_stays_within_the_send_budget(tmp_path: Path, backend):
    g = await start_group_bot(tmp_path, backend)
    try:
        for i in range(200):
            await g.bot.runtime.handle(g.inbound(f"r{i}", kind="join"))
            if i % 2 == 0:
                await g.bot.runtime.handle(g.inbound(f"r{i}", "低价出司美格鲁肽减肥针 加微信 x12345"))
            if i % 7 == 0:
                g.clock.advance(timedelta(seconds=2))  # 200 joins within 60 s of the bot's clock
        await g.bot.settle()
        assert g.clock.now() - T0 < timedelta(seconds=60)
        says = [s.outbound for s in g.sent() if s.outbound.op == "say"]
        assert len(says) <= 20
        assert sum(1 for o in says if o.key == "groups.raid") == 1
        held = {s.outbound.address.user_id for s in g.sent() if s.outbound.op == "restrict"}
        assert held == {f"r{i}" for i in range(200)}
        deleted = [s for s in g.sent() if s.outbound.op == "delete"]
        assert len(deleted) == 100  # every spam message removed
        raid_alerts = [s for s in g.sent() if s.outbound.key == "groups.staff.raid"]
        assert len(raid_alerts) == 1 and raid_alerts[0].outbound.extra["staff"] == "mod_day"

        mark = len(g.sent())
        await g.press("r3")  # a real person among them presses the group's one button
        assert g.ops(mark) == [("restrict", "all"), ("say", "groups.welcome")]
    finally:
        await g.bot.stop()


async def test_warnings_count_to_the_threshold_and_decay(tmp_path: Path, sqlite):
    g = await start_group_bot(tmp_path, sqlite, policies={"ward.yml": ward("captcha")})
    try:
        await g.join("w")
        await g.send("w", "spam-warn 1")
        g.clock.advance(timedelta(hours=2))
        await g.send("w", "spam-warn 2")
        assert "2/3" in g.sent()[-1].outbound.text
        g.clock.advance(timedelta(hours=23))  # the first warning has decayed (1 day)
        mark = len(g.sent())
        await g.send("w", "spam-warn 3")
        assert g.ops(mark) == [("delete", ""), ("say", "groups.warned")] and "2/3" in g.sent()[-1].outbound.text
        g.clock.advance(timedelta(minutes=5))
        mark = len(g.sent())
        await g.send("w", "spam-warn 4")  # three live warnings: muted for an hour, the count starts again
        assert [op for op, _ in g.ops(mark)] == ["delete", "restrict", "say"]
        assert g.sent()[-2].outbound.extra["until"] == (g.clock.now() + timedelta(hours=1)).isoformat()
        assert (await g.state("w"))["group"]["warnings"] == []
    finally:
        await g.bot.stop()


async def test_report_and_at_admin_reach_the_moderator_on_duty(tmp_path: Path, sqlite):
    g = await start_group_bot(tmp_path, sqlite)
    try:
        await g.send("nurse_zhang", "大家好")  # exempt: never moderated, nothing to say
        await g.join("p1")
        await g.press("p1")
        mark = len(g.sent())
        await g.send("p1", "/report 这人一直私信我卖药", payload={"reply_to": {"message_id": "m77", "user_id": "s1"}})
        assert g.ops(mark) == [("notify_staff", "groups.staff.report"), ("say", "groups.report_ack")]
        notice = g.sent()[mark].outbound
        assert notice.extra["staff"] == "mod_day" and "s1" in notice.text and "m77" in notice.text
        g.clock.advance(timedelta(hours=5))  # 22:00 in Shanghai: the night moderator
        await g.send("p1", "@admin 有人发广告")
        assert g.sent()[-2].outbound.extra["staff"] == "mod_night"
        assert [(c.kind, c.reporter, c.member, c.assignee) for c in await g.cases()] == [
            ("report", "p1", "s1", "mod_day"), ("report", "p1", "", "mod_night")]
    finally:
        await g.bot.stop()


async def test_a_ban_in_one_group_holds_in_every_group_of_the_organisation(tmp_path: Path, backend):
    g = await start_group_bot(tmp_path, backend)
    try:
        await g.send("seller", "低价出司美格鲁肽减肥针", chat="g2")  # a member from before the bot: no join seen
        assert [op for op, _ in g.ops()] == ["delete", "ban", "say"]
        [ban] = await g.bans()
        assert (ban.chat_id, ban.policy, ban.user_id) == ("g2", "clinic", "seller")
        assert "drug_selling/selling_rx" in ban.reason
        mark = len(g.sent())
        await g.join("seller", chat="g1")  # another group of the organisation: banned at the door
        assert g.ops(mark) == [("ban", "")]
        assert [(r.chat_id, r.trigger, r.action) for r in await g.log(member="seller", action="ban")] == [
            ("g2", "blocklist:drug_selling/selling_rx", "ban"), ("g1", "banlist", "ban")]
    finally:
        await g.bot.stop()


async def test_a_crisis_in_a_group_at_night_gets_the_crisis_route_and_is_never_hidden(tmp_path: Path, backend):
    night = ward("captcha", more='night: {start: "23:00", end: "07:00"}')
    midnight = T0 + timedelta(hours=7)  # 00:00 in Shanghai
    g = await start_group_bot(tmp_path, backend, policies={"ward.yml": night}, start=midnight)
    try:
        await g.join("m1")
        g.clock.advance(timedelta(days=2))  # no longer a newcomer
        mark = len(g.sent())
        await g.send("m1", "睡不着，聊聊天", locale="zh-CN")
        assert g.ops(mark) == [("delete", ""), ("say", "groups.night")]
        assert "120" in g.sent()[-1].outbound.text  # night mode's notice carries the crisis route
        mark = len(g.sent())
        await g.send("m1", "我爸胸口剧痛出冷汗，喘不上气", locale="zh-CN")
        replies = g.sent(mark)
        assert replies and replies[0].outbound.key == "triage.emergency_ambulance" and "120" in replies[0].outbound.text
        assert "delete" not in [s.outbound.op for s in replies]  # never removed, at night or otherwise
        state = await g.state("m1")
        assert state["mode"] == "human" and state["triage_level"] == "emergency_ambulance"
    finally:
        await g.bot.stop()


async def test_the_programme_posts_day_1_and_day_7_and_the_doctor_gets_a_digest(tmp_path: Path, backend):
    g = await start_group_bot(tmp_path, backend)
    try:
        await g.join("s1")
        await g.press("s1")
        mark = len(g.sent())
        await g.tick(timedelta(hours=16, minutes=1))  # Tuesday 09:01 in Shanghai: day 1
        assert g.ops(mark) == [("say", "groups.sop.day1")]
        assert g.sent()[-1].outbound.extra["mention"] == "s1"
        await g.tick(timedelta(days=1, hours=1))  # Wednesday 10:01: the group's weekly tip, to the whole group
        tip = g.sent()[-1].outbound
        assert tip.key == "groups.sop.weekly_tip" and tip.address.user_id == ""
        await g.tick(timedelta(hours=23))  # Thursday 09:01, day 3: an article, with its source
        assert g.sent()[-1].outbound.key == "article.post_surgery_wound_care"
        assert "World Health Organization" in g.sent()[-1].outbound.text
        await g.tick(timedelta(days=4))  # Monday 09:01: day 7
        await g.tick(timedelta(minutes=30))  # 09:31: the doctor's weekly digest
        keys = [s.outbound.key for s in g.sent(mark)]
        assert keys == ["groups.sop.day1", "groups.sop.weekly_tip", "article.post_surgery_wound_care",
                        "groups.sop.week1", "groups.staff.digest"]
        digest = [s.outbound for s in g.sent() if s.outbound.key == "groups.staff.digest"]
        assert len(digest) == 1 and digest[0].extra["staff"] == "d_doc"
        assert "入群 1" in digest[0].text and "推送 4" in digest[0].text
    finally:
        await g.bot.stop()


async def test_the_programme_respects_the_patients_weekly_cap(tmp_path: Path, sqlite):
    g = await start_group_bot(tmp_path, sqlite)
    try:
        await g.join("cap")
        await g.press("cap")
        conv = Address("memory", "g1", "cap", is_group=True).conversation_id
        from bot.store.store import EVENT

        for _ in range(3):  # three proactive messages already this week (the shipped cap is 3)
            await g.bot.store.write(lambda c: c.execute(EVENT.insert().values(
                org="default", conversation_id=conv, kind="proactive_sent", data="{}", at=g.clock.now())))
        mark = len(g.sent())
        await g.tick(timedelta(hours=16, minutes=1))
        assert g.ops(mark) == []  # held, not dropped
        withheld = await g.bot.store.read(lambda c: c.execute(EVENT.select().where(
            EVENT.c.conversation_id == conv, EVENT.c.kind == "proactive_withheld")).all())
        assert withheld and "weekly_cap" in withheld[0].data
    finally:
        await g.bot.stop()


# -- a poorer platform -------------------------------------------------------------------------------------


async def test_wecom_style_platform_asks_the_owner_and_warns_instead_of_muting(tmp_path: Path, backend):
    policies = {"ward.yml": ward("captcha")}
    g = await start_group_bot(tmp_path, backend, capabilities=WECOM_LIKE, policies=policies)
    try:
        await g.join("x1")
        mark = len(g.sent())
        await g.send("x1", "buy spam-delete now")
        [notice, said] = [s.outbound for s in g.sent(mark)]
        assert (notice.op, notice.key, notice.extra["staff"]) == ("notify_staff", "degraded.moderation.delete", "d_owner")
        assert said.op == "say"
        mark = len(g.sent())
        await g.send("x1", "spam-mute")  # cannot mute: the owner is asked to delete, the member warned
        assert [(s.outbound.op, s.outbound.key) for s in g.sent(mark)] == [
            ("notify_staff", "degraded.moderation.delete"), ("say", "groups.warned")]
        mark = len(g.sent())
        await g.send("x1", "spam-ban")
        assert [(s.outbound.op, s.outbound.key) for s in g.sent(mark)] == [
            ("notify_staff", "degraded.moderation.delete"), ("notify_staff", "degraded.moderation.ban"),
            ("say", "groups.banned")]
        assert all(s.outbound.op in ("say", "notify_staff") for s in g.sent())  # nothing it cannot do
        rows = [(r.trigger, r.action, r.done, r.fallback) for r in await g.log(member="x1") if r.trigger != "member"]
        assert rows[0] == ("blocklist:ward/t_delete", "delete", "owner_asked",
                           "the platform cannot delete messages: the owner was asked")
        assert ("blocklist:ward/t_mute", "mute", "warned", "the platform cannot mute members: warned instead") in rows
        assert ("blocklist:ward/t_ban", "ban", "owner_asked",
                "the platform cannot remove members: the owner was asked") in rows
        assert len(await g.bans()) == 1  # the banlist holds it anyway
    finally:
        await g.bot.stop()


# -- appeals ---------------------------------------------------------------------------------------------


async def test_an_appeal_goes_to_a_person(tmp_path: Path, sqlite):
    g = await start_group_bot(tmp_path, sqlite)
    try:
        await g.send("ap", "spam-ban")
        mark = len(g.sent())
        direct = g.platform.inbound("ap", "/appeal 我只是转发了朋友的话", kind="command", now=g.clock.now())
        await g.bot.runtime.handle(direct)
        await g.bot.settle()
        assert [(s.outbound.op, s.outbound.key) for s in g.sent(mark)] == [
            ("notify_staff", "groups.staff.appeal"), ("say", "groups.appeal_ack")]
        assert g.sent(mark)[0].outbound.extra["staff"] == "mod_day"
        [case] = await g.cases(kind="appeal")
        assert (case.member, case.status, case.assignee, case.text) == ("ap", "pending", "mod_day", "我只是转发了朋友的话")
        other = g.platform.inbound("nobody", "/appeal 为什么", kind="command", now=g.clock.now())
        await g.bot.runtime.handle(other)
        await g.bot.settle()
        assert g.sent()[-1].outbound.key == "groups.appeal_none"
    finally:
        await g.bot.stop()
