"""Changing flows and content while the server runs: `carebot reload`, SIGHUP, the console's button.

A reload reads flows and content from disk exactly as `carebot validate` does (every file checked,
triage patterns compiled). Only a configuration without problems replaces the running one; a broken
change is refused, the old configuration keeps serving, and the problems (file:line: field: what
would be valid) go back to whoever asked. The swap is a handful of attribute assignments on the event
loop — the engine, the pipeline, the actions, the hand-off settings — so a turn sees either the old
configuration or the new one. Conversations keep their positions: a frame names its flow and the
label of its step (the step's `id`, or its path), not an index, so a waiting question stays where it
was; a label that no longer exists restarts its flow (docs/architecture.md, "The engine").

Several workers: a reload asked of one worker (`carebot reload`, the console) is broadcast on the
`reload` channel of `Coord` (Redis pub/sub); every other worker reloads from its own disk and answers
on `reload-done`, and the asking worker reports every answer that arrives within `COLLECT_SECONDS`.
SIGHUP reloads only the process that receives it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from bot.errors import ConfigError
from bot.logs import event

if TYPE_CHECKING:
    from bot.app import CareBot, Config

log = logging.getLogger("carebot.reload")

REQUESTS, ANSWERS = "reload", "reload-done"
COLLECT_SECONDS = 1.5  # how long the asking worker waits for the others' answers


@dataclass(frozen=True)
class ReloadResult:
    """One worker's answer: applied (and how many flows now serve) or refused (and why)."""

    ok: bool
    worker: str
    problems: tuple[str, ...] = ()
    flows: int = 0
    took_ms: float = 0.0

    def text(self) -> str:
        if self.ok:
            return f"{self.worker}: reloaded, {self.flows} flows ({self.took_ms:.0f} ms)"
        lines = [f"{self.worker}: refused, the running flows and content keep serving; "
                 f"{len(self.problems)} problem(s):"]
        return "\n".join(lines + [f"  {p}" for p in self.problems])

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ReloadResult:
        return cls(bool(data.get("ok")), str(data.get("worker", "?")), tuple(map(str, data.get("problems", ()))),
                   int(data.get("flows", 0)), float(data.get("took_ms", 0.0)))


def check(carebot: CareBot) -> Config:
    """Load and check flows and content as `carebot validate` does; raise ConfigError on any problem."""
    from bot.app import load_config

    config = load_config(carebot.settings)
    lazy = [p for rules in config.triage.values() for p in rules.compile_all()]
    if lazy:  # patterns compile on first use at run time: a reload compiles them all first
        raise ConfigError([str(p) for p in lazy])  # type: ignore[list-item]
    return config


def apply(carebot: CareBot, config: Config) -> None:
    """Put a checked configuration in place of the running one (no await: one step of the loop)."""
    from bot.app import _actions, build_pipeline
    from bot.care.actions import register_handoff_actions
    from bot.runtime.proactive import ProactivePolicy

    engine, pipeline = build_pipeline(config, carebot.settings.base_locale)
    actions = _actions(carebot.settings, config)
    register_handoff_actions(actions, carebot.handoff)
    old_actions = carebot.runtime.actions
    if old_actions is not None:
        actions._remote = old_actions._remote  # the remote action server's client, still in use
    proactive = ProactivePolicy(config.care.proactive)
    runtime = carebot.runtime
    runtime.pipeline, runtime.engine, runtime.actions, runtime.proactive = pipeline, engine, actions, proactive
    carebot.timers.proactive = proactive
    carebot.handoff.settings = config.handoff
    carebot.handoff.promises.reply_time = config.care.reply_time
    if carebot.handoff.paging is not None:
        carebot.handoff.paging.ambulance = config.care.region.numbers.ambulance
    carebot.config, carebot.engine = config, engine


