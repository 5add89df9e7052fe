"""A patient in Chromium at /chat: shipped flows by typing and by buttons, reload, reconnect, abuse."""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from bot.types import Address, Inbound
from tests.browser.conftest import LiveServer, shot, wait_until

pytestmark = pytest.mark.browser

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89" \
      b"\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\x00\x00\x00\x00IEND\xaeB`\x82"


def say(page: Any, text: str) -> None:
    box = page.get_by_role("textbox")
    box.fill(text)
    box.press("Enter")


def bot(page: Any, key: str) -> Any:
    return page.locator(f'.cb-msg[data-key="{key}"]').last


def click(page: Any, value: str) -> None:
    page.locator(f'.cb-msg:last-of-type .cb-choice[data-value="{value}"]').click()


def visitor_of(page: Any, server: LiveServer) -> str:
    token = page.evaluate(f"localStorage.getItem('carebot.webchat:{server.url}:token')")
    return token.split(".")[1]


def staff_reply(server: LiveServer, visitor: str, text: str, name: str) -> None:
    server.call(server.bot.runtime.handle(Inbound(
        kind="staff_reply", address=Address("webchat", visitor, visitor), message_id=uuid.uuid4().hex,
        received_at=datetime.now(timezone.utc), text=text, payload={"staff_id": "d7", "staff_name": name})))


def seqs(page: Any) -> list[int]:
    return [int(s) for s in page.locator(".cb-msg[data-seq]").evaluate_all(
        "nodes => nodes.map(n => n.getAttribute('data-seq'))")]


def test_menu_to_english_by_buttons(live_server: LiveServer, page: Any) -> None:
    page.goto(f"{live_server.url}/chat")
    page.get_by_role("button", name="中文").click()
    assert page.get_by_role("textbox").get_attribute("placeholder") == "输入消息…"
    say(page, "/start")
    bot(page, "menu.ask").wait_for()
    shot(page, "menu-zh")
    click(page, "language")
    bot(page, "lang.ask").wait_for()
    click(page, "en")
    done = bot(page, "lang.done")
    done.wait_for()
    assert done.locator(".cb-text").inner_text() == "OK, I'll talk with you in English from now on."
    assert page.locator(".cb-patient").count() == 3  # /start, the two button presses, each shown once
    assert page.get_by_role("log").get_attribute("aria-live") == "polite"
    shot(page, "menu-to-english")


def test_checkin_by_typing_and_buttons_then_reload_continues(live_server: LiveServer, page: Any) -> None:
    page.goto(f"{live_server.url}/chat")
    say(page, "/checkin")
    scale = bot(page, "checkin.ask_feeling")
    scale.wait_for()
    assert scale.locator(".cb-choice").all_inner_texts() == [str(n) for n in range(11)]
    click(page, "7")
    bot(page, "checkin.ask_new_symptoms").wait_for()
    click(page, "yes")
    bot(page, "checkin.ask_describe").wait_for()
    say(page, "Ankle a bit swollen since yesterday")
    bot(page, "checkin.thanks").wait_for()
    before = seqs(page)
    assert before == list(range(1, len(before) + 1))
    shot(page, "checkin-done")

    page.reload()
    bot(page, "checkin.thanks").wait_for()
    wait_until(page, f"document.querySelector('[data-carebot]').shadowRoot"
                     f".querySelectorAll('.cb-msg[data-seq]').length >= {len(before)}")
    # the same conversation, each message once (a message that was still on its way when `before`
    # was read may have arrived meanwhile)
    shown = seqs(page)
    assert shown[:len(before)] == before and shown == list(range(1, len(shown) + 1))
    before = shown
    menus = page.evaluate("document.querySelector('[data-carebot]').shadowRoot"
                          ".querySelectorAll('.cb-msg[data-key=\"menu.ask\"]').length")
    say(page, "/start")
    # the menu once more (one came with the greeting on the first open): wait for the new one
    wait_until(page, "document.querySelector('[data-carebot]').shadowRoot"
                     f".querySelectorAll('.cb-msg[data-key=\"menu.ask\"]').length >= {menus + 1}")
    wait_until(page, "document.querySelector('[data-carebot]').shadowRoot"
                     f".querySelectorAll('.cb-msg[data-seq]').length > {len(before)}")
    after = seqs(page)
    assert after == list(range(1, len(after) + 1)) and len(after) > len(before)
    shot(page, "checkin-after-reload")


def test_messages_sent_while_the_socket_was_down_arrive_once(live_server: LiveServer, page: Any) -> None:
    state: dict[str, Any] = {"blocked": False, "open": []}

    def route(ws: Any) -> None:
        if state["blocked"]:
            ws.close()
            return
        state["open"].append((ws, ws.connect_to_server()))

    page.route_web_socket(re.compile(r".*/webchat/ws$"), route)
    page.goto(f"{live_server.url}/chat")
    say(page, "/start")
    # acknowledged (the greeting on the first open already brought a menu, so that is no sign)
    page.locator(".cb-patient", has_text="/start").locator("time").wait_for()
    visitor = visitor_of(page, live_server)

    state["blocked"] = True  # the connection drops (a lift, a tunnel, a flaky clinic Wi-Fi)
    for client_side, server_side in state["open"]:
        server_side.close()
        client_side.close()
    page.locator(".cb-shell[data-connected=false]").wait_for()
    say(page, "hello while offline")
    page.locator(".cb-pending", has_text="hello while offline").wait_for()
    staff_reply(live_server, visitor, "您好，我是王医生，请问哪里不舒服？", "王医生 主任医师")
    shot(page, "offline")

    state["blocked"] = False
    doctor = page.locator(".cb-staff")
    # the widget reconnects with a jittered backoff (up to 30 s × 1.5, widget.js): the longer the
    # connection stayed down on a slow machine, the longer its next try may wait
    doctor.wait_for(timeout=60_000)
    page.locator(".cb-patient", has_text="hello while offline").locator("time").wait_for()
    page.wait_for_timeout(500)  # anything doubled would have arrived by now
    assert doctor.count() == 1
    assert doctor.locator(".cb-who").inner_text() == "王医生 主任医师"
    assert doctor.locator(".cb-badge").inner_text().endswith("A doctor is replying")
    assert page.locator(".cb-patient", has_text="hello while offline").count() == 1
    assert page.locator(".cb-pending").count() == 0
    found = seqs(page)
    assert found == list(range(1, len(found) + 1))
    shot(page, "reconnected-doctor-reply")


def test_an_xss_payload_renders_as_text(live_server: LiveServer, page: Any) -> None:
    page.goto(f"{live_server.url}/chat")
    payloads = ['<img src=x onerror="window.__xss=1">', "<script>window.__xss=2</script>"]
    for payload in payloads:
        say(page, payload)
    for payload in payloads:
        page.locator(".cb-patient[data-seq] .cb-text", has_text=payload).wait_for()
    visitor = visitor_of(page, live_server)
    staff_reply(live_server, visitor, '<img src=x onerror="window.__xss=3"> 医生', "<b>Dr</b>")
    page.locator(".cb-staff").wait_for()
    page.wait_for_timeout(300)
    assert page.evaluate("window.__xss") is None
    assert page.locator(".cb-log img").count() == 0
    assert page.locator(".cb-staff .cb-who").inner_text() == "<b>Dr</b>"
    shot(page, "xss-as-text")


def test_oversized_and_wrong_uploads_get_clear_errors(tmp_path: Path, page: Any) -> None:
    server = LiveServer(tmp_path, max_upload_bytes=4096).start()
    try:
        page.goto(f"{server.url}/chat")
        say(page, "hi")
        page.locator(".cb-patient[data-seq]").wait_for()
        alert = page.get_by_role("alert")

        page.get_by_role("textbox").fill("x" * 2001)
        page.get_by_role("textbox").press("Enter")
        page.locator('.cb-alert[data-code="too_long"]').wait_for()  # the server's answer now
        assert "too long" in alert.inner_text()

        page.get_by_role("button", name="中文").click()
        files = page.locator("input[type=file]")
        files.set_input_files({"name": "big.png", "mimeType": "image/png", "buffer": PNG + b"\0" * 5000})
        assert alert.inner_text() == "文件太大了（最大 4 KB），请压缩后再试。"
        files.set_input_files({"name": "report.png", "mimeType": "image/png", "buffer": b"<html>not a picture</html>"})
        page.locator('.cb-alert[data-code="bad_type"]').wait_for()
        assert "只能上传图片" in alert.inner_text()

        files.set_input_files({"name": "skin.png", "mimeType": "image/png", "buffer": PNG})
        image = page.locator(".cb-patient[data-seq] img.cb-img")
        image.wait_for()
        wait_until(page, "document.querySelector('[data-carebot]').shadowRoot"
                   ".querySelector('img.cb-img').src.startsWith('blob:')")
        assert page.get_by_role("textbox").is_enabled()  # the connection stays up
        say(page, "/start")
        bot(page, "menu.ask").wait_for()
        shot(page, "upload-errors-zh")
    finally:
        server.stop()
