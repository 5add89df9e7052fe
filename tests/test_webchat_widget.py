"""The web chat's side of the widget fixes: a first open is greeted (once per visitor), the language
switch changes the bot's language (and asks the open question again in it), and a button of an
earlier question is never taken as an answer to the current one."""

from __future__ import annotations

from tests.test_webchat import Chat, bot_message, chat, chat_factory, receive_until  # noqa: F401 (fixtures)


def test_the_first_open_is_greeted_once(chat: Chat) -> None:  # noqa: F811
    ws, ready = chat.connect()
    ws.send_json({"type": "open", "locale": "en"})
    frames = receive_until(ws, bot_message("menu.ask"))
    assert [f.get("key") for f in frames if f.get("type") == "message"] == ["menu.welcome", "menu.ask"]
    assert frames[0]["text"].startswith("Hello, I'm the care assistant")  # in the language the widget asked for
    assert not any(f.get("sender") == "patient" for f in frames)  # nothing the patient did not write
    ws.close()
    again, _ = chat.connect(ready["token"], after=2)
    again.send_json({"type": "open", "locale": "en"})
    again.send_json({"type": "ping"})
    assert receive_until(again, lambda f: f.get("type") == "pong") == [{"type": "pong"}]  # no second greeting
    assert len(chat.rows(ready["visitor"])) == 2


def test_the_language_switch_changes_the_bot_language(chat: Chat) -> None:  # noqa: F811
    ws, ready = chat.connect()
    ws.send_json({"type": "open", "locale": "zh-CN"})
    menu = receive_until(ws, bot_message("menu.ask"))[-1]
    assert "请" in menu["text"] or "您" in menu["text"]
    ws.send_json({"type": "locale", "locale": "en"})
    frames = receive_until(ws, bot_message("menu.ask"))
    said = [f for f in frames if f.get("type") == "message" and f.get("sender") != "patient"]
    # the not-a-doctor / emergency notice first (the welcome was in Chinese), then the open question
    assert [f.get("key") for f in said] == ["common.locale_switched", "menu.ask"]
    assert said[0]["text"].isascii() and "not a doctor" in said[0]["text"] and "120" in said[0]["text"]
    again = said[-1]  # the open question, in English now
    assert again["text"].isascii() and again["buttons"][0]["label"].isascii()
    ws.send_json({"type": "send", "id": "m1", "text": "help"})
    reply = receive_until(ws, lambda f: f.get("type") == "message" and f.get("sender") != "patient")[-1]
    assert reply["text"].isascii()
    ws.send_json({"type": "locale", "locale": "<script>"})  # not a language: ignored
    ws.send_json({"type": "ping"})
    assert receive_until(ws, lambda f: f.get("type") == "pong")[-1] == {"type": "pong"}


def test_a_stale_button_gets_the_question_again_not_an_answer(chat: Chat) -> None:  # noqa: F811
    ws, ready = chat.connect()
    ws.send_json({"type": "open", "locale": "en"})
    menu = receive_until(ws, bot_message("menu.ask"))[-1]
    assert menu["question"].startswith("start#")
    ws.send_json({"type": "send", "id": "m1", "text": "Consult", "value": "consult", "question": menu["question"]})
    frames = receive_until(ws, lambda f: f.get("type") == "message" and f.get("question", menu["question"])
                           != menu["question"])
    current = frames[-1]
    # the menu's buttons again, pressed after a reload: "that question has passed" and the current question
    ws.send_json({"type": "send", "id": "m2", "text": "Talk to a person", "value": "human", "question": menu["question"]})
    frames = receive_until(ws, lambda f: f.get("type") == "message" and f.get("key") == current["key"])
    keys = [f.get("key") for f in frames if f.get("type") == "message" and f.get("sender") != "patient"]
    assert keys == ["repair.question_passed", current["key"]], keys
    assert frames[-1]["question"] == current["question"]
    # the current question's own button still answers it
    value = current["buttons"][0]["value"]
    ws.send_json({"type": "send", "id": "m3", "text": "x", "value": value, "question": current["question"]})
    answer = receive_until(ws, lambda f: f.get("type") == "message" and f.get("sender") != "patient")[-1]
    assert answer.get("key") not in ("repair.question_passed", current["key"])


def test_switching_to_chinese_after_an_english_welcome_gives_the_notice_in_chinese(chat: Chat) -> None:  # noqa: F811
    ws, ready = chat.connect()
    ws.send_json({"type": "open", "locale": "en"})
    receive_until(ws, bot_message("menu.ask"))
    ws.send_json({"type": "locale", "locale": "zh-CN"})
    frames = receive_until(ws, bot_message("menu.ask"))
    said = [f for f in frames if f.get("type") == "message" and f.get("sender") != "patient"]
    assert [f.get("key") for f in said] == ["common.locale_switched", "menu.ask"]
    assert "不是医生" in said[0]["text"] and "120" in said[0]["text"]
    assert "请" in said[1]["text"] or "您" in said[1]["text"]
    ws.send_json({"type": "locale", "locale": "zh-CN"})  # the same language again: nothing to repeat
    ws.send_json({"type": "ping"})
    assert receive_until(ws, lambda f: f.get("type") == "pong") == [{"type": "pong"}]
