"""The one ASGI app `carebot run` serves: health, readiness, metrics, and every adapter's routes.

`create_app(carebot)` serves a bot that is already built (tests). `carebot run` uses
`create_lazy_app(build)`: the server listens at once and answers `/healthz` (liveness: the process
and its event loop are up) while the bot loads — config, database, adapters — in a thread. Until
the bot is ready, `/readyz` and every adapter route answer 503 (platforms retry webhooks), so a
restart never turns into refused connections.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from typing import TYPE_CHECKING, AsyncIterator, Awaitable, Callable

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bot.metrics import REGISTRY
from bot.unavailable import RETRY_AFTER_S, service_of

if TYPE_CHECKING:
    from bot.app import CareBot

log = logging.getLogger("carebot.server")
STARTED = time.monotonic()


class _Holder:
    """The bot once it is built and started; the routes ask it whether they can serve."""

    def __init__(self) -> None:
        self.carebot: CareBot | None = None
        self.app: Starlette | None = None
        self.fast: dict[str, FastRoute] = {}  # exact path → an adapter's pure ASGI webhook
        self.failed: str = ""
        self.ready_after: float | None = None
        self.draining = False

    def drain(self) -> None:
        """The server is stopping: tell long-lived streams to end (see `Runtime.stopping`)."""
        self.draining = True
        if self.carebot is not None:
            self.carebot.runtime.stopping.set()

    def set(self, carebot: CareBot) -> None:
        routes: list[BaseRoute] = []
        for adapter in carebot.adapters.adapters.values():
            routes.extend(adapter.routes())
        # an error a route missed: Starlette's own handler answers it (503 for an outage), then Guard logs it
        self.app = Starlette(routes=routes, exception_handlers={Exception: _error_response})
        self.app.state.carebot = carebot
        self.fast = {path: FastRoute(path, app) for adapter in carebot.adapters.adapters.values()
                     for path, app in adapter.asgi_routes().items()}
        self.carebot = carebot
        self.ready_after = round(time.monotonic() - STARTED, 3)
        if self.draining:
            carebot.runtime.stopping.set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.app is not None:
            await self.app(scope, receive, send)
        elif scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1013})  # try again later
        else:
            await PlainTextResponse("carebot is starting", status_code=503,
                                    headers={"Retry-After": "1"})(scope, receive, send)


class FastRoute:
    """An adapter's pure ASGI webhook and its path (the access log's route template)."""

    def __init__(self, path: str, app: ASGIApp):
        self.path, self.app = path, app


class FastPaths:
    """Inside the guard and the access log, ahead of routing: a request for an adapter's hot
    webhook (`Adapter.asgi_routes`) goes straight to it — no router, mount or request object on
    the road every update takes. Anything else, and everything before the bot is ready, goes on."""

    def __init__(self, app: ASGIApp, holder: _Holder):
        self.app, self.holder = app, holder

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = self.holder.fast.get(scope["path"]) if scope["type"] == "http" else None
        if route is None:
            await self.app(scope, receive, send)
            return
        scope["route"] = route
        await route.app(scope, receive, send)


def unavailable_response(service: str) -> JSONResponse:
    """503: a backing service is away for now; clients and platforms retry."""
    return JSONResponse({"type": "error", "code": "unavailable", "service": service, "retry_after": RETRY_AFTER_S},
                        status_code=503, headers={"Retry-After": str(RETRY_AFTER_S)})


async def _error_response(_request: Request, exc: Exception) -> Response:
    service = service_of(exc)
    if service:
        return unavailable_response(service)
    return JSONResponse({"type": "error", "code": "server_error"}, status_code=500)


class Guard:
    """The last line: an error no handler caught becomes a 500 (or a WebSocket close 1011) and one
    log line with the path and a traceback without messages (bot/logs.py) — never uvicorn's
    "Exception in ASGI application" with whatever the exception quoted."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            if message["type"] in ("http.response.start", "websocket.accept", "websocket.close"):
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        except Exception as exc:
            service = service_of(exc)
            if service:  # the database or Redis is away: "try again", not a bug (bot/unavailable.py)
                log.warning("%s unavailable %s path=%s error=%s", service, scope["type"], scope.get("path", ""),
                            type(exc).__name__)
                with contextlib.suppress(Exception):
                    if scope["type"] == "websocket":
                        await send({"type": "websocket.close", "code": 1013})  # try again later
                    elif not started:
                        await unavailable_response(service)(scope, receive, send)
                return
            log.exception("unhandled error %s path=%s", scope["type"], scope.get("path", ""))
            with contextlib.suppress(Exception):
                if scope["type"] == "websocket":
                    await send({"type": "websocket.close", "code": 1011})
                elif not started:
                    await JSONResponse({"type": "error", "code": "server_error"}, status_code=500)(scope, receive, send)


