"""The console's pages, all under /console (see docs/console.md):

    GET  /console/login · POST /console/login · POST /console/logout · GET /console/lang/{zh-CN|en}
    GET  /console/inbox                  tickets, filters: department, priority, sla, status, mine, waiting
    GET  /console/inbox/rows             the rows alone (the page refetches them on live events)
    GET  /console/events                 Server-Sent Events: the `console` feed (ids only)
    GET  /console/tickets/{id}           the thread (audited) · GET …/messages (the messages alone)
    GET  /console/tickets/{id}/media?ref=…   a patient's photo or file on that ticket (audited)
    POST /console/tickets/{id}/{take|reply|note|transfer|escalate|close}
    GET  /console/patients/{conversation id}   consent, tags, history (audited)
    GET  /console/reviews · POST /console/reviews/{id}           quality review queue
    GET  /console/complaints · POST /console/complaints/{id}/handled
    GET  /console/stats                  first response, SLA, NPS, CSAT, complaints per department; the care
                                         funnel and daily trends · GET /console/stats/export.csv?what=funnel|trends
    GET  /console/audit                  the audit log (admins) · POST /console/admin/reload (flows, content)
    POST /console/pages/{id}/{seen|ack}  emergency alerts (adapters/console/paging.py)
    GET  /console/groups · POST /console/groups/cases/{id}/{decision}  groups (adapters/console/moderation.py)
    GET  /console/adherence/{conversation id}  medication adherence, HTML or ?format=json (adherence.py)
"""

from __future__ import annotations

import asyncio
import json
import math
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, AsyncIterator

from starlette.requests import Request
from starlette.responses import FileResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Mount, Route

from adapters.console import views
from adapters.console.adherence import adherence_routes
from adapters.console.charts import Bar, Point, bar_chart, line_chart
from adapters.console.i18n import LOCALES
from adapters.console.moderation import moderation_routes
from adapters.console.paging import paging_routes, paging_values
from adapters.console.session import ABSOLUTE
from adapters.console.summary import clinical_summary
from adapters.console.web import LANG_COOKIE, PREFIX, Ctx, Refused, Web
from bot.handoff.service import HandoffService
from bot.handoff.staff import MANAGERS, SEES_ALL, HandoffError
from bot.handoff.funnel import STEPS, CareReport, care_report, funnel_csv, trends_csv
from bot.handoff.stats import stats_for
from bot.inputs import bounded_int

if TYPE_CHECKING:
    from adapters.console.adapter import ConsoleAdapter

STATIC = Path(__file__).parent / "static"
STATIC_FILES = {"console.css": "text/css; charset=utf-8", "console.js": "text/javascript; charset=utf-8"}
ACTIONS = ("take", "reply", "note", "transfer", "escalate", "close")
SSE_LIFETIME = 600.0  # the browser reconnects (and the session is checked again) after this
SSE_PING = 15.0


AT_REPLY_BOX = frozenset({"take", "reply", "note"})  # actions after which the page opens at the reply box

def _safe_next(target: str) -> str:
    """Only somewhere in the console: never an open redirect."""
    if target.startswith(PREFIX) and not target.startswith("//") and "\\" not in target and "\n" not in target:
        return target
    return f"{PREFIX}/inbox"


def known_id(ctx: Ctx, name: str) -> int:
    """A numeric id from the path; one no row can have (above 2^31) is answered 404, not 500."""
    value = bounded_int(ctx.request.path_params[name])
    if value is None:
        raise Refused(ctx.t("no_such_item"), 404)
    return value


