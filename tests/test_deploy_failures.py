"""What a worker does when something goes away (docs/deploy.md, "When something goes away"):
the database or Redis (and back), a SIGTERM with streams open, N workers migrating at once, an
outside process holding SQLite's write lock, a worker killed holding a lock, no Redis at all.

PostgreSQL and Redis are the machine's, reached through a TCP forwarder on loopback, so "the
database goes away" is real — connections cut, new ones refused — without stopping the shared server.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest

from bot.store.db import make_engine
from bot.store.writer import BatchWriter
from tests.conftest import empty_postgres
from tests.serve import Served


class Forwarder:
    """A loopback TCP forwarder to host:port that can be cut (every connection closed, new ones
    refused) and restored on the same port."""

    def __init__(self, host: str, port: int):
        self.target = (host, port)
        self.port = 0
        self._listener: socket.socket | None = None
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()

    def up(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(16)
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def down(self) -> None:
        with self._lock:
            listener, self._listener = self._listener, None
            conns, self._conns = self._conns, []
        if listener is not None:
            try:  # wakes the accept() of the other thread: close() alone leaves the socket listening
                listener.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            listener.close()
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            conn.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


def _select_one(conn: Any) -> int:
    return int(conn.exec_driver_sql("SELECT 1").scalar())


@pytest.mark.postgres
async def test_postgres_writer_fails_fast_and_recovers_when_the_database_comes_back(pg_url: str) -> None:
    parts = urlsplit(pg_url)
    forwarder = Forwarder(parts.hostname or "127.0.0.1", parts.port or 5432)
    forwarder.up()
    engine = make_engine(urlunsplit(parts._replace(netloc=f"{parts.username or 'postgres'}@127.0.0.1:{forwarder.port}")))
    writer = BatchWriter(engine, threads=1)
    try:
        assert await asyncio.wait_for(writer.submit(_select_one), 10) == 1
        forwarder.down()
        try:  # a refused connection fails in milliseconds; 5 s is only a bound
            await asyncio.wait_for(writer.submit(_select_one), 5)
        except asyncio.TimeoutError:
            pytest.fail("a write while the database is down hangs instead of failing")
        except Exception:  # noqa: BLE001 - the database error itself: the caller can answer
            pass
        else:
            pytest.fail("a write succeeded while the database was unreachable")
        forwarder.up()
        assert await asyncio.wait_for(writer.submit(_select_one), 10) == 1, "the writer did not recover"
    finally:
        forwarder.down()
        writer.close()
        engine.dispose()


def _through(forwarder: Forwarder, url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=f"{parts.username or 'postgres'}@127.0.0.1:{forwarder.port}"))


@pytest.mark.postgres
@pytest.mark.timeout(600)
def test_web_chat_answers_503_while_the_database_is_away_and_takes_the_resend_after(tmp_path: Path,
                                                                                     pg_url: str) -> None:
    """The patient's message is not acknowledged while the database is away (503 "unavailable",
    Retry-After, no traceback); the widget's resend with the same client id is taken once it is back,
    and the conversation's log holds it once."""
    parts = urlsplit(pg_url)
    forwarder = Forwarder(parts.hostname or "127.0.0.1", parts.port or 5432)
    forwarder.up()
    server = Served(tmp_path, _through(forwarder, pg_url)).start()
    try:
        http = httpx.Client(base_url=server.url, timeout=30)
        token = http.post("/webchat/api/session", json={}).json()["token"]
        auth = {"Authorization": f"Bearer {token}"}
        assert http.post("/webchat/api/send", json={"id": "m1", "text": "hello"}, headers=auth).json()["type"] == "ack"
        forwarder.down()
        for _ in range(3):  # the pool's idle connections are found dead, new ones refused
            away = http.post("/webchat/api/send", json={"id": "m2", "text": "still there?"}, headers=auth)
            assert away.status_code == 503, away.text
            assert away.json()["code"] == "unavailable" and away.headers["Retry-After"]
        ready = http.get("/readyz")
        assert ready.status_code == 503 and "database" in ready.json()["down"]
        assert http.get("/healthz").status_code == 200  # liveness: the process is fine
        forwarder.up()
        again = http.post("/webchat/api/send", json={"id": "m2", "text": "still there?"}, headers=auth)
        assert again.status_code == 200 and again.json()["type"] == "ack", again.text
        assert http.get("/readyz").status_code == 200
        log = http.get("/webchat/api/poll?after=0&wait=0", headers=auth).json()["messages"]
        mine = [m["client_id"] for m in log if m["sender"] == "patient"]
        assert mine == ["m1", "m2"]
        http.close()
    finally:
        server.stop()
        forwarder.down()
    output = server.log()
    assert "Traceback" not in output and "Exception in ASGI" not in output, output[-3000:]
    assert "database unavailable" in output


