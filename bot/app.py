"""Assembling carebot: configuration → engine and pipeline → store, coordination → runtime."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from bot.actions.registry import ActionRegistry
from bot.adapter import Adapter, AdapterSet
from bot.care.actions import register_care_actions, register_handoff_actions
from bot.care.config import CareSettings, load_care
from bot.clock import Clock
from bot.handoff.config import HandoffSettings, load_handoff
from bot.handoff.paging import Paging
from bot.handoff.relay import RelayStage
from bot.handoff.service import HandoffService
from bot.coord import Coord, make_coord
from bot.engine.engine import Engine
from bot.errors import ConfigError, ConfigProblem
from bot.flow.content import Content, load_content, missing_by_locale
from bot.flow.expr import MEMO
from bot.flow.loader import FlowSet, load_flows
from bot.group import GroupStage
from bot.groups.policy import GroupPolicies, load_groups
from bot.groups.sop import setup_turns
from bot.groups.stage import ModerationStage
from bot.pipeline import EngineStage, Pipeline
from bot.reminders.actions import register_reminder_actions
from bot.reminders.config import ReminderSettings, load_reminders
from bot.reminders.legacy import LEGACY_TIMER, on_legacy_timer
from bot.reminders.fire import DOSE_KEYS
from bot.reminders.service import Reminders
from bot.runtime.proactive import ProactivePolicy
from bot.runtime.runtime import Runtime
from bot.runtime.sender import Sender
from bot.runtime.timers import TimerLoop
from bot.safety import SafetyStage
from bot.settings import Settings
from bot.store.store import Store
from bot.timer_names import DOSE, PAGE, SLA
from bot.triage import TriageRules, load_all_triage
from bot.triage.guidance import Guidance, load_guidance
from bot.understand.intents import Intents, load_intents
from bot.triage.screen import Screener, shipped_model

if TYPE_CHECKING:
    from bot.reload import Reloads

log = logging.getLogger("carebot")


@dataclass
class Config:
    """Everything operators write, loaded and checked."""

    content: Content
    flows: FlowSet
    triage: dict[str, TriageRules] = field(default_factory=dict)
    care: CareSettings = field(default_factory=CareSettings)
    handoff: HandoffSettings = field(default_factory=HandoffSettings)
    intents: Intents | None = None  # content/understand: typed requests and answers
    guidance: Guidance | None = None  # content/guidance: what to do while waiting, per red flag
    groups: GroupPolicies = field(default_factory=GroupPolicies)  # content/groups: group policies (bot/groups)
    reminders: ReminderSettings = field(default_factory=ReminderSettings)  # content/reminders.yml


def load_config(settings: Settings, root: Path | None = None) -> Config:
    """Load content, flows and triage rules; raise one ConfigError listing every problem."""
    problems = []
    content = None
    try:
        content = load_content([settings.content_dir], settings.base_locale)
        problems.extend(missing_by_locale(content))
    except ConfigError as exc:
        problems.extend(exc.problems)
    flows = None
    try:
        flows = load_flows([settings.flows_dir], content, root=root, known_names=_known_names())
    except ConfigError as exc:
        problems.extend(exc.problems)
    care, care_loaded = CareSettings(), False
    try:
        care, care_loaded = load_care(settings.content_dir), True
    except ConfigError as exc:
        problems.extend(exc.problems)
    handoff = HandoffSettings()
    try:
        handoff = load_handoff(settings.content_dir)
    except ConfigError as exc:
        problems.extend(exc.problems)
    reminders = ReminderSettings()
    try:
        reminders = load_reminders(settings.content_dir)
        if (settings.content_dir / "reminders.yml").exists() and content is not None:
            for key in DOSE_KEYS:  # the fire path says a dose with these (bot/reminders/fire.py)
                if not content.has(key):
                    problems.append(ConfigProblem(str(settings.content_dir / "reminders.yml"), 0, "",
                                                  f"medication reminders need the message {key!r} in the "
                                                  f"{content.base_locale} catalogue (content/messages/*/reminders.yml)"))
    except ConfigError as exc:
        problems.extend(exc.problems)
    triage: dict[str, TriageRules] = {}
    try:
        if (settings.content_dir / "triage").is_dir():
            triage = load_all_triage(settings.content_dir)
    except ConfigError as exc:
        problems.extend(exc.problems)
    intents = None
    try:
        intents = load_intents(settings.content_dir)
        if flows is not None:
            problems.extend(intents.missing_flows(set(flows.flows)))
    except ConfigError as exc:
        problems.extend(exc.problems)
    guidance = None
    triage_failed = (settings.content_dir / "triage").is_dir() and not triage
    if content is not None and not triage_failed:  # guidance names triage rules: check it against loaded ones
        try:
            guidance = load_guidance(settings.content_dir, content.locales, triage, settings.base_locale)
        except ConfigError as exc:
            problems.extend(exc.problems)
    groups = GroupPolicies()
    if content is not None:
        try:
            groups = load_groups(settings.content_dir, locales=content.locales, has_key=lambda key: all(
                key in content.messages.get(loc, {}) for loc in content.locales))
        except ConfigError as exc:
            problems.extend(exc.problems)
    if triage and care_loaded and not care.region.numbers.ambulance:  # (a broken care.yml is reported already)
        problems.append(ConfigProblem(str(settings.content_dir / "care.yml"), 0, "region.numbers.ambulance",
                                      'the region needs an ambulance number (e.g. region: {name: CN, numbers: '
                                      '{ambulance: "120"}}): every emergency reply gives it, in every language'))
    if triage and not any(p.file.endswith("handoff.yml") for p in problems) and handoff.on_call is None:
        problems.append(ConfigProblem(str(settings.content_dir / "handoff.yml"), 0, "on_call",
                                      "triage rules can raise an emergency, so someone must be on call: add "
                                      "on_call: {timezone: Asia/Shanghai, shifts: [{staff: d_wu, start: \"00:00\", "
                                      "end: \"00:00\"}]} (see docs/emergencies.md)"))
    MEMO.save()  # templates compiled after the flows (guidance, intents), for the next start
    if problems:
        raise ConfigError(problems)
    assert content is not None and flows is not None
    return Config(content, flows, triage, care, handoff, intents if intents and intents.locales else None,
                  guidance if guidance and guidance.kinds else None, groups, reminders)


def _known_names() -> frozenset[str]:
    """Slots set outside flows — by the built-in actions, the safety stage, the hand-off relay — which
    conditions and templates may read (bot/flow/names.py)."""
    from bot.care.actions import ACTION_SLOTS
    from bot.handoff.relay import STAFFED_SLOT
    from bot.safety import CALLED_SLOT, CHECK_SLOT

    return ACTION_SLOTS | {STAFFED_SLOT, CALLED_SLOT, CHECK_SLOT}


def build_pipeline(config: Config, base_locale: str) -> tuple[Engine, Pipeline]:
    engine = Engine(config.flows, config.content, constants={"care": config.care.model_dump()},
                    intents=config.intents)
    region = config.care.region.number_lists() if config.care.region.numbers.ambulance else None
    safety = SafetyStage(Screener(config.triage, shipped_model(), base_locale, region), config.content, base_locale,
                         guidance=config.guidance, region_numbers=config.care.region.numbers.model_dump(),
                         requests=engine.answers_alone)
    moderation = ModerationStage(config.groups, config.content, base_locale, config.care.region.numbers.ambulance)
    stages = [safety, moderation, GroupStage(), RelayStage(engine), EngineStage(engine)]
    return engine, Pipeline(stages)


@dataclass
class CareBot:
    settings: Settings
    config: Config
    engine: Engine
    store: Store
    coord: Coord
    clock: Clock
    adapters: AdapterSet
    runtime: Runtime
    sender: Sender
    timers: TimerLoop
    handoff: HandoffService
    reminders: Reminders
    reloads: Reloads = field(init=False, repr=False)  # flows and content without a restart (bot/reload.py)

    def __post_init__(self) -> None:
        from bot.reload import Reloads

        self.reloads = Reloads(self)

    @classmethod
    def build(cls, settings: Settings, adapters: list[Adapter] | None = None, clock: Clock | None = None,
              config: Config | None = None, coord: Coord | None = None) -> CareBot:
        config = config or load_config(settings)
        clock = clock or Clock(settings.timezone)
        engine, pipeline = build_pipeline(config, settings.base_locale)
        store = Store(settings.database_url, worker_id=settings.worker_id,
                      lease_seconds=settings.outbox_lease_seconds, sqlite_synchronous=settings.sqlite_synchronous)
        coord = coord or make_coord(settings.redis_url or None)
        adapter_set = AdapterSet()
        for adapter in adapters or []:
            adapter_set.add(adapter)
        sender = Sender(store, adapter_set, coord, clock)
        actions = _actions(settings, config)
        # With several workers (Redis) the cached state is used only while Redis says it is the
        # version last committed (Runtime._validate_cache); the row's version check stays the authority.
        cache_size = 50_000
        proactive = ProactivePolicy(config.care.proactive)
        runtime = Runtime(pipeline=pipeline, engine=engine, store=store, coord=coord, clock=clock,
                          actions=actions, sender=sender, cache_size=cache_size, proactive=proactive,
                          adapters=adapter_set)
        timers = TimerLoop(runtime, store, clock, proactive=proactive)
        for stage in pipeline.stages:
            if isinstance(stage, ModerationStage):
                stage.bind(store, coord, adapter_set)
        handoff = HandoffService(config.handoff, store, runtime, coord, clock, config.care.reply_time)
        runtime.after_commit.append(handoff.after_commit)
        register_handoff_actions(actions, handoff)
        handoff.paging = Paging(handoff, sender, config.care.region.numbers.ambulance, channels=tuple(
            c for c, a in adapter_set.adapters.items() if "page" in a.capabilities.ops))
        runtime.handoff = handoff
        timers.register(SLA, handoff.clocks.on_timer)
        timers.register(PAGE, handoff.paging.on_timer)
        reminders = Reminders(config.reminders, store, clock, config.content, settings.timezone)
        reminders.runtime, reminders.sender = runtime, sender
        reminders.staff_channel = next((ch for ch, a in adapter_set.adapters.items()
                                        if "notify_staff" in a.capabilities.ops), "")
        register_reminder_actions(actions, reminders, config.content)
        timers.register_batch(DOSE, reminders.firer.fire_due)
        timers.register(LEGACY_TIMER, lambda t: on_legacy_timer(reminders, t))
        for adapter in adapter_set.adapters.values():
            adapter.bind_handoff(handoff)  # a staff group on the platform (Telegram forum topics)
        return cls(settings, config, engine, store, coord, clock, adapter_set, runtime, sender, timers, handoff,
                   reminders)

    def learned_models(self) -> list[str]:
        """The learned layers loaded and in use: "triage" (red flags), "intents" (typed requests)."""
        safety = next((s for s in self.runtime.pipeline.stages if isinstance(s, SafetyStage)), None)
        loaded = [("triage", safety is not None and safety.screener.model is not None),
                  ("intents", self.config.intents is not None and self.config.intents.model is not None)]
        return [name for name, ok in loaded if ok]

    async def start(self, background: bool = True) -> None:
        for adapter in self.adapters.adapters.values():
            await adapter.start(self.runtime)
        await self.store.take_back(self.clock.now())  # before the first beat: a restart under the same id
        await self.store.beat(self.clock.now())
        for turn in setup_turns(self.config.groups, self.clock.now()):  # each group's calendar and digest
            await self.runtime.handle(turn)
        await self.sender.sweep()  # deliver what a previous process committed but never sent
        await self.handoff.sweep_undispatched()  # tickets opened just before a crash
        if self.handoff.paging is not None:
            await self.handoff.paging.sweep()  # emergencies whose page never went out
            await self.handoff.paging.warn_unstaffed()  # on-call people nobody can page: say so in the log
        if background:
            self.sender.start()
            self.timers.start()
            self.reloads.start()

    async def settle(self) -> None:
        """Wait until nothing is in flight: deliveries and hand-off follow-ups (tests, chat)."""
        while True:
            await self.handoff.idle()
            await self.sender.idle()
            if not self.handoff.busy and not self.sender._chains:
                return

    async def stop(self) -> None:
        await self.reloads.stop()
        await self.handoff.idle()
        await self.timers.stop()
        await self.sender.stop()
        for adapter in self.adapters.adapters.values():
            await adapter.stop()
        if self.runtime.actions is not None:
            await self.runtime.actions.aclose()
        await self.coord.close()
        self.store.close()


def _actions(settings: Settings, config: Config) -> ActionRegistry:
    """A registry per bot: the operator's modules, a remote Rasa server, then the built-in care
    actions for any name the operator did not take."""
    registry = ActionRegistry(remote_endpoint=settings.rasa_action_url or None)
    if settings.actions:
        registry.load_modules(list(settings.actions))
    register_care_actions(registry, config.care, config.triage, settings.base_locale, config.content)
    return registry
