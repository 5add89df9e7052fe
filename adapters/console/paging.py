"""The console's side of emergency paging (bot/handoff/paging.py):

    POST /console/pages/{ticket}/seen   the alert was displayed to this staff member (the browser says
                                        so): a delivered page, and the patient hears "alerted"
    POST /console/pages/{ticket}/ack    acknowledge: the ladder stops, the ticket is theirs

The inbox lists open alerts and who is on call now; console.js sounds and shows a live alert.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import Response
from starlette.routing import Route

from adapters.console.web import PREFIX, Ctx, Refused, Web
from bot.handoff.staff import HandoffError


async def paging_values(ctx: Ctx) -> dict[str, Any]:
    """For the inbox: the open emergency alerts this staff member should see, who is on call, and whom
    the on-call roster names without an account (nobody can page them)."""
    paging = ctx.carebot.handoff.paging
    if paging is None:
        return {"alerts": [], "on_call": [], "unstaffed": []}
    member = await ctx.carebot.handoff.staff(ctx.me.id)
    assert member is not None
    return {"alerts": await paging.open_alerts(member), "on_call": paging.on_call_now(),
            "unstaffed": await paging.unstaffed()}


def paging_routes(web: Web) -> list[Route]:
    async def page_action(ctx: Ctx) -> Response:
        ticket_id, action = ctx.request.path_params["ticket_id"], ctx.request.path_params["action"]
        paging = ctx.carebot.handoff.paging
        member = await ctx.carebot.handoff.staff(ctx.me.id)
        if paging is None or member is None or action not in ("seen", "ack"):
            raise Refused(ctx.t("no_such_ticket"), status=404)
        try:
            if action == "seen":
                await paging.seen(ticket_id, member)
                await ctx.audit("page_seen", ticket_id)
                return Response(status_code=204)
            won = await paging.acknowledge(ticket_id, member)
        except HandoffError as exc:
            if action == "seen":
                return Response(status_code=403)
            return web.redirect(ctx, f"{PREFIX}/inbox", ("error", exc.text(ctx.locale)))
        return web.redirect(ctx, f"{PREFIX}/tickets/{ticket_id}",
                            ("ok", ctx.t("page_acknowledged")) if won else ("error", ctx.t("page_taken")))

    return [Route("/pages/{ticket_id}/{action}", web.page(page_action), methods=["POST"])]
