"""`carebot bench webchat`: many browsers' worth of WebSocket clients against one carebot process.

The server is the real app, started the way `carebot run` starts it (a subprocess on a free
127.0.0.1 port, a fresh SQLite database, the shipped flows). Each client opens a session and runs
the shipped `checkin` flow — `/checkin`, a score button, a yes/no button — again and again, pausing
a random 0.5–1.5 × `think_ms` between messages (default 5 s, a brisk typist: 1,000 clients then
offer ~200 messages a second; `think_ms=1000` offers ~1,000 and finds the saturation point). A
round trip is the time from sending a message to receiving the bot's first reply to it: the
committed turn, the outbox delivery, the log appends and the pushes all lie inside it. Connections are opened first; then the clients
run for `seconds` and every round trip in that window counts.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.settings import Settings

SCRIPT: tuple[dict[str, str], ...] = (
    {"text": "/checkin"},
    {"text": "7", "value": "7"},
    {"text": "No", "value": "no"},
)


@dataclass
class _Tally:
    round_trips_ms: list[float] = field(default_factory=list)
    errors: int = 0
    measuring: bool = False


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_webchat_bench(settings: Settings, clients: int = 1000, *, seconds: float = 20.0, think_ms: float = 5000.0,
                      connect_batch: int = 100) -> dict[str, Any]:
    """Serve carebot in a subprocess and drive `clients` WebSocket clients at it; return the figures
    (clients, messages_per_second, p50_ms, p99_ms and their context)."""
    with tempfile.TemporaryDirectory(prefix="carebot-bench-webchat-") as tmp:
        port = _free_port()
        env = {**os.environ,
               "DATABASE_URL": f"sqlite:///{Path(tmp) / 'bench.db'}",
               "CAREBOT_FLOWS": str(Path(settings.flows_dir).resolve()),
               "CAREBOT_CONTENT": str(Path(settings.content_dir).resolve()),
               "CAREBOT_SECRET": "bench-" + os.urandom(8).hex(),
               "CAREBOT_MEDIA_DIR": str(Path(tmp) / "media"),
               "CAREBOT_LOG_LEVEL": "WARNING",
               # every client comes from 127.0.0.1: lift the per-IP limits a clinic would keep
               "CAREBOT_WEBCHAT_IP_RATE": str(max(1000, clients * 100)),
               "CAREBOT_WEBCHAT_VISITOR_RATE": "1000"}
        env.pop("REDIS_URL", None)
        server = subprocess.Popen([sys.executable, "-m", "bot.cli", "run", "--host", "127.0.0.1", "--port", str(port)],
                                  env=env, cwd=tmp, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            _wait_for(port, server)
            figures = asyncio.run(_drive(port, clients, seconds, think_ms, connect_batch))
        finally:
            server.terminate()
            try:
                _, stderr = server.communicate(timeout=15)
            except subprocess.TimeoutExpired:
                server.kill()
                _, stderr = server.communicate()
        if figures["errors"] and stderr:
            figures["server_log_tail"] = stderr.decode(errors="replace")[-2000:]
        return figures


def _wait_for(port: int, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"carebot exited: {server.stderr.read().decode(errors='replace') if server.stderr else ''}")
        try:  # listening comes first; the bot is loaded when /readyz says so
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError("carebot was not ready within 60 s")


async def _drive(port: int, clients: int, seconds: float, think_ms: float, connect_batch: int) -> dict[str, Any]:
    import websockets

    uri = f"ws://127.0.0.1:{port}/webchat/ws"
    tally = _Tally()
    sockets: list[Any] = []
    started = time.perf_counter()
    for first in range(0, clients, connect_batch):
        batch = await asyncio.gather(*(_open(websockets, uri) for _ in range(first, min(clients, first + connect_batch))))
        sockets.extend(batch)
    connect_seconds = time.perf_counter() - started
    stop = asyncio.Event()
    tasks = [asyncio.create_task(_client(ws, n, tally, think_ms / 1000, stop)) for n, ws in enumerate(sockets)]
    await asyncio.sleep(min(3.0, seconds / 4))  # warm-up: every client has sent, caches are hot
    tally.measuring = True
    window_start = time.perf_counter()
    await asyncio.sleep(seconds)
    window = time.perf_counter() - window_start
    tally.measuring = False
    stop.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)
    trips = sorted(tally.round_trips_ms)
    return {
        "clients": clients,
        "messages_per_second": round(len(trips) / window, 1),
        "p50_ms": round(statistics.median(trips), 2) if trips else None,
        "p99_ms": round(trips[min(len(trips) - 1, int(len(trips) * 0.99))], 2) if trips else None,
        "max_ms": round(trips[-1], 2) if trips else None,
        "round_trips": len(trips),
        "errors": tally.errors,
        "seconds": round(window, 1),
        "think_ms": think_ms,
        "connect_seconds": round(connect_seconds, 2),
        "flow": "checkin: /checkin → score button → yes/no button",
        "server": "carebot run (1 process, SQLite) on 127.0.0.1",
    }


async def _open(websockets: Any, uri: str) -> Any:
    ws = await websockets.connect(uri, open_timeout=60, ping_interval=None, max_queue=None)
    await ws.send(json.dumps({"type": "hello"}))
    ready = json.loads(await ws.recv())
    if ready.get("type") != "ready":
        raise RuntimeError(f"the server refused a session: {ready}")
    return ws


async def _client(ws: Any, n: int, tally: _Tally, think: float, stop: asyncio.Event) -> None:
    rng = random.Random(n)
    await asyncio.sleep(rng.random() * think)  # spread the first messages over one think time
    step = 0
    try:
        while not stop.is_set():
            message = SCRIPT[step % len(SCRIPT)]
            sent = time.perf_counter()
            await ws.send(json.dumps({"type": "send", "id": f"c{n}m{step}", **message}))
            echo_seq, bot_seq = None, 0  # the reply may come before the echo: compare numbers
            while echo_seq is None or bot_seq <= echo_seq:
                frame = json.loads(await asyncio.wait_for(ws.recv(), 30))
                kind = frame.get("type")
                if kind == "error":
                    tally.errors += 1
                    break
                if kind != "message":
                    continue
                if frame.get("client_id") == f"c{n}m{step}":
                    echo_seq = frame["seq"]
                elif frame.get("sender") != "patient":
                    bot_seq = max(bot_seq, frame["seq"])
            else:
                if tally.measuring:
                    tally.round_trips_ms.append((time.perf_counter() - sent) * 1000)
            step += 1
            await asyncio.sleep(think * (0.5 + rng.random()))
    except (asyncio.TimeoutError, OSError):
        tally.errors += 1
    except Exception as exc:  # noqa: BLE001 - a closed socket ends this client, counted as an error
        if not stop.is_set() or "ConnectionClosed" not in type(exc).__name__:
            tally.errors += 1

