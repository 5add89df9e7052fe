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


class CareSettings(_M):
    consent: ConsentSettings = ConsentSettings()
    pricing: Pricing = Pricing()
    quota: Quota = Quota()
    reply_time: ReplyTime = ReplyTime()
    policy: Policy = Policy()
    proactive: Proactive = Proactive()


def load_care(content_dir: Path) -> CareSettings:
    return load_model(Path(content_dir) / "care.yml", CareSettings)
