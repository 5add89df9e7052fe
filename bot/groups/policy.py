"""Group policies (`content/groups/*.yml`) and pattern sets (`content/groups/patterns/*.yml`).

A policy says how one kind of patient group is run — which chats it covers, who moderates, the
welcome and its rules, the captcha, newcomer limits, locks, the blocklist, warnings, flood and raid
limits, night mode and the group's programme (SOP). A pattern set is a list of blocklist entries
(wildcards or regex), each with the messages it must catch and, optionally, ones it must leave
alone; `carebot validate` runs them all, so a pattern that stopped matching its own example is a
validation error, not a surprise in a group. Every problem names the file, line and field.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from bot.errors import ConfigError, ConfigProblem
from bot.flow.compiler import parse_duration
from bot.timeofday import DAY_NAMES, HHMM, Duration, TimeWindow, on_days
from bot.yamlsrc import Source, load_yaml

Action = Literal["delete", "warn", "mute", "ban", "report"]
ACTIONS = ("delete", "warn", "mute", "ban", "report")
LOCKS = ("links", "forwards", "contacts", "phone", "email", "qr")
Day = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


class _M(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _tz(value: str) -> str:
    try:
        ZoneInfo(value)
    except Exception:
        raise ValueError(f"{value!r} is not a time zone; use an IANA name such as Asia/Shanghai") from None
    return value


# -- pattern sets ------------------------------------------------------------------------------------


class PatternEntry(_M):
    """One blocklist entry: `match` (wildcards: `*` any run of characters, `?` one) or `regex`."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$")
    match: str = ""
    regex: str = ""
    action: Action | None = None  # default: the set's action (or the policy's choice for the set)
    locale: str = ""  # documentation: which language it is written for
    examples: list[str] = Field(min_length=1)  # messages it must catch (run by carebot validate)
    not_: list[str] = Field(default=[], alias="not")  # messages it must leave alone

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="after")
    def _one_form(self) -> PatternEntry:
        if bool(self.match) == bool(self.regex):
            raise ValueError("an entry has exactly one of match: (wildcards, e.g. \"*加*微信*\") or regex:")
        return self


class PatternSet(_M):
    id: str = ""
    label: dict[str, str] = {}  # what moderators read: {zh-CN: 售药广告, en: drug selling}
    action: Action = "delete"
    entries: list[PatternEntry] = Field(min_length=1)


# -- policies ------------------------------------------------------------------------------------------


class Chat(_M):
    channel: str
    chat_id: str

    @field_validator("chat_id", mode="before")
    @classmethod
    def _text(cls, v: Any) -> Any:
        return str(v) if isinstance(v, int) else v


class ModeratorShift(_M):
    staff: str  # a staff account id (the console)
    days: list[Day] = list(DAY_NAMES)
    start: HHMM = "00:00"
    end: HHMM = "00:00"  # start == end: the whole day

    def on_duty(self, local: datetime) -> bool:
        if self.start == self.end:
            return DAY_NAMES[local.weekday()] in self.days
        return on_days(self.days, self.start, self.end, local)


class Welcome(_M):
    rules: dict[str, str]  # the group's rules, per locale
    intake: str = "intake"  # the deep link's start parameter: a private chat that opens this flow
    intake_url: str = ""  # used when the platform has no deep links (e.g. a web chat page)


class Captcha(_M):
    timeout: Duration = "5m"
    on_fail: Literal["kick", "ban", "mute"] = "kick"


class Newcomer(_M):
    for_: Duration = Field("24h", alias="for")
    media: bool = False  # newcomers may post photos and files (links and contacts: never)
    action: Action = "delete"

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Locks(_M):
    links: Action | None = None
    forwards: Action | None = None
    contacts: Action | None = None
    phone: Action | None = None
    email: Action | None = None
    qr: Action | None = None

    def active(self) -> dict[str, str]:
        return {k: v for k, v in self.model_dump().items() if v}


class SetUse(_M):
    set: str
    action: Action | None = None  # overrides the set's action for this group


class CustomEntry(_M):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$")
    match: str = ""
    regex: str = ""
    action: Action = "delete"
    reason: str = ""

    @model_validator(mode="after")
    def _one_form(self) -> CustomEntry:
        if bool(self.match) == bool(self.regex):
            raise ValueError("an entry has exactly one of match: (wildcards) or regex:")
        return self


class Blocklist(_M):
    sets: list[str | SetUse] = []
    entries: list[CustomEntry] = []

    def uses(self) -> list[SetUse]:
        return [SetUse(set=s) if isinstance(s, str) else s for s in self.sets]


class Warnings(_M):
    threshold: int = Field(3, ge=1)
    decay: Duration = "7d"  # a warning counts this long
    then: Literal["mute", "ban"] = "mute"
    mute_for: Duration = "1d"


class Flood(_M):
    messages: int = Field(6, ge=2)
    per: Duration = "10s"
    action: Literal["delete", "warn", "mute", "ban"] = "mute"
    mute_for: Duration = "10m"


