"""The web chat adapter in-process: Starlette's TestClient drives the real app (real SQLite, the
shipped flows) over its WebSocket and HTTP API."""

from __future__ import annotations

import uuid
from contextlib import ExitStack
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

import pytest
import sqlalchemy as sa
from starlette.testclient import TestClient, WebSocketTestSession
from starlette.websockets import WebSocketDisconnect

from adapters import default_adapters
from adapters.console import ConsoleAdapter
from adapters.webchat import WebchatAdapter
from adapters.webchat.config import WebchatConfig
from adapters.webchat.log import MESSAGE, ChatLog
from adapters.webchat.media import sniff
from adapters.webchat.tokens import BadToken, TokenSigner
from bot.app import CareBot
from bot.server import create_app
from bot.settings import Settings
from bot.store.migrate import upgrade
from bot.store.store import Store
from bot.types import Address, Button, Inbound, Outbound
from tests.conftest import T0

ROOT = Path(__file__).resolve().parent.parent
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89" \
      b"\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\x00\x00\x00\x00IEND\xaeB`\x82"


class Chat:
    """One running app and what a test needs to reach into it."""

    def __init__(self, client: TestClient, bot: CareBot, adapter: WebchatAdapter):
        self.client, self.bot, self.adapter = client, bot, adapter
        self.sockets = ExitStack()  # every socket is closed before the app stops

    def connect(self, token: str = "", after: int = 0, **headers: str) -> tuple[WebSocketTestSession, dict[str, Any]]:
        ws = self.sockets.enter_context(self.client.websocket_connect("/webchat/ws", headers=dict(headers)))
        ws.send_json({"type": "hello", "token": token, "after": after})
        return ws, ws.receive_json()

    def call(self, fn: Any, *args: Any) -> Any:
        return self.client.portal.call(fn, *args)  # type: ignore[union-attr]

    def staff_reply(self, visitor: str, text: str, name: str) -> None:
        self.call(self.bot.runtime.handle, Inbound(
            kind="staff_reply", address=Address("webchat", visitor, visitor), message_id=uuid.uuid4().hex,
            received_at=datetime.now(timezone.utc), text=text, payload={"staff_id": "d7", "staff_name": name}))

    def rows(self, visitor: str) -> list[Any]:
        return self.call(self.bot.store.read, lambda c: c.execute(
            sa.select(MESSAGE).where(MESSAGE.c.conversation_id == f"default:webchat:{visitor}")
            .order_by(MESSAGE.c.seq)).all())


def settings_for(tmp_path: Path, database_url: str = "", redis_url: str = "") -> Settings:
    url = database_url or f"sqlite:///{tmp_path / 'webchat.db'}"
    if not database_url:
        upgrade(url)
    return replace(Settings(), database_url=url, redis_url=redis_url, flows_dir=ROOT / "flows",
                   content_dir=ROOT / "content", secret="test-secret-" + "x" * 20, worker_id=f"w-{uuid.uuid4().hex[:4]}")


@pytest.fixture
def chat_factory(tmp_path: Path, backend: tuple[str, str]) -> Iterator[Any]:
    opened: list[Chat] = []

    def make(**config: Any) -> Chat:
        settings = settings_for(tmp_path, *backend)
        adapter = WebchatAdapter(settings, replace(WebchatConfig(), media_dir=tmp_path / "media", **config))
        bot = CareBot.build(settings, [adapter])
        client = TestClient(create_app(bot), base_url="http://testserver")
        client.__enter__()
        opened.append(Chat(client, bot, adapter))
        return opened[-1]

    yield make
    for chat in opened:
        chat.sockets.close()
        chat.client.__exit__(None, None, None)


@pytest.fixture
def chat(chat_factory: Any) -> Chat:
    return chat_factory()


def receive_until(ws: WebSocketTestSession, predicate: Any, limit: int = 30) -> list[dict[str, Any]]:
    """Frames up to and including the first one matching `predicate`."""
    frames = []
    for _ in range(limit):
        frame = ws.receive_json()
        assert frame.get("code") != "server_error", frames + [frame]
        frames.append(frame)
        if predicate(frame):
            return frames
    raise AssertionError(f"no matching frame in {frames}")


def bot_message(key: str) -> Any:
    return lambda f: f.get("type") == "message" and f.get("key") == key


def test_a_patient_walks_the_menu_to_english(chat: Chat) -> None:
    ws, ready = chat.connect()
    assert ready["type"] == "ready" and ready["token"].startswith("v1.")
    ws.send_json({"type": "send", "id": "m1", "text": "/start", "locale": "zh-CN"})
    frames = receive_until(ws, bot_message("menu.ask"))
    echo = next(f for f in frames if f.get("sender") == "patient")
    assert echo["text"] == "/start" and echo["client_id"] == "m1" and echo["seq"] == 1
    menu = frames[-1]
    assert "language" in [b["value"] for b in menu["buttons"]]
    ws.send_json({"type": "send", "id": "m2", "text": "Language / 语言", "value": "language"})
    ask = receive_until(ws, bot_message("lang.ask"))[-1]
    assert [b["value"] for b in ask["buttons"]] == ["zh-CN", "en"]
    ws.send_json({"type": "send", "id": "m3", "text": "English", "value": "en"})
    done = receive_until(ws, bot_message("lang.done"))[-1]
    assert done["text"] == "OK, I'll talk with you in English from now on."
    seqs = [r.seq for r in chat.rows(ready["visitor"])]
    assert seqs == list(range(1, len(seqs) + 1))
    ws.close()


def test_reconnect_gets_what_was_missed_exactly_once(chat: Chat) -> None:
    ws, ready = chat.connect()
    ws.send_json({"type": "send", "id": "a", "text": "/start"})
    last = receive_until(ws, bot_message("menu.ask"))[-1]["seq"]
    ws.close()
    # the widget is closed: a doctor's reply is kept for its next visit
    chat.staff_reply(ready["visitor"], "您好，我是王医生。<b>请</b>上传报告", "王医生 主任医师")
    ws2, again = chat.connect(token=ready["token"], after=last)
    assert again["visitor"] == ready["visitor"]
    missed = ws2.receive_json()
    assert missed["seq"] == last + 1 and missed["sender"] == "staff:d7"
    assert missed["sender_name"] == "王医生 主任医师" and missed["text"] == "您好，我是王医生。<b>请</b>上传报告"
    # and an open widget gets the next one at once
    chat.staff_reply(ready["visitor"], "还在吗？", "王医生 主任医师")
    assert ws2.receive_json()["seq"] == last + 2
    ws2.close()


def test_a_resent_message_is_processed_once(chat: Chat) -> None:
    ws, ready = chat.connect()
    ws.send_json({"type": "send", "id": "same", "text": "/checkin"})
    receive_until(ws, bot_message("checkin.ask_feeling"))
    ws.send_json({"type": "send", "id": "same", "text": "/checkin"})  # a resend after a reconnect
    ws.send_json({"type": "ping"})  # answered after the resend's echo: the socket handles frames in order
    frames = receive_until(ws, lambda f: f["type"] == "pong")
    assert [f["seq"] for f in frames if f.get("client_id") == "same"][-1:] == [1], frames
    rows = chat.rows(ready["visitor"])
    assert [r.sender for r in rows] == ["patient", "bot"]
    ws.close()


def test_send_is_idempotent_on_the_key(chat: Chat) -> None:
    out = Outbound(op="say", address=Address("webchat", "vX", "vX"), text="hi", buttons=(Button("Yes", "yes"),))
    first = chat.call(chat.adapter.send, out, "carebot-outbox-1")
    again = chat.call(chat.adapter.send, out, "carebot-outbox-1")
    second = chat.call(chat.adapter.send, out, "carebot-outbox-2")
    assert first.ok and again.platform_message_id == first.platform_message_id
    assert [r.seq for r in chat.rows("vX")] == [1, 2] and second.platform_message_id.endswith("#2")


def test_bad_input_gets_an_error_and_the_socket_stays(chat_factory: Any) -> None:
    chat = chat_factory(max_text=50, visitor_rate=(3, 60.0))
    ws, _ = chat.connect()
    ws.send_json({"type": "send", "id": "long", "text": "x" * 51})
    assert ws.receive_json() == {"type": "error", "code": "too_long", "id": "long", "limit": 50}
    ws.send_text("not json")
    assert ws.receive_json()["code"] == "bad_request"
    ws.send_json({"type": "send", "id": "bad id!", "text": "hi"})
    assert ws.receive_json()["code"] == "bad_request"
    ws.send_json({"type": "send", "id": "blank", "text": "   "})
    assert ws.receive_json()["code"] == "empty"
    for n in range(3):
        ws.send_json({"type": "send", "id": f"ok{n}", "text": "你好"})
        receive_until(ws, lambda f: f.get("client_id") == f"ok{n}")
    ws.send_json({"type": "send", "id": "flood", "text": "你好"})
    limited = receive_until(ws, lambda f: f["type"] == "error")[-1]
    assert limited["code"] == "rate_limited" and limited["retry_after"] > 0
    ws.send_json({"type": "ping"})
    assert receive_until(ws, lambda f: f["type"] == "pong")
    ws.close()


def test_forged_and_expired_tokens_are_refused(chat: Chat) -> None:
    _, ready = chat.connect()
    visitor, issued, sig = ready["token"].split(".")[1:]
    forged = f"v1.vsomeoneelse.{issued}.{sig}"
    token = ready["token"]
    tampered = token[:-1] + ("A" if token[-1] != "A" else "B")  # always a different signature
    for bad in (forged, tampered, "garbage"):
        ws, frame = chat.connect(token=bad)
        assert frame == {"type": "error", "code": "bad_token", "id": ""}
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
        assert closed.value.code == 4401
    expired = TokenSigner("test-secret-" + "x" * 20, 90 * 86400).issue(datetime.now().timestamp() - 91 * 86400)
    _, frame = chat.connect(token=expired.token)
    assert frame["code"] == "bad_token"
    assert chat.client.post("/webchat/api/session", json={"token": forged}).status_code == 401
    assert chat.client.get("/webchat/api/poll?wait=0", headers={"Authorization": f"Bearer {forged}"}).status_code == 401
    renewed = chat.client.post("/webchat/api/session", json={"token": ready["token"]}).json()
    assert renewed["visitor"] == visitor


def test_token_signer_round_trip() -> None:
    signer = TokenSigner("s3cret", 3600)
    session = signer.issue(1000.0)
    assert signer.verify(session.token, 1500.0).visitor == session.visitor
    with pytest.raises(BadToken):
        signer.verify(session.token, 1000.0 + 3601)
    with pytest.raises(BadToken):
        TokenSigner("other", 3600).verify(session.token, 1500.0)


def test_origin_is_checked(chat_factory: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAREBOT_WEBCHAT_ORIGINS", "https://hospital.example.org, https://kiosk.example.org")
    chat = chat_factory(origins=WebchatConfig.from_env().origins)
    for origin in ("http://testserver", "https://hospital.example.org"):
        ws, frame = chat.connect(origin=origin)
        assert frame["type"] == "ready"
        ws.close()
    with pytest.raises(WebSocketDisconnect) as refused:
        chat.connect(origin="https://evil.example.com")
    assert refused.value.code == 4403
    assert chat.client.post("/webchat/api/session", json={}, headers={"origin": "https://evil.example.com"}).status_code == 403
    ok = chat.client.options("/webchat/api/send", headers={"origin": "https://kiosk.example.org"})
    assert ok.status_code == 204 and ok.headers["access-control-allow-origin"] == "https://kiosk.example.org"


def test_uploads_are_checked_by_content_and_served_only_to_their_conversation(chat_factory: Any) -> None:
    chat = chat_factory(max_upload_bytes=1024)
    ws, ready = chat.connect()
    auth = {"Authorization": f"Bearer {ready['token']}"}
    html = b"<html><script>alert(1)</script></html>"
    assert chat.client.post("/webchat/api/upload", content=html, headers={**auth, "content-type": "image/png"}) \
        .json()["code"] == "bad_type"
    too_big = chat.client.post("/webchat/api/upload", content=PNG + b"\0" * 2000, headers=auth)
    assert too_big.status_code == 413 and too_big.json()["code"] == "too_large"
    up = chat.client.post("/webchat/api/upload", content=PNG, headers=auth)
    assert up.status_code == 200 and up.json()["mime"] == "image/png"
    media_id = up.json()["id"]
    ws.send_json({"type": "send", "id": "pic", "text": "", "media": media_id})
    echo = receive_until(ws, lambda f: f.get("sender") == "patient")[-1]
    assert echo["media"] == {"id": media_id, "kind": "image", "mime": "image/png"}
    got = chat.client.get(f"/webchat/api/media/{media_id}", headers=auth)
    assert got.status_code == 200 and got.content == PNG and got.headers["x-content-type-options"] == "nosniff"
    sws, stranger = chat.connect()
    other = {"Authorization": f"Bearer {stranger['token']}"}
    assert chat.client.get(f"/webchat/api/media/{media_id}", headers=other).status_code == 404
    assert chat.client.get(f"/webchat/api/media/{media_id}").status_code == 404
    sws.send_json({"type": "send", "id": "steal", "media": media_id})  # someone else's upload
    assert sws.receive_json()["code"] == "bad_media"
    # the staff console's hook
    async def staff_only(request: Any, conversation_id: str) -> bool:
        return request.headers.get("x-staff") == "yes" and conversation_id.endswith(ready["visitor"])
    chat.adapter.staff_media_access = staff_only
    assert chat.client.get(f"/webchat/api/media/{media_id}", headers={"x-staff": "yes"}).status_code == 200
    ws.close()


def test_sniff_reads_magic_bytes_not_names() -> None:
    assert sniff(b"\xff\xd8\xff\xe0\x00\x10JFIF")[0] == "image/jpeg"  # type: ignore[index]
    assert sniff(b"RIFF\x00\x00\x00\x00WEBPVP8 ")[0] == "image/webp"  # type: ignore[index]
    assert sniff(b"%PDF-1.7\n")[0] == "application/pdf"  # type: ignore[index]
    assert sniff(b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>') is None
    assert sniff(b"GIF") is None


def test_http_fallback_send_and_long_poll(chat: Chat) -> None:
    session = chat.client.post("/webchat/api/session", json={}).json()
    auth = {"Authorization": f"Bearer {session['token']}"}
    sent = chat.client.post("/webchat/api/send", json={"id": "h1", "text": "/checkin", "locale": "en"}, headers=auth)
    assert sent.json() == {"type": "ack", "id": "h1", "seq": 1}
    polled = chat.client.get("/webchat/api/poll?after=1&wait=5", headers=auth).json()["messages"]
    assert polled[0]["key"] == "checkin.ask_feeling"
    assert [b["label"] for b in polled[0]["buttons"]] == [str(n) for n in range(11)]
    too_long = chat.client.post("/webchat/api/send", json={"id": "h2", "text": "x" * 3000}, headers=auth)
    assert too_long.status_code == 413 and too_long.json()["code"] == "too_long"
    assert chat.client.get("/webchat/api/poll?after=99&wait=0", headers=auth).json() == {"messages": []}


def test_an_over_long_message_that_tells_of_an_emergency_is_taken_not_refused(chat_factory: Any) -> None:
    """A long story that ends with the emergency is screened and answered, never refused unread; an
    over-long ordinary message is still refused (up to 6x the limit; beyond it, refused unread)."""
    chat = chat_factory(max_text=50)
    session = chat.client.post("/webchat/api/session", json={}).json()
    auth = {"Authorization": f"Bearer {session['token']}"}
    story = "we were at the park all afternoon and then had dinner, " \
            "now my dad's face is drooping and he can't lift his arm"
    assert 50 < len(story) <= 300
    sent = chat.client.post("/webchat/api/send", json={"id": "e1", "text": story, "locale": "en"}, headers=auth)
    assert sent.status_code == 200 and sent.json()["type"] == "ack"
    keys: list[str] = []
    after = 0
    for _ in range(10):  # the echo may come before the reply (PostgreSQL): poll until the reply is there
        polled = chat.client.get(f"/webchat/api/poll?after={after}&wait=5", headers=auth).json()["messages"]
        keys += [str(m.get("key", "")) for m in polled]
        after = max([after] + [int(m.get("seq", 0)) for m in polled])
        if any(k.startswith("triage.emergency") for k in keys):
            break
    assert any(k.startswith("triage.emergency") for k in keys), keys
    ordinary = chat.client.post("/webchat/api/send", json={
        "id": "e2", "text": "we were at the park all afternoon and then had a lovely dinner together", "locale": "en"},
        headers=auth)
    assert ordinary.status_code == 413 and ordinary.json()["code"] == "too_long"
    way_too_long = chat.client.post("/webchat/api/send", json={"id": "e3", "text": story * 7, "locale": "en"}, headers=auth)
    assert way_too_long.status_code == 413


def test_chat_page_and_widget_are_served(chat: Chat) -> None:
    home = chat.client.get("/", follow_redirects=False)
    assert home.status_code in (302, 307) and home.headers["location"] == "/chat"
    page = chat.client.get("/chat")
    assert page.status_code == 200 and "widget.js" in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    widget = chat.client.get("/widget.js")
    assert widget.status_code == 200 and widget.headers["content-type"].startswith("text/javascript")
    # message text only ever goes into the page as text
    assert ".innerHTML" not in widget.text and ".outerHTML" not in widget.text and "insertAdjacentHTML" not in widget.text
    assert chat.client.get("/webchat/widget.css").status_code == 200


def test_run_serves_the_web_chat(tmp_path: Path) -> None:
    adapters = default_adapters(settings_for(tmp_path))
    assert [type(a) for a in adapters] == [WebchatAdapter, ConsoleAdapter]


def test_config_reads_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CAREBOT_MEDIA_DIR", str(tmp_path / "m"))
    monkeypatch.setenv("CAREBOT_WEBCHAT_MAX_TEXT", "500")
    monkeypatch.setenv("CAREBOT_WEBCHAT_MAX_UPLOAD_MB", "2")
    config = WebchatConfig.from_env()
    assert (config.media_dir, config.max_text, config.max_upload_bytes) == (tmp_path / "m", 500, 2 * 1024 * 1024)
    assert config.origin_allowed("", "x") and config.origin_allowed("http://bot:8000", "bot:8000")
    assert not config.origin_allowed("http://evil", "bot:8000")
    monkeypatch.setenv("CAREBOT_WEBCHAT_MAX_TEXT", "lots")
    with pytest.raises(Exception, match="CAREBOT_WEBCHAT_MAX_TEXT"):
        WebchatConfig.from_env()


@pytest.mark.postgres
async def test_the_log_numbers_each_conversation_on_postgresql(pg_url: str) -> None:
    store = Store(pg_url, worker_id="w-log")
    log = ChatLog(store)
    try:
        first, new = await log.append("c1", "k1", "patient", {"text": "a"}, T0)
        second, _ = await log.append("c1", "k2", "bot", {"text": "b"}, T0)
        again, new_again = await log.append("c1", "k1", "patient", {"text": "a"}, T0)
        assert (first.seq, second.seq, again.seq, new, new_again) == (1, 2, 1, True, False)
        assert [e.seq for e in await log.after("c1", 0)] == [1, 2]
    finally:
        store.close()


@pytest.mark.postgres
async def test_concurrent_appends_on_postgresql_number_without_gaps_or_errors(pg_url: str) -> None:
    """Two workers with their writer threads each, many conversations, entries and resends at once:
    every append succeeds (a deadlock between workers is retried), each conversation is numbered
    1..n with no gap, and a resend returns its first number."""
    import asyncio

    from bot.metrics import WRITE_RETRIES

    stores = [Store(pg_url, worker_id=f"w-race{i}") for i in range(2)]
    logs = [ChatLog(store) for store in stores]
    retries_before = WRITE_RETRIES._value.get()
    try:
        convs = [f"c{i}" for i in range(8)]

        async def writer(k: int) -> None:  # as turns and the sender write, interleaved
            for n in range(50):
                c = convs[(k + n) % len(convs)]
                first, new = await logs[k % 2].append(c, f"{c}:{k}:{n}", "bot", {"text": "x"}, T0)
                if n % 7 == 0:  # a resend, from the other worker
                    again, new_again = await logs[(k + 1) % 2].append(c, f"{c}:{k}:{n}", "bot", {"text": "x"}, T0)
                    assert (again.seq, new, new_again) == (first.seq, True, False)

        await asyncio.gather(*[writer(k) for k in range(32)])
        for c in convs:
            entries = await logs[0].after(c, 0, limit=1000)
            assert [e.seq for e in entries] == list(range(1, 201))  # 32 writers × 50 / 8
        print("write batches retried:", WRITE_RETRIES._value.get() - retries_before)
    finally:
        for store in stores:
            store.close()


def test_only_a_committed_message_is_acknowledged(chat: Chat) -> None:
    """The database refuses the turn (a trigger, as a full disk or a lost primary would): the widget
    gets an error, no echo and nothing in the log — so it keeps the message and sends it again; the
    resend, once the database is back, is processed once and acknowledged."""
    if chat.bot.store.postgres:
        refuse = ("CREATE FUNCTION refuse() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'refused'; END $$ "
                  "LANGUAGE plpgsql; CREATE TRIGGER refuse BEFORE INSERT ON inbox FOR EACH ROW EXECUTE FUNCTION refuse()")
    else:
        refuse = "CREATE TRIGGER refuse BEFORE INSERT ON inbox BEGIN SELECT RAISE(ABORT, 'refused'); END"
    chat.call(chat.bot.store.write, lambda c: c.exec_driver_sql(refuse))
    session = chat.client.post("/webchat/api/session", json={}).json()
    auth = {"Authorization": f"Bearer {session['token']}"}
    ws, _ = chat.connect(token=session["token"])
    failed = chat.client.post("/webchat/api/send", json={"id": "k1", "text": "/checkin"}, headers=auth)
    assert failed.json()["code"] == "server_error"
    assert chat.rows(session["visitor"]) == []
    ws.send_json({"type": "ping"})
    assert ws.receive_json()["type"] == "pong"  # no echo came before it
    chat.call(chat.bot.store.write, lambda c: c.exec_driver_sql(
        "DROP TRIGGER refuse ON inbox" if chat.bot.store.postgres else "DROP TRIGGER refuse"))
    for _ in range(2):  # the widget's resend, and a second one after a lost ack
        sent = chat.client.post("/webchat/api/send", json={"id": "k1", "text": "/checkin"}, headers=auth)
        assert sent.json() == {"type": "ack", "id": "k1", "seq": 1}
    frames = receive_until(ws, bot_message("checkin.ask_feeling"))
    # one entry, seq 1 (a resend may push its echo again; the widget keeps one message per seq)
    assert {f["seq"] for f in frames if f.get("client_id") == "k1"} == {1}
    rows = chat.rows(session["visitor"])
    assert [r.sender for r in rows] == ["patient", "bot"]
    ws.close()
