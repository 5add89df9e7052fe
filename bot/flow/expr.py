"""The one expression language for conditions and templates: the Jinja2 sandbox, compiled once."""

from __future__ import annotations

import marshal
import re
from functools import lru_cache
from typing import Any, Callable

import jinja2
from jinja2 import StrictUndefined, TemplateSyntaxError, Undefined
from jinja2.sandbox import ImmutableSandboxedEnvironment

from bot.buildcache import Memo
from bot.flow.fastexpr import compile_fast

_WHOLE_EXPR = re.compile(r"^\s*\{\{(.*)\}\}\s*$", re.S)


class _LenientUndefined(Undefined):
    """A slot that was never set reads as empty/None-ish instead of failing the step."""


def _env(strict: bool) -> ImmutableSandboxedEnvironment:
    env = ImmutableSandboxedEnvironment(
        undefined=StrictUndefined if strict else _LenientUndefined,
        autoescape=False,
        keep_trailing_newline=False,
    )
    return env


ENV = _env(strict=False)
# A template's compiled code and the names it reads depend on its text, Jinja and this module only:
# kept between starts (bot/buildcache.py), they save ~0.4 s of CPU of every start-up.
MEMO = Memo("templates", ("flow/expr.py", "flow/names.py", "buildcache.py"), (jinja2.__version__,))


class ExprError(ValueError):
    """An expression or template that does not compile; the loader adds file and line."""


Compiled = Callable[[dict[str, Any]], Any]


@lru_cache(maxsize=4096)
def compile_condition(source: str) -> Compiled:
    """`need == 'quick' and age < 14` → a function of the context returning a value.
    Common expressions run as direct closures with Jinja's semantics (fastexpr); the rest in Jinja."""
    try:
        fn = ENV.compile_expression(source, undefined_to_none=True)
    except TemplateSyntaxError as exc:
        raise ExprError(f"expression {source!r} does not compile: {exc.message}") from None
    return compile_fast(ENV, source) or fn  # type: ignore[return-value]


@lru_cache(maxsize=8192)
def compile_template(source: str) -> Compiled:
    """A message or value template. Plain text without `{{`/`{%` costs nothing to render."""
    if "{{" not in source and "{%" not in source:
        return lambda _ctx, _s=source: _s
    try:
        code = MEMO.get(("code", source), _template_code)  # compiles it, or finds it compiled before
    except TemplateSyntaxError as exc:
        raise ExprError(f"template {source!r} does not compile: {exc.message}") from None
    render: Compiled | None = None

    def first_render(ctx: dict[str, Any]) -> Any:  # most of a catalogue's templates wait long for a first use
        nonlocal render
        if render is None:
            render = ENV.template_class.from_code(ENV, marshal.loads(code), ENV.make_globals(None), None).render
        return render(ctx)

    return first_render


def _template_code(item: tuple[str, str]) -> bytes:
    """What `ENV.from_string` compiles, as bytes that keep (TemplateSyntaxError when it does not compile)."""
    return marshal.dumps(ENV.compile(item[1]))


def compile_value(value: Any) -> Compiled:
    """A `set` value: exactly '{{ expr }}' keeps its type; other strings render; the rest is literal."""
    if isinstance(value, str):
        whole = _WHOLE_EXPR.match(value)
        if whole and "}}" not in whole.group(1) and "{{" not in whole.group(1):
            return compile_condition(whole.group(1).strip())
        return compile_template(value)
    if isinstance(value, dict):
        parts = {k: compile_value(v) for k, v in value.items()}
        return lambda ctx: {k: fn(ctx) for k, fn in parts.items()}
    if isinstance(value, list):
        items = [compile_value(v) for v in value]
        return lambda ctx: [fn(ctx) for fn in items]
    return lambda _ctx, _v=value: _v
