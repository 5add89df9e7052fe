"""The moderator's view of patient groups (bot/groups):

    GET  /console/groups                          pending reports, flags and appeals; the moderation log
    POST /console/groups/cases/{id}/{decision}    report / flag: actioned | dismissed ·
                                                  appeal: upheld | lifted (the ban is lifted org-wide and
                                                  the member let back in where the platform can)

A moderator sees the cases assigned to them; admins, operators and customer service see every case
and the log. Every view and decision is audited; a decision is also a moderation-log row.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from starlette.responses import Response
from starlette.routing import Route

from adapters.console.i18n import STRINGS
from adapters.console.web import PREFIX, Ctx, Refused, Web
from bot.groups.records import BAN, CASE, LOG
from bot.handoff.staff import SEES_ALL
from bot.types import Address, Outbound

DECISIONS = {"report": ("actioned", "dismissed"), "flag": ("actioned", "dismissed"), "appeal": ("upheld", "lifted")}

STRINGS.update({
    "groups": ("群管理", "Groups"),
    "group_cases": ("待处理", "Waiting for a person"),
    "moderation_log": ("群管理日志", "Moderation log"),
    "case_report": ("举报", "report"),
    "case_flag": ("待核实", "flag"),
    "case_appeal": ("申诉", "appeal"),
    "group": ("群", "group"),
    "member": ("成员", "member"),
    "reporter": ("举报人", "reporter"),
    "trigger": ("触发", "trigger"),
    "done": ("实际处理", "done"),
    "fallback": ("降级原因", "fallback"),
    "excerpt": ("消息摘录", "excerpt"),
    "moderator": ("值班管理员", "moderator"),
    "decide_actioned": ("已处理", "Actioned"),
    "decide_dismissed": ("驳回举报", "Dismiss"),
    "decide_upheld": ("维持处理", "Uphold"),
    "decide_lifted": ("撤销并解封", "Lift the ban"),
    "case_decided": ("已记录处理结果。", "Decision recorded."),
    "no_such_case": ("没有这条记录，或已处理。", "No such case, or it was already decided."),
    "not_your_case": ("这条记录分配给了其他管理员。", "This case is assigned to another moderator."),
})


def moderation_routes(web: Web) -> list[Route]:
    async def page(ctx: Ctx) -> Response:
        everyone = ctx.me.role in SEES_ALL
        policy = ctx.request.query_params.get("policy", "")

        def q(conn: sa.Connection) -> tuple[list[Any], list[Any]]:
            cases = sa.select(CASE).where(CASE.c.status == "pending")
            if not everyone:
                cases = cases.where(CASE.c.assignee == ctx.me.id)
            log = sa.select(LOG).order_by(LOG.c.id.desc()).limit(200)
            if policy:
                cases, log = cases.where(CASE.c.policy == policy), log.where(LOG.c.policy == policy)
            return list(conn.execute(cases.order_by(CASE.c.id)).all()), \
                list(conn.execute(log).all()) if everyone else []

        cases, log = await ctx.carebot.store.read(q)
        await ctx.audit("view_moderation", policy or "all")
        policies = sorted(ctx.carebot.config.groups.policies)
        return web.render(ctx, "moderation.html", cases=cases, log=log, policies=policies, policy=policy,
                          decisions=DECISIONS)

    async def decide(ctx: Ctx) -> Response:
        case_id, decision = int(ctx.request.path_params["case_id"]), ctx.request.path_params["decision"]
        store, now = ctx.carebot.store, ctx.now
        case = await store.read(lambda c: c.execute(sa.select(CASE).where(
            CASE.c.id == case_id, CASE.c.status == "pending")).first())
        if case is None or decision not in DECISIONS.get(case.kind, ()):
            raise Refused(ctx.t("no_such_case"), status=404)
        if ctx.me.role not in SEES_ALL and case.assignee != ctx.me.id:
            raise Refused(ctx.t("not_your_case"))
        actor = f"staff:{ctx.me.id}"
        claimed: list[Any] = []

        def write(conn: sa.Connection) -> bool:
            done = conn.execute(CASE.update().where(CASE.c.id == case_id, CASE.c.status == "pending").values(
                status="resolved", resolved_at=now, resolved_by=ctx.me.id, decision=decision)).rowcount == 1
            if not done:
                return False
            conn.execute(LOG.insert().values(
                org=case.org, at=now, policy=case.policy, channel=case.channel, chat_id=case.chat_id,
                member=case.member, conversation_id="", message_id=case.message_id, trigger=f"{case.kind}:{case_id}",
                action=decision, done=decision, fallback="", actor=actor, excerpt=""))
            if decision == "lifted":
                conn.execute(BAN.update().where(BAN.c.org == case.org, BAN.c.channel == case.channel,
                                                BAN.c.user_id == case.member, BAN.c.lifted_at.is_(None)).values(
                    lifted_at=now, lifted_by=ctx.me.id))
                address = Address(case.channel, case.chat_id, case.member, is_group=True, org=case.org)
                for op, extra in (("ban", {"lift": True}), ("restrict", {"permissions": "all", "until": ""})):
                    ob = Outbound(op=op, address=address, extra={**extra, "reason": f"appeal {case_id}"})  # type: ignore[arg-type]
                    claimed.append(store.outbox_row(conn, address.conversation_id, ob, now, case.org))
            return True

        if not await store.write(write):
            raise Refused(ctx.t("no_such_case"), status=404)
        ctx.carebot.sender.enqueue(claimed)
        await ctx.audit(f"group_case_{decision}", str(case_id), {"kind": case.kind, "member": case.member})
        return web.redirect(ctx, f"{PREFIX}/groups", ("ok", ctx.t("case_decided")))

    return [Route("/groups", web.page(page)),
            Route("/groups/cases/{case_id:int}/{decision}", web.page(decide), methods=["POST"])]
