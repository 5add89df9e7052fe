"""Timer names: templated per conversation (one per medication plan), routed by kind."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from bot.engine.engine import Engine
from bot.errors import ConfigError
from bot.flow.content import load_content
from bot.flow.loader import load_flows
from bot.runtime.timers import TimerLoop
from bot.store.store import DueTimer
from bot.types import Address, CancelTimer, Inbound, ScheduleTimer, Send
from tests.conftest import write_flows, write_messages

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=timezone(timedelta(hours=8)))
ADDR = Address("memory", "p1", "p1")
MESSAGES = {"en": "t: {dose: 'Time for {{ plan_id }}'}", "zh-CN": "t: {dose: '该吃 {{ plan_id }} 了'}"}
FLOWS = {
    "plan.yml": """
        id: plan
        triggers: [{command: /plan}]
        steps:
          - ask: {key: t.dose, slot: plan_id, type: text}
          - schedule: {timer: "med:{{ plan_id }}", in: 1d, payload: {plan_id: "{{ plan_id }}"}}
    """,
    "stop.yml": """
        id: stop
        triggers: [{command: /stop}]
        steps:
          - ask: {key: t.dose, slot: plan_id, type: text}
          - cancel: "med:{{ plan_id }}"
    """,
    "dose.yml": """
        id: dose
        triggers: [{timer: med}]
        steps:
          - say: t.dose
    """,
}


def _engine(tmp_path: Path, flows: dict[str, str]) -> Engine:
    content = load_content([write_messages(tmp_path / "content", MESSAGES)])
    return Engine(load_flows([write_flows(tmp_path / "flows", flows)], content), content)


def _run(engine: Engine, *texts: str, state=None):  # type: ignore[no-untyped-def]
    effects: list = []
    for text in texts:
        inbound = Inbound(kind="command" if text.startswith("/") else "text", address=ADDR, message_id=text,
                          received_at=NOW, text=text)
        state = state or engine.new_state(inbound)
        state, effects = engine.step(state, inbound, NOW)
    return state, effects


def test_one_conversation_holds_a_timer_per_plan(tmp_path):
    engine = _engine(tmp_path, FLOWS)
    state, first = _run(engine, "/plan", "p1")
    state, second = _run(engine, "/plan", "p2", state=state)
    names = [e.name for e in first + second if isinstance(e, ScheduleTimer)]
    assert names == ["med:p1", "med:p2"]
    _state, stopped = _run(engine, "/stop", "p1", state=state)
    assert [e for e in stopped if isinstance(e, CancelTimer)] == [CancelTimer("med:p1")]


def test_a_trigger_of_the_kind_answers_every_templated_name(tmp_path):
    engine = _engine(tmp_path, FLOWS)
    state, _ = _run(engine, "/plan", "p2")
    due = Inbound(kind="timer", address=ADDR, message_id="timer:1", received_at=NOW,
                  payload={"name": "med:p2", "plan_id": "p2"})
    _state, effects = engine.step(state, due, NOW)
    assert [e.outbound.key for e in effects if isinstance(e, Send)] == ["t.dose"]


@pytest.mark.parametrize("name", ["sla:first:T1", "page:ladder:{{ x }}", "wait:mine"])
def test_a_flow_may_not_use_the_runtimes_timer_kinds(tmp_path, name):
    flows = {"bad.yml": f"""
        id: bad
        triggers: [{{command: /bad}}]
        steps:
          - schedule: {{timer: "{name}", in: 1h}}
    """}
    with pytest.raises(ConfigError) as info:
        _engine(tmp_path, flows)
    assert "the runtime's own" in str(info.value) and "bad.yml" in str(info.value)


async def test_the_timer_loop_routes_by_kind_and_refuses_a_second_handler():
    loop = TimerLoop(runtime=None, store=None, clock=None)  # type: ignore[arg-type]
    seen: list[str] = []

    async def clocks(timer: DueTimer) -> None:
        seen.append(timer.name)

    loop.register("sla", clocks)
    with pytest.raises(ValueError):
        loop.register("sla", clocks)
    assert await loop._fire(DueTimer(7, "memory:p1", "sla:first:T1", NOW, {}, ADDR)) == 1
    assert seen == ["sla:first:T1"]
