"""Access tokens and limits against the fake WeCom API: one refresh for many workers, a refused
token retried with a fresh one, back-off on 45009/45033, and never more than a member may receive."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from adapters.wecom.api import App, WeComAPI, WeComBusy, WeComError
from bot.coord import MemoryCoord
from bot.coord.redis import RedisCoord
from tests.wecom.conftest import stop
from tests.wecom.fake_api import FakeWeCom

APP = App("app", "app-secret")


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def coord(request: pytest.FixtureRequest) -> Any:
    if request.param == "redis":
        return RedisCoord(request.getfixturevalue("redis_url"), prefix=f"carebot-test-{uuid.uuid4().hex[:6]}:")
    return MemoryCoord()


async def test_many_workers_refresh_the_token_once_and_again_once_when_it_expires(fake: FakeWeCom, coord) -> None:
    fake.gettoken_delay = 0.05  # a slow gettoken: every worker is waiting at once
    workers = [WeComAPI(fake.url, fake.corp_id, coord) for _ in range(4)]  # four processes' clients, one Coord
    body = {"touser": "SunLi", "msgtype": "text", "agentid": 1, "text": {"content": "x"}}

    def to(i: int) -> dict[str, Any]:
        return {**body, "touser": f"u{i}"}  # one message each: the member limit is not what this tests

    try:
        await asyncio.gather(*(w.call(APP, "message/send", to(i * 5 + j)) for i, w in enumerate(workers)
                               for j in range(5)))
        assert fake.gettoken_calls["app-secret"] == 1
        fake.expire_tokens()  # WeCom now answers 42001 to the cached token
        await asyncio.gather(*(w.call(APP, "message/send", to(20 + i * 5 + j)) for i, w in enumerate(workers)
                               for j in range(5)))
        assert fake.gettoken_calls["app-secret"] == 2
        assert sum(len(v) for v in fake.delivered.values()) == 40  # every call went through in the end
        fake.tokens.clear()  # WeCom forgot the token (40014): retried with a new one
        await workers[0].call(APP, "message/send", body)
        assert fake.gettoken_calls["app-secret"] == 3
    finally:
        for w in workers:
            await w.aclose()
        await coord.close()


async def test_a_bad_secret_is_a_clear_error(fake: FakeWeCom) -> None:
    api = WeComAPI(fake.url, fake.corp_id, MemoryCoord())
    try:
        with pytest.raises(WeComError, match="40001"):
            await api.call(App("app", "wrong"), "message/send", {})
    finally:
        await api.aclose()


async def test_busy_answers_are_backed_off_then_raised(fake: FakeWeCom) -> None:
    api = WeComAPI(fake.url, fake.corp_id, MemoryCoord(), busy_backoff=0.01, busy_retries=2)
    body = {"touser": "SunLi", "msgtype": "text", "agentid": 1, "text": {"content": "x"}}
    try:
        fake.fail_next("message/send", 45009, times=2)
        await api.call(APP, "message/send", body)  # waited twice, then went through
        assert len(fake.delivered["SunLi"]) == 1
        fake.fail_next("message/send", 45033)
        with pytest.raises(WeComBusy) as busy:
            await api.call(APP, "message/send", body, wait_when_busy=False)
        assert busy.value.retry_after > 0
    finally:
        await api.aclose()


async def test_an_outbox_row_meeting_45009_is_retried_later_not_lost(make_harness) -> None:
    h = await make_harness()
    try:
        from bot.types import Address, Outbound

        h.fake.fail_next("message/send", 45009)
        notice = Outbound(op="notify_staff", address=Address("wecom", "wrX"), text="please look",
                          extra={"owner": "d_sun"})
        first = await h.wecom.send(notice, "carebot-outbox-1")
        assert not first.ok and first.retryable and first.retry_after > 0
        again = await h.wecom.send(notice, "carebot-outbox-1")
        assert again.ok and len(h.fake.delivered["SunLi"]) == 1
    finally:
        await stop(h)


async def test_a_member_never_receives_more_than_wecom_allows(make_harness) -> None:
    h = await make_harness(member_rate=(3, 0.6))
    h.fake.member_limit = (3, 0.5)  # WeCom's 30 a minute, scaled down: the same rule in a second
    try:
        from bot.types import Address, Outbound

        pages = [Outbound(op="notify_staff", address=Address("wecom", "wrX"), text=f"alert {i}",
                          extra={"owner": "d_sun"}) for i in range(8)]
        results = await asyncio.gather(*(h.wecom.send(p, f"carebot-outbox-{i}") for i, p in enumerate(pages)))
        assert all(r.ok for r in results)
        assert h.fake.dropped["SunLi"] == 0  # nothing silently lost
        assert sorted(m["text"]["content"] for m in h.fake.delivered["SunLi"]) == sorted(p.text for p in pages)
    finally:
        await stop(h)


async def test_without_the_limit_wecom_would_silently_drop(fake: FakeWeCom) -> None:
    """The fake is honest about what the limit protects against."""
    fake.member_limit = (3, 60.0)
    api = WeComAPI(fake.url, fake.corp_id, MemoryCoord())
    try:
        for i in range(5):
            await api.call(APP, "message/send", {"touser": "SunLi", "msgtype": "text", "agentid": 1,
                                                 "text": {"content": str(i)}})
        assert len(fake.delivered["SunLi"]) == 3 and fake.dropped["SunLi"] == 2
    finally:
        await api.aclose()
