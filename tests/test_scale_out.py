"""What makes PostgreSQL + Redis fast without giving up correctness: a conversation held for a run
of turns (one Redis round trip each), the state cache checked against the version Redis last saw,
and turns of different conversations committed with shared round trips — whose conflicts and
duplicates still fail only their own turn."""

from __future__ import annotations

import asyncio
import json
import threading

import pytest
import sqlalchemy as sa

from bot import metrics
from bot.coord.redis import RedisCoord
from bot.store.store import EVENT, INBOX, OUTBOX, TIMER, Duplicate, Store, TurnCommit, VersionConflict
from bot.types import Address, Inbound, Outbound, RecordEvent, ScheduleTimer, Send
from tests.conftest import T0
from tests.flows_common import ECHO_FLOWS, ECHO_MESSAGES

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


@pytest.fixture
def fresh_redis(redis_url: str) -> str:
    import redis

    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    client.close()
    return redis_url


def _conflicts() -> float:
    return metrics.CONFLICTS._value.get()  # type: ignore[attr-defined]


async def test_two_workers_take_turns_on_one_conversation_and_neither_uses_a_stale_cache(pg_url, fresh_redis, make_bot):
    a, pa, _ = make_bot(ECHO_FLOWS, ECHO_MESSAGES, url=pg_url, coord=RedisCoord(fresh_redis))
    b, pb, _ = make_bot(ECHO_FLOWS, ECHO_MESSAGES, url=pg_url, coord=RedisCoord(fresh_redis))
    await a.start(background=False)
    await b.start(background=False)
    before = _conflicts()
    try:
        texts = ["hello", "one", "two", "three", "four", "five"]
        for n, text in enumerate(texts):  # alternate workers: each one's cached state goes stale
            bot, platform = (a, pa) if n % 2 == 0 else (b, pb)
            outcome = await bot.runtime.handle(platform.inbound("p1", text, message_id=f"m{n}"))
            assert outcome.status == "processed"
            assert outcome.state is not None and outcome.state.version == n + 1
        # the state saw every message once, in order; no turn had to be redone after a conflict
        row = await a.store.read(lambda c: c.execute(sa.text("SELECT state, version FROM conversation")).one())
        assert json.loads(row.state)["slots"]["seen"] == texts[1:] and row.version == len(texts)
        assert _conflicts() == before
        # a message delivered again to the other worker is recognised (Redis seen-set or inbox)
        again = await b.runtime.handle(pb.inbound("p1", "five", message_id="m5"))
        assert again.status == "duplicate"
    finally:
        await a.stop()
        await b.stop()


async def test_a_hold_is_exclusive_marks_seen_on_release_and_knows_when_it_was_lost(fresh_redis):
    one, two = RedisCoord(fresh_redis), RedisCoord(fresh_redis)
    try:
        hold = await one.hold("conv", "msg1", ttl=5)
        assert not hold.seen and hold.version == 0
        waiting = asyncio.create_task(two.hold("conv", "msg2", ttl=5))
        await asyncio.sleep(0.05)
        assert not waiting.done()  # the other worker waits for the conversation
        assert await one.step(hold, "msg1", 1, "msg1")  # the next message is a redelivery of msg1
        assert hold.seen
        await one.release(hold, None, 2)
        other = await asyncio.wait_for(waiting, 5)
        assert other.version == 2 and not other.seen  # the version the last holder committed
        # a holder whose lease ran out and was taken over is told so, and changes nothing
        await one.redis.set(f"{one.prefix}lock:conv", "someone-else")
        assert not await two.step(other, "msg2", 1, "msg3")
        assert await one.redis.get(f"{one.prefix}ver:conv") == "2"  # versions only go up
        assert await one.seen("msg2")
    finally:
        await one.close()
        await two.close()


def _commit(cid: str, message_id: str, expected: int, *effects) -> TurnCommit:  # type: ignore[no-untyped-def]
    address = Address("memory", cid, cid)
    inbound = Inbound(kind="text", address=address, message_id=message_id, received_at=T0, text="hi")
    return TurnCommit(conversation_id=f"default:memory:{cid}", address=address, state_json="{}", mode="flow",
                      locale="zh-CN", expected_version=expected, now=T0, inbound=inbound, effects=list(effects))


def _say(cid: str, text: str) -> Send:
    return Send(Outbound(op="say", address=Address("memory", cid, cid), text=text))


