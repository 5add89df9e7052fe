"""Which names a condition or a template reads, and whether one of them is a misspelling.

A flow reads slots (set by `ask`, `set`, `wait`, surveys and actions), what every turn provides
(`now`, `input`, `locale` …) and the operator's settings (`care.*`). A name that is none of these
but lies close to one (`nw.hour`, `{{ complant }}`) is almost certainly a typo that would read as
empty at run time; it is reported with the nearest known name. A name far from every known one
passes: an operator's own action may set it.
"""

from __future__ import annotations

import difflib
from typing import Any

from jinja2 import TemplateSyntaxError, meta

from bot.flow import model as m
from bot.flow.expr import ENV, MEMO

# what Turn.context gives every expression (bot/engine/engine.py), and Jinja's own globals
TURN_NAMES = frozenset({"slots", "input", "locale", "now", "channel", "is_group", "tags", "mode", "triage_level",
                        "misunderstood", "turns", "opted_out", "care"})
JINJA_NAMES = frozenset(ENV.globals) | {"true", "false", "none", "True", "False", "None", "loop"}
CUTOFF = 0.75  # difflib ratio: `nw`/`now` 0.8, `complant`/`complaint` 0.94


def read_names(source: str, condition: bool) -> set[str]:
    """The top-level names `source` reads (not those it sets itself with `{% set %}`)."""
    return set(MEMO.get(("names", condition, source), _names))


def _names(item: tuple[str, bool, str]) -> frozenset[str]:
    _, condition, source = item
    try:
        return frozenset(meta.find_undeclared_variables(ENV.parse("{{ (%s) }}" % source if condition else source)))
    except TemplateSyntaxError:  # reported where the expression is compiled
        return frozenset()


def written_slots(flow: m.Flow) -> set[str]:
    """Slots a flow writes: `ask`/`wait`/survey `slot`, `set` keys, and `say` vars (for its message)."""
    out: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, m.Model):
            if isinstance(node, m.SetStep):
                out.update(node.set)
            for name in type(node).model_fields:
                value = getattr(node, name)
                if name == "slot" and isinstance(value, str):
                    out.update((value, f"{value}_typed"))  # `_typed`: the engine kept a typed request's text
                elif name == "vars" and isinstance(value, dict):
                    out.update(value)
                walk(value)
        elif isinstance(node, (list, tuple)):
            for item in node:
                walk(item)
        elif isinstance(node, dict):
            for item in node.values():
                walk(item)

    walk(flow)
    return out


def misspelt(name: str, known: set[str] | frozenset[str]) -> str | None:
    """The known name `name` is probably a misspelling of, or None."""
    if name in known:
        return None
    near = difflib.get_close_matches(name, known, 1, CUTOFF)
    return near[0] if near else None
