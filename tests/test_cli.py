"""The `carebot` command as a person uses it."""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import replace
from pathlib import Path

from bot.cli import main
from bot.clock import ManualClock
from bot.settings import Settings
from tests.conftest import ROOT, python_path, T0, write_flows

CAREBOT = [sys.executable, "-m", "bot.cli"]


def test_validate_passes_on_the_shipped_flows(capsys):
    assert main(["validate"]) == 0
    out = capsys.readouterr()
    assert out.out.startswith("OK: ")
    # departments triage can suggest that no staff account can join are named (a note, not an error)
    assert "note: content/departments suggests" in out.err and "ent," in out.err and "content/handoff.yml" in out.err


def test_validate_names_file_line_and_valid_step_types(tmp_path, capsys):
    flows = write_flows(tmp_path / "flows", {"bad.yml": "id: bad\nsteps:\n  - sya: common.welcome\n"})
    assert main(["validate", "--flows", str(flows)]) == 1
    err = capsys.readouterr().err
    assert "bad.yml:3: steps[0]: unknown step type 'sya' (did you mean 'say'?)" in err


def test_schema_is_written_and_describes_steps(tmp_path, capsys):
    out = tmp_path / "schema.json"
    assert main(["schema", "-o", str(out)]) == 0
    schema = json.loads(out.read_text())
    text = json.dumps(schema)
    assert schema["title"] == "carebot flow file" and '"ask"' in text and '"handoff"' in text


def test_shipped_schema_is_current():
    from bot.flow.schema import flow_schema

    shipped = json.loads((ROOT / "flows" / "schema.json").read_text())
    assert shipped == json.loads(json.dumps(flow_schema())), "run `carebot schema` and commit flows/schema.json"


def test_conversation_test_command_reports_pass_and_fail(tmp_path, capsys):
    good = tmp_path / "good.yml"
    good.write_text("name: help works\nsteps:\n  - user: /help\n  - expect: { key: repair.help }\n")
    bad = tmp_path / "bad.yml"
    bad.write_text("name: wrong expectation\nsteps:\n  - user: /help\n  - expect: { key: repair.nope }\n")
    assert main(["test", str(good), str(bad)]) == 1
    out = capsys.readouterr().out
    assert out.strip().splitlines()[-1] == "1 passed, 1 failed"
    assert "bad.yml:4: expected a message with {'key': 'repair.nope'}" in out


