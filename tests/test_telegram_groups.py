"""Patient groups moderated on Telegram (issue 15), end to end: the fake Bot API on loopback POSTs
each update to carebot's webhook, and every delete, mute and ban is a real Bot API call the fake
answers as Telegram does — including "not enough rights" when the bot is no administrator. The
clock is pinned (T0 is 17:00 on a Monday in Shanghai); SQLite, and PostgreSQL + Redis for the
runtime paths. The staff console and the pager are memory stand-ins beside Telegram."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from adapters.telegram import moderation
from adapters.telegram.config import TelegramConfig
from adapters.telegram.parse import parse_update
from adapters.telegram.testing import Limits
from bot.adapter import Capabilities
from bot.groups.records import BAN, CASE, LOG
from bot.store.store import TICKET
from bot.testing.memory import MemoryAdapter
from tests.conftest import T0
from tests.groups_common import make_content, ward
from tests.telegram_support import TG, open_tg

A, B = -1001000001, -1001000002  # two groups of the organisation: policies tg_ward and tg_clinic
CHATS_A = '[{channel: telegram, chat_id: "-1001000001"}]'
CLINIC = """
    id: tg_clinic
    name: {zh-CN: 门诊群, en: Clinic group}
    chats: [{channel: telegram, chat_id: "-1001000002"}]
    owner: d_owner2
    blocklist: {sets: [drug_selling]}