class Raid(_M):
    joins: int = Field(10, ge=2)  # this many joins …
    per: Duration = "1m"  # … in this long is a raid
    lockdown: Duration = "30m"  # one alert per this long; joiners held for the captcha meanwhile


class Night(TimeWindow):
    action: Literal["delete", "report"] = "delete"


class SendBudget(_M):
    messages: int = Field(20, ge=1)
    per: Duration = "1m"


class _Post(_M):
    """What a post says: exactly one of an article (always with its source) or a content key."""

    article: str = ""  # content/articles/<id>.yml
    say: str = ""  # or a content key

    @model_validator(mode="after")
    def _what(self) -> _Post:
        if bool(self.article) == bool(self.say):
            raise ValueError("a post names exactly one of article: (an id in content/articles) or say: (a content key)")
        return self

    @property
    def key(self) -> str:
        return f"article.{self.article}" if self.article else self.say


class ProgrammePost(_Post):
    """Day `day` after the member joined (day 1 is the day after), at `at` in the group's time zone."""

    day: int = Field(ge=0, le=366)
    at: HHMM = "09:00"


class CalendarPost(_Post):
    """A post to the whole group on a date, or every week on some days."""

    date: str = ""  # 2026-04-01
    weekly: list[Day] = []
    at: HHMM = "10:00"

    @model_validator(mode="after")
    def _when_what(self) -> CalendarPost:
        if bool(self.date) == bool(self.weekly):
            raise ValueError("a calendar post has exactly one of date: (YYYY-MM-DD) or weekly: [mon, …]")
        if self.date:
            try:
                datetime.strptime(self.date, "%Y-%m-%d")
            except ValueError:
                raise ValueError(f"date {self.date!r} is not a date; write YYYY-MM-DD, e.g. 2026-04-01") from None
        return self


class Digest(_M):
    weekly: Day = "mon"
    at: HHMM = "09:00"


class Sop(_M):
    programme: list[ProgrammePost] = []
    calendar: list[CalendarPost] = []
    digest: Digest | None = None


class GroupPolicy(_M):
    id: str = Field("", pattern=r"^$|^[a-z0-9][a-z0-9_-]*$")
    name: dict[str, str] = {}
    chats: list[Chat] = []  # none yet: a template, checked but attached to no chat
    timezone: str = "Asia/Shanghai"
    owner: str  # the staff account asked to act when the platform cannot (WeCom: the group's owner)
    doctor: str = ""  # the group's doctor: the weekly digest
    moderators: list[ModeratorShift] = []  # on duty for /report, @admin and appeals (else the owner)
    exempt: list[str] = []  # platform user ids never moderated (the group's own staff)
    send_budget: SendBudget = SendBudget()
    welcome: Welcome | None = None
    captcha: Captcha | None = None
    newcomer: Newcomer | None = None
    locks: Locks = Locks()
    blocklist: Blocklist = Blocklist()
    warnings: Warnings = Warnings()
    flood: Flood | None = None
    raid: Raid | None = None
    night: Night | None = None
    sop: Sop = Sop()

    @field_validator("timezone")
    @classmethod
    def _zone(cls, v: str) -> str:
        return _tz(v)

    def local(self, now: datetime) -> datetime:
        return now.astimezone(ZoneInfo(self.timezone))

    def moderator(self, now: datetime) -> str:
        """Who takes reports and appeals now: the first moderator on duty, else the owner."""
        local = self.local(now)
        return next((m.staff for m in self.moderators if m.on_duty(local)), self.owner)

    def seconds(self, duration: str) -> int:
        return parse_duration(duration)


# -- compiled blocklists --------------------------------------------------------------------------------


def wildcard(pattern: str) -> str:
    """`*加*微信*` → a regex: `*` any run of characters, `?` one character, the rest literal."""
    out = []
    for c in pattern.strip():
        out.append(".*?" if c == "*" else "." if c == "?" else re.escape(c))
    return "".join(out)


@dataclass(frozen=True)
class Rule:
    """A compiled blocklist entry: what it matched is named by `id` (`set/entry`)."""

    id: str
    regex: re.Pattern[str]
    action: str
    label: dict[str, str] = field(default_factory=dict)


@dataclass
class GroupPolicies:
    """Every policy, the chats they cover and their compiled blocklists."""

    policies: dict[str, GroupPolicy] = field(default_factory=dict)
    sets: dict[str, PatternSet] = field(default_factory=dict)
    by_chat: dict[tuple[str, str], str] = field(default_factory=dict)
    rules: dict[str, list[Rule]] = field(default_factory=dict)  # policy id → its blocklist, in order

    def for_chat(self, channel: str, chat_id: str) -> GroupPolicy | None:
        pid = self.by_chat.get((channel, chat_id))
        return self.policies.get(pid) if pid else None


def compile_rule(rule_id: str, entry: PatternEntry | CustomEntry, action: str, label: dict[str, str]) -> Rule:
    source = entry.regex or wildcard(entry.match)
    return Rule(rule_id, re.compile(source, re.IGNORECASE | re.DOTALL), action, label)


