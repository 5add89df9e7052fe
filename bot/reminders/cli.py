"""`carebot reminders eval FILE… [--json]` and `carebot bench reminders --plans N [--json]`."""

from __future__ import annotations

import sys


def run_reminders_cli(argv: list[str]) -> int:
    if argv[:1] == ["eval"]:
        from bot.reminders.evaluate import run_eval_cli

        return run_eval_cli(argv[1:])
    if argv[:2] == ["bench", "reminders"]:
        from bot.reminders.bench import run_bench_cli

        return run_bench_cli(argv[2:])
    print("usage: carebot reminders eval FILE… [--json] | carebot bench reminders --plans N [--json]",
          file=sys.stderr)
    return 2
