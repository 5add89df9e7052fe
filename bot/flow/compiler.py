"""Flows compiled to a flat list of instructions with jumps — loaded once, stepped many times.

Nested steps (`if`/`then`, `switch` cases, `on_fail`, `on_timeout`) become jumps, so the engine's
program counter is a plain index and a conversation's position is stored as the step's label (its
`id`, or its path such as `steps[2].then[0]`), which survives unrelated edits to the flow.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bot.flow import model as m
from bot.flow.expr import Compiled, ExprError, compile_condition, compile_template, compile_value
from bot.flow.model import AskBody, Choice, Validation
from bot.timer_names import RESERVED, kind_of
from bot.yamlsrc import Loc, Source, field_path

DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> int:
    """'90s', '10m', '2h', '1d', '1w', '1h30m' → seconds. Raises ValueError naming what is valid."""
    import re

    parts = re.findall(r"(\d+)\s*([smhdw])", text.strip().lower())
    if not parts or re.sub(r"(\d+)\s*([smhdw])", "", text.strip().lower()).strip():
        raise ValueError(f"{text!r} is not a duration; use a number and a unit s/m/h/d/w, e.g. 30m, 2h, 1h30m")
    return sum(int(n) * DURATION_UNITS[u] for n, u in parts)


@dataclass
class Instr:
    op: str
    label: str
    line: int
    a: dict[str, Any] = field(default_factory=dict)  # compiled operands
    target: int = -1  # jump / else / fail / timeout target


@dataclass
class CompiledFlow:
    flow: m.Flow
    file: str
    line: int
    code: list[Instr]
    labels: dict[str, int]
    content_keys: list[tuple[str, int, str]]  # (key, line, field) for validation
    pc_of: dict[str, int] = field(default_factory=dict)  # every instruction's label → index
    # (source, is a condition, line, field) of every expression and template, for the name check
    expressions: list[tuple[str, bool, int, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.pc_of = {instr.label: i for i, instr in enumerate(self.code)}

    @property
    def id(self) -> str:
        return self.flow.id


@dataclass
class AskSpec:
    """What the engine needs to check an answer."""

    key: str
    slot: str
    type: str
    choices: list[Choice]
    validate: Validation
    retries: int
    invalid: str | None
    optional: bool
    vars: dict[str, Any] = field(default_factory=dict)
    exact: bool = False  # typed answers are not interpreted (consent)


class FlowCompiler:
    def __init__(self, source: Source, flow: m.Flow, base: Loc):
        self.source = source
        self.flow = flow
        self.base = base
        self.code: list[Instr] = []
        self.labels: dict[str, int] = {}
        self.keys: list[tuple[str, int, str]] = []
        self.problems: list = []
        self.gotos: list[tuple[str, Loc]] = []
        self.expressions: list[tuple[str, bool, int, str]] = []

    def compile(self) -> CompiledFlow:
        self.block(self.flow.steps, (*self.base, "steps"))
        self.emit("return", (*self.base, "steps"), {})
        for target, loc in self.gotos:
            if target not in self.labels:
                ids = sorted(k for k in self.labels if "[" not in k)
                self.problems.append(self.source.problem(
                    loc, f"goto target {target!r} is not a step id in flow {self.flow.id!r}; "
                    f"step ids here: {', '.join(ids) or 'none (give a step an id: to jump to it)'}"))
        return CompiledFlow(self.flow, self.source.file, self.source.line(self.base), self.code,
                            self.labels, self.keys, expressions=self.expressions)

    # -- helpers -------------------------------------------------------------------------------

    def line(self, loc: Loc) -> int:
        return self.source.line(loc)

    def emit(self, op: str, loc: Loc, a: dict[str, Any], label: str | None = None) -> Instr:
        rel = loc[len(self.base):]
        instr = Instr(op, label or field_path(rel), self.line(loc), a)
        self.code.append(instr)
        return instr

    def key(self, key: str, loc: Loc) -> str:
        self.keys.append((key, self.line(loc), field_path(loc)))
        return key

    def expr(self, source: str, loc: Loc) -> Compiled:
        self.expressions.append((source, True, self.line(loc), field_path(loc)))
        try:
            return compile_condition(source)
        except ExprError as exc:
            self.problems.append(self.source.problem(loc, str(exc)))
            return lambda _ctx: None

    def template(self, source: str, loc: Loc) -> Compiled:
        if "{{" in source or "{%" in source:
            self.expressions.append((source, False, self.line(loc), field_path(loc)))
        try:
            return compile_template(source)
        except ExprError as exc:
            self.problems.append(self.source.problem(loc, str(exc)))
            return lambda _ctx: ""

    def timer_name(self, source: str, loc: Loc) -> Compiled:
        """A timer's name, a template so one conversation can hold many (`med:{{ plan_id }}`). Its
        kind (the part before the first `:`) must not be one the runtime routes elsewhere."""
        kind = kind_of(source)
        if kind in RESERVED:
            self.problems.append(self.source.problem(loc, f"timer {source!r}: the kind {kind!r} is the runtime's "
                                                          f"own ({', '.join(sorted(RESERVED))}); choose another name"))
        return self.template(source, loc)

    def value(self, value: Any, loc: Loc) -> Compiled:
        for text in _strings(value):
            if "{{" in text or "{%" in text:
                self.expressions.append((text, False, self.line(loc), field_path(loc)))
        try:
            return compile_value(value)
        except ExprError as exc:
            self.problems.append(self.source.problem(loc, str(exc)))
            return lambda _ctx: None

    def duration(self, text: str, loc: Loc) -> int:
        try:
            return parse_duration(text)
        except ValueError as exc:
            self.problems.append(self.source.problem(loc, str(exc)))
            return 0

    def block(self, steps: list, loc: Loc) -> None:
        for i, step in enumerate(steps):
            self.step(step, (*loc, i))

    def jump_here(self, instr: Instr) -> None:
        instr.target = len(self.code)

    # -- steps ---------------------------------------------------------------------------------

    def step(self, step: Any, loc: Loc) -> None:
        kind = m.step_kind(step)
        start = len(self.code)
        getattr(self, f"step_{kind}")(step, loc)
        if step.id:
            if step.id in self.labels:
                self.problems.append(self.source.problem(
                    (*loc, "id"), f"step id {step.id!r} is used twice in flow {self.flow.id!r}"))
            self.labels[step.id] = start
            self.code[start].label = step.id
        rel = field_path(loc[len(self.base):])
        self.labels.setdefault(rel, start)

    def step_say(self, step: m.SayStep, loc: Loc) -> None:
        body = step.say if isinstance(step.say, m.SayBody) else m.SayBody(key=step.say)
        kloc = (*loc, "say", "key") if isinstance(step.say, m.SayBody) else (*loc, "say")
        buttons = [(self.key(b.label, (*loc, "say", "buttons", i)), b.value)
                   for i, b in enumerate(body.buttons)]
        self.emit("say", loc, {
            "key": self.key(body.key, kloc), "buttons": buttons,
            "media": self.template(body.media, (*loc, "say", "media")) if body.media else None,
            "vars": {k: self.value(v, (*loc, "say", "vars", k)) for k, v in body.vars.items()},
        })

    def ask_spec(self, body: AskBody, loc: Loc) -> AskSpec:
        self.key(body.key, (*loc, "key"))
        for i, choice in enumerate(body.choices):
            self.key(choice.label, (*loc, "choices", i, "label"))
        if body.invalid:
            self.key(body.invalid, (*loc, "invalid"))
        if body.type == "choice" and not body.choices:
            self.problems.append(self.source.problem(
                (*loc, "type"), "an ask of type choice needs `choices:` (a list of value/label)"))
        if body.type != "choice" and body.choices and body.type != "scale":
            self.problems.append(self.source.problem(
                (*loc, "choices"), f"`choices` only apply to type choice, not {body.type}"))
        if body.validate_.pattern:
            import re

            try:
                re.compile(body.validate_.pattern)
            except re.error as exc:
                self.problems.append(self.source.problem(
                    (*loc, "validate", "pattern"), f"not a valid regular expression: {exc}"))
        return AskSpec(body.key, body.slot, body.type, list(body.choices), body.validate_,
                       body.retries, body.invalid, body.optional, exact=body.exact)

    def step_ask(self, step: m.AskStep, loc: Loc) -> None:
        spec = self.ask_spec(step.ask, (*loc, "ask"))
        ask = self.emit("ask", loc, {"spec": spec})
        if step.ask.on_fail is not None:
            skip = self.emit("jump", loc, {}, label=f"{ask.label}#ok")
            self.jump_here(ask)
            self.block(step.ask.on_fail, (*loc, "ask", "on_fail"))
            self.jump_here(skip)

    def step_set(self, step: m.SetStep, loc: Loc) -> None:
        values = {k: self.value(v, (*loc, "set", k)) for k, v in step.set.items()}
        self.emit("set", loc, {"values": values})

    def step_clear(self, step: m.ClearStep, loc: Loc) -> None:
        self.emit("clear", loc, {"slots": step.clear, "keep": tuple(step.keep)})

    def step_if(self, step: m.IfStep, loc: Loc) -> None:
        branch = self.emit("branch", loc, {"cond": self.expr(step.if_, (*loc, "if"))})
        self.block(step.then, (*loc, "then"))
        if step.else_:
            skip = self.emit("jump", loc, {}, label=f"{branch.label}#endif")
            self.jump_here(branch)
            self.block(step.else_, (*loc, "else"))
            self.jump_here(skip)
        else:
            self.jump_here(branch)

    def step_switch(self, step: m.SwitchStep, loc: Loc) -> None:
        table: dict[str, int] = {}
        sw = self.emit("switch", loc, {"expr": self.expr(step.switch, (*loc, "switch")), "table": table})
        ends = []
        for value, body in step.cases.items():
            table[str(value)] = len(self.code)
            self.block(body, (*loc, "cases", value))
            ends.append(self.emit("jump", loc, {}, label=f"{sw.label}#case{len(ends)}"))
        self.jump_here(sw)  # default
        self.block(step.default, (*loc, "default"))
        for end in ends:
            self.jump_here(end)

    def step_call(self, step: m.CallStep, loc: Loc) -> None:
        self.emit("call", loc, {"flow": step.call, "loc": (*loc, "call")})

    def step_goto(self, step: m.GotoStep, loc: Loc) -> None:
        self.gotos.append((step.goto, (*loc, "goto")))
        self.emit("goto", loc, {"label": step.goto})

    def step_link(self, step: m.LinkStep, loc: Loc) -> None:
        self.emit("link", loc, {"flow": step.link, "loc": (*loc, "link")})

    def step_action(self, step: m.ActionStep, loc: Loc) -> None:
        body = step.action if isinstance(step.action, m.ActionBody) else m.ActionBody(name=step.action)
        action = self.emit("action", loc, {
            "name": body.name,
            "args": {k: self.value(v, (*loc, "action", "args", k)) for k, v in body.args.items()},
            "has_on_error": body.on_error is not None,
        })
        if body.on_error is not None:
            skip = self.emit("jump", loc, {}, label=f"{action.label}#ok")
            self.jump_here(action)
            self.block(body.on_error, (*loc, "action", "on_error"))
            self.jump_here(skip)

    def step_handoff(self, step: m.HandoffStep, loc: Loc) -> None:
        body = step.handoff or m.HandoffBody()
        if body.say:
            self.key(body.say, (*loc, "handoff", "say"))
        self.emit("handoff", loc, {
            "department": self.template(body.department, (*loc, "handoff", "department")),
            "priority": self.template(body.priority, (*loc, "handoff", "priority")),
            "reason": self.template(body.reason, (*loc, "handoff", "reason")), "say": body.say,
        })

    def step_schedule(self, step: m.ScheduleStep, loc: Loc) -> None:
        body = step.schedule
        if (body.in_ is None) == (body.at is None):
            self.problems.append(self.source.problem(
                (*loc, "schedule"), "give exactly one of `in:` (a duration) or `at:` (an expression)"))
        self.emit("schedule", loc, {
            "timer": self.timer_name(body.timer, (*loc, "schedule", "timer")),
            "seconds": self.duration(body.in_, (*loc, "schedule", "in")) if body.in_ else None,
            "at": self.expr(body.at, (*loc, "schedule", "at")) if body.at else None,
            "flow": body.flow, "loc": (*loc, "schedule", "flow"),
            "payload": self.value(body.payload, (*loc, "schedule", "payload")),
        })

    def step_cancel(self, step: m.CancelStep, loc: Loc) -> None:
        self.emit("cancel", loc, {"timer": self.timer_name(step.cancel, (*loc, "cancel"))})

    def step_tag(self, step: m.TagStep, loc: Loc) -> None:
        self.emit("tag", loc, {"add": tuple(step.tag)})

    def step_untag(self, step: m.UntagStep, loc: Loc) -> None:
        self.emit("untag", loc, {"remove": tuple(step.untag)})

    def step_wait(self, step: m.WaitStep, loc: Loc) -> None:
        body = step.wait
        wait = self.emit("wait", loc, {
            "seconds": self.duration(body.timeout, (*loc, "wait", "timeout")), "slot": body.slot})
        skip = self.emit("jump", loc, {}, label=f"{wait.label}#reply")
        self.jump_here(wait)
        self.block(body.on_timeout, (*loc, "wait", "on_timeout"))
        self.jump_here(skip)

    def step_survey(self, step: m.SurveyStep, loc: Loc) -> None:
        body = step.survey
        slots = []
        for i, q in enumerate(body.questions):
            qloc = (*loc, "survey", "questions", i)
            slot = f"_survey_{body.id}_{q.id}"
            slots.append((q.id, slot))
            ask_type = "number" if q.type == "scale" else q.type
            spec = self.ask_spec(AskBody(
                key=q.ask, slot=slot, type="scale" if q.type == "scale" else ask_type,
                choices=q.choices, validate=Validation(min=q.min, max=q.max, integer=True)
                if q.type == "scale" else Validation(), optional=q.optional), qloc)
            self.emit("ask", qloc, {"spec": spec})
        if body.thanks:
            self.key(body.thanks, (*loc, "survey", "thanks"))
        self.emit("survey_done", loc, {"survey": body.id, "slots": slots, "thanks": body.thanks})

    def step_record(self, step: m.RecordStep, loc: Loc) -> None:
        self.emit("record", loc, {"event": step.record,
                                  "data": self.value(step.data, (*loc, "data"))})

    def step_return(self, step: m.ReturnStep, loc: Loc) -> None:
        self.emit("return", loc, {"step": True})

    def step_end(self, step: m.EndStep, loc: Loc) -> None:
        key = step.end if isinstance(step.end, str) else None
        if key:
            self.key(key, (*loc, "end"))
        self.emit("end", loc, {"key": key})


def _strings(value: Any) -> list[str]:
    """Every string inside a `set` value or an action's arguments."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []
