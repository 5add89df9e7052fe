"""Where action names meet the code that runs them.

A user module registers Python callables with the module-level decorator::

    from bot.actions.registry import action

    @action("lookup_price")
    async def lookup_price(ctx):
        return {"slots": {"price": 120}, "messages": [{"key": "price.quote", "vars": {"price": 120}}]}

and the runtime loads it with `registry.load_modules(["mypkg.actions"])`, which also registers every
rasa-sdk `Action` subclass found there by its `name()`. A name not registered locally goes to the
Rasa action server at `remote_endpoint`, when one is set.

`run` never raises for an action's failure: an exception, a timeout, an unknown name or a bad result
comes back as `ActionResult(ok=False, error=...)`, and the log names only the action and the
conversation — never slot values or message text.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import logging
import os
import pkgutil
import traceback
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Callable, Iterable

import httpx

from bot.actions.base import ActionContext, ActionFunc, ActionMessage, ActionResult
from bot.actions.rasa import InProcessRasaAction, RemoteActionServer, is_rasa_action, rasa_actions_in

log = logging.getLogger("carebot.actions")

DEFAULT_TIMEOUT = 10.0
_RESULT_KEYS = {"slots", "messages", "ok", "error"}


class ActionFailed(Exception):
    """An action broke its contract; `reason` is short and free of personal data."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class _Entry:
    target: Any  # what was registered: a callable, or a rasa-sdk Action instance or class
    runner: Callable[[ActionContext], Any]
    module: str  # the module that defined it, so load_modules can find decorator registrations


