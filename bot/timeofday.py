"""Clock times in operator YAML ("08:00") and windows that may cross midnight (22:00-08:00)."""

from __future__ import annotations

from datetime import time
from typing import Annotated

from pydantic import AfterValidator


def _hhmm(value: str) -> str:
    try:
        time.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{value!r} is not a time; write HH:MM, e.g. 08:00 or 22:00") from None
    return value


HHMM = Annotated[str, AfterValidator(_hhmm)]


def in_window(start: str, end: str, t: time) -> bool:
    """Is `t` in [start, end)? A window whose end is before its start runs across midnight."""
    a, b = time.fromisoformat(start), time.fromisoformat(end)
    return (a <= t < b) if a <= b else (t >= a or t < b)


def _duration(value: str) -> str:
    from bot.flow.compiler import parse_duration

    parse_duration(value)  # raises ValueError naming what is valid
    return value


Duration = Annotated[str, AfterValidator(_duration)]  # "30s", "10m", "2h", "1d", "1h30m"
