"""The conversation engine: `step(state, inbound, now) -> (state', effects)`.

Pure: no I/O, no clock, no randomness. Everything that touches the world comes back as an effect.
Trigger precedence (docs/flows.md keeps the operator's version of this list):

1. `action_result` resumes the flow that asked for the action.
2. `timer`: a timer scheduled with `flow:` starts that flow; a waiting step's timeout runs its
   `on_timeout`; otherwise a flow with a matching `timer:` trigger starts. A stale timer is ignored.
3. A slash command that a flow declares always starts it — even over a non-interruptible flow.
4. A button press answers the waiting question when it is one of its choices; otherwise a flow
   with that `button:` trigger starts.
5. While a flow waits for an answer, a keyword interrupts it only when the whole message is the
   keyword (`exact` match), and never when the flow says `interruptible: false`. Anything else
   answers the question.
6. With nothing waiting: keyword triggers (higher `priority` first, then file order), then
   `first_contact` for a new conversation, then a typed request understood (bot.understand.intents),
   then the `not_understood` repair flow.
7. Typed requests at a question: at the menu (a choice question of the start flow) free text that is
   not exactly an option starts the flow it asks for when the intent is confident ("I have a rash"
   → intake with the complaint kept), replacing the menu. At any other choice question an answer that
   no option matches is read with the option words of content/understand, and only then, if it is a
   confident request for a flow not already running, starts that flow over the question.

A flow started by a trigger pauses the running flows and resumes them (re-asking their question)
when it ends, unless it is `takeover: true` (cancel, restart…), which replaces them.

Why this file is over 400 lines: it is one interpreter — the trigger precedence above and one
`_op_<name>` handler per compiled instruction, dispatched by name from the step loop and sharing
the turn being built. The parts that are a concern of their own already live beside it (answer
parsing in `answers.py`, the state in `state.py`, typed requests in bot/understand); splitting the
handlers further would put the precedence list and the instructions it drives in different files.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from bot.actions.base import ActionResult
from bot.engine.answers import NO, SKIP, Invalid, clean, exact_choice, read_answer
from bot.engine.state import Frame, State
from bot.errors import StepError
from bot.flow.compiler import AskSpec, CompiledFlow, Instr
from bot.flow.content import Content
from bot.flow.loader import FlowSet, normalize
from bot.timer_names import WAIT, kind_of
from bot.understand.intents import Intents
from bot.types import (
    Button, CallAction, CancelTimer, Effect, Inbound, OpenTicket, Outbound, RecordEvent,
    ScheduleTimer, Send, Tag,
)

log = logging.getLogger("carebot.engine")

MAX_OPS_PER_TURN = 1000
_CJK = re.compile(r"[\u3400-\u9fff]")
_WORD_SPLIT = re.compile(r"[\s,，。.!！?？;；:：、]+")


def mentions(text: str, word: str, words: set[str] | None = None) -> bool:
    """A keyword in a normalised message, as `whole_word` triggers read it: Chinese anywhere, Latin
    words whole (one word among the message's `words`, a phrase on word boundaries)."""
    if _CJK.search(word):
        return word in text
    if " " in word:
        return re.search(rf"\b{re.escape(word)}\b", text) is not None
    return word in (words if words is not None else set(_WORD_SPLIT.split(text)))


@dataclass
class Turn:
    """The working set of one step: the state being changed and the effects produced so far."""

    state: State
    inbound: Inbound
    now: datetime
    effects: list[Effect] = field(default_factory=list)
    ops: int = 0
    constants: dict[str, Any] = field(default_factory=dict)
    locale_at_start: str = ""  # the conversation's language when the step began (a flow may change it)

    def context(self, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        s = self.state
        ctx = {**self.constants, **s.slots, "slots": s.slots, "input": self.inbound.text, "locale": s.locale,
               "now": self.now, "channel": s.address.channel, "is_group": s.address.is_group,
               "tags": s.tags, "mode": s.mode, "triage_level": s.triage_level,
               "misunderstood": s.misunderstood, "turns": s.turns, "opted_out": s.opted_out}
        # what a timer carried (a dose reminder's ids) and which button was pressed (`dose:taken:42`)
        kind = self.inbound.kind
        ctx["timer"] = self.inbound.payload if kind == "timer" else {}
        ctx["button"] = str(self.inbound.payload.get("value", "")) if kind == "choice" else ""
        if extra:
            ctx.update(extra)
        return ctx


# a message that only greets (你好, hello …): at a question it is answered with a greeting and the question
_GREETING = re.compile(r"(?:你好|您好|你好呀|您好呀|哈喽|嗨|在吗|在不在|医生你好|医生您好|hi|hello|hey|hiya|"
                       r"good morning|good afternoon|good evening)[\s!！。.,，~～?？]*")

class Engine:
    def __init__(self, flows: FlowSet, content: Content, start_flow: str = "start",
                 constants: dict[str, Any] | None = None, intents: Intents | None = None):
        self.flows = flows
        self.content = content
        self.start_flow = start_flow
        # typed requests and typed answers (content/understand); None: options and triggers only
        self.intents = intents
        # operator settings flows may read, e.g. `care.consent.version` (read-only, same every turn)
        self.constants = constants or {}
        # `carebot test --coverage`: the (flow, step type) pairs that ran; None costs nothing
        self.coverage: set[tuple[str, str]] | None = None

    # -- public --------------------------------------------------------------------------------

    def new_state(self, inbound: Inbound) -> State:
        return State.new(inbound.address, self.content.normalize_locale(inbound.locale or ""))

    def step(self, state: State, inbound: Inbound, now: datetime) -> tuple[State, list[Effect]]:
        turn = Turn(state.clone(), inbound, now, constants=self.constants, locale_at_start=state.locale)
        try:
            self._dispatch(turn)
        except Exception as exc:  # a step failed: apologise, offer a human, stay usable
            flow = state.top.flow if state.top else "-"
            log.error("step failed conversation=%s flow=%s error=%s",
                      state.conversation_id, flow, type(exc).__name__)
            turn = Turn(state.clone(), inbound, now, constants=self.constants)
            turn.effects.append(RecordEvent("step_error", {"flow": flow, "error": type(exc).__name__}))
            self._drop_frames(turn, 0)
            self._start(turn, "error", takeover=True)
            try:
                self._run(turn)
            except Exception:  # the error flow itself failed: keep the conversation reset
                log.exception("error flow failed conversation=%s", state.conversation_id)
                turn.state.stack.clear()
        turn.state.turns += 1
        return turn.state, turn.effects

    # -- dispatch ------------------------------------------------------------------------------

    def _dispatch(self, turn: Turn) -> None:
        inbound, state = turn.inbound, turn.state
        kind = inbound.kind
        chosen = inbound.payload.get("set_locale")
        if chosen and kind == "join":  # the platform's own language switch (the web chat's 中文 | EN)
            before, state.locale = state.locale, self.content.normalize_locale(str(chosen))
            top = state.top
            if state.locale != before and state.turns > 0:
                # what was said so far (the welcome, the not-a-doctor / emergency notice) was in the
                # old language: the notice now in the new one, then the open question again in it
                self._say(turn, "common.locale_switched", turn.context())
                if top is not None and top.wait == "ask":
                    self._prompt(turn, self.flows.get(top.flow).code[self._pc(self.flows.get(top.flow), top)].a["spec"])
                return
            if state.turns > 0:
                return
        if kind == "action_result":
            self._resume_action(turn)
        elif kind == "timer":
            self._on_timer(turn)
        elif kind in ("join", "leave"):
            flow = self.flows.events.get(kind)
            if flow is None and kind == "join" and state.turns == 0 and not state.address.is_group:
                flow = self.flows.events.get("first_contact")  # a chat opened for the first time: greet
            if flow:
                self._start(turn, flow)
        elif kind == "staff_event" and inbound.payload.get("event") == "closed":
            flow = self.flows.events.get("handoff_closed")
            if flow:
                self._start(turn, flow, takeover=True)
        elif kind in ("text", "choice", "media", "command"):
            self._on_input(turn)
        else:
            return
        self._run(turn)

    def trigger_for(self, inbound: Inbound) -> str | None:
        """The flow a command, button or exact keyword would start, whatever is running."""
        text = inbound.text.strip()
        command = _command(text)
        if command is not None and command in self.flows.commands:
            return self.flows.commands[command]
        payload = str(inbound.payload.get("value", "")) if inbound.kind == "choice" else ""
        if payload and self._button_flow(payload):
            return self._button_flow(payload)
        return self._keyword(text, exact_only=True) if text else None

    def answers_alone(self, state: State, inbound: Inbound) -> str | None:
        """The flow a patient message asks for — a command, button or exact keyword, else a confident
        typed request — when neither it nor any flow it calls or links to opens a hand-off; else None.
        After an emergency, while the thread waits for a person, the bot still answers such a request
        (prices, a reminder, an article) with the emergency route beside it (bot/safety.py)."""
        flow = self.trigger_for(inbound)
        if flow is None and inbound.kind == "text" and self.intents is not None and inbound.text.strip():
            result = self.intents.classify(inbound.text, state.locale)
            flow = result.flow if result.confident else None
        if flow is None or flow not in self.flows.flows or flow == self.start_flow or self._hands_off(flow):
            return None
        return flow

    def _hands_off(self, flow_id: str, seen: frozenset[str] = frozenset()) -> bool:
        cf = self.flows.get(flow_id)
        for ins in cf.code:
            if ins.op == "handoff":
                return True
            if ins.op in ("call", "link") and ins.a["flow"] not in seen and \
                    self._hands_off(ins.a["flow"], seen | {flow_id}):
                return True
        return False

    def _button_flow(self, payload: str) -> str | None:
        """The flow a button starts: its exact value, or — like timers — the kind before the first
        `:` (a `button: dose` trigger answers `dose:taken:42`)."""
        return self.flows.buttons.get(payload) or self.flows.buttons.get(kind_of(payload))

    def _on_input(self, turn: Turn) -> None:
        inbound, state = turn.inbound, turn.state
        text = inbound.text.strip()
        payload = str(inbound.payload.get("value", "")) if inbound.kind == "choice" else ""
        top = state.top
        waiting = top is not None and top.wait in ("ask", "wait")
        interruptible = waiting and self.flows.get(top.flow).flow.interruptible  # type: ignore[union-attr]

        command = _command(text)
        if command is not None:
            flow = self.flows.commands.get(command)
            if flow:
                self._start(turn, flow)
                return
        asked = str(inbound.payload.get("question", "")) if payload else ""
        if asked and waiting and asked != question_id(top):  # type: ignore[arg-type]
            # a button of an earlier question (a reloaded page): never an answer to this one
            self._say(turn, "repair.question_passed", turn.context())
            if top.wait == "ask":  # type: ignore[union-attr]
                cf = self.flows.get(top.flow)  # type: ignore[union-attr]
                self._prompt(turn, cf.code[self._pc(cf, top)].a["spec"])  # type: ignore[arg-type]
            return
        if payload:
            if waiting and top.wait == "ask" and self._accepts(top, payload):  # type: ignore[union-attr]
                self._answer(turn)
                return
            flow = self._button_flow(payload)
            if flow:
                self._start(turn, flow)
                return
        if waiting:
            if interruptible and text:
                flow = self._keyword(text, exact_only=True)
                if flow and flow != top.flow:  # type: ignore[union-attr]
                    self._start(turn, flow)
                    return
            self._answer(turn)
            return
        flow = self._keyword(text, exact_only=False) if text else None
        if flow is None and state.turns == 0 and state.mode != "human":  # (an emergency first: no greeting)
            flow = self.flows.events.get("first_contact")
        if flow is None and self._route(turn, text):
            return
        if flow is None:
            state.misunderstood += 1
            flow = "not_understood"
        else:
            state.misunderstood = 0
        self._start(turn, flow)

    def _keyword(self, text: str, exact_only: bool) -> str | None:
        t = normalize(clean(text)) or normalize(text)
        if not t:
            return None
        if exact_only:
            return self.flows.exact.get(t)
        words = None
        for rule in self.flows.keywords:
            for w in rule.words:
                if t == w:
                    return rule.flow
                if exact_only or rule.match == "exact":
                    continue
                if rule.match == "first_word":
                    if t.startswith(w) and (_CJK.match(w[-1]) or t[len(w):len(w) + 1] in (" ", ",", "，")):
                        return rule.flow
                else:
                    words = words if words is not None else set(_WORD_SPLIT.split(t))
                    if mentions(t, w, words):
                        return rule.flow
        return None

    def _on_timer(self, turn: Turn) -> None:
        payload = turn.inbound.payload
        name = payload.get("name", "")
        top = turn.state.top
        if payload.get("flow"):
            if payload["flow"] in self.flows.flows:
                self._start(turn, payload["flow"])
            return
        if top is not None and top.wait == "wait" and top.timer == name:
            cf = self.flows.get(top.flow)
            instr = cf.code[self._pc(cf, top)]
            top.wait, top.timer = "", ""
            top.at = cf.code[instr.target].label
            return
        # a `timer: med` trigger also answers the templated names of that kind (`med:p42`)
        flow = self.flows.timers.get(name) or self.flows.timers.get(kind_of(name))
        if flow:
            self._start(turn, flow)

    # -- flow control --------------------------------------------------------------------------

    def _start(self, turn: Turn, flow_id: str, takeover: bool | None = None) -> None:
        state = turn.state
        cf = self.flows.get(flow_id)
        if takeover is None:
            takeover = cf.flow.takeover
        on_stack = next((i for i, f in enumerate(state.stack) if f.flow == flow_id), None)
        if takeover:
            self._drop_frames(turn, 0)
        elif on_stack is not None:  # already running: start it over from there
            self._drop_frames(turn, on_stack)
        elif state.top is not None:
            state.top.interrupted = state.top.wait in ("ask", "wait")
        state.stack.append(Frame(flow=flow_id, at=cf.code[0].label))

    def _drop_frames(self, turn: Turn, keep: int) -> None:
        """Drop every frame above `keep`, cancelling the timers they waited on."""
        while len(turn.state.stack) > keep:
            frame = turn.state.stack.pop()
            if frame.timer:
                turn.effects.append(CancelTimer(frame.timer))

    def _pc(self, cf: CompiledFlow, frame: Frame) -> int:
        pc = cf.pc_of.get(frame.at)
        if pc is None:  # the flow was edited under a waiting conversation: start it over
            log.warning("label %s vanished from flow %s; restarting it", frame.at, cf.id)
            frame.wait = ""
            return 0
        return pc

    def _run(self, turn: Turn) -> None:
        """Execute instructions until the top flow waits or no flow is left."""
        state = turn.state
        while state.stack:
            frame = state.stack[-1]
            if frame.wait:
                return
            cf = self.flows.get(frame.flow)
            pc = self._pc(cf, frame)
            while True:
                turn.ops += 1
                if turn.ops > MAX_OPS_PER_TURN:
                    raise StepError(f"more than {MAX_OPS_PER_TURN} steps in one turn in flow {cf.id} (a loop?)")
                instr = cf.code[pc]
                if self.coverage is not None:
                    self.coverage.add((cf.id, step_type(instr)))
                nxt = getattr(self, f"_op_{instr.op}")(turn, cf, frame, instr, pc)
                if nxt is None:  # the frame stack changed or the frame waits
                    break
                pc = nxt
                frame.at = cf.code[pc].label

    # -- instructions: each returns the next pc, or None when the stack changed or we wait -------

    def _op_say(self, turn: Turn, cf: CompiledFlow, frame: Frame, ins: Instr, pc: int) -> int:
        ctx = turn.context({k: fn(turn.context()) for k, fn in ins.a["vars"].items()} if ins.a["vars"] else None)
        buttons = tuple(Button(self._render(lbl, turn, ctx), value, lbl) for lbl, value in ins.a["buttons"])
        media = ins.a["media"](ctx) if ins.a["media"] else None
        self._say(turn, ins.a["key"], ctx, buttons, media)
        return pc + 1

    def _op_ask(self, turn: Turn, cf: CompiledFlow, frame: Frame, ins: Instr, pc: int) -> None:
        self._prompt(turn, ins.a["spec"])
        frame.wait, frame.retries = "ask", 0
        return None

    def _op_set(self, turn: Turn, cf: CompiledFlow, frame: Frame, ins: Instr, pc: int) -> int:
        for name, fn in ins.a["values"].items():
            value = fn(turn.context())
            if name == "locale":
                turn.state.locale = self.content.normalize_locale(str(value or ""))
            elif name == "opted_out":
                turn.state.opted_out = bool(value)
            else:
                turn.state.slots[name] = value
        return pc + 1

    def _op_clear(self, turn: Turn, cf: CompiledFlow, frame: Frame, ins: Instr, pc: int) -> int:
        if ins.a["slots"] == "all":
            kept = {k: turn.state.slots[k] for k in ins.a["keep"] if k in turn.state.slots}
            turn.state.slots.clear()
            turn.state.slots.update(kept)
            turn.state.episode.clear()  # what the patient said is forgotten with the slots
        else:
            for name in ins.a["slots"]:
                turn.state.slots.pop(name, None)
        return pc + 1

    def _op_branch(self, turn: Turn, cf: CompiledFlow, frame: Frame, ins: Instr, pc: int) -> int:
        return pc + 1 if ins.a["cond"](turn.context()) else ins.target

    def _op_switch(self, turn: Turn, cf: CompiledFlow, frame: Frame, ins: Instr, pc: int) -> int:
        value = ins.a["expr"](turn.context())
        key = str(value).lower() if isinstance(value, bool) else str(value)
        return ins.a["table"].get(key, ins.target)

    def _op_jump(self, turn: Turn, cf: CompiledFlow, frame: Frame, ins: Instr, pc: int) -> int:
        return ins.target

    def _op_goto(self, turn: Turn, cf: CompiledFlow, frame: Frame, ins: Instr, pc: int) -> int:
        return cf.labels[ins.a["label"]]

    def _op_call(self, turn: Turn, cf: CompiledFlow, frame: Frame, ins: Instr, pc: int) -> None:
        frame.at = cf.code[pc + 1].label
        callee = self.flows.get(ins.a["flow"])
        turn.state.stack.append(Frame(flow=callee.id, at=callee.code[0].label))
        return None

    def _op_link(self, turn: Turn, cf: CompiledFlow, frame: Frame, ins: Instr, pc: int) -> None:
        target = self.flows.get(ins.a["flow"])
        turn.state.stack[-1] = Frame(flow=target.id, at=target.code[0].label)
        return None

    def _op_return(self, turn: Turn, cf: CompiledFlow, frame: Frame, ins: Instr, pc: int) -> None:
        turn.state.stack.pop()
        below = turn.state.top
        if below is not None and below.interrupted:
            below.interrupted = False
            if below.wait == "ask":  # we came back to an open question: ask it again
                below_cf = self.flows.get(below.flow)
                at = self._pc(below_cf, below)
                before = below_cf.code[at - 1] if at > 0 else None
                if turn.state.locale != turn.locale_at_start and before is not None and before.op == "say":
                    # the language changed under the question: what it refers to ("the terms above") is
                    # shown again, in the new language, before it is asked again
                    self._op_say(turn, below_cf, below, before, at - 1)
                self._prompt(turn, below_cf.code[at].a["spec"])
        return None

    def _op_end(self, turn: Turn, cf: CompiledFlow, frame: Frame, ins: Instr, pc: int) -> None:
        if ins.a["key"]:
            self._say(turn, ins.a["key"], turn.context())
        self._drop_frames(turn, 0)
        return None

    def _op_action(self, turn: Turn, cf: CompiledFlow, frame: Frame, ins: Instr, pc: int) -> None:
        ctx = turn.context()
        call_id = f"{turn.state.turns}.{turn.ops}"
        turn.effects.append(CallAction(
            ins.a["name"], {k: fn(ctx) for k, fn in ins.a["args"].items()}, dict(turn.state.slots), call_id))
        frame.wait, frame.call_id = "action", call_id
        return None

    def _resume_action(self, turn: Turn) -> None:
        top = turn.state.top
        if top is None or top.wait != "action" or top.call_id != turn.inbound.payload.get("call_id"):
            return
        cf = self.flows.get(top.flow)
        pc = self._pc(cf, top)
        ins = cf.code[pc]
        result = ActionResult.from_dict(turn.inbound.payload.get("result", {}))
        top.wait, top.call_id = "", ""
        if not result.ok:
            if not ins.a["has_on_error"]:
                raise StepError(f"action {ins.a['name']} failed")
            top.at = cf.code[ins.target].label
            return
        turn.state.slots.update(result.slots)
        for msg in result.messages:
            buttons = tuple(Button(b.get("title", ""), b.get("payload", "")) for b in msg.buttons)
            if msg.key:
                self._say(turn, msg.key, turn.context(msg.vars), buttons, msg.image or None)
            elif msg.text:
                self._send(turn, msg.text, "", buttons, msg.image or None)
        top.at = cf.code[pc + 1].label

    def _op_handoff(self, turn: Turn, cf: CompiledFlow, frame: Frame, ins: Instr, pc: int) -> None:
        ctx = turn.context()
        state = turn.state
        turn.effects.append(OpenTicket(
            department=str(ins.a["department"](ctx) or state.slots.get("department", "") or ""),
            priority=str(ins.a["priority"](ctx) or "normal"),
            reason=str(ins.a["reason"](ctx) or cf.id),
            summary={"slots": dict(state.slots), "tags": list(state.tags),
                     "triage_level": state.triage_level, "flow": cf.id},
        ))
        if ins.a["say"]:
            self._say(turn, ins.a["say"], ctx)
        state.mode = "human"
        self._drop_frames(turn, 0)
        return None

    def _op_schedule(self, turn: Turn, cf: CompiledFlow, frame: Frame, ins: Instr, pc: int) -> int:
        ctx = turn.context()
        if ins.a["seconds"] is not None:
            due = turn.now + timedelta(seconds=ins.a["seconds"])
        else:
            value = ins.a["at"](ctx)
            due = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
            if due.tzinfo is None:
                due = due.replace(tzinfo=turn.now.tzinfo)
        payload = dict(ins.a["payload"](ctx) or {})
        if ins.a["flow"]:
            payload["flow"] = ins.a["flow"]
        turn.effects.append(ScheduleTimer(ins.a["timer"](ctx), due, payload))
        return pc + 1

    def _op_cancel(self, turn: Turn, cf: CompiledFlow, frame: Frame, ins: Instr, pc: int) -> int:
        turn.effects.append(CancelTimer(ins.a["timer"](turn.context())))
        return pc + 1

    def _op_tag(self, turn: Turn, cf: CompiledFlow, frame: Frame, ins: Instr, pc: int) -> int:
        new = tuple(t for t in ins.a["add"] if t not in turn.state.tags)
        turn.state.tags.extend(new)
        if new:
            turn.effects.append(Tag(add=new))
        return pc + 1

    def _op_untag(self, turn: Turn, cf: CompiledFlow, frame: Frame, ins: Instr, pc: int) -> int:
        gone = tuple(t for t in ins.a["remove"] if t in turn.state.tags)
        turn.state.tags[:] = [t for t in turn.state.tags if t not in gone]
        if gone:
            turn.effects.append(Tag(remove=gone))
        return pc + 1

    def _op_wait(self, turn: Turn, cf: CompiledFlow, frame: Frame, ins: Instr, pc: int) -> None:
        name = f"{WAIT}:{cf.id}:{ins.label}"
        turn.effects.append(ScheduleTimer(name, turn.now + timedelta(seconds=ins.a["seconds"]), {"name": name}))
        frame.wait, frame.timer = "wait", name
        return None

    def _op_record(self, turn: Turn, cf: CompiledFlow, frame: Frame, ins: Instr, pc: int) -> int:
        turn.effects.append(RecordEvent(ins.a["event"], dict(ins.a["data"](turn.context()) or {})))
        return pc + 1

    def _op_survey_done(self, turn: Turn, cf: CompiledFlow, frame: Frame, ins: Instr, pc: int) -> int:
        answers = {qid: turn.state.slots.pop(slot, None) for qid, slot in ins.a["slots"]}
        turn.effects.append(RecordEvent("survey", {"survey": ins.a["survey"], "answers": answers,
                                                   "ticket_id": turn.state.ticket_id or turn.state.last_ticket_id}))
        if ins.a["thanks"]:
            self._say(turn, ins.a["thanks"], turn.context())
        return pc + 1

    # -- answering -----------------------------------------------------------------------------

    def _accepts(self, frame: Frame, payload: str) -> bool:
        cf = self.flows.get(frame.flow)
        spec: AskSpec = cf.code[self._pc(cf, frame)].a["spec"]
        if spec.type == "choice":
            return any(c.value == payload for c in spec.choices)
        return spec.type in ("yes_no", "scale", "number")

    def _answer(self, turn: Turn) -> None:
        frame = turn.state.stack[-1]
        cf = self.flows.get(frame.flow)
        pc = self._pc(cf, frame)
        ins = cf.code[pc]
        inbound = turn.inbound
        if frame.wait == "wait":
            turn.effects.append(CancelTimer(frame.timer))
            if ins.a["slot"]:
                media = inbound.media
                turn.state.slots[ins.a["slot"]] = inbound.text if media is None else \
                    {"kind": media.kind, "ref": media.ref, "mime": media.mime, "caption": inbound.text}
            frame.wait, frame.timer = "", ""
            frame.at = cf.code[pc + 1].label
            return
        spec: AskSpec = ins.a["spec"]
        payload = str(inbound.payload.get("value", "")) if inbound.kind == "choice" else ""
        skip_words = SKIP | NO if spec.type == "media" else SKIP  # "no photos" skips a photo question
        if spec.optional and (payload == "skip" or (not payload and clean(inbound.text).lower() in skip_words)):
            value = None
        else:
            try:
                labels = {c.value: self._render(c.label, turn) for c in spec.choices}
                # a typed reply at a question whose answers are read from words (not free text, not
                # a photo): when no answer can be read from it, it may be a request (docs/flows.md)
                typed = inbound.kind == "text" and not payload and spec.type not in ("text", "media")
                at_menu = typed and spec.type == "choice" and cf.id == self.start_flow
                if at_menu and exact_choice(spec, inbound.text, labels) is None and \
                        self._route(turn, inbound.text, at_menu=True):
                    return
                args = (spec, inbound.kind, inbound.text, payload, inbound.media, labels, turn.now)
                routable = typed and not at_menu and cf.flow.interruptible
                try:  # the answer itself, or an option's own words (a label or `match` word in it)
                    value = read_answer(*args)
                except Invalid:
                    # yes/no words (不, 有, did…) sit inside almost any sentence ("听不懂" is no "no"):
                    # at a yes/no question a clear request comes before them; the words of a choice
                    # or a scale (奶奶, 非常满意) are specific enough to come first
                    if routable and spec.type == "yes_no" and \
                            self._route(turn, inbound.text, mid_flow=True, spec=spec):
                        return
                    if self.intents is None:
                        raise
                    value = self.intents.read_answer(*args)
            except Invalid as bad:
                if routable and spec.type != "yes_no" and \
                        self._route(turn, inbound.text, mid_flow=True, spec=spec):
                    return
                if _GREETING.fullmatch(inbound.text.strip().lower()):
                    # "你好" at a question is a greeting, not a wrong answer: greet back, ask again, no retry spent
                    self._say(turn, "repair.greeting", turn.context())
                    self._prompt(turn, spec)
                    return
                frame.retries += 1
                if frame.retries > spec.retries:
                    frame.wait = ""
                    turn.effects.append(RecordEvent("ask_failed", {"flow": cf.id, "step": ins.label}))
                    if ins.target >= 0:
                        frame.at = cf.code[ins.target].label
                    else:
                        self._start(turn, "retries_exhausted", takeover=True)
                    return
                self._say(turn, spec.invalid or self._invalid_key(bad.reason), turn.context(
                    {"min": spec.validate.min, "max": spec.validate.max, "retries_left": spec.retries - frame.retries + 1}))
                self._prompt(turn, spec)
                return
        turn.state.slots[spec.slot] = value
        turn.state.misunderstood = 0
        frame.wait, frame.retries = "", 0
        frame.at = cf.code[pc + 1].label

    def _route(self, turn: Turn, text: str, mid_flow: bool = False, at_menu: bool = False,
               spec: AskSpec | None = None) -> bool:
        """Start the flow a typed request asks for, when the intent is confident; False otherwise.
        At the menu it replaces the menu; mid-flow it starts over the open question (asked again
        afterwards), only for a flow not already running; with nothing open it starts as a trigger does.
        Mid-flow, a request for the flow already running that keeps its text (a symptom typed at
        intake's "what would you like to do?") keeps the text for later, says so and asks again."""
        if self.intents is None or not text.strip():
            return False
        state = turn.state
        result = self.intents.classify(text, state.locale)
        if not result.confident or result.flow not in self.flows.flows:
            return False
        if mid_flow and spec is not None and result.slots and state.top is not None \
                and state.top.flow == result.flow:
            kept = {slot: value for slot, value in result.slots.items() if not state.slots.get(slot)}
            if not kept:
                return False
            for slot, value in kept.items():  # intake then doesn't ask for the complaint again
                state.slots[slot] = value
                state.slots[f"{slot}_typed"] = True
            turn.effects.append(RecordEvent("intent_kept", {
                "intent": result.intent, "flow": result.flow, "slots": sorted(kept)}))
            self._say(turn, "repair.text_kept", turn.context())
            self._prompt(turn, spec)
            return True
        if mid_flow and (not self.intents.routes_mid_flow(result.intent or "", state.locale)
                         or any(f.flow == result.flow for f in state.stack)):
            return False
        turn.effects.append(RecordEvent("intent_routed", {
            "intent": result.intent, "flow": result.flow, "score": result.score,
            "cues": [e.cue for e in result.evidence if e.intent == result.intent]}))
        if at_menu:
            self._drop_frames(turn, len(state.stack) - 1)  # the menu gives way, as its own options do
        state.misunderstood = 0
        self._start(turn, result.flow)
        for slot, value in result.slots.items():  # a kept text, e.g. the complaint: intake won't ask again
            state.slots[slot] = value
            state.slots[f"{slot}_typed"] = True
        return True

    def _invalid_key(self, reason: str) -> str:
        key = f"repair.invalid.{reason}"
        return key if self.content.has(key) else "repair.invalid.default"

    # -- output --------------------------------------------------------------------------------

    def _prompt(self, turn: Turn, spec: AskSpec) -> None:
        ctx = turn.context()
        buttons: tuple[Button, ...] = ()
        if spec.type == "choice":
            buttons = tuple(Button(self._render(c.label, turn, ctx), c.value, c.label) for c in spec.choices)
        elif spec.type == "yes_no":
            buttons = (Button(self._render("common.yes", turn, ctx), "yes", "common.yes"),
                       Button(self._render("common.no", turn, ctx), "no", "common.no"))
        elif spec.type == "scale":
            lo, hi = int(spec.validate.min or 0), int(spec.validate.max if spec.validate.max is not None else 10)
            buttons = tuple(Button(str(n), str(n)) for n in range(lo, hi + 1))
        if spec.optional:
            buttons = (*buttons, Button(self._render("common.skip", turn, ctx), "skip", "common.skip"))
        top = turn.state.top
        # which question these buttons answer: a platform that sends it back lets a stale press be told apart
        extra = {"question": question_id(top)} if buttons and top is not None else None
        self._send(turn, self.content.render(spec.key, turn.state.locale, ctx), spec.key, buttons, None, extra)

    def _render(self, key: str, turn: Turn, ctx: dict[str, Any] | None = None) -> str:
        return self.content.render(key, turn.state.locale, ctx if ctx is not None else turn.context())

    def _say(self, turn: Turn, key: str, ctx: dict[str, Any], buttons: tuple[Button, ...] = (),
             media: str | None = None) -> None:
        self._send(turn, self.content.render(key, turn.state.locale, ctx), key, buttons, media)

    def _send(self, turn: Turn, text: str, key: str, buttons: tuple[Button, ...], media: str | None,
              extra: dict[str, Any] | None = None) -> None:
        from bot.types import Media

        turn.effects.append(Send(Outbound(
            op="say", address=turn.state.address, text=text, key=key, buttons=buttons,
            media=Media(kind="image", ref=media) if media else None, extra=extra or {})))


_STEP_OF_OP = {"branch": "if", "survey_done": "survey"}


def step_type(instr: Instr) -> str:
    """The flow-language step an instruction came from (`ask:date` for typed questions)."""
    if instr.op == "ask":
        return f"ask:{instr.a['spec'].type}"
    if instr.op == "return":
        return "return" if instr.a.get("step") else "flow_end"
    return _STEP_OF_OP.get(instr.op, instr.op)


def question_id(frame: Frame) -> str:
    """The question a frame waits at, as buttons carry it (`Outbound.extra["question"]`) and a
    platform returns it with a press (`Inbound.payload["question"]`): the flow and the step label."""
    return f"{frame.flow}#{frame.at}"


def _command(text: str) -> str | None:
    """'/start@carebot payload' → '/start'; None when the text is not a command."""
    if not text.startswith("/") or len(text) < 2:
        return None
    return text.split()[0].split("@")[0].lower()
