"""YAML conversation tests: a patient's messages in, the bot's messages and state out.

Each test runs the real runtime (pipeline, engine, SQLite store, outbox sender, timers) with the
memory adapter and a clock that only moves on `advance`. This module reads the tests and plays their
steps (what patients, members and staff do); what a test expects is checked in `expectations.py`.
See docs/conversation-tests.md.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from bot.app import CareBot, Config
from bot.clock import ManualClock
from bot.coord import MemoryCoord
from bot.errors import ConfigError
from bot.flow.compiler import parse_duration
from bot.settings import Settings
from bot.store.migrate import upgrade
from bot.store.store import TICKET
from bot.testing.expectations import Expectations, Failure
from bot.testing.memory import MemoryAdapter
from bot.types import Address, Media, Outbound
from bot.yamlsrc import Source, load_yaml

ACTIONS = ("user", "member", "click", "media", "event", "staff", "plan", "advance", "down", "expect", "locale_hint")
MAX_FIRES_PER_ADVANCE = 10_000  # an `advance` walks through at most this many due moments


@dataclass
class TestResult:
    name: str
    file: str
    passed: bool
    failure: str = ""
    seconds: float = 0.0


@dataclass
class TestCase:
    name: str
    file: str
    line: int
    data: dict[str, Any]
    source: Source
    base: tuple


def collect(paths: list[Path]) -> list[TestCase]:
    """Every test in the given files and directories (*.yml, *.yaml), in a stable order."""
    files: list[Path] = []
    for p in paths:
        if p.is_dir():
            files.extend(sorted([*p.rglob("*.yml"), *p.rglob("*.yaml")]))
        elif p.exists():
            files.append(p)
        else:
            raise ConfigError([_problem(str(p), 0, "", "no such file or directory")])
    cases = []
    for f in files:
        source = load_yaml(f)
        data = source.data
        entries = [(t, ("tests", i)) for i, t in enumerate(data["tests"])] \
            if isinstance(data, dict) and isinstance(data.get("tests"), list) else [(data, ())]
        for test, base in entries:
            if not isinstance(test, dict) or not isinstance(test.get("steps"), list):
                raise ConfigError([source.problem(base, "a conversation test needs `name` and a list of `steps`")])
            cases.append(TestCase(str(test.get("name", f.stem)), str(f), source.line(base), test, source, base))
    return cases


def _problem(file: str, line: int, fld: str, msg: str):  # type: ignore[no-untyped-def]
    from bot.errors import ConfigProblem

    return ConfigProblem(file, line, fld, msg)


class TranscriptRunner:
    """Runs conversation tests against one loaded configuration."""

    def __init__(self, settings: Settings, config: Config):
        self.settings = settings
        self.config = config
        self._tmp = Path(tempfile.mkdtemp(prefix="carebot-test-"))
        self.coverage: set[tuple[str, str]] = set()
        self._template = self._tmp / "template.db"
        upgrade(f"sqlite:///{self._template}")
        self._n = 0

    def close(self) -> None:
        shutil.rmtree(self._tmp, ignore_errors=True)

    async def run(self, case: TestCase) -> TestResult:
        started = time.perf_counter()
        try:
            await self._run(case)
        except Failure as exc:
            return TestResult(case.name, case.file, False, str(exc), time.perf_counter() - started)
        return TestResult(case.name, case.file, True, "", time.perf_counter() - started)

    async def _run(self, case: TestCase) -> None:
        self._n += 1
        db = self._tmp / f"t{self._n}.db"
        shutil.copy(self._template, db)
        data = case.data
        start = datetime.fromisoformat(str(data["now"])) if data.get("now") else \
            datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
        zone = str(data.get("timezone") or self.settings.timezone)  # the deployment's (and patients') zone
        clock = ManualClock(start, zone)
        channel = str(data.get("channel", "memory"))
        adapter = MemoryAdapter(channel)
        settings = replace(self.settings, database_url=f"sqlite:///{db}", worker_id="test", redis_url="",
                           timezone=zone)
        bot = CareBot.build(settings, [adapter], clock=clock, config=self.config, coord=MemoryCoord())
        bot.engine.coverage = self.coverage
        await bot.start(background=False)
        for member in data.get("staff", []) or []:
            await bot.handoff.add_staff(
                str(member["id"]), str(member.get("name", member["id"])), str(member.get("role", "doctor")),
                "test-password", title=str(member.get("title", "")), departments=list(member.get("departments", [])))
        run = _Run(case, bot, adapter, clock, str(data.get("locale", "")), bool(data.get("group", False)))
        try:
            for i, step in enumerate(data["steps"]):
                loc = (*case.base, "steps", i)
                if not isinstance(step, dict) or len(step) != 1 or next(iter(step)) not in ACTIONS:
                    raise Failure(f"{case.file}:{case.source.line(loc)}: a step is one of "
                                  f"{', '.join(ACTIONS)} (got {step!r})")
                action, arg = next(iter(step.items()))
                try:
                    await getattr(run, f"do_{action}")(arg)
                except Failure as exc:
                    raise Failure(f"{case.file}:{case.source.line(loc)}: {exc}") from None
        finally:
            await bot.stop()


class _Run(Expectations):
    def __init__(self, case: TestCase, bot: CareBot, adapter: MemoryAdapter, clock: ManualClock,
                 locale: str, group: bool):
        self.case = case
        self.bot = bot
        self.adapter = adapter
        self.clock = clock
        self.locale = locale
        self.group = group
        self.chat = "group" if group else "patient"  # a group test: members write in one chat
        self.user = "patient"
        self.pending: list[Outbound] = []
        self.saved: dict[str, str] = {}
        self.seen = 0

    def _conversation_id(self) -> str:
        """The conversation of the patient speaking now (in a group: the current member's)."""
        return Address(self.adapter.channel, self.chat, self.user, is_group=self.group).conversation_id

    async def _send(self, **kw: Any) -> None:
        inbound = self.adapter.inbound(self.chat, user_id=self.user, locale=self.locale, is_group=self.group,
                                       now=self.clock.now(), **kw)
        await self.bot.runtime.handle(inbound)
        await self._settle()

    async def _settle(self) -> None:
        await self.bot.settle()
        new = self.adapter.sent[self.seen:]
        self.seen = len(self.adapter.sent)
        self.pending.extend(s.outbound for s in new)

    async def do_user(self, arg: Any) -> None:
        """A typed message; in a group `{text: …, mention: true}` mentions the bot and
        `{text: …, reply: true}` replies to one of its messages (both address the bot)."""
        arg = arg if isinstance(arg, dict) else {"text": arg}
        text = str(arg.get("text", ""))
        for name, value in self.saved.items():  # what an earlier `expect` saved (a caregiver code)
            text = text.replace("{{ " + name + " }}", value)
        await self._send(text=text, kind="command" if text.startswith("/") else "text",
                         addressed=bool(arg.get("mention") or arg.get("reply")))

    async def do_member(self, name: Any) -> None:
        """Who speaks from now on (state checks read their conversation): in a group test a member of
        the group; otherwise another person in a private chat of their own (a caregiver)."""
        self.user = str(name)
        if not self.group:
            self.chat = self.user

    async def do_plan(self, arg: Any) -> None:
        """A doctor sets a medication plan for the patient speaking now (as the console does):
        `{medicine, schedule: {times|every_hours|taper…, start}, kind, dose, pills}`."""
        from pydantic import ValidationError

        from bot.reminders.schedule import Schedule

        if not isinstance(arg, dict) or "schedule" not in arg:
            raise Failure("plan: needs {medicine: …, schedule: {…}}")
        data = dict(arg["schedule"])
        data.setdefault("start", self.clock.now().date().isoformat())
        try:
            schedule = Schedule.model_validate(data)
        except ValidationError as exc:
            raise Failure(f"plan.schedule: {exc.errors()[0]['msg']}") from None
        await self.bot.reminders.create_plan(
            self._conversation_id(), schedule, kind=str(arg.get("kind", "")), medicine=str(arg.get("medicine", "")),
            dose=str(arg.get("dose", "")), created_by="staff:test",
            pills_left=int(arg["pills"]) if arg.get("pills") is not None else None)

    async def do_click(self, value: Any) -> None:
        value = str(value)
        label = value
        for ob in reversed(self.pending or [s.outbound for s in self.adapter.sent]):
            hit = next((b for b in ob.buttons if value in (b.value, b.label)), None)
            if hit:
                value, label = hit.value, hit.label
                break
        await self._send(kind="choice", text=label, payload={"value": value})

    async def do_media(self, arg: Any) -> None:
        arg = arg if isinstance(arg, dict) else {"ref": str(arg)}
        await self._send(kind="media", text=str(arg.get("caption", "")),
                         addressed=bool(arg.get("mention") or arg.get("reply")),
                         media=Media(kind=arg.get("kind", "image"), ref=str(arg.get("ref", "test.jpg")),
                                     mime=str(arg.get("mime", "image/jpeg"))))

    async def do_locale_hint(self, locale: Any) -> None:
        self.locale = str(locale)

    async def do_event(self, name: Any) -> None:
        await self._send(kind=str(name))

    async def do_staff(self, arg: Any) -> None:
        """As a staff member through the hand-off service — {as: d_wang, take|reply|canned|note|
        transfer|escalate|close|seen|ack: …} — or, without `as`, a bare staff reply/close event."""
        if not isinstance(arg, dict):
            raise Failure("staff takes a mapping: {as: d_wang, reply: …} or {reply: …, name: …}")
        if "as" in arg:
            await self._as_staff(arg)
            return
        if arg.get("close"):
            await self._send(kind="staff_event", payload={"event": "closed"})
        else:
            await self._send(kind="staff_reply", text=str(arg.get("reply", "")),
                             payload={"staff_id": str(arg.get("id", "d1")), "staff_name": str(arg.get("name", "")),
                                      "internal": bool(arg.get("internal", False))})

    async def _as_staff(self, arg: dict[str, Any]) -> None:
        from bot.handoff.staff import HandoffError

        service = self.bot.handoff
        member = await service.staff(str(arg["as"]))
        if member is None:
            raise Failure(f"no staff member {arg['as']!r}; define it under the test's `staff:`")
        ticket = await self._open_ticket()
        try:
            if "take" in arg:
                won = await service.take(ticket, member)
                if won != bool(arg.get("wins", True)):
                    raise Failure(f"{member.id} take: expected {'win' if arg.get('wins', True) else 'lose'}, got {won}")
            elif "reply" in arg or "canned" in arg:
                flags = await service.reply(ticket, member, str(arg.get("reply", "")), canned=str(arg.get("canned", "")))
                want = arg.get("flags")
                if want is not None and sorted(flags) != sorted(want):
                    raise Failure(f"quality flags: expected {sorted(want)}, got {sorted(flags)}")
            elif "note" in arg:
                await service.note(ticket, member, str(arg["note"]))
            elif "transfer" in arg:
                target = arg["transfer"] if isinstance(arg["transfer"], dict) else {"department": arg["transfer"]}
                await service.transfer(ticket, member, department=str(target.get("department", "")),
                                       to_staff=str(target.get("staff", "")))
            elif "escalate" in arg:
                await service.escalate(ticket, member, str(arg["escalate"]))
            elif arg.get("close"):
                await service.close(ticket, member)
            elif "seen" in arg or "ack" in arg:  # the console showed the emergency alert / it was acknowledged
                if service.paging is None:
                    raise Failure("no emergency paging in this configuration")
                if "seen" in arg:
                    await service.paging.seen(ticket, member)
                elif await service.paging.acknowledge(ticket, member) != bool(arg.get("wins", True)):
                    raise Failure(f"{member.id} ack: expected {'win' if arg.get('wins', True) else 'lose'}")
            else:
                raise Failure("a staff step does one of take, reply, canned, note, transfer, escalate, close, "
                              "seen, ack")
        except HandoffError as exc:
            if not arg.get("refused"):
                raise Failure(f"{member.id}: {exc}") from None
            return
        if arg.get("refused"):
            raise Failure(f"{member.id}: expected to be refused")
        await self._settle()

    async def _open_ticket(self) -> str:
        conv = self._conversation_id()
        await self.bot.settle()
        row = await self.bot.store.read(lambda c: c.execute(
            sa.select(TICKET.c.id).where(TICKET.c.conversation_id == conv).order_by(
                TICKET.c.opened_at.desc())).first())
        if row is None:
            raise Failure("no ticket for this conversation yet")
        return row.id

    async def do_advance(self, duration: Any) -> None:
        try:
            seconds = parse_duration(str(duration))
        except ValueError as exc:
            raise Failure(str(exc)) from None
        from datetime import timedelta

        target = self.clock.now().astimezone(timezone.utc) + timedelta(seconds=seconds)  # elapsed, not wall-clock
        # the clock walks from one due timer to the next, as a running server's would: each fires at its
        # time (what was overdue — after a `down` step — fires first, now)
        await self.bot.timers.tick()
        await self._settle()
        for _ in range(MAX_FIRES_PER_ADVANCE):
            due = await self.bot.store.next_timer_due()
            if due is None or due > target or due <= self.clock.now():
                break
            self.clock.set(due)
            await self.bot.timers.tick()
            await self._settle()
        self.clock.set(target)
        await self.bot.timers.tick()
        await self._settle()

    async def do_down(self, duration: Any) -> None:
        """The bot is down for this long: the clock moves and nothing fires until the next step."""
        try:
            seconds = parse_duration(str(duration))
        except ValueError as exc:
            raise Failure(str(exc)) from None
        from datetime import timedelta

        self.clock.advance(timedelta(seconds=seconds))


def coverage_report(config: Config, covered: set[tuple[str, str]]) -> tuple[list[str], list[str], list[str]]:
    """Which step types, typed questions and repair flows the tests ran — and which none did."""
    from bot.engine.engine import step_type
    from bot.flow.loader import REPAIR_FLOWS
    from bot.flow.model import STEP_MODELS

    types_run = {t for _, t in covered}
    wanted = {t for t in STEP_MODELS if t not in ("ask",)} | {
        step_type(i) for cf in config.flows.flows.values() for i in cf.code if i.op == "ask"}
    missing_types = sorted(t for t in wanted if t not in types_run)
    flows_run = {f for f, _ in covered}
    missing_repair = sorted(f for f in REPAIR_FLOWS if f not in flows_run)
    never_run = sorted(f for f in config.flows.flows if f not in flows_run)
    return missing_types, missing_repair, never_run


def run_paths(settings: Settings, config: Config, paths: list[Path], out: Any,
              coverage: bool = False) -> tuple[int, int]:
    cases = collect(paths)
    runner = TranscriptRunner(settings, config)

    async def main() -> tuple[int, int]:
        passed = failed = 0
        for case in cases:
            result = await runner.run(case)
            if result.passed:
                passed += 1
                print(f"PASS {case.name}  ({case.file}, {result.seconds * 1000:.0f} ms)", file=out)
            else:
                failed += 1
                print(f"FAIL {case.name}\n     {result.failure}", file=out)
        return passed, failed

    try:
        passed, failed = asyncio.run(main())
    finally:
        runner.close()
    if coverage:
        missing_types, missing_repair, never_run = coverage_report(config, runner.coverage)
        print(f"coverage: step types not run: {', '.join(missing_types) or 'none'}", file=out)
        print(f"coverage: repair flows not run: {', '.join(missing_repair) or 'none'}", file=out)
        print(f"coverage: flows not run: {', '.join(never_run) or 'none'}", file=out)
    print(f"{passed} passed, {failed} failed", file=out)
    return passed, failed
