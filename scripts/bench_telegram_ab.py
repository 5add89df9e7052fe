"""One A/B round of the Telegram intake: carebot (durable, through the webhook) and aiogram (FSM,
MemoryStorage) in one process run, exactly as `carebot bench telegram` runs them, with PTB skipped
and the broadcast cut (neither is what an A/B of the intake compares). Prints one JSON line: each
contestant's messages per second and per CPU second, and carebot ÷ aiogram for both.

    cd <worktree> && .venv/bin/python scripts/bench_telegram_ab.py [conversations=1000] [broadcast=10]

Alternate two worktrees (main and a branch) and compare the ratios within each run: on a shared
machine the absolute figures move with the load, the ratio much less (docs/performance.md).
"""

from __future__ import annotations

import json
import sys
from typing import Any


def main() -> None:
    import adapters.telegram.bench as bench
    from bot.settings import Settings

    conversations = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    broadcast = int(sys.argv[2]) if len(sys.argv) > 2 else 10
    peer = bench._peer

    async def without_ptb(name: str, *args: Any) -> dict[str, Any]:
        if name == "ptb":  # not run: a placeholder the bench's ratio arithmetic accepts
            return {"messages_per_second": 1.0, "messages_per_cpu_second": 1.0}
        return await peer(name, *args)

    bench._peer = without_ptb
    result = bench.run_telegram_bench(Settings.from_env(), conversations=conversations, broadcast=broadcast)
    carebot, aiogram = result["carebot"], result["aiogram"]
    print(json.dumps({
        "carebot": carebot["messages_per_second"], "carebot_per_cpu_s": carebot["messages_per_cpu_second"],
        "carebot_p99_ms": carebot["p99_ms"], "aiogram": aiogram["messages_per_second"],
        "aiogram_per_cpu_s": aiogram["messages_per_cpu_second"],
        "ratio": round(carebot["messages_per_second"] / aiogram["messages_per_second"], 3),
        "ratio_per_cpu_s": round(carebot["messages_per_cpu_second"] / aiogram["messages_per_cpu_second"], 3),
        "failures": carebot["failures"], "replies": carebot["replies"], "replies_expected": carebot["replies_expected"],
        "broadcast": {k: result["broadcast"][k] for k in ("achieved_over_limit", "lost", "unhandled_429",
                                                          "fake_server_429s")}}))


if __name__ == "__main__":  # the load generator is a spawned process: it imports this file again
    main()
