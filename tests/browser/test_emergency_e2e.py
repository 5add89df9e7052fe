"""An emergency end to end in Chromium: a patient writes that her father collapsed and is not breathing;
the web chat shows the emergency reply in its emergency style with a tap-to-call link for the region's
ambulance number (tel:120), then what to do while waiting (hands-only CPR). The on-call doctor's
console sounds and shows the alert; the patient is told the doctor was alerted, and once the doctor
acknowledges, that "Dr Sun has seen your message". Screenshots at phone and desktop width:
$CAREBOT_ARTIFACTS (default test-artifacts/)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import pytest

from adapters.console import ConsoleAdapter
from bot.clock import ManualClock
from tests.browser.conftest import LiveServer, shot, wait_until
from tests.conftest import T0

pytestmark = pytest.mark.browser

PASSWORD = "correct horse battery"
# counts the console's beeps: every oscillator started is one
COUNT_BEEPS = """
window.__beeps = 0;
const Real = window.AudioContext || window.webkitAudioContext;
if (Real) {
  window.AudioContext = function () {
    const ctx = new Real();
    const make = ctx.createOscillator.bind(ctx);
    ctx.createOscillator = function () {
      const osc = make();
      const start = osc.start.bind(osc);
      osc.start = function (...a) { window.__beeps += 1; return start(...a); };
      return osc;
    };
    return ctx;
  };
}
"""


@pytest.fixture
def server(tmp_path: Path, backend: tuple[str, str]) -> Iterator[LiveServer]:
    live = LiveServer(tmp_path, clock=ManualClock(T0), backend=backend)  # Monday 17:00 in Shanghai: d_sun is on call
    live.bot.adapters.add(ConsoleAdapter(live.settings))
    live.start()
    live.call(live.bot.handoff.add_staff("d_sun", "Dr Sun", "doctor", PASSWORD, title="Attending",
                                         departments=["emergency"]))
    yield live
    live.stop()


@pytest.fixture
def desk(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 860}, locale="en-US")
    context.set_default_timeout(10_000)
    context.add_init_script(COUNT_BEEPS)
    yield context.new_page()
    context.close()


def test_emergency_reaches_the_on_call_doctor_and_the_patient_sees_each_step(
        server: LiveServer, page: Any, desk: Any) -> None:
    desk.goto(f"{server.url}/console/inbox")
    desk.get_by_label("Staff ID").fill("d_sun")
    desk.get_by_label("Password").fill(PASSWORD)
    desk.get_by_role("button", name="Sign in").click()
    desk.get_by_role("heading", name="Inbox").wait_for()
    desk.locator(".cb-live:not([hidden])").wait_for()
    assert "Dr Sun" in desk.locator(".cb-oncall").inner_text()
    assert desk.locator(".cb-alert").count() == 0

    page.goto(f"{server.url}/chat")
    box = page.get_by_role("textbox")
    box.fill("My dad collapsed and he is not breathing")
    box.press("Enter")

    # the emergency reply: its own style, the number as a tap-to-call link
    reply = page.locator('.cb-msg.cb-emergency[data-key="triage.emergency_ambulance"]')
    reply.wait_for()
    assert "120" in reply.locator(".cb-text").inner_text()
    assert reply.locator(".cb-urgent").inner_text() == "⚠ Emergency"
    call = reply.get_by_role("link", name="Call 120")
    assert call.get_attribute("href") == "tel:120"
    box_of_call = call.bounding_box()
    assert box_of_call["height"] >= 44 and box_of_call["width"] >= 120  # easy to hit with a thumb

    # what to do while waiting, right after it
    guidance = page.locator('.cb-msg.cb-guidance[data-guidance="not_breathing"]')
    guidance.wait_for()
    text = guidance.locator(".cb-text").inner_text()
    assert "stay on the line with 120" in text and "Source: American Heart Association" in text
    assert reply.evaluate("(n, g) => !!(n.compareDocumentPosition(g) & Node.DOCUMENT_POSITION_FOLLOWING)",
                          guidance.element_handle())
    assert guidance.locator(".cb-sources a").first.get_attribute("href").startswith("https://cpr.heart.org/")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # nothing wider than the phone
    # however far the conversation scrolls, the number stays in reach above it
    bar = page.locator(".cb-sos").get_by_role("link", name="Call 120")
    assert bar.is_visible() and bar.get_attribute("href") == "tel:120"
    shot(page, "emergency-01-patient-phone")

    # the console: an alert that sounds until acknowledged
    alert = desk.locator(".cb-alert")
    alert.wait_for()
    assert "Emergency" in alert.inner_text()
    wait_until(desk, "window.__beeps > 0")
    shot(desk, "emergency-02-console-alert")

    # the alert was displayed: the patient hears so (and only now)
    page.locator('.cb-msg[data-key="paging.delivered"]').wait_for()
    assert page.locator('.cb-msg[data-key="paging.acknowledged"]').count() == 0

    desk.get_by_role("button", name="Acknowledge").click()
    assert "Acknowledged" in desk.locator(".cb-flash").inner_text()
    shot(desk, "emergency-03-console-acknowledged")

    seen = page.locator('.cb-msg[data-key="paging.acknowledged"]')
    seen.wait_for()
    assert seen.locator(".cb-text").inner_text().startswith("Dr Sun")
    assert page.locator(".cb-sos").get_by_role("link", name="Call 120").is_visible()
    shot(page, "emergency-04-patient-acknowledged-phone")

    page.get_by_role("button", name="中文").click()  # the widget's own words follow the switch
    assert page.locator(".cb-sos .cb-call").first.inner_text() == "拨打 120"
    page.get_by_role("button", name="EN").click()
    page.set_viewport_size({"width": 1280, "height": 900})
    reply.scroll_into_view_if_needed()
    shot(page, "emergency-05-patient-desktop")
