"""YAML conversation tests: a patient's messages in, the bot's messages and state out.

Each test runs the real runtime (pipeline, engine, SQLite store, outbox sender, timers) with the
memory adapter and a clock that only moves on `advance`. See docs/conversation-tests.md.
"""

from __future__ import annotations

import asyncio
import fnmatch
import json
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
from bot.store.store import EVENT, TICKET, TIMER
from bot.testing.memory import MemoryAdapter
from bot.types import Address, Media, Outbound
from bot.yamlsrc import Source, load_yaml

ACTIONS = ("user", "member", "click", "media", "event", "staff", "advance", "expect", "locale_hint")


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


class Failure(AssertionError):
    pass


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
        clock = ManualClock(start, self.settings.timezone)
        channel = str(data.get("channel", "memory"))
        adapter = MemoryAdapter(channel)
        settings = replace(self.settings, database_url=f"sqlite:///{db}", worker_id="test", redis_url="")
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


class _Run:
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
        await self._send(text=text, kind="command" if text.startswith("/") else "text",
                         addressed=bool(arg.get("mention") or arg.get("reply")))

    async def do_member(self, name: Any) -> None:
        """In a group test: the member who speaks from now on (state checks read their conversation)."""
        if not self.group:
            raise Failure("`member` is for group tests: set `group: true` on the test")
        self.user = str(name)

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

        self.clock.advance(timedelta(seconds=seconds))
        await self.bot.timers.tick()
        await self._settle()

    # -- expectations ----------------------------------------------------------------------------

    async def do_expect(self, exp: Any) -> None:
        if not isinstance(exp, dict):
            raise Failure(f"expect takes a mapping, got {exp!r}")
        message_checks = {k: exp[k] for k in ("key", "contains", "text", "buttons", "sender_name", "not_contains",
                                              "to") if k in exp}
        if exp.get("none"):
            if self.pending:
                raise Failure("expected no message, got: " + " | ".join(
                    f"[{o.key}] {o.text[:60]}" for o in self.pending))
        if message_checks:
            self._expect_message(message_checks)
        state_checks = {k: exp[k] for k in ("slot", "mode", "tags", "locale", "level", "stack") if k in exp}
        if state_checks:
            await self._expect_state(state_checks)
        if "ticket" in exp:
            await self._expect_ticket(exp["ticket"])
        if "record" in exp:
            await self._expect_record(exp["record"])
        if "timer" in exp:
            await self._expect_timer(exp["timer"])
        if "review" in exp:
            await self._expect_review(exp["review"])
        if "ticket_events" in exp:
            await self._expect_ticket_events(exp["ticket_events"])
        unknown = set(exp) - {"none", *message_checks, *state_checks, "ticket", "record", "timer", "review",
                              "ticket_events"}
        if unknown:
            raise Failure(f"unknown expectation {sorted(unknown)}; valid: key, contains, not_contains, text, "
                          "buttons, sender_name, to, none, slot, mode, tags, locale, level, stack, ticket, record, timer, "
                          "review, ticket_events")

    def _expect_message(self, checks: dict[str, Any]) -> None:
        for i, ob in enumerate(self.pending):
            if self._matches(ob, checks):
                del self.pending[: i + 1]
                return
        got = " | ".join(f"[{o.key}] {o.text[:80]}" for o in self.pending) or "nothing"
        raise Failure(f"expected a message with {checks}; unread messages: {got}")

    @staticmethod
    def _matches(ob: Outbound, checks: dict[str, Any]) -> bool:
        if "key" in checks and ob.key != checks["key"]:
            return False
        if "contains" in checks and str(checks["contains"]) not in ob.text:
            return False
        if "not_contains" in checks and str(checks["not_contains"]) in ob.text:
            return False
        if "text" in checks and ob.text != str(checks["text"]).strip():
            return False
        if "sender_name" in checks and ob.sender_name != str(checks["sender_name"]):
            return False
        if "to" in checks and ob.address.user_id != str(checks["to"]):  # the member a group reply is for
            return False
        if "buttons" in checks:
            want = [str(b) for b in checks["buttons"]]
            have = [b.value for b in ob.buttons]
            labels = [b.label for b in ob.buttons]
            if want != have and want != labels:
                return False
        return True

    async def _state(self) -> dict[str, Any]:
        conv = self._conversation_id()
        data, _ = await self.bot.store.load(conv)
        if data is None:
            raise Failure("no conversation yet")
        return data

    async def _expect_state(self, checks: dict[str, Any]) -> None:
        state = await self._state()
        if "slot" in checks:
            for name, want in checks["slot"].items():
                have = state["slots"].get(name)
                if have != want:
                    raise Failure(f"slot {name}: expected {want!r}, got {have!r}")
        for fld, attr in (("mode", "mode"), ("locale", "locale"), ("level", "triage_level")):
            if fld in checks and state[attr] != checks[fld]:
                raise Failure(f"{fld}: expected {checks[fld]!r}, got {state[attr]!r}")
        if "tags" in checks:
            missing = [t for t in checks["tags"] if t not in state["tags"]]
            if missing:
                raise Failure(f"tags {missing} missing; tags are {state['tags']}")
        if "stack" in checks:
            have = [f["flow"] for f in state["stack"]]
            if have != list(checks["stack"]):
                raise Failure(f"flow stack: expected {checks['stack']}, got {have}")

    async def _expect_ticket(self, want: Any) -> None:
        conv = self._conversation_id()
        rows = await self.bot.store.read(lambda c: c.execute(
            sa.select(TICKET).where(TICKET.c.conversation_id == conv).order_by(TICKET.c.opened_at)).all())
        if want is None or want is False:
            if rows:
                raise Failure(f"expected no ticket, found {len(rows)}")
            return
        if not rows:
            raise Failure("expected a ticket, found none")
        last = rows[-1]._mapping
        for k, v in (want.items() if isinstance(want, dict) else ()):
            if str(last.get(k)) != str(v):
                raise Failure(f"ticket {k}: expected {v!r}, got {last.get(k)!r}")

    async def _expect_record(self, want: Any) -> None:
        want = want if isinstance(want, dict) else {"kind": str(want)}
        conv = self._conversation_id()
        rows = await self.bot.store.read(lambda c: c.execute(
            sa.select(EVENT.c.kind, EVENT.c.data).where(EVENT.c.conversation_id == conv)).all())
        for row in rows:
            data = json.loads(row.data)
            if row.kind == want.get("kind") and all(data.get(k) == v for k, v in want.get("data", {}).items()):
                return
        raise Failure(f"expected a record {want}; records: {[(r.kind, r.data) for r in rows]}")

    async def _expect_review(self, want: Any) -> None:
        from bot.handoff.complaints import REVIEWS

        ticket = await self._open_ticket()
        rows = await self.bot.store.read(lambda c: c.execute(
            sa.select(REVIEWS.c.source, REVIEWS.c.reasons).where(REVIEWS.c.ticket_id == ticket)).all())
        for row in rows:
            reasons = json.loads(row.reasons)
            if row.source == want.get("source", row.source) and all(r in reasons for r in want.get("reasons", [])):
                return
        raise Failure(f"expected a review {want}; reviews: {[(r.source, r.reasons) for r in rows]}")

    async def _expect_ticket_events(self, want: Any) -> None:
        from bot.handoff.tickets import EVENTS

        ticket = await self._open_ticket()
        kinds = await self.bot.store.read(lambda c: c.execute(
            sa.select(EVENTS.c.kind).where(EVENTS.c.ticket_id == ticket).order_by(EVENTS.c.id)).scalars().all())
        it = iter(kinds)
        if not all(any(k == w for k in it) for w in want):  # in this order, others may come between
            raise Failure(f"ticket events: expected {want} in order; got {list(kinds)}")

    async def _expect_timer(self, want: Any) -> None:
        want = want if isinstance(want, dict) else {"name": str(want)}
        conv = self._conversation_id()
        rows = await self.bot.store.read(lambda c: c.execute(
            sa.select(TIMER.c.name, TIMER.c.status).where(TIMER.c.conversation_id == conv)).all())
        status = want.get("status", "pending")
        if not any(fnmatch.fnmatchcase(r.name, want["name"]) and r.status == status for r in rows):  # "sla:first:*"
            raise Failure(f"expected timer {want['name']} {status}; timers: {[(r.name, r.status) for r in rows]}")


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
