"""The one ASGI app `carebot run` serves: health, metrics, and every adapter's routes."""

from __future__ import annotations

import contextlib
import time
from typing import AsyncIterator

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from bot.app import CareBot
from bot.runtime.gc_tuning import tune_for_server
from bot.metrics import REGISTRY

STARTED = time.monotonic()


def create_app(carebot: CareBot) -> Starlette:
    async def healthz(_request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok", "uptime_s": round(time.monotonic() - STARTED, 3)})

    async def metrics(_request: Request) -> Response:
        return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        await carebot.start()
        tune_for_server()
        try:
            yield
        finally:
            await carebot.stop()

    routes: list[BaseRoute] = [Route("/healthz", healthz), Route("/metrics", metrics)]
    for adapter in carebot.adapters.adapters.values():
        routes.extend(adapter.routes())
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.carebot = carebot
    return app
