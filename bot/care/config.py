"""`content/care.yml`: the numbers an operator tunes — consent version, prices, quotas, reply-time
promise, online-care policy, proactive-message limits. Validated with file:line errors."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from bot.timeofday import HHMM, TimeWindow
from bot.yamlsrc import load_model


class _M(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ConsentSettings(_M):
    version: str = "1"
    guardian_age: int = Field(14, ge=1, le=21)


class Limit(_M):
    kind: Literal["time_window", "message_count", "doctor_first_reply"] = "doctor_first_reply"
    value: str | int = "48h"


class Pricing(_M):
    currency: str = "CNY"
    tiers: dict[Literal["text", "phone", "video"], float] = {"text": 0, "phone": 0, "video": 0}
    limit: Limit = Limit()


class Quota(_M):
    free_per_month: int = Field(0, ge=0)


class ReplyTime(_M):
    promise_minutes: int = Field(120, ge=1)
    min_tickets: int = Field(20, ge=1)
    window_days: int = Field(14, ge=1)


class Policy(_M):
    first_visit_online_diagnosis: bool = False
    prescriptions_first_visit: bool = False


class QuietHours(TimeWindow):
    """No proactive message in these hours, on the deployment's clock (`Settings.timezone`)."""

    start: HHMM = "22:00"
    end: HHMM = "08:00"


class Proactive(_M):
    weekly_cap: int = Field(3, ge=0)
    quiet_hours: QuietHours | None = QuietHours()


class RegionNumbers(_M):
    ambulance: str = ""      # 120 in mainland China, 999 in the UK, 911 in the US/Canada, 112 in the EU
    police: str = ""
    mental_health: str = ""  # a crisis line, e.g. 12356 (全国心理援助热线), 988 (US), 116 123 (UK)
    poison_centre: str = ""


class Region(_M):
    """Where the deployment's patients are: emergency numbers go by region, not by language (an
    English speaker in Shanghai is told 120)."""

    name: str = ""
    numbers: RegionNumbers = RegionNumbers()

    def number_lists(self) -> dict[str, tuple[str, ...]]:
        """The lists triage rules name: `default` (the ambulance), `mental_health`, `poison`, `police`."""
        n = self.numbers
        return {"default": (n.ambulance,) if n.ambulance else (), "mental_health": (n.mental_health,) if n.mental_health else (),
                "poison": (n.poison_centre,) if n.poison_centre else (), "police": (n.police,) if n.police else ()}


class CareSettings(_M):
    region: Region = Region()
    consent: ConsentSettings = ConsentSettings()
    pricing: Pricing = Pricing()
    quota: Quota = Quota()
    reply_time: ReplyTime = ReplyTime()
    policy: Policy = Policy()
    proactive: Proactive = Proactive()


def load_care(content_dir: Path) -> CareSettings:
    return load_model(Path(content_dir) / "care.yml", CareSettings)
