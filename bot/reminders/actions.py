"""The `reminders.*` actions the reminder flows call (flows/reminders.yml).

Each reads or writes the reminders' records and gives the flow slots and messages by content key
(`reminder.*` in content/messages/<locale>/reminders.yml). Button payloads carry ids:
`dose:taken:<dose>`, `dose:snooze:<dose>`, `dose:skip:<dose>`, `medplan:stop:<plan>`,
`medprn:<plan>`, `medrefill:<plan>`; a `button: dose` trigger answers every `dose:…`.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import ValidationError

from bot.actions.base import ActionContext, ActionMessage, ActionResult
from bot.actions.registry import ActionRegistry
from bot.flow.content import Content
from bot.reminders.adherence import adherence
from bot.reminders.escalation import accept_caregiver, invite_caregiver, unlink_caregivers
from bot.reminders.parse import read_schedule
from bot.reminders.schedule import Schedule
from bot.reminders.service import Plan, Reminders


def describe(schedule: Schedule, slots: dict[str, str]) -> dict[str, Any]:
    """A schedule as message variables; the catalogue words it per locale (`reminder.schedule`)."""
    def clock(name: str) -> str:
        return name if ":" in name else slots.get(name, name)

    return {"times": sorted({clock(t) for t in schedule.times}), "every_hours": schedule.every_hours,
            "every_days": schedule.every_days, "weekdays": list(schedule.weekdays), "prn": schedule.prn,
            "cycle_on": schedule.cycle.on_days if schedule.cycle else None,
            "cycle_off": schedule.cycle.off_days if schedule.cycle else None,
            "taper": [{"days": s.days, "times": [clock(t) for t in s.times], "dose": s.dose} for s in schedule.taper],
            "start": schedule.start.isoformat(), "end": schedule.end.isoformat() if schedule.end else ""}


def local(at: datetime | None, tz: str) -> str:
    return at.astimezone(ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M") if at else ""


def _id(value: Any, prefix: str) -> str:
    """`dose:taken:42` → '42' for prefix 'dose:taken'; '' when it does not fit."""
    text = str(value or "")
    return text[len(prefix) + 1:] if text.startswith(prefix + ":") else ""


def register_reminder_actions(registry: ActionRegistry, reminders: Reminders, content: Content) -> None:
    settings = reminders.settings
    slots = settings.slot_times()

    def label(key: str, locale: str) -> str:
        return content.render(key, content.normalize_locale(locale), {})

    def said(schedule: Schedule, locale: str) -> dict[str, Any]:
        """The schedule's variables and its wording in the patient's language (`schedule`)."""
        values = describe(schedule, slots)
        return {**values, "schedule": content.render("reminder.schedule", content.normalize_locale(locale), values)}

    def zone(ctx: ActionContext) -> str:
        return str(ctx.slots.get("timezone") or reminders.default_timezone)

    async def read(ctx: ActionContext) -> ActionResult:
        """The typed schedule → a Schedule from today (or tomorrow, if said), and its description for
        the patient to confirm; nothing readable → `med_schedule_ok: false` and the flow asks again."""
        text = str(ctx.args.get("text") or ctx.latest_text or "")
        reading = read_schedule(text, ctx.locale)
        today = ctx.now.astimezone(ZoneInfo(zone(ctx))).date()
        fields = reading.schedule_fields(today)
        unread = {"med_schedule_ok": False, "med_schedule": None, "med_schedule_ambiguous": False}
        if fields is None:
            return ActionResult(slots=unread)
        try:
            schedule = Schedule(**{"start": today, **fields})  # type: ignore[arg-type]
        except ValidationError:
            return ActionResult(slots=unread)
        return ActionResult(slots={"med_schedule_ok": True, "med_schedule": schedule.model_dump(mode="json"),
                                   "med_schedule_text": said(schedule, ctx.locale)["schedule"],
                                   "med_schedule_ambiguous": reading.ambiguous,
                                   "med_schedule_from": schedule.start.isoformat() if schedule.start > today else ""})

    async def create(ctx: ActionContext) -> ActionResult:
        data = ctx.slots.get("med_schedule")
        if not data:
            return ActionResult(ok=False, error="no schedule to create")
        schedule = Schedule.model_validate(data)
        pills = ctx.args.get("pills") or ctx.slots.get("med_pills")
        try:
            pills_left = int(float(pills)) if pills not in (None, "", "None") else None
        except (TypeError, ValueError):
            pills_left = None
        plan = await reminders.create_plan(
            ctx.conversation_id, schedule, kind=str(ctx.args.get("kind") or ""), org=ctx.address.org,
            medicine=str(ctx.args.get("medicine") or ctx.slots.get("med_name") or ""), tz=zone(ctx),
            dose=str(ctx.args.get("dose") or ctx.slots.get("med_dose") or ""),
            pills_left=pills_left)
        when = local(plan.next_due_at, plan.timezone)
        return ActionResult(slots={"plan_id": plan.id, "med_next": when},
                            messages=[ActionMessage(key="reminder.set", vars={
                                **said(plan.schedule, ctx.locale), "medicine": plan.medicine, "dose": plan.dose, "next": when})])

    async def answer(ctx: ActionContext) -> ActionResult:
        value = str(ctx.args.get("value") or "")
        what, _, dose = value.partition(":")[2].partition(":")
        if what not in ("taken", "snooze", "skip") or not dose.isdigit():
            return ActionResult(slots={"dose_outcome": "unknown"}, messages=[ActionMessage(key="reminder.unknown_dose")])
        outcome, plan, row = await reminders.answer(ctx.conversation_id, int(dose), what, ctx.now)
        if outcome == "unknown" or plan is None:
            return ActionResult(slots={"dose_outcome": "unknown"}, messages=[ActionMessage(key="reminder.unknown_dose")])
        values = {"medicine": plan.medicine, "time": local(row.scheduled_at, plan.timezone)[-5:],
                  "minutes": reminders.timing(plan).snooze // 60, "state": outcome.partition(":")[2]}
        if outcome.startswith("already:"):
            messages = [ActionMessage(key="reminder.already", vars=values)]
        elif outcome == "taken":
            messages = [ActionMessage(key="reminder.taken_late" if row.late else "reminder.taken", vars=values)]
            days = await reminders.refill_due(plan)
            if days is not None:
                messages.append(ActionMessage(key="reminder.refill_warning", vars={
                    **values, "days": days, "pills": plan.pills_left}))
        else:
            messages = [ActionMessage(key=f"reminder.{outcome}", vars=values)]
        return ActionResult(slots={"dose_outcome": outcome, "dose_id": int(dose)}, messages=messages)

    async def skip_reason(ctx: ActionContext) -> ActionResult:
        dose = int(ctx.args.get("dose") or ctx.slots.get("dose_id") or 0)
        reason = str(ctx.args.get("reason") or "other")
        await reminders.skip_reason(ctx.conversation_id, dose, reason)
        return ActionResult()

    async def list_plans(ctx: ActionContext) -> ActionResult:
        mode = str(ctx.args.get("mode") or "list")
        plans = await reminders.plans(ctx.conversation_id)
        if mode == "prn":
            plans = [p for p in plans if p.schedule.prn]
        elif mode == "refill":
            plans = [p for p in plans if not p.schedule.prn]
        if not plans:
            return ActionResult(slots={"plan_count": 0}, messages=[ActionMessage(key=f"reminder.none_{mode}")])
        items = [{"medicine": p.medicine, "next": local(p.next_due_at, p.timezone), "pills": p.pills_left,
                  **said(p.schedule, ctx.locale)} for p in plans]
        prefix = {"stop": "medplan:stop", "prn": "medprn", "refill": "medrefill"}.get(mode)
        buttons = [{"title": p.medicine or str(i + 1), "payload": f"{prefix}:{p.id}"}
                   for i, p in enumerate(plans)] if prefix else []
        return ActionResult(slots={"plan_count": len(plans), "only_plan": plans[0].id if len(plans) == 1 else ""},
                            messages=[ActionMessage(key=f"reminder.list_{mode}", vars={"plans": items},
                                                    buttons=buttons)])

    async def stop(ctx: ActionContext) -> ActionResult:
        plan_id = _id(ctx.args.get("value"), "medplan:stop") or str(ctx.args.get("plan") or "")
        plan = await reminders.plan(plan_id)
        done = plan is not None and await reminders.stop_plan(plan_id, "patient", ctx.conversation_id)
        key = "reminder.stopped" if done else "reminder.not_stopped"
        return ActionResult(messages=[ActionMessage(key=key, vars={"medicine": plan.medicine if plan else ""})])

    async def report(ctx: ActionContext) -> ActionResult:
        """The patient's own adherence, per plan, over the configured days."""
        days = settings.adherence_days
        result = await ctx.store.read(lambda c: adherence(c, ctx.conversation_id, ctx.now, days))
        plans = [{"medicine": result.medicines.get(p, ""), **t.to_dict()} for p, t in result.plans.items()]
        return ActionResult(slots={"adherence_percent": result.total.percent}, messages=[ActionMessage(
            key="reminder.adherence", vars={"days": days, "plans": plans, "total": result.total.to_dict()})])

    async def prn(ctx: ActionContext) -> ActionResult:
        plan_id = _id(ctx.args.get("value"), "medprn") or str(ctx.args.get("plan") or "")
        plan = await reminders.plan(plan_id)
        if plan is None or plan.conversation_id != ctx.conversation_id or not plan.schedule.prn:
            return ActionResult(messages=[ActionMessage(key="reminder.none_prn")])
        await reminders.log_prn(plan, ctx.now)
        fresh = await reminders.plan(plan.id)
        messages = [ActionMessage(key="reminder.prn_logged", vars={
            "medicine": plan.medicine, "time": local(ctx.now, plan.timezone)[-5:], "pills": fresh.pills_left if fresh else None})]
        return ActionResult(messages=messages)

    async def refill(ctx: ActionContext) -> ActionResult:
        plan_id = _id(ctx.args.get("plan"), "medrefill") or str(ctx.args.get("plan") or "")
        try:
            pills = int(float(ctx.args.get("count") or 0))
        except (TypeError, ValueError):
            pills = 0
        plan = await reminders.plan(plan_id)
        ok = plan is not None and pills >= 0 and await reminders.refill(plan_id, pills, ctx.conversation_id)
        return ActionResult(messages=[ActionMessage(key="reminder.refilled" if ok else "reminder.not_stopped", vars={
            "medicine": plan.medicine if plan else "", "pills": pills})])

    async def caregiver_invite(ctx: ActionContext) -> ActionResult:
        code = await invite_caregiver(reminders, ctx.conversation_id, ctx.address.org, ctx.now)
        return ActionResult(messages=[ActionMessage(key="reminder.caregiver_code", vars={
            "code": code, "hours": int(timedelta(seconds=_ttl(settings.caregiver_code_ttl)).total_seconds() // 3600)})])

    async def caregiver_accept(ctx: ActionContext) -> ActionResult:
        patient = await accept_caregiver(reminders, ctx.conversation_id, str(ctx.args.get("code") or ""), ctx.now)
        return ActionResult(slots={"caregiver_linked": patient is not None}, messages=[ActionMessage(
            key="reminder.caregiver_linked" if patient else "reminder.caregiver_bad_code")])

    async def caregiver_unlink(ctx: ActionContext) -> ActionResult:
        n = await unlink_caregivers(reminders, ctx.conversation_id, ctx.now)
        return ActionResult(messages=[ActionMessage(key="reminder.caregiver_unlinked", vars={"links": n})])

    for name, fn in (("reminders.read_schedule", read), ("reminders.create", create),
                     ("reminders.answer", answer),
                     ("reminders.skip_reason", skip_reason), ("reminders.list", list_plans),
                     ("reminders.stop", stop), ("reminders.adherence", report), ("reminders.prn", prn),
                     ("reminders.refill", refill), ("reminders.caregiver_invite", caregiver_invite),
                     ("reminders.caregiver_accept", caregiver_accept),
                     ("reminders.caregiver_unlink", caregiver_unlink)):
        if name not in registry.names():
            registry.register(name, fn)


def _ttl(text: str) -> int:
    from bot.flow.compiler import parse_duration

    return parse_duration(text)


__all__ = ["Plan", "describe", "register_reminder_actions"]
