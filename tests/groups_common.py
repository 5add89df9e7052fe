"""A bot with group policies for the group tests: the shipped content and flows, plus test policies
for the memory platform's chats g1 (policy `ward`) and g2 (policy `clinic`), a staff console stand-in
and a pinned clock. SQLite with the memory coordinator, or PostgreSQL with Redis."""

from __future__ import annotations

import shutil
import textwrap
import uuid
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from bot.adapter import Capabilities
from bot.app import CareBot, load_config
from bot.clock import ManualClock
from bot.coord import MemoryCoord
from bot.groups.records import CASE, LOG, BAN
from bot.settings import Settings
from bot.store.migrate import upgrade
from bot.testing.memory import MemoryAdapter, Sent
from bot.types import Address, Inbound
from tests.conftest import ROOT, T0

WARD = """
    id: ward
    name: {zh-CN: 术后病友群, en: Recovery ward}
    chats: [{channel: memory, chat_id: g1}]
    owner: d_owner
    doctor: d_doc
    moderators:
      - {staff: mod_day, start: "08:00", end: "20:00"}
      - {staff: mod_night, start: "20:00", end: "08:00"}
    exempt: [nurse_zhang]
    welcome:
      rules: {zh-CN: "1. 不发广告", en: "1. No ads"}
      intake: intake
    captcha: {timeout: 5m, on_fail: kick}
    newcomer: {for: 24h}
    locks: {links: delete, phone: delete, email: delete, forwards: delete, contacts: delete, qr: delete}
    blocklist:
      sets: [drug_selling, fake_cures, daigou, contact_harvest, loan_scam, misinformation]
      entries:
        - {id: t_delete, regex: "spam-delete", action: delete}
        - {id: t_warn, match: "*spam-warn*", action: warn}
        - {id: t_mute, regex: "spam-mute", action: mute}
        - {id: t_ban, regex: "spam-ban", action: ban, reason: test ban}
        - {id: t_report, regex: "spam-report", action: report}
    warnings: {threshold: 3, decay: 1d, then: mute, mute_for: 1h}
    flood: {messages: 5, per: 10s, action: mute, mute_for: 10m}
    raid: {joins: 10, per: 1m, lockdown: 30m}
    sop:
      programme:
        - {day: 1, at: "09:00", say: groups.sop.day1}
        - {day: 3, at: "09:00", article: post_surgery_wound_care}
        - {day: 7, at: "09:00", say: groups.sop.week1}
      calendar:
        - {weekly: [wed], at: "10:00", say: groups.sop.weekly_tip}
      digest: {weekly: mon, at: "09:30"}
"""

CLINIC = """
    id: clinic
    name: {zh-CN: 门诊群, en: Clinic group}
    chats: [{channel: memory, chat_id: g2}]
    owner: d_owner2
    blocklist: {sets: [drug_selling]}
"""

def ward(*without: str, more: str = "") -> str:
    """The ward policy without some top-level settings (e.g. "captcha"), plus `more` YAML lines."""
    lines = [line for line in textwrap.dedent(WARD).splitlines() if line.split(":", 1)[0] not in without]
    return "\n".join(lines) + "\n" + textwrap.dedent(more)


WECOM_LIKE = Capabilities(ops=frozenset({"say", "notify_staff"}), buttons=False, media=True, max_text=2048)


@dataclass
class GroupBot:
    bot: CareBot
    platform: MemoryAdapter
    console: MemoryAdapter
    clock: ManualClock

    def inbound(self, user: str, text: str = "", *, chat: str = "g1", kind: str = "", **kw: Any) -> Inbound:
        kind = kind or ("command" if text.startswith("/") else "text")
        payload = {"name": user, **kw.pop("payload", {})}
        return self.platform.inbound(chat, text, kind=kind, user_id=user, is_group=True, now=self.clock.now(),
                                     payload=payload, **kw)

    async def send(self, user: str, text: str = "", **kw: Any) -> Inbound:
        inbound = self.inbound(user, text, **kw)
        await self.bot.runtime.handle(inbound)
        await self.bot.settle()
        return inbound

    async def join(self, user: str, chat: str = "g1") -> None:
        await self.send(user, kind="join", chat=chat)

    async def press(self, user: str, chat: str = "g1") -> None:
        await self.send(user, "我不是机器人", kind="choice", chat=chat, payload={"value": "group:captcha"})

    async def tick(self, delta: timedelta) -> None:
        self.clock.advance(delta)
        await self.bot.timers.tick()
        await self.bot.settle()

    def sent(self, since: int = 0) -> list[Sent]:
        return self.platform.sent[since:]

    def ops(self, since: int = 0, user: str | None = None) -> list[tuple[str, str]]:
        """(op, key-or-extra) of what went to the platform, optionally only about one member."""
        out = []
        for s in self.platform.sent[since:]:
            ob = s.outbound
            if user is not None and ob.address.user_id != user:
                continue
            out.append((ob.op, ob.key or str(ob.extra.get("permissions", ob.extra.get("until", "")))))
        return out

    async def rows(self, table: sa.Table, **where: Any) -> list[Any]:
        def q(conn: sa.Connection) -> list[Any]:
            sel = sa.select(table).order_by(table.c.id)
            for k, v in where.items():
                sel = sel.where(table.c[k] == v)
            return conn.execute(sel).all()

        return await self.bot.store.read(q)

    async def log(self, **where: Any) -> list[Any]:
        return await self.rows(LOG, **where)

    async def cases(self, **where: Any) -> list[Any]:
        return await self.rows(CASE, **where)

    async def bans(self, **where: Any) -> list[Any]:
        return await self.rows(BAN, **where)

    async def state(self, user: str, chat: str = "g1") -> dict[str, Any]:
        data, _ = await self.bot.store.load(Address("memory", chat, user, is_group=True).conversation_id)
        assert data is not None
        return data


def make_content(tmp: Path, policies: dict[str, str] | None = None) -> Path:
    content = tmp / "content"
    shutil.copytree(ROOT / "content", content)
    for name, text in (policies if policies is not None else {"ward.yml": WARD, "clinic.yml": CLINIC}).items():
        (content / "groups" / name).write_text(textwrap.dedent(text), encoding="utf-8")
    return content


async def start_group_bot(tmp: Path, backend: tuple[str, str | None], *, capabilities: Capabilities | None = None,
                          policies: dict[str, str] | None = None, start: Any = T0) -> GroupBot:
    url, redis_url = backend
    if url.startswith("sqlite"):
        upgrade(url)
    content = make_content(tmp, policies)
    settings = replace(Settings(), database_url=url, flows_dir=ROOT / "flows", content_dir=content,
                       worker_id=f"wg-{uuid.uuid4().hex[:4]}", redis_url=redis_url or "")
    if redis_url:
        from bot.coord.redis import RedisCoord

        coord: Any = RedisCoord(redis_url, prefix=f"carebot-test-{uuid.uuid4().hex[:8]}:")
    else:
        coord = MemoryCoord()
    clock = ManualClock(start)
    platform = MemoryAdapter(capabilities=capabilities)
    console = MemoryAdapter("console", capabilities=Capabilities(ops=frozenset({"notify_staff"}), buttons=False,
                                                                  media=False))
    bot = CareBot.build(settings, [platform, console], clock=clock, config=load_config(settings), coord=coord)
    await bot.start(background=False)
    return GroupBot(bot, platform, console, clock)
