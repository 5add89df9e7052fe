"""YAML that remembers where everything came from, so every error names file, line and field."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
import re

from bot.errors import ConfigError, ConfigProblem

Loc = tuple[str | int, ...]
M = TypeVar("M", bound=BaseModel)


class Source:
    """Plain data read from one YAML file, with the line of every mapping key and list item."""

    def __init__(self, file: str, data: Any, lines: dict[Loc, int]):
        self.file = file
        self.data = data
        self.lines = lines

    def line(self, loc: Loc) -> int:
        """The line of `loc`, or of its nearest ancestor that has one."""
        loc = tuple(loc)
        while loc:
            if loc in self.lines:
                return self.lines[loc]
            loc = loc[:-1]
        return self.lines.get((), 1)

    def problem(self, loc: Loc, message: str) -> ConfigProblem:
        return ConfigProblem(self.file, self.line(loc), field_path(loc), message)

    def problems_from(self, err: ValidationError, base: Loc = ()) -> list[ConfigProblem]:
        """Turn a pydantic error into problems that point into this file."""
        out = []
        for e in err.errors():
            loc = data_loc(self.data, base, tuple(e["loc"]))
            out.append(self.problem(loc, explain(e)))
        return out


class _Lines:
    """Where a mapping's keys or a list's items are: the part of ruamel's `lc` carebot uses."""

    __slots__ = ("line", "col", "_at")

    def __init__(self, line: int, col: int):
        self.line, self.col = line, col  # 0-based, as ruamel
        self._at: dict[Any, tuple[int, int]] = {}

    def key(self, key: Any) -> tuple[int, int]:
        return self._at[key]

    def item(self, index: int) -> tuple[int, int]:
        return self._at[index]

    value = key


class LineMap(dict):  # type: ignore[type-arg]
    lc: _Lines


class LineList(list):  # type: ignore[type-arg]
    lc: _Lines


def _yaml12_loader() -> type:
    """PyYAML's C parser with YAML 1.2 scalars: `yes`/`no`/`on`/`off` stay text (a content key
    `common.no` must not become False), `22:00` stays text, and dates stay text."""
    import yaml

    base = yaml.CSafeLoader if getattr(yaml, "__with_libyaml__", False) else yaml.SafeLoader

    class Loader(base):  # type: ignore[misc, valid-type]
        pass

    dropped = {"tag:yaml.org,2002:bool", "tag:yaml.org,2002:int", "tag:yaml.org,2002:float",
               "tag:yaml.org,2002:timestamp"}
    Loader.yaml_implicit_resolvers = {
        first: [(tag, rx) for tag, rx in resolvers if tag not in dropped]
        for first, resolvers in base.yaml_implicit_resolvers.items()}
    Loader.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
                                 list("tTfF"))
    Loader.add_implicit_resolver("tag:yaml.org,2002:int", re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$"),
                                 list("-+0123456789"))
    Loader.add_implicit_resolver(
        "tag:yaml.org,2002:float",
        re.compile(r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"),
        list("-+.0123456789"))
    return Loader


_LOADER: type | None = None


def parse_yaml(text: str) -> Any:
    """Parse YAML into dicts and lists that know their lines (`.lc`, like ruamel's round-trip
    loader, which this replaces on the start-up path: the C parser is about ten times faster).
    Raises MarkedYAMLError; a key given twice in one mapping is an error, as in ruamel."""
    import yaml

    global _LOADER
    if _LOADER is None:
        _LOADER = _yaml12_loader()
    loader = _LOADER(text)
    try:
        root = loader.get_single_node()
        return None if root is None else _build(loader, root)
    finally:
        loader.dispose()


def _build(loader: Any, node: Any) -> Any:
    import yaml

    if isinstance(node, yaml.MappingNode):
        out = LineMap()
        out.lc = _Lines(node.start_mark.line, node.start_mark.column)
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if key == "<<":
                raise yaml.constructor.ConstructorError(
                    None, None, "merge keys (<<) are not supported; write the keys out", key_node.start_mark)
            if key in out:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping", node.start_mark,
                    f"found duplicate key {key!r}", key_node.start_mark)
            out.lc._at[key] = (key_node.start_mark.line, key_node.start_mark.column)
            out[key] = _build(loader, value_node)
        return out
    if isinstance(node, yaml.SequenceNode):
        seq = LineList()
        seq.lc = _Lines(node.start_mark.line, node.start_mark.column)
        for i, item in enumerate(node.value):
            seq.lc._at[i] = (item.start_mark.line, item.start_mark.column)
            seq.append(_build(loader, item))
        return seq
    return loader.construct_object(node, deep=True)


