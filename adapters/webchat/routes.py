"""The web chat's HTTP surface: the WebSocket, its HTTP fallback, uploads, media, the widget files.

    GET  /chat                        the chat page (the widget, full page)
    GET  /webchat/widget.js|.css      the embeddable widget (also /widget.js)
    WS   /webchat/ws                  the live connection (protocol in docs/webchat.md)
    POST /webchat/api/session         open or continue a session → {token, visitor}
    POST /webchat/api/send            a message, as over the socket → ack or error; {type: open|locale,
                                      locale}: the widget opened (first open: greeted) / language switched
    GET  /webchat/api/poll?after=N    long poll: messages numbered above N (waits up to 25 s)
    POST /webchat/api/upload          raw image bytes → {id, mime, kind}
    GET  /webchat/api/media/{id}      an upload, to its own conversation (or staff) only
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Awaitable, Callable

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from adapters.webchat.adapter import LONG_EMERGENCY, RateLimited, Visitor, error
from adapters.webchat.hub import Listener
from adapters.webchat.media import UploadRefused
from adapters.webchat.tokens import BadToken
from bot.inputs import bounded_float, bounded_int, parse_json

if TYPE_CHECKING:
    from adapters.webchat.adapter import WebchatAdapter

STATIC = Path(__file__).parent / "static"
POLL_SECONDS = 25.0
PAGE_CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob: data: https:; "
            "connect-src 'self' ws: wss:; frame-ancestors *; base-uri 'none'; form-action 'none'")
_STATUS = {"bad_token": 401, "bad_request": 400, "too_long": 413, "too_large": 413, "empty": 400,
           "bad_type": 415, "bad_media": 404, "rate_limited": 429, "forbidden": 403, "server_error": 500,
           "unavailable": 503}


def _ip(conn: Request | WebSocket) -> str:
    return conn.client.host if conn.client else ""


def _status(frame: dict[str, Any]) -> int:
    return _STATUS.get(frame.get("code", ""), 200) if frame.get("type") == "error" else 200


def webchat_routes(adapter: WebchatAdapter) -> list[Any]:
    config = adapter.config

    # -- the widget files ---------------------------------------------------------------------------

    async def chat_page(_request: Request) -> Response:
        return FileResponse(STATIC / "chat.html", media_type="text/html; charset=utf-8",
                            headers={"Content-Security-Policy": PAGE_CSP, "X-Content-Type-Options": "nosniff",
                                     "Referrer-Policy": "no-referrer", "Cache-Control": "no-cache"})

    def static(name: str, media_type: str) -> Callable[[Request], Awaitable[Response]]:
        async def serve(_request: Request) -> Response:
            # no-cache: browsers revalidate (ETag), so a deploy reaches every hospital page at once
            return FileResponse(STATIC / name, media_type=media_type,
                                headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff",
                                         "Access-Control-Allow-Origin": "*"})
        return serve

    async def home(_request: Request) -> Response:
        return RedirectResponse("/chat")

    # -- the HTTP API: CORS for the allow-listed sites that embed the widget --------------------------

    def api(fn: Callable[[Request], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            origin = request.headers.get("origin", "")
            if not config.origin_allowed(origin, request.headers.get("host", "")):
                return JSONResponse(error("forbidden"), status_code=403)
            if request.method == "OPTIONS":
                response: Response = Response(status_code=204)
            else:
                try:
                    response = await fn(request)
                except BadToken:
                    response = JSONResponse(error("bad_token"), status_code=401)
                except RateLimited as exc:
                    response = JSONResponse(error("rate_limited", retry_after=round(exc.retry_after, 1)),
                                            status_code=429)
            if origin:
                response.headers.update({
                    "Access-Control-Allow-Origin": origin, "Vary": "Origin",
                    "Access-Control-Allow-Headers": "Authorization, Content-Type",
                    "Access-Control-Allow-Methods": "GET, POST, OPTIONS", "Access-Control-Max-Age": "600"})
            return response
        return endpoint

    async def visitor(request: Request) -> Visitor:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise BadToken("no token")
        return await adapter.check(token.strip(), _ip(request))

    async def json_body(request: Request, limit: int) -> dict[str, Any] | None:
        try:
            body = await _read_limited(request, limit)
        except UploadRefused:
            return None
        data = parse_json(body) if body else {}
        return data if isinstance(data, dict) else None

    async def session(request: Request) -> Response:
        data = await json_body(request, 4096) or {}
        token = data.get("token")
        s = await adapter.open_session(token if isinstance(token, str) else None, _ip(request))
        return JSONResponse({"token": s.token, "visitor": s.visitor, **limits()})

    async def send(request: Request) -> Response:
        who = await visitor(request)
        limit = config.max_text * 6 + 4096
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and len(declared) < 12 and int(declared) > limit:
            return JSONResponse(error("too_long", limit=config.max_text), status_code=413)
        data = await json_body(request, limit)
        if data is None:  # too long as it streamed in, not JSON, or nothing a database can store
            return JSONResponse(error("bad_request"), status_code=400)
        if isinstance(data, dict) and data.get("type") in ("open", "locale"):
            locale = data.get("locale")
            await adapter.opened(who, locale if isinstance(locale, str) else "", data["type"] == "locale")
            return JSONResponse({"type": "ok"})
        reply = await adapter.accept(who, data)
        retry = {"Retry-After": str(reply["retry_after"])} if "retry_after" in reply else None
        return JSONResponse(reply, status_code=_status(reply), headers=retry)

    async def poll(request: Request) -> Response:
        who = await visitor(request)
        after = bounded_int(request.query_params.get("after", "0"))
        wait = bounded_float(request.query_params.get("wait", POLL_SECONDS), low=0.0, high=1e9)
        if after is None or wait is None:
            return JSONResponse(error("bad_request"), status_code=400)
        wait = min(POLL_SECONDS, wait)
        assert adapter.log is not None
        listener = adapter.hub.listen(who.conversation_id)
        try:
            entries = await adapter.log.after(who.conversation_id, after, config.history_limit)
            frames = [e.frame() for e in entries]
            if not frames and wait > 0:
                frames = await _wait_for_messages(listener, after, wait, adapter.stopping)
        finally:
            adapter.hub.leave(listener)
        return JSONResponse({"messages": frames})

    async def upload(request: Request) -> Response:
        who = await visitor(request)
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and (len(declared) > 12 or int(declared) > config.max_upload_bytes):
            return JSONResponse(error("too_large", limit=config.max_upload_bytes), status_code=413)
        try:
            data = await _read_limited(request, config.max_upload_bytes)
            stored = await adapter.upload(who, data)
        except UploadRefused as exc:
            return JSONResponse(error(exc.code, limit=config.max_upload_bytes), status_code=_STATUS[exc.code])
        return JSONResponse({"id": stored.id, "mime": stored.mime, "kind": stored.kind, "size": stored.size})

    async def media(request: Request) -> Response:
        assert adapter.media is not None
        stored = await adapter.media.get(request.path_params["media_id"])
        try:
            who: Visitor | None = await visitor(request)
        except BadToken:
            who = None
        if stored is None or not await adapter.may_read(request, who, stored) or not stored.path.is_file():
            return JSONResponse(error("bad_media"), status_code=404)  # the same answer: no probing
        disposition = "inline" if stored.kind == "image" else "attachment"
        return FileResponse(stored.path, media_type=stored.mime, headers={
            "Content-Disposition": f'{disposition}; filename="{stored.id}.{stored.path.suffix.lstrip(".")}"',
            "X-Content-Type-Options": "nosniff", "Content-Security-Policy": "default-src 'none'; sandbox",
            "Cache-Control": "private, max-age=86400"})

    def limits() -> dict[str, int]:
        # max_emergency_text: how long a message the server still takes when it tells of an emergency
        return {"max_text": config.max_text, "max_emergency_text": config.max_text * LONG_EMERGENCY,
                "max_upload": config.max_upload_bytes}

    # -- the WebSocket ---------------------------------------------------------------------------------

    async def socket(ws: WebSocket) -> None:
        if not config.origin_allowed(ws.headers.get("origin", ""), ws.headers.get("host", "")):
            await ws.close(code=4403)  # before accept: the handshake is refused with 403
            return
        await ws.accept()
        ip = _ip(ws)
        try:
            hello = parse_json(await asyncio.wait_for(_receive_text(ws), config.hello_timeout))
            if not isinstance(hello, dict) or hello.get("type") != "hello":
                raise ValueError("first frame must be hello")
            token = hello.get("token")
            s = await adapter.open_session(token if isinstance(token, str) and token else None, ip)
            after = bounded_int(hello.get("after", 0), 0)
        except BadToken:
            await _close(ws, error("bad_token"), 4401)
            return
        except RateLimited as exc:
            await _close(ws, error("rate_limited", retry_after=round(exc.retry_after, 1)), 4429)
            return
        except (asyncio.TimeoutError, ValueError, TypeError, WebSocketDisconnect, RuntimeError):
            await _close(ws, error("bad_request"), 4400)
            return
        who = Visitor(s, ip)
        listener = adapter.hub.listen(who.conversation_id)
        await ws.send_text(json.dumps({"type": "ready", "token": s.token, "visitor": s.visitor, **limits()}))
        writer = asyncio.get_running_loop().create_task(_write(ws, adapter, listener, after))
        try:
            while True:
                raw = await _receive_text(ws)
                frame = parse_json(raw) if raw is not None else None  # a binary frame: a bad request
                kind = frame.get("type") if isinstance(frame, dict) else None
                if kind == "send":
                    reply = await adapter.accept(who, frame)
                    if reply["type"] == "error":  # a socket's ack is the echo of its message
                        listener.put(reply)
                elif kind in ("open", "locale"):
                    locale = frame.get("locale")
                    try:
                        await adapter.opened(who, locale if isinstance(locale, str) else "", kind == "locale")
                    except RateLimited as exc:
                        listener.put(error("rate_limited", retry_after=round(exc.retry_after, 1)))
                elif kind == "resume":
                    listener.put({"type": "_resume", "after": bounded_int(frame.get("after"))})
                elif kind == "ping":
                    listener.put({"type": "pong"})
                else:
                    listener.put(error("bad_request"))
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            adapter.hub.leave(listener)
            writer.cancel()

    routes = [
        Route("/", home), Route("/chat", chat_page),
        Route("/webchat/widget.js", static("widget.js", "text/javascript; charset=utf-8")),
        Route("/widget.js", static("widget.js", "text/javascript; charset=utf-8")),
        Route("/webchat/widget.css", static("widget.css", "text/css; charset=utf-8")),
        WebSocketRoute("/webchat/ws", socket),
        Route("/webchat/api/session", api(session), methods=["POST", "OPTIONS"]),
        Route("/webchat/api/send", api(send), methods=["POST", "OPTIONS"]),
        Route("/webchat/api/poll", api(poll), methods=["GET", "OPTIONS"]),
        Route("/webchat/api/upload", api(upload), methods=["POST", "OPTIONS"]),
        Route("/webchat/api/media/{media_id}", api(media), methods=["GET", "OPTIONS"]),
    ]
    return routes


async def _receive_text(ws: WebSocket) -> str | None:
    """The next text frame; None for a binary one. Raises WebSocketDisconnect when the client left."""
    message = await ws.receive()
    if message["type"] == "websocket.disconnect":
        raise WebSocketDisconnect(message.get("code", 1000))
    text = message.get("text")
    return text if isinstance(text, str) else None


async def _read_limited(request: Request, limit: int) -> bytes:
    """The body, refusing (UploadRefused too_large) as soon as it passes `limit` bytes."""
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise UploadRefused("too_large")
        chunks.append(chunk)
    return b"".join(chunks)


async def _wait_for_messages(listener: Listener, after: int, wait: float,
                             stopping: asyncio.Event) -> list[dict[str, Any]]:
    """What arrives for the conversation within `wait` seconds; nothing once the server is stopping
    (the widget polls again, reaching another worker)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    stop = asyncio.ensure_future(stopping.wait())
    try:
        while (left := deadline - loop.time()) > 0 and not stopping.is_set():
            got = asyncio.ensure_future(listener.queue.get())
            done, _ = await asyncio.wait({got, stop}, timeout=left, return_when=asyncio.FIRST_COMPLETED)
            if got not in done:
                got.cancel()
                break
            frame = got.result()
            if frame is None:
                break
            if frame.get("type") == "message" and frame["seq"] > after:
                frames = [frame]
                while not listener.queue.empty():  # whatever came with it
                    more = listener.queue.get_nowait()
                    if more is not None and more.get("type") == "message" and more["seq"] > after:
                        frames.append(more)
                return frames
        return []
    finally:
        stop.cancel()