class ActionRegistry:
    """Named actions: Python callables, in-process rasa-sdk Actions, and a remote action server.

    `names()` lists only local actions: names served by `remote_endpoint` cannot be checked
    before they are called, so `carebot validate` should treat an unknown name as an error only
    when no remote endpoint is configured.
    """

    def __init__(self, remote_endpoint: str | None = None, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.remote_endpoint = remote_endpoint
        self.timeout = timeout
        self._entries: dict[str, _Entry] = {}
        self._remote: RemoteActionServer | None = None

    def register(self, name: str, target: Any) -> None:
        """Register `target` under `name`.

        `target` is `f(ctx) -> ActionResult | dict | None` (sync or async; the dict is
        `{"slots": {...}, "messages": [...]}` shorthand) or a rasa-sdk `Action` instance or class.
        Registering the same target again is a no-op; another target under a taken name is an error.
        """
        if not name or not isinstance(name, str):
            raise ValueError(f"an action name must be a non-empty string, not {name!r}")
        if is_rasa_action(target):
            runner = InProcessRasaAction(target).run
        elif callable(target):
            runner = _callable_runner(target)
        else:
            raise TypeError(
                f"action {name!r}: expected a callable f(ctx) or a rasa-sdk Action, got {type(target).__name__}"
            )
        existing = self._entries.get(name)
        if existing is not None:
            if _same_target(existing.target, target):
                return
            raise ValueError(f"action {name!r} is already registered by {existing.module or '?'}")
        self._entries[name] = _Entry(target, runner, _module_of(target))

    def action(self, name: str) -> Callable[[ActionFunc], ActionFunc]:
        """Decorator: `@registry.action("lookup_price")` registers the function and returns it unchanged."""

        def decorate(f: ActionFunc) -> ActionFunc:
            self.register(name, f)
            return f

        return decorate

    def load_modules(self, modules: Iterable[str]) -> None:
        """Import modules (and a package's submodules, as `rasa run actions --actions` does).

        Their `@action` registrations on the default registry are picked up, and every rasa-sdk
        `Action` subclass found in them is registered by its `name()`. An import error propagates:
        a deployment with a broken actions module should not start.
        """
        for module_name in modules:
            for module in _import_tree(module_name.strip()):
                if self is not default_registry:  # decorators ran (maybe earlier) on the default one
                    for name, entry in default_registry._entries.items():
                        if entry.module == module.__name__:
                            self.register(name, entry.target)
                for rasa_action in rasa_actions_in(module):
                    self.register(rasa_action.name(), rasa_action)

    def names(self) -> list[str]:
        """Locally registered action names, sorted. Remote ones are not listed (see class doc)."""
        return sorted(self._entries)

    async def run(self, name: str, ctx: ActionContext) -> ActionResult:
        """Run the action `name`. Failures come back as `ok=False` with a short reason, never raised."""
        entry = self._entries.get(name)
        remote = entry is None
        deadline = asyncio.timeout(self.timeout)
        try:
            async with deadline:
                if entry is not None:
                    result = await entry.runner(ctx)
                elif self.remote_endpoint:
                    result = await self._remote_server().run(ctx)
                else:
                    result = ActionResult(ok=False, error="unknown action")
        except TimeoutError as e:  # ours, or one the action's own code raised
            expired = deadline.expired()
            result = ActionResult(ok=False, error=f"timed out after {self.timeout:g}s") if expired else _from_exception(e)
        except ActionFailed as e:
            result = ActionResult(ok=False, error=e.reason)
        except Exception as e:  # noqa: BLE001 — an action's bug must not break the conversation
            result = _from_exception(e, remote)
        if not result.ok:
            log.warning("action %s failed in conversation %s: %s", name, ctx.conversation_id, result.error)
        return result

    async def aclose(self) -> None:
        """Close the connection pool to the remote action server, if one was opened."""
        if self._remote is not None:
            await self._remote.aclose()
            self._remote = None

    def _remote_server(self) -> RemoteActionServer:
        if self._remote is None or self._remote.url != (self.remote_endpoint or "").rstrip("/"):
            self._remote = RemoteActionServer(self.remote_endpoint or "", timeout=self.timeout)
        return self._remote


default_registry = ActionRegistry()
"""The registry user modules register on with the module-level `action` decorator."""

action = default_registry.action


def coerce_result(value: Any) -> ActionResult:
    """An action's return value as an ActionResult: None → empty, dict shorthand → ActionResult."""
    if value is None:
        return ActionResult()
    if isinstance(value, ActionResult):
        return value
    if not isinstance(value, dict):
        raise ActionFailed(f"returned {type(value).__name__}, expected ActionResult, dict or None")
    unknown = sorted(set(value) - _RESULT_KEYS)
    if unknown:
        raise ActionFailed(f"result has unknown keys {unknown}; valid: {sorted(_RESULT_KEYS)}")
    slots = value.get("slots") or {}
    messages = value.get("messages") or []
    if not isinstance(slots, dict) or not isinstance(messages, list):
        raise ActionFailed("result slots must be a dict and messages a list")
    return ActionResult(
        slots=dict(slots),
        messages=[_coerce_message(m) for m in messages],
        ok=bool(value.get("ok", True)),
        error=str(value.get("error", "")),
    )


def _coerce_message(value: Any) -> ActionMessage:
    if isinstance(value, ActionMessage):
        return value
    if isinstance(value, dict):
        try:
            return ActionMessage(**value)
        except TypeError:
            raise ActionFailed(f"message has unknown keys; valid: {sorted(ActionMessage.__slots__)}") from None
    raise ActionFailed(f"message is {type(value).__name__}, expected ActionMessage or dict")


def _callable_runner(f: Callable[..., Any]) -> Callable[[ActionContext], Any]:
    is_async = inspect.iscoroutinefunction(f) or inspect.iscoroutinefunction(getattr(f, "__call__", None))

    async def run(ctx: ActionContext) -> ActionResult:
        if is_async:
            value = await f(ctx)
        else:
            # A thread keeps blocking code (a hospital system's SDK) off the event loop and lets the
            # timeout answer on time; the thread itself cannot be stopped and finishes on its own.
            value = await asyncio.to_thread(f, ctx)
            if inspect.isawaitable(value):
                value = await value
        return coerce_result(value)

    return run


def _from_exception(e: Exception, remote: bool = False) -> ActionResult:
    """A short reason: the exception's type and where it was raised, never its message
    (messages often quote the data that caused them)."""
    if remote and isinstance(e, httpx.TimeoutException):
        return ActionResult(ok=False, error="action server timed out")
    if remote and isinstance(e, httpx.HTTPError):
        return ActionResult(ok=False, error=f"action server unreachable ({type(e).__name__})")
    frames = traceback.extract_tb(e.__traceback__)
    where = f" at {os.path.basename(frames[-1].filename)}:{frames[-1].lineno}" if frames else ""
    return ActionResult(ok=False, error=f"raised {type(e).__name__}{where}")


def _import_tree(name: str) -> list[ModuleType]:
    module = importlib.import_module(name)
    found = [module]
    for info in pkgutil.iter_modules(getattr(module, "__path__", []), prefix=f"{module.__name__}."):
        found.extend(_import_tree(info.name))
    return found


def _module_of(target: Any) -> str:
    cls = target if inspect.isclass(target) else None
    if cls is None and not inspect.isfunction(target) and not inspect.ismethod(target):
        cls = type(target)  # a rasa Action instance or a callable object
    return getattr(cls or target, "__module__", "") or ""


def _same_target(a: Any, b: Any) -> bool:
    """The same function, or the same rasa Action class (load_modules makes fresh instances)."""
    if a is b:
        return True
    cls_a = a if inspect.isclass(a) else type(a)
    cls_b = b if inspect.isclass(b) else type(b)
    return is_rasa_action(a) and cls_a is cls_b