def test_triage_command_json(capsys):
    assert main(["triage", "宝宝两个月，发烧38度5", "--locale", "zh-CN", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["level"] == "emergency" and "120" in result["emergency_numbers"]


def test_chat_in_the_terminal_like_a_new_user(tmp_path):
    from adapters.terminal.chat import run_chat

    settings = replace(Settings(), database_url=f"sqlite:///{tmp_path / 'chat.db'}",
                       flows_dir=ROOT / "flows", content_dir=ROOT / "content")
    typed = io.StringIO("你好\n:state\n/checkin\n7\n2\n:advance 1d\n:quit\n")
    out = io.StringIO()
    assert run_chat(settings, user="new", inp=typed, out=out, clock=ManualClock(T0)) == 0
    text = out.getvalue()
    assert "carebot chat" in text and "[bot]" in text
    assert "   1. 0" in text  # the check-in scale shown as numbered buttons
    assert "2. 否" in text or "2. No" in text  # yes/no as buttons; "2" pressed the second one
    assert "(clock is now" in text and text.count("今天感觉怎么样") == 2  # the next day's check-in came


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_run_serves_health_and_metrics(tmp_path):
    port = _free_port()
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'run.db'}", "CAREBOT_PORT": str(port),
           "CAREBOT_SECRET": "test-secret", "PYTHONPATH": python_path()}
    subprocess.run([*CAREBOT, "db", "upgrade"], cwd=ROOT, env=env, check=True, capture_output=True)
    proc = subprocess.Popen([*CAREBOT, "run", "--no-migrate"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                    assert json.load(r)["status"] == "ok"
                    break
            except OSError:
                assert proc.poll() is None, proc.stderr.read().decode()
                assert time.monotonic() < deadline, "carebot run never answered /healthz"
                time.sleep(0.05)
        while True:  # liveness first; readiness once flows, database and adapters are up
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as r:
                    ready = json.load(r)
                    assert ready["ready"] is True
                    assert ready["models"] == ["triage", "intents"]  # ready means the learned layers loaded
                    break
            except OSError:
                assert time.monotonic() < deadline, "carebot run never became ready"
                time.sleep(0.05)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
            assert b"carebot_inbound_total" in r.read()
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_run_with_a_broken_flow_says_where_and_exits(tmp_path):
    flows = write_flows(tmp_path / "flows", {"bad.yml": "id: bad\nsteps:\n  - sya: common.welcome\n"})
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'run.db'}", "CAREBOT_PORT": str(_free_port()),
           "CAREBOT_FLOWS": str(flows), "CAREBOT_SECRET": "test-secret", "PYTHONPATH": python_path()}
    proc = subprocess.run([*CAREBOT, "run"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert "bad.yml:3: steps[0]: unknown step type 'sya'" in proc.stderr


def test_staff_add_and_list(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'staff.db'}"
    assert main(["staff", "add", "d_wang", "--name", "王建国", "--title", "主任医师", "--department", "dermatology",
                 "--password", "correct horse", "--database-url", url]) == 0
    assert main(["staff", "add", "d_wang", "--password", "correct horse", "--database-url", url]) == 1
    assert "exists already" in capsys.readouterr().err
    assert main(["staff", "add", "x", "--role", "wizard", "--password", "correct horse", "--database-url", url]) == 1
    assert "role 'wizard' is not one of admin, operator, doctor" in capsys.readouterr().err
    assert main(["staff", "list", "--database-url", url]) == 0
    assert "d_wang\tdoctor\t王建国 主任医师\tdermatology" in capsys.readouterr().out


def test_staff_add_without_a_terminal_or_a_password_says_how_to_give_one(tmp_path, capsys, monkeypatch):
    """From a script (no terminal) the prompt cannot be asked: a clear message, not a traceback."""
    monkeypatch.delenv("CAREBOT_STAFF_PASSWORD", raising=False)
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    url = f"sqlite:///{tmp_path / 'staff.db'}"
    assert main(["staff", "add", "d_sun", "--name", "孙医生", "--database-url", url]) == 1
    err = capsys.readouterr().err
    assert "no password for d_sun" in err and "--password" in err and "CAREBOT_STAFF_PASSWORD" in err
    assert "Traceback" not in err
    assert main(["staff", "list", "--database-url", url]) == 0
    assert "d_sun" not in capsys.readouterr().out  # nothing half-made


def test_shipped_conversation_tests_run_every_step_type_and_repair_flow(capsys):
    assert main(["test", "tests/conversations", "--coverage"]) == 0
    out = capsys.readouterr().out
    assert "coverage: step types not run: none" in out
    assert "coverage: repair flows not run: none" in out
    assert "coverage: flows not run: none" in out


def test_output_into_a_closed_pipe_ends_quietly() -> None:
    """`carebot triage eval … | head`: when the reader goes away, no traceback, exit status 1."""
    code = ("import sys; from bot import cli; "
            "cli._main = lambda argv: (print('x' * 200_000), 0)[1]; sys.exit(cli.main([]))")
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env={**os.environ, "PYTHONPATH": python_path()},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # the reader is gone before the first write
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 1
    assert "Traceback" not in err and "BrokenPipe" not in err


def test_a_database_that_cannot_be_reached_is_one_sentence_not_a_traceback(capsys):
    """`carebot db/run/staff/bench` with a database not created yet, a server not there or a kind carebot
    does not run on: exit 2 with the URL (password hidden), the reason and what would be valid."""
    url = "postgresql://postgres:s3cret@127.0.0.1:5432/carebot_no_such_database"
    assert main(["db", "upgrade", "--database-url", url]) == 2
    err = capsys.readouterr().err
    assert "cannot use the database postgresql://postgres:***@127.0.0.1:5432/carebot_no_such_database" in err
    assert "does not exist" in err and "createdb" in err and "s3cret" not in err and "Traceback" not in err
    assert main(["db", "upgrade", "--database-url", "mysql://someone@db/care"]) == 2
    assert "SQLite or PostgreSQL only" in capsys.readouterr().err
