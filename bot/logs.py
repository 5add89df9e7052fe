"""Logging that cannot leak patient data: a redaction filter on the handler.

Code logs ids, never message text — but a filter also masks anything that looks like a phone
number, a Chinese resident ID, an e-mail address or a long digit run, in case a message slips in.
"""

from __future__ import annotations

import logging
import re

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


class RedactingFormatter(logging.Formatter):
    """Also masks tracebacks, which are formatted after filters run."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def setup_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(RedactingFormatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
