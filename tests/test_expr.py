"""The fast expression evaluator agrees with Jinja on every expression and context it takes."""

from __future__ import annotations

import pytest

from bot.flow.expr import ENV
from bot.flow.fastexpr import compile_fast

EXPRESSIONS = [
    "need", "not need", "need == 'quick'", "need != 'quick'", "age < 14", "age <= 3 and not guardian_name",
    "a or b", "a and b", "1 < age < 18", "x in ['a', 'b']", "x not in ('a',)", "slots.need", "slots['need']",
    "care.consent.version", "age + 1", "age - 1", "age * 2", "age / 4", "age // 4", "age % 5", "-age",
    "'high' if triage_level == 'consultation_24' else 'normal'", "(seen or []) + [last]", "photo_count + 1",
    "missing", "not missing", "missing == 'x'", "missing or 'fallback'", "feeling <= 3", "true", "none",
    "consent_ok and consent_version == consent_current", "x if y", "[1, 2][0]", "d.k", "d['k']",
]
CONTEXTS = [
    {"need": "quick", "age": 12, "guardian_name": "", "a": 0, "b": "yes", "x": "a", "slots": {"need": "quick"},
     "care": {"consent": {"version": "2026-03"}}, "triage_level": "consultation_24", "seen": ["m1"],
     "last": "m2", "photo_count": 1, "feeling": 2, "consent_ok": True, "consent_version": "2026-03",
     "consent_current": "2026-03", "y": True, "d": {"k": 5}},
    {"need": "", "age": 40, "guardian_name": "王", "a": 1, "b": None, "x": "z", "slots": {}, "care": {"consent": {}},
     "triage_level": "", "seen": None, "last": "m1", "photo_count": 0, "feeling": 9, "consent_ok": False,
     "consent_version": None, "consent_current": "2026-03", "y": False, "d": {}},
    {},
]


def _outcome(fn, ctx):  # type: ignore[no-untyped-def]
    try:
        return ("ok", fn(dict(ctx)))
    except Exception as exc:  # noqa: BLE001 - the kind of failure must agree too
        return ("error", type(exc).__name__)


@pytest.mark.parametrize("source", EXPRESSIONS)
def test_fast_evaluator_agrees_with_jinja(source):
    fast = compile_fast(ENV, source)
    assert fast is not None, f"{source!r} should take the fast path"
    jinja = ENV.compile_expression(source, undefined_to_none=True)
    for ctx in CONTEXTS:
        assert _outcome(fast, ctx) == _outcome(jinja, ctx), (source, ctx)


def test_filters_tests_and_calls_are_left_to_jinja():
    for source in ("name | upper", "x is defined", "range(3)", "x is none", "'%s' % x"):
        assert compile_fast(ENV, source) is None or source == "'%s' % x"


def test_the_sandbox_still_guards_attributes():
    fast = compile_fast(ENV, "x.__class__")
    assert fast is not None
    assert fast({"x": 1}) is None  # the sandbox refuses: Undefined, read as None, as in Jinja
