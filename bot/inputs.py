"""Reading untrusted input without surprises: every function here returns a value or a refusal
(None / False), never raises on what a client sent.

What broke before: `hmac.compare_digest` raises TypeError on non-ASCII text, `json.loads` raises
RecursionError on deeply nested arrays, a JSON string may hold a lone surrogate that no database
or socket can encode, and an integer above 2^63 overflows the database's columns.
"""

from __future__ import annotations

import hmac
import json
import re
from typing import Any

MAX_ID = 2**31 - 1  # the largest id or sequence number a client may name (INTEGER columns)
_DIGITS = re.compile(r"[0-9]{1,10}")


def same_secret(expected: str, given: object) -> bool:
    """Constant-time comparison of a secret we issued with one a client sent (any text)."""
    if not isinstance(given, str) or not given:
        return False
    return hmac.compare_digest(expected.encode(), given.encode("utf-8", "surrogatepass"))


def encodable(text: str) -> bool:
    """Text that UTF-8 can carry (no lone surrogates from a JSON escape such as \\ud800)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _clean(value: Any, depth: int = 0) -> bool:
    if depth > 32:
        return False
    if isinstance(value, str):
        return encodable(value)
    if isinstance(value, bool) or value is None:
        return True
    if isinstance(value, int):
        return True  # any size; whoever uses one bounds it (bounded_int)
    if isinstance(value, float):
        return value == value and value not in (float("inf"), float("-inf"))
    if isinstance(value, dict):
        return all(encodable(k) and _clean(v, depth + 1) for k, v in value.items())
    if isinstance(value, list):
        return all(_clean(v, depth + 1) for v in value)
    return False


def parse_json(raw: str | bytes) -> Any | None:
    """The JSON value, or None when it is not JSON, nests deeper than 32 levels, or holds text
    UTF-8 cannot carry or a non-finite number."""
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError, TypeError):  # UnicodeDecodeError is a ValueError
        return None
    return value if _clean(value) else None


def bounded_int(value: object, default: int | None = None, *, low: int = 0, high: int = MAX_ID) -> int | None:
    """An integer in [low, high] from a JSON number or a string of ASCII digits, else `default`."""
    if isinstance(value, bool):
        return default
    if isinstance(value, str):
        value = int(value) if _DIGITS.fullmatch(value) else None
    if isinstance(value, int) and low <= value <= high:
        return value
    return default


def bounded_float(value: object, *, low: float, high: float) -> float | None:
    """A finite number in [low, high] from a string (a query value), else None."""
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        return None
    return number if low <= number <= high else None
