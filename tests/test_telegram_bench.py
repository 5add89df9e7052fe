"""`carebot bench telegram --json` runs end to end with tiny numbers: the shape of its last line and
nothing lost. (Figures are measured by the benchmark itself, never asserted here: docs/performance.md.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT


@pytest.mark.timeout(600)  # a `carebot` process: slow to start on a loaded machine, never flaky
def test_bench_telegram_json_shape_and_nothing_lost(tmp_path: Path) -> None:
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'unused.db'}", "REDIS_URL": ""}
    env.pop("CAREBOT_TELEGRAM_TOKEN", None)
    done = subprocess.run([sys.executable, "-m", "bot.cli", "bench", "telegram", "--json", "--conversations", "4",
                           "--broadcast", "40", "--broadcast-rate", "20"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=550)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    for peer in ("carebot", "aiogram", "ptb"):
        figures = result[peer]
        assert figures["messages_per_second"] > 0 and figures["p99_ms"] >= figures["p50_ms"] > 0
        assert figures["updates"] == 4 * 6 and figures["replies"] == figures["replies_expected"] == 4 * 6
        assert figures["failures"] == 0
    assert result["carebot"]["durable"] is True and result["aiogram"]["durable"] is False
    assert set(result["ratio"]) == {"carebot_over_aiogram", "carebot_over_ptb"}
    broadcast = result["broadcast"]
    assert broadcast["messages"] == 40 and broadcast["limit_per_second"] == 20
    assert broadcast["lost"] == 0 and broadcast["duplicates"] == 0 and broadcast["unhandled_429"] == 0
    assert broadcast["not_sent"] == 0 and broadcast["achieved_over_limit"] > 0
