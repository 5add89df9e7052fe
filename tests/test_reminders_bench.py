"""`carebot bench reminders` with a tiny workload: the JSON's shape, and every due dose fired once
(by carebot's two workers and by APScheduler). No figure is asserted: speed is the bench's, not a test's."""

from __future__ import annotations

import json

from bot.cli import main


def test_bench_reminders_fires_every_due_dose_exactly_once(pg_url, capsys):
    code = main(["bench", "reminders", "--plans", "300", "--due", "40", "--rate", "100", "--timeout", "60",
                 "--database-url", pg_url, "--json"])
    assert code == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    for key in ("plans", "fires_per_second", "p99_lateness_ms", "peak_rss_mb"):
        assert isinstance(result[key], (int, float)), key
    assert result["plans"] == 300 and result["due"] == 40 and result["workers"] == 2
    assert result["exactly_once"] is True
    assert result["doses"] == result["reminders"] == result["dose_fired_records"] == result["fired"] == 40
    assert sum(result["fired_per_worker"]) == 40
    assert result["peak_rss_mb"] > 0
    aps = result["apscheduler"]
    assert isinstance(aps["fires_per_second"], (int, float)) and isinstance(aps["p99_lateness_ms"], (int, float))
    assert aps["fired"] == 40 and aps["exactly_once"] is True
