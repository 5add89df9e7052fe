"""One log event per HTTP request: method, route template, status, duration — nothing else.

The route is the template the request matched (`/console/tickets/{ticket_id}`), never the path
itself or its query string: paths carry ticket and conversation ids, query strings can carry
tokens. Health and metrics probes log at DEBUG so they do not drown the rest.
"""

from __future__ import annotations

import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bot.logs import event

log = logging.getLogger("carebot.http")
PROBES = frozenset({"/healthz", "/readyz", "/metrics"})


def route_template(scope: Scope) -> str:
    """The matched route's template under its mounts (whose prefixes in carebot are fixed)."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    if path is None:
        return "(unmatched)"
    prefix = scope.get("root_path", "")[len(scope.get("app_root_path", "")):]
    return (prefix.rstrip("/") + path) or "/"


class AccessLog:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = route_template(scope)
            event(log, "request", level=logging.DEBUG if route in PROBES else logging.INFO,
                  method=scope.get("method", ""), route=route, status=status,
                  ms=round(1000 * (time.perf_counter() - started), 1))