def console_routes(adapter: ConsoleAdapter) -> list[Any]:
    web = Web(adapter.settings)
    adapter.web = web

    # -- signing in and out -------------------------------------------------------------------------

    async def login_page(ctx: Ctx) -> Response:
        target = _safe_next(ctx.request.query_params.get("next", ""))
        if ctx.staff is not None:
            return RedirectResponse(target, 303)
        return web.render(ctx, "login.html", next=target, error="", staff_id="")

    async def login(ctx: Ctx) -> Response:
        form = ctx.values["form"]
        staff_id, password = str(form.get("staff_id", "")).strip(), str(form.get("password", ""))
        target = _safe_next(str(form.get("next", "")))
        ip = ctx.request.client.host if ctx.request.client else ""
        logins = ctx.carebot.handoff.logins
        account = staff_id.lower()[:64]  # the throttle's key: this client, this account
        wait = await logins.wait(ip[:64], account, ctx.now)
        if wait > 0:
            await ctx.audit("login_limited", staff_id, {"ip": ip})
            response = web.render(ctx, "login.html", code=429, next=target, staff_id=staff_id,
                                  error=ctx.t("too_many_attempts", minutes=math.ceil(wait / 60)))
            response.headers["Retry-After"] = str(math.ceil(wait))
            return response
        member = await ctx.carebot.handoff.authenticate(staff_id, password)
        if member is None:
            await logins.failed(ip[:64], account, ctx.now)
            await ctx.audit("login_failed", staff_id, {"ip": ip})
            return web.render(ctx, "login.html", code=401, next=target, staff_id=staff_id,
                              error=ctx.t("bad_login"))
        await logins.succeeded(ip[:64], account)
        # a new session (and nonce) at login: a cookie planted before cannot ride along
        ctx.session = web.signer.new(ctx.now.timestamp(), member.id)
        ctx.cookie = web.signer.dump(ctx.session)
        ctx.staff = member
        await ctx.audit("login", member.id, {"ip": ip})
        return RedirectResponse(target, 303)

    async def logout(ctx: Ctx) -> Response:
        await ctx.carebot.handoff.logins.revoke(ctx.session.nonce, ctx.now + timedelta(seconds=ABSOLUTE))
        await ctx.audit("logout", ctx.me.id)
        ctx.session = web.signer.new(ctx.now.timestamp())
        ctx.cookie = web.signer.dump(ctx.session)
        return RedirectResponse(f"{PREFIX}/login", 303)

    async def language(ctx: Ctx) -> Response:
        code = ctx.request.path_params["code"]
        response = RedirectResponse(_safe_next(ctx.request.query_params.get("next", "")), 303)
        if code in LOCALES:
            response.set_cookie(LANG_COOKIE, code, max_age=365 * 86400, path=PREFIX, samesite="lax",
                                secure=ctx.request.url.scheme == "https")
        return response

    # -- the inbox and its live feed ------------------------------------------------------------------

    def filters(ctx: Ctx) -> dict[str, Any]:
        q = ctx.request.query_params
        return {"department": q.get("department", ""), "priority": q.get("priority", ""),
                "sla": q.get("sla", "") if q.get("sla", "") in views.SLA_STATES else "",
                "status": q.get("status", "open") if q.get("status") in ("open", "closed", "all") else "open",
                "mine": q.get("mine", "") == "1", "waiting": q.get("waiting", "") == "1"}

    async def inbox_values(ctx: Ctx) -> dict[str, Any]:
        f = filters(ctx)
        rows = await ctx.carebot.store.read(lambda c: views.inbox(c, ctx.me, ctx.now, **f))
        names = {m.id: m.signature for m in await ctx.carebot.handoff.all_staff()}
        return {"rows": rows, "f": f, "names": names, **await paging_values(ctx)}

    async def inbox(ctx: Ctx) -> Response:
        return web.render(ctx, "inbox.html", **await inbox_values(ctx))

    async def inbox_rows(ctx: Ctx) -> Response:
        return web.render(ctx, "_rows.html", **await inbox_values(ctx))

    def sees_event(ctx: Ctx, event: dict[str, Any]) -> bool:
        me = ctx.me
        if me.role in MANAGERS:
            return True
        if event.get("type") == "complaint":
            return me.role == "customer_service"
        concerned = (event.get("department"), event.get("also") or None)
        return me.role == "customer_service" or any(d in me.departments for d in concerned) or event.get("staff") == me.id

    async def events(ctx: Ctx) -> Response:
        feed = ctx.carebot.coord.subscribe("console")
        loop = asyncio.get_running_loop()

        async def stream() -> AsyncIterator[str]:
            pending: asyncio.Future[str] = asyncio.ensure_future(feed.__anext__())
            await asyncio.sleep(0)  # let the subscription register before we say we are connected
            yield "retry: 3000\n: connected\n\n"
            ends = loop.time() + SSE_LIFETIME
            stopping = asyncio.ensure_future(ctx.carebot.runtime.stopping.wait())
            try:
                while loop.time() < ends:
                    done, _ = await asyncio.wait({pending, stopping}, timeout=min(SSE_PING, max(0.0, ends - loop.time())),
                                                 return_when=asyncio.FIRST_COMPLETED)
                    if stopping in done:  # the server is stopping: the browser reconnects (to another worker)
                        return
                    if not done:
                        yield ": ping\n\n"
                        continue
                    message = pending.result()
                    pending = asyncio.ensure_future(feed.__anext__())
                    try:
                        event = json.loads(message)
                    except ValueError:
                        continue
                    if isinstance(event, dict) and sees_event(ctx, event):
                        yield f"data: {json.dumps(event)}\n\n"
            finally:
                stopping.cancel()
                pending.cancel()
                try:
                    await pending
                except (asyncio.CancelledError, StopAsyncIteration):
                    pass
                await feed.aclose()

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    # -- a thread ----------------------------------------------------------------------------------

    async def viewable(ctx: Ctx) -> Any:
        """The ticket of the path, when this staff member may see it; a denial is audited."""
        ticket_id = ctx.request.path_params["ticket_id"]
        ticket = await ctx.carebot.store.read(lambda c: views.ticket(c, ticket_id))
        if ticket is None:
            raise Refused(ctx.t("no_such_ticket"), status=404)
        if not HandoffService.can_view(ctx.me, ticket) and not await _paged_to(ctx, ticket):
            await ctx.audit("denied", ticket.id, {"page": "ticket", "department": ticket.department})
            raise Refused(ctx.t("other_department"))
        return ticket

    async def _paged_to(ctx: Ctx, ticket: Any) -> bool:
        """An emergency paged to this person (or to whoever is on call now) may be read before it is
        acknowledged: nobody should have to accept an emergency blind. Only then: once a colleague has
        it, or it is closed, it is theirs and their department's to read (a dermatologist paged because
        nobody else answered does not keep the chest-pain thread for ever)."""
        paging = ctx.carebot.handoff.paging
        if paging is None or ticket.reason != "red_flag" or ticket.status not in views.OPEN:
            return False
        if ticket.assignee and ticket.assignee != ctx.me.id:
            return False
        return paging.may_acknowledge(ctx.me, ticket, *await paging.page_facts(ticket.id))

    async def thread_values(ctx: Ctx, ticket: Any, part: str) -> dict[str, Any]:
        thread = await ctx.carebot.store.read(lambda c: views.thread(c, ticket, ctx.now))
        await ctx.audit("view_ticket", ticket.id, {"conversation": ticket.conversation_id, "part": part})
        staff = await ctx.carebot.handoff.all_staff()
        locale = thread.conversation.locale if thread.conversation is not None else ""
        canned = {code: texts.get(locale) or texts.get(ctx.locale) or next(iter(texts.values()), "")
                  for code, texts in ctx.carebot.config.handoff.canned.items()}
        slots = thread.state.get("slots", {})
        # what the patient added to the ticket (never a command the relay answered itself, e.g. 主菜单)
        first = (await ctx.carebot.store.read(lambda c: views.first_words(c, [ticket.id]))).get(ticket.id, "")
        summary = clinical_summary(ticket, thread.summary, slots, ctx.carebot.config.care.consent.version,
                                   ctx.t, ctx.department, first_message=first)
        return {"th": thread, "names": {m.id: m.signature for m in staff}, "canned": canned, "summary": summary,
                "colleagues": [m for m in staff if m.id != ctx.me.id and m.role not in ("customer_service",)],
                "consent_current": ctx.carebot.config.care.consent.version,
                "can_act": ctx.me.role != "customer_service" and ticket.status in views.OPEN}

    async def ticket_page(ctx: Ctx) -> Response:
        ticket = await viewable(ctx)
        return web.render(ctx, "thread.html", **await thread_values(ctx, ticket, "page"))

    async def ticket_messages(ctx: Ctx) -> Response:
        ticket = await viewable(ctx)
        return web.render(ctx, "_messages.html", **await thread_values(ctx, ticket, "messages"))

    async def ticket_media(ctx: Ctx) -> Response:
        """A patient's photo or file on a ticket the staff member may see; every view is audited."""
        ticket = await viewable(ctx)
        ref = ctx.request.query_params.get("ref", "")
        adapter = ctx.carebot.adapters.get(ref.partition(":")[0]) if ":" in ref else None
        found = await adapter.open_media(ref, ticket.conversation_id) if adapter is not None else None
        if found is None:
            raise Refused(ctx.t("media_missing"), status=404)
        await ctx.audit("view_media", ticket.id, {"conversation": ticket.conversation_id, "ref": ref})
        inline = found.mime.startswith("image/")
        return FileResponse(found.path, media_type=found.mime, headers={
            "Content-Disposition": "inline" if inline else "attachment", "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'; sandbox", "Cache-Control": "private, no-store"})

    async def ticket_action(ctx: Ctx) -> Response:
        action = ctx.request.path_params["action"]
        if action not in ACTIONS:
            raise Refused(ctx.t("no_such_action"), status=404)
        if ctx.me.role == "customer_service":
            raise Refused(ctx.t("read_only"))
        ticket = await viewable(ctx)
        form, service, me = ctx.values["form"], ctx.carebot.handoff, ctx.me
        text = str(form.get("text", ""))
        back = f"{PREFIX}/tickets/{ticket.id}"
        try:
            if action == "take":
                if not await service.take(ticket.id, me):
                    fresh = await ctx.carebot.store.read(lambda c: views.ticket(c, ticket.id))
                    holder = await service.staff(fresh.assignee) if fresh.assignee else None
                    who = holder.signature if holder else (fresh.assignee or "—")
                    return web.redirect(ctx, back, ("error", ctx.t("taken_by_other", who=who)))
                message = ctx.t("taken")
            elif action == "reply":
                canned = "" if text.strip() else str(form.get("canned", ""))  # typed text wins
                flags = await service.reply(ticket.id, me, text, canned=canned)
                message = ctx.t("reply_sent") + (" " + ctx.t("reply_flagged", flags=", ".join(flags)) if flags else "")
            elif action == "note":
                if not text.strip():
                    raise HandoffError("empty_note")
                await service.note(ticket.id, me, text)
                message = ctx.t("note_saved")
            elif action == "transfer":
                await service.transfer(ticket.id, me, department=str(form.get("department", "")),
                                       to_staff=str(form.get("to_staff", "")), reason=str(form.get("reason", "")))
                message = ctx.t("transferred")
            elif action == "escalate":
                await service.escalate(ticket.id, me, str(form.get("reason", "")) or "staff")
                message = ctx.t("escalated")
            else:
                await service.close(ticket.id, me, str(form.get("reason", "")) or "resolved")
                message = ctx.t("closed")
        except HandoffError as exc:
            return web.redirect(ctx, back + ("#cb-actions" if action in AT_REPLY_BOX else ""),
                                ("error", exc.text(ctx.locale)))
        # after taking, replying or a note: the newest messages and the reply box (on a long transcript
        # the top of the page is screens away)
        return web.redirect(ctx, back + ("#cb-actions" if action in AT_REPLY_BOX else ""), ("ok", message))

    # -- a patient -----------------------------------------------------------------------------------

    async def patient_page(ctx: Ctx) -> Response:
        conversation_id = ctx.request.path_params["conversation_id"]
        found = await ctx.carebot.store.read(lambda c: views.patient(c, conversation_id))
        if found is None:
            raise Refused(ctx.t("no_such_patient"), status=404)
        if not any(HandoffService.can_view(ctx.me, t) for t in found.tickets):
            await ctx.audit("denied", conversation_id, {"page": "patient"})
            raise Refused(ctx.t("other_department"))
        await ctx.audit("view_patient", conversation_id)
        return web.render(ctx, "patient.html", p=found, consent_current=ctx.carebot.config.care.consent.version)

    # -- quality review and complaints -----------------------------------------------------------------

    async def reviews(ctx: Ctx) -> Response:
        status = ctx.request.query_params.get("status", "open")
        status = status if status in ("open", "panel", "reviewed", "closed") else "open"
        rows = await ctx.carebot.store.read(lambda c: views.reviews(c, status))
        names = {m.id: m.signature for m in await ctx.carebot.handoff.all_staff()}
        return web.render(ctx, "reviews.html", rows=rows, status=status, names=names)

    async def review(ctx: Ctx) -> Response:
        form, review_id = ctx.values["form"], known_id(ctx, "review_id")
        status = str(form.get("status", "open"))
        back = f"{PREFIX}/reviews?status={status if status in ('open', 'panel') else 'open'}"
        try:
            if form.get("panel"):
                await ctx.carebot.handoff.panel_verdict(review_id, ctx.me, str(form.get("verdict", "")),
                                                        str(form.get("note", "")))
            else:
                await ctx.carebot.handoff.review(review_id, ctx.me, str(form.get("verdict", "")),
                                                 str(form.get("note", "")), refer_to_panel=bool(form.get("refer")))
        except HandoffError as exc:
            return web.redirect(ctx, back, ("error", exc.text(ctx.locale)))
        return web.redirect(ctx, back, ("ok", ctx.t("review_saved")))

    async def complaints(ctx: Ctx) -> Response:
        status = "handled" if ctx.request.query_params.get("status") == "handled" else "open"
        rows = await ctx.carebot.store.read(lambda c: views.complaints(c, status))
        await ctx.audit("view_complaints", status, {"count": len(rows)})  # the patients' own words
        return web.render(ctx, "complaints.html", rows=rows, status=status)

    async def complaint_handled(ctx: Ctx) -> Response:
        complaint_id = known_id(ctx, "complaint_id")
        member = await ctx.carebot.handoff.staff(ctx.me.id)
        assert member is not None
        done = await ctx.carebot.handoff.handle_complaint(complaint_id, member)
        return web.redirect(ctx, f"{PREFIX}/complaints", ("ok", ctx.t("complaint_done")) if done else None)

    # -- figures and the audit log -------------------------------------------------------------------

    async def stats(ctx: Ctx) -> Response:
        days = ctx.request.query_params.get("days", "30")
        days_n = int(days) if days in ("7", "30", "90") else 30
        now = ctx.now
        report = await stats_for(ctx.carebot.store, ctx.carebot.config.handoff.satisfaction,
                                 now - timedelta(days=days_n), now + timedelta(seconds=1), now)
        rows = [*report.departments, report.overall]

        def label(d: Any) -> str:
            return ctx.t("all_departments") if d is report.overall else ctx.department(d.department)

        def minutes(s: float | None) -> str:
            if s is None:
                return "—"
            return f"{s:.0f} s" if s < 60 else f"{s / 60:.0f} {ctx.t('min')}"

        def pct(x: float | None) -> str:
            return "—" if x is None else f"{100 * x:.0f}%"

        measures = [
            ("chart_first_response", [Bar(label(d), None if d.first_response_median_s is None
                                          else d.first_response_median_s / 60, minutes(d.first_response_median_s))
                                      for d in rows], 0.0, None),
            ("chart_sla", [Bar(label(d), None if d.sla_attainment is None else 100 * d.sla_attainment,
                               pct(d.sla_attainment)) for d in rows], 0.0, 100.0),
            ("chart_nps", [Bar(label(d), d.nps, "—" if d.nps is None else f"{d.nps:+.0f}") for d in rows],
             -100.0, 100.0),
            ("chart_csat", [Bar(label(d), None if d.csat_share is None else 100 * d.csat_share, pct(d.csat_share))
                            for d in rows], 0.0, 100.0),
            ("chart_complaints", [Bar(label(d), d.complaints, str(d.complaints)) for d in rows], 0.0, None),
        ]
        charts = [(ctx.t(key), bar_chart(ctx.t(key), bars, low=low, high=high)) for key, bars, low, high in measures]
        care = await _care(ctx, days_n)
        funnel_chart = bar_chart(ctx.t("funnel"), [Bar(ctx.t(f"step_{s}"), care.overall.funnel[i], str(care.overall.funnel[i]))
                                                   for i, s in enumerate(STEPS)], label_w=200)
        return web.render(ctx, "stats.html", report=report, rows=rows, days=days_n, charts=charts,
                          label=label, minutes=minutes, pct=pct, care=care, steps=STEPS, funnel_chart=funnel_chart,
                          trends=_trend_charts(ctx, care))

    async def _care(ctx: Ctx, days_n: int) -> CareReport:
        now = ctx.now
        start = (now - timedelta(days=days_n - 1)).replace(hour=0, minute=0, second=0, microsecond=0)
        sat = ctx.carebot.config.handoff.satisfaction
        return await ctx.carebot.store.read(lambda c: care_report(
            c, start, now + timedelta(seconds=1), now, now.tzinfo or ctx.carebot.clock.tz,
            promoter_threshold=sat.promoter_threshold, detractor_max=sat.detractor_max))

    def _trend_charts(ctx: Ctx, care: CareReport) -> list[tuple[str, Any]]:
        def pts(get: Any, fmt: str) -> list[Point]:
            out = []
            for d in care.days:
                v = get(d)
                out.append(Point(d.day.strftime("%m-%d"), v, "—" if v is None else fmt.format(v)))
            return out

        minutes_of = (lambda s: None if s is None else s / 60)  # noqa: E731
        specs = [("trend_tickets", pts(lambda d: d.tickets, "{:.0f}"), 0.0, None),
                 ("trend_first_response", pts(lambda d: minutes_of(d.first_response_median_s), "{:.1f} min"), 0.0, None),
                 ("trend_sla", pts(lambda d: None if d.sla_attainment is None else 100 * d.sla_attainment, "{:.0f}%"),
                  0.0, 100.0),
                 ("trend_nps", pts(lambda d: d.nps, "{:+.0f}"), -100.0, 100.0),
                 ("trend_emergencies", pts(lambda d: d.emergencies, "{:.0f}"), 0.0, None),
                 ("trend_ack", pts(lambda d: minutes_of(d.ack_median_s), "{:.1f} min"), 0.0, None)]
        return [(ctx.t(k), line_chart(ctx.t(k), p, low=lo, high=hi)) for k, p, lo, hi in specs]

    async def stats_export(ctx: Ctx) -> Response:
        """The funnel or the trends as CSV (UTF-8 with a BOM, so a spreadsheet reads Chinese right)."""
        days = ctx.request.query_params.get("days", "30")
        days_n = int(days) if days in ("7", "30", "90") else 30
        what = "trends" if ctx.request.query_params.get("what") == "trends" else "funnel"
        care = await _care(ctx, days_n)
        body = funnel_csv(care) if what == "funnel" else trends_csv(care)
        name = f"carebot-{what}-{ctx.now:%Y%m%d}-{days_n}d.csv"
        return Response("\ufeff" + body, media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"})

    async def audit_log(ctx: Ctx) -> Response:
        q = ctx.request.query_params
        f = {"actor": q.get("actor", ""), "action": q.get("action", ""), "subject": q.get("subject", "")}
        before = bounded_int(q.get("before", ""), 0) or 0
        rows = await ctx.carebot.store.read(lambda c: views.audit(c, before=before, **f))
        return web.render(ctx, "audit.html", rows=rows, f=f)

    async def reload(ctx: Ctx) -> Response:
        """The admin's button: every worker re-reads flows and content (bot/reload.py)."""
        results = await ctx.carebot.reloads.everywhere(ctx.actor)
        await ctx.audit("reload", "flows", {"ok": [r.ok for r in results], "problems": sum(len(r.problems) for r in results)})
        if all(r.ok for r in results):
            done = ", ".join(f"{r.worker} ({r.flows})" for r in results)
            return web.redirect(ctx, f"{PREFIX}/audit", ("ok", ctx.t("reload_done", workers=done)))
        rows = await ctx.carebot.store.read(lambda c: views.audit(c, before=0, actor="", action="", subject=""))
        return web.render(ctx, "audit.html", code=422, rows=rows, f={"actor": "", "action": "", "subject": ""},
                          refused=[f"{r.worker}: {p}" for r in results for p in r.problems])

    async def index(ctx: Ctx) -> Response:
        return RedirectResponse(f"{PREFIX}/inbox", 303)

    async def static(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in STATIC_FILES:
            return Response(status_code=404)
        return FileResponse(STATIC / name, media_type=STATIC_FILES[name],
                            headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"})

    p = web.page
    return [Mount(PREFIX, routes=[
        Route("/", p(index)),
        Route("/login", p(login_page, login=False), methods=["GET"]),
        Route("/login", p(login, login=False), methods=["POST"]),
        Route("/logout", p(logout), methods=["POST"]),
        Route("/lang/{code}", p(language, login=False)),
        Route("/inbox", p(inbox)),
        Route("/inbox/rows", p(inbox_rows)),
        Route("/events", p(events)),
        Route("/tickets/{ticket_id}", p(ticket_page)),
        Route("/tickets/{ticket_id}/messages", p(ticket_messages)),
        Route("/tickets/{ticket_id}/media", p(ticket_media)),
        Route("/tickets/{ticket_id}/{action}", p(ticket_action), methods=["POST"]),
        Route("/patients/{conversation_id:path}", p(patient_page)),
        Route("/reviews", p(reviews, roles=MANAGERS)),
        Route("/reviews/{review_id:int}", p(review, roles=MANAGERS), methods=["POST"]),
        Route("/complaints", p(complaints, roles=SEES_ALL)),
        Route("/complaints/{complaint_id:int}/handled", p(complaint_handled, roles=SEES_ALL),
              methods=["POST"]),
        Route("/stats", p(stats)),
        Route("/stats/export.csv", p(stats_export)),
        Route("/audit", p(audit_log, roles=("admin",))),
        Route("/admin/reload", p(reload, roles=("admin",)), methods=["POST"]),
        Route("/static/{name}", static),
        *paging_routes(web),
        *moderation_routes(web),
        *adherence_routes(web),
    ])]

