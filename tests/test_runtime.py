"""The runtime for real: SQLite file, outbox sender, timers — de-duplication, ordering, retries."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import sqlalchemy as sa

from bot.store.store import INBOX, OUTBOX
from tests.flows_common import ECHO_FLOWS, ECHO_MESSAGES


async def _rows(bot, table, *where):  # type: ignore[no-untyped-def]
    return await bot.store.read(lambda c: c.execute(sa.select(table).where(*where)).all())


async def test_duplicate_delivery_is_processed_once(make_bot):
    bot, platform, _ = make_bot(ECHO_FLOWS, ECHO_MESSAGES)
    await bot.start(background=False)
    try:
        first = platform.inbound("p1", "hello", message_id="wx-1")
        assert (await bot.runtime.handle(first)).status == "processed"
        again = platform.inbound("p1", "hello", message_id="wx-1")
        assert (await bot.runtime.handle(again)).status == "duplicate"
        # at once, twice, while nothing has been seen yet: still one
        a, b = platform.inbound("p1", "x", message_id="wx-2"), platform.inbound("p1", "x", message_id="wx-2")
        outcomes = sorted(o.status for o in await asyncio.gather(bot.runtime.handle(a), bot.runtime.handle(b)))
        assert outcomes == ["duplicate", "processed"]
        await bot.sender.idle()
        assert platform.texts("p1") == ["请说", "x", "请说"]
        assert len(await _rows(bot, INBOX)) == 2
    finally:
        await bot.stop()


async def test_duplicate_after_restart_is_caught_by_the_database(make_bot, sqlite_url):
    bot, platform, clock = make_bot(ECHO_FLOWS, ECHO_MESSAGES, url=sqlite_url)
    await bot.start(background=False)
    await bot.runtime.handle(platform.inbound("p1", "hello", message_id="wx-1"))
    await bot.stop()
    # a new process: empty memory de-duplication, same database
    bot2, platform2, _ = make_bot(ECHO_FLOWS, ECHO_MESSAGES, url=sqlite_url, clock=clock)
    await bot2.start(background=False)
    try:
        outcome = await bot2.runtime.handle(platform2.inbound("p1", "hello", message_id="wx-1"))
        assert outcome.status == "duplicate"
    finally:
        await bot2.stop()


async def test_messages_of_one_conversation_are_processed_in_arrival_order(make_bot):
    bot, platform, _ = make_bot(ECHO_FLOWS, ECHO_MESSAGES)
    await bot.start(background=False)
    try:
        texts = [f"m{i:02d}" for i in range(40)]
        chats = [f"c{j}" for j in range(8)]
        # all conversations at once, each with its messages in order
        await asyncio.gather(*(bot.runtime.handle(platform.inbound(chat, t)) for t in texts for chat in chats))
        await bot.sender.idle()
        for chat in chats:
            data, _ = await bot.store.load(platform.inbound(chat).address.conversation_id)
            assert data["slots"]["seen"] == texts[1:], chat  # the first message started the flow
            echoes = [t for t in platform.texts(chat) if t != "请说"]
            assert echoes == texts[1:]
    finally:
        await bot.stop()


async def test_outbox_retries_in_order_and_records_the_outcome(make_bot):
    bot, platform, _ = make_bot(ECHO_FLOWS, ECHO_MESSAGES)
    bot.sender.backoff = 0.01
    await bot.start(background=False)
    try:
        platform.fail_next(2)  # the platform refuses twice, then accepts
        await bot.runtime.handle(platform.inbound("p1", "start"))
        await bot.runtime.handle(platform.inbound("p1", "one"))
        await bot.sender.idle()
        assert platform.texts("p1") == ["请说", "one", "请说"]
        rows = await _rows(bot, OUTBOX)
        assert [r.status for r in rows] == ["sent"] * 3
        assert rows[0].attempts == 3 and rows[0].last_error == "test failure"
        assert all(r.platform_message_id for r in rows)
        # a permanent refusal is recorded as failed and does not block the next message
        platform.fail_next(1, retryable=False, error="blocked by user")
        await bot.runtime.handle(platform.inbound("p1", "two"))
        await bot.sender.idle()
        rows = await _rows(bot, OUTBOX)
        assert [r.status for r in rows[3:]] == ["failed", "sent"]
        assert rows[3].last_error == "blocked by user"
    finally:
        await bot.stop()


async def test_timers_survive_a_restart_and_fire_once(make_bot, sqlite_url):
    bot, platform, clock = make_bot(ECHO_FLOWS, ECHO_MESSAGES, url=sqlite_url)
    await bot.start(background=False)
    await bot.runtime.handle(platform.inbound("p1", "/remind", kind="command"))
    await bot.sender.idle()
    assert platform.texts("p1") == ["已设置提醒"]
    clock.advance(timedelta(hours=1))
    assert await bot.timers.tick() == 0  # not due yet
    await bot.stop()

    bot2, platform2, _ = make_bot(ECHO_FLOWS, ECHO_MESSAGES, url=sqlite_url, clock=clock)
    await bot2.start(background=False)
    try:
        clock.advance(timedelta(hours=1, seconds=1))
        assert await bot2.timers.tick() == 1
        assert await bot2.timers.tick() == 0
        await bot2.sender.idle()
        assert platform2.texts("p1") == ["该吃药了"]
    finally:
        await bot2.stop()


async def test_a_failing_step_runs_the_error_flow_and_the_conversation_stays_usable(make_bot, caplog):
    flows = {"broken.yml": """
        id: broken
        triggers: [{command: /broken}]
        steps:
          - set: { x: "{{ 1 / 0 }}" }
          - say: t.never
    """}
    messages = {"zh-CN": "t:\n  never: 不会\n", "en": "t:\n  never: never\n"}
    bot, platform, _ = make_bot(flows, messages)
    await bot.start(background=False)
    try:
        outcome = await bot.runtime.handle(platform.inbound("p1", "/broken 13812345678", kind="command"))
        await bot.sender.idle()
        sent = platform.sent[-1].outbound
        assert sent.key == "repair.error"
        assert [b.value for b in sent.buttons] == ["human", "menu"]
        assert outcome.state is not None and outcome.state.stack == []
        assert "13812345678" not in caplog.text
        assert "ZeroDivisionError" in caplog.text and outcome.state.conversation_id in caplog.text
        await bot.runtime.handle(platform.inbound("p1", "/help", kind="command"))
        await bot.sender.idle()
        assert platform.sent[-1].outbound.key == "repair.help"
    finally:
        await bot.stop()
