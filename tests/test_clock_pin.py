"""The suite runs at a pinned time of day (tests/conftest.py, `--clock-at`), in this process and in
every Python process a test starts, so that nothing in it depends on the hour CI happens to run."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from bot.clock import Clock, OffsetClock

SHANGHAI = ZoneInfo("Asia/Shanghai")


def _pinned(config: pytest.Config) -> tuple[int, int] | None:
    at = str(config.getoption("--clock-at"))
    return None if at.lower() == "off" else tuple(int(p) for p in at.split(":"))  # type: ignore[return-value]


def _minutes_apart(a: datetime, hour: int, minute: int) -> float:
    got = a.hour * 60 + a.minute
    return min((got - (hour * 60 + minute)) % 1440, ((hour * 60 + minute) - got) % 1440)


def test_the_real_clock_reads_the_pinned_time_of_day(pytestconfig: pytest.Config) -> None:
    pinned = _pinned(pytestconfig)
    if pinned is None:
        pytest.skip("--clock-at off: the machine's clock is read unmoved")
    now = Clock("Asia/Shanghai").now()
    # the pin was taken when the session started; a suite run takes well under an hour
    assert _minutes_apart(now, *pinned) <= 90
    # elapsed time is untouched: the clock still moves with the machine's
    before = Clock("UTC").now()
    assert timedelta(0) <= Clock("UTC").now() - before < timedelta(seconds=5)
    # the date stays within half a day of the real one
    assert abs(now - datetime.now(timezone.utc)) <= timedelta(hours=12)


def test_an_offset_clock_moves_from_the_pinned_time(pytestconfig: pytest.Config) -> None:
    if _pinned(pytestconfig) is None:
        pytest.skip("--clock-at off")
    clock = OffsetClock("Asia/Shanghai")
    start = clock.now()
    assert clock.advance(timedelta(hours=2)) - start >= timedelta(hours=2)


def test_a_process_a_test_starts_reads_the_same_pinned_time(pytestconfig: pytest.Config) -> None:
    pinned = _pinned(pytestconfig)
    if pinned is None:
        pytest.skip("--clock-at off")
    code = "from bot.clock import Clock; print(Clock('Asia/Shanghai').now().isoformat())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env=dict(os.environ), timeout=60).stdout.strip()
    child = datetime.fromisoformat(out)
    assert abs(child - Clock("Asia/Shanghai").now()) < timedelta(minutes=2)
    assert _minutes_apart(child.astimezone(SHANGHAI), *pinned) <= 90
