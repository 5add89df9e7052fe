"""Hand-off end to end in Chromium: a patient in the web chat asks for a person, consents and picks a
department; a doctor signs in to the console, sees the ticket arrive live, takes it and replies;
the patient sees the reply with the doctor's name; the doctor closes; the patient answers the
survey. A doctor of another department cannot open the ticket. Screenshots: test-artifacts/."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator

import pytest
import sqlalchemy as sa

from adapters.console import ConsoleAdapter
from bot.store.store import EVENT
from tests.browser.conftest import LiveServer, shot

pytestmark = pytest.mark.browser

PASSWORD = "correct horse battery"


@pytest.fixture
def server(tmp_path: Path, backend: tuple[str, str]) -> Iterator[LiveServer]:
    live = LiveServer(tmp_path, backend=backend)
    live.bot.adapters.add(ConsoleAdapter(live.settings))  # routes are collected when the server starts
    live.start()
    for staff_id, name, departments in (("d_li", "Dr Li", ["dermatology"]), ("d_gu", "Dr Gu", ["gynaecology"])):
        live.call(live.bot.handoff.add_staff(staff_id, name, "doctor", PASSWORD, title="Attending",
                                             departments=departments))
    yield live
    live.stop()


@pytest.fixture
def desk(browser: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A second browser context for staff, at laptop width (the patient's `page` is a phone)."""
    contexts: list[Any] = []

    def open_page() -> Any:
        context = browser.new_context(viewport={"width": 1280, "height": 860}, locale="en-US")
        context.set_default_timeout(10_000)
        contexts.append(context)
        return context.new_page()

    yield open_page
    for context in contexts:
        context.close()


def say(page: Any, text: str) -> None:
    box = page.get_by_role("textbox")
    box.fill(text)
    box.press("Enter")


def bot_says(page: Any, key: str) -> Any:
    message = page.locator(f'.cb-msg[data-key="{key}"]').last
    message.wait_for()
    return message


def click(page: Any, value: str) -> None:
    page.locator(f'.cb-msg:last-of-type .cb-choice[data-value="{value}"]').click()


def sign_in(page: Any, server: LiveServer, staff_id: str) -> None:
    page.goto(f"{server.url}/console/inbox")
    page.get_by_label("Staff ID").fill(staff_id)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="Inbox").wait_for()


