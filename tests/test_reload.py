"""Reloading flows and content without a restart: validated first, a broken change never replaces a
working one, a conversation waiting at a question keeps its place; `carebot reload` against a real
`carebot run`; with Redis every worker reloads."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path

import pytest

from bot.coord.redis import RedisCoord
from tests.conftest import ROOT, python_path

FLOWS = {"ask.yml": """
    id: ask
    triggers:
      - keyword: [start]
    steps:
      - say: ask.hello
      - id: name
        ask: {key: ask.name, slot: name}
      - say: ask.done
    """}
MESSAGES = {"zh-CN": """
    ask.hello: 你好
    ask.name: 你叫什么？
    ask.done: "谢谢 {{ name }}"
    """, "en": """
    ask.hello: Hello
    ask.name: Your name?
    ask.done: "Thanks {{ name }}"
    """}


def _write(flows_dir: Path, name: str, text: str) -> None:
    (flows_dir / name).write_text(textwrap.dedent(text), encoding="utf-8")


async def test_a_good_change_takes_effect_and_a_waiting_conversation_keeps_its_place(make_bot):
    bot, platform, _ = make_bot(FLOWS, MESSAGES)
    await bot.start(background=False)
    try:
        await bot.runtime.handle(platform.inbound("p1", "start"))
        # the operator adds a step before the question and rewords the ending, while p1 is asked
        flows_dir, content_dir = bot.settings.flows_dir, bot.settings.content_dir
        _write(flows_dir, "ask.yml", FLOWS["ask.yml"].replace("      - say: ask.hello\n",
                                                               "      - say: ask.hello\n      - say: ask.more\n"))
        _write(content_dir / "messages", "zh-CN.yml", MESSAGES["zh-CN"].replace("谢谢", "多谢").rstrip(" ") + "    ask.more: 再说一句\n")
        _write(content_dir / "messages", "en.yml", MESSAGES["en"].rstrip(" ") + "    ask.more: One more\n")
        result = await bot.reloads.here("test")
        assert result.ok and result.flows >= 1, result.text()
        await bot.runtime.handle(platform.inbound("p1", "小王"))  # the answer to the question asked before
        await bot.sender.idle()
        assert platform.texts("p1") == ["你好", "你叫什么？", "多谢 小王"]
        await bot.runtime.handle(platform.inbound("p2", "start"))  # a new conversation runs the new flow
        await bot.sender.idle()
        assert platform.texts("p2") == ["你好", "再说一句", "你叫什么？"]
    finally:
        await bot.stop()


async def test_a_broken_flow_is_refused_with_file_and_line_and_the_old_one_keeps_serving(make_bot):
    bot, platform, _ = make_bot(FLOWS, MESSAGES)
    await bot.start(background=False)
    try:
        await bot.runtime.handle(platform.inbound("p1", "start"))
        engine = bot.engine
        _write(bot.settings.flows_dir, "ask.yml", FLOWS["ask.yml"].replace("say: ask.done", "sya: ask.done"))
        result = await bot.reloads.here("test")
        assert not result.ok
        assert any("ask.yml:9: steps[2]:" in p and "unknown step type 'sya'" in p for p in result.problems), result.problems
        assert "refused, the running flows and content keep serving" in result.text()
        assert bot.engine is engine and bot.runtime.engine is engine
        await bot.runtime.handle(platform.inbound("p1", "小王"))
        await bot.sender.idle()
        assert platform.texts("p1")[-1] == "谢谢 小王"
        # a message key the flows name but no catalogue holds is refused too
        _write(bot.settings.flows_dir, "ask.yml", FLOWS["ask.yml"].replace("say: ask.done", "say: ask.gone"))
        result = await bot.reloads.here("test")
        assert not result.ok and any("ask.gone" in p for p in result.problems), result.problems
        assert bot.engine is engine
    finally:
        await bot.stop()


@pytest.mark.redis
async def test_with_redis_a_reload_asked_of_one_worker_reloads_every_worker(make_bot, redis_url):
    prefix = f"reload-test-{os.getpid()}-{time.monotonic_ns()}:"
    a, pa, clock = make_bot(FLOWS, MESSAGES, coord=RedisCoord(redis_url, prefix=prefix), redis_url=redis_url)
    b, pb, _ = make_bot(FLOWS, MESSAGES, coord=RedisCoord(redis_url, prefix=prefix), redis_url=redis_url, clock=clock)
    b_flows = b.settings.flows_dir
    await a.start(background=False)
    await b.start(background=False)
    a.reloads.start()
    b.reloads.start()
    try:
        import asyncio

        await asyncio.sleep(0.2)  # b's subscription reaches Redis
        engine_b = b.engine
        _write(a.settings.flows_dir, "ask.yml", FLOWS["ask.yml"].rstrip(" ") + "      - say: ask.hello\n")
        _write(b_flows, "ask.yml", FLOWS["ask.yml"].rstrip(" ") + "      - say: ask.hello\n")
        results = await a.reloads.everywhere("test")
        assert sorted(r.worker for r in results) == sorted([a.settings.worker_id, b.settings.worker_id])
        assert all(r.ok for r in results)
        assert b.engine is not engine_b
        # a broken copy on one worker: that worker refuses and says so; the other applies
        _write(b_flows, "ask.yml", "id: ask\nsteps:\n  - sya: x\n")
        results = {r.worker: r for r in await a.reloads.everywhere("test")}
        assert results[a.settings.worker_id].ok and not results[b.settings.worker_id].ok
    finally:
        await a.stop()
        await b.stop()


# -- the command against a real server ---------------------------------------------------------------

CAREBOT = [sys.executable, "-m", "bot.cli"]


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _post(url: str, body: dict, token: str = "") -> dict:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json",
                                          **({"Authorization": f"Bearer {token}"} if token else {})})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.load(r)


def _messages(base: str, token: str, after: int) -> list[dict]:
    req = urllib.request.Request(f"{base}/webchat/api/poll?after={after}&wait=5",
                                 headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req, timeout=15) as r:
        return json.load(r)["messages"]


def _bot_texts_until(base: str, token: str, want: str, seen: list[dict]) -> list[str]:
    deadline = time.monotonic() + 20
    while not any(m.get("text") == want for m in seen):
        assert time.monotonic() < deadline, f"never got {want!r}: {[m.get('text') for m in seen]}"
        seen.extend(_messages(base, token, max((m["seq"] for m in seen), default=0)))
    return [m["text"] for m in seen if m.get("sender") == "bot"]


def test_carebot_reload_applies_a_good_change_refuses_a_broken_one_and_keeps_the_conversation(tmp_path):
    import shutil

    flows, content = tmp_path / "flows", tmp_path / "content"
    shutil.copytree(ROOT / "flows", flows)
    shutil.copytree(ROOT / "content", content)
    _write(flows, "quiz.yml", """
        id: quiz
        triggers:
          - command: /quiz
        steps:
          - say: quiz.hello
          - id: colour
            ask: {key: quiz.colour, slot: colour}
          - say: quiz.done
        """)
    for locale, (hello, colour, done) in {"zh-CN": ("开始", "什么颜色？", "好的"),
                                           "en": ("Start", "Which colour?", "Fine")}.items():
        (content / "messages" / locale / "quiz.yml").write_text(
            f"quiz.hello: {hello}\nquiz.colour: {colour}\nquiz.done: {done}\n", encoding="utf-8")
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'run.db'}", "CAREBOT_PORT": str(port),
           "CAREBOT_FLOWS": str(flows), "CAREBOT_CONTENT": str(content), "CAREBOT_SECRET": "reload-secret",
           "CAREBOT_MEDIA_DIR": str(tmp_path / "media"), "PYTHONPATH": python_path()}
    env.pop("REDIS_URL", None)
    subprocess.run([*CAREBOT, "db", "upgrade"], cwd=tmp_path, env=env, check=True, capture_output=True)
    proc = subprocess.Popen([*CAREBOT, "run", "--no-migrate", "--log-format", "json"], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{base}/readyz", timeout=2) as r:
                    if json.load(r)["ready"]:
                        break
            except OSError:
                pass
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, "carebot run never became ready"
            time.sleep(0.1)
        token = _post(f"{base}/webchat/api/session", {})["token"]
        _post(f"{base}/webchat/api/send", {"id": "c1", "text": "/quiz"}, token)
        seen: list[dict] = []
        _bot_texts_until(base, token, "什么颜色？", seen)

        def reload() -> subprocess.CompletedProcess[str]:
            return subprocess.run([*CAREBOT, "reload", "--port", str(port)], cwd=tmp_path, env=env,
                                  capture_output=True, text=True, timeout=60)

        # broken: refused, named by file and line; the old flow keeps serving
        good = (flows / "quiz.yml").read_text(encoding="utf-8")
        (flows / "quiz.yml").write_text(good.replace("- say: quiz.done", "- sya: quiz.done"), encoding="utf-8")
        refused = reload()
        assert refused.returncode == 1, refused.stdout + refused.stderr
        assert "refused, the running flows and content keep serving" in refused.stderr
        assert f"{flows / 'quiz.yml'}:9: steps[2]: unknown step type 'sya'" in refused.stderr
        # good: the ending is reworded; the waiting question is answered with the new words
        (flows / "quiz.yml").write_text(good, encoding="utf-8")
        (content / "messages" / "zh-CN" / "quiz.yml").write_text(
            "quiz.hello: 开始\nquiz.colour: 什么颜色？\nquiz.done: 记下了：{{ colour }}\n", encoding="utf-8")
        applied = reload()
        assert applied.returncode == 0, applied.stdout + applied.stderr
        assert "reloaded" in applied.stdout
        _post(f"{base}/webchat/api/send", {"id": "c2", "text": "蓝色"}, token)
        texts = _bot_texts_until(base, token, "记下了：蓝色", seen)
        assert "好的" not in texts
        # SIGHUP reloads too (the good configuration stays good)
        proc.send_signal(signal.SIGHUP)
        time.sleep(1.0)
        assert proc.poll() is None
        # a wrong token is refused
        bad = subprocess.run([*CAREBOT, "reload", "--port", str(port)], cwd=tmp_path,
                             env={**env, "CAREBOT_SECRET": "another"}, capture_output=True, text=True, timeout=60)
        assert bad.returncode == 2 and "wrong reload token" in bad.stderr
    finally:
        proc.terminate()
        _out, err = proc.communicate(timeout=30)
    events = [json.loads(line) for line in err.decode().splitlines() if line.startswith("{")]
    reloads = [(e["ok"], e["by"]) for e in events if e.get("event") == "reload"]
    assert reloads == [(False, "cli"), (True, "cli"), (True, "signal")]
    assert not any("蓝色" in line for line in err.decode().splitlines())


# -- the console's button -------------------------------------------------------------------------------

from tests.test_console import Browser, Setup, derm, flash, setup  # noqa: E402,F401 - fixtures used below


def test_an_admin_reloads_from_the_console_and_a_broken_change_is_shown_not_applied(derm: Setup, tmp_path) -> None:
    import shutil
    from dataclasses import replace

    flows, content = tmp_path / "flows-live", tmp_path / "content-live"
    shutil.copytree(ROOT / "flows", flows)
    shutil.copytree(ROOT / "content", content)
    derm.bot.settings = replace(derm.bot.settings, flows_dir=flows, content_dir=content)
    admin, doctor = Browser(derm), Browser(derm)
    admin.login("admin")
    doctor.login("d_li")
    assert doctor.post("/console/admin/reload").status_code == 403
    done = admin.post("/console/admin/reload", csrf_from="/console/audit", follow=True)
    assert done.status_code == 200 and "Reloaded:" in flash(done)
    engine = derm.bot.engine
    start = flows / "start.yml"
    start.write_text(start.read_text(encoding="utf-8") + "\n\tbroken: [\n", encoding="utf-8")
    refused = admin.post("/console/admin/reload", csrf_from="/console/audit")
    assert refused.status_code == 422
    assert "Not reloaded; the running version keeps serving" in refused.text
    assert f"{start}:" in refused.text and "a tab at column" in refused.text
    assert derm.bot.engine is engine
    assert [e.detail for e in derm.audit(action="reload")][-1] is not None
    assert [e.actor for e in derm.audit(action="reload")] == ["staff:admin", "staff:admin"]
