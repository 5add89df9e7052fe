"""The care team's view of a patient's medication adherence (bot/reminders/adherence.py):

    GET /console/adherence/{conversation id}               per plan and for the patient: a table and
                                                            an SVG chart (adherence % per plan, per day)
    GET /console/adherence/{conversation id}?format=json   the same figures as JSON
        ?days=N (1–365, default content/reminders.yml `adherence_days`)

Who may look: the staff who may see one of the patient's tickets (`can_view`), or a role that sees
every department (`SEES_ALL`). Each view, and each refusal, is an audit entry. The page shows what
was prescribed as written and what happened to each dose; the console never changes a plan here.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from adapters.console import views
from adapters.console.charts import Bar, bar_chart
from adapters.console.web import HEADERS, Ctx, Refused, Web
from bot.handoff.service import HandoffService
from bot.handoff.staff import SEES_ALL
from bot.reminders.adherence import Adherence, adherence

MAX_DAYS = 365
STRINGS = {
    "title": ("服药依从性", "Medication adherence"),
    "back": ("返回患者档案", "Back to the patient"),
    "period": ("近 {n} 天（{since} 至 {until}）", "Last {n} days ({since} to {until})"),
    "plan": ("药物", "Medicine"),
    "percent": ("依从性", "Adherence"),
    "taken": ("已服用", "Taken"),
    "on_time": ("按时", "On time"),
    "skipped": ("跳过", "Skipped"),
    "missed": ("漏服", "Missed"),
    "not_reminded": ("未提醒（停机/退订）", "Not reminded (downtime / STOP)"),
    "all_plans": ("全部药物", "All medicines"),
    "chart_plans": ("各药物依从性（%）", "Adherence per medicine (%)"),
    "chart_days": ("每日依从性（%）", "Adherence per day (%)"),
    "none": ("这段时间没有已结束的提醒剂量。", "No reminded dose is over in this period."),
    "explained": ("依从性 = 已服用 ÷（已服用 + 跳过 + 漏服）；停机或退订期间未发出的提醒不计入。",
                  "Adherence = taken ÷ (taken + skipped + missed); doses not reminded (downtime, STOP) are left out."),
    "bad_days": ("days 须为 1 到 {max} 之间的整数。", "days must be a whole number from 1 to {max}."),
    "json": ("JSON", "JSON"),
}


def _t(ctx: Ctx, key: str, **values: Any) -> str:
    zh, en = STRINGS[key]
    text = en if ctx.locale == "en" else zh
    return text.format(**values) if values else text


def _days(ctx: Ctx) -> int:
    raw = ctx.request.query_params.get("days")
    if raw is None:
        return ctx.carebot.config.reminders.adherence_days
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_DAYS:
        raise Refused(_t(ctx, "bad_days", max=MAX_DAYS), status=400)
    return int(raw)


def _percent(value: int | None) -> str:
    return "—" if value is None else f"{value}%"


def charts(ctx: Ctx, result: Adherence) -> list[Any]:
    plans = [Bar(result.medicines.get(p) or p, t.percent, _percent(t.percent)) for p, t in result.plans.items()]
    days = [Bar(d, t.percent, _percent(t.percent)) for d, t in sorted(result.days.items())]
    return [bar_chart(_t(ctx, "chart_plans"), plans, high=100.0), bar_chart(_t(ctx, "chart_days"), days, high=100.0)]


def adherence_routes(web: Web) -> list[Route]:
    async def page(ctx: Ctx) -> Response:
        conversation_id = ctx.request.path_params["conversation_id"]
        fmt = ctx.request.query_params.get("format", "html")
        days = _days(ctx)
        found = await ctx.carebot.store.read(lambda c: views.patient(c, conversation_id))
        if found is None:
            raise Refused(ctx.t("no_such_patient"), status=404)
        if ctx.me.role not in SEES_ALL and not any(HandoffService.can_view(ctx.me, t) for t in found.tickets):
            await ctx.audit("denied", conversation_id, {"page": "adherence"})
            raise Refused(ctx.t("other_department"))
        now = ctx.now
        result = await ctx.carebot.store.read(lambda c: adherence(c, conversation_id, now, days))
        await ctx.audit("view_adherence", conversation_id, {"days": days, "format": "json" if fmt == "json" else "html"})
        if fmt == "json":
            return JSONResponse({"conversation_id": conversation_id, "period_days": days, **result.to_dict()},
                                headers=HEADERS)
        rows = [{"medicine": result.medicines.get(p) or p, **t.to_dict()} for p, t in result.plans.items()]
        return web.render(ctx, "adherence.html", conversation_id=conversation_id, days=days, result=result, rows=rows,
                          total=result.total.to_dict(), charts=charts(ctx, result), a=lambda k, **v: _t(ctx, k, **v),
                          percent=_percent)

    return [Route("/adherence/{conversation_id:path}", web.page(page))]
