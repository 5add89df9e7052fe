"""A direct evaluator for the common subset of Jinja expressions used in flow conditions.

Jinja evaluates `compile_expression` results by building a template Context per call — about
15 µs, a third of an engine step. Conditions are mostly names, constants, comparisons, `and`,
`or`, `not`, attribute and item access and arithmetic; for exactly those this module builds
Python closures from Jinja's own parse tree, with Jinja's semantics: a missing name is the
environment's Undefined (so `age < 14` on an unset slot fails exactly as in Jinja), attribute and
item access go through the sandbox's `getattr`/`getitem`, and an Undefined result reads as None.
Anything else (filters, tests, calls …) returns None here and is left to Jinja.
"""

from __future__ import annotations

import operator
from typing import Any, Callable

from jinja2 import Undefined, nodes
from jinja2.sandbox import SandboxedEnvironment

Fn = Callable[[dict[str, Any]], Any]

_COMPARE = {"eq": operator.eq, "ne": operator.ne, "lt": operator.lt, "lteq": operator.le, "gt": operator.gt,
            "gteq": operator.ge, "in": lambda a, b: a in b, "notin": lambda a, b: a not in b}
_BINARY = {nodes.Add: operator.add, nodes.Sub: operator.sub, nodes.Mul: operator.mul,
           nodes.Div: operator.truediv, nodes.FloorDiv: operator.floordiv, nodes.Mod: operator.mod}


def compile_fast(env: SandboxedEnvironment, source: str) -> Fn | None:
    """A closure evaluating `source` like Jinja's compile_expression(undefined_to_none=True),
    or None when the expression uses something this evaluator leaves to Jinja."""
    try:
        tree = env.parse("{{ " + source + " }}")
    except Exception:
        return None
    body = tree.body
    if len(body) != 1 or not isinstance(body[0], nodes.Output) or len(body[0].nodes) != 1:
        return None
    fn = _build(env, body[0].nodes[0])
    if fn is None:
        return None

    def run(ctx: dict[str, Any]) -> Any:
        value = fn(ctx)
        return None if isinstance(value, Undefined) else value

    return run


def _build(env: SandboxedEnvironment, node: nodes.Node) -> Fn | None:  # noqa: C901 - one case per node
    b = lambda n: _build(env, n)  # noqa: E731
    if isinstance(node, nodes.Const):
        value = node.value
        return lambda ctx: value
    if isinstance(node, nodes.Name) and node.ctx == "load":
        name, undefined = node.name, env.undefined
        if name in ("true", "false", "none", "True", "False", "None"):
            return None  # Jinja parses these as Const; a Name here is unexpected
        return lambda ctx: ctx[name] if name in ctx else undefined(name=name)
    if isinstance(node, (nodes.List, nodes.Tuple)):
        items = [b(i) for i in node.items]
        if any(i is None for i in items):
            return None
        as_tuple = isinstance(node, nodes.Tuple)
        return lambda ctx: (tuple if as_tuple else list)(i(ctx) for i in items)  # type: ignore[misc]
    if isinstance(node, nodes.Not):
        inner = b(node.node)
        return None if inner is None else (lambda ctx: not inner(ctx))
    if isinstance(node, nodes.Neg):
        inner = b(node.node)
        return None if inner is None else (lambda ctx: -inner(ctx))
    if isinstance(node, (nodes.And, nodes.Or)):
        left, right = b(node.left), b(node.right)
        if left is None or right is None:
            return None
        if isinstance(node, nodes.And):
            return lambda ctx: left(ctx) and right(ctx)
        return lambda ctx: left(ctx) or right(ctx)
    if type(node) in _BINARY:
        left, right, op = b(node.left), b(node.right), _BINARY[type(node)]  # type: ignore[attr-defined]
        if left is None or right is None:
            return None
        return lambda ctx: op(left(ctx), right(ctx))
    if isinstance(node, nodes.Compare):
        first = b(node.expr)
        ops = [(_COMPARE.get(o.op), b(o.expr)) for o in node.ops]
        if first is None or any(f is None or e is None for f, e in ops):
            return None

        def compare(ctx: dict[str, Any]) -> Any:
            left = first(ctx)
            for op, expr in ops:
                right = expr(ctx)  # type: ignore[misc]
                if not op(left, right):  # type: ignore[misc]
                    return False
                left = right
            return True

        return compare
    if isinstance(node, nodes.CondExpr):
        test, then = b(node.test), b(node.expr1)
        other = b(node.expr2) if node.expr2 is not None else (lambda ctx: env.undefined())
        if test is None or then is None or other is None:
            return None
        return lambda ctx: then(ctx) if test(ctx) else other(ctx)
    if isinstance(node, nodes.Getattr) and node.ctx == "load":
        obj, attr = b(node.node), node.attr
        return None if obj is None else (lambda ctx: env.getattr(obj(ctx), attr))
    if isinstance(node, nodes.Getitem) and node.ctx == "load" and not isinstance(node.arg, nodes.Slice):
        obj, key = b(node.node), b(node.arg)
        if obj is None or key is None:
            return None
        return lambda ctx: env.getitem(obj(ctx), key(ctx))
    return None
