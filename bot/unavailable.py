"""Is this error a backing service (the database, Redis) being away, rather than a bug?

Callers answer such an error with "temporarily unavailable, try again" (HTTP 503 with
Retry-After, a WebSocket error frame) and one log line — never a 500 and a traceback — and the
patient's message is not acknowledged, so the widget sends it again later with the same client id.
"""

from __future__ import annotations

import logging
import sys

import sqlalchemy.exc

RETRY_AFTER_S = 5


class Unavailable(Exception):
    """Raised by carebot's own code when a backing service cannot be reached; `service` names it."""

    def __init__(self, service: str, detail: str = ""):
        super().__init__(f"{service} unavailable" + (f": {detail}" if detail else ""))
        self.service = service


def _redis_errors() -> tuple[type[BaseException], ...]:
    """Redis's connection errors, once redis is imported (before that, no error can be one of them;
    not importing it here keeps ~0.3 s off the start of a process that does not use Redis)."""
    errors = sys.modules.get("redis.exceptions")
    return (errors.ConnectionError, errors.TimeoutError) if errors is not None else ()


def service_of(exc: BaseException | None) -> str:
    """'database' or 'redis' when `exc` (or what caused it) says that service is away; else ''."""
    seen = 0
    while exc is not None and seen < 8:
        if isinstance(exc, Unavailable):
            return exc.service
        if isinstance(exc, (sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError,
                            sqlalchemy.exc.TimeoutError)) \
                or (isinstance(exc, sqlalchemy.exc.DBAPIError) and exc.connection_invalidated):
            return "database"
        redis_errors = _redis_errors()
        if redis_errors and isinstance(exc, redis_errors):
            return "redis"
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return ""


def is_unavailable(exc: BaseException | None) -> bool:
    return bool(service_of(exc))


def log_failure(logger: logging.Logger, exc: BaseException, message: str, *args: object) -> None:
    """Log a failure inside `except`: one warning line when a service is away (an outage is not a
    bug, and a loop retrying every second must not print a traceback each time), else the traceback."""
    service = service_of(exc)
    if service:
        logger.warning(message + " (%s unavailable: %s)", *args, service, type(exc).__name__)
    else:
        logger.exception(message, *args)
