""""Forget me" forgets everything: a marker text and a photo go through every path a patient has
(web chat, the intake complaint and photo, a hand-off thread, the survey, the complaint flow); after
the erasure no table (every column, found by reflection) and no file under the media directory holds
the marker, and the old visitor token reads nothing. On SQLite and on PostgreSQL."""

from __future__ import annotations

import functools
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any, Iterator

import pytest
import sqlalchemy as sa
from starlette.testclient import TestClient

from adapters.webchat import WebchatAdapter
from adapters.webchat.config import WebchatConfig
from bot.app import CareBot
from bot.clock import ManualClock
from bot.coord import MemoryCoord
from bot.server import create_app
from bot.settings import Settings
from bot.store.db import make_engine
from bot.store.migrate import upgrade
from tests.conftest import ROOT, T0

MARKER = "MARKER-7f3a-胸口的痣"
TRACE = MARKER[:11]  # its ASCII part: found however a column escapes the rest (JSON \uXXXX)
# a real PNG with the marker after its end: the file itself holds patient data
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89" \
      b"\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\x00\x00\x00\x00IEND\xaeB`\x82" \
      + MARKER.encode()


class Patient:
    """A browser on the web chat's HTTP API, and the bot behind it."""

    def __init__(self, client: TestClient, bot: CareBot, media_dir: Path):
        self.client, self.bot, self.media_dir = client, bot, media_dir
        self.token = client.post("/webchat/api/session", json={}).json()["token"]
        self.n = 0
        self.seen = 0
        self.keys: list[str] = []

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def call(self, fn: Any, *args: Any, **kw: Any) -> Any:
        return self.client.portal.call(functools.partial(fn, *args, **kw))  # type: ignore[union-attr]

    def send(self, text: str = "", *, value: str | None = None, media: str | None = None,
             read: bool = True) -> list[str]:
        """Send one message; returns the content keys of the bot's replies to it."""
        self.n += 1
        frame: dict[str, Any] = {"id": f"c{self.n}", "text": text, "locale": "zh-CN"}
        if value is not None:
            frame["value"] = value
        if media is not None:
            frame["media"] = media
        reply = self.client.post("/webchat/api/send", json=frame, headers=self.auth).json()
        assert reply["type"] == "ack", reply
        return self.read() if read else []

    def read(self) -> list[str]:
        self.call(self.bot.handoff.idle)  # dispatch runs after the turn's commit
        self.call(self.bot.sender.idle)
        frames = self.client.get(f"/webchat/api/poll?after={self.seen}&wait=0", headers=self.auth).json()["messages"]
        if frames:
            self.seen = frames[-1]["seq"]
        keys = [f.get("key") or f["sender"] for f in frames if f["sender"] != "patient"]
        self.keys.extend(keys)
        return keys

    def upload(self) -> str:
        return self.client.post("/webchat/api/upload", content=PNG, headers=self.auth).json()["id"]


def holding_marker(url: str) -> dict[str, list[str]]:
    """Every table and column (reflected from the database, not from our models) holding the marker."""
    engine = make_engine(url)
    found: dict[str, list[str]] = {}
    try:
        metadata = sa.MetaData()
        metadata.reflect(engine)
        with engine.connect() as conn:
            for table in metadata.sorted_tables:
                for row in conn.execute(sa.select(table)).mappings():
                    for column, value in row.items():
                        text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
                        if TRACE in text:
                            found.setdefault(table.name, []).append(column)
    finally:
        engine.dispose()
    return found


def files_holding_marker(directory: Path) -> list[Path]:
    return [p for p in directory.rglob("*") if p.is_file() and TRACE.encode() in p.read_bytes()]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgres":
        return request.getfixturevalue("pg_url")
    url = f"sqlite:///{tmp_path / 'forget.db'}"
    upgrade(url)
    return url


@pytest.fixture
def patient(database_url: str, tmp_path: Path) -> Iterator[Patient]:
    settings = replace(Settings(), database_url=database_url, flows_dir=ROOT / "flows",
                       content_dir=ROOT / "content", secret="test-secret-" + "x" * 20,
                       worker_id=f"w-{uuid.uuid4().hex[:4]}")
    media_dir = tmp_path / "media"
    adapter = WebchatAdapter(settings, replace(WebchatConfig(), media_dir=media_dir, visitor_rate=(1000, 1.0),
                                                 ip_rate=(1000, 1.0), upload_rate=(1000, 1.0)))
    bot = CareBot.build(settings, [adapter], clock=ManualClock(T0), coord=MemoryCoord())
    with TestClient(create_app(bot), base_url="http://testserver") as client:
        yield Patient(client, bot, media_dir)


def test_forget_me_leaves_nothing_of_what_the_patient_said_or_sent(patient: Patient, database_url: str) -> None:
    p = patient
    # consent, then the intake with the marker in the complaint and a photo
    p.send("你好")
    p.send(value="consult")
    p.send("同意")
    p.send(value="yes")
    assert "intake.ask_need" in p.send("否")
    assert "intake.ask_complaint" in p.send("我想快速问个问题")
    p.send(f"脸上长了很多痘痘，{MARKER}")
    p.send("两周")
    p.send(value="4")
    p.send(value="self")
    p.send("二十五岁")
    p.send("女")
    assert "intake.ask_photos" in p.send("没有")
    photo = p.upload()
    p.send(MARKER, media=photo)
    p.send("就这些")
    p.send("是的")
    p.send(value="none")
    assert "handoff.queued" in p.send("好的"), p.keys
    # the hand-off thread: the patient writes and sends a photo, the doctor answers quoting them
    p.send(f"晚上更痒，{MARKER}")
    p.send(MARKER, media=p.upload())
    ticket = p.call(p.bot.store.read, lambda c: c.execute(sa.text("SELECT id FROM ticket")).scalar_one())
    p.call(p.bot.handoff.add_staff, "d_li", "李医生", "doctor", "test-password", departments=["dermatology"])
    doctor = p.call(p.bot.handoff.staff, "d_li")
    assert p.call(p.bot.handoff.take, ticket, doctor)
    p.call(p.bot.handoff.reply, ticket, doctor, f"您说的“{MARKER}”，请问用过什么药吗？")
    p.call(p.bot.handoff.close, ticket, doctor)
    p.read()
    # the survey and the complaint flow
    assert "survey.ask_recommend" in p.keys, p.keys
    p.send(value="9")
    p.send("5")
    assert "survey.thanks" in p.send(f"医生很耐心，{MARKER}"), p.keys
    assert "complaint.ask_category" in p.send("投诉")
    p.send("其他")
    assert "complaint.filed" in p.send(f"回复太慢，{MARKER}"), p.keys

    before = holding_marker(database_url)
    print("before the erasure, the marker is in", before)
    assert {"webchat_message", "ticket_message", "complaint", "event", "conversation"} <= set(before), before
    assert files_holding_marker(p.media_dir)
    old = dict(p.auth)
    assert p.client.get("/webchat/api/poll?after=0&wait=0", headers=old).json()["messages"]

    assert "forget.confirm" in p.send("忘记我")
    p.send("是", read=False)  # the token is refused from now on
    p.call(p.bot.handoff.idle)
    p.call(p.bot.sender.idle)

    assert holding_marker(database_url) == {}
    assert files_holding_marker(p.media_dir) == []
    assert [f for f in p.media_dir.rglob("*") if f.is_file()] == []  # the photos themselves are gone
    # the old token reads nothing: not the log, not a photo, and it cannot be renewed
    assert p.client.get("/webchat/api/poll?after=0&wait=0", headers=old).status_code == 401
    assert p.client.get(f"/webchat/api/media/{photo}", headers=old).status_code == 404
    assert p.client.post("/webchat/api/session", json={"token": old["Authorization"][7:]}).status_code == 401
    erased = p.call(p.bot.store.read, lambda c: c.execute(sa.text(
        "SELECT count(*) FROM audit_log WHERE action = 'erase'")).scalar_one())
    assert erased == 1
