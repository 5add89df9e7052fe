"""The clinical summary on a ticket page: what a doctor needs before the first reply, with labels in
the staff member's language (adapters/console/i18n.py). Only these fields are shown: the
conversation's other slots (prices, quotas, the flow's own bookkeeping) are the bot's, not clinical."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from bot.triage.model import EMERGENCY_LEVELS, LEVELS

PREGNANCY_SLOTS = ("pregnant", "pregnancy", "gestation_weeks")


@dataclass(frozen=True)
class Line:
    label: str
    value: str
    alert: bool = False  # shown marked: a red flag, an outdated consent


def clinical_summary(ticket: Any, summary: dict[str, Any], slots: dict[str, Any], consent_current: str,
                     t: Callable[..., str], department: Callable[[str], str], first_message: str = "") -> list[Line]:
    """`summary` is the ticket's (slots as they were at the hand-off); `slots` the conversation's now
    (consent may have changed since). `first_message`: the patient's first message on the ticket, the
    complaint when the hand-off carried none (a patient who asked for a person and then wrote)."""
    s = {**slots, **summary.get("slots", {})}
    words = summary.get("patient_words") or []
    said = " / ".join(str(w) for w in words)
    # an emergency is what raised it: never an earlier complaint left in the intake slots
    complaint = (said if getattr(ticket, "reason", "") == "red_flag" else "") or str(s.get("complaint") or "") or \
        said or (f"{first_message} ({t('first_message')})" if first_message else "")
    lines = [Line(t("sum_complaint"), complaint or t("not_given"))]
    if s.get("need"):
        lines.append(Line(t("sum_need"), _choice(t, "need", s["need"])))
    lines.append(Line(t("sum_since"), str(s.get("duration") or t("not_given"))))
    severity = s.get("severity")
    lines.append(Line(t("sum_severity"), f"{severity}/10" if severity not in (None, "") else t("not_given"),
                      alert=_number(severity) >= 8))
    age = s.get("age")
    who = [f"{age} {t('years')}" if age not in (None, "") else t("age_unknown"),
           _choice(t, "sex", s["sex"]) if s.get("sex") else t("sex_unknown")]
    if s.get("patient_is") and s["patient_is"] != "self":
        who.append(_choice(t, "who", s["patient_is"]))
    lines.append(Line(t("sum_age_sex"), " · ".join(who)))
    lines.append(Line(t("sum_pregnancy"), _pregnancy(t, s)))
    confidence = s.get("department_confidence")
    dept = department(ticket.department)
    if s.get("department_chosen_by") == "patient":
        dept += f" ({t('chosen_by_patient')})"
    elif confidence not in (None, ""):
        dept += f" ({t('confidence')} {round(100 * _number(confidence))}%)"
    lines.append(Line(t("sum_department"), dept))
    if s.get("seen_offline") is not None:
        seen = t("yes") if s.get("seen_offline") else t("no")
        if s.get("existing_diagnosis"):
            seen += f": {s['existing_diagnosis']}"
        lines.append(Line(t("sum_seen_offline"), seen))
    photos = len(s.get("more_photos") or []) + (1 if isinstance(s.get("report_photo"), dict) else 0)
    if photos:
        lines.append(Line(t("sum_photos"), str(photos)))
    version = str(s.get("consent_version") or "")
    if s.get("consent_ok") and version:
        outdated = version != consent_current
        lines.append(Line(t("sum_consent"), version + (f" — {t('consent_outdated', v=consent_current)}" if outdated else ""),
                          alert=outdated))
    else:
        lines.append(Line(t("sum_consent"), t("consent_missing"), alert=True))
    level = str(summary.get("triage_level") or "")
    rules = [str(r) for r in summary.get("rules") or [] if not str(r).startswith("not_now:")]
    signs = [str(w) for w in summary.get("signs") or [] if w]
    signs = [w for w in dict.fromkeys(signs) if not any(w != o and w in o for o in signs)]  # no repeats
    if level and level not in EMERGENCY_LEVELS and not rules and not signs:
        # an ordinary level is no red flag: say none was found, and the level beside it
        lines.append(Line(t("sum_red_flags"), f"{t('none_found')} · {t(f'level_{level}') if level in LEVELS else level}"))
    elif level or rules:
        text = t(f"level_{level}") if level in LEVELS else (level or "—")
        # the patient's words that raised it ("face is drooping" + "can't lift his arm"), not rule ids;
        # a ticket from before the words were kept shows its rule ids
        said = " + ".join(f"“{w}”" for w in signs) if signs else ", ".join(rules)
        lines.append(Line(t("sum_red_flags"), text + (f" · {said}" if said else ""),
                          alert=level in EMERGENCY_LEVELS or ticket.reason == "red_flag"))
    else:
        lines.append(Line(t("sum_red_flags"), t("none_found")))
    return lines


def _choice(t: Callable[..., str], field: str, value: Any) -> str:
    try:
        return t(f"{field}_{value}")
    except KeyError:
        return str(value)


def _number(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0


def _pregnancy(t: Callable[..., str], s: dict[str, Any]) -> str:
    for name in PREGNANCY_SLOTS:
        value = s.get(name)
        if value in (None, ""):
            continue
        if name == "gestation_weeks":
            return t("pregnant_weeks", n=value)
        return t("yes") if value is True or str(value).lower() in ("yes", "true") else t("no")
    if s.get("sex") == "male":
        return t("not_applicable")
    return t("not_asked")
