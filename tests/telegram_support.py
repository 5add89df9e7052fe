"""A carebot on Telegram against the fake Bot API on loopback, fed through one of three roads:

- `webhook`: the fake server POSTs each update to carebot's ASGI app (uvicorn on loopback), with the
  secret header `setWebhook` registered — as Telegram does;
- `aiogram`: a team's aiogram Dispatcher with `carebot_router` included gets the raw update;
- `ptb`: a team's python-telegram-bot Application with `CarebotHandler` added processes it.

Replies always go out through carebot's outbox to the fake server, which the tests read.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import uvicorn
from aiogram import Bot, Dispatcher
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from telegram import Update as PTBUpdate
from telegram.ext import Application

from adapters.telegram import TelegramAdapter, TelegramConfig
from adapters.telegram.config import Rate
from adapters.telegram.integrations import CarebotHandler, carebot_router
from adapters.telegram.testing import FakeBotAPI, Limits, Updates, Window
from bot.app import CareBot, load_config
from bot.clock import ManualClock
from bot.coord import MemoryCoord, make_coord
from bot.server import create_app
from bot.settings import Settings
from tests.conftest import ROOT, T0

SECRET = "s3cret-Token_for-tests"
BINDINGS = ("webhook", "aiogram", "ptb")
# generous limits for conversation tests (each has tests of its own)
ROOMY = Limits(overall=Window(1000, 1.0), per_chat=Window(100, 1.0), per_group=Window(100, 1.0))


@dataclass
class TG:
    fake: FakeBotAPI
    bot: CareBot
    adapter: TelegramAdapter
    updates: Updates
    binding: str
    clock: ManualClock
    _stop: list[Any] = field(default_factory=list)
    _feed: Any = None
    base_url: str = ""  # carebot's ASGI app (webhook binding)

    async def push(self, update: dict[str, Any]) -> Any:
        """Hand one update to carebot by this binding, then wait until the replies are delivered."""
        result = await self._feed(update)
        await self.bot.settle()
        await self.adapter.idle()
        await self.bot.settle()
        return result

    async def say(self, user: dict[str, Any], text: str, chat_id: int | None = None, **kw: Any) -> Any:
        return await self.push(self.updates.message(chat_id if chat_id is not None else user["id"], user, text, **kw))

    async def press(self, user: dict[str, Any], label_or_value: str, chat_id: int | None = None) -> Any:
        """Press the button (by label or value) of the newest message that shows it."""
        chat = chat_id if chat_id is not None else user["id"]
        for message in reversed(self.fake.messages(chat)):
            for button in message.buttons:
                if label_or_value in (button.get("text"), button.get("callback_data")):
                    return await self.push(self.updates.callback(user, message, button["callback_data"]))
        raise AssertionError(f"no button {label_or_value!r} in chat {chat}")

    def texts(self, chat_id: int) -> list[str]:
        return self.fake.texts(chat_id)

    async def close(self) -> None:
        for stop in reversed(self._stop):
            await stop()


async def open_tg(tmp_path: Path, binding: str, *, url: str | None = None, redis_url: str = "",
                  limits: Limits | None = None, config: dict[str, Any] | None = None, console: bool = False,
                  content_dir: Path | None = None, adapters: list[Any] | None = None, start: Any = T0) -> TG:
    """`console`: the staff console in the same app (webhook binding), for console ↔ topic tests;
    `content_dir` (e.g. with group policies) instead of the shipped content; `adapters` beside
    Telegram (a staff console stand-in, a pager); `start` the pinned clock's first instant."""
    fake = FakeBotAPI(limits=limits or ROOMY)
    await fake.start()
    if url is None:
        from bot.store.migrate import upgrade

        url = f"sqlite:///{tmp_path / f'tg-{uuid.uuid4().hex[:6]}.db'}"
        upgrade(url)
    settings = replace(Settings(), database_url=url, redis_url=redis_url, flows_dir=ROOT / "flows",
                       content_dir=content_dir or ROOT / "content", worker_id=f"tg-{uuid.uuid4().hex[:4]}",
                       secret="telegram-test-secret")
    tg_config = TelegramConfig(token=fake.token, webhook_secret=SECRET, api_base=fake.base_url,
                               **{"overall": Rate(1000, 1.0), "per_chat": Rate(100, 1.0),
                                  "per_group": Rate(100, 1.0), **(config or {})})
    adapter = TelegramAdapter(tg_config)
    clock = ManualClock(start)
    coord = make_coord(redis_url) if redis_url else MemoryCoord()
    extra: list[Any] = list(adapters or [])
    if console:  # the staff console in the same app (webhook binding), for console ↔ topic tests
        from adapters.console import ConsoleAdapter

        extra.append(ConsoleAdapter(settings))
    bot = CareBot.build(settings, [adapter, *extra], clock=clock, config=load_config(settings), coord=coord)
    tg = TG(fake, bot, adapter, Updates(fake, date=int(start.timestamp())), binding, clock)
    tg._stop.append(fake.stop)
    if binding == "webhook":
        # no background loops, as with the other bindings: the test moves the ManualClock and fires
        # timers with `tick` itself; a timer loop of the bot's own would claim them first, and `tick`
        # would return before they had run (their posts arriving in the middle of the next step)
        server = uvicorn.Server(uvicorn.Config(create_app(bot, background=False), host="127.0.0.1", port=0,
                                               log_level="warning", lifespan="on"))
        task = asyncio.create_task(server.serve())
        while not server.started:  # uvicorn offers no event to wait on: poll its flag
            if task.done():  # it could not start: say why instead of waiting for the test's timeout
                task.result()
                raise RuntimeError("uvicorn ended before it started")
            await asyncio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        tg.base_url = f"http://127.0.0.1:{port}"
        assert await adapter.bot.set_webhook(f"http://127.0.0.1:{port}{tg_config.webhook_path}",
                                             secret_token=SECRET)

        async def stop_server() -> None:
            server.should_exit = True
            await task

        tg._stop.append(stop_server)
        tg._feed = fake.push
        return tg
    await bot.start(background=False)
    tg._stop.append(bot.stop)
    if binding == "aiogram":
        team_bot = Bot(fake.token, session=AiohttpSession(api=TelegramAPIServer.from_base(fake.base_url)))
        dispatcher = Dispatcher()
        dispatcher.include_router(carebot_router(adapter))
        tg._stop.append(team_bot.session.close)

        async def feed(update: dict[str, Any]) -> Any:
            return await dispatcher.feed_raw_update(team_bot, update)

        tg._feed = feed
        return tg
    application = (Application.builder().token(fake.token).base_url(f"{fake.base_url}/bot")
                   .base_file_url(f"{fake.base_url}/file/bot").updater(None).build())
    application.add_handler(CarebotHandler(adapter))
    await application.initialize()
    tg._stop.append(application.shutdown)

    async def feed_ptb(update: dict[str, Any]) -> Any:
        return await application.process_update(PTBUpdate.de_json(update, application.bot))

    tg._feed = feed_ptb
    return tg