def load_groups(content_dir: Path, *, locales: list[str], has_key: Any = None) -> GroupPolicies:
    """Load and check `content/groups/`; raise one ConfigError listing every problem.

    `has_key(key)` says whether a content key exists in every locale (SOP posts name them)."""
    from bot.groups.matching import forms

    root = Path(content_dir) / "groups"
    out = GroupPolicies()
    if not root.is_dir():
        return out
    problems: list[ConfigProblem] = []
    sources: dict[str, Source] = {}
    for path in sorted((root / "patterns").glob("*.yml")):
        loaded = _model(path, PatternSet, problems)
        if loaded is None:
            continue
        source, pset = loaded
        set_id = pset.id or path.stem
        if set_id in out.sets:
            problems.append(source.problem(("id",), f"pattern set {set_id!r} is defined twice"))
            continue
        out.sets[set_id] = pset
        for i, entry in enumerate(pset.entries):
            loc: tuple[str | int, ...] = ("entries", i)
            try:
                rule = compile_rule(f"{set_id}/{entry.id}", entry, entry.action or pset.action, pset.label)
            except re.error as err:
                problems.append(source.problem((*loc, "regex"), f"invalid regex {entry.regex!r}: {err}"))
                continue
            for j, example in enumerate(entry.examples):
                if not any(rule.regex.search(f) for f in forms(example)):
                    problems.append(source.problem((*loc, "examples", j),
                                                   f"entry {entry.id!r} does not match its own example {example!r}; "
                                                   "fix the pattern or the example"))
            for j, example in enumerate(entry.not_):
                if any(rule.regex.search(f) for f in forms(example)):
                    problems.append(source.problem((*loc, "not", j),
                                                   f"entry {entry.id!r} matches {example!r}, which it must leave alone"))
    for path in sorted(root.glob("*.yml")):
        loaded = _model(path, GroupPolicy, problems)
        if loaded is None:
            continue
        source, policy = loaded
        pid = policy.id or path.stem
        policy = policy.model_copy(update={"id": pid})
        if pid in out.policies:
            problems.append(source.problem(("id",), f"group policy {pid!r} is defined twice"))
            continue
        out.policies[pid] = policy
        sources[pid] = source
        problems.extend(_check_policy(policy, source, out, locales, has_key))
    if problems:
        raise ConfigError(problems)
    return out


def _model(path: Path, model: type[BaseModel], problems: list[ConfigProblem]) -> Any:
    try:
        source = load_yaml(path)
    except ConfigError as exc:
        problems.extend(exc.problems)
        return None
    try:
        return source, model.model_validate(source.data or {})
    except ValidationError as err:
        problems.extend(source.problems_from(err))
        return None


def _check_policy(policy: GroupPolicy, source: Source, out: GroupPolicies, locales: list[str],
                  has_key: Any) -> list[ConfigProblem]:
    problems = []
    for i, chat in enumerate(policy.chats):
        other = out.by_chat.get((chat.channel, chat.chat_id))
        if other is not None:
            problems.append(source.problem(("chats", i), f"chat {chat.channel}:{chat.chat_id} is already run by "
                                                          f"group policy {other!r}; a chat follows one policy"))
        else:
            out.by_chat[(chat.channel, chat.chat_id)] = policy.id
    if policy.welcome is not None:
        for locale in locales:
            if not policy.welcome.rules.get(locale, "").strip():
                problems.append(source.problem(("welcome", "rules"), f"the rules need a text in {locale} "
                                                                      f"(every locale: {', '.join(locales)})"))
    for locale in locales:
        if policy.name and not policy.name.get(locale):
            problems.append(source.problem(("name",), f"the group's name needs {locale} (every locale: {', '.join(locales)})"))
    rules: list[Rule] = []
    for i, use in enumerate(policy.blocklist.uses()):
        pset = out.sets.get(use.set)
        if pset is None:
            problems.append(source.problem(("blocklist", "sets", i), f"unknown pattern set {use.set!r}; sets in "
                                           f"content/groups/patterns: {', '.join(sorted(out.sets)) or 'none'}"))
            continue
        for entry in pset.entries:
            rules.append(compile_rule(f"{use.set}/{entry.id}", entry, use.action or entry.action or pset.action,
                                      pset.label))
    for i, entry in enumerate(policy.blocklist.entries):
        try:
            rules.append(compile_rule(f"{policy.id}/{entry.id}", entry, entry.action,
                                      {"zh-CN": entry.reason, "en": entry.reason} if entry.reason else {}))
        except re.error as err:
            problems.append(source.problem(("blocklist", "entries", i, "regex"), f"invalid regex {entry.regex!r}: {err}"))
    out.rules[policy.id] = rules
    if has_key is not None:
        posts = [("programme", i, p.key) for i, p in enumerate(policy.sop.programme)] + \
                [("calendar", i, p.key) for i, p in enumerate(policy.sop.calendar)]
        for part, i, key in posts:
            if not has_key(key):
                what = "article" if key.startswith("article.") else "say"
                problems.append(source.problem(("sop", part, i, what), f"{key!r} is not in every locale's content "
                                               "(an article is content/articles/<id>.yml, with its source)"))
    return problems