@dataclass
class Reloads:
    """A bot's reloads: one at a time, and — with Redis — on every worker."""

    carebot: CareBot
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _listener: asyncio.Task[None] | None = None

    async def here(self, by: str) -> ReloadResult:
        """Reload this process; `by` says who asked (`cli`, `signal`, `staff:<id>`, `worker:<id>`)."""
        worker = self.carebot.settings.worker_id
        async with self._lock:
            started = time.perf_counter()
            try:
                config = await asyncio.to_thread(check, self.carebot)
            except ConfigError as exc:
                result = ReloadResult(False, worker, tuple(str(p) for p in exc.problems))
            except Exception as exc:  # an unreadable directory, a bug in a loader: refuse, keep serving
                result = ReloadResult(False, worker, (f"{type(exc).__name__}: {exc}",))
            else:
                apply(self.carebot, config)
                result = ReloadResult(True, worker, flows=len(config.flows.flows),
                                      took_ms=round(1000 * (time.perf_counter() - started), 1))
        event(log, "reload", level=logging.INFO if result.ok else logging.WARNING, ok=result.ok, by=by,
              flows=result.flows, problems=len(result.problems), took_ms=result.took_ms)
        if not result.ok:  # file:line: field — the operator's own words, never patient data
            log.warning("reload refused:\n%s", "\n".join(result.problems))
        return result

    async def everywhere(self, by: str) -> list[ReloadResult]:
        """Reload this worker, then (with Redis) ask the others and collect their answers."""
        results = [await self.here(by)]
        if not self.carebot.settings.redis_url:
            return results
        request = uuid.uuid4().hex
        answers = self.carebot.coord.subscribe(ANSWERS)
        try:
            first = asyncio.ensure_future(anext(answers))
            await asyncio.sleep(0.05)  # let the subscription reach Redis before asking
            await self.carebot.coord.publish(REQUESTS, json.dumps(
                {"id": request, "origin": self.carebot.settings.worker_id, "by": by}))
            deadline = time.monotonic() + COLLECT_SECONDS
            pending: asyncio.Future[str] = first
            while (left := deadline - time.monotonic()) > 0:
                done, _ = await asyncio.wait({pending}, timeout=left)
                if not done:
                    break
                data = json.loads(pending.result())
                if data.get("id") == request:
                    results.append(ReloadResult.from_dict(data["result"]))
                pending = asyncio.ensure_future(anext(answers))
            pending.cancel()
        finally:
            with contextlib.suppress(Exception):
                await answers.aclose()  # type: ignore[attr-defined]
        return results

    def start(self) -> None:
        """Answer other workers' reload requests (Redis only: without it there are no other workers)."""
        if self.carebot.settings.redis_url and self._listener is None:
            self._listener = asyncio.get_running_loop().create_task(self._listen())

    async def stop(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
            self._listener = None

    async def _listen(self) -> None:
        me = self.carebot.settings.worker_id
        while True:
            try:
                async for message in self.carebot.coord.subscribe(REQUESTS):
                    data = json.loads(message)
                    if data.get("origin") == me:
                        continue
                    result = await self.here(f"worker:{data.get('origin', '?')}")
                    await self.carebot.coord.publish(ANSWERS, json.dumps({"id": data.get("id"),
                                                                          "result": asdict(result)}))
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Redis went away: listen again shortly
                log.warning("reload listener: %s; retrying", type(exc).__name__)
                await asyncio.sleep(1.0)


# -- asking a running server: `carebot reload` ------------------------------------------------------

LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})


def reload_token(secret: str) -> str:
    """What `carebot reload` shows the server: an HMAC of the server secret (CAREBOT_SECRET)."""
    import hashlib
    import hmac

    return hmac.new(secret.encode(), b"carebot-reload-v1", hashlib.sha256).hexdigest()


def admin_routes(carebot_of: Any) -> list[Any]:
    """`POST /admin/reload`: from the loopback interface, with the token; answers every worker's result.
    `carebot_of()` is the running bot, or None while it loads."""
    import hmac

    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def reload_endpoint(request: Request) -> JSONResponse:
        carebot = carebot_of()
        client = request.client.host if request.client else ""
        if client not in LOOPBACK or request.headers.get("x-forwarded-for"):
            return JSONResponse({"error": "reload is only taken from this machine (127.0.0.1)"}, status_code=403)
        if carebot is None:
            return JSONResponse({"error": "carebot is starting"}, status_code=503)
        given = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(given, reload_token(carebot.settings.server_secret())):
            return JSONResponse({"error": "wrong reload token: carebot reload must see the server's "
                                          "CAREBOT_SECRET (or run in its directory, for .carebot-secret)"},
                                status_code=403)
        results = await carebot.reloads.everywhere("cli")
        return JSONResponse({"ok": all(r.ok for r in results), "results": [asdict(r) for r in results]},
                            status_code=200 if all(r.ok for r in results) else 422)

    return [Route("/admin/reload", reload_endpoint, methods=["POST"])]


def request_reload(url: str, secret: str, timeout: float = 60.0) -> tuple[int, list[ReloadResult], str]:
    """Ask a running server to reload: (exit code, results, error). 0 applied everywhere, 1 refused
    somewhere, 2 not reached."""
    import urllib.error
    import urllib.request

    req = urllib.request.Request(url.rstrip("/") + "/admin/reload", data=b"", method="POST",
                                 headers={"Authorization": f"Bearer {reload_token(secret)}"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as response:
            body = json.load(response)
    except urllib.error.HTTPError as exc:
        try:
            body = json.load(exc)
        except ValueError:
            return 2, [], f"{url}: HTTP {exc.code}"
        if "results" not in body:
            return 2, [], f"{url}: {body.get('error') or exc.code}"
    except OSError as exc:
        return 2, [], f"{url}: carebot is not reachable ({exc}); is `carebot run` serving there?"
    results = [ReloadResult.from_dict(r) for r in body.get("results", [])]
    return (0 if results and all(r.ok for r in results) else 1), results, ""


def cmd_reload(args: Any) -> int:
    """`carebot reload`: the running server (and, with Redis, every worker) re-reads flows and content."""
    import sys

    from bot.settings import Settings

    settings = Settings.from_env()
    url = args.url or f"http://127.0.0.1:{args.port or settings.port}"
    code, results, error = request_reload(url, settings.server_secret())
    for r in results:
        print(r.text(), file=sys.stdout if r.ok else sys.stderr)
    if error:
        print(f"carebot reload: {error}", file=sys.stderr)
    return code


def add_parser(sub: Any) -> None:
    p = sub.add_parser("reload", help="re-read flows and content in the running server without a restart "
                       "(validated first; a broken change is refused and the old one keeps serving)")
    p.add_argument("--url", help="the server, from this machine (default http://127.0.0.1:$CAREBOT_PORT)")
    p.add_argument("--port", type=int)
    p.set_defaults(fn=cmd_reload)
