"""The statistics page in Chromium at a laptop's and a phone's width, on known data at a pinned
clock: the funnel tables, the six trend charts and the CSV links are there and nothing overflows the
phone's screen. Screenshots: test-artifacts/stats-desktop.png, stats-390.png."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from adapters.console import ConsoleAdapter
from bot.clock import ManualClock
from tests.browser.conftest import LiveServer, shot, wait_until
from tests.browser.test_handoff_e2e import PASSWORD, sign_in
from tests.test_funnel import D, H, T0, _seed

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("width", [1280, 390])
def test_statistics_page_at_desktop_and_phone_width(browser: Any, tmp_path: Path, width: int) -> None:
    live = LiveServer(tmp_path, clock=ManualClock(T0 + 6 * D + 3 * H))  # Sunday 2026-03-08 20:00 in Shanghai
    live.bot.adapters.add(ConsoleAdapter(live.settings))
    live.start()
    try:
        live.call(live.bot.handoff.add_staff("ops", "Operator", "operator", PASSWORD))
        live.call(live.bot.store.write(_seed))
        context = browser.new_context(viewport={"width": width, "height": 900}, locale="en-US")
        context.set_default_timeout(10_000)
        page = context.new_page()
        sign_in(page, live, "ops")
        page.goto(f"{live.url}/console/stats?days=7")
        page.get_by_role("heading", name="Care funnel").wait_for()
        assert page.locator("svg.cb-line-chart").count() == 6
        assert page.locator('table[data-funnel="department"] tr[data-group="dermatology"] td[data-step="came_back"]') \
            .inner_text().replace("\n", " ") == "1 50%"
        assert page.get_by_role("link", name="Export funnel (CSV)").get_attribute("href") == \
            "/console/stats/export.csv?what=funnel&days=7"
        wait_until(page, "document.documentElement.scrollWidth <= window.innerWidth + 1")  # no sideways scroll
        shot(page, "stats-desktop" if width > 500 else "stats-390")
        context.close()
    finally:
        live.stop()
