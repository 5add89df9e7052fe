"""Load, check and index every flow: built-in repair flows first, then the operator's `flows/`.

An operator's flow with the same id as a built-in one replaces it — that is how repair behaviour
(cancel, help, restart, human, not understood, internal error) is customised.
"""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from bot.errors import ConfigError, ConfigProblem
from bot.flow import model as m
from bot.flow.compiler import CompiledFlow, FlowCompiler
from bot.flow.content import BUILTIN_DIR, Content
from bot.flow.expr import MEMO
from bot.yamlsrc import Source, data_loc, load_yaml

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


def _body_fields(kind: str) -> set[str]:
    """The fields that belong inside a step's key (`say: {key, buttons …}`)."""
    import typing

    annotation = m.STEP_MODELS[kind].model_fields[kind].annotation
    return {f for arg in typing.get_args(annotation) or (annotation,)
            if isinstance(arg, type) and issubclass(arg, m.Model) for f in arg.model_fields}


def _unindented_bodies(data: Any, loc: tuple = ()) -> dict[tuple, str]:
    """Steps written `- say:` with their fields beside `say` instead of under it, each explained once."""
    found: dict[tuple, str] = {}
    if isinstance(data, dict):
        kind = next((k for k in data if k in m.STEP_MODELS), None)
        if kind is not None and data[kind] is None:
            beside = [k for k in data if k not in m.STEP_MODELS[kind].model_fields]
            if set(beside) & _body_fields(kind):
                shape = ", ".join(f"{k}: {_short(data[k])}" for k in beside)
                found[loc] = (f"`{kind}:` is empty and {', '.join(f'`{k}`' for k in beside)} {'sit' if len(beside) > 1 else 'sits'} beside it instead of "
                              f"inside it: indent {'them' if len(beside) > 1 else 'it'} further than `{kind}` "
                              f"(expected shape: `- {kind}: {{{shape}}}`)")
        for key, value in data.items():
            found.update(_unindented_bodies(value, (*loc, key)))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            found.update(_unindented_bodies(value, (*loc, i)))
    return found


def _data_path(data: Any, loc: tuple) -> tuple:
    """A pydantic error location as a path in the data: the step-kind tags of the union dropped."""
    node, out = data, []
    for i, part in enumerate(loc):
        if isinstance(node, dict) and isinstance(part, str):
            following = loc[i + 1] if i + 1 < len(loc) else None
            if part not in node or (isinstance(following, str) and following != part and following in node):
                continue  # a union tag, not a key of the data
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
        else:
            node = None
        out.append(part)
    return tuple(out)


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 30 else text[:27] + "…"


def _problems_from(source: Source, err: ValidationError, base: tuple) -> list[ConfigProblem]:
    problems = []
    node = source.data
    for part in base:
        node = node[part]
    unindented = {(*base, *loc): why for loc, why in _unindented_bodies(node).items()}
    for loc, why in unindented.items():
        problems.append(source.problem(loc, why))
    errors = err.errors()
    # a misspelt required field (`slots:` for `slot:`) is one problem at the misspelt key, with the
    # field meant, not "slot: missing" and "slots: unknown" at the step's line
    missing = {(tuple(e["loc"][:-1]), e["loc"][-1]) for e in errors
               if e["type"] == "missing" and e["loc"] and isinstance(e["loc"][-1], str)}
    meant: dict[tuple, str] = {}  # the misspelt key's location → the field meant
    for e in errors:
        if e["type"] == "extra_forbidden" and e["loc"] and isinstance(e["loc"][-1], str):
            parent = tuple(e["loc"][:-1])
            near = difflib.get_close_matches(e["loc"][-1], [f for p, f in missing if p == parent], 1)
            if near:
                missing.discard((parent, near[0]))  # one misspelling per missing field
                meant[tuple(e["loc"])] = near[0]
    taken = {(*loc[:-1], field) for loc, field in meant.items()}
    for e in errors:
        at = _data_path(source.data, (*base, *e["loc"]))
        if any(at[:len(loc)] == loc for loc in unindented):
            continue  # explained above, once
        if tuple(e["loc"]) in taken and e["type"] == "missing":
            continue  # reported at the misspelt key below
        if tuple(e["loc"]) in meant:
            loc = data_loc(source.data, base, tuple(e["loc"]))
            problems.append(source.problem(
                loc, f"unknown field {e['loc'][-1]!r} (did you mean {meant[tuple(e['loc'])]!r}?)"))
            continue
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


def load_flows(flow_dirs: list[Path], content: Content | None = None, root: Path | None = None,
               known_names: frozenset[str] | None = None) -> FlowSet:
    """Load every flow; raise ConfigError listing every problem found, each with file:line.
    With `known_names` (the slots set outside flows), misspelt names in conditions and templates are
    problems too (bot/flow/names.py)."""
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
    if not problems and known_names is not None:  # load_config passes the names set outside flows
        problems.extend(_check_names(flowset, content, known_names))
    MEMO.save()  # templates compiled and names read, for the next start (what failed is never kept)
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


def _check_names(fs: FlowSet, content: Content | None, known_names: frozenset[str]) -> list[ConfigProblem]:
    """A name in a condition or a template close to a known one but not it: a typo (bot/flow/names.py)."""
    from bot.flow.names import JINJA_NAMES, TURN_NAMES, misspelt, read_names, written_slots

    known = set(TURN_NAMES | JINJA_NAMES | known_names)
    for cf in fs.flows.values():
        known |= written_slots(cf.flow)
    problems = []

    def check(source: str, condition: bool, file: str, line: int, fld: str, block: bool = False,
              own: set[str] | frozenset[str] = frozenset()) -> None:
        for name in sorted(read_names(source, condition) - own):
            near = misspelt(name, known)
            if near is None:
                continue
            rows = source.splitlines() or [source]
            at = next((i for i, row in enumerate(rows) if re.search(rf"\b{re.escape(name)}\b", row)), 0)
            if block and len(rows) > 1:  # a `key: |` message: its text starts on the next line
                line_of = line + 1 + at
            else:
                line_of = line
            text = rows[at].strip()
            text = text if len(text) <= 60 else text[:57] + "…"
            what = "condition" if condition else "template"
            problems.append(ConfigProblem(file, line_of, fld, f"unknown name {name!r} in {what} {text!r}: "
                                                               f"did you mean {near!r}?"))

    for cf in fs.flows.values():
        for source, condition, line, fld in cf.expressions:
            check(source, condition, cf.file, line, fld)
    if content is not None:
        # A message no flow names is rendered by code (the hand-off, reminders, groups, an adapter),
        # which passes its parameters itself: a name such a message reads in every locale is one of
        # them. A name only one locale reads, and any name in a message a flow says, is checked.
        used = {key for cf in fs.flows.values() for key, _line, _fld in cf.content_keys}
        params: dict[str, set[str]] = {}
        for messages in content.messages.values():
            for key, msg in messages.items():
                names = read_names(msg.source, False) if "{{" in msg.source or "{%" in msg.source else set()
                params[key] = names if key not in params else params[key] & names
        for messages in content.messages.values():
            for key, msg in messages.items():
                if "{{" in msg.source or "{%" in msg.source:
                    own = params.get(key, set()) if key not in used else set()
                    check(msg.source, False, msg.file, msg.line, msg.key, block=True, own=own)
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
