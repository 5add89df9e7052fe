"""Load, check and index every flow: built-in repair flows first, then the operator's `flows/`.

An operator's flow with the same id as a built-in one replaces it — that is how repair behaviour
(cancel, help, restart, human, not understood, internal error) is customised.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from bot.errors import ConfigError, ConfigProblem
from bot.flow import model as m
from bot.flow.compiler import CompiledFlow, FlowCompiler
from bot.flow.content import BUILTIN_DIR, Content
from bot.yamlsrc import Source, load_yaml

REPAIR_FLOWS = ("cancel", "help", "restart", "human", "not_understood", "retries_exhausted", "error")


@dataclass
class KeywordRule:
    words: tuple[str, ...]  # normalised (lower-case, trimmed)
    match: str
    flow: str
    priority: int
    order: int


@dataclass
class FlowSet:
    flows: dict[str, CompiledFlow] = field(default_factory=dict)
    commands: dict[str, str] = field(default_factory=dict)  # "/start" → flow id
    buttons: dict[str, str] = field(default_factory=dict)
    timers: dict[str, str] = field(default_factory=dict)
    events: dict[str, str] = field(default_factory=dict)
    keywords: list[KeywordRule] = field(default_factory=list)  # best first
    exact: dict[str, str] = field(default_factory=dict)  # a whole message → flow, best rule first

    def get(self, flow_id: str) -> CompiledFlow:
        return self.flows[flow_id]


def _problems_from(source: Source, err: ValidationError, base: tuple) -> list[ConfigProblem]:
    problems = []
    for e in err.errors():
        if e["type"] == "union_tag_not_found":
            loc = (*base, *e["loc"])
            got = ", ".join(map(repr, e["input"])) if isinstance(e["input"], dict) else repr(e["input"])
            if "triggers" in loc[-2:]:
                valid, what = m.TRIGGER_MODELS, "trigger"
            else:
                valid, what = m.STEP_MODELS, "step type"
            near = difflib.get_close_matches(next(iter(e["input"]), "") if isinstance(e["input"], dict) else "", valid, 1)
            hint = f" (did you mean {near[0]!r}?)" if near else ""
            problems.append(source.problem(
                loc, f"unknown {what} {got}{hint}; valid: {', '.join(valid)}"))
        else:
            sub = ValidationError.from_exception_data(err.title, [e])  # type: ignore[list-item]
            problems.extend(source.problems_from(sub, base))
    return problems


def parse_flow_source(source: Source) -> tuple[list[tuple[m.Flow, tuple]], list[ConfigProblem]]:
    data = source.data
    if not isinstance(data, dict):
        return [], [source.problem((), "a flow file must be a mapping with `id` and `steps`, "
                                        "or with `flows:` (a list of flows)")]
    entries: list[tuple[Any, tuple]]
    if "flows" in data and "id" not in data:
        if not isinstance(data["flows"], list):
            return [], [source.problem(("flows",), "`flows` must be a list of flows")]
        entries = [(f, ("flows", i)) for i, f in enumerate(data["flows"])]
    else:
        entries = [(data, ())]
    flows, problems = [], []
    for raw, base in entries:
        try:
            flows.append((m.Flow.model_validate(raw), base))
        except ValidationError as err:
            problems.extend(_problems_from(source, err, base))
    return flows, problems


def _flow_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.rglob("*.yml") if p.is_file()) + \
        sorted(p for p in directory.rglob("*.yaml") if p.is_file())


def load_flows(flow_dirs: list[Path], content: Content | None = None, root: Path | None = None) -> FlowSet:
    """Load every flow; raise ConfigError listing every problem found, each with file:line."""
    problems: list[ConfigProblem] = []
    compiled: dict[str, CompiledFlow] = {}
    origin: dict[str, tuple[str, bool]] = {}  # flow id → (file, builtin?)
    dirs = [(BUILTIN_DIR / "flows", True), *((Path(d), False) for d in flow_dirs)]
    for directory, builtin in dirs:
        if not directory.is_dir():
            continue
        for path in _flow_files(directory):
            display = _display(path, root)
            try:
                source = load_yaml(path, display)
            except ConfigError as exc:
                problems.extend(exc.problems)
                continue
            flows, errs = parse_flow_source(source)
            problems.extend(errs)
            for flow, base in flows:
                prev = origin.get(flow.id)
                if prev and not prev[1]:
                    problems.append(source.problem(
                        (*base, "id"), f"flow id {flow.id!r} is already defined in {prev[0]}"))
                    continue
                comp = FlowCompiler(source, flow, base)
                cf = comp.compile()
                problems.extend(comp.problems)
                compiled[flow.id] = cf
                origin[flow.id] = (display, builtin)
    flowset = FlowSet(flows=compiled)
    problems.extend(_index_triggers(flowset))
    problems.extend(_check_references(flowset, content))
    if problems:
        raise ConfigError(problems)
    return flowset


def _display(path: Path, root: Path | None) -> str:
    try:
        return str(path.relative_to(root)) if root else str(path)
    except ValueError:
        return str(path)


def normalize(text: str) -> str:
    return " ".join(text.strip().lower().split())


def _index_triggers(fs: FlowSet) -> list[ConfigProblem]:
    problems = []
    order = 0
    seen: dict[tuple[str, str], str] = {}
    for flow_id, cf in fs.flows.items():
        for i, trig in enumerate(cf.flow.triggers):
            line = cf.line
            kind = m.trigger_kind(trig)
            table = {"command": fs.commands, "button": fs.buttons, "timer": fs.timers,
                     "event": fs.events}.get(kind or "")
            if table is not None:
                value = getattr(trig, kind)  # type: ignore[arg-type]
                if (kind, value) in seen and seen[(kind, value)] != flow_id:
                    problems.append(ConfigProblem(
                        cf.file, line, f"{flow_id}.triggers[{i}]",
                        f"{kind} {value!r} already starts flow {seen[(kind, value)]!r}; "
                        "a trigger may start only one flow"))
                seen[(kind, value)] = flow_id
                table[value] = flow_id
            elif isinstance(trig, m.KeywordTrigger):
                order += 1
                fs.keywords.append(KeywordRule(
                    tuple(normalize(w) for w in trig.keyword), trig.match, flow_id,
                    cf.flow.priority, order))
    fs.keywords.sort(key=lambda r: (-r.priority, r.order))
    for rule in fs.keywords:
        for word in rule.words:
            fs.exact.setdefault(word, rule.flow)
    return problems


def _check_references(fs: FlowSet, content: Content | None) -> list[ConfigProblem]:
    problems = []
    for repair in REPAIR_FLOWS:
        if repair not in fs.flows:
            problems.append(ConfigProblem("flows", 0, repair, f"repair flow {repair!r} is missing"))
    for cf in fs.flows.values():
        for instr in cf.code:
            target = instr.a.get("flow") if instr.op in ("call", "link", "schedule") else None
            if target and target not in fs.flows:
                near = difflib.get_close_matches(target, fs.flows, 1)
                hint = f" (did you mean {near[0]!r}?)" if near else ""
                problems.append(ConfigProblem(
                    cf.file, instr.line, instr.label,
                    f"flow {target!r} does not exist{hint}; known flows: {', '.join(sorted(fs.flows))}"))
        if content is not None:
            for key, line, fld in cf.content_keys:
                if not content.has(key):
                    near = difflib.get_close_matches(key, content.messages.get(content.base_locale, {}), 1, 0.5)
                    hint = f" (did you mean {near[0]!r}?)" if near else ""
                    problems.append(ConfigProblem(
                        cf.file, line, fld,
                        f"content key {key!r} is not in messages/{content.base_locale}.yml{hint}"))
    return problems
