"""Logging that cannot leak patient data: a redaction filter on the handler.

Code logs ids, never message text — but a filter also masks anything that looks like a phone
number, a Chinese resident ID, an e-mail address or a long digit run, in case a message slips in.

What an operator watches is logged as an *event* (`event(log, "ticket", action="opened", …)`): a
kind and fields that are ids, kinds, counts and durations. As text it is one line
(`ticket action=opened ticket=T… department=dermatology`); with `--log-format json`
(`CAREBOT_LOG_FORMAT=json`) every line is one JSON object and an event's fields are keys of it.

A traceback keeps its frames (file, line, function, code) but not the exception's message: a
database error's DETAIL ("Failing row contains (…)"), a decoder's complaint or a KeyError may quote
what a patient wrote. The server's own loggers (uvicorn's "Exception in ASGI application") go
through the same handler.
"""

from __future__ import annotations

import json
import logging
import re
import traceback
from datetime import datetime, timezone
from types import TracebackType
from typing import Any

_PATTERNS = [
    (re.compile(r"\b\d{17}[\dXx]\b"), "[id-number]"),  # 居民身份证
    (re.compile(r"(?<!\d)(?:\+?86[- ]?)?1[3-9]\d{9}(?!\d)"), "[phone]"),  # mainland mobile
    (re.compile(r"\+\d[\d\- ]{7,}\d(?!\d)"), "[phone]"),  # international, written with +
    (re.compile(r"(?<![\d-])\d{3,4}-\d{3,4}-?\d{4}(?!\d)"), "[phone]"),  # 010-1234-5678
    (re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+"), "[email]"),
]


def redact(text: str) -> str:
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: keep the record, drop its arguments
            message = str(record.msg)
        record.msg = redact(message)
        record.args = ()
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


def describe_exception(exc: BaseException | None, tb: TracebackType | None = None) -> str:
    """A traceback without messages: the frames, then each exception's type (causes included)."""
    lines: list[str] = []
    seen: set[int] = set()
    chain: list[BaseException] = []
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        chain.append(exc)
        exc = exc.__cause__ or (None if exc.__suppress_context__ else exc.__context__)
    for n, item in enumerate(reversed(chain)):
        if n:
            lines.append("\nwhile handling it, or caused by it:\n")
        lines.append("Traceback (most recent call last):\n")
        lines.extend(traceback.format_tb(item.__traceback__ if item is not chain[0] or tb is None else tb))
        kind = type(item)
        detail = f" sqlstate={item.orig.sqlstate}" if getattr(getattr(item, "orig", None), "sqlstate", None) else ""
        lines.append(f"{kind.__module__}.{kind.__qualname__} (message withheld: it may quote patient data){detail}\n")
    return "".join(lines).rstrip("\n")


class RedactingFormatter(logging.Formatter):
    """Masks the message and formats tracebacks without exception messages."""

    def formatException(self, ei: tuple[type[BaseException], BaseException, TracebackType | None] | tuple[None, None, None]) -> str:  # type: ignore[override]
        return describe_exception(ei[1], ei[2])

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


_TOKEN = re.compile(r"[A-Za-z0-9_.:/{}@+\-]{0,100}", re.ASCII)


def _token(value: Any) -> Any:
    """An id, a kind, a number — or `(text)`: words never reach an event, whatever a caller passes."""
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, (list, tuple)):
        return [_token(v) for v in value]
    text = str(value)
    return text if _TOKEN.fullmatch(text) else "(text)"


def event(logger: logging.Logger, name: str, /, *, level: int = logging.INFO, **fields: Any) -> None:
    """Log an event an operator watches: ids, kinds, counts and durations only — never patient text
    (a string field that is not a plain token is logged as `(text)`)."""
    if logger.isEnabledFor(level):
        fields = {k: _token(v) for k, v in fields.items()}
        text = " ".join(f"{k}={v}" for k, v in fields.items() if v is not None and v != "")
        logger.log(level, "%s %s", name, text, extra={"carebot_event": name, "carebot_fields": fields})


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, and an event's kind and fields."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {"ts": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
                                "level": record.levelname.lower(), "logger": record.name}
        kind = getattr(record, "carebot_event", None)
        if kind:
            line["event"] = kind
            for key, value in getattr(record, "carebot_fields", {}).items():
                line.setdefault(key, value if isinstance(value, (bool, int, float, list)) or value is None
                                else redact(str(value)))
        else:
            line["msg"] = redact(record.getMessage())
        if record.exc_info:
            line["exc_type"] = record.exc_info[0].__name__ if record.exc_info[0] else ""
            line["traceback"] = redact(self.formatException(record.exc_info))
        return json.dumps(line, ensure_ascii=False)


def setup_logging(level: str = "INFO", fmt: str = "text") -> None:
    """`fmt` is `text` (one readable line) or `json` (one object per line, for a log collector)."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if fmt == "json"
                         else RedactingFormatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi"):
        server_log = logging.getLogger(name)  # their own handlers would bypass the redaction
        server_log.handlers[:] = []
        server_log.propagate = True
    # the migrations' own steps stay ("Running upgrade 0013 -> 0014"); alembic's plugin set-up and
    # dialect notes, seven lines before every start, say nothing to an operator
    logging.getLogger("alembic.runtime.plugins").setLevel(max(logging.WARNING, root.level))