"""
SPAM = "低价出司美格鲁肽减肥针 加微信 x12345"
EMERGENCY = "我爸胸口剧痛出冷汗，喘不上气"


def tg_ward(*without: str, more: str = "") -> str:
    return ward(*without, more=more).replace("id: ward", "id: tg_ward").replace(
        "chats: [{channel: memory, chat_id: g1}]", f"chats: {CHATS_A}")


@pytest.fixture(params=["sqlite", "postgres+redis"])
def backend(request: Any) -> dict[str, Any]:
    if request.param == "sqlite":
        return {}
    import redis

    kw = {"url": request.getfixturevalue("pg_url"), "redis_url": request.getfixturevalue("redis_url")}
    redis.Redis.from_url(kw["redis_url"]).flushdb()
    return kw


class Staff:
    """The staff console and the pager beside Telegram (memory stand-ins that record what they get)."""

    def __init__(self) -> None:
        self.console = MemoryAdapter("console", capabilities=Capabilities(ops=frozenset({"notify_staff"}),
                                                                          buttons=False, media=False))
        self.pager = MemoryAdapter("pager", capabilities=Capabilities(ops=frozenset({"page"}), buttons=False))

    def notices(self, key: str = "") -> list[Any]:
        return [s.outbound for s in self.console.sent if not key or s.outbound.key == key]


async def start(tmp_path: Path, policy: str | None = None, *, admin: bool = True, limits: Limits | None = None,
                at: Any = T0, **kw: Any) -> tuple[TG, Staff]:
    content = make_content(tmp_path, {"ward.yml": policy or tg_ward(), "clinic.yml": CLINIC})
    staff = Staff()
    tg = await open_tg(tmp_path, "webhook", content_dir=content, adapters=[staff.console, staff.pager],
                       limits=limits, start=at, **kw)
    owner = tg.fake.private(42, "Owner")
    for chat in (A, B):
        tg.fake.group(chat, "术后病友群")
        if admin:  # the owner makes the bot an administrator: Telegram tells it with my_chat_member
            await tg.push(tg.updates.bot_rights(chat, owner, tg.fake.promote(chat)))
    return tg, staff


async def log_rows(tg: TG, **where: Any) -> list[Any]:
    def q(conn: sa.Connection) -> list[Any]:
        sel = sa.select(LOG).order_by(LOG.c.id)
        for k, v in where.items():
            sel = sel.where(LOG.c[k] == v)
        return conn.execute(sel).all()

    return await tg.bot.store.read(q)


async def join(tg: TG, user: dict[str, Any], chat: int = A) -> None:
    """A member joins: Telegram sends the administrator bot a chat_member update and the service
    message — one join for carebot."""
    await tg.push(tg.updates.chat_member(chat, user, "left", "member"))
    await tg.push(tg.updates.joined(chat, user))


def group_texts(tg: TG, chat: int = A) -> list[str]:
    return [m.visible for m in tg.fake.messages(chat) if m.method == "sendMessage"]


async def tick(tg: TG, delta: timedelta) -> None:
    tg.clock.advance(delta)
    await tg.bot.timers.tick()
    await tg.bot.settle()
    await tg.adapter.idle()
    await tg.bot.settle()


# -- reading Telegram's updates -----------------------------------------------------------------------------


def test_hints_from_a_telegram_message() -> None:
    text = "🙂看 这里 www.x.cn"  # an emoji is two UTF-16 code units: entity offsets count those
    message = {"message_id": 7, "from": {"id": 5, "first_name": "Li", "last_name": "Hua"}, "chat": {
        "id": A, "type": "supergroup"}, "date": 0, "text": text, "forward_origin": {"type": "hidden_user",
                                                                                    "sender_user_name": "X", "date": 0},
        "entities": [{"type": "text_link", "offset": 4, "length": 2, "url": "https://hidden.example/buy"},
                     {"type": "url", "offset": 7, "length": 8}],
        "reply_to_message": {"message_id": 3, "from": {"id": 9, "is_bot": False, "first_name": "S"}, "date": 0,
                             "chat": {"id": A, "type": "supergroup"}}}
    parsed = parse_update({"update_id": 1, "message": message}, bot_id=1, bot_username="b", now=T0)
    payload = parsed.inbound.payload
    assert payload["forwarded"] is True and payload["name"] == "Li Hua"
    assert payload["links"] == ["https://hidden.example/buy", "www.x.cn"]
    assert payload["reply_to"] == {"message_id": "3", "user_id": "9"}
    three = {"message_id": 8, "from": {"id": 5, "first_name": "Li"}, "chat": {"id": A, "type": "supergroup"},
             "date": 0, "new_chat_members": [{"id": 1, "is_bot": True, "first_name": "us"},
                                             {"id": 6, "first_name": "A"}, {"id": 7, "first_name": "B"}]}
    parsed = parse_update({"update_id": 2, "message": three}, bot_id=1, bot_username="b", now=T0)
    joins = parsed.extra["members"]
    assert [(i.kind, i.address.user_id, i.payload["name"]) for i in joins] == [("join", "6", "A"), ("join", "7", "B")]
    assert moderation.rights_of({"status": "administrator", "can_delete_messages": True}) == {"delete"}
    assert moderation.rights_of({"status": "member"}) == frozenset()
    assert moderation.rights_of({"status": "creator"}) == {"delete", "restrict", "ban"}


# -- members: captcha, newcomers -------------------------------------------------------------------------------


async def test_captcha_pass_and_fail_through_the_bot_api(tmp_path: Path, backend: dict[str, Any]) -> None:
    tg, staff = await start(tmp_path, **backend)
    try:
        alice = tg.fake.user(701, "Alice")
        await join(tg, alice)
        assert tg.fake.status(A, 701) == "restricted"  # muted until she presses
        assert [c for c in tg.fake.calls if c[0] == "restrictChatMember"][0][1]["permissions"]["can_send_messages"] is False
        captcha = tg.fake.messages(A)[-1]
        assert captcha.buttons[0]["callback_data"] == "group:captcha"
        assert 'href="tg://user?id=701"' in captcha.text  # she is mentioned: notified without a @username
        early = tg.updates.message(A, alice, "大家好")  # a message that slipped through: removed
        await tg.push(early)
        assert (A, early["message"]["message_id"]) in tg.fake.deleted
        await tg.press(alice, "group:captcha", chat_id=A)
        assert tg.fake.status(A, 701) == "member"  # the mute lifted
        welcome = group_texts(tg)[-1]
        assert "1. 不发广告" in welcome and "https://t.me/carebot_test_bot?start=intake" in welcome
        assert sum(1 for c in tg.fake.calls if c[0] == "restrictChatMember") == 2  # one join, not two

        bob = tg.fake.user(702, "Bob")
        await join(tg, bob)
        await tick(tg, timedelta(minutes=6))  # no press in 5 minutes: kicked (may rejoin later)
        assert tg.fake.status(A, 702) == "kicked"
        ban_call = [c for c in tg.fake.calls if c[0] == "banChatMember"][-1][1]
        assert int(ban_call["until_date"]) == int((tg.clock.now() + timedelta(minutes=1)).timestamp())
        rows = [(r.trigger, r.action, r.done) for r in await log_rows(tg, member="702")]
        assert rows == [("member", "join", ""), ("captcha", "hold", "restrict"), ("captcha_timeout", "kick", "kick")]
        await tg.push(tg.updates.chat_member(A, bob, "member", "kicked"))  # Telegram tells of the kick: a leave
        assert [r.action for r in await log_rows(tg, member="702")][-1] == "leave"
    finally:
        await tg.close()


async def test_a_newcomers_hidden_link_and_a_forward_are_removed(tmp_path: Path) -> None:
    tg, staff = await start(tmp_path, tg_ward("captcha", "locks", more="locks: {forwards: delete}"))
    try:
        carol = tg.fake.user(703, "Carol")
        await join(tg, carol)
        hidden = tg.updates.message(A, carol, "康复操视频看这里", entities=[
            {"type": "text_link", "offset": 5, "length": 3, "url": "https://shop.example/x"}])
        await tg.push(hidden)  # no URL in the words: the link is behind them
        assert (A, hidden["message"]["message_id"]) in tg.fake.deleted
        assert "24" in group_texts(tg)[-1]  # the newcomer notice
        assert [r.trigger for r in await log_rows(tg, member="703")][-1] == "newcomer:links"
        tg.clock.advance(timedelta(hours=25))
        forward = tg.updates.message(A, carol, "转发：好消息", forward_origin={"type": "channel", "date": 0, "chat": {
            "id": -100777, "type": "channel", "title": "x"}, "message_id": 1})
        await tg.push(forward)  # no longer a newcomer, but forwards are locked in this group
        assert (A, forward["message"]["message_id"]) in tg.fake.deleted
        assert [r.trigger for r in await log_rows(tg, member="703")][-1] == "lock:forwards"
        fine = tg.updates.message(A, carol, "谢谢大家")
        await tg.push(fine)
        assert (A, fine["message"]["message_id"]) not in tg.fake.deleted
    finally:
        await tg.close()


# -- the blocklist, flood, warnings -----------------------------------------------------------------------------


async def test_blocklist_regex_with_each_action(tmp_path: Path) -> None:
    tg, staff = await start(tmp_path, tg_ward("captcha", "newcomer"))
    try:
        users = {n: tg.fake.user(710 + i, n) for i, n in enumerate(("u1", "u2", "u3", "u4", "u5"))}
        for user in users.values():
            await join(tg, user)

        async def post(name: str, text: str) -> int:
            update = tg.updates.message(A, users[name], text)
            await tg.push(update)
            return int(update["message"]["message_id"])

        said = len(group_texts(tg))
        mid = await post("u1", "buy spam-delete now")
        assert (A, mid) in tg.fake.deleted and len(group_texts(tg)) == said + 1  # removed, and said why
        mid = await post("u2", "SPAM-WARN here")
        assert (A, mid) in tg.fake.deleted and "1/3" in group_texts(tg)[-1]
        mid = await post("u3", "spam-mute")
        assert (A, mid) in tg.fake.deleted and tg.fake.status(A, 712) == "restricted"
        mute = [c for c in tg.fake.calls if c[0] == "restrictChatMember"][-1][1]
        assert int(mute["until_date"]) == int((tg.clock.now() + timedelta(hours=1)).timestamp())  # warnings.mute_for
        mid = await post("u4", "spam-ban")
        assert (A, mid) in tg.fake.deleted and tg.fake.status(A, 713) == "kicked"
        assert [c for c in tg.fake.calls if c[0] == "banChatMember"][-1][1].get("until_date") in (None, 0, "0")
        mid = await post("u5", "spam-report: is it true?")
        assert (A, mid) not in tg.fake.deleted  # a flag: the message stays, a person decides
        [flag] = staff.notices("groups.staff.flag")
        assert flag.extra["staff"] == "mod_day" and flag.address.channel == "console"
        bans = await tg.bot.store.read(lambda c: c.execute(sa.select(BAN.c.user_id, BAN.c.channel)).all())
        assert [(b.user_id, b.channel) for b in bans] == [("713", "telegram")]
    finally:
        await tg.close()


async def test_flood_mutes_and_warnings_decay(tmp_path: Path) -> None:
    tg, staff = await start(tmp_path, tg_ward("captcha"))
    try:
        fl = tg.fake.user(720, "Fl")
        await join(tg, fl)
        for i in range(5):
            await tg.say(fl, f"第{i}条", chat_id=A)
            tg.clock.advance(timedelta(seconds=1))
        assert tg.fake.status(A, 720) == "member" and tg.fake.deleted == []
        sixth = tg.updates.message(A, fl, "第6条")
        await tg.push(sixth)
        assert (A, sixth["message"]["message_id"]) in tg.fake.deleted and tg.fake.status(A, 720) == "restricted"
        mute = [c for c in tg.fake.calls if c[0] == "restrictChatMember"][-1][1]
        assert int(mute["until_date"]) == int((tg.clock.now() + timedelta(minutes=10)).timestamp())

        w = tg.fake.user(721, "W")
        await join(tg, w)
        await tg.say(w, "spam-warn 1", chat_id=A)
        tg.clock.advance(timedelta(hours=2))
        await tg.say(w, "spam-warn 2", chat_id=A)
        assert "2/3" in group_texts(tg)[-1]
        tg.clock.advance(timedelta(hours=23))  # the first warning decayed (1 day)
        await tg.say(w, "spam-warn 3", chat_id=A)
        assert "2/3" in group_texts(tg)[-1] and tg.fake.status(A, 721) == "member"
        await tg.say(w, "spam-warn 4", chat_id=A)  # three live warnings: muted for an hour
        assert tg.fake.status(A, 721) == "restricted"
    finally:
        await tg.close()


# -- reports, the banlist -----------------------------------------------------------------------------------------


async def test_report_as_a_reply_reaches_the_moderator_on_duty(tmp_path: Path) -> None:
    tg, staff = await start(tmp_path, tg_ward("captcha"))
    try:
        seller, p1 = tg.fake.user(730, "S"), tg.fake.user(731, "P")
        for user in (seller, p1):
            await join(tg, user)
        dm = tg.updates.message(A, seller, "有需要私聊我")
        await tg.push(dm)
        await tg.say(p1, "/report 他一直私信我卖药", chat_id=A, reply_to=dm["message"])
        [notice] = staff.notices("groups.staff.report")
        assert notice.extra["staff"] == "mod_day"
        assert "730" in notice.text and str(dm["message"]["message_id"]) in notice.text
        cases = await tg.bot.store.read(lambda c: c.execute(sa.select(CASE.c.kind, CASE.c.member,
                                                                      CASE.c.assignee)).all())
        assert [(c.kind, c.member, c.assignee) for c in cases] == [("report", "730", "mod_day")]
        assert group_texts(tg)[-1]  # the reporter is thanked in the group
    finally:
        await tg.close()


async def test_a_ban_in_one_group_holds_in_the_other(tmp_path: Path, backend: dict[str, Any]) -> None:
    tg, staff = await start(tmp_path, **backend)
    try:
        seller = tg.fake.user(740, "Seller")
        await tg.say(seller, "低价出司美格鲁肽减肥针", chat_id=B)  # a member from before the bot: no join seen
        assert tg.fake.status(B, 740) == "kicked"
        await join(tg, seller, A)  # the organisation's other group: banned at the door
        assert tg.fake.status(A, 740) == "kicked"
        rows = [(r.chat_id, r.trigger, r.action) for r in await log_rows(tg, member="740", action="ban")]
        assert rows == [(str(B), "blocklist:drug_selling/selling_rx", "ban"), (str(A), "banlist", "ban")]
    finally:
        await tg.close()


# -- the raid, within Telegram's 20 messages a minute in a group ---------------------------------------------------


async def test_a_raid_of_200_joins_and_spam_stays_within_the_groups_send_budget(tmp_path: Path) -> None:
    # Telegram's real limits in the fake (20 a minute in a group) and the adapter's default pacing
    shipped = TelegramConfig(token="1:" + "x" * 30)  # the shipped pacing: 30/s, 3 in 3 s a chat, 20 in 61 s a group
    tg, staff = await start(tmp_path, limits=Limits(), config={
        "overall": shipped.overall, "per_chat": shipped.per_chat, "per_group": shipped.per_group})
    try:
        before = len(group_texts(tg))
        spam_ids = []
        for i in range(200):
            user = tg.fake.user(10_000 + i, f"r{i}")
            await tg.push(tg.updates.chat_member(A, user, "left", "member"))
            if i % 2 == 0:
                update = tg.updates.message(A, user, SPAM)
                spam_ids.append(update["message"]["message_id"])
                await tg.push(update)
            if i % 7 == 0:
                tg.clock.advance(timedelta(seconds=2))  # 200 joins within 60 s of the bot's clock
        assert tg.clock.now() - T0 < timedelta(seconds=60)
        assert tg.fake.rate_limited == 0  # not one 429
        said = group_texts(tg)[before:]
        assert 1 <= len(said) <= 20
        assert all(tg.fake.status(A, 10_000 + i) in ("restricted", "kicked") for i in range(200))
        assert {(A, m) for m in spam_ids} <= set(tg.fake.deleted)  # every spam message removed
        assert len(staff.notices("groups.staff.raid")) == 1
        await tg.press(tg.fake.user(10_003, "r3"), "group:captcha", chat_id=A)
        assert tg.fake.status(A, 10_003) == "member"
    finally:
        await tg.close()


# -- a crisis, at night ---------------------------------------------------------------------------------------------


async def test_a_crisis_in_a_group_at_night_goes_privately_pages_staff_and_is_never_deleted(
        tmp_path: Path, backend: dict[str, Any]) -> None:
    night = tg_ward("captcha", more='night: {start: "23:00", end: "07:00"}')
    tg, staff = await start(tmp_path, night, at=T0 + timedelta(hours=7), **backend)  # 00:00 in Shanghai
    try:
        bob = tg.fake.private(750, "Bob")
        await tg.say(bob, "/start")  # Bob has a private chat with the bot
        carol = tg.fake.user(751, "Carol")  # Carol never started it
        for user in (bob, carol):
            await join(tg, user)
        tg.clock.advance(timedelta(days=2, hours=-1))  # 23:00 two days later: no longer newcomers, night
        chat = tg.updates.message(A, bob, "睡不着，聊聊天")
        await tg.push(chat)
        assert (A, chat["message"]["message_id"]) in tg.fake.deleted  # night mode
        assert "120" in group_texts(tg)[-1]  # its notice gives the emergency number

        await tick(tg, timedelta(seconds=1))  # the group's own posts due by now (the weekly tip) go first
        n = len(group_texts(tg))
        crisis = tg.updates.message(A, bob, EMERGENCY)
        await tg.push(crisis)
        assert (A, crisis["message"]["message_id"]) not in tg.fake.deleted  # never removed
        private = tg.fake.messages(750)
        assert any("120" in m.visible for m in private) and any(m.method == "sendContact" for m in private)
        assert group_texts(tg)[n:] == ["我已经私信你了，请查看和我的私聊。"]  # the group only learns he was written to
        assert not any(m.method == "sendContact" for m in tg.fake.messages(A))

        after = tg.updates.message(A, bob, "救护车还没到")  # at night, in the group, during his emergency
        await tg.push(after)
        assert (A, after["message"]["message_id"]) not in tg.fake.deleted  # reaches the care team, not removed

        crisis2 = tg.updates.message(A, carol, EMERGENCY)
        await tg.push(crisis2)  # no private chat: the route in the group
        assert (A, crisis2["message"]["message_id"]) not in tg.fake.deleted
        assert any(m.method == "sendContact" for m in tg.fake.messages(A))
        pages = [s.outbound for s in staff.pager.sent if s.outbound.op == "page"]
        assert len(pages) >= 2  # on-call staff paged for each
        tickets = await tg.bot.store.read(lambda c: c.execute(sa.select(TICKET.c.priority)).scalars().all())
        assert tickets == ["urgent", "urgent"]
        rows = await log_rows(tg, member="750")
        assert not any(r.message_id.endswith(f":{crisis['message']['message_id']}") for r in rows)
    finally:
        await tg.close()


# -- the programme ---------------------------------------------------------------------------------------------------


async def test_the_programme_posts_day_1_and_day_7_in_the_group(tmp_path: Path, backend: dict[str, Any]) -> None:
    tg, staff = await start(tmp_path, **backend)
    try:
        s1 = tg.fake.user(760, "Sun")
        await join(tg, s1)
        await tg.press(s1, "group:captcha", chat_id=A)
        await tick(tg, timedelta(hours=16, minutes=1))  # Tuesday 09:01 in Shanghai: day 1
        day1 = tg.fake.messages(A)[-1]
        assert "第 1 天" in day1.visible and 'href="tg://user?id=760"' in day1.text
        await tick(tg, timedelta(days=1, hours=1))  # Wednesday 10:01: the weekly tip to the whole group
        await tick(tg, timedelta(hours=23))  # Thursday 09:01: day 3's article, with its source
        assert "World Health Organization" in group_texts(tg)[-1] or "世界卫生组织" in group_texts(tg)[-1]
        await tick(tg, timedelta(days=4))  # Monday 09:01: day 7
        assert "第 7 天" in group_texts(tg)[-1]
        posts = [r.trigger for r in await log_rows(tg, action="post")]
        assert posts == ["sop:day:1", "sop:calendar:0", "sop:day:3", "sop:day:7"]
    finally:
        await tg.close()


# -- without admin rights: the WeCom-style degrade ---------------------------------------------------------------------


async def test_without_admin_rights_the_owner_is_asked_and_a_mute_becomes_a_warning(tmp_path: Path,
                                                                                    backend: dict[str, Any]) -> None:
    tg, staff = await start(tmp_path, tg_ward("captcha"), admin=False, **backend)  # a plain member
    try:
        x = tg.fake.user(770, "X")
        await join(tg, x)  # the service message reaches a plain member too
        spam = tg.updates.message(A, x, "buy spam-delete now")
        await tg.push(spam)
        assert not any(c[0] in ("deleteMessage", "restrictChatMember", "banChatMember") for c in tg.fake.calls)
        [ask] = staff.notices("degraded.moderation.delete")
        assert ask.extra["staff"] == "d_owner" and ask.address.channel == "console"
        await tg.say(x, "spam-mute", chat_id=A)
        assert "1/3" in group_texts(tg)[-1] or "2/3" in group_texts(tg)[-1]  # warned instead of muted
        await tg.say(x, "spam-ban", chat_id=A)
        assert staff.notices("degraded.moderation.ban")[0].extra["staff"] == "d_owner"
        assert tg.fake.status(A, 770) == "member"  # nothing the bot may not do was tried
        rows = {(r.trigger, r.action, r.done): r.fallback for r in await log_rows(tg, member="770")}
        assert "not a Telegram administrator with can_delete_messages" in rows[
            ("blocklist:tg_ward/t_delete", "delete", "owner_asked")]
        assert "warned instead" in rows[("blocklist:tg_ward/t_mute", "mute", "warned")]
        assert "can_restrict_members" in rows[("blocklist:tg_ward/t_ban", "ban", "owner_asked")]
        bans = await tg.bot.store.read(lambda c: c.execute(sa.select(BAN.c.user_id)).scalars().all())
        assert bans == ["770"]  # the banlist holds it anyway
    finally:
        await tg.close()


async def test_rights_taken_away_unannounced_are_met_at_delivery_and_a_person_is_asked(tmp_path: Path) -> None:
    tg, staff = await start(tmp_path, tg_ward("captcha"))
    try:
        y = tg.fake.user(780, "Y")
        await join(tg, y)
        tg.fake.demote(A)  # no my_chat_member reached us: the bot still believes it is an administrator
        spam = tg.updates.message(A, y, "buy spam-delete now")
        await tg.push(spam)
        await tg.adapter.idle()
        await tg.bot.settle()
        refused = [c for c in tg.fake.calls if c[0] == "deleteMessage"]
        assert [c[2] for c in refused] == [400]  # tried once, refused, never retried
        [ask] = staff.notices("degraded.moderation.delete")
        assert ask.extra["staff"] == "d_owner"
        rows = [(r.trigger, r.done) for r in await log_rows(tg, member="780")]
        assert ("refused:delete", "owner_asked") in rows
        await tg.say(y, "spam-delete again", chat_id=A)  # the rights were learnt again: straight to the owner
        assert len([c for c in tg.fake.calls if c[0] == "deleteMessage"]) == 1
        assert len(staff.notices("degraded.moderation.delete")) == 2
    finally:
        await tg.close()