def load_yaml(path: str | Path, display: str | None = None) -> Source:
    """Read a YAML file. Syntax errors raise ConfigError with the line; duplicate keys are errors."""
    import yaml

    name = display or str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError([ConfigProblem(name, 0, "", f"not UTF-8 text ({exc.reason})")]) from None
    try:
        node = parse_yaml(text)
    except yaml.MarkedYAMLError as exc:
        raise ConfigError([syntax_problem(name, text, exc)]) from None
    lines: dict[Loc, int] = {(): 1}
    return Source(name, _plain(node, (), lines), lines)


def syntax_problem(name: str, text: str, exc: Any) -> ConfigProblem:
    """A YAML syntax error in an operator's words: a tab is named with its column, a misaligned
    line is explained by the indentation it should have; anything else keeps the parser's words."""
    mark = exc.problem_mark or exc.context_mark
    line = mark.line + 1 if mark else 0
    lines = text.splitlines()
    for n, content in enumerate(lines[:max(line, 1)], start=1):  # the first tab in indentation, or at the error
        indent = content[:len(content) - len(content.lstrip(" \t"))]
        col = indent.find("\t") + 1 or (mark.column + 1 if mark and n == line and content[mark.column:mark.column + 1] == "\t" else 0)
        if col:
            return ConfigProblem(name, n, "", f"a tab at column {col}; YAML indents with spaces "
                                 "(replace the tab with spaces)", column=col)
    problem = str(exc.problem or "")
    if mark and exc.context_mark and ("expected key" in problem or "expected <block end>" in problem) \
            and 0 < line <= len(lines):
        here = len(lines[line - 1]) - len(lines[line - 1].lstrip(" "))
        word = lines[line - 1].strip().split(":")[0][:40]
        levels: dict[int, tuple[str, int]] = {}  # indentation -> the nearest key above at that indentation
        for n in range(line - 1, exc.context_mark.line, -1):
            above = lines[n - 1]
            key = above.lstrip(" -").split(":")[0].strip()
            if key and not above.lstrip().startswith("#") and ":" in above:
                levels.setdefault(len(above) - len(above.lstrip(" -")), (key, n))
        options = " or ".join(f"{i} (like `{k}`, line {n})" for i, (k, n) in sorted(levels.items()))
        return ConfigProblem(name, line, "", f"`{word}` is indented {here} spaces, which lines up with no key above "
                             f"it: indent it {options or 'like the key it belongs beside'} — keys of one mapping line "
                             "up exactly; what belongs inside a key is indented further than that key",
                             column=here + 1)
    msg = " ".join(str(p) for p in (exc.context, exc.problem) if p)
    return ConfigProblem(name, line, "", f"YAML syntax: {msg}")


def _plain(node: Any, loc: Loc, lines: dict[Loc, int]) -> Any:
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            key_loc = (*loc, str(key))
            lines[key_loc] = node.lc.key(key)[0] + 1
            out[str(key)] = _plain(value, key_loc, lines)
        return out
    if isinstance(node, list):
        for i in range(len(node)):
            lines[(*loc, i)] = node.lc.item(i)[0] + 1
        return [_plain(v, (*loc, i), lines) for i, v in enumerate(node)]
    return node


def load_model(path: Path, model: type[M]) -> M:
    """An operator settings file (care.yml, handoff.yml …) as a validated model; defaults when the
    file is absent; a ConfigError naming file, line and field otherwise."""
    if not path.exists():
        return model()
    source = load_yaml(path)
    try:
        return model.model_validate(source.data or {})
    except ValidationError as err:
        raise ConfigError(source.problems_from(err)) from None


def data_loc(data: Any, base: Loc, loc: Loc) -> Loc:
    """Map a pydantic error location onto the data: drop union tags, follow aliases."""
    node = data
    for part in base:
        node = node[part] if isinstance(node, (dict, list)) else None
    out: list[str | int] = list(base)
    for i, part in enumerate(loc):
        key: str | int = part
        if isinstance(node, dict) and isinstance(part, str):
            following = loc[i + 1] if i + 1 < len(loc) else None
            if isinstance(following, str) and following != part and following in node:
                continue  # a union tag that is also a key beside the body (`if:` beside `then:`)
            key = part.rstrip("_") if part not in node and part.rstrip("_") in node else part
            if key not in node:
                if key in {v for v in node}:  # pragma: no cover - defensive
                    pass
                # a union tag (the step kind) repeats the parent key: skip it
                if out and out[-1] == key:
                    continue
                out.append(key)
                node = None
                continue
            node = node[key]
        elif isinstance(node, list) and isinstance(part, int):
            node = node[part] if part < len(node) else None
        else:
            node = None
        out.append(key)
    return tuple(out)


def field_path(loc: Loc) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


def explain(error: dict[str, Any]) -> str:
    kind = error["type"]
    if kind == "missing":
        return "required field is missing"
    if kind == "extra_forbidden":
        return "unknown field (check the spelling; see flows/schema.json for valid fields)"
    msg = error["msg"]
    if "input" in error and kind not in ("union_tag_not_found",):
        return f"{msg} (got {error['input']!r})"
    return msg
