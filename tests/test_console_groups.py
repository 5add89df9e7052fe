"""The moderator's view in the console (adapters/console/moderation.py): pending cases for the
moderator on duty, the moderation log for managers, decisions audited, an appeal lifted org-wide."""

from __future__ import annotations

import uuid
from dataclasses import replace
from pathlib import Path
from typing import Iterator

import pytest
from starlette.testclient import TestClient

from adapters.console import ConsoleAdapter
from bot.app import CareBot, load_config
from bot.clock import ManualClock
from bot.coord import MemoryCoord
from bot.groups.records import BAN, CASE, LOG
from bot.server import create_app
from bot.settings import Settings
from bot.store.migrate import upgrade
from bot.testing.memory import MemoryAdapter
from tests.conftest import ROOT, T0
from tests.groups_common import make_content
from tests.test_console import Browser, Setup, flash


@pytest.fixture
def groups(tmp_path: Path) -> Iterator[Setup]:
    url = f"sqlite:///{tmp_path / 'console-groups.db'}"
    upgrade(url)
    settings = replace(Settings(), database_url=url, flows_dir=ROOT / "flows", content_dir=make_content(tmp_path),
                       secret="console-test-secret", worker_id=f"wc-{uuid.uuid4().hex[:4]}")
    clock, memory = ManualClock(T0), MemoryAdapter()
    bot = CareBot.build(settings, [memory], clock=clock, config=load_config(settings), coord=MemoryCoord())
    console = ConsoleAdapter(bot.settings)
    bot.adapters.add(console)
    with TestClient(create_app(bot)) as client:
        setup = Setup(bot, memory, clock, client, console)
        setup.staff("mod_day", "Moderator Day")
        setup.staff("d_other", "Dr Other")
        setup.staff("admin", "Admin", role="admin")
        yield setup


def rows(setup: Setup, table, **where):  # type: ignore[no-untyped-def]
    import sqlalchemy as sa

    def q(c):  # type: ignore[no-untyped-def]
        sel = sa.select(table).order_by(table.c.id)
        for k, v in where.items():
            sel = sel.where(table.c[k] == v)
        return c.execute(sel).all()
    return setup.run(setup.bot.store.read, q)


def test_a_moderator_sees_their_cases_lifts_a_ban_on_appeal_and_managers_see_the_log(groups: Setup) -> None:
    g = groups
    spam = g.memory.inbound("g1", "spam-ban", user_id="u9", is_group=True, now=g.clock.now())
    g.run(g.bot.runtime.handle, spam)
    g.run(g.bot.settle)
    appeal = g.memory.inbound("u9", "/appeal 误封了，我是病人家属", kind="command", now=g.clock.now())
    g.run(g.bot.runtime.handle, appeal)
    g.run(g.bot.settle)
    [case] = rows(g, CASE, kind="appeal")

    moderator = Browser(g, "zh-CN")
    moderator.login("mod_day")
    page = moderator.get("/console/groups")
    assert page.status_code == 200 and "申诉" in page.text and "误封了，我是病人家属" in page.text
    assert "群管理日志" not in page.text  # the log (with members' words) is for managers

    other = Browser(g)
    other.login("d_other")
    assert "误封了" not in other.get("/console/groups").text  # not their case
    refused = other.post(f"/console/groups/cases/{case.id}/lifted", csrf_from="/console/groups")
    assert refused.status_code == 403

    before = len(g.memory.sent)
    done = moderator.post(f"/console/groups/cases/{case.id}/lifted", csrf_from="/console/groups", follow=True)
    assert flash(done) == "已记录处理结果。"
    g.run(g.bot.settle)
    [ban] = rows(g, BAN, user_id="u9")
    assert ban.lifted_by == "mod_day" and ban.lifted_at is not None
    ops = [(s.outbound.op, s.outbound.extra.get("lift"), s.outbound.extra.get("permissions")) for s in g.memory.sent[before:]]
    assert ops == [("ban", True, None), ("restrict", None, "all")]
    assert [(r.action, r.actor) for r in rows(g, LOG, member="u9")][-1] == ("lifted", "staff:mod_day")
    assert rows(g, CASE, id=case.id)[0].status == "resolved"
    assert moderator.post(f"/console/groups/cases/{case.id}/lifted", csrf_from="/console/groups").status_code == 404
    assert {"view_moderation", "group_case_lifted"} <= {a.action for a in g.audit(actor="staff:mod_day")}

    admin = Browser(g)
    admin.login("admin")
    log = admin.get("/console/groups?policy=ward").text
    assert "Moderation log" in log and "blocklist:ward/t_ban" in log and "spam-ban" in log