async def test_turns_committed_together_each_get_their_own_outcome(pg_url):
    store = Store(pg_url, worker_id="w1", writer_threads=1)
    try:
        await store.commit_turn(_commit("old", "o1", 0, _say("old", "first")))
        groups: list[int] = []
        grouped = store._commit_turns
        store._commit_turns = lambda conn, commits: (groups.append(len(commits)), grouped(conn, commits))[1]  # type: ignore[method-assign]
        # hold the writer so that the next turns queue up and go out as one group
        gate = threading.Event()
        blocker = store.write(lambda conn: gate.wait(10))
        commits = [
            _commit("a", "a1", 0, _say("a", "to a"), RecordEvent("seen", {"n": 1}),
                    ScheduleTimer("remind", T0, {"flow": "x"})),
            _commit("old", "o1", 1, _say("old", "again")),  # a redelivered message: a duplicate
            _commit("old", "o2", 7, _say("old", "stale")),  # written from a stale state: a conflict
            _commit("b", "b1", 0, _say("b", "to b 1"), _say("b", "to b 2")),
        ]
        futures = [asyncio.ensure_future(store.commit_turn(c)) for c in commits]
        await asyncio.sleep(0.05)
        gate.set()
        await blocker
        results = await asyncio.gather(*futures, return_exceptions=True)
        assert groups == [4]  # tried together, then (a duplicate and a conflict in it) one by one
        assert isinstance(results[1], Duplicate) and isinstance(results[2], VersionConflict)
        assert [c.outbound.text for c in results[0]] == ["to a"]
        assert [c.outbound.text for c in results[3]] == ["to b 1", "to b 2"]
        assert results[3][0].id < results[3][1].id

        def rows(conn: sa.Connection) -> dict[str, object]:
            return {
                "inbox": sorted(conn.execute(sa.select(INBOX.c.message_id)).scalars()),
                "outbox": sorted(conn.execute(sa.select(OUTBOX.c.payload)).scalars()),
                "events": conn.execute(sa.select(EVENT.c.kind)).scalars().all(),
                "timers": conn.execute(sa.select(TIMER.c.name, TIMER.c.status)).all(),
                "versions": dict(conn.execute(sa.text("SELECT id, version FROM conversation")).all()),
            }

        got = await store.read(rows)
        assert got["inbox"] == ["a1", "b1", "o1"]
        assert sorted(json.loads(p)["text"] for p in got["outbox"]) == ["first", "to a", "to b 1", "to b 2"]
        assert got["events"] == ["seen"] and [tuple(t) for t in got["timers"]] == [("remind", "pending")]
        assert got["versions"] == {"default:memory:old": 1, "default:memory:a": 1, "default:memory:b": 1}
    finally:
        store.close()


async def test_a_clean_group_is_written_by_one_statement_per_kind_of_row(pg_url):
    store = Store(pg_url, worker_id="w1", writer_threads=1)
    try:
        await store.commit_turn(_commit("old", "o1", 0, _say("old", "first")))
        alone: list[str] = []
        single = store._commit_turn
        store._commit_turn = lambda conn, c: (alone.append(c.conversation_id), single(conn, c))[1]  # type: ignore[method-assign]
        gate = threading.Event()
        blocker = store.write(lambda conn: gate.wait(10))
        commits = [
            _commit("old", "o2", 1, _say("old", "second"), RecordEvent("seen", {"n": 2})),
            _commit("a", "a1", 0, _say("a", "same"), _say("a", "same"), ScheduleTimer("remind", T0, {"flow": "x"})),
            _commit("b", "b1", 0, _say("b", "to b")),
        ]
        futures = [asyncio.ensure_future(store.commit_turn(c)) for c in commits]
        await asyncio.sleep(0.05)
        gate.set()
        await blocker
        results = await asyncio.gather(*futures)
        assert alone == []  # no turn was sent back to be written alone
        assert [[c.outbound.text for c in r] for r in results] == [["second"], ["same", "same"], ["to b"]]
        ids = [c.id for r in results for c in r]
        assert len(set(ids)) == 4
        await asyncio.gather(*(store.outbox_sent(i, T0, f"p{i}") for i in ids))

        def rows(conn: sa.Connection) -> dict[str, object]:
            return {
                "outbox": sorted((r.id, r.conversation_id, json.loads(r.payload)["text"], r.status, r.attempts,
                                  r.platform_message_id) for r in conn.execute(sa.select(OUTBOX)).all()),
                "events": conn.execute(sa.select(EVENT.c.conversation_id, EVENT.c.kind)).all(),
                "timers": conn.execute(sa.select(TIMER.c.conversation_id, TIMER.c.name)).all(),
                "versions": dict(conn.execute(sa.text("SELECT id, version FROM conversation")).all()),
            }

        got = await store.read(rows)
        by_id = {row[0]: row for row in got["outbox"]}
        for result in results:
            for c in result:  # each id claimed is the row of that conversation and text, now sent
                assert by_id[c.id][1:] == (c.conversation_id, c.outbound.text, "sent", 1, f"p{c.id}")
        assert [tuple(e) for e in got["events"]] == [("default:memory:old", "seen")]
        assert [tuple(t) for t in got["timers"]] == [("default:memory:a", "remind")]
        assert got["versions"] == {"default:memory:old": 2, "default:memory:a": 1, "default:memory:b": 1}
    finally:
        store.close()
