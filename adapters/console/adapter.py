"""The staff console adapter: the web UI at /console, and the live feed staff consoles listen to.

It has no patients of its own. `routes()` serves the console (adapters/console/routes.py); `send`
takes the one outbound meant for staff, `notify_staff`, and publishes it on the `console` feed
(ids only, never message text), which every open console receives over Server-Sent Events.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from bot.adapter import Adapter, Capabilities, RatePolicy
from bot.types import Delivery, Outbound

if TYPE_CHECKING:
    from adapters.console.web import Web
    from bot.runtime.runtime import Runtime
    from bot.settings import Settings

CHANNEL = "console"
FEED = "console"


class ConsoleAdapter(Adapter):
    channel = CHANNEL
    capabilities = Capabilities(ops=frozenset({"notify_staff"}), buttons=False, media=False)
    rate_policy = RatePolicy(per_chat=(1000, 1.0), overall=(100_000, 1.0))  # our own pub/sub: no quota

    def __init__(self, settings: Settings):
        self.settings = settings
        self.runtime: Runtime | None = None
        self.web: Web | None = None  # set when the routes are built

    def routes(self) -> list[Any]:
        from adapters.console.routes import console_routes

        return console_routes(self)

    async def start(self, runtime: Runtime) -> None:
        self.runtime = runtime

    async def staff_may_see_media(self, request: Any, conversation_id: str) -> bool:
        """For the web chat's uploads: a logged-in staff member who may see one of the
        conversation's tickets may see its photos; each view is audited."""
        if self.web is None:
            return False
        ctx = await self.web.context(request)
        if ctx.staff is None:
            return False
        member = await ctx.carebot.handoff.staff(ctx.staff.id)
        if member is None or not await ctx.carebot.handoff.may_see_conversation(member, conversation_id):
            return False
        await ctx.audit("view_media", conversation_id)
        return True

    async def send(self, outbound: Outbound, idempotency_key: str) -> Delivery:
        if outbound.op != "notify_staff":
            return Delivery(ok=False, retryable=False, error=f"the staff console cannot {outbound.op}")
        if self.runtime is None:
            return Delivery(ok=False, retryable=True, error="the staff console is not started")
        extra = outbound.extra
        event = {"type": "notify_staff", "ticket": str(extra.get("ticket_id", "")),
                 "department": str(extra.get("department", "")), "priority": str(extra.get("priority", "")),
                 "staff": str(extra.get("staff", "")),
                 # a notice moved here from a platform that cannot notify staff names its conversation
                 "conversation": str(extra.get("conversation") or outbound.address.conversation_id),
                 "action": str(extra.get("action", "")), "key": outbound.key}
        await self.runtime.coord.publish(FEED, json.dumps(event, ensure_ascii=False))
        return Delivery(ok=True, platform_message_id=idempotency_key)
