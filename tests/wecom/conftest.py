"""A carebot with the WeCom adapter against the fake WeCom API on loopback, on SQLite or on
PostgreSQL + Redis, with a pinned clock."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any, AsyncIterator, Callable, Iterator

import httpx
import pytest
import sqlalchemy as sa
from starlette.applications import Starlette

from adapters.wecom.adapter import WeComAdapter
from adapters.wecom.config import WeComConfig
from bot.app import CareBot, load_config
from bot.clock import ManualClock
from bot.coord import MemoryCoord
from bot.coord.redis import RedisCoord
from bot.settings import Settings
from bot.store.migrate import upgrade
from bot.store.store import OUTBOX
from bot.testing.memory import MemoryAdapter
from tests.conftest import ROOT, T0
from tests.wecom.fake_api import FakeWeCom

KFID = "wkcarebotkf01"
STAFF = {"d_sun": "SunLi", "d_wu": "WuQiang", "d_zhou": "ZhouMin"}
CARE_TEAM = ("NurseLi", "HealthWang")


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)  # Monday 17:00 in Shanghai: d_sun is on call


@pytest.fixture
def fake(clock: ManualClock) -> Iterator[FakeWeCom]:
    api = FakeWeCom(now=lambda: clock.now().timestamp())
    api.start()
    yield api
    api.stop()


def wecom_config(fake: FakeWeCom, **overrides: Any) -> WeComConfig:
    return replace(WeComConfig(
        corp_id=fake.corp_id, token=fake.token, aes_key=fake.aes_key, kf_secret="kf-secret",
        app_secret="app-secret", agent_id=1000002, contact_secret="contact-secret", open_kfid=KFID,
        api_base=fake.url, staff=dict(STAFF), care_team=CARE_TEAM, console_url="https://care.example.org"),
        **overrides)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=[pytest.mark.postgres, pytest.mark.redis])])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str]:
    """(database url, redis url or "")."""
    if request.param == "postgres":
        return request.getfixturevalue("pg_url"), request.getfixturevalue("redis_url")
    url = f"sqlite:///{tmp_path / 'wecom.db'}"
    upgrade(url)
    return url, ""


@dataclass
class Harness:
    bot: CareBot
    wecom: WeComAdapter
    memory: MemoryAdapter
    fake: FakeWeCom
    clock: ManualClock
    client: httpx.AsyncClient

    async def post(self, fields: dict[str, str], *, timestamp: int | None = None) -> httpx.Response:
        query, body = self.fake.callback(fields, timestamp=timestamp)
        return await self.client.post("/wecom/callback", params=query, content=body.encode())

    async def settle(self) -> None:
        for _ in range(5):
            await self.wecom.idle()
            await self.bot.settle()
            await self.wecom.idle()

    async def patient_says(self, user: str, text: str) -> None:
        self.fake.customer_says(KFID, user, text)
        response = await self.post(self.fake.kf_callback_fields(KFID))
        assert response.status_code == 200 and response.text == "success"
        await self.settle()

    async def keys(self, user: str) -> list[str]:
        """Content keys of what was delivered to this patient over kf, in order."""
        import json

        rows = await self.bot.store.read(lambda c: c.execute(sa.select(OUTBOX.c.payload).where(
            OUTBOX.c.conversation_id == f"default:wecom:{user}", OUTBOX.c.status == "sent").order_by(
            OUTBOX.c.id)).scalars().all())
        return [json.loads(p).get("key", "") for p in rows]


@pytest.fixture
def make_harness(fake: FakeWeCom, clock: ManualClock, backend: tuple[str, str]) -> Callable[..., Any]:
    built: list[Harness] = []

    async def make(**overrides: Any) -> Harness:
        url, redis_url = backend
        settings = replace(Settings(), database_url=url, redis_url=redis_url, flows_dir=ROOT / "flows",
                           content_dir=ROOT / "content", worker_id=f"w-{uuid.uuid4().hex[:4]}",
                           outbox_lease_seconds=5)
        wecom = WeComAdapter(wecom_config(fake, **overrides))
        memory = MemoryAdapter()
        coord = RedisCoord(redis_url, prefix=f"carebot-test-{uuid.uuid4().hex[:6]}:") if redis_url else MemoryCoord()
        bot = CareBot.build(settings, [memory, wecom], clock=clock, config=load_config(settings), coord=coord)
        bot.sender.backoff = 0.01
        await bot.start(background=False)
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=Starlette(routes=wecom.routes())),
                                   base_url="http://carebot.test")
        harness = Harness(bot, wecom, memory, fake, clock, client)
        built.append(harness)
        return harness

    yield make
    # each test stops its harnesses (inside its own event loop) with `stop`


async def stop(h: Harness) -> None:
    await h.settle()
    await h.client.aclose()
    await h.bot.stop()


def later(clock: ManualClock, **kw: float) -> None:
    clock.advance(timedelta(**kw))