READY_CHECK_S = 2.0


async def services_down(carebot: CareBot) -> list[str]:
    """The backing services this worker cannot reach now: "database", "redis" (when configured).
    Each check is bounded, so a hung service answers "down" rather than holding the probe."""

    async def check(name: str, probe: Callable[[], Awaitable[object]]) -> str:
        try:
            await asyncio.wait_for(probe(), READY_CHECK_S)
        except Exception as exc:  # noqa: BLE001 - any failure of the probe means "not ready"
            log.warning("readiness: %s down error=%s", name, type(exc).__name__)
            return name
        return ""

    checks = [check("database", lambda: carebot.store.read(lambda c: c.exec_driver_sql("SELECT 1").scalar()))]
    if carebot.settings.redis_url:
        checks.append(check("redis", carebot.coord.ping))
    return [name for name in await asyncio.gather(*checks) if name]


def _outer(holder: _Holder, lifespan: Callable[[Starlette], contextlib.AbstractAsyncContextManager[None]]) -> Starlette:
    async def healthz(_request: Request) -> JSONResponse:
        status = "failed" if holder.failed else "ok"
        return JSONResponse({"status": status, "ready": holder.carebot is not None,
                             "uptime_s": round(time.monotonic() - STARTED, 3)},
                            status_code=500 if holder.failed else 200)

    async def readyz(_request: Request) -> JSONResponse:
        if holder.carebot is None:
            return JSONResponse({"ready": False, "error": holder.failed or None}, status_code=503)
        down = await services_down(holder.carebot)
        if down:  # a load balancer stops sending patients here until they are back
            return JSONResponse({"ready": False, "down": down}, status_code=503,
                                headers={"Retry-After": str(RETRY_AFTER_S)})
        return JSONResponse({"ready": True, "ready_after_s": holder.ready_after,
                             "models": holder.carebot.learned_models()})

    async def metrics(_request: Request) -> Response:
        return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)

    from bot.access_log import AccessLog
    from bot.reload import admin_routes

    routes: list[BaseRoute] = [Route("/healthz", healthz), Route("/readyz", readyz), Route("/metrics", metrics),
                               *admin_routes(lambda: holder.carebot), Mount("/", app=holder)]
    app = Starlette(routes=routes, lifespan=lifespan, middleware=[Middleware(Guard), Middleware(AccessLog),
                                                                 Middleware(FastPaths, holder=holder)])
    app.state.holder = holder
    return app


def create_app(carebot: CareBot, *, background: bool = True) -> Starlette:
    """The app for a bot that is already built; starts and stops it with the server.

    `background=False` starts it without its background loops (timers, outbox sweep, reloads), as
    `CareBot.start(background=False)` does: for tests that move a ManualClock and fire timers with
    `timers.tick()` themselves, which a loop of its own would otherwise race."""
    from bot.runtime.gc_tuning import tune_for_server

    holder = _Holder()

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        await carebot.start(background=background)
        holder.set(carebot)
        tune_for_server()
        try:
            yield
        finally:
            await carebot.stop()

    app = _outer(holder, lifespan)
    app.state.carebot = carebot
    return app


def create_lazy_app(build: Callable[[], CareBot], on_failure: Callable[[], None] | None = None) -> Starlette:
    """The app `carebot run` serves: listening first, loading the bot in the background."""
    holder = _Holder()

    async def load() -> None:
        try:
            carebot = await asyncio.to_thread(build)
            await carebot.start()
        except Exception as exc:  # a bad config: say why, then shut the server down
            import gc

            gc.enable()  # `carebot run` loads with collections off (gc_tuning.loading)
            holder.failed = f"{type(exc).__name__}: {exc}"
            log.error("carebot failed to start: %s", holder.failed)
            if on_failure is not None:
                on_failure()
            return
        from bot.runtime.gc_tuning import tune_for_server

        tune_for_server(collect=False)  # `carebot run` loaded with collections off: little garbage to find
        holder.set(carebot)
        with contextlib.suppress(NotImplementedError, RuntimeError, AttributeError):  # SIGHUP: POSIX, main thread
            asyncio.get_running_loop().add_signal_handler(
                signal.SIGHUP, lambda: carebot.handoff.spawn(carebot.reloads.here("signal")))
        log.info("carebot ready after %.2f s", holder.ready_after or 0)

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        task = asyncio.create_task(load())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            if holder.carebot is not None:
                await holder.carebot.stop()

    return _outer(holder, lifespan)
