"""Browser tests: the real app under uvicorn on a free loopback port, driven by the system Chromium
through Playwright. Without Chromium (or Playwright) they skip on a developer's machine and FAIL in
CI (CI=true), so a missing browser never turns into a silently green run."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import threading
import uuid
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any, Coroutine, Iterator

import pytest

from adapters.webchat import WebchatAdapter
from adapters.webchat.config import WebchatConfig
from bot.app import CareBot
from bot.clock import Clock, OffsetClock
from bot.server import create_app
from bot.settings import Settings
from bot.store.migrate import upgrade
from tests.conftest import T0

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("CAREBOT_ARTIFACTS", ROOT / "test-artifacts"))  # screenshots
CHROMIUM = os.environ.get("CAREBOT_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _missing(what: str) -> None:
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"{what} (CI=true: browser tests must run)")
    pytest.skip(what)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ticking_from(start: datetime) -> OffsetClock:
    """A server clock that reads `start` now and moves on in real time from there."""
    clock = OffsetClock()
    clock.offset = start - clock.now()
    return clock


class LiveServer:
    """carebot serving on 127.0.0.1 in a thread of its own; `call` runs a coroutine on its loop.

    The server's clock starts at a pinned time and then ticks (default T0, Monday 17:00 in Shanghai:
    in business hours, d_sun on call), so every test asserts one exact message whatever the hour it
    runs at, while messages still follow one another in time as they do in a clinic; a test of the
    night passes `ticking_from(...)` of its own. The browser keeps the real clock."""

    def __init__(self, tmp_path: Path, clock: Clock | None = None, backend: tuple[str, str] = ("", ""),
                 **config: Any):
        import uvicorn

        url, redis_url = backend
        if not url:
            url = f"sqlite:///{tmp_path / 'browser.db'}"
            upgrade(url)
        self.settings = replace(Settings(), database_url=url, redis_url=redis_url, flows_dir=ROOT / "flows", content_dir=ROOT / "content",
                                secret="browser-test-" + uuid.uuid4().hex, worker_id=f"b-{uuid.uuid4().hex[:4]}")
        self.adapter = WebchatAdapter(self.settings, replace(WebchatConfig(), media_dir=tmp_path / "media", **config))
        self.clock = clock or ticking_from(T0)
        self.bot = CareBot.build(self.settings, [self.adapter], clock=self.clock)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(create_app(self.bot), host="127.0.0.1", port=self.port,
                                                    log_level="warning", access_log=False))
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_until_complete, args=(self.server.serve(),), daemon=True)

    def start(self) -> LiveServer:
        self.thread.start()
        for _ in range(500):
            if self.server.started:
                return self
            threading.Event().wait(0.01)
        raise RuntimeError("uvicorn did not start")

    def call(self, coro: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=30)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


@pytest.fixture
def live_server(tmp_path: Path, backend: tuple[str, str]) -> Iterator[LiveServer]:
    server = LiveServer(tmp_path, backend=backend).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        _missing(f"Chromium not found at {CHROMIUM} (apt-get install -y chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("the playwright package is not installed")
    with sync_playwright() as pw:
        # The browser keeps the real clock when the suite runs under libfaketime (night-time runs of
        # `make test`): Chromium aborts on a faked CLOCK_REALTIME, and only the server's time matters.
        browser_env = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "FAKETIME")}
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, env=browser_env)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A fresh browser context (its own localStorage) at phone width; a screenshot on the way out."""
    context = browser.new_context(viewport={"width": 390, "height": 800}, locale="en-US")
    context.set_default_timeout(10_000)
    tab = context.new_page()
    yield tab
    ARTIFACTS.mkdir(exist_ok=True)
    try:
        tab.screenshot(path=str(ARTIFACTS / f"{request.node.name}-end.png"), full_page=True)
    finally:
        context.close()


def shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def wait_until(page: Any, expression: str, timeout: float = 15.0) -> None:
    """Poll a JavaScript expression until it is truthy. Playwright's `wait_for_function` re-evaluates a
    string with `new Function` in the page, which our Content-Security-Policy (script-src 'self')
    rightly refuses; `page.evaluate` goes through the debugging protocol instead."""
    import time

    deadline = time.monotonic() + timeout
    while not page.evaluate(expression):
        assert time.monotonic() < deadline, f"timed out waiting for: {expression}"
        page.wait_for_timeout(50)
