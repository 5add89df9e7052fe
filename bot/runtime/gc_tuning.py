"""Garbage-collector settings for a long-running server.

A carebot process holds a large, long-lived heap (compiled flows, templates, triage indexes, cached
conversation states) and creates many short-lived objects per message. With CPython's default
thresholds, full collections walk that whole heap every few seconds under load — pauses of 100 ms
and more, which were the benchmark's p99. Freezing the start-up heap and collecting the young
generation less often removes them; memory stays bounded (measured in docs/performance.md).
"""

from __future__ import annotations

import gc


def tune_for_server() -> None:
    gc.collect()
    gc.freeze()  # everything loaded at start-up is permanent: never scan it again
    gc.set_threshold(10_000, 50, 100)
