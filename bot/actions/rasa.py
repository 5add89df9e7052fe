"""Run existing rasa-sdk action code unchanged: in-process, or on a Rasa action server.

In-process, a rasa-sdk `Action` gets a real `rasa_sdk.Tracker` and `CollectingDispatcher` built from
the `ActionContext`. Remotely, the same tracker travels to `{endpoint}/webhook` in the Rasa action
server protocol. Either way the answer — events and dispatcher responses — becomes an
`ActionResult`: `SlotSet` events become slots, responses become `ActionMessage`s.

`rasa_sdk` (which pulls in Sanic, ~0.25 s) is imported only when an in-process rasa action runs or
is registered; the remote path needs only httpx and does not import it at all.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import sys
from types import ModuleType
from typing import Any

import httpx

from bot.actions.base import ActionContext, ActionMessage, ActionResult

log = logging.getLogger("carebot.actions")

PROTOCOL_VERSION = "3.x"  # the server only warns (once) when major.minor differ from its rasa-sdk
_MESSAGE_FIELDS = {"text", "buttons", "image", "response", "template"}
_DROPPED_FIELDS = {"elements", "custom", "attachment"}  # no ActionMessage field to carry them
_NOT_JSON = object()


def response_key(response: str) -> str:
    """The content key for a Rasa response name: `utter_x` → `rasa.utter_x`; dotted names as-is."""
    return response if "." in response else f"rasa.{response}"


def tracker_state(ctx: ActionContext) -> dict[str, Any]:
    """The tracker as Rasa would send it to an action server (`Tracker.from_dict` reads it)."""
    return {
        "sender_id": ctx.conversation_id,
        "slots": dict(ctx.slots),
        "latest_message": {"text": ctx.latest_text, "intent": {}, "entities": []},
        "events": [],
        "paused": False,
        "followup_action": None,
        "active_loop": {},
        "latest_action": {"action_name": "action_listen"},
        "latest_action_name": "action_listen",
    }


def domain_for(ctx: ActionContext) -> dict[str, Any]:
    """A minimal domain: carebot has no Rasa domain, but actions may read its slot names."""
    return {
        "version": "3.1",
        "intents": [],
        "entities": [],
        "slots": {name: {"type": "any", "mappings": []} for name in ctx.slots},
        "responses": {},
        "actions": [ctx.name],
        "forms": {},
    }


def result_from_rasa(events: list[Any], responses: list[Any], action_name: str) -> ActionResult:
    """Turn rasa events and dispatcher messages into an ActionResult.

    Only `SlotSet` events mean something to carebot; others (FollowupAction, Restarted …) are
    skipped. A response carrying both a response name and text keeps both: as in Rasa, the
    literal text overrides the response's own text; extra keyword arguments become `vars`.
    """
    slots: dict[str, Any] = {}
    for event in events:
        if isinstance(event, dict) and event.get("event") == "slot" and isinstance(event.get("name"), str):
            slots[event["name"]] = event.get("value")
        else:
            kind = event.get("event") if isinstance(event, dict) else type(event).__name__
            log.debug("action %s: skipped rasa event %s", action_name, kind)
    messages = [m for m in (_message_from_rasa(r, action_name) for r in responses) if m is not None]
    return ActionResult(slots=slots, messages=messages)


def _message_from_rasa(response: Any, action_name: str) -> ActionMessage | None:
    if not isinstance(response, dict):
        log.debug("action %s: skipped a response that is not an object", action_name)
        return None
    name = response.get("response") or response.get("template") or ""
    dropped = sorted(k for k in _DROPPED_FIELDS if response.get(k))
    if dropped:
        log.debug("action %s: dropped response fields %s", action_name, dropped)
    message = ActionMessage(
        key=response_key(str(name)) if name else "",
        text=str(response.get("text") or ""),
        buttons=[
            {"title": str(b.get("title", "")), "payload": str(b.get("payload", ""))}
            for b in response.get("buttons") or []
            if isinstance(b, dict)
        ],
        image=str(response.get("image") or ""),
        vars={k: v for k, v in response.items() if k not in _MESSAGE_FIELDS | _DROPPED_FIELDS},
    )
    return message if message.key or message.text or message.image or message.buttons else None


# ---------------------------------------------------------------------------------------------
# In-process


def is_rasa_action(target: Any) -> bool:
    """True for a rasa-sdk `Action` instance or subclass. Never imports rasa_sdk itself:
    if it is not imported yet, nothing can be a rasa-sdk action."""
    interfaces = sys.modules.get("rasa_sdk.interfaces")
    if interfaces is None:
        return False
    if inspect.isclass(target):
        return issubclass(target, interfaces.Action)
    return isinstance(target, interfaces.Action)


def rasa_actions_in(module: ModuleType) -> list[Any]:
    """Instances of every concrete rasa-sdk `Action` subclass a module defines or imports.

    rasa-sdk's own classes (FormValidationAction …) and user base classes without a `name()`
    are skipped.
    """
    found = []
    for value in vars(module).values():
        if not inspect.isclass(value) or not is_rasa_action(value) or inspect.isabstract(value):
            continue
        if value.__module__.split(".")[0] in {"rasa_sdk", "rasa", "rasa_core", "rasa_core_sdk"}:
            continue
        action = value()
        try:
            action.name()
        except NotImplementedError:
            log.debug("skipped rasa action base class %s", value.__qualname__)
            continue
        found.append(action)
    return found


class InProcessRasaAction:
    """A rasa-sdk `Action` run in this process with a real Tracker and CollectingDispatcher."""

    def __init__(self, action: Any) -> None:
        self.action = action() if inspect.isclass(action) else action

    async def run(self, ctx: ActionContext) -> ActionResult:
        from rasa_sdk.executor import CollectingDispatcher
        from rasa_sdk.interfaces import ActionExecutionRejection, Tracker
        from rasa_sdk.utils import call_potential_coroutine

        dispatcher = CollectingDispatcher()
        tracker = Tracker.from_dict(tracker_state(ctx))
        run = self.action.run
        try:
            if inspect.iscoroutinefunction(run):
                events = await run(dispatcher, tracker, domain_for(ctx))
            else:  # blocking code stays off the event loop, so the registry's timeout can answer
                events = await call_potential_coroutine(await asyncio.to_thread(run, dispatcher, tracker, domain_for(ctx)))
        except ActionExecutionRejection:
            return ActionResult(ok=False, error="action rejected execution")
        if dispatcher.is_streaming_active:  # opened a stream and never closed it: rasa-sdk closes it too
            await dispatcher.stream_end()
        return result_from_rasa(events or [], dispatcher.messages, ctx.name)


# ---------------------------------------------------------------------------------------------
# Remote


class RemoteActionServer:
    """A Rasa action server (`rasa run actions`, or any server speaking its `/webhook` protocol)."""

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self._client: httpx.AsyncClient | None = None

    async def run(self, ctx: ActionContext) -> ActionResult:
        """Call `ctx.name` on the server. Protocol failures come back as `ok=False`;
        network errors and timeouts raise (httpx) for the registry to report."""
        body = {
            "next_action": ctx.name,
            "sender_id": ctx.conversation_id,
            "tracker": tracker_state(ctx),
            "domain": domain_for(ctx),
            "version": PROTOCOL_VERSION,
        }
        response = await self._http().post(f"{self.url}/webhook", json=body)
        try:
            data = response.json()
        except ValueError:
            data = _NOT_JSON
        if response.status_code == 404 and isinstance(data, dict) and "action_name" in data:
            return ActionResult(ok=False, error="unknown action")
        if response.status_code == 400 and isinstance(data, dict) and "action_name" in data:
            return ActionResult(ok=False, error="action rejected execution")
        if not response.is_success:
            return ActionResult(ok=False, error=f"action server HTTP {response.status_code}")
        if not isinstance(data, dict) or not isinstance(data.get("events", []), list) or not isinstance(
            data.get("responses", []), list
        ):
            return ActionResult(ok=False, error="bad response from action server")
        return result_from_rasa(data.get("events") or [], data.get("responses") or [], ctx.name)

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:  # one pooled client, made inside the running event loop
            self._client = httpx.AsyncClient(timeout=self.timeout)
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
