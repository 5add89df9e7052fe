"""A doctor's day and the widget fixes, in Chromium at desktop and at 390 px.

The patient opens the chat (greeted at once), goes through the intake, sends a photo and reloads
(the log is at the newest message, the old buttons are inert, a stale press gets the current question
again), switches to English (the bot answers in English). The doctor's inbox shows the new ticket live
with the patient's complaint, and a new urgent ticket is announced; the ticket page has the earlier bot
conversation, the photo inline (opened enlarged), the clinical summary; reply, note, close.
Screenshots: $CAREBOT_ARTIFACTS (test-artifacts/)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import pytest

from adapters.console import ConsoleAdapter
from tests.browser.conftest import LiveServer, shot, wait_until
from tests.browser.test_handoff_e2e import PASSWORD, bot_says, say, sign_in

pytestmark = pytest.mark.browser

WIDTHS = {"desktop": {"width": 1280, "height": 860}, "phone": {"width": 390, "height": 800}}


def png_bytes() -> bytes:
    """A small real PNG (a 2x2 red square) so the browser can draw it."""
    import struct
    import zlib

    raw = b"".join(b"\x00" + b"\xff\x00\x00" * 2 for _ in range(2))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xffffffff)

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 2, 2, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    live = LiveServer(tmp_path)
    live.bot.adapters.add(ConsoleAdapter(live.settings))
    live.start()
    live.call(live.bot.handoff.add_staff("d_li", "Dr Li", "doctor", PASSWORD, title="Attending",
                                         departments=["dermatology"]))
    live.call(live.bot.handoff.add_staff("admin", "Admin", "admin", PASSWORD))
    yield live
    live.stop()


def tab(browser: Any, width: str, locale: str = "en-US") -> Any:
    context = browser.new_context(viewport=WIDTHS[width], locale=locale)
    context.set_default_timeout(10_000)
    return context.new_page()


def press(page: Any, value: str) -> None:
    page.wait_for_timeout(500)  # a person's pace: the web chat allows 20 messages in 10 s per visitor
    page.locator(f'.cb-buttons:not(.cb-answered) .cb-choice[data-value="{value}"]').last.click()


def type_in(page: Any, text: str) -> None:
    page.wait_for_timeout(500)
    say(page, text)


def intake(page: Any) -> None:
    """From the greeting to the photo question, in Chinese."""
    press(page, "consult")
    bot_says(page, "consent.ask_service")
    press(page, "yes")
    bot_says(page, "consent.ask_data")
    press(page, "yes")
    bot_says(page, "consent.ask_minor")
    press(page, "no")
    bot_says(page, "intake.ask_need")
    press(page, "quick")
    bot_says(page, "intake.ask_complaint")
    type_in(page, "脸上长了很多痘痘，有点痒")
    bot_says(page, "intake.ask_duration")
    type_in(page, "两周")
    bot_says(page, "intake.ask_severity")
    press(page, "4")
    bot_says(page, "intake.ask_who")
    press(page, "self")
    bot_says(page, "intake.ask_age")
    type_in(page, "25")
    bot_says(page, "intake.ask_sex")
    type_in(page, "女")
    bot_says(page, "intake.ask_seen_offline")
    type_in(page, "没有")
    bot_says(page, "intake.ask_photos")


ROOT = ("(() => { const r = (document.querySelector('.carebot-host') || {}).shadowRoot || document;"
        " const m = r.querySelectorAll('.cb-msg:not(.cb-pending)');")
LOG_AT_BOTTOM = ("(() => { const root = (document.querySelector('.carebot-host') || {}).shadowRoot || document;"
                 " const log = root.querySelector('.cb-log');"
                 " return !!log && log.scrollHeight - log.scrollTop - log.clientHeight < 8; })()")


@pytest.mark.parametrize("width", ["desktop", "phone"])
def test_the_doctors_day_and_the_widget_fixes(server: LiveServer, browser: Any, width: str, tmp_path: Path) -> None:
    doctor = tab(browser, width)
    sign_in(doctor, server, "d_li")
    doctor.locator(".cb-live:not([hidden])").wait_for()

    patient = tab(browser, width, locale="zh-CN")
    patient.goto(f"{server.url}/chat")
    bot_says(patient, "menu.ask")  # greeted at once: no blank page
    shot(patient, f"day-{width}-01-greeted")
    intake(patient)

    photo = tmp_path / "rash.png"
    photo.write_bytes(png_bytes())
    patient.locator("input[type=file]").set_input_files(str(photo))
    patient.locator(".cb-msg.cb-patient img").first.wait_for()
    bot_says(patient, "intake.more_photos")
    wait_until(patient, LOG_AT_BOTTOM)
    shot(patient, f"day-{width}-02-photo")
    type_in(patient, "好了")
    bot_says(patient, "intake.confirm_department")

    # a reload: the newest message in view, old buttons inert, a stale press gets the current question
    patient.reload()
    bot_says(patient, "intake.confirm_department")
    wait_until(patient, LOG_AT_BOTTOM)
    assert patient.locator('.cb-msg[data-key="intake.ask_need"] .cb-choice').first.is_disabled()
    live_groups = patient.locator(".cb-buttons:not(.cb-answered)")
    assert live_groups.count() == 1  # the open question's own
    assert live_groups.first.locator("xpath=..").get_attribute("data-key") == "intake.confirm_department"
    shot(patient, f"day-{width}-03-reloaded")
    # a press of an answered question's button, as a page from before the reload would send it
    question = patient.locator('.cb-msg[data-key="intake.ask_who"]').get_attribute("data-question")
    assert question
    server.call(server.adapter.accept(_visitor(server, patient), {
        "type": "send", "id": "stale1", "text": "我", "value": "self", "question": question}))
    bot_says(patient, "repair.question_passed")
    wait_until(patient, ROOT + " return m.length > 0 && m[m.length - 1].getAttribute('data-key') === "
                        "'intake.confirm_department' && m[m.length - 2].getAttribute('data-key') === "
                        "'repair.question_passed'; })()")

    # the language switch: the open question again, in English, and English from now on
    patient.locator('.cb-lang-btn[data-locale="en"]').click()
    wait_until(patient, ROOT + " const t = m[m.length - 1]; return t.getAttribute('data-key') === "
                        "'intake.confirm_department' && t.querySelector('.cb-text').textContent.startsWith('From what you describe'); })()")
    press(patient, "yes")
    bot_says(patient, "intake.ask_change")
    assert patient.locator('.cb-msg[data-key="intake.ask_change"] .cb-text').last.inner_text().isascii()
    press(patient, "none")
    bot_says(patient, "expect.ask_confirm")
    press(patient, "yes")
    bot_says(patient, "intake.handoff_opened")
    shot(patient, f"day-{width}-04-handed-off-english")

    # the inbox: the patient, the complaint, waiting, live
    row = doctor.locator("tr[data-ticket]")
    row.wait_for()
    text = row.inner_text()
    assert "脸上长了很多痘痘" in text and "female" in text and "25 years" in text
    ticket = row.get_attribute("data-ticket")
    shot(doctor, f"day-{width}-05-inbox")

    # an urgent ticket arrives: the admin's inbox announces it live (an emergency also rings as a page)
    admin = tab(browser, width)
    sign_in(admin, server, "admin")
    admin.locator(".cb-live:not([hidden])").wait_for()
    urgent = tab(browser, width, locale="zh-CN")
    urgent.goto(f"{server.url}/chat")
    bot_says(urgent, "menu.ask")
    type_in(urgent, "我胸口剧痛，喘不上气，出冷汗")
    admin.locator(".cb-news.cb-news-urgent, .cb-alert").first.wait_for()
    admin.locator('tr[data-priority="urgent"]').first.wait_for()
    shot(admin, f"day-{width}-06-urgent-announced")

    # the ticket: the earlier bot conversation, the photo inline, the clinical summary
    doctor.goto(f"{server.url}/console/tickets/{ticket}")
    conversation = doctor.locator(".cb-msgs")
    assert conversation.locator(".cb-msg-bot").count() >= 10
    conversation.locator(".cb-divider").wait_for()
    thumb = conversation.locator("img.cb-thumb")
    thumb.wait_for()
    shot(doctor, f"day-{width}-07-ticket")
    wait_until(doctor, "document.querySelector('img.cb-thumb').naturalWidth === 2")
    summary = doctor.locator(".cb-summary").inner_text()
    for label in ("Complaint", "Since when", "Severity", "Age and sex", "Pregnancy", "Department (confidence)",
                  "Consent version", "Red flags"):
        assert label in summary
    assert "price_text" not in summary and "reply_sample" not in summary
    # what matters first: on a phone the summary is above the conversation, within the first screen
    top = doctor.evaluate("document.querySelector('.cb-summary').getBoundingClientRect().top + window.scrollY")
    conv_top = doctor.evaluate("document.querySelector('.cb-conv').getBoundingClientRect().top + window.scrollY")
    if width == "phone":
        assert top < conv_top and top < WIDTHS["phone"]["height"], (top, conv_top)
    shot(doctor, f"day-{width}-07-ticket")
    thumb.click()
    doctor.locator("dialog.cb-lightbox[open] img").wait_for()
    shot(doctor, f"day-{width}-08-photo-enlarged")
    doctor.keyboard.press("Escape")

    doctor.get_by_role("button", name="Take").click()
    doctor.get_by_label("Reply to the patient").fill("Hello, I'm Dr Li. Which products do you use on your face?")
    doctor.get_by_role("button", name="Send").click()
    assert "Reply sent" in doctor.locator(".cb-flash").inner_text()
    doctor.get_by_label("Internal note").fill("Acne vulgaris likely; ask about cosmetics")
    doctor.get_by_role("button", name="Save note").click()
    doctor.locator(".cb-msg-note", has_text="Acne vulgaris").wait_for()
    patient.locator(".cb-staff", has_text="Which products").wait_for()
    doctor.on("dialog", lambda dialog: dialog.accept())
    doctor.get_by_text("Transfer · escalate · close").click()
    doctor.get_by_role("button", name="Close the ticket").click()
    assert "satisfaction survey" in doctor.locator(".cb-flash").inner_text()
    bot_says(patient, "survey.ask_recommend")
    assert patient.get_by_text("Acne vulgaris").count() == 0
    shot(doctor, f"day-{width}-09-closed")
    for p in (doctor, patient, urgent, admin):
        p.context.close()


def _visitor(server: LiveServer, page: Any) -> Any:
    """The patient page's visitor, from its stored token (what a stale page would send with)."""
    from adapters.webchat.adapter import Visitor

    token = page.evaluate("(() => { for (let i = 0; i < localStorage.length; i++) { const k = localStorage.key(i);"
                          " if (k.endsWith(':token')) return localStorage.getItem(k); }"
                          " return null; })()")
    assert token
    visitor = server.call(server.adapter.check(token, "127.0.0.1"))
    assert isinstance(visitor, Visitor)
    return visitor
