"""Shared fixtures: real SQLite files, the machine's PostgreSQL and Redis, a bot built from YAML.

Tests that need PostgreSQL or Redis skip when the service is unreachable on a developer's machine,
and FAIL in CI (CI=true), so a broken service can never turn into a silently green run.
"""

from __future__ import annotations

import os
import textwrap
import uuid
from dataclasses import replace
from datetime import datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any, AsyncIterator, Callable
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from bot.app import CareBot, load_config
from bot.clock import ManualClock, shift_wall_clock
from bot.coord import MemoryCoord
from bot.settings import Settings
from bot.store.migrate import upgrade
from bot.testing.memory import MemoryAdapter

ROOT = Path(__file__).resolve().parent.parent
PG_URL = os.environ.get("DATABASE_URL_TEST", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("REDIS_URL_TEST", "redis://127.0.0.1:6379/0")
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--clock-at", default=os.environ.get("CAREBOT_TEST_CLOCK_AT", "10:00"), metavar="HH:MM",
                     help="run every test that reads the real clock as if it were HH:MM in Asia/Shanghai today "
                          "(default 10:00; `--clock-at 03:00` is the suite at night; `--clock-at off` reads "
                          "the machine's clock unmoved). Tests with a ManualClock are not affected.")


def pytest_configure(config: pytest.Config) -> None:
    """Pin the time of day the suite runs at, in this process and every Python process a test starts.

    Quiet hours, rosters and SLA clocks depend on the hour: a suite that read the machine's clock would
    pass by day and fail at night. Only the time of day moves (by less than 12 hours); elapsed time
    still passes as it really does, so timeouts and sleeps behave as before."""
    at = str(config.getoption("--clock-at")).strip()
    if at.lower() == "off":
        return
    try:
        hour, minute = (int(part) for part in at.split(":"))
        target = time(hour, minute)
    except ValueError:
        raise pytest.UsageError(f"--clock-at {at!r}: expected HH:MM (e.g. 03:00) or 'off'") from None
    zone = ZoneInfo("Asia/Shanghai")
    now = datetime.now(zone)
    shift = datetime.combine(now.date(), target, zone) - now
    while shift > timedelta(hours=12):
        shift -= timedelta(days=1)
    while shift <= -timedelta(hours=12):
        shift += timedelta(days=1)
    shift_wall_clock(shift.total_seconds())
    os.environ["CAREBOT_TEST_CLOCK_SHIFT"] = str(shift.total_seconds())
    os.environ["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(ROOT / "tests" / "clockshift"), os.environ.get("PYTHONPATH", "")) if p)


def python_path() -> str:
    """PYTHONPATH for a Python process a test starts: the repository, then what the suite set (the
    clock shift of `--clock-at`, tests/clockshift), so the child reads the same time of day."""
    return os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)


def _unreachable(what: str, exc: Exception) -> None:
    message = f"{what} is unreachable: {type(exc).__name__}: {exc}"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(message + " (CI=true: services are required)")
    pytest.skip(message)


def empty_postgres() -> str:
    """The test database with nothing in it: every carebot table dropped, nothing migrated."""
    try:
        engine = sa.create_engine(PG_URL.replace("postgresql://", "postgresql+psycopg://"))
        with engine.begin() as conn:
            conn.exec_driver_sql("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
        engine.dispose()
    except Exception as exc:  # noqa: BLE001 - any connection failure
        _unreachable(f"PostgreSQL at {PG_URL}", exc)
    return PG_URL


@pytest.fixture(scope="session")
def rules_only():
    """Every shipped triage rule set, no learned layer: what the rules alone make of a message."""
    from bot.triage import load_all_triage
    from bot.triage.screen import Screener
    return Screener(load_all_triage(ROOT / "content"), None)


@pytest.fixture
def pg_url() -> str:
    """A fresh PostgreSQL database state: every carebot table dropped and migrated."""
    upgrade(empty_postgres())
    return PG_URL


@pytest.fixture
def redis_url() -> str:
    import redis

    try:
        client = redis.Redis.from_url(REDIS_URL)
        client.ping()
        client.close()
    except Exception as exc:  # noqa: BLE001
        _unreachable(f"Redis at {REDIS_URL}", exc)
    return REDIS_URL


@pytest.fixture(params=["sqlite", pytest.param("pg+redis", marks=[pytest.mark.postgres, pytest.mark.redis])])
def backend(request: pytest.FixtureRequest) -> tuple[str, str]:
    """(database URL, Redis URL) for tests that run on both: ("", "") is the embedded default
    (the test makes its own SQLite file), then PostgreSQL + Redis, the scale-out configuration."""
    if request.param == "sqlite":
        return "", ""
    import redis

    pg, rd = request.getfixturevalue("pg_url"), request.getfixturevalue("redis_url")
    client = redis.Redis.from_url(rd)
    client.flushdb()  # rate-limit windows and seen-keys of earlier tests
    client.close()
    return pg, rd


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'carebot.db'}"
    upgrade(url)
    return url


def write_flows(directory: Path, flows: dict[str, str]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in flows.items():
        (directory / name).write_text(textwrap.dedent(text), encoding="utf-8")
    return directory


def write_messages(content: Path, messages: dict[str, str]) -> Path:
    (content / "messages").mkdir(parents=True, exist_ok=True)
    for locale, text in messages.items():
        (content / "messages" / f"{locale}.yml").write_text(textwrap.dedent(text), encoding="utf-8")
    return content


@pytest.fixture
def make_bot(tmp_path: Path) -> Callable[..., Any]:
    """Build a CareBot on a fresh SQLite file from flows/messages given as YAML strings."""
    bots: list[CareBot] = []

    def build(flows: dict[str, str] | None = None, messages: dict[str, str] | None = None, *,
              url: str | None = None, clock: ManualClock | None = None, adapter: MemoryAdapter | None = None,
              coord: Any = None, shipped: bool = False, **settings_kw: Any) -> tuple[CareBot, MemoryAdapter, ManualClock]:
        if shipped:
            flows_dir, content_dir = ROOT / "flows", ROOT / "content"
        else:
            n = len(bots)
            flows_dir = write_flows(tmp_path / f"flows{n}", flows or {})
            content_dir = write_messages(tmp_path / f"content{n}", messages or {})
        if url is None:
            url = f"sqlite:///{tmp_path / f'bot{len(bots)}.db'}"
            upgrade(url)
        settings = replace(Settings(), database_url=url, flows_dir=flows_dir, content_dir=content_dir,
                           worker_id=f"w{len(bots)}-{uuid.uuid4().hex[:4]}", **settings_kw)
        clock = clock or ManualClock(T0)
        adapter = adapter or MemoryAdapter()
        bot = CareBot.build(settings, [adapter], clock=clock, config=load_config(settings),
                            coord=coord or MemoryCoord())
        bots.append(bot)
        return bot, adapter, clock

    yield build
    # bots are stopped by the tests that start them (they run inside the test's event loop)
