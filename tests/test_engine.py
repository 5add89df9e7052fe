"""The pure engine: step(state, inbound, now) -> (state, effects). No database, no clock."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from bot.engine.engine import Engine
from bot.flow.content import load_content
from bot.flow.loader import load_flows
from bot.types import Address, CancelTimer, Inbound, OpenTicket, RecordEvent, ScheduleTimer, Send
from tests.conftest import write_flows, write_messages

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=timezone(timedelta(hours=8)))
ADDR = Address("memory", "p1", "p1")

FLOWS = {
    "intake.yml": """
        id: intake
        triggers:
          - command: /intake
          - keyword: [看病, consult]
            match: first_word
        steps:
          - ask:
              key: q.need
              slot: need
              type: choice
              choices:
                - { value: quick, label: c.quick, match: [快速] }
                - { value: second, label: c.second }
          - ask: { key: q.age, slot: age, type: number, validate: { min: 0, max: 120 }, retries: 1 }
          - switch: need
            cases:
              quick: [{ say: s.quick }]
            default: [{ say: s.other }]
          - call: consent
          - if: age < 14
            then: [{ tag: [child] }]
            else: [{ tag: [adult] }]
          - ask: { key: q.when, slot: when, type: date, validate: { min: today } }
          - wait: { timeout: 1h, slot: extra, on_timeout: [{ say: s.timeout }] }
          - survey:
              id: csat
              questions: [{ id: score, ask: q.score, type: scale, min: 1, max: 5 }]
              thanks: s.thanks
          - end: s.bye
    """,
    "consent.yml": """
        id: consent
        interruptible: false
        steps:
          - ask: { key: q.agree, slot: agreed, type: yes_no }
          - record: consent
            data: { accepted: "{{ agreed }}" }
    """,
    "early.yml": """
        id: early
        triggers: [{ command: /early }]
        steps:
          - call: maybe
          - say: s.bye
    """,
    "maybe.yml": """
        id: maybe
        steps:
          - if: "true"
            then: [{ return: true }]
          - say: s.other
    """,
    "faq.yml": """
        id: faq
        triggers: [{ keyword: [价格, price], match: whole_word }, { button: faq }]
        steps: [{ say: s.price }]
    """,
}
MESSAGES = {
    "zh-CN": """
        q: {need: 您需要什么？, age: 患者几岁？, agree: 同意吗？, when: 哪天？, score: 打分, ext: 还有吗}
        c: {quick: 快速咨询, second: 第二意见}
        s: {quick: 好的快速, other: 其他, price: 价格30元, timeout: 超时了, thanks: 谢谢, bye: 再见}
    """,
    "en": """
        q: {need: What do you need?, age: How old?, agree: Agree?, when: Which day?, score: Score, ext: More?}
        c: {quick: Quick question, second: Second opinion}
        s: {quick: OK quick, other: Other, price: Price 30, timeout: Timed out, thanks: Thanks, bye: Bye}
    """,
}


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    content = load_content([write_messages(tmp_path / "content", MESSAGES)])
    return Engine(load_flows([write_flows(tmp_path / "flows", FLOWS)], content), content)


class Chat:
    def __init__(self, engine: Engine):
        self.engine = engine
        self.state = engine.new_state(self.msg("text", ""))
        self.now = NOW
        self.n = 0

    def msg(self, kind: str, text: str, **kw) -> Inbound:  # type: ignore[no-untyped-def]
        return Inbound(kind=kind, address=ADDR, message_id="x", received_at=NOW, text=text, **kw)  # type: ignore[arg-type]

    def send(self, text: str = "", kind: str = "text", **kw) -> list:  # type: ignore[no-untyped-def]
        before = self.state
        self.state, effects = self.engine.step(self.state, self.msg(kind, text, **kw), self.now)
        assert before is not self.state
        return effects

    def keys(self, effects: list) -> list[str]:
        return [e.outbound.key for e in effects if isinstance(e, Send)]


def test_step_is_pure(engine):
    chat = Chat(engine)
    state = chat.state
    a = engine.step(state, chat.msg("command", "/intake"), NOW)
    b = engine.step(state, chat.msg("command", "/intake"), NOW)
    assert state.stack == [] and a[0].to_dict() == b[0].to_dict()
    assert [e.to_dict() for e in a[1]] == [e.to_dict() for e in b[1]]


def test_a_whole_intake(engine):
    chat = Chat(engine)
    eff = chat.send("/intake", "command")
    assert chat.keys(eff) == ["q.need"]
    assert [b.value for b in eff[0].outbound.buttons] == ["quick", "second"]
    assert chat.keys(chat.send("快速")) == ["q.age"]  # a match word picks the choice
    assert chat.keys(chat.send("两百")) == ["repair.invalid.range", "q.age"]
    assert chat.keys(chat.send("十二岁")) == ["s.quick", "q.agree"]  # switch, then call consent
    assert chat.state.slots == {"need": "quick", "age": 12}
    eff = chat.send("", "choice", payload={"value": "yes"})
    assert any(isinstance(e, RecordEvent) and e.event == "consent" and e.data == {"accepted": True} for e in eff)
    assert "child" in chat.state.tags and chat.keys(eff) == ["q.when"]
    assert chat.keys(chat.send("昨天")) == ["repair.invalid.range", "q.when"]
    eff = chat.send("明天")
    assert chat.state.slots["when"] == "2026-03-03"
    timer = next(e for e in eff if isinstance(e, ScheduleTimer))
    assert timer.due_at == NOW + timedelta(hours=1) and chat.state.top.wait == "wait"
    eff = chat.engine.step(chat.state, chat.msg("timer", "", payload={"name": timer.name}), NOW)[1]
    chat.state = chat.engine.step(chat.state, chat.msg("timer", "", payload={"name": timer.name}), NOW)[0]
    assert chat.keys(eff) == ["s.timeout", "q.score"]
    assert [b.value for b in eff[-1].outbound.buttons] == ["1", "2", "3", "4", "5"]
    eff = chat.send("", "choice", payload={"value": "4"})
    survey = next(e for e in eff if isinstance(e, RecordEvent) and e.event == "survey")
    assert survey.data["answers"] == {"score": 4}
    assert chat.keys(eff) == ["s.thanks", "s.bye"] and chat.state.stack == []


def test_wait_answered_cancels_its_timer(engine):
    chat = Chat(engine)
    for text in ("/intake", "1", "30", "是", "2026-03-05"):
        chat.send(text, "command" if text.startswith("/") else "text")
    timer = chat.state.top.timer
    eff = chat.send("another photo coming")
    assert CancelTimer(timer) in eff and chat.state.slots["extra"] == "another photo coming"
    # a stale timeout after the reply does nothing
    assert chat.keys(chat.send("", "timer", payload={"name": timer})) == []


def test_retries_run_out_into_the_repair_flow(engine):
    chat = Chat(engine)
    chat.send("/intake", "command")
    chat.send("quick")
    assert chat.keys(chat.send("abc")) == ["repair.invalid.number", "q.age"]
    eff = chat.send("xyz")
    assert chat.keys(eff) == ["repair.retries_exhausted"]
    assert [s.flow for s in chat.state.stack] == ["retries_exhausted"] or chat.state.stack == []


def test_keyword_interrupts_only_as_the_whole_message_and_resumes(engine):
    chat = Chat(engine)
    chat.send("/intake", "command")
    chat.send("quick")
    # a keyword inside an answer is an answer; the whole message as keyword interrupts
    assert chat.keys(chat.send("what about the price")) == ["repair.invalid.number", "q.age"]
    eff = chat.send("价格")
    assert chat.keys(eff) == ["s.price", "q.age"]  # the paused question is asked again
    assert [f.flow for f in chat.state.stack] == ["intake"]


def test_non_interruptible_flow_ignores_keywords_but_not_commands(engine):
    chat = Chat(engine)
    for text in ("/intake", "1", "30"):
        chat.send(text, "command" if text.startswith("/") else "text")
    assert chat.state.top.flow == "consent"
    assert chat.keys(chat.send("价格")) == ["repair.invalid.yes_no", "q.agree"]
    assert chat.keys(chat.send("/cancel", "command")) == ["repair.cancelled"]
    assert chat.state.stack == []


def test_idle_precedence_keyword_first_word_whole_word_and_not_understood(engine):
    chat = Chat(engine)
    assert chat.keys(chat.send("看病 皮肤痒")) == ["q.need"]  # first_word
    chat.send("/cancel", "command")
    assert chat.keys(chat.send("请问价格是多少")) == ["s.price"]  # whole_word, Chinese: in the text
    assert chat.keys(chat.send("what is the price?")) == ["s.price"]
    assert chat.keys(chat.send("priceless")) == ["repair.not_understood"]
    chat.send("hmm")
    eff = chat.send("what")
    assert chat.keys(eff) == ["repair.not_understood_again"]
    assert [b.value for b in eff[0].outbound.buttons] == ["human", "menu"]
    assert chat.keys(chat.send("", "choice", payload={"value": "faq"})) == ["s.price"]


def test_human_repair_opens_a_ticket_and_switches_mode(engine):
    chat = Chat(engine)
    chat.send("/intake", "command")
    eff = chat.send("转人工")
    ticket = next(e for e in eff if isinstance(e, OpenTicket))
    assert ticket.reason == "patient_asked" and chat.state.mode == "human" and chat.state.stack == []


def test_restart_clears_slots_and_starts_over(engine):
    chat = Chat(engine)
    chat.send("/intake", "command")
    chat.send("1")
    assert chat.keys(chat.send("重新开始")) == ["repair.restarting", "common.welcome"]
    assert chat.state.slots == {}


def test_locale_fallback_and_switch(engine, tmp_path):
    chat = Chat(engine)
    chat.state.locale = "en"
    eff = chat.send("/intake", "command")
    assert eff[0].outbound.text == "What do you need?"
    assert [b.label for b in eff[0].outbound.buttons] == ["Quick question", "Second opinion"]
    assert chat.keys(chat.send("Second opinion")) == ["q.age"]  # the label in the patient's locale


def test_state_round_trips_through_json(engine):
    import json
    from dataclasses import fields

    from bot.engine.state import State

    chat = Chat(engine)
    chat.send("/intake", "command")
    chat.send("quick")
    data = json.loads(json.dumps(chat.state.to_dict()))
    assert set(data) == {f.name for f in fields(State)} - {"version"}  # to_dict misses no field
    again = State.from_dict(data, version=3)
    assert again.to_dict() == chat.state.to_dict() and again.version == 3


def test_return_ends_only_the_called_flow(engine):
    chat = Chat(engine)
    assert chat.keys(chat.send("/early", "command")) == ["s.bye"]
    assert chat.state.stack == []


def test_clear_all_keeps_what_it_is_told_to(engine, tmp_path):
    flows = {"c.yml": """
        id: c
        triggers: [{ command: /c }]
        steps:
          - set: { consent_ok: true, need: quick }
          - clear: all
            keep: [consent_ok]
          - say: s.bye
    """}
    content = load_content([write_messages(tmp_path / "content2", MESSAGES)])
    eng = Engine(load_flows([write_flows(tmp_path / "flows2", flows)], content), content)
    chat = Chat(eng)
    chat.send("/c", "command")
    assert chat.state.slots == {"consent_ok": True}


def test_everyday_answers_are_understood():
    from bot.engine.answers import Invalid, match_choice, parse_yes_no
    from bot.flow.compiler import AskSpec
    from bot.flow.model import Choice, Validation

    for yes in ("是啊", "看过", "yes please", "嗯嗯"):
        assert parse_yes_no(yes) is True
    for no in ("不用了", "没去过", "no thanks", "nah"):
        assert parse_yes_no(no) is False
    spec = AskSpec("q", "who", "choice", [Choice(value="self", label="l.me", match=["me"]),
                                           Choice(value="other", label="l.other", match=["someone else"])],
                   Validation(), 2, None, False)
    labels = {"self": "Me", "other": "Someone else"}
    assert match_choice(spec, "it's for someone else", "", labels) == "other"  # "me" is not in "someone"
    assert match_choice(spec, "it's for me", "", labels) == "self"
    with pytest.raises(Invalid):
        match_choice(spec, "nobody", "", labels)
    # session 11 walkthrough: a reply that opens with a yes or a no and goes on; a good part of one label
    for yes in ("yes, I agree", "是的，我同意", "yep sounds good", "可以的", "是的我同意"):
        assert parse_yes_no(yes) is True
    for no in ("不是，我35岁", "no, it's for my son", "不行"):
        assert parse_yes_no(no) is False
    for unclear in ("yes but I want to withdraw", "是的 但是现在好多了", "需要去医院吗"):
        with pytest.raises(Invalid):
            parse_yes_no(unclear)
    assert parse_yes_no("是的，我同意", exact=True) is True
    with pytest.raises(Invalid):
        parse_yes_no("是的 孙子才六岁", exact=True)
    need = AskSpec("q", "need", "choice", [Choice(value="quick", label="l.quick"), Choice(value="visit", label="l.visit")],
                   Validation(), 2, None, False)
    need_labels = {"quick": "有个问题想尽快问问医生", "visit": "想预约线下看诊"}
    assert match_choice(need, "想尽快问问医生", "", need_labels) == "quick"
    with pytest.raises(Invalid):
        match_choice(need, "医生", "", need_labels)  # too short to mean one of them


def test_a_typed_request_at_a_yes_no_question_starts_its_flow_unless_the_flow_is_not_interruptible(tmp_path):
    from bot.understand.intents import load_intents

    flows = {**FLOWS, "yn.yml": """
        id: yn
        triggers: [{ command: /yn }]
        steps:
          - ask: { key: q.agree, slot: seen, type: yes_no }
          - say: s.bye
    """}
    content = load_content([write_messages(tmp_path / "content", MESSAGES)])
    intents = load_intents(Path(__file__).resolve().parents[1] / "content", model=False)
    engine = Engine(load_flows([write_flows(tmp_path / "flows", flows)], content), content, intents=intents)
    for locale, request, answer, value in (("en", "can I talk to a real person", "yes please", True),
                                           ("zh-CN", "机器人听不懂 能不能找个真人", "没有", False)):
        chat = Chat(engine)
        chat.state.locale = locale
        chat.send("/yn", "command")
        eff = chat.send(request)  # a request, not an answer: the human flow starts over the question
        routed = [e.data for e in eff if isinstance(e, RecordEvent) and e.event == "intent_routed"]
        assert routed and routed[0]["flow"] == "human", chat.keys(eff)
        assert any(isinstance(e, OpenTicket) for e in eff)
        chat = Chat(engine)
        chat.state.locale = locale
        chat.send("/yn", "command")
        assert chat.keys(chat.send(answer)) == ["s.bye"]  # a real answer still answers
        assert chat.state.slots["seen"] is value
    chat = Chat(engine)  # consent is `interruptible: false`: the request is not taken over it
    for text in ("/intake", "1", "30"):
        chat.send(text, "command" if text.startswith("/") else "text")
    assert chat.state.top.flow == "consent"
    assert chat.keys(chat.send("can I talk to a real person")) == ["repair.invalid.yes_no", "q.agree"]
