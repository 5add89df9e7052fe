"""Timer names and kinds: `kind:rest`, the kind being the part before the first `:`.

A flow names its timers (`checkin`, `med:{{ plan_id }}` — templated, so one conversation can hold
one per medication plan); the runtime routes a due timer by its kind (`bot/runtime/timers.py`). The
kinds below belong to the engine, the hand-off, the group policies and the reminders, so a flow may not
schedule or cancel them.
"""

from __future__ import annotations

WAIT = "wait"  # the engine's own: a `wait` step's timeout (`wait:<flow>:<label>`)
SLA = "sla"  # the hand-off's staff-side clocks (`sla:first:<ticket>` …)
PAGE = "page"  # the emergency paging ladder (`page:ladder:<ticket>`)
GROUP = "group"  # a group policy's clocks (bot/groups): `group:captcha`, `group:sop:<n>`, `group:cal:<n>`, `group:digest`
DOSE = "dose"  # medication reminders (`dose:<plan>`, `dose:<plan>:nag:<dose>:<n>` …, bot/reminders)
RESERVED = frozenset({WAIT, SLA, PAGE, GROUP, DOSE})


def kind_of(name: str) -> str:
    return name.split(":", 1)[0]
