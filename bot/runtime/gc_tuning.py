"""Garbage-collector settings for a long-running server.

A carebot process holds a large, long-lived heap (compiled flows, templates, triage indexes, cached
conversation states) and creates many short-lived objects per message. With CPython's default
thresholds, full collections walk that whole heap every few seconds under load — pauses of 100 ms
and more, which were the benchmark's p99. Freezing the start-up heap and collecting the young
generation less often removes them; memory stays bounded (measured in docs/performance.md).
"""

from __future__ import annotations

import gc


def loading() -> None:
    """No collections while the server loads: start-up allocates hundreds of thousands of objects that
    all stay (rules, model weights, compiled templates), and each young collection that this triggers
    walks them again — ~0.3 s of a start. `tune_for_server` collects once, freezes and turns it back on."""
    gc.disable()


def tune_for_server(collect: bool = True) -> None:
    """`collect=False` freezes without a full collection first: after `loading()`, start-up leaves
    only ~2,500 unreachable objects, and collecting them costs 0.13-0.16 s on the event loop."""
    gc.enable()
    if collect:
        gc.collect()
    gc.freeze()  # everything loaded at start-up is permanent: never scan it again
    gc.set_threshold(10_000, 50, 100)
