"""`carebot bench chaos`: web-chat patients while carebot processes are killed (SIGKILL).

Real `carebot run` processes on 127.0.0.1 serve an echo flow (every patient message is answered
with one reply quoting it). Each conversation is a WebSocket client that behaves like the widget:
every message carries a client id; a message counts as acknowledged only when its echo (the
committed log entry with its client id) comes back; after a dropped connection the client comes
back with its token, asks for what it missed (`after`) and sends every unacknowledged message
again with the same id.

- SQLite (`backend="sqlite"`): one process, killed with SIGKILL `kills` times and restarted.
- PostgreSQL + Redis (`backend="pg+redis"`): two workers; one is killed and its patients reconnect
  to the other (as behind a load balancer), which carries on alone.

Patients pause 0.5–1.5 × `think_s` between messages (3 s: 200 patients offer ~70 messages a
second, within what one worker does on a loaded 2-core machine, so a late reply means the kill,
not saturation; at 1.5 s the lone surviving PostgreSQL + Redis worker queued replies for up to
6.5 s) and keep at most `WINDOW` messages unacknowledged.

At the end every conversation's log is read through the HTTP API and checked: no acknowledged
message lost, no reply doubled, each conversation's replies in the order of its messages, and each
reply delivered within `deadline_s` of the restart (or of its sending, when later).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.testing.process import ServerProcess, free_port

FLOW = """\
id: echo
triggers:
  - event: first_contact
steps:
  - id: loop
    ask: { key: chaos.next, slot: last, type: text }
  - say: chaos.echo
  - goto: loop
"""
MESSAGES = {"zh-CN": "chaos:\n  next: 请说\n  echo: \"echo {{ last }}\"\n",
            "en": "chaos:\n  next: Go on\n  echo: \"echo {{ last }}\"\n"}
WINDOW = 3  # messages a patient may have sent and not yet seen acknowledged


class Worker(ServerProcess):
    """One `carebot run` on a fixed port and worker id (a restart keeps both, as systemd's does)."""

    def __init__(self, workdir: Path, env: dict[str, str], name: str):
        self.port = free_port()
        self.name = name
        self.env = {**env, "CAREBOT_PORT": str(self.port), "CAREBOT_WORKER_ID": f"chaos-{name}"}
        self.workdir = workdir
        self.log_path = workdir / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "bot.cli", "run", "--no-migrate", "--host", "127.0.0.1",
                                          "--port", str(self.port)], cwd=self.workdir, env=self.env,
                                         stdout=log, stderr=subprocess.STDOUT)

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/readyz", timeout=2) as response:
                return response.status == 200
        except OSError:
            return False

    def log_tail(self, chars: int = 3000) -> str:
        return self.log()[-chars:]


@dataclass
class Patient:
    n: int
    texts: list[str]
    token: str = ""
    contiguous: int = 0  # the highest log number below which every entry was received
    seqs: set[int] = field(default_factory=set)
    typed: int = 0  # messages the patient has typed so far (also while disconnected, as in the widget)
    sent: int = 0  # messages handed to a socket at least once (in order)
    sent_at: dict[str, float] = field(default_factory=dict)  # client id → when it was typed
    acked_at: dict[str, float] = field(default_factory=dict)  # client id → when its echo first came
    reply_at: dict[str, float] = field(default_factory=dict)  # text → when its echo reply first came
    greeted: bool = False
    reconnects: int = 0
    errors: dict[str, int] = field(default_factory=dict)

    def cid(self, i: int) -> str:
        return f"c{self.n}m{i}"

    @property
    def done(self) -> bool:
        return len(self.acked_at) == len(self.texts) and len(self.reply_at) == len(self.texts)


@dataclass
class Disruption:
    killed_at: float
    ready_at: float