@pytest.mark.redis
async def test_redis_calls_ride_out_a_blip_then_fail_clearly(redis_url: str) -> None:
    """A dropped connection is retried with backoff (a Redis restart of a fraction of a second
    goes unnoticed); Redis gone for good fails the call within seconds with redis's
    ConnectionError, which the server answers as "unavailable"."""
    import redis.exceptions

    from bot.coord.redis import RedisCoord
    from bot.unavailable import service_of

    parts = urlsplit(redis_url)
    forwarder = Forwarder(parts.hostname or "127.0.0.1", parts.port or 6379)
    forwarder.up()
    coord = RedisCoord(urlunsplit(parts._replace(netloc=f"127.0.0.1:{forwarder.port}")))
    try:
        await coord.mark_seen("blip-test")
        forwarder.down()  # every connection cut, new ones refused ...
        threading.Timer(0.3, forwarder.up).start()  # ... for 0.3 s: less than the retries' least pause
        assert await asyncio.wait_for(coord.seen("blip-test"), 10) is True
        async with coord.lock("blip-lock", ttl=30, wait=1):  # a lock is taken through a fresh connection too
            pass
        forwarder.down()
        with pytest.raises(redis.exceptions.ConnectionError) as failed:
            await asyncio.wait_for(coord.seen("blip-test"), 10)  # gives up in 1.2–2.4 s, never hangs
        assert service_of(failed.value) == "redis"
    finally:
        forwarder.down()
        await coord.close()


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.timeout(600)
def test_readyz_names_redis_when_it_is_away_and_the_web_chat_answers_503(tmp_path: Path, pg_url: str,
                                                                         redis_url: str) -> None:
    import redis

    redis.Redis.from_url(redis_url).flushdb()
    parts = urlsplit(redis_url)
    forwarder = Forwarder(parts.hostname or "127.0.0.1", parts.port or 6379)
    forwarder.up()
    server = Served(tmp_path, pg_url, urlunsplit(parts._replace(netloc=f"127.0.0.1:{forwarder.port}"))).start()
    try:
        http = httpx.Client(base_url=server.url, timeout=30)
        token = http.post("/webchat/api/session", json={}).json()["token"]
        auth = {"Authorization": f"Bearer {token}"}
        assert http.post("/webchat/api/send", json={"id": "r1", "text": "hello"}, headers=auth).json()["type"] == "ack"
        assert http.get("/readyz").json()["ready"] is True
        forwarder.down()
        ready = http.get("/readyz")
        assert ready.status_code == 503 and ready.json()["down"] == ["redis"]
        assert http.get("/healthz").status_code == 200
        away = http.post("/webchat/api/send", json={"id": "r2", "text": "anyone?"}, headers=auth)
        assert away.status_code == 503 and away.json()["code"] == "unavailable", away.text
        forwarder.up()
        assert http.get("/readyz").status_code == 200
        again = http.post("/webchat/api/send", json={"id": "r2", "text": "anyone?"}, headers=auth)
        assert again.status_code == 200 and again.json()["type"] == "ack", again.text
        http.close()
    finally:
        server.stop()
        forwarder.down()
    output = server.log()
    assert "Traceback" not in output and "Exception in ASGI" not in output, output[-3000:]


