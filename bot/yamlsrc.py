"""YAML that remembers where everything came from, so every error names file, line and field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError

from bot.errors import ConfigError, ConfigProblem

Loc = tuple[str | int, ...]


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


def load_yaml(path: str | Path, display: str | None = None) -> Source:
    """Read a YAML file. Syntax errors raise ConfigError with the line; duplicate keys are errors."""
    name = display or str(path)
    yaml = YAML(typ="rt")
    yaml.allow_duplicate_keys = False
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError([ConfigProblem(name, 0, "", f"not UTF-8 text ({exc.reason})")]) from None
    try:
        node = yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 0
        msg = " ".join(str(p) for p in (exc.context, exc.problem) if p)
        raise ConfigError([ConfigProblem(name, line, "", f"YAML syntax: {msg}")]) from None
    lines: dict[Loc, int] = {(): 1}
    return Source(name, _plain(node, (), lines), lines)


def _plain(node: Any, loc: Loc, lines: dict[Loc, int]) -> Any:
    if isinstance(node, CommentedMap):
        out = {}
        for key, value in node.items():
            key_loc = (*loc, str(key))
            try:
                lines[key_loc] = node.lc.key(key)[0] + 1
            except (KeyError, TypeError):
                pass
            out[str(key)] = _plain(value, key_loc, lines)
        return out
    if isinstance(node, CommentedSeq):
        out_list = []
        for i, value in enumerate(node):
            try:
                lines[(*loc, i)] = node.lc.item(i)[0] + 1
            except (KeyError, TypeError, IndexError):
                pass
            out_list.append(_plain(value, (*loc, i), lines))
        return out_list
    if node is not None and type(node).__module__.startswith("ruamel"):
        # ScalarFloat, ScalarBoolean, TaggedScalar … → plain Python values
        for plain in (bool, int, float, str):
            if isinstance(node, plain):
                return plain(node)
    return node


def data_loc(data: Any, base: Loc, loc: Loc) -> Loc:
    """Map a pydantic error location onto the data: drop union tags, follow aliases."""
    node = data
    for part in base:
        node = node[part] if isinstance(node, (dict, list)) else None
    out: list[str | int] = list(base)
    for part in loc:
        key: str | int = part
        if isinstance(node, dict) and isinstance(part, str):
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