async def _close(ws: WebSocket, frame: dict[str, Any], code: int) -> None:
    try:
        await ws.send_text(json.dumps(frame))
        await ws.close(code=code)
    except (WebSocketDisconnect, RuntimeError):
        pass


async def _write(ws: WebSocket, adapter: WebchatAdapter, listener: Listener, after: int) -> None:
    """The socket's only writer: history first, then live frames in order, each message once."""
    assert adapter.log is not None
    conv = listener.conversation_id
    try:
        history = await adapter.log.after(conv, after, adapter.config.history_limit)
        while history:
            for entry in history:
                await ws.send_text(json.dumps(entry.frame(), ensure_ascii=False))
            after = history[-1].seq
            history = await adapter.log.after(conv, after, adapter.config.history_limit) \
                if len(history) == adapter.config.history_limit else []
        while True:
            frame = await listener.queue.get()
            if frame is None or listener.overflowed:
                await ws.close(code=1012 if frame is None else 4408)  # the widget reconnects and resumes
                return
            kind = frame.get("type")
            if kind == "_resume":
                since = frame.get("after")
                since = since if isinstance(since, int) and since >= 0 else after
                for entry in await adapter.log.after(conv, since, adapter.config.history_limit):
                    await ws.send_text(json.dumps(entry.frame(), ensure_ascii=False))
                continue
            if kind == "message" and frame["seq"] <= after:
                continue  # pushed while the history was being read: already sent
            await ws.send_text(json.dumps(frame, ensure_ascii=False))
    except (WebSocketDisconnect, RuntimeError, OSError):
        pass