@pytest.mark.timeout(600)
@pytest.mark.parametrize("database", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_workers_starting_together_migrate_once(tmp_path: Path, database: str) -> None:
    import os
    import subprocess

    from bot.store.migrate import current
    from tests.serve import CAREBOT

    url = f"sqlite:///{tmp_path / 'carebot.db'}" if database == "sqlite" else empty_postgres()
    env = {**os.environ, "DATABASE_URL": url, "CAREBOT_SECRET": "migrate-test-secret-" + "x" * 20}
    workers = [subprocess.Popen([str(CAREBOT), "db", "upgrade"], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True) for _ in range(4)]
    outputs = [w.communicate(timeout=300)[0] for w in workers]
    assert [w.returncode for w in workers] == [0] * 4, "\n---\n".join(outputs)
    assert sum("database migrated" in out for out in outputs) == 1, outputs
    assert sum("already up to date" in out for out in outputs) == 3, outputs
    revisions = {line for out in outputs for line in out.splitlines() if line.startswith("database at revision")}
    assert revisions == {f"database at revision {current(url)}"} and current(url)


@pytest.mark.timeout(600)  # a `carebot` process: slow to start on a loaded machine
def test_sigterm_ends_event_streams_and_long_polls_at_once(tmp_path: Path, backend: tuple[str, str]) -> None:
    """uvicorn waits for open requests before it stops the app: a console's server-sent-event stream
    (10 minutes) or a widget's long poll (25 s) must end at SIGTERM, not hold the shutdown up."""
    import re
    import signal
    import subprocess
    import time

    from bot.store.migrate import upgrade
    from tests.serve import CAREBOT

    url, redis_url = backend
    if not url:
        url = f"sqlite:///{tmp_path / 'carebot.db'}"
        upgrade(url)
    server = Served(tmp_path, url, redis_url)
    added = subprocess.run([str(CAREBOT), "staff", "add", "boss", "--name", "Boss", "--role", "admin",
                            "--password", "correct horse battery", "--database-url", url],
                           env=server.env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert added.returncode == 0, added.stderr
    server.start()
    ended: dict[str, float] = {}
    try:
        staff = httpx.Client(base_url=server.url, timeout=60)
        csrf = re.search(r'name="csrf" value="([^"]+)"', staff.get("/console/login").text)
        assert csrf
        login = staff.post("/console/login", data={"csrf": csrf.group(1), "staff_id": "boss",
                                                   "password": "correct horse battery", "next": "/console/inbox"})
        assert login.status_code in (302, 303), login.text
        patient = httpx.Client(base_url=server.url, timeout=60)
        token = patient.post("/webchat/api/session", json={}).json()["token"]
        opened = threading.Barrier(3)

        def sse() -> None:
            with staff.stream("GET", "/console/events", headers={"Accept": "text/event-stream"}) as stream:
                lines = stream.iter_lines()
                next(lines)  # "retry: …": the stream is open
                opened.wait(30)
                for _ in lines:
                    pass
            ended["sse"] = time.monotonic()

        def poll() -> None:
            opened.wait(30)
            got = patient.get("/webchat/api/poll?after=1000&wait=25", headers={"Authorization": f"Bearer {token}"})
            ended["poll"] = time.monotonic()
            ended["poll_status"] = got.status_code

        threads = [threading.Thread(target=f, daemon=True) for f in (sse, poll)]
        for t in threads:
            t.start()
        opened.wait(30)
        time.sleep(0.5)  # the poll request is in
        assert server.proc is not None
        asked = time.monotonic()
        server.proc.send_signal(signal.SIGTERM)
        server.proc.wait(timeout=60)
        stopped = time.monotonic() - asked
        for t in threads:
            t.join(10)
        # well before the poll's 25 s (and the stream's 10 minutes) would have run out
        assert stopped < 15, f"shutdown took {stopped:.1f} s\n{server.log()[-2000:]}"
        assert ended["sse"] - asked < 15 and ended["poll"] - asked < 15 and ended["poll_status"] == 200
        assert server.proc.returncode in (0, -signal.SIGTERM)  # uvicorn re-raises the signal it handled
        assert "Traceback" not in server.log()
    finally:
        server.stop()


async def test_memory_coord_frees_rate_limit_windows_that_ran_out() -> None:
    """Without Redis, a window per visitor must not stay forever (≈ 1 KB each): memory is flat."""
    from bot.coord.memory import SWEEP_EVERY, MemoryCoord

    coord = MemoryCoord()
    t = 1_000_000.0
    for round_ in range(5):  # five waves of 3,000 new visitors, each wave a minute after the last
        for i in range(3000):
            assert await coord.hit(f"visitor:{round_}:{i}", 5, 10.0, at=t) == 0
        t += 60
    assert coord.tracked_windows() <= 3000 + SWEEP_EVERY
    for i in range(SWEEP_EVERY):  # a quiet minute later, only the newest windows may still be held
        await coord.hit(f"late:{i}", 5, 10.0, at=t + 60)
    assert coord.tracked_windows() <= SWEEP_EVERY
    # a window still running is kept and still counts
    for _ in range(5):
        await coord.hit("busy", 5, 10.0, at=t + 61)
    assert await coord.hit("busy", 5, 10.0, at=t + 62) > 0


@pytest.mark.timeout(900)
@pytest.mark.parametrize("database", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_without_redis_logout_and_sign_in_throttling_survive_a_restart(tmp_path: Path, database: str,
                                                                       request: pytest.FixtureRequest) -> None:
    """No Redis: a logged-out cookie stays refused after a restart, and a stranger's five wrong
    passwords make the stranger wait — not the doctor on their own computer, and not for 15 minutes."""
    import re
    import subprocess

    from bot.store.migrate import upgrade
    from tests.serve import CAREBOT

    if database == "sqlite":
        url = f"sqlite:///{tmp_path / 'carebot.db'}"
        upgrade(url)
    else:
        url = request.getfixturevalue("pg_url")
    server = Served(tmp_path, url, "")
    added = subprocess.run([str(CAREBOT), "staff", "add", "d_li", "--name", "Li", "--role", "admin",
                            "--password", "correct horse battery", "--database-url", url],
                           env=server.env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert added.returncode == 0, added.stderr
    server.start()

    def browser(ip: str) -> httpx.Client:  # uvicorn takes the client's address from a proxy on loopback
        return httpx.Client(base_url=server.url, timeout=30, headers={"X-Forwarded-For": ip})

    def login(client: httpx.Client, password: str) -> httpx.Response:
        csrf = re.search(r'name="csrf" value="([^"]+)"', client.get("/console/login").text)
        assert csrf
        return client.post("/console/login", data={"csrf": csrf.group(1), "staff_id": "d_li", "password": password,
                                                   "next": "/console/inbox"})

    try:
        stranger, doctor = browser("203.0.113.9"), browser("10.1.2.3")
        assert [login(stranger, "guess").status_code for _ in range(5)] == [401] * 5
        limited = login(stranger, "correct horse battery")
        assert limited.status_code == 429 and 0 < int(limited.headers["retry-after"]) <= 60
        assert login(doctor, "correct horse battery").status_code == 303  # the doctor is not locked out
        copied = httpx.Cookies(doctor.cookies)
        csrf = re.search(r'name="csrf" value="([^"]+)"', doctor.get("/console/inbox").text)
        assert csrf
        assert doctor.post("/console/logout", data={"csrf": csrf.group(1)}).status_code == 303
        server.stop()
        server.start()
        thief = browser("10.1.2.3")
        thief.cookies = copied
        assert thief.get("/console/inbox").status_code == 303  # still logged out after the restart
        # the stranger's count survived the restart (its 30 s wait may have run out meanwhile): one
        # more wrong password is the sixth, which makes it wait twice as long
        if login(stranger, "guess").status_code != 429:
            again = login(stranger, "correct horse battery")
            assert again.status_code == 429 and 30 < int(again.headers["retry-after"]) <= 60
        for c in (stranger, doctor, thief):
            c.close()
    finally:
        server.stop()


async def test_an_outside_sqlite_writer_does_not_freeze_the_event_loop(make_bot: Any) -> None:
    """Another process holds SQLite's write lock for 4 s: the turn waits for it off the event loop
    (the loop goes on answering — /healthz, other sockets) and commits once the lock is free."""
    import subprocess
    import sys

    from tests.flows_common import ECHO_FLOWS, ECHO_MESSAGES

    bot, platform, _ = make_bot(ECHO_FLOWS, ECHO_MESSAGES)
    await bot.start(background=False)
    path = bot.store.url.split("///", 1)[-1]
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sqlite3, sys, time\n"
        f"c = sqlite3.connect({path!r}, isolation_level=None)\n"
        "c.execute('BEGIN IMMEDIATE'); print('locked', flush=True); time.sleep(4); c.execute('COMMIT')")],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        loop = asyncio.get_running_loop()
        turn = asyncio.ensure_future(bot.runtime.handle(platform.inbound("p1", "hello")))
        worst, probes = 0.0, 0
        while not turn.done():
            asked = loop.time()
            await asyncio.sleep(0.05)
            worst = max(worst, loop.time() - asked - 0.05)
            probes += 1
        assert (await turn).status == "processed"
        assert probes > 10, "the turn did not wait for the outside writer"
        assert worst < 0.5, f"the event loop stalled for {worst:.2f} s"
        await bot.sender.idle()
        assert platform.texts("p1")  # the reply went out
    finally:
        holder.wait(30)
        await bot.stop()


@pytest.mark.redis
async def test_a_redis_lock_of_a_dead_holder_frees_within_seconds(redis_url: str) -> None:
    """A worker killed during a turn leaves its conversation's lock behind: the next worker gets it
    after the short lease (3 s), not after the turn's 30 s ttl; a live holder keeps it by renewal."""
    from bot.coord.redis import LOCK_LEASE_S, RedisCoord

    holder, other = RedisCoord(redis_url, prefix="locktest:"), RedisCoord(redis_url, prefix="locktest:")
    try:
        async with holder.lock("conv-live", ttl=30):  # held past the lease: renewal keeps it
            await asyncio.sleep(LOCK_LEASE_S + 1)
            with pytest.raises(Exception, match="conv-live"):
                async with other.lock("conv-live", ttl=30, wait=0.2):
                    pass
        # a dead holder: a process killed (os._exit) while it holds the lock
        import subprocess
        import sys

        from tests.conftest import ROOT

        dead = subprocess.run([sys.executable, "-c", (
            "import asyncio, os\n"
            "from bot.coord.redis import RedisCoord\n"
            "async def main():\n"
            f"    async with RedisCoord({redis_url!r}, prefix='locktest:').lock('conv-dead', ttl=30):\n"
            "        print('locked', flush=True); os._exit(9)\n"
            "asyncio.run(main())")], cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert dead.returncode == 9 and "locked" in dead.stdout, dead.stderr
        loop = asyncio.get_running_loop()
        asked = loop.time()
        async with other.lock("conv-dead", ttl=30, wait=20):
            waited = loop.time() - asked
        assert waited <= LOCK_LEASE_S + 1, waited
    finally:
        await holder.close()
        await other.close()
