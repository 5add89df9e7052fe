"""Telegram end to end against the fake Bot API on loopback, through the webhook and both
integrations (aiogram Router, python-telegram-bot handler), on SQLite and PostgreSQL + Redis."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from adapters.telegram.config import Rate
from adapters.telegram.models import TelegramChat
from adapters.telegram.testing import Limits, Window
from bot.store.store import OUTBOX, TICKET
from bot.types import Address, Inbound, Outbound
from tests.telegram_support import BINDINGS, SECRET, TG, open_tg

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
EMERGENCY = "胸口剧痛出冷汗"
GROUP = -1001234567


@pytest.fixture(params=BINDINGS)
async def tg(request: Any, tmp_path: Any) -> Any:
    tg = await open_tg(tmp_path, request.param)
    yield tg
    await tg.close()


@pytest.fixture(params=["sqlite", "postgres+redis"])
async def tg_backends(request: Any, tmp_path: Any) -> Any:
    kw: dict[str, Any] = {}
    if request.param != "sqlite":
        kw = {"url": request.getfixturevalue("pg_url"), "redis_url": request.getfixturevalue("redis_url")}
        import redis

        redis.Redis.from_url(kw["redis_url"]).flushdb()
    tg = await open_tg(tmp_path, "webhook", **kw)
    yield tg
    await tg.close()


async def state_of(tg: TG, conversation_id: str) -> dict[str, Any]:
    data, _version = await tg.bot.store.load(conversation_id)
    return data or {}


async def outbox_statuses(tg: TG) -> list[str]:
    return await tg.bot.store.read(lambda c: list(c.execute(sa.select(OUTBOX.c.status).order_by(
        OUTBOX.c.id)).scalars()))


# -- a patient in a private chat ----------------------------------------------------------------------


async def test_dm_intake_with_buttons_and_stale_keyboards(tg: TG) -> None:
    li = tg.fake.private(501, "Li")
    await tg.say(li, "/start")
    menu = tg.fake.messages(501)[-1]
    assert tg.texts(501)[-1] == "请问您今天需要什么帮助？"
    assert [b["callback_data"] for b in menu.buttons][:2] == ["consult", "reminder"]
    await tg.press(li, "咨询医生")
    assert menu.reply_markup is None  # answered: the keyboard is edited away
    assert list(tg.fake.answered.values())[-1]["text"] in ("", None)
    asked = tg.texts(501)[-1]
    assert "服务" in asked or "同意" in asked  # the consent question comes next
    # a press on the menu's old keyboard (a client that still shows it) is stale: answered, nothing runs
    before = len(tg.fake.sent)
    await tg.push(tg.updates.callback(li, menu, "reminder"))
    assert list(tg.fake.answered.values())[-1]["text"] == "这个问题已经过去了，请回答最新的问题。"
    assert [m for m in tg.fake.sent[before:] if m.method != "editMessageReplyMarkup"] == []
    data = await state_of(tg, "default:telegram:501")
    assert data["stack"] and data["stack"][-1]["flow"] != "medication_reminder"


async def test_english_patient_gets_english(tg: TG) -> None:
    amy = tg.fake.private(502, "Amy", "en")
    await tg.say(amy, "/start")
    assert tg.texts(502)[-1].startswith("What can I help you with")


async def test_photo_is_checked_by_its_bytes(tg: TG) -> None:
    li = tg.fake.private(503, "Li")
    await tg.say(li, "/start")
    n = len(tg.texts(503))
    await tg.push(tg.updates.photo(503, li, PNG, caption="化验单"))
    assert "只能接收照片" not in " ".join(tg.texts(503)[n:])
    n = len(tg.texts(503))
    await tg.push(tg.updates.document(503, li, b"<svg onload=alert(1)>", "report.pdf", "application/pdf"))
    assert tg.texts(503)[n:] == ["抱歉，只能接收照片（JPG、PNG、GIF、WebP）或 PDF 文件。"]
    big = tg.updates.document(503, li, b"%PDF-" + b"0" * (11 * 1024 * 1024), "big.pdf", "application/pdf")
    await tg.push(big)
    assert tg.texts(503)[-1].startswith("抱歉，文件太大了（最大 10 MB）")


async def test_emergency_gets_the_number_as_a_contact_card_to_tap(tg: TG) -> None:
    li = tg.fake.private(504, "Li")
    await tg.say(li, EMERGENCY)
    sent = tg.fake.messages(504)
    assert "120" in sent[0].visible
    cards = [m for m in sent if m.method == "sendContact"]
    assert cards and cards[0].contact == {"phone_number": "120", "first_name": "急救电话 120"}
    assert sent.index(cards[0]) == 1  # right after the emergency message, before the guidance
    assert not any("tel:" in json.dumps(m.reply_markup or {}) for m in sent)
    tickets = await tg.bot.store.read(lambda c: c.execute(sa.select(TICKET.c.priority, TICKET.c.reason)).all())
    assert [(t.priority, t.reason) for t in tickets] == [("urgent", "red_flag")]


async def test_an_edit_is_screened_but_never_answers_again(tg: TG) -> None:
    li = tg.fake.private(505, "Li")
    first = tg.updates.message(505, li, "你好")
    await tg.push(first)
    n = len(tg.fake.sent)
    await tg.push(tg.updates.edited(first, "你好呀"))
    assert tg.fake.sent[n:] == []  # an edit answers no question
    await tg.push(tg.updates.edited(first, EMERGENCY))
    assert any(m.method == "sendContact" for m in tg.fake.sent[n:])  # but safety reads it


async def test_blocked_bot_stops_the_patient_and_unblocking_lets_them_resume(tg: TG) -> None:
    li = tg.fake.private(506, "Li")
    await tg.say(li, "/start")
    await tg.push(tg.updates.my_chat_member(li, "member", "kicked"))
    assert (await state_of(tg, "default:telegram:506"))["opted_out"] is True
    chat = await tg.bot.store.read(lambda c: c.execute(sa.select(TelegramChat.__table__).where(
        TelegramChat.__table__.c.id == "506")).first())
    assert chat.blocked
    await tg.push(tg.updates.my_chat_member(li, "kicked", "member"))
    await tg.say(li, "/start")  # Telegram's "Restart" sends /start: the start flow opts back in
    assert (await state_of(tg, "default:telegram:506"))["opted_out"] is False
    assert "欢迎回来" in " ".join(tg.texts(506)) or len(tg.texts(506)) >= 3


async def test_a_403_while_sending_marks_blocked_and_is_not_retried(tg: TG) -> None:
    li = tg.fake.private(507, "Li")
    tg.fake.blocked.add(507)
    await tg.say(li, "/start")
    await tg.adapter.idle()
    await tg.bot.settle()
    assert set(await outbox_statuses(tg)) == {"failed"}
    assert [c for c in tg.fake.calls if c[0] == "sendMessage"][0][2] == 403
    assert (await state_of(tg, "default:telegram:507"))["opted_out"] is True


async def test_chat_not_found_is_permanent(tg: TG) -> None:
    await tg.bot.runtime.handle(Inbound("command", Address("telegram", "999", "999"), "x1", tg.clock.now(),
                                        text="/start"))
    await tg.bot.settle()
    statuses = await outbox_statuses(tg)
    assert set(statuses) == {"failed"}
    assert sum(1 for c in tg.fake.calls if c[0] == "sendMessage") == len(statuses)  # each once: never retried


async def test_duplicate_update_id_is_processed_once(tg: TG) -> None:
    li = tg.fake.private(508, "Li")
    update = tg.updates.message(508, li, "/start")
    first = await tg.push(update)
    n = len(tg.fake.sent)
    second = await tg.push(update)
    assert len(tg.fake.sent) == n == 2
    if tg.binding == "webhook":
        assert first == second == 200  # acknowledged both times, so Telegram stops retrying


# -- groups ------------------------------------------------------------------------------------------


async def test_group_answers_only_when_addressed_and_replies_to_the_member(tg: TG) -> None:
    tg.fake.group(GROUP, "糖友群")
    alice = tg.fake.user(601, "Alice")
    await tg.say(alice, "大家好", chat_id=GROUP)
    await tg.say(alice, "/start@other_bot", chat_id=GROUP)
    assert tg.texts(GROUP) == []
    mention = tg.updates.message(GROUP, alice, "@carebot_test_bot 菜单")
    await tg.push(mention)
    replies = tg.fake.messages(GROUP)
    assert replies and replies[0].reply_to == mention["message"]["message_id"]
    assert replies[-1].buttons  # the menu, in the group, for Alice
    # Bob presses Alice's menu: not his
    bob = tg.fake.user(602, "Bob")
    n = len(tg.fake.sent)
    await tg.press(bob, "consult", chat_id=GROUP)
    assert list(tg.fake.answered.values())[-1]["text"] == "这个按钮是给另一位成员的。"
    assert replies[-1].reply_markup is not None and tg.fake.sent[n:] == []


async def test_intake_in_a_group_moves_to_a_private_chat_by_deep_link(tg: TG) -> None:
    tg.fake.group(GROUP)
    alice = tg.fake.user(603, "Alice")
    await tg.say(alice, "/consult", chat_id=GROUP)
    link = tg.fake.messages(GROUP)[-1]
    assert link.buttons[0]["url"] == "https://t.me/carebot_test_bot?start=consult"
    tg.fake.private(603, "Alice")  # she taps it: Telegram opens the private chat and sends /start consult
    await tg.say(alice, "/start consult")
    data = await state_of(tg, "default:telegram:603")
    assert data["stack"][-1]["flow"] in ("intake", "consent")


async def test_crisis_in_a_group_goes_private_when_the_member_started_the_bot(tg: TG) -> None:
    tg.fake.group(GROUP)
    bob = tg.fake.private(604, "Bob")
    await tg.say(bob, "/start")
    carol = tg.fake.user(605, "Carol")
    await tg.say(bob, EMERGENCY, chat_id=GROUP)  # not addressed to the bot: safety reads it anyway
    assert any(m.method == "sendContact" for m in tg.fake.messages(604))  # privately
    assert tg.texts(GROUP) == ["我已经私信你了，请查看和我的私聊。"]
    await tg.say(carol, EMERGENCY, chat_id=GROUP)  # never started the bot: the route in the group
    assert any(m.method == "sendContact" for m in tg.fake.messages(GROUP))


async def test_supergroup_migration_moves_the_conversation(tg: TG) -> None:
    tg.fake.chats[-500] = {"id": -500, "type": "group", "title": "Patients"}
    alice = tg.fake.user(606, "Alice")
    await tg.say(alice, "@carebot_test_bot 菜单", chat_id=-500)
    assert tg.texts(-500)
    tg.fake.migrate(-500, -1000500)
    await tg.push(tg.updates.migrated(-500, -1000500, alice))
    await tg.say(alice, "@carebot_test_bot 菜单", chat_id=-1000500)
    assert tg.texts(-1000500)
    data = await state_of(tg, "default:telegram:-500/606")
    assert data["turns"] >= 2  # the same conversation went on in the supergroup


async def test_a_send_to_a_migrated_group_follows_it(tg: TG) -> None:
    tg.fake.chats[-501] = {"id": -501, "type": "group", "title": "Patients"}
    alice = tg.fake.user(607, "Alice")
    await tg.say(alice, "@carebot_test_bot 你好", chat_id=-501)
    tg.fake.migrate(-501, -1000501)  # nobody told carebot: the next send meets migrate_to_chat_id
    await tg.say(alice, "@carebot_test_bot 菜单", chat_id=-501)
    assert tg.texts(-1000501)
    assert await tg.adapter.platform_chat("-501") == "-1000501"


# -- the wire ----------------------------------------------------------------------------------------


async def test_webhook_secret_is_required(tmp_path: Any) -> None:
    tg = await open_tg(tmp_path, "webhook")
    try:
        url = tg.fake.webhook["url"]
        body = json.dumps(tg.updates.message(701, tg.fake.private(701), "/start"))
        async with httpx.AsyncClient() as client:
            assert (await client.post(url, content=body)).status_code == 403
            wrong = {"X-Telegram-Bot-Api-Secret-Token": SECRET[:-1] + "x"}
            assert (await client.post(url, content=body, headers=wrong)).status_code == 403
            right = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
            assert (await client.post(url, content=b"{not json", headers=right)).status_code == 400
            assert (await client.post(url, content=b'{"update_id": "7"}', headers=right)).status_code == 400
            assert (await client.post(url, content=b'{"update_id": 7, "message": {}}',
                                      headers=right)).status_code == 200  # malformed: acknowledged, ignored
            assert (await client.post(url, content=body, headers=right)).status_code == 200
        await tg.bot.settle()
        assert tg.texts(701)
    finally:
        await tg.close()


async def test_long_text_is_split_and_escaped(tg: TG) -> None:
    tg.fake.private(702)
    text = ("<b>not bold</b> & a < b\n" * 400).strip()
    delivery = await tg.adapter.send(Outbound("say", Address("telegram", "702", "702"), text=text,
                                              sender="staff:d1", sender_name="王医生 <主任>"), "k1")
    assert delivery.ok
    parts = tg.fake.messages(702)
    assert len(parts) == 3 and all(len(p.visible) <= 4096 for p in parts)
    assert parts[0].visible.startswith("王医生 <主任>\n<b>not bold</b> & a < b")
    joined = "\n".join(p.visible for p in parts).removeprefix("王医生 <主任>\n")
    assert joined == text


async def test_429_retry_after_is_honoured(tmp_path: Any) -> None:
    # the adapter believes in more than the fake allows: the fake answers 429, nothing is lost
    tg = await open_tg(tmp_path, "aiogram", limits=Limits(overall=Window(2, 1.0), per_chat=Window(100, 1.0),
                                                          per_group=Window(100, 1.0)))
    try:
        for uid in (801, 802):
            await tg.say(tg.fake.private(uid), "/start")
        assert tg.fake.rate_limited >= 1
        assert set(await outbox_statuses(tg)) == {"sent"}
        assert len(tg.texts(801)) == len(tg.texts(802)) == 2
    finally:
        await tg.close()


async def test_a_429_holds_only_what_it_concerns(tmp_path: Any) -> None:
    # the fake allows one message a second in a chat and two a second for the bot; the adapter
    # believes in more of both, so it meets each limit once
    tg = await open_tg(tmp_path, "aiogram", limits=Limits(overall=Window(2, 1.0), per_chat=Window(1, 1.0),
                                                          per_group=Window(100, 60.0)),
                       config={"per_chat": Rate(10, 1.0), "overall": Rate(100, 1.0)})
    try:
        for uid in (821, 822, 823, 824):
            tg.fake.private(uid)
        to = {uid: Address("telegram", str(uid), str(uid)) for uid in (821, 822, 823, 824)}
        assert (await tg.adapter.send(Outbound("say", to[821], text="one"), "k1")).ok
        # chat 821's second message at once: its own limit — only chat 821 is held
        second = await tg.adapter.send(Outbound("say", to[821], text="two"), "k2")
        assert not second.ok and second.retryable and (second.retry_after or 0) >= 1
        assert tg.fake.rate_limited == 1
        started = time.monotonic()
        assert (await tg.adapter.send(Outbound("say", to[822], text="three"), "k3")).ok
        assert time.monotonic() - started < 0.5  # another chat is not held by chat 821's 429
        # a chat with nothing sent before meets a 429: the bot's limit (two a second) — every chat waits
        third = await tg.adapter.send(Outbound("say", to[823], text="four"), "k4")
        assert not third.ok and tg.fake.rate_limited == 2
        started = time.monotonic()
        assert (await tg.adapter.send(Outbound("say", to[824], text="five"), "k5")).ok
        assert time.monotonic() - started >= 0.9  # held for retry_after, then sent without a 429
        assert tg.fake.rate_limited == 2
        assert tg.texts(822) == ["three"] and tg.texts(824) == ["five"]
    finally:
        await tg.close()


async def test_paced_sending_meets_no_429(tmp_path: Any) -> None:
    limits = Limits(overall=Window(4, 1.0), per_chat=Window(100, 1.0), per_group=Window(100, 1.0))
    tg = await open_tg(tmp_path, "aiogram", limits=limits, config={"overall": Rate(4, 1.02)})
    try:
        for uid in (811, 812, 813):
            await tg.say(tg.fake.private(uid), "/start")
        assert tg.fake.rate_limited == 0
        assert set(await outbox_statuses(tg)) == {"sent"}
    finally:
        await tg.close()


async def test_runtime_paths_on_each_backend(tg_backends: TG) -> None:
    tg = tg_backends
    li = tg.fake.private(901, "Li")
    update = tg.updates.message(901, li, "/start")
    assert await tg.push(update) == 200
    assert await tg.push(update) == 200
    assert len(tg.texts(901)) == 2  # welcome and menu, once
    await tg.press(li, "咨询医生")
    assert len(tg.texts(901)) > 2 and tg.fake.messages(901)[1].reply_markup is None
    await tg.push(tg.updates.my_chat_member(li, "member", "kicked"))
    assert (await state_of(tg, "default:telegram:901"))["opted_out"] is True
    tg.fake.chats[-502] = {"id": -502, "type": "group", "title": "Patients"}
    alice = tg.fake.user(902, "Alice")
    await tg.say(alice, "@carebot_test_bot 菜单", chat_id=-502)
    tg.fake.migrate(-502, -1000502)
    await tg.push(tg.updates.migrated(-502, -1000502, alice))
    await tg.say(alice, "@carebot_test_bot 菜单", chat_id=-1000502)
    assert tg.texts(-1000502)


# -- long polling and the command ---------------------------------------------------------------------


async def test_polling_persists_its_offset(tmp_path: Any) -> None:
    from adapters.telegram.polling import Poller

    tg = await open_tg(tmp_path, "aiogram")
    try:
        li = tg.fake.private(951, "Li")
        for text in ("/start", "咨询医生"):
            await tg.fake.push(tg.updates.message(951, li, text))
        poller = Poller(tg.adapter, timeout=0)
        assert await poller.poll_once() == 2
        await tg.bot.settle()
        saved = await poller.offset()
        assert saved == tg.fake.calls[-1][1].get("offset", saved) or saved > 0
        again = Poller(tg.adapter, timeout=0)  # a restarted `carebot telegram poll`
        assert await again.offset() == saved
        assert await again.poll_once() == 0  # confirmed updates are not delivered again
        assert len(tg.texts(951)) >= 3
    finally:
        await tg.close()


@pytest.mark.timeout(600)  # three `carebot` processes: slow to start on a loaded machine, never flaky
async def test_the_telegram_command_manages_the_webhook(tmp_path: Any) -> None:
    import asyncio
    import os
    import sys

    from adapters.telegram.testing import FakeBotAPI

    fake = FakeBotAPI()
    await fake.start()
    env = {**os.environ, "CAREBOT_TELEGRAM_TOKEN": fake.token, "CAREBOT_TELEGRAM_API": fake.base_url,
           "CAREBOT_TELEGRAM_WEBHOOK_SECRET": SECRET, "CAREBOT_TELEGRAM_PUBLIC_URL": "https://bot.example.org"}

    async def carebot(*args: str, **extra: str) -> tuple[int, str, str]:
        proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "bot.cli", "telegram", *args,
                                                    env={**env, **extra}, stdout=asyncio.subprocess.PIPE,
                                                    stderr=asyncio.subprocess.PIPE)
        out, err = await proc.communicate()
        return proc.returncode or 0, out.decode(), err.decode()

    try:
        code, out, _ = await carebot("set-webhook")
        assert code == 0 and fake.webhook == {"url": "https://bot.example.org/telegram/webhook",
                                              "secret_token": SECRET, "allowed_updates": list(
                                                  ("message", "edited_message", "callback_query", "my_chat_member",
                                                   "chat_member"))}
        code, out, _ = await carebot("info")
        info = json.loads(out)
        assert info["bot"]["username"] == "carebot_test_bot"
        assert info["webhook"]["url"] == "https://bot.example.org/telegram/webhook"
        code, out, _ = await carebot("delete-webhook")
        assert code == 0 and fake.webhook == {}
    finally:
        await fake.stop()


def test_bad_telegram_settings_are_named(monkeypatch: Any) -> None:
    from adapters.telegram.config import TelegramConfig
    from bot.errors import ConfigError

    monkeypatch.setenv("CAREBOT_TELEGRAM_TOKEN", "not-a-token")
    monkeypatch.setenv("CAREBOT_TELEGRAM_WEBHOOK_SECRET", "bad secret!")
    monkeypatch.setenv("CAREBOT_TELEGRAM_PUBLIC_URL", "http://bot.example.org")
    with pytest.raises(ConfigError) as raised:
        TelegramConfig.from_env()
    fields = [p.field for p in raised.value.problems]
    assert fields == ["CAREBOT_TELEGRAM_TOKEN", "CAREBOT_TELEGRAM_WEBHOOK_SECRET", "CAREBOT_TELEGRAM_PUBLIC_URL"]
    assert "A-Z" in str(raised.value.problems[1]) and "https://" in str(raised.value.problems[2])