def test_patient_handed_off_to_a_doctor_in_the_console_and_back(server: LiveServer, page: Any, desk: Any) -> None:
    doctor = desk()
    sign_in(doctor, server, "d_li")
    doctor.locator(".cb-live:not([hidden])").wait_for()  # the live feed is connected
    assert doctor.locator("tr[data-ticket]").count() == 0

    # the patient asks for a person, consents, picks a department
    page.goto(f"{server.url}/chat")
    say(page, "human")
    bot_says(page, "consent.ask_service")
    click(page, "yes")
    bot_says(page, "consent.ask_data")
    click(page, "yes")
    bot_says(page, "consent.ask_minor")
    click(page, "no")
    bot_says(page, "handoff.ask_department")
    click(page, "dermatology")
    queued = bot_says(page, "handoff.queued")  # Monday 17:00 in Shanghai (the pinned clock): open
    assert "expect a reply within about" in queued.inner_text()
    assert page.locator('.cb-msg[data-key="handoff.queued_after_hours"]').count() == 0
    shot(page, "e2e-01-patient-queued")

    # the ticket appears in the doctor's inbox without a reload
    row = doctor.locator("tr[data-ticket]")
    row.wait_for()
    ticket = row.get_attribute("data-ticket")
    assert "Dermatology" in row.inner_text()
    shot(doctor, "e2e-02-console-inbox")

    row.locator("a").first.click()
    doctor.get_by_role("button", name="Take").click()
    assert "You have the ticket" in doctor.locator(".cb-flash").inner_text()
    bot_says(page, "handoff.assigned")
    doctor.get_by_label("Reply to the patient").fill("Hello, I'm Dr Li. How long have you had the rash?")
    doctor.get_by_role("button", name="Send").click()
    assert "Reply sent" in doctor.locator(".cb-flash").inner_text()
    doctor.get_by_label("Internal note").fill("Looks like contact dermatitis")
    doctor.get_by_role("button", name="Save note").click()
    doctor.locator(".cb-msg-note", has_text="contact dermatitis").wait_for()
    shot(doctor, "e2e-03-console-thread")

    # the patient sees the doctor's reply, named; never the note
    reply = page.locator(".cb-staff", has_text="How long have you had the rash")
    reply.wait_for()
    assert reply.locator(".cb-who").inner_text() == "Dr Li Attending"
    shot(page, "e2e-04-patient-named-reply")

    # the patient answers; the doctor's thread refreshes itself
    say(page, "About three days, it itches a lot")
    doctor.locator(".cb-msg-patient", has_text="About three days").wait_for()

    doctor.on("dialog", lambda dialog: dialog.accept())  # "Close the ticket?"
    doctor.get_by_text("Transfer · escalate · close").click()
    doctor.get_by_role("button", name="Close the ticket").click()
    assert "satisfaction survey" in doctor.locator(".cb-flash").inner_text()

    # back with the bot: the survey
    bot_says(page, "survey.ask_recommend")
    click(page, "9")
    bot_says(page, "survey.ask_satisfaction")
    click(page, "5")
    bot_says(page, "survey.ask_comment")
    say(page, "Quick and clear, thank you")
    bot_says(page, "survey.thanks")
    assert page.get_by_text("contact dermatitis").count() == 0
    shot(page, "e2e-05-patient-survey-done")

    answers = server.call(server.bot.store.read(lambda c: c.execute(
        sa.select(EVENT.c.data).where(EVENT.c.kind == "survey")).scalars().all()))
    assert [json.loads(a)["answers"]["recommend"] for a in answers] == [9]
    assert json.loads(answers[0])["ticket_id"] == ticket

    doctor.goto(f"{server.url}/console/stats")
    assert doctor.locator('tr[data-department="dermatology"] [data-stat="nps"]').inner_text().startswith("+100")
    shot(doctor, "e2e-06-console-stats")

    # a doctor of another department cannot open the ticket
    other = desk()
    sign_in(other, server, "d_gu")
    response = other.goto(f"{server.url}/console/tickets/{ticket}")
    assert response.status == 403
    assert "another department" in other.locator(".cb-error").inner_text()
    assert other.get_by_text("How long have you had the rash").count() == 0
    shot(other, "e2e-07-other-department-403")


def test_the_console_is_usable_at_phone_width(server: LiveServer, page: Any) -> None:
    sign_in(page, server, "d_li")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390  # no sideways scrolling on a phone
    shot(page, "e2e-08-console-phone")


def test_at_night_the_patient_is_promised_the_morning_and_nothing_else(tmp_path: Path, page: Any) -> None:
    from datetime import timedelta

    from tests.browser.conftest import ticking_from
    from tests.conftest import T0

    live = LiveServer(tmp_path, clock=ticking_from(T0 + timedelta(hours=6)))  # Monday 23:00 in Shanghai
    live.start()
    try:
        page.goto(f"{live.url}/chat")
        say(page, "human")
        bot_says(page, "consent.ask_service")
        click(page, "yes")
        bot_says(page, "consent.ask_data")
        click(page, "yes")
        bot_says(page, "consent.ask_minor")
        click(page, "no")
        bot_says(page, "handoff.ask_department")
        click(page, "dermatology")
        queued = bot_says(page, "handoff.queued_after_hours")
        assert "after the clinic opens at 08:00" in queued.inner_text()
        shot(page, "e2e-night-queued-after-hours")
        texts = page.locator(".cb-msg").all_inner_texts()
        assert page.locator('.cb-msg[data-key="handoff.queued"]').count() == 0
        assert not any("please wait a moment" in t.lower() for t in texts)  # one promise, not two
    finally:
        live.stop()
