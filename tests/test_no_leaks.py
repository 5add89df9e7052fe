"""Patient text, phone and ID numbers never reach a log, on any error path, on PostgreSQL + Redis:
the real `carebot run` (uvicorn and its logging) is driven through every error path with a marker,
and its whole output is searched."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from websockets.sync.client import connect

from tests.serve import Served

MARKER = "MARKERq7z 我胸口疼得厉害"
PHONE = "13912345678"
ID_NUMBER = "11010119900307123X"
SECRET_TEXT = f"{MARKER} 电话 {PHONE} 身份证 {ID_NUMBER}"


def leaked(output: str) -> list[str]:
    return [s for s in ("MARKERq7z", "胸口疼得厉害", PHONE, ID_NUMBER) if s in output]


@pytest.mark.postgres
@pytest.mark.redis
def test_no_patient_data_in_any_log_on_postgresql(tmp_path: Path, pg_url: str, redis_url: str) -> None:
    import redis

    redis.Redis.from_url(redis_url).flushdb()
    server = Served(tmp_path, pg_url, redis_url).start()
    engine = sa.create_engine(pg_url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        http = httpx.Client(base_url=server.url, timeout=30)
        token = http.post("/webchat/api/session", json={}).json()["token"]
        auth = {"Authorization": f"Bearer {token}"}
        # the good path
        assert http.post("/webchat/api/send", json={"id": "ok1", "text": SECRET_TEXT}, headers=auth).json()["type"] == "ack"
        # the database refuses a row that holds the text: its error quotes the failing row
        with engine.begin() as conn:
            conn.execute(sa.text("ALTER TABLE webchat_message ADD CONSTRAINT no_marker "
                                 "CHECK (payload NOT LIKE '%MARKERq7z%') NOT VALID"))
        refused = http.post("/webchat/api/send", json={"id": "db1", "text": SECRET_TEXT}, headers=auth)
        assert refused.json()["code"] == "server_error"
        bad = SECRET_TEXT.encode()
        # bad tokens, cookies and CSRF values carrying the text (non-ASCII)
        http.post("/webchat/api/send", json={"id": "t1", "text": "x"}, headers={"Authorization": b"Bearer v1." + bad})
        http.get("/webchat/api/poll?after=" + SECRET_TEXT, headers=auth)
        http.get("/console/inbox", headers={"Cookie": b"carebot_console=" + bad})
        login = http.get("/console/login")
        http.post("/console/login", data={"staff_id": SECRET_TEXT, "password": SECRET_TEXT, "csrf": SECRET_TEXT},
                  cookies=login.cookies)
        # bodies a parser chokes on, each carrying the text
        for body in (b'{"id": "j1", "text": "' + bad + b'"', "[" * 100_000 + '"' + SECRET_TEXT + '"',
                     '{"id": "j2", "text": "' + SECRET_TEXT + '\\ud800", "value": 1e999999}',
                     '{"id": "j3", "text": "' + SECRET_TEXT + '", "value": 123456789012345678901234567890}'):
            http.post("/webchat/api/send", content=body, headers={**auth, "Content-Type": "application/json"})
        # the socket: a bad hello, a binary frame, text that fails in the database
        with connect(server.url.replace("http", "ws") + "/webchat/ws") as ws:
            ws.send(json.dumps({"type": "hello", "token": "v1." + SECRET_TEXT}))
            ws.recv(timeout=10)
        with connect(server.url.replace("http", "ws") + "/webchat/ws") as ws:
            ws.send(json.dumps({"type": "hello", "token": token}))
            ws.recv(timeout=10)
            ws.send(bad)
            ws.send(json.dumps({"type": "send", "id": "w1", "text": SECRET_TEXT}))
            ws.send(json.dumps({"type": "ping"}))
            for _ in range(20):
                if json.loads(ws.recv(timeout=10)).get("type") == "pong":
                    break
        http.close()
    finally:
        server.stop()
        engine.dispose()
    output = server.log()
    assert "CheckViolation" in output  # the error paths were really taken
    assert leaked(output) == [], output[-3000:]