class Chaos:
    def __init__(self, backend: str, database_url: str, redis_url: str, workdir: Path, *, conversations: int,
                 messages: int, kills: int, think_s: float, deadline_s: float, seed: int):
        self.backend = backend
        self.workdir = workdir
        self.rng = random.Random(seed)
        self.kills = kills
        self.think_s = think_s
        self.deadline_s = deadline_s
        per = max(1, messages // conversations)
        self.patients = [Patient(n, [f"p{n} says {i}" for i in range(per)]) for n in range(conversations)]
        flows, content = workdir / "flows", workdir / "content"
        (content / "messages").mkdir(parents=True, exist_ok=True)
        flows.mkdir(parents=True, exist_ok=True)
        (flows / "echo.yml").write_text(FLOW, encoding="utf-8")
        for locale, text in MESSAGES.items():
            (content / "messages" / f"{locale}.yml").write_text(text, encoding="utf-8")
        env = {**os.environ, "DATABASE_URL": database_url, "REDIS_URL": redis_url,
               "CAREBOT_SECRET": "chaos-" + "x" * 32, "CAREBOT_FLOWS": str(flows), "CAREBOT_CONTENT": str(content),
               "CAREBOT_MEDIA_DIR": str(workdir / "media"), "CAREBOT_LOG_LEVEL": "WARNING",
               # every patient comes from 127.0.0.1: lift the per-IP limit a clinic would keep
               "CAREBOT_WEBCHAT_IP_RATE": str(max(1000, conversations * 100)), "CAREBOT_WEBCHAT_VISITOR_RATE": "1000"}
        names = ["a"] if backend == "sqlite" else ["a", "b"]
        self.workers = [Worker(workdir, env, name) for name in names]
        self.live: list[Worker] = []
        self.disruptions: list[Disruption] = []
        self.stop = asyncio.Event()

    # -- the patients -----------------------------------------------------------------------------

    def _url_for(self, patient: Patient, attempt: int) -> str:
        live = self.live or self.workers
        worker = live[(patient.n + attempt) % len(live)]
        return f"ws://127.0.0.1:{worker.port}/webchat/ws"

    async def _typist(self, patient: Patient) -> None:
        """The patient types at their own pace, connected or not; the socket sends what was typed."""
        while not patient.greeted:
            await asyncio.sleep(0.05)
        for i in range(len(patient.texts)):
            await asyncio.sleep(self.think_s * (0.5 + self.rng.random()))
            patient.sent_at[patient.cid(i)] = time.monotonic()
            patient.typed = i + 1

    async def _patient(self, patient: Patient) -> None:
        import websockets

        typist = asyncio.create_task(self._typist(patient))
        try:
            await self._connect_until_done(patient, websockets)
        finally:
            typist.cancel()

    async def _connect_until_done(self, patient: Patient, websockets: Any) -> None:
        attempt = 0
        while not self.stop.is_set() and not patient.done:
            try:
                async with websockets.connect(self._url_for(patient, attempt), open_timeout=10, ping_interval=None,
                                              max_queue=None, close_timeout=1) as ws:
                    await self._session(ws, patient)
            except (OSError, asyncio.TimeoutError, websockets.exceptions.WebSocketException):
                pass
            if patient.done or self.stop.is_set():
                return
            patient.reconnects += 1
            attempt += 1
            await asyncio.sleep(0.1 + self.rng.random() * 0.3)  # a reconnecting widget, quicker

    async def _session(self, ws: Any, patient: Patient) -> None:
        await ws.send(json.dumps({"type": "hello", "token": patient.token, "after": patient.contiguous}))
        ready = json.loads(await asyncio.wait_for(ws.recv(), 15))
        if ready.get("type") != "ready":
            patient.errors[str(ready.get("code"))] = patient.errors.get(str(ready.get("code")), 0) + 1
            return
        patient.token = ready["token"]
        if not patient.greeted:
            await ws.send(json.dumps({"type": "open", "locale": "en"}))
        # everything sent and not acknowledged goes again, same ids, in order
        for i in range(patient.sent):
            if patient.cid(i) not in patient.acked_at:
                await ws.send(json.dumps({"type": "send", "id": patient.cid(i), "text": patient.texts[i]}))
        loop = asyncio.get_running_loop()
        heard = loop.time()
        while not patient.done:
            unacked = patient.sent - sum(1 for i in range(patient.sent) if patient.cid(i) in patient.acked_at)
            if patient.sent < patient.typed and unacked < WINDOW:
                i = patient.sent
                await ws.send(json.dumps({"type": "send", "id": patient.cid(i), "text": patient.texts[i]}))
                patient.sent += 1
                continue
            try:
                raw = await asyncio.wait_for(ws.recv(), 0.1)  # also: look for newly typed messages
            except asyncio.TimeoutError:
                if loop.time() - heard > 15 and unacked:
                    return  # 15 s without a frame while waiting: reconnect and resume
                continue
            heard = loop.time()
            self._take(patient, json.loads(raw), ws)

    def _take(self, patient: Patient, frame: dict[str, Any], ws: Any) -> None:
        now = time.monotonic()
        kind = frame.get("type")
        if kind == "error":
            code = str(frame.get("code"))
            patient.errors[code] = patient.errors.get(code, 0) + 1
            cid = frame.get("id")
            if cid and code in ("unavailable", "server_error", "rate_limited"):
                i = int(str(cid).rsplit("m", 1)[1])
                asyncio.get_running_loop().call_later(
                    0.5, lambda: asyncio.ensure_future(_quiet_send(ws, {"type": "send", "id": cid, "text": patient.texts[i]})))
            return
        if kind != "message":
            return
        seq = frame["seq"]
        patient.seqs.add(seq)
        while patient.contiguous + 1 in patient.seqs:
            patient.contiguous += 1
        if frame.get("sender") == "patient":
            cid = frame.get("client_id")
            if cid and cid not in patient.acked_at:
                patient.acked_at[cid] = now
        elif frame.get("sender") == "bot":
            text = str(frame.get("text", ""))
            if text.startswith("echo "):
                patient.reply_at.setdefault(text[5:], now)
            else:
                patient.greeted = True

    # -- the run ----------------------------------------------------------------------------------

    async def _start(self, worker: Worker) -> float:
        worker.start()
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if worker.proc is not None and worker.proc.poll() is not None:
                raise RuntimeError(f"carebot {worker.name} exited:\n{worker.log_tail()}")
            if await asyncio.to_thread(worker.ready):
                if worker not in self.live:
                    self.live.append(worker)
                return time.monotonic()
            await asyncio.sleep(0.1)
        raise RuntimeError(f"carebot {worker.name} was not ready within 180 s:\n{worker.log_tail()}")

    def _acked(self) -> int:
        return sum(len(p.acked_at) for p in self.patients)

    async def run(self, timeout_s: float) -> dict[str, Any]:
        for worker in self.workers:
            await self._start(worker)
        total = sum(len(p.texts) for p in self.patients)
        started = time.monotonic()
        tasks = [asyncio.create_task(self._patient(p)) for p in self.patients]
        plan = [(k + 1) / (self.kills + 1) for k in range(self.kills)]  # kill at these shares of acknowledged
        try:
            while plan and time.monotonic() - started < timeout_s:
                if self._acked() >= plan[0] * total:
                    plan.pop(0)
                    victim = self.workers[-1]
                    self.live.remove(victim)
                    killed = time.monotonic()
                    await asyncio.to_thread(victim.kill)
                    if self.backend == "sqlite":  # restarted at once, as systemd would
                        ready = await self._start(victim)
                    else:  # the other worker carries on alone
                        ready = killed
                    self.disruptions.append(Disruption(killed, ready))
                await asyncio.sleep(0.05)
            await asyncio.wait_for(asyncio.gather(*tasks), max(1.0, timeout_s - (time.monotonic() - started)))
        except asyncio.TimeoutError:
            pass
        finally:
            self.stop.set()
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        seconds = time.monotonic() - started
        logs = await asyncio.gather(*(asyncio.to_thread(self._log_of, p) for p in self.patients))
        return self._figures(logs, seconds, total)

    def _log_of(self, patient: Patient) -> list[dict[str, Any]]:
        """The conversation's whole log, through the HTTP API of a live worker."""
        worker = (self.live or self.workers)[patient.n % len(self.live or self.workers)]
        request = urllib.request.Request(f"http://127.0.0.1:{worker.port}/webchat/api/poll?after=0&wait=0",
                                         headers={"Authorization": f"Bearer {patient.token}"})
        for _ in range(5):
            try:
                with urllib.request.urlopen(request, timeout=30) as response:
                    return list(json.loads(response.read())["messages"])
            except OSError:
                time.sleep(1)
        return []

    def _figures(self, logs: list[list[dict[str, Any]]], seconds: float, total: int) -> dict[str, Any]:
        lost = doubled_replies = doubled_messages = out_of_order = unanswered = never_acked = 0
        delays: list[float] = []
        after_kill: list[float] = []  # replies to messages sent before a kill, arriving after it
        late = 0
        for patient, log in zip(self.patients, logs):
            mine = [e.get("client_id") for e in log if e.get("sender") == "patient"]
            replies = [str(e.get("text", ""))[5:] for e in log if e.get("sender") == "bot"
                       and str(e.get("text", "")).startswith("echo ")]
            lost += sum(1 for cid in patient.acked_at if cid not in mine)
            doubled_messages += len(mine) - len(set(mine))
            doubled_replies += len(replies) - len(set(replies))
            never_acked += len(patient.texts) - len(patient.acked_at)
            unanswered += sum(1 for t in patient.texts if t not in replies)
            order = [patient.texts.index(r) for r in replies if r in patient.texts]
            out_of_order += sum(1 for a, b in zip(order, order[1:]) if b < a)
            for i, text in enumerate(patient.texts):
                got, sent = patient.reply_at.get(text), patient.sent_at.get(patient.cid(i))
                if got is None or sent is None:
                    continue
                # the patient's view: from sending (or from the restart, for a message caught by it)
                due = max([sent] + [d.ready_at for d in self.disruptions if d.killed_at <= got])
                delay = max(0.0, got - due)  # a reply may beat our poll of /readyz by a moment
                delays.append(delay)
                if any(sent < d.killed_at <= got for d in self.disruptions):
                    after_kill.append(delay)
                if delay > self.deadline_s:
                    late += 1
        delays.sort()
        return {
            "backend": self.backend, "workers": len(self.workers), "conversations": len(self.patients),
            "messages": total, "kills": len(self.disruptions), "seconds": round(seconds, 1),
            "acknowledged": sum(len(p.acked_at) for p in self.patients), "never_acknowledged": never_acked,
            "acknowledged_then_lost": lost, "doubled_replies": doubled_replies,
            "doubled_messages": doubled_messages, "replies_out_of_order": out_of_order, "unanswered": unanswered,
            "late_replies": late, "deadline_s": self.deadline_s,
            "reply_delay_p50_s": round(delays[len(delays) // 2], 3) if delays else None,
            "reply_delay_max_s": round(delays[-1], 3) if delays else None,
            "replies_across_a_kill": len(after_kill),
            "across_a_kill_delay_max_s": round(max(after_kill), 3) if after_kill else None,
            "restart_s": [round(d.ready_at - d.killed_at, 1) for d in self.disruptions],
            "reconnects": sum(p.reconnects for p in self.patients),
            "errors": _merge(p.errors for p in self.patients),
        }


async def _quiet_send(ws: Any, frame: dict[str, Any]) -> None:
    try:
        await ws.send(json.dumps(frame))
    except Exception:  # noqa: BLE001 - the socket closed meanwhile: the reconnect resends it
        pass


def _merge(counts: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for c in counts:
        for k, v in c.items():
            out[k] = out.get(k, 0) + v
    return out


def run_chaos(backend: str = "sqlite", *, database_url: str = "", redis_url: str = "", conversations: int = 200,
              messages: int = 2000, kills: int | None = None, think_s: float = 3.0, deadline_s: float = 5.0,
              timeout_s: float = 600.0, seed: int = 1, workdir: Path | None = None) -> dict[str, Any]:
    """Run the chaos scenario and return its figures (see the module docstring). SQLite uses a fresh
    file; PostgreSQL + Redis use `database_url` and `redis_url` (already migrated by this call)."""
    from bot.store.migrate import upgrade

    if backend not in ("sqlite", "pg+redis"):
        raise ValueError(f"backend must be sqlite or pg+redis, not {backend!r}")
    with tempfile.TemporaryDirectory(prefix="carebot-chaos-") as tmp:
        work = workdir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        if backend == "sqlite":
            database_url, redis_url = f"sqlite:///{work / 'chaos.db'}", ""
        elif not database_url or not redis_url:
            raise ValueError("pg+redis needs --database-url and --redis-url")
        upgrade(database_url)
        chaos = Chaos(backend, database_url, redis_url, work, conversations=conversations, messages=messages,
                      kills=kills if kills is not None else (2 if backend == "sqlite" else 1), think_s=think_s,
                      deadline_s=deadline_s, seed=seed)
        try:
            figures = asyncio.run(chaos.run(timeout_s))
        finally:
            for worker in chaos.workers:
                worker.stop()
        bad = any(figures[k] for k in ("acknowledged_then_lost", "doubled_replies", "doubled_messages",
                                       "replies_out_of_order", "unanswered", "never_acknowledged", "late_replies"))
        if bad:
            figures["server_log_tail"] = "\n".join(w.log_tail(2000) for w in chaos.workers)
        return figures
